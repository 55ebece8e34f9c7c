"""A small feed world for tests: many feeds on the loopback server, entries that grow over
time, and faults. Every entry the world ever served is remembered, so a test can check
that each was stored exactly once."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from feedserver import FeedServer, Request, Route

FAULTS = ("ok", "error500", "slow", "malformed", "oversized", "loop", "gone", "flaky",
          "new_etag")


@dataclass
class WorldFeed:
    name: str
    fault: str = "ok"
    entries: list[tuple[str, str]] = field(default_factory=list)  # (guid, title)
    version: int = 0


def rss(feed: WorldFeed, base: str) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>{base}/{feed.name}/{guid}</link>"
        f"<guid isPermaLink=\"false\">{guid}</guid>"
        f"<pubDate>{format_datetime(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=n))}</pubDate>"
        f"<description>Text of {title} about Moscow and Tehran.</description></item>"
        for n, (guid, title) in enumerate(feed.entries))
    return (f"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{feed.name}</title>"
            f"<link>{base}/{feed.name}</link>{items}</channel></rss>").encode()


class FeedWorld:
    def __init__(self, server: FeedServer, n: int, *, seed: int = 7,
                 faults: dict[str, int] | None = None, entries: int = 5) -> None:
        self.server = server
        self.rand = random.Random(seed)
        self.lock = threading.Lock()
        self.feeds: dict[str, WorldFeed] = {}
        self.served: set[tuple[str, str]] = set()  # (feed, guid) of every entry sent in a 200
        kinds = [k for k, count in (faults or {}).items() for _ in range(count)]
        for i in range(n):
            name = f"feed{i:04d}"
            feed = WorldFeed(name, kinds[i] if i < len(kinds) else "ok")
            for _ in range(entries):
                self._add_entry(feed)
            self.feeds[name] = feed
            server.route(f"/{name}.xml", handler=self._handler(name))

    def _add_entry(self, feed: WorldFeed) -> None:
        n = len(feed.entries)
        feed.entries.append((f"{feed.name}-e{n}", f"Story {n} from {feed.name}"))
        feed.version += 1

    def churn(self, share: float = 0.1, new: int = 3) -> None:
        with self.lock:
            for feed in self.rand.sample(list(self.feeds.values()), max(1, int(len(self.feeds) * share))):
                for _ in range(new):
                    self._add_entry(feed)

    def heal(self) -> None:
        """Every faulty feed comes back, as some do after days of failure."""
        with self.lock:
            for feed in self.feeds.values():
                feed.fault = "ok"

    def url(self, name: str) -> str:
        host = self.server.hosts[hash(name) % 2]
        return self.server.url(f"/{name}.xml", host=host)

    def feeds_toml(self) -> str:
        return "".join(f'[[feed]]\nname = "{n}"\nurl = "{self.url(n)}"\n' for n in self.feeds)

    def _handler(self, name: str):  # type: ignore[no-untyped-def]
        def handle(request: Request) -> Route:
            with self.lock:
                feed = self.feeds[name]
                fault = feed.fault
                if fault == "flaky":
                    fault = "error500" if self.rand.random() < 0.5 else "ok"
                etag = f'"{name}-v{feed.version}"'
                if fault == "error500":
                    return Route(body=b"oops", status=500)
                if fault == "slow":
                    return Route(body=rss(feed, "http://x.example"), delay=5.0)
                if fault == "malformed":
                    # Cut off mid-document: the one entry before the cut is recoverable.
                    self.served.add((name, f"{name}-cut"))
                    return Route(body=f"<rss><channel><item><guid isPermaLink='false'>{name}-cut"
                                      "</guid><title>Cut off</title></item>".encode())
                if fault == "oversized":
                    return Route(body=b"<rss>" + b" " * (300 * 1024) + b"</rss>")
                if fault == "loop":
                    return Route(redirect_to=f"/{name}.xml", status=302)
                if fault == "gone":
                    return Route(body=b"gone", status=410)
                if fault == "new_etag":
                    etag = f'"{name}-{self.rand.random()}"'
                body = rss(feed, "http://x.example")
                if request.header("if-none-match") != etag:
                    self.served.update((name, guid) for guid, _ in feed.entries)
                return Route(body=body, etag=etag)

        return handle
