"""Three daemons, three homes (as on three machines), one PostgreSQL database, a loopback
world of 1,000 feeds that keep publishing; one daemon is killed with SIGKILL mid-run.

At the end: every entry the world served is stored exactly once, every feed was fetched
(the dead daemon's leased feeds too, once their lease ran out), the work was shared, and
the digest that was due went out once, though each daemon tried to send it at start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer
from pgschema import pg_url  # noqa: F401  (the fixture, through ``instance``)
from smtpserver import SmtpServer
from world import FeedWorld

FEEDS = 1000
DAEMONS = 3

SETTINGS = """
[database]
url = "{url}"

[daemon]
poll_interval = "1s"
stop_timeout = "2s"
batch_size = 50

[fetch]
interval = "8s"
min_interval = "4s"
max_interval = "8s"
read_timeout = "2s"
total_timeout = "3s"
per_host = 8

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Digest <digest@aggregator.example>"
timeout = "5s"

[[digest]]
name = "desk"
to = ["desk@example.org"]
at = "{at}"
timezone = "UTC"
skip_empty = false
"""


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"not met in {timeout:.0f}s: {what}")


def one(url: str, sql: str, args: tuple[Any, ...] = ()) -> Any:
    import psycopg

    with psycopg.connect(url) as c:
        try:
            row = c.execute(sql, args).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0  # the first daemon is still migrating
        return row[0] if row else None


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as c:
        return c.execute(sql).fetchall()


def start(home: Path) -> subprocess.Popen[bytes]:
    log = open(home / "daemon.jsonl", "wb")  # noqa: SIM115  (the process owns it)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--home", str(home), "daemon", "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=log, env=env)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every daemon still running and wait for each; never leave one behind."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            raise


def events(home: Path) -> list[dict[str, Any]]:
    out = []
    for line in (home / "daemon.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


@pytest.fixture
def instance(request: pytest.FixtureRequest) -> tuple[Path, str]:
    """An instance with the default model already trained, and a fresh PostgreSQL schema."""
    url = str(request.getfixturevalue("pg_url"))
    return Path(request.getfixturevalue("instance_with_model")), url


def test_three_daemons_share_one_database_and_survive_a_kill(
        instance: tuple[Path, str], tmp_path: Path) -> None:
    instance_with_model, db = instance
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%H:%M")  # due now
    procs: list[subprocess.Popen[bytes]] = []
    with FeedServer() as server, SmtpServer() as smtp:
        world = FeedWorld(server, FEEDS, entries=2)
        homes = []
        for n in range(DAEMONS):
            home = tmp_path / f"machine{n}"
            shutil.copytree(instance_with_model, home)
            (home / "config" / "aggregator.toml").write_text(
                SETTINGS.format(url=db, smtp_port=smtp.port, at=at))
            (home / "config" / "feeds.toml").write_text(world.feeds_toml())
            homes.append(home)
        try:
            procs = [start(home) for home in homes]
            fetched = lambda: int(one(db, "SELECT count(*) FROM feeds "  # noqa: E731
                                              "WHERE last_fetched_at IS NOT NULL") or 0)
            wait_for(lambda: fetched() >= FEEDS // 5, 60, "a fifth of the feeds fetched")
            wait_for(lambda: len(smtp.received) >= 1, 30, "the due digest sent")
            # Kill one mid-run, holding leases: its feeds must come back to the others.
            victim = procs[1]
            owner_like = f"%:{victim.pid}"
            world.churn(0.2, new=2)
            wait_for(lambda: one(db, "SELECT count(*) FROM feeds WHERE lease_owner LIKE %s",
                                 (owner_like,)) > 0, 30, "the victim holding leases")
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            killed_at = datetime.now(UTC)
            orphaned = {r[0] for r in rows(
                db, f"SELECT name FROM feeds WHERE lease_owner LIKE '{owner_like}'")}
            # The world keeps publishing for a while.
            for _ in range(8):
                world.churn(0.05, new=2)
                time.sleep(1.5)
            with world.lock:
                served = set(world.served)
            stored_count = lambda: int(one(db, "SELECT count(*) FROM item_sources") or 0)  # noqa: E731
            wait_for(lambda: stored_count() >= len(served) and fetched() == FEEDS, 120,
                     "every served entry stored and every feed fetched")
            # Leases the victim held were taken over once they ran out.
            wait_for(lambda: not orphaned or one(
                db, "SELECT count(*) FROM feeds WHERE name = ANY(%s) AND "
                        "last_fetched_at > %s", (list(orphaned), killed_at)) == len(orphaned),
                     60, "the dead daemon's feeds fetched by the others")
        finally:
            stop(procs)
        with world.lock:
            served = set(world.served)
        messages = list(smtp.received)

    assert [p.returncode for p in procs] == [0, -signal.SIGKILL, 0]
    stored = rows(db, "SELECT f.name, s.entry_key FROM item_sources s "
                          "JOIN feeds f ON f.id = s.feed_id")
    assert len(stored) == len(set(stored)), "an entry was stored twice"
    assert set(stored) == served
    assert one(db, "SELECT count(*) FROM items") == len(served)  # one item per entry
    assert one(db, "SELECT count(*) FROM feeds WHERE last_success_at IS NULL") == 0
    assert one(db, "SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL") == 0
    # The digest: tried by three daemons at start, sent once.
    assert len(messages) == 1, [m.message["Subject"] for m in messages]
    assert rows(db, "SELECT subscription, status FROM digest_runs") == [("desk", "sent")]
    # The fetching was shared: the survivors each fetched a good part.
    for home in (homes[0], homes[2]):
        ok = sum(1 for e in events(home) if e.get("event") in ("feed ok", "feed not_modified"))
        assert ok > FEEDS // 10, f"{home.name} fetched only {ok}"


SHARED = """
[database]
url = "{url}"

[daemon]
poll_interval = "1s"
stop_timeout = "2s"
claim_size = 5

[fetch]
interval = "1h"
min_interval = "1h"
max_interval = "2h"
read_timeout = "2s"
total_timeout = "2s"
concurrency = 20
per_host = 4
"""


def test_three_daemons_split_the_feeds_and_the_classifying(
        instance: tuple[Path, str], tmp_path: Path) -> None:
    """300 feeds due at once, each answering after 0.3-0.8 s, three daemons already
    running when they come due, one killed with SIGKILL while holding claims. Every entry
    is stored once, every feed fetched, hardly any twice, each survivor fetched a fair
    share, and no item was classified by two daemons."""
    from world import WorldFeed, rss

    instance_with_model, db = instance
    feeds = 300
    world = {f"feed{n:04d}": WorldFeed(f"feed{n:04d}") for n in range(feeds)}
    served = set()
    for feed in world.values():
        for k in range(2):
            feed.entries.append((f"{feed.name}-e{k}", f"Story {k} from {feed.name}"))
            served.add((feed.name, f"{feed.name}-e{k}"))
    procs: list[subprocess.Popen[bytes]] = []
    with FeedServer() as server:
        for n, feed in enumerate(world.values()):
            server.route(f"/{feed.name}.xml", body=rss(feed, "http://x.example"),
                         etag=f'"{feed.name}"', delay=0.3 + (n % 11) / 20)
        # (0.3-0.8 s a feed: with claims refilled as fetches finish, faster feeds let two
        # daemons drain the world before a busy machine's third has claimed anything)
        homes = []
        for n in range(DAEMONS):
            home = tmp_path / f"machine{n}"
            shutil.copytree(instance_with_model, home)
            (home / "config" / "aggregator.toml").write_text(SHARED.format(url=db))
            (home / "config" / "feeds.toml").write_text("")
            homes.append(home)
        toml = "".join(f'[[feed]]\nname = "{name}"\nurl = '
                       f'"{server.url(f"/{name}.xml", host=server.hosts[n % 4])}"\n'
                       for n, name in enumerate(world))
        try:
            procs = [start(home) for home in homes]
            # All three running (a heartbeat each) before any feed exists: then the feeds.
            wait_for(lambda: one(db, "SELECT count(*) FROM meta WHERE key LIKE 'daemon:%%'")
                     == DAEMONS, 60, "three daemons polling")
            for home, p in zip(homes, procs, strict=True):
                (home / "config" / "feeds.toml").write_text(toml)
                p.send_signal(signal.SIGHUP)
            fetched = lambda: int(one(db, "SELECT count(*) FROM feeds "  # noqa: E731
                                              "WHERE last_fetched_at IS NOT NULL") or 0)
            victim = procs[1]
            owner_like = f"%:{victim.pid}"
            wait_for(lambda: fetched() >= feeds // 10 and one(
                db, "SELECT count(*) FROM feeds WHERE lease_owner LIKE %s", (owner_like,)) > 0,
                60, "a tenth fetched, the victim holding claims")
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            stored = lambda: int(one(db, "SELECT count(*) FROM item_sources") or 0)  # noqa: E731
            pending = lambda: int(one(db, "SELECT count(*) FROM items "  # noqa: E731
                                              "WHERE needs_classify") or 0)
            wait_for(lambda: fetched() == feeds and stored() == len(served) and pending() == 0,
                     120, "every feed fetched, every entry stored and classified")
        finally:
            stop(procs)
        requests = server.hits()

    assert [p.returncode for p in procs] == [0, -signal.SIGKILL, 0]
    entries = rows(db, "SELECT f.name, s.entry_key FROM item_sources s "
                       "JOIN feeds f ON f.id = s.feed_id")
    assert len(entries) == len(set(entries)) and set(entries) == served
    assert one(db, "SELECT count(*) FROM items") == len(served)
    assert one(db, "SELECT count(*) FROM feeds WHERE last_success_at IS NULL") == 0
    assert requests <= 1.4 * feeds, f"{requests} requests for {feeds} feeds"
    shares = {}
    for home in homes:
        shares[home.name] = sum(1 for e in events(home)
                                if e.get("event") in ("feed ok", "feed not_modified"))
    for name in ("machine0", "machine2"):
        assert shares[name] >= feeds // 5, f"{name} fetched {shares[name]}: {shares}"
    # Each item classified by one daemon: the survivors' batches never overlap (the dead
    # one's uncommitted batch went back when its claim ran out).
    classified = {home.name: sum(e.get("items", 0) for e in events(home)
                                 if e.get("event") == "classified") for home in homes}
    assert sum(classified.values()) <= len(served), classified
    assert classified["machine0"] + classified["machine2"] > 0
