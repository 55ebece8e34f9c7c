"""A loopback feed world for benchmarks: N realistic feeds over H hosts.

Each feed is RSS 2.0 or Atom (alternating), 20-50 entries, ~50 KB, with an ETag and a
Last-Modified; conditional requests get 304s. A "tick" gives a fraction of the feeds
new entries (churn). Latency (uniform in a range, per response) and faults (a fraction
of feeds answering 500) are optional and can be changed while it runs.

Hosts are loopback addresses 127.0.0.1 .. 127.0.0.H on one port, so per-host limits
act as they would on the Internet.

As a library (in-process, its own thread)::

    world = FeedWorld(feeds=500, hosts=50)
    with WorldServer(world) as server:
        urls = server.urls()
        server.configure(latency=(0.05, 0.15))
        server.tick(churn=0.1)

As a process (what bench_fetch.py does, so the server has its own core)::

    python -m bench.feedworld --feeds 500 --hosts 50 [--port 0]
    # prints "READY <port>", then serves until stdin closes or SIGTERM;
    # control: GET /_config?latency=0.05:0.15&faults=0.01, GET /_tick?churn=0.1,
    # GET /_urls (one feed URL a line), GET /_stats
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import random
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

WORDS = tuple(
    [
        "minister",
        "talks",
        "border",
        "sanctions",
        "ceasefire",
        "envoy",
        "summit",
        "parliament",
        "election",
        "strike",
        "drone",
        "pipeline",
        "treaty",
        "negotiations",
        "military",
        "exercise",
        "navy",
        "port",
        "grain",
        "export",
        "embassy",
        "coalition",
        "protest",
        "court",
        "ruling",
        "budget",
        "oil",
        "gas",
        "nuclear",
        "inspectors",
        "delegation",
        "regional",
        "security",
        "council",
        "resolution",
        "vote",
        "capital",
        "province",
        "frontier",
        "militia",
        "aid",
        "corridor",
    ]
)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class _Feed:
    index: int
    atom: bool
    next_entry: int
    entries: list[tuple[int, datetime, str, str]] = field(default_factory=list)  # id, when, title, text
    version: int = 0
    response_200: bytes = b""
    response_304: bytes = b""
    etag: str = ""


class FeedWorld:
    """The feeds' content; deterministic for a seed. Not thread-safe: one owner."""

    def __init__(self, feeds: int = 500, hosts: int = 50, seed: int = 1, size: int = 50_000) -> None:
        self.hosts = hosts
        self.rand = random.Random(seed)
        self.size = size
        self.clock = EPOCH
        self.feeds: list[_Feed] = []
        for i in range(feeds):
            count = self.rand.randint(20, 50)
            feed = _Feed(index=i, atom=i % 2 == 1, next_entry=0)
            for _ in range(count):
                self._add_entry(feed, count)
            self._render(feed)
            self.feeds.append(feed)

    def host(self, index: int) -> str:
        return f"127.0.0.{index % self.hosts + 1}"

    def path(self, index: int) -> str:
        return f"/feeds/{index}.{'atom' if self.feeds[index].atom else 'rss'}"

    def tick(self, churn: float) -> int:
        """A fraction ``churn`` of the feeds publish 1-3 new entries; returns how many did."""
        self.clock += timedelta(minutes=30)
        changed = 0
        for feed in self.feeds:
            if self.rand.random() < churn:
                for _ in range(self.rand.randint(1, 3)):
                    self._add_entry(feed, len(feed.entries))
                self._render(feed)
                changed += 1
        return changed

    def _add_entry(self, feed: _Feed, keep: int) -> None:
        n = feed.next_entry
        feed.next_entry += 1
        words = [self.rand.choice(WORDS) for _ in range(8)]
        title = " ".join(words).capitalize()
        # Text sized so that the feed lands near self.size.
        per_entry = max(200, self.size // max(keep, 1) - 400)
        text: list[str] = []
        length = 0
        while length < per_entry:
            text.append(self.rand.choice(WORDS))
            length += len(text[-1]) + 1
        when = self.clock - timedelta(minutes=10 * (keep - len(feed.entries)))
        feed.entries.insert(0, (n, when, title, " ".join(text)))
        del feed.entries[keep:]

    def _render(self, feed: _Feed) -> None:
        feed.version += 1
        body = (_atom if feed.atom else _rss)(feed, self.host(feed.index))
        feed.etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        modified = format_datetime(self.clock, usegmt=True)
        kind = "application/atom+xml" if feed.atom else "application/rss+xml"
        common = f"ETag: {feed.etag}\r\nLast-Modified: {modified}\r\n"
        feed.response_200 = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {kind}; charset=utf-8\r\n{common}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        feed.response_304 = f"HTTP/1.1 304 Not Modified\r\n{common}\r\n".encode()


def _rss(feed: _Feed, host: str) -> bytes:
    items = "".join(
        f"<item><title>{escape(title)}</title><link>http://{host}/a/{feed.index}/{n}</link>"
        f'<guid isPermaLink="false">f{feed.index}-e{n}</guid>'
        f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>"
        f"<description>{escape(text)}</description></item>"
        for n, when, title, text in feed.entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Feed {feed.index}</title><link>http://{host}/</link>"
        f"<description>Benchmark feed {feed.index}</description>{items}</channel></rss>"
    ).encode()


def _atom(feed: _Feed, host: str) -> bytes:
    entries = "".join(
        f"<entry><title>{escape(title)}</title><link href='http://{host}/a/{feed.index}/{n}'/>"
        f"<id>tag:bench,2026:f{feed.index}-e{n}</id><updated>{when.isoformat()}</updated>"
        f"<summary>{escape(text)}</summary></entry>"
        for n, when, title, text in feed.entries
    )
    updated = feed.entries[0][1].isoformat() if feed.entries else EPOCH.isoformat()
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Feed {feed.index}</title><id>tag:bench,2026:f{feed.index}</id>"
        f"<updated>{updated}</updated>{entries}</feed>"
    ).encode()


class WorldServer:
    """Serves a FeedWorld over HTTP/1.1 with keep-alive, on its own loop and thread."""

    def __init__(self, world: FeedWorld, port: int = 0) -> None:
        self.world = world
        self.port = port
        self.latency: tuple[float, float] = (0.0, 0.0)
        self.faults = 0.0
        self.requests = 0
        self.not_modified = 0
        self._by_path = {world.path(i): i for i in range(len(world.feeds))}
        self._rand = random.Random(7)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._lock = threading.Lock()  # world changes (tick) vs. reads from the loop

    def __enter__(self) -> WorldServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def urls(self) -> list[str]:
        w = self.world
        return [f"http://{w.host(i)}:{self.port}{w.path(i)}" for i in range(len(w.feeds))]

    def configure(self, latency: tuple[float, float] | None = None, faults: float | None = None) -> None:
        if latency is not None:
            self.latency = latency
        if faults is not None:
            self.faults = faults

    def tick(self, churn: float) -> int:
        with self._lock:
            return self.world.tick(churn)

    async def _start(self) -> None:
        first = await asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=1024)
        self.port = first.sockets[0].getsockname()[1]
        self._servers = [first]
        for h in range(2, self.world.hosts + 1):
            self._servers.append(
                await asyncio.start_server(self._serve, f"127.0.0.{h}", self.port, backlog=1024)
            )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                response, close = self._answer(head)
                low, high = self.latency
                if high > 0 and not head.startswith(b"GET /_"):  # control answers at once
                    await asyncio.sleep(self._rand.uniform(low, high))
                writer.write(response)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _answer(self, head: bytes) -> tuple[bytes, bool]:
        self.requests += 1
        lines = head.split(b"\r\n")
        target = lines[0].split(b" ")[1].decode()
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get(b"connection", b"").lower() == b"close"
        split = urlsplit(target)
        if split.path.startswith("/_"):
            return self._control(split.path, parse_qs(split.query)), close
        index = self._by_path.get(split.path)
        if index is None:
            return _plain(404, b"no such feed"), close
        if self.faults and self._rand.random() < self.faults:
            return _plain(500, b"fault"), close
        with self._lock:
            feed = self.world.feeds[index]
            inm = headers.get(b"if-none-match")
            if inm is not None and inm.decode() == feed.etag:
                self.not_modified += 1
                return feed.response_304, close
            return feed.response_200, close

    def _control(self, path: str, query: dict[str, list[str]]) -> bytes:
        if path == "/_config":
            if "latency" in query:
                low, _, high = query["latency"][0].partition(":")
                self.latency = (float(low), float(high or low))
            if "faults" in query:
                self.faults = float(query["faults"][0])
            return _plain(200, b"ok")
        if path == "/_tick":
            changed = self.tick(float(query.get("churn", ["0.1"])[0]))
            return _plain(200, str(changed).encode())
        if path == "/_urls":
            return _plain(200, "\n".join(self.urls()).encode())
        if path == "/_stats":
            stats = f"requests={self.requests} not_modified={self.not_modified}"
            return _plain(200, stats.encode())
        return _plain(404, b"no such control")


def _plain(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}.get(status, "X")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def control(port: int, what: str) -> str:
    """Ask a feed world process (``what`` like "_tick?churn=0.1") and return its answer."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{what}", timeout=30) as response:
        return str(response.read().decode())


@contextlib.contextmanager
def world_process(feeds: int, hosts: int, python: str = sys.executable) -> Iterator[int]:
    """Run a feed world in its own process; yields its port."""
    import subprocess

    proc = subprocess.Popen(
        [python, "-m", "bench.feedworld", "--feeds", str(feeds), "--hosts", str(hosts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"feed world did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the world exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    world = FeedWorld(args.feeds, args.hosts, args.seed)
    with WorldServer(world, args.port) as server:
        print(f"READY {server.port}", flush=True)
        sys.stdin.read()  # until the parent closes it (or dies)


if __name__ == "__main__":
    main()
