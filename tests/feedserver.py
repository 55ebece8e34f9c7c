"""A real HTTP/1.1 server on loopback addresses, for tests that fetch feeds.

It runs its own asyncio loop in a thread, so synchronous and async tests alike can use
it, and it listens on several loopback addresses (127.0.0.1, 127.0.0.2, ...) on one
port, so tests can have several distinct hosts.

    def test_something(feed_server: FeedServer) -> None:
        feed_server.route("/feed.xml", body=b"<rss/>", etag='"v1"')
        url = feed_server.url("/feed.xml", host="127.0.0.2")
        ...
        assert feed_server.hits("/feed.xml") == 1
        assert feed_server.max_active["127.0.0.2"] <= 2

Routes are changed at any time, from the test's thread; the server reads them per
request. Import the fixture into a test module (``from feedserver import feed_server``)
or list this module in ``pytest_plugins``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip as gzip_module
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import pytest

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: Mapping[str, str]  # names lower-cased
    host: str  # from the Host header, without the port

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None  # sent, and a matching If-None-Match gets a 304
    last_modified: str | None = None  # sent, and an equal If-Modified-Since gets a 304
    lying: bool = False  # any conditional request gets a 304, whatever the body is now
    delay: float = 0.0  # seconds before the status line
    dribble: float = 0.0  # seconds between body chunks of dribble_size bytes
    dribble_size: int = 64
    gzip: bool = False  # compress the body, with Content-Encoding: gzip
    chunked: bool = False  # no Content-Length: Transfer-Encoding: chunked
    redirect_to: str | None = None  # Location; status 301 unless given as 3xx
    handler: Callable[[Request], Route] | None = None  # computes the route per request


class FeedServer:
    """Start with ``with FeedServer() as server`` (or the ``feed_server`` fixture)."""

    def __init__(self, hosts: tuple[str, ...] = HOSTS) -> None:
        self.hosts = hosts
        self.port = 0
        self.requests: list[Request] = []
        self.active: Counter[str] = Counter()  # requests being answered, per host
        self.max_active: Counter[str] = Counter()  # the most ever at once, per host
        self.max_active_total = 0
        self.connections = 0  # accepted, in total
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- setup -------------------------------------------------------------------------

    def route(self, path: str, **options: Any) -> Route:
        """Serve ``path`` (query string included, if any) with these Route options."""
        route = Route(**options)
        if route.redirect_to is not None and not 300 <= route.status < 400:
            route = replace(route, status=301)
        with self._lock:
            self._routes[path] = route
        return route

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.hosts[0]}:{self.port}{path}"

    def hits(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def last(self, path: str) -> Request:
        with self._lock:
            return next(r for r in reversed(self.requests) if r.path == path)

    def __enter__(self) -> FeedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        # One port for every host: bind the first on any port, then the rest on it. The
        # kernel only promised that port free on the first address, so a parallel test
        # process may hold it on another: then try again with a new one.
        for _attempt in range(20):
            first = await asyncio.start_server(self._serve, self.hosts[0], 0)
            self.port = first.sockets[0].getsockname()[1]
            self._servers = [first]
            try:
                for host in self.hosts[1:]:
                    self._servers.append(await asyncio.start_server(self._serve, host, self.port))
                return
            except OSError:
                for server in self._servers:
                    server.close()
        raise RuntimeError(f"no port free on all of {self.hosts}")

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- serving -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request = _parse(head)
                length = int(request.headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                with self._lock:
                    self.requests.append(request)
                    route = self._routes.get(request.path)
                    self.active[request.host] += 1
                    self.max_active[request.host] = max(
                        self.max_active[request.host], self.active[request.host]
                    )
                    self.max_active_total = max(self.max_active_total, sum(self.active.values()))
                try:
                    keep_alive = await self._answer(request, route, writer)
                finally:
                    with self._lock:
                        self.active[request.host] -= 1
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, request: Request, route: Route | None, writer: asyncio.StreamWriter) -> bool:
        if route is None:
            route = Route(body=b"not found", status=404)
        if route.handler is not None:
            route = route.handler(request)
            if route.redirect_to is not None and not 300 <= route.status < 400:
                route = replace(route, status=301)
        if route.delay:
            await asyncio.sleep(route.delay)
        status, body = route.status, route.body
        headers = {"Date": formatdate(usegmt=True), "Content-Type": "application/xml"}
        if route.etag is not None:
            headers["ETag"] = route.etag
        if route.last_modified is not None:
            headers["Last-Modified"] = route.last_modified
        if route.redirect_to is not None:
            headers["Location"] = route.redirect_to
        if status == 200 and _not_modified(request, route):
            status, body = 304, b""
        if route.gzip and body:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        headers.update(route.headers)
        if route.chunked:
            headers["Transfer-Encoding"] = "chunked"
        elif status != 304:
            headers["Content-Length"] = str(len(body))
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "X"
        head = f"HTTP/1.1 {status} {phrase}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(head.encode("latin-1") + b"\r\n")
        if status == 304:
            body = b""
        step = route.dribble_size if route.dribble else max(len(body), 1)
        for start in range(0, len(body), step):
            chunk = body[start : start + step]
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if route.chunked else chunk)
            await writer.drain()
            if route.dribble:
                if writer.is_closing():
                    return False
                await asyncio.sleep(route.dribble)
        if route.chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        return request.header("connection") != "close"


def _parse(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    host = headers.get("host", "").rsplit(":", 1)[0]
    return Request(method, path, headers, host)


def _not_modified(request: Request, route: Route) -> bool:
    inm, ims = request.header("if-none-match"), request.header("if-modified-since")
    if route.lying:
        return inm is not None or ims is not None
    if route.etag is not None and inm is not None:
        return route.etag in (t.strip() for t in inm.split(","))
    return route.last_modified is not None and ims == route.last_modified


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server
