"""The daemon through faults that last: the database locked by another process for longer
than the busy timeout, the disk full, a job that fails every time, a model that changes
under it. A pass that fails is logged in one line, rolls back whole, and the next pass
retries; the daemon never crashes and still stops with exit 0 on SIGTERM."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer
from world import FeedWorld

from aggregator.config import load_config
from aggregator.daemon import REPEAT_LOG_EVERY, Daemon
from aggregator.errors import StoreError
from aggregator.instance import Instance
from aggregator.service import classify_pending, fetch_pass, load_classifier
from aggregator.store.sqlite import SQLiteStore

# total_timeout is long on purpose: a pass that dies after claiming its feeds leaves them
# leased for 2 x 2 x 60 s; the daemon must give them back itself for the retry to come soon.
SETTINGS = """
[database]
busy_timeout = "1s"
{database}

[daemon]
poll_interval = "1s"
stop_timeout = "2s"
batch_size = 50

[fetch]
interval = "2s"
min_interval = "1s"
read_timeout = "2s"
total_timeout = "60s"
"""

FEEDS = 30


# -- helpers ---------------------------------------------------------------------------


class Daemonized:
    """`aggregator daemon` as a real process, its JSON log lines in a file (a pipe nobody
    reads would fill and block the daemon's logging)."""

    def __init__(self, home: Path) -> None:
        self.log = home.parent / "daemon.stderr"
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aggregator", "--home", str(home), "daemon",
                 "--log-format", "json"], stdout=subprocess.DEVNULL, stderr=err, text=True)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.lines():
            with contextlib.suppress(ValueError):
                e = json.loads(line)
                if name is None or e["event"] == name:
                    out.append(e)
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not met in {timeout} s")


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as c:
        return c.execute(sql).fetchall()


def scalar(db: Path, sql: str) -> int:
    try:
        return int(query(db, sql)[0][0])
    except sqlite3.OperationalError:
        return -1  # not created yet


def stored(db: Path) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in query(db, "SELECT f.name, s.entry_key FROM item_sources s "
                                            "JOIN feeds f ON f.id = s.feed_id")]


def check_whole(c: sqlite3.Connection) -> None:
    """Nothing half-written: the file is sound, every item has its sources, every source
    its item."""
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert c.execute("SELECT count(*) FROM items i WHERE NOT EXISTS "
                     "(SELECT 1 FROM item_sources s WHERE s.item_id = i.id)").fetchone()[0] == 0
    assert c.execute("SELECT count(*) FROM item_sources s WHERE NOT EXISTS "
                     "(SELECT 1 FROM items i WHERE i.id = s.item_id)").fetchone()[0] == 0


def all_stored_once(db: Path, world: FeedWorld) -> bool:
    rows = stored(db)
    assert len(rows) == len(set(rows)), "an entry was stored twice"
    return set(rows) == world.served


def assert_clean_log(daemon: Daemonized) -> None:
    """One JSON line per event: no bare text (APScheduler's chatter), no traceback."""
    for line in daemon.lines():
        assert json.loads(line).get("exception") is None, line


@pytest.fixture
def world(instance_with_model: Path) -> Iterator[tuple[Path, FeedWorld]]:
    home = instance_with_model
    (home / "config" / "aggregator.toml").write_text(SETTINGS.format(database=""))
    with FeedServer() as server:
        world = FeedWorld(server, FEEDS, entries=4)
        (home / "config" / "feeds.toml").write_text(world.feeds_toml())
        yield home, world


def warm(daemon: Daemonized, db: Path, world: FeedWorld) -> None:
    wait_for(lambda: len(world.served) == FEEDS * 4
             and scalar(db, "SELECT count(*) FROM item_sources") == FEEDS * 4,
             what="the cold ingest")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM items WHERE needs_classify = 1") == 0,
             what="the first classification")


# -- the database locked ---------------------------------------------------------------


def test_a_locked_database_fails_the_pass_in_one_line_and_the_next_pass_retries(
        world: tuple[Path, FeedWorld]) -> None:
    home, feeds = world
    db = home / "var" / "aggregator.db"
    daemon = Daemonized(home)
    try:
        warm(daemon, db, feeds)
        before = scalar(db, "SELECT count(*) FROM item_sources")
        # Another process takes the write lock and keeps it well past the 1 s busy timeout,
        # while every feed gets new entries.
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            feeds.churn(1.0)
            wait_for(lambda: any("locked" in e["error"] for e in daemon.events("poll failed")),
                     timeout=20, what="a logged poll failure")
            time.sleep(3)  # several more polls fail the same way
            assert daemon.alive()
            assert scalar(db, "SELECT count(*) FROM item_sources") == before
            other.execute("ROLLBACK")
        wait_for(lambda: all_stored_once(db, feeds), timeout=30, what="the retry")
        wait_for(lambda: bool(daemon.events("poll recovered")), timeout=10,
                 what="the recovery logged")
    finally:
        code = daemon.stop()
    assert code == 0
    assert daemon.events()[-1]["event"] == "stopped"
    failed = daemon.events("poll failed")
    # A fault repeating every second is one line, not one per poll.
    assert len(failed) == 1, failed
    assert failed[0]["level"] == "error" and "database is locked" in failed[0]["error"]
    assert daemon.events("poll recovered")[0]["failures"] >= 2
    assert_clean_log(daemon)
    with contextlib.closing(sqlite3.connect(db)) as c:
        check_whole(c)
    assert all_stored_once(db, feeds)


# -- the disk full ---------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path``: a disk that really fills, without filling ours."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Write a ballast file until the disk is full, then give back ``leave`` bytes."""
    ballast = disk / "ballast"
    with ballast.open("wb") as f:
        chunk = b"\0" * 65536
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
        size = f.tell()
    # What a partial last write got in is counted by the file system, not f.tell().
    size = ballast.stat().st_size
    os.truncate(ballast, max(0, size - leave))
    return ballast


def test_a_full_disk_fails_the_pass_cleanly_and_the_pass_after_freeing_space_stores_all(
        world: tuple[Path, FeedWorld], tmp_path: Path) -> None:
    home, feeds = world
    with small_disk(tmp_path / "disk", "16m") as disk:
        db = disk / "aggregator.db"
        (home / "config" / "aggregator.toml").write_text(
            SETTINGS.format(database=f'url = "sqlite:///{db}"'))
        daemon = Daemonized(home)
        try:
            warm(daemon, db, feeds)
            # A reader stays open throughout (as a user's query might): it keeps the WAL
            # file, and lets us look at the database while the disk is full.
            reader = sqlite3.connect(db, isolation_level=None)
            reader.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            # Room for the claim of the due feeds and a feed or two, not for all the new
            # entries: the pass dies half-way, holding leases on the feeds it claimed.
            ballast = fill(disk, leave=400 * 1024)
            feeds.churn(1.0, new=25)
            wait_for(lambda: any("full" in e["error"] for e in
                                 daemon.events("poll failed") + daemon.events("classify failed")),
                     timeout=30, what="a logged disk-full failure")
            time.sleep(3)  # more passes fail the same way
            assert daemon.alive()
            check_whole(reader)
            ballast.unlink()
            wait_for(lambda: all_stored_once(db, feeds), timeout=30,
                     what="the retry after freeing space")
            wait_for(lambda: scalar(db, "SELECT count(*) FROM items WHERE needs_classify = 1")
                     == 0, timeout=30, what="classification after freeing space")
            check_whole(reader)
            reader.close()
        finally:
            code = daemon.stop()
        assert code == 0
        assert daemon.events()[-1]["event"] == "stopped"
        failed = daemon.events("poll failed")
        assert failed and all(e["level"] == "error" for e in failed)
        assert any("database or disk is full" in e["error"] for e in failed), failed
        assert daemon.events("poll recovered")
        assert_clean_log(daemon)
        with contextlib.closing(sqlite3.connect(db)) as c:
            check_whole(c)
            # Nothing is left leased: the failed pass's feeds were given back.
            assert c.execute("SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL"
                             ).fetchone()[0] == 0
        assert all_stored_once(db, feeds)


# -- in-process: the guard, the model, the stop ----------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.getMessage() == name]


def fields(record: logging.LogRecord) -> dict[str, Any]:
    return dict(getattr(record, "fields", {}))


@pytest.fixture
def records() -> Iterator[Records]:
    logger = logging.getLogger("aggregator")
    handler = Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_job_failing_every_run_is_logged_once_per_window_then_its_recovery(
        instance_dir: Path, records: Records) -> None:
    clock = Clock()
    daemon = Daemon(Instance(instance_dir), clock=clock)
    broken = {"on": True}

    def job() -> None:
        if broken["on"]:
            raise StoreError("database /x is busy or unwritable: database is locked")

    def crash() -> None:
        raise KeyError("surprise")

    guarded = daemon._guard("poll", job)
    runs = 0
    # Every 10 s for an hour: 360 failures.
    while clock.now < datetime(2026, 11, 20, 1, tzinfo=UTC):
        guarded()
        runs += 1
        clock.now += timedelta(seconds=10)
    failed = records.named("poll failed")
    assert timedelta(minutes=10) == REPEAT_LOG_EVERY
    # The first at once, then one every 10 minutes with the count so far.
    assert [fields(r).get("failures") for r in failed] == [None, 61, 121, 181, 241, 301]
    assert all(not r.exc_info and r.levelno == logging.ERROR for r in failed)
    broken["on"] = False
    guarded()
    guarded()
    recovered = records.named("poll recovered")
    assert len(recovered) == 1 and fields(recovered[0])["failures"] == runs == 360
    # An unexpected exception: its traceback once, then the same one-line rate.
    crashing = daemon._guard("maintenance", crash)
    for _ in range(5):
        crashing()
    crashed = records.named("maintenance failed")
    assert len(crashed) == 1 and crashed[0].exc_info


def test_the_model_is_loaded_once_and_again_only_when_the_current_version_moves(
        instance_with_model: Path, records: Records) -> None:
    from classifiers.model_store import current_version, use_version

    home = instance_with_model
    models = home / "var" / "models"
    first = current_version(models)
    assert first is not None
    with FeedServer() as server:
        world = FeedWorld(server, 5, entries=3)
        (home / "config" / "feeds.toml").write_text(world.feeds_toml())
        config = load_config(Instance(home))
        daemon = Daemon(Instance(home))
        db = home / "var" / "aggregator.db"

        def ingest() -> None:
            world.churn(1.0)
            with SQLiteStore(db) as store:
                fetch_pass(config, store, all_feeds=True, classify=False)

        def versions() -> set[str]:
            return {r[0] for r in query(db, "SELECT DISTINCT model_version FROM item_tags "
                                            "WHERE source = 'model'")}

        ingest()
        daemon.classify()
        assert versions() == {first}
        # Polls after this one use the model in memory: its files may go (the pointer
        # stays), and classification goes on, nothing read again.
        shutil.move(models / first, home / "var" / "moved")
        for _ in range(3):
            ingest()
            daemon.classify()
        assert scalar(db, "SELECT count(*) FROM items WHERE needs_classify = 1") == 0
        assert len(records.named("model loaded")) == 1
        # A new current version (as 'aggregator models use' or a retrain makes) is loaded.
        second = first + "-b"
        shutil.move(home / "var" / "moved", models / second)
        doc = json.loads((models / second / "model.json").read_text())
        doc["version"] = second
        (models / second / "model.json").write_text(json.dumps(doc))
        use_version(models, second)
        ingest()
        daemon.classify()
        loaded = records.named("model loaded")
        assert [fields(r)["version"] for r in loaded] == [first, second]
        assert second in versions()


def test_classification_stops_between_batches_when_the_daemon_stops(
        instance_with_model: Path) -> None:
    home = instance_with_model
    with FeedServer() as server:
        world = FeedWorld(server, 10, entries=10)
        (home / "config" / "feeds.toml").write_text(world.feeds_toml())
        config = load_config(Instance(home))
        stop = threading.Event()
        with SQLiteStore(home / "var" / "aggregator.db") as store:
            fetch_pass(config, store, all_feeds=True, classify=False)
            classifier = load_classifier(config)
            # SIGTERM arrives while the first batch is being tagged.
            classify_pending(store, classifier, batch_size=20, stop=stop,
                             progress=lambda *_: stop.set())
            assert len(store.items_to_classify(1000)) == 100 - 20
        # What was tagged is committed (batches share commits, a stop ends the last one).
        db = home / "var" / "aggregator.db"
        assert scalar(db, "SELECT count(*) FROM items WHERE needs_classify = 0") == 20
        assert scalar(db, "SELECT count(DISTINCT item_id) FROM item_tags") == 20


def test_a_reload_keeps_the_next_run_of_the_daily_jobs(instance_dir: Path) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    daemon = Daemon(Instance(instance_dir))
    daemon.scheduler = BackgroundScheduler(timezone=UTC)
    daemon._schedule()
    daemon.scheduler.start(paused=True)  # next run times computed, nothing run
    try:
        due = {j: daemon.scheduler.get_job(j).next_run_time for j in ("retrain", "maintenance")}
        time.sleep(1.1)
        # SIGHUPs every second would otherwise push the daily jobs a second further each.
        for _ in range(3):
            daemon.reload()
        after = {j: daemon.scheduler.get_job(j).next_run_time for j in ("retrain", "maintenance")}
        assert after == due
        # A shorter interval in the new config still takes effect at once.
        (instance_dir / "config" / "aggregator.toml").write_text('[daemon]\nretrain_every = "1h"\n')
        daemon.reload()
        retrain = daemon.scheduler.get_job("retrain").next_run_time
        assert retrain <= datetime.now(UTC) + timedelta(hours=1)
    finally:
        daemon.scheduler.shutdown(wait=False)


def test_connections_opening_a_new_database_at_once_all_get_it_migrated(tmp_path: Path) -> None:
    # The daemon's jobs each open their own connection: at first start, or after an upgrade
    # brings a migration, they race to set up the same file.
    for trial in range(5):
        path = tmp_path / f"new{trial}.db"
        barrier = threading.Barrier(6)
        errors: list[str] = []

        def open_it(path: Path = path, barrier: threading.Barrier = barrier,
                    errors: list[str] = errors) -> None:
            barrier.wait()
            try:
                SQLiteStore(path, timeout=10).close()
            except StoreError as e:
                errors.append(str(e))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with contextlib.closing(sqlite3.connect(path)) as c:
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            applied = [r[0] for r in c.execute("SELECT version FROM schema_migrations")]
            assert len(applied) == len(set(applied)) >= 2
