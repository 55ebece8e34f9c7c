"""Many passes over a feed world where feeds fail in every way: every entry that any feed
served is stored exactly once, nothing crashes, every failure is recorded on its feed."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedserver import FeedServer
from world import FeedWorld

from aggregator.config import load_config
from aggregator.instance import Instance
from aggregator.service import fetch_pass
from aggregator.store.sqlite import SQLiteStore

SETTINGS = """
[fetch]
read_timeout = "1s"
total_timeout = "2s"
connect_timeout = "1s"
max_body_size = "100KiB"
per_host = 4
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def stored_entries(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT f.name, s.entry_key FROM item_sources s "
                         "JOIN feeds f ON f.id = s.feed_id").fetchall()


def test_every_served_entry_is_stored_exactly_once(instance_dir: Path) -> None:
    (instance_dir / "config" / "aggregator.toml").write_text(SETTINGS)
    faults = {"error500": 4, "slow": 2, "malformed": 3, "oversized": 2, "loop": 2, "gone": 2,
              "flaky": 6, "new_etag": 3}
    with FeedServer() as server:
        world = FeedWorld(server, 60, faults=faults)
        (instance_dir / "config" / "feeds.toml").write_text(world.feeds_toml())
        initial = {name: f.fault for name, f in world.feeds.items()}
        config = load_config(Instance(instance_dir))
        clock = Clock()
        store = SQLiteStore(instance_dir / "var" / "aggregator.db")
        rand = random.Random(1)
        for n in range(8):
            world.churn(0.2)
            fetch_pass(config, store, now=clock, classify=False, rand=rand)
            if n == 0:
                first_pass = {f.name: f for f in store.feeds()}
            clock.now += timedelta(hours=3)
            if n == 4:
                # The broken ones come back, as some do after days of failure.
                world.heal()
                clock.now += timedelta(days=2)
        # Catch up: everything due is fetched once more with nothing new added.
        clock.now += timedelta(days=2)
        fetch_pass(config, store, all_feeds=True, now=clock, classify=False, rand=rand)
        feeds = {f.name: f for f in store.feeds()}
        store.close()

    stored = stored_entries(instance_dir / "var" / "aggregator.db")
    assert len(stored) == len(set(stored)), "an entry was stored twice"
    assert set(stored) == world.served
    # 410 disables at once, with the reason; the others recovered after healing.
    gone = [name for name in feeds if feeds[name].disabled_at]
    assert sorted(gone) == sorted(n for n, k in initial.items() if k == "gone")
    assert all("410" in (feeds[n].disabled_reason or "") for n in gone)
    with sqlite3.connect(instance_dir / "var" / "aggregator.db") as c:
        errors = dict(c.execute(
            "SELECT f.name, count(*) FROM fetch_attempts a JOIN feeds f ON f.id = a.feed_id "
            "WHERE a.error IS NOT NULL GROUP BY f.name").fetchall())
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # A malformed feed's recoverable entries are stored, and the feed says it was malformed.
    for name in (n for n, k in initial.items() if k == "malformed"):
        assert first_pass[name].malformed and (name, f"{name}-cut") in set(stored)
    for kind in ("error500", "slow", "oversized", "loop"):
        for name in (n for n, k in initial.items() if k == kind):
            assert errors.get(name, 0) >= 1, f"{kind} feed {name} has no failure recorded"
            assert feeds[name].last_error is None, "a healed feed should be ok again"
