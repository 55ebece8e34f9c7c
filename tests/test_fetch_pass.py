"""The fetch pass stores feeds in groups, one commit per group (service.GROUP_ENTRIES,
GROUP_SECONDS): a slow feed does not hold back what the others brought, and a stop
stores what came in whole while the abandoned feed stays as it was."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from feedserver import FeedServer
from world import FeedWorld

from aggregator.config import load_config
from aggregator.instance import Instance
from aggregator.service import GROUP_SECONDS, fetch_pass
from aggregator.store.sqlite import SQLiteStore
from aggregator.types import PassSummary

SETTINGS = """
[daemon]
stop_timeout = "1s"
"""
SLOW = "feed0000"  # the world's "slow" fault: 5 s before its status line


def stored_feeds(db: Path) -> set[str]:
    if not db.exists():
        return set()
    with sqlite3.connect(db) as c:
        try:
            return {r[0] for r in c.execute(
                "SELECT DISTINCT f.name FROM item_sources s JOIN feeds f ON f.id = s.feed_id")}
        except sqlite3.OperationalError:
            return set()  # the pass is still creating the schema


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def start_pass(home: Path, stop: threading.Event | None = None) -> tuple[threading.Thread,
                                                                          list[PassSummary]]:
    config = load_config(Instance(home))
    out: list[PassSummary] = []

    def run() -> None:
        with SQLiteStore(home / "var" / "aggregator.db") as store:
            out.append(fetch_pass(config, store, all_feeds=True, classify=False, stop=stop))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_feeds_that_answered_are_stored_while_a_slow_one_is_still_coming(
        instance_dir: Path) -> None:
    with FeedServer() as server:
        world = FeedWorld(server, 4, faults={"slow": 1})
        (instance_dir / "config" / "feeds.toml").write_text(world.feeds_toml())
        db = instance_dir / "var" / "aggregator.db"
        thread, out = start_pass(instance_dir)
        fast = set(world.feeds) - {SLOW}
        # Committed (another connection sees them) within GROUP_SECONDS and a poll or two,
        # not when the pass ends.
        assert wait_for(lambda: stored_feeds(db) == fast,
                        timeout=3 + GROUP_SECONDS)
        assert thread.is_alive()
        thread.join(timeout=30)
    assert stored_feeds(db) == set(world.feeds)
    assert out[0].feeds_ok == 4 and out[0].new_items == 4 * 5


def test_a_stop_stores_what_came_and_leaves_the_abandoned_feed_due(instance_dir: Path) -> None:
    (instance_dir / "config" / "aggregator.toml").write_text(SETTINGS)
    with FeedServer() as server:
        world = FeedWorld(server, 4, faults={"slow": 1})
        (instance_dir / "config" / "feeds.toml").write_text(world.feeds_toml())
        db = instance_dir / "var" / "aggregator.db"
        stop = threading.Event()
        thread, out = start_pass(instance_dir, stop)
        assert wait_for(lambda: len(stored_feeds(db)) == 3, timeout=4)
        stop.set()
        started = time.monotonic()
        thread.join(timeout=30)
        # stop_timeout (1 s) for the slow fetch, then it is abandoned.
        assert time.monotonic() - started < 3
    assert stored_feeds(db) == set(world.feeds) - {SLOW}
    assert out[0].feeds_ok == 3 and out[0].new_items == 3 * 5
    with sqlite3.connect(db) as c:
        state = c.execute("SELECT last_fetched_at, next_fetch_at FROM feeds WHERE name = ?",
                          (SLOW,)).fetchone()
    assert state == (None, None)  # never fetched as far as the store knows: due now
