"""A daemon's pass in claim mode (``claim_owner``): ``[daemon] claim_size`` feeds in flight,
one more claimed as each finishes. A slow feed holds up no other, the daemon never holds
more than its window, and a pass ends with what was due when it began. On both engines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer
from pgschema import pg_url  # noqa: F401  (the fixture)
from world import WorldFeed, rss

from aggregator.config import load_config
from aggregator.instance import Instance
from aggregator.service import fetch_pass
from aggregator.store import open_store

OWNER = "here:1"
SETTINGS = """
[database]
url = "{url}"

[daemon]
claim_size = {claim}

[fetch]
interval = "1h"
min_interval = "1h"
max_interval = "2h"
jitter = 0
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, instance_dir: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{instance_dir / 'var' / 'aggregator.db'}"
    return str(request.getfixturevalue("pg_url"))


def leased(url: str, owner: str) -> int:
    """Feeds ``owner`` holds a lease on, read on a connection of its own."""
    sql = "SELECT count(*) FROM feeds WHERE lease_owner = '" + owner + "'"
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite:///"):]) as c:
            return int(c.execute(sql).fetchone()[0])
    import psycopg

    with psycopg.connect(url) as c:
        row = c.execute(sql).fetchone()
        return int(row[0]) if row else 0


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def world(server: FeedServer, home: Path, url: str, claim: int, feeds: int,
          slow: float = 0.0) -> list[str]:
    """``feeds`` feeds of two entries each; the first answers after ``slow`` seconds."""
    names = [f"feed{n:03d}" for n in range(feeds)]
    for n, name in enumerate(names):
        feed = WorldFeed(name, entries=[(f"{name}-e{k}", f"Story {k} of {name}") for k in range(2)])
        server.route(f"/{name}.xml", body=rss(feed, "http://x.example"), etag=f'"{name}"',
                     delay=slow if n == 0 else 0.0)
    (home / "config" / "aggregator.toml").write_text(SETTINGS.format(url=url, claim=claim))
    (home / "config" / "feeds.toml").write_text("".join(
        f'[[feed]]\nname = "{name}"\nurl = "{server.url(f"/{name}.xml", server.hosts[n % 4])}"\n'
        for n, name in enumerate(names)))
    return names


def test_a_slow_feed_holds_up_no_other_and_the_daemon_holds_only_its_window(
        instance_dir: Path, url: str, server: FeedServer) -> None:
    names = world(server, instance_dir, url, claim=3, feeds=24, slow=1.0)
    config = load_config(Instance(instance_dir))
    seen: list[tuple[str, int]] = []  # (feed, feeds leased to us once it was stored)

    def on_event(name: str, fields: dict[str, object]) -> None:
        seen.append((str(fields["feed"]), leased(url, OWNER)))

    with open_store(url) as store:
        summary = fetch_pass(config, store, classify=False, limit=3, claim_owner=OWNER,
                             events=on_event)
        assert leased(url, OWNER) == 0

    # One pass fetched every due feed, three at a time, refilled as each finished: the
    # slow feed (claimed first) came last, after all the others had been claimed behind it.
    assert summary.feeds_ok == len(names) and summary.new_items == 2 * len(names)
    assert sorted(f for f, _ in seen) == names
    assert seen[-1][0] == names[0]
    assert max(n for _, n in seen) <= 3
    assert server.hits() == len(names)


def test_a_pass_takes_only_what_was_due_when_it_began(
        instance_dir: Path, url: str, server: FeedServer) -> None:
    """Half the feeds were fetched at 12:00 (due again at 13:00), half never. A pass from
    12:00 whose clock runs 5 minutes at each reading is past 13:00 well before it ends: it
    still takes only the never-fetched half, each once, and ends."""
    names = world(server, instance_dir, url, claim=2, feeds=16)
    config = load_config(Instance(instance_dir))
    start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    readings = 0

    def clock() -> datetime:
        nonlocal readings
        readings += 1
        return start + timedelta(minutes=5 * readings)

    fetched: list[str] = []
    with open_store(url) as store:
        fetch_pass(config, store, names=names[::2], classify=False, now=lambda: start)
        assert server.hits() == 8
        summary = fetch_pass(config, store, classify=False, limit=2, claim_owner=OWNER,
                             now=clock, events=lambda _, f: fetched.append(str(f["feed"])))
    assert clock() > start + timedelta(hours=2)
    assert sorted(fetched) == names[1::2] and summary.feeds_ok == 8
    assert server.hits() == 16
