"""Memory of a long daemon run: peak RSS after warm-up and at the end of many passes.

A loopback world of 1,000 feeds (bench/feedworld.py, its own process) gets churn between
passes; the daemon (a real `aggregator daemon` process, default model loaded) fetches,
stores and classifies throughout. We sample its VmRSS and VmHWM from /proc once the cold
ingest is done and classified, and again after the last pass. Goal: growth under 10%.

The model is trained before the daemon starts (as `aggregator train` would), so the
daemon only loads it: a training run inside the warm-up would set a peak that hides growth.
The daemon's log goes to a file: a pipe nobody reads fills up and blocks its logging.

    .venv/bin/python -m bench.bench_daemon_memory [--feeds 1000] [--passes 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.feedworld import control, world_process

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = """
[daemon]
poll_interval = "1s"
batch_size = 500

[fetch]
interval = "5s"
min_interval = "2s"
max_interval = "30s"
jitter = 0.0
"""


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as c:
            return int(c.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return -1


def passes(db: Path) -> int:
    """Fetch attempts recorded so far: a proxy for passes done (feeds x passes). The highest
    id, not count(*): each feed's history is bounded, so the count stops growing."""
    return count(db, "SELECT coalesce(max(id), 0) FROM fetch_attempts")


def reached(db: Path, target: int) -> Callable[[], bool]:
    return lambda: passes(db) >= target


def wait(check: Callable[[], bool], proc: subprocess.Popen[str], what: str,
         timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited ({proc.returncode}) during {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not finish in {timeout:.0f} s")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--churn", type=float, default=0.1)
    args = parser.parse_args()

    home = ROOT / "var" / "bench" / "daemon-memory"
    shutil.rmtree(home, ignore_errors=True)
    (home / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "taxonomy.toml", home / "config")
    (home / "config" / "aggregator.toml").write_text(SETTINGS)
    models = ROOT / "var" / "models"
    if models.exists():
        shutil.copytree(models, home / "var" / "models")
    else:
        from aggregator.config import load_config
        from aggregator.instance import Instance
        from aggregator.service import train_default

        (home / "config" / "feeds.toml").write_text("")
        train_default(load_config(Instance(home)))
    db = home / "var" / "aggregator.db"
    log = home / "daemon.stderr"

    with world_process(args.feeds, args.hosts) as port:
        urls = control(port, "_urls").split()
        (home / "config" / "feeds.toml").write_text("".join(
            f'[[feed]]\nname = "f{i:05d}"\nurl = "{u}"\n' for i, u in enumerate(urls)))
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "aggregator", "--home", str(home), "daemon",
                 "--log-format", "json"], stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        try:
            # Warm-up: the cold ingest stored and classified.
            wait(lambda: (count(db, "SELECT count(DISTINCT feed_id) FROM fetch_attempts")
                          >= len(urls)
                          and count(db, "SELECT count(*) FROM items WHERE needs_classify = 1")
                          == 0), proc, "warm-up", 900)
            items_start = count(db, "SELECT count(*) FROM items")
            rss_start, hwm_start = memory(proc.pid)
            attempts_start = passes(db)
            started = time.monotonic()
            for n in range(args.passes):
                control(port, f"_tick?churn={args.churn}")
                wait(reached(db, passes(db) + len(urls)), proc, f"pass {n + 1}", 300)
            wait(lambda: count(db, "SELECT count(*) FROM items WHERE needs_classify = 1") == 0,
                 proc, "the last classification", 300)
            rss_end, hwm_end = memory(proc.pid)
            elapsed = time.monotonic() - started
            done = (passes(db) - attempts_start) / len(urls)
            items_end = count(db, "SELECT count(*) FROM items")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    errors = [line for line in log.read_text().splitlines() if '"level": "error"' in line]
    growth = (hwm_end - hwm_start) / hwm_start * 100
    print(json.dumps({
        "feeds": len(urls), "passes": round(done, 1), "seconds": round(elapsed, 1),
        "items_start": items_start, "items_end": items_end,
        "rss_start_mib": round(rss_start / 1024, 1), "rss_end_mib": round(rss_end / 1024, 1),
        "peak_rss_start_mib": round(hwm_start / 1024, 1),
        "peak_rss_end_mib": round(hwm_end / 1024, 1),
        "peak_growth_pct": round(growth, 1), "goal": "peak growth under 10%",
        "rss_growth_pct": round((rss_end - rss_start) / rss_start * 100, 1),
        "errors_logged": len(errors), "met": growth < 10}, indent=2))


if __name__ == "__main__":
    main()
