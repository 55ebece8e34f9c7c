"""Why a fetch failed, in plain words: the pure mapping, then the real thing end to end
(the real CLI against real servers on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from feedserver import FeedServer, feed_server  # noqa: F401

from aggregator.fetch.reasons import network_reason, size_text
from aggregator.parse.feeds import parse_reason


def chained(outer: BaseException, *inner: BaseException) -> BaseException:
    """``outer`` raised from the chain ``inner`` (outermost first), as the libraries do."""
    cause: BaseException | None = None
    for e in reversed(inner):
        e.__cause__ = cause
        cause = e
    outer.__cause__ = cause
    return outer


class ClientConnectorDNSError(OSError):
    """Named as aiohttp's: the mapping knows it by name, without importing aiohttp."""


@pytest.mark.parametrize(("error", "kind", "reason"), [
    (chained(httpx.ConnectError("Cannot connect to host 127.0.0.1:1 ssl:default [Connect call "
                                "failed ('127.0.0.1', 1)]"),
             ConnectionRefusedError(111, "Connect call failed")), "connect", "connection refused"),
    (chained(httpx.ConnectError("All connection attempts failed"), OSError("All connection "
             "attempts failed"), ConnectionRefusedError(111, "refused")),
     "connect", "connection refused"),
    (chained(httpx.ConnectError("[Errno -2] Name or service not known"),
             socket.gaierror(-2, "Name or service not known")), "connect", "host name not found (DNS)"),
    (chained(httpx.ConnectError("Cannot connect to host x:80"),
             ClientConnectorDNSError("x")), "connect", "host name not found (DNS)"),
    (chained(httpx.ConnectError("x"), ssl.SSLCertVerificationError(1, "certificate verify failed")),
     "connect", "TLS certificate not accepted (not trusted)"),
    (chained(httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER]"), ssl.SSLError(1, "wrong version")),
     "connect", "TLS handshake failed"),
    (chained(httpx.ConnectError("x"), OSError(113, "No route to host")), "connect",
     "host unreachable"),
    (chained(httpx.ConnectError("weird")), "connect", "cannot connect"),
    (httpx.ConnectTimeout(""), "timeout", "timed out connecting (no answer within 10s)"),
    (httpx.ReadTimeout("Timeout on reading data from socket"), "timeout",
     "the server went silent (nothing received for 30s)"),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), "protocol",
     "the server closed the connection without an answer"),
    (httpx.RemoteProtocolError("illegal header line"), "protocol", "the server sent broken HTTP"),
    (chained(httpx.ReadError("x"), ConnectionResetError(104, "reset")), "network",
     "connection reset by the server"),
    (httpx.UnsupportedProtocol("ftp"), "bad_scheme", "only http and https URLs can be fetched"),
    (ValueError("boom"), "internal", "internal error (ValueError: boom)"),
])
def test_network_errors_in_plain_words(error: BaseException, kind: str, reason: str) -> None:
    assert network_reason(error) == (kind, reason)


@pytest.mark.parametrize(("n", "text"), [(15 * 1024 * 1024, "15 MiB"), (1536, "1.5 KiB"),
                                         (900, "900 bytes")])
def test_sizes_as_people_write_them(n: int, text: str) -> None:
    assert size_text(n) == text


class _Sax(Exception):
    def getLineNumber(self) -> int:
        return 7

    def getMessage(self) -> str:
        return "mismatched tag"


@pytest.mark.parametrize(("exc", "body", "content_type", "reason"), [
    (_Sax(), b"<!DOCTYPE html>\n<html><body><p>hi</body></html>", None,
     "the server sent an HTML page, not a feed"),
    (_Sax(), b"<html><p>x", "text/html; charset=utf-8", "the server sent an HTML page, not a feed"),
    (_Sax(), b"<?xml version='1.0'?>\n<!-- c -->\n<html>", None,
     "the server sent an HTML page, not a feed"),
    (_Sax(), b"<rss><channel><item></channel></rss>", "text/html",
     "not well-formed XML (line 7: mismatched tag)"),
    (_Sax(), b"<rss><channel><item></channel></rss>", None,
     "not well-formed XML (line 7: mismatched tag)"),
    (_Sax(), b"  \n", None, "the server sent an empty document"),
    (None, b"<foo/>", None, "not an RSS or Atom feed"),
])
def test_parse_errors_in_plain_words(exc: BaseException | None, body: bytes,
                                     content_type: str | None, reason: str) -> None:
    assert parse_reason(exc, body, content_type) == reason


# -- end to end ------------------------------------------------------------------------

FEED = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Fine</title>'
        b'<item><title>One</title><link>http://127.0.0.1/one</link><guid>one</guid></item>'
        b'</channel></rss>')


@pytest.fixture
def tls_garbage() -> Iterator[int]:
    """A port that answers a TLS ClientHello with plain HTTP (a server without TLS)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def start() -> asyncio.Server:
        nonlocal port
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ready.set()
        return server

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield port
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1", **env})


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_fetch_names_each_failed_feed_in_plain_words_and_exits_1(
        instance_with_model: Path, feed_server: FeedServer, tls_garbage: int,  # noqa: F811
        transport: str) -> None:
    feed_server.route("/ok.xml", body=FEED)
    feed_server.route("/missing.xml", status=404, body=b"no")
    feed_server.route("/page.html", body=b"<!DOCTYPE html><html><head><title>Home</title></head>"
                      b"<body><p>Welcome<br><div>news</body></html>",
                      headers={"Content-Type": "text/html"})
    for i in range(8):
        feed_server.route(f"/hop{i}", redirect_to=f"/hop{i + 1}", status=302)
    feed_server.route("/slow.xml", body=FEED, delay=3)
    feed_server.route("/big.xml", body=FEED + b" " * 20_000)
    feeds = {
        "fine": feed_server.url("/ok.xml"),
        "refused": "http://127.0.0.1:1/feed.xml",
        "missing": feed_server.url("/missing.xml"),
        "page": feed_server.url("/page.html"),
        "hops": feed_server.url("/hop0"),
        "slow": feed_server.url("/slow.xml"),
        "big": feed_server.url("/big.xml", host="127.0.0.2"),
        "notls": f"https://127.0.0.1:{tls_garbage}/feed.xml",
    }
    (instance_with_model / "config" / "feeds.toml").write_text("".join(
        f'[[feed]]\nname = "{n}"\nurl = "{u}"\n' for n, u in feeds.items()))
    result = run(instance_with_model, "fetch", "--all", AGGREGATOR_FETCH_READ_TIMEOUT="1s",
                 AGGREGATOR_FETCH_MAX_BODY_SIZE="16KiB", AGGREGATOR_FETCH_TRANSPORT=transport)
    assert result.returncode == 1, result.stderr
    assert "feeds: 1 ok" in result.stdout and "7 failed" in result.stdout
    lines = result.stderr.splitlines()
    assert lines[0] == "7 feeds failed:"
    reasons = dict(line.strip().split(": ", 1) for line in lines[1:])
    assert reasons == {
        "refused": "connection refused",
        "missing": "HTTP 404 Not Found",
        "page": "the server sent an HTML page, not a feed",
        "hops": "more than 5 redirects",
        "slow": "the server went silent (nothing received for 1s)",
        "big": "the feed is larger than 16 KiB (max_body_size)",
        "notls": "TLS handshake failed (wrong version number)",
    }
    # The one that worked is stored all the same.
    query = run(instance_with_model, "query", "--format", "jsonl")
    assert [row for row in query.stdout.splitlines() if '"One"' in row]


def test_fetch_exits_0_when_every_feed_is_fine(instance_with_model: Path,
                                               feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/ok.xml", body=FEED)
    (instance_with_model / "config" / "feeds.toml").write_text(
        f'[[feed]]\nname = "fine"\nurl = "{feed_server.url("/ok.xml")}"\n')
    first = run(instance_with_model, "fetch", "--all")
    second = run(instance_with_model, "fetch", "--all")  # unchanged: fine too
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "failed:" not in first.stderr + second.stderr
