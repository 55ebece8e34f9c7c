"""A tiny static feed server on 127.0.0.1, with ETag and Last-Modified like a real one.

Used by ``aggregator demo`` and by tests; it runs in a background thread and is stopped by
leaving the ``with`` block.
"""

from __future__ import annotations

import hashlib
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        name = self.path.lstrip("/").split("?", 1)[0]
        body = self.server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        kind = "application/atom+xml" if ".atom" in name else "application/rss+xml"
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", self.server.last_modified)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the demo prints its own summary


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, bytes]
    last_modified: str


class FeedFileServer:
    """Serves every file of a directory at http://127.0.0.1:PORT/NAME."""

    def __init__(self, files: list[Path]) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.files = {p.name: p.read_bytes() for p in files}
        self._server.last_modified = formatdate(usegmt=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def __enter__(self) -> FeedFileServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
