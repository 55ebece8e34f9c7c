"""The daemon as a real process: it fetches on its own, stops cleanly on SIGTERM, refuses a
second instance, reloads on SIGHUP, and survives kill -9 at any point."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from feedserver import FeedServer
from world import FeedWorld

SETTINGS = """
[daemon]
poll_interval = "1s"
stop_timeout = "2s"
batch_size = 50

[fetch]
interval = "2s"
min_interval = "1s"
read_timeout = "2s"
total_timeout = "3s"
"""


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--home", str(home), "daemon", "--log-format", "json",
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def db(home: Path) -> Path:
    return home / "var" / "aggregator.db"


def count(home: Path, sql: str) -> int:
    if not db(home).exists():
        return 0
    try:
        with sqlite3.connect(db(home), timeout=5) as c:
            return int(c.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # tables not there yet


def stored(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db(home)) as c:
        return c.execute("SELECT f.name, s.entry_key FROM item_sources s "
                         "JOIN feeds f ON f.id = s.feed_id").fetchall()


@pytest.fixture
def world_home(instance_with_model: Path) -> Iterator[tuple[Path, FeedWorld]]:
    (instance_with_model / "config" / "aggregator.toml").write_text(SETTINGS)
    with FeedServer() as server:
        world = FeedWorld(server, 30, entries=4)
        (instance_with_model / "config" / "feeds.toml").write_text(world.feeds_toml())
        yield instance_with_model, world


def events(stderr: str) -> list[dict]:
    out = []
    for line in stderr.splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def test_fetches_classifies_and_stops_cleanly_on_sigterm(world_home: tuple[Path, FeedWorld]) -> None:
    home, world = world_home
    proc = start(home)
    try:
        wait_for(lambda: count(home, "SELECT count(*) FROM items") == 30 * 4)
        wait_for(lambda: count(home, "SELECT count(*) FROM items WHERE needs_classify = 1") == 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    names = [e["event"] for e in events(err)]
    assert names[0] == "daemon started" and names[-1] == "stopped"
    assert "feed ok" in names and "classified" in names
    assert len(stored(home)) == len(set(stored(home))) == len(world.served)
    assert (home / "var" / "log" / "aggregator.log").read_text().strip()
    # The lock is released: status says so.
    status = subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), "status",
                             "--format", "json"], capture_output=True, text=True)
    report = json.loads(status.stdout)
    assert report["daemon"]["running"] is False
    assert report["feeds"]["active"] == 30


def test_a_second_daemon_on_the_same_database_is_refused(world_home: tuple[Path, FeedWorld]) -> None:
    home, _ = world_home
    first = start(home)
    try:
        wait_for(lambda: count(home, "SELECT count(*) FROM items") > 0)
        second = start(home)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert f"another daemon (PID {first.pid}) is running" in err
        status = subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), "status",
                                 "--format", "json"], capture_output=True, text=True)
        report = json.loads(status.stdout)["daemon"]
        assert report["pid"] == first.pid
        assert [d["owner"].rsplit(":", 1)[1] for d in report["daemons"]] == [str(first.pid)]
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


def test_sighup_reloads_and_keeps_the_old_config_when_the_new_one_is_bad(
        world_home: tuple[Path, FeedWorld]) -> None:
    home, world = world_home
    feeds_file = home / "config" / "feeds.toml"
    proc = start(home)
    try:
        wait_for(lambda: count(home, "SELECT count(*) FROM items") == 30 * 4)
        feeds_file.write_text("[[feed]]\nname = 'broken'\n")  # no url
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert proc.poll() is None, "a bad config on reload must not stop the daemon"
        feeds_file.write_text(world.feeds_toml() + '[[feed]]\nname = "late"\nurl = "'
                              + world.url("feed0000").replace("feed0000", "feed0001") + '"\n')
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: count(home, "SELECT count(*) FROM feeds WHERE name = 'late' "
                                     "AND last_success_at IS NOT NULL") == 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    names = [e["event"] for e in events(err)]
    assert "reload failed, keeping the old config" in names
    assert "config reloaded" in names
    failed = next(e for e in events(err) if e["event"].startswith("reload failed"))
    assert "config/feeds.toml: feed[0] (broken).url" in failed["error"]


def test_kill_9_at_random_points_then_restart_loses_and_duplicates_nothing(
        world_home: tuple[Path, FeedWorld]) -> None:
    home, world = world_home
    rand = random.Random(3)
    for _ in range(4):
        world.churn(0.3)
        proc = start(home)
        time.sleep(rand.uniform(0.8, 2.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        with sqlite3.connect(db(home)) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # A clean run to the end: every feed fetched since the last churn, every entry served
    # stored, once.
    world.churn(0.3)
    proc = start(home)
    try:
        wait_for(lambda: count(home, "SELECT count(*) FROM feeds WHERE last_success_at IS NULL "
                                     "OR consecutive_failures > 0") == 0
                 and count(home, "SELECT count(*) FROM item_sources") >= len(world.served) > 0)
        wait_for(lambda: count(home, "SELECT count(*) FROM items WHERE needs_classify = 1") == 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    rows = stored(home)
    assert len(rows) == len(set(rows))
    assert set(rows) == world.served
