"""https end to end: a real TLS server on 127.0.0.1 with a certificate made for the test.

aiohttp is imported without building its own default TLS contexts (aggregator.fetch.transport):
these tests show that https requests still verify against the trusted CAs (SSL_CERT_FILE)
and refuse a certificate nobody trusts, with either transport. Each fetch runs in a fresh
process, as ``aggregator fetch`` does (the TLS context is built once per process).
"""

from __future__ import annotations

import http.server
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

FEED = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
        b"<item><title>One</title><link>https://example.org/1</link></item></channel></rss>")

FETCH = r"""
import asyncio, sys
from aggregator.fetch import start_loading
from aggregator.fetch.http import Fetcher
from aggregator.fetch.messages import FetchRequest
from aggregator.config_schema import validate_settings

transport = sys.argv[2]
start_loading(transport, tls=True)  # as a fetch process does: aiohttp imported in a thread
settings = validate_settings({"fetch": {"transport": transport}}).fetch.to_settings()

async def main():
    async with Fetcher(settings) as fetcher:
        r = await fetcher.fetch(FetchRequest(1, sys.argv[1]))
    print(r.status, len(r.body or b""), r.error, sep="|")

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(an https URL serving FEED, the certificate file that trusts it)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}/feed.xml", cert
    finally:
        server.shutdown()
        server.server_close()


def fetch(url: str, transport: str, cert_file: Path | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env.update({"NO_PROXY": "*", "no_proxy": "*"})
    if cert_file is not None:
        env["SSL_CERT_FILE"] = str(cert_file)
    done = subprocess.run([sys.executable, "-c", FETCH, url, transport], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split("|")


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_https_with_a_trusted_certificate(tls_server: tuple[str, Path], transport: str) -> None:
    url, cert = tls_server
    assert fetch(url, transport, cert) == ["200", str(len(FEED)), "None"]


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_https_refuses_an_untrusted_certificate(tls_server: tuple[str, Path],
                                                transport: str) -> None:
    url, _ = tls_server
    status, size, error = fetch(url, transport, None)
    assert (status, size) == ("None", "0")
    assert error.startswith("TLS certificate not accepted (")  # the detail varies by transport
