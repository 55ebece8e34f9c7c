"""Fetch benchmark: our fetcher against lemon24/reader on the same loopback feed world.

Two passes, both "warm" (every feed already fetched once, so every answer is a 304):

1. on loopback, as fast as it goes;
2. with 50-150 ms of latency per response (50 ms plus up to 100), reader with 16
   worker threads (``update_feeds(workers=16)``).

Ours is the whole per-feed loop the service runs minus storage: plan, fetch (default
FetchSettings: 50 at once, 2 per host), needs_parse, decide, Fetcher creation included.
reader's is ``update_feeds(scheduled=False, workers=W)`` on a SQLite file. The server
counts the 304s, so each pass is checked to have asked every feed, conditionally.

reader is not a project dependency; it runs in its own venv, in a child process:

    python3 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install reader sgmllib3k

Run from the repository root:

    .venv/bin/python -m bench.bench_fetch [--feeds 500] [--hosts 50] [--passes 3]
        [--reader-python /work/bench-venv/bin/python] [--concurrency 50]

The feed world (bench/feedworld.py) runs in a third process, so the server does not
share a core with either client. Passes alternate between the two sides, so load from
elsewhere on the machine hits both; medians are reported.

Reading the latency figure: with latency L, a client with C requests in flight does at
most C / L feeds/s (Little's law). reader with 16 threads gets ~16 / L; ours is capped at
concurrency / L, and per_host=2 also caps it at 2 * hosts / L. So at the default
concurrency of 50 the ratio cannot pass ~50/16 ~= 3.1x (a bit more, as reader's threads
do not stay busy); ``--concurrency 100`` shows what a higher setting buys.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
READER_PYTHON = "/work/bench-venv/bin/python"
LATENCY = (0.05, 0.15)
GOALS = {"loopback": 1.5, "latency": 5.0}


# -- ours ------------------------------------------------------------------------------


class Ours:
    """Our per-feed loop minus storage, with the feeds' state kept between passes."""

    def __init__(self, urls: Sequence[str], settings_changes: dict[str, Any]) -> None:
        import random

        from aggregator.fetch import FetchSettings
        from aggregator.types import Feed, ParsedFeed

        self.settings = replace(FetchSettings(), **settings_changes)
        self.rand = random.Random(1)
        self.stub = ParsedFeed(title="t", link=None, entries=())  # parsing is not measured
        self.feeds = [Feed(id=i, name=f"f{i}", url=url) for i, url in enumerate(urls)]
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def run(self) -> float:
        """One pass; returns feeds/s."""
        return asyncio.run(self._pass())

    async def _pass(self) -> float:
        from aggregator.fetch import decide, needs_parse, plan
        from aggregator.fetch.http import Fetcher

        self.now += timedelta(minutes=30)  # passes stay within full_fetch_every: all conditional
        now, settings, feeds = self.now, self.settings, self.feeds
        started = time.perf_counter()
        requests = [plan(f, now, settings) for f in feeds]
        async with Fetcher(settings) as fetcher:
            async for response in fetcher.fetch_all(requests):
                feed = feeds[response.feed_id]
                parsed = self.stub if needs_parse(feed, response) else None
                feeds[feed.id] = decide(feed, response, parsed, 0, now, settings, self.rand).feed
        return len(feeds) / (time.perf_counter() - started)

    def errors(self) -> list[str]:
        return [f.last_error for f in self.feeds if f.last_error]


# -- reader, in its own venv -----------------------------------------------------------


def reader_child(args: argparse.Namespace) -> None:
    """Runs under the reader venv's Python: prints one JSON line with feeds/s."""
    import logging

    from reader import make_reader

    logging.getLogger("reader").setLevel(logging.ERROR)
    urls = args.urls.read_text().split()
    reader = make_reader(str(args.db))
    if args.cold:
        for url in urls:
            reader.add_feed(url, exist_ok=True)
    started = time.perf_counter()
    reader.update_feeds(scheduled=False, workers=args.workers)
    print(json.dumps({"rate": len(urls) / (time.perf_counter() - started)}), flush=True)


class Reader:
    """reader in a child process per pass (its venv is not ours); state in a SQLite file."""

    def __init__(self, python: str, urls: Sequence[str], workdir: Path) -> None:
        self.python = python
        self.urls = workdir / "urls.txt"
        self.urls.write_text("\n".join(urls))
        self.db = workdir / "reader.sqlite"

    def run(self, workers: int, cold: bool = False) -> float:
        command = [self.python, __file__, "--reader-child", "--urls", str(self.urls)]
        command += ["--db", str(self.db), "--workers", str(workers)] + (["--cold"] if cold else [])
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return float(json.loads(done.stdout.strip().splitlines()[-1])["rate"])


def compare(port: int, urls: Sequence[str], args: argparse.Namespace, changes: dict[str, Any]) -> None:
    """Cold passes, then warm passes, ours and reader's taking turns.

    Taking turns matters on a shared machine: a burst of load from elsewhere then hits
    both sides rather than one.
    """
    from bench.feedworld import control

    ours = Ours(urls, changes)
    with tempfile.TemporaryDirectory() as tmp:
        theirs = Reader(args.reader_python, urls, Path(tmp))
        control(port, "_config?latency=0:0")
        ours.run()  # cold: fills the validators
        theirs.run(16, cold=True)
        rates: dict[str, list[float]] = {}
        lat = f"{LATENCY[0]}:{LATENCY[1]}"
        for phase, latency, reader_workers in (("loopback", "0:0", (1, 16)), ("latency", lat, (16,))):
            control(port, f"_config?latency={latency}")
            for _ in range(args.passes):
                rates.setdefault(f"ours {phase}", []).append(
                    checked(port, len(urls), "ours", ours.run, ours.errors)
                )
                for w in reader_workers:
                    rates.setdefault(f"reader {phase} w={w}", []).append(
                        checked(port, len(urls), "reader", functools.partial(theirs.run, w), list)
                    )
    report(rates, args, changes)


# -- checks and report -----------------------------------------------------------------


def _stats(port: int) -> dict[str, int]:
    from bench.feedworld import control

    return {k: int(v) for k, v in (kv.split("=") for kv in control(port, "_stats").split())}


def checked(
    port: int, feeds: int, who: str, run: Callable[[], float], errors: Callable[[], list[str]]
) -> float:
    """Run one pass and check with the server that it asked every feed and got 304s."""
    before = _stats(port)
    rate = run()
    after = _stats(port)
    asked = after["requests"] - before["requests"] - 1  # minus the _stats call itself
    not_modified = after["not_modified"] - before["not_modified"]
    if asked != feeds or not_modified != feeds:
        raise SystemExit(
            f"{who}: expected {feeds} requests all 304, got {asked} requests, "
            f"{not_modified} 304s; errors: {errors()[:3]}"
        )
    return rate


def report(rates: dict[str, list[float]], args: argparse.Namespace, changes: dict[str, Any]) -> None:
    mid = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\nfeeds={args.feeds} hosts={args.hosts} passes={args.passes}, warm (every answer a 304)")
    print(f"ours: FetchSettings defaults{' + ' + str(changes) if changes else ''}")
    print(f"{'pass':28} {'feeds/s median':>15}  all passes")
    for name, values in rates.items():
        print(f"{name:28} {mid[name]:15.0f}  {' '.join(f'{v:.0f}' for v in values)}")
    loopback = mid["ours loopback"] / max(mid["reader loopback w=1"], mid["reader loopback w=16"])
    latency = mid["ours latency"] / mid["reader latency w=16"]
    lat = f"{LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms"
    print(f"\nwarm loopback, vs reader's better: {loopback:5.2f}x  (goal >= {GOALS['loopback']}x)")
    print(f"warm + {lat}, vs reader w=16: {latency:5.2f}x  (goal >= {GOALS['latency']}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--reader-python", default=READER_PYTHON)
    parser.add_argument("--concurrency", type=int, default=None, help="override FetchSettings")
    parser.add_argument("--per-host", type=int, default=None, help="override FetchSettings")
    # Internal: the reader side, run under --reader-python.
    parser.add_argument("--reader-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=16, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_child:
        reader_child(args)
        return

    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from bench.feedworld import control, world_process

    if not Path(args.reader_python).exists():
        raise SystemExit(f"no reader venv at {args.reader_python}: see this script's docstring")
    changes = {
        k: v for k, v in (("concurrency", args.concurrency), ("per_host", args.per_host)) if v is not None
    }
    with world_process(args.feeds, args.hosts) as port:
        compare(port, control(port, "_urls").split(), args, changes)


if __name__ == "__main__":
    main()
