"""Ingest benchmark: this project against lemon24/reader 3.x on the same loopback feed world.

Per pair, on a fresh feed world (1,000 feeds over 50 loopback hosts, 20-50 entries and
~50 KB each: ~35k entries), each side in its own process with a new database:

1. cold: every feed fetched, parsed, stored, classified and indexed for search;
2. warm: every feed again (all 304s);
3. churn: after 10% of the feeds publish 1-3 new entries, every feed again.

Ours is ``aggregator.service.fetch_pass(all_feeds=True)`` with the default model loaded
before the clock starts (as the daemon has it): fetch, parse, store (with story
fingerprints and the FTS5 triggers), rule tags, then the model's tags. ``--no-classify``
leaves the model out. reader's is ``update_feeds(workers=W)`` then ``update_search()``
(its search index is built by that call, not as entries are stored). Times exclude
interpreter start and imports; peak memory is each process's ru_maxrss.

reader is not a project dependency; it runs in its own venv:

    python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install reader sgmllib3k

Run from the repository root:

    .venv/bin/python -m bench.bench_ingest [--pairs 3] [--feeds 1000] [--no-classify]
    .venv/bin/python -m bench.bench_ingest --whole-process [--pairs 3] [--feeds 1000]

``--whole-process`` times what a user meets instead: each phase is a fresh process, timed
from spawn to exit, imports and all. Ours is the console script ``aggregator --home H fetch
--all`` (the model trained beforehand and copied in, not timed; the config is validated in
the cold run, as in a new instance); reader's is a fresh Python running
``make_reader(db).update_feeds(workers=W)`` then ``update_search()`` (its feeds added and
search enabled by an untimed process before). Peak memory is each process's ru_maxrss.

Sides take turns (which goes first alternates per pair) so load from elsewhere on the
machine hits both; medians over the pairs are reported, with every pair's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
READER_PYTHON = "/work/bench-venv/bin/python"
PHASES = ("cold", "warm", "churn")
GOALS = {"cold": 5.0, "churn": 3.0}
MEMORY_MARGIN_MIB = 100


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- ours ------------------------------------------------------------------------------


def make_home(home: Path, urls: list[str], models: Path | None) -> None:
    """An instance with the shipped config, the world's feeds, and a trained model."""
    shutil.copytree(ROOT / "config", home / "config")
    (home / "var").mkdir()
    (home / "config" / "feeds.toml").write_text("".join(
        f'[[feed]]\nname = "f{n:04d}"\nurl = "{url}"\n\n' for n, url in enumerate(urls)))
    if models is not None and models.exists():
        shutil.copytree(models, home / "var" / "models")


def ours_child(args: argparse.Namespace) -> None:
    """One phase of ours, in this process: prints one JSON line."""
    from aggregator.config import load_config
    from aggregator.instance import Instance
    from aggregator.service import fetch_pass
    from aggregator.store import open_store, sqlite_path

    config = load_config(Instance.locate(args.home))
    classifier = None
    load_s = 0.0
    if args.classify:
        from aggregator.service import load_classifier

        started = time.perf_counter()
        classifier = load_classifier(config)
        load_s = time.perf_counter() - started
    store = open_store(config.database_url)
    try:
        started = time.perf_counter()
        summary = fetch_pass(config, store, all_feeds=True, classifier=classifier,
                             classify=args.classify)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    db = Path(sqlite_path(config.database_url) or "")
    print(json.dumps({
        "entries": summary.new_items, "seconds": seconds, "maxrss_mib": _maxrss_mib(),
        "failed": summary.feeds_failed, "tags": summary.tags_assigned, "load_s": load_s,
        "db_bytes": sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))}), flush=True)


def train_models(work: Path) -> Path | None:
    """Train the default model once (not timed): every pair copies it."""
    home = work / "model-home"
    shutil.copytree(ROOT / "config", home / "config")
    code = ("from aggregator.config import load_config; from aggregator.instance import Instance; "
            "from aggregator.service import load_classifier; "
            f"load_classifier(load_config(Instance.locate({str(home)!r})))")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"cannot train the default model, classification off:\n{done.stderr[-800:]}")
        return None
    print(f"default model trained in {time.perf_counter() - started:.1f} s (not timed below)")
    return home / "var" / "models"


# -- reader, in its own venv -----------------------------------------------------------


def reader_child(args: argparse.Namespace) -> None:
    """One phase of reader, under its venv's Python: prints one JSON line."""
    import logging

    from reader import make_reader

    logging.getLogger("reader").setLevel(logging.ERROR)
    reader = make_reader(str(args.db))
    if args.phase == "cold":
        for url in args.urls.read_text().split():
            reader.add_feed(url, exist_ok=True)
        reader.enable_search()
    before = reader.get_entry_counts().total
    def size() -> int:
        return sum(p.stat().st_size for p in args.db.parent.glob(args.db.name + "*"))

    started = time.perf_counter()
    reader.update_feeds(scheduled=False, workers=args.workers)
    stored = time.perf_counter()
    unindexed = size()
    reader.update_search()
    seconds = time.perf_counter() - started
    entries = reader.get_entry_counts().total - before
    reader.close()
    print(json.dumps({
        "entries": entries, "seconds": seconds, "maxrss_mib": _maxrss_mib(),
        "search_s": seconds - (stored - started), "db_bytes": size(),
        "db_bytes_unindexed": unindexed}), flush=True)


# -- whole processes ---------------------------------------------------------------------

# reader's pass as a whole process (run by the reader venv's Python).
READER_PASS = r'''
import logging, sys
from reader import make_reader
logging.getLogger("reader").setLevel(logging.ERROR)
r = make_reader(sys.argv[1])
r.update_feeds(scheduled=False, workers=int(sys.argv[2]))
r.update_search()
r.close()
'''
READER_SETUP = r'''
import sys
from reader import make_reader
r = make_reader(sys.argv[1])
for url in open(sys.argv[2]).read().split():
    r.add_feed(url, exist_ok=True)
r.enable_search()
r.close()
'''


def run_process(command: list[str]) -> dict[str, Any]:
    """Spawn, wait: wall seconds from spawn to exit, the child's own peak memory and stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        pid = os.posix_spawn(command[0], command, dict(os.environ),
                             file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{command[:6]} failed:\n{err.read().decode()[-2000:]}")
    return {"seconds": seconds, "maxrss_mib": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime, "stdout": text}


def _reader_entries(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    finally:
        conn.close()


def _sides(n: int, urls: list[str], models: Path | None, work: Path) -> tuple[Path, Path, Path]:
    """Pair n's instance (following ``urls``), the URL list for reader, and reader's database."""
    home = work / f"ours-{n}"
    make_home(home, urls, models)
    url_file = work / f"urls-{n}.txt"
    url_file.write_text("\n".join(urls))
    return home, url_file, work / f"reader-{n}.sqlite"


def one_pair_whole(n: int, args: argparse.Namespace, models: Path | None,
                   work: Path) -> dict[str, Any]:
    import re

    from bench.feedworld import control, world_process

    cli = str(Path(sys.executable).parent / "aggregator")
    (work / "reader_pass.py").write_text(READER_PASS)
    (work / "reader_setup.py").write_text(READER_SETUP)
    figures: dict[str, Any] = {}
    with world_process(args.feeds, args.hosts) as port:
        home, url_file, db = _sides(n, control(port, "_urls").split(), models, work)
        subprocess.run([args.reader_python, str(work / "reader_setup.py"), str(db), str(url_file)],
                       check=True)
        ours = [cli, "--home", str(home), "fetch", "--all"]
        theirs = [args.reader_python, str(work / "reader_pass.py"), str(db), str(args.workers)]
        sides = [("ours", ours), ("reader", theirs)]
        if n % 2:
            sides.reverse()
        reader_before = 0
        for phase in PHASES:
            if phase == "churn":
                figures["changed_feeds"] = int(control(port, f"_tick?churn={args.churn}"))
            for side, command in sides:
                fig = run_process(command)
                if side == "ours":
                    m = re.search(r"items: (\d+) new", fig["stdout"])
                    fig["entries"] = int(m.group(1)) if m else 0
                    fig["failed"] = int(re.search(r"(\d+) failed", fig["stdout"]).group(1))  # type: ignore[union-attr]
                else:
                    total = _reader_entries(db)
                    fig["entries"], reader_before = total - reader_before, total
                fig["db_bytes"] = 0
                del fig["stdout"]
                figures[f"{side} {phase}"] = fig
    return figures


def report_whole(pairs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nWHOLE PROCESS: feeds={args.feeds} hosts={args.hosts} pairs={len(pairs)} "
          f"reader workers={args.workers}; each figure one fresh process, spawn to exit")
    print(f"{'phase':7} {'side':7} {'entries':>8} {'wall s':>8} {'CPU s':>7} {'peak MiB':>9}"
          f"   per pair (wall s)")
    for phase in PHASES:
        for side in ("ours", "reader"):
            figs = [p[f"{side} {phase}"] for p in pairs]
            print(f"{phase:7} {side:7} {statistics.median(f['entries'] for f in figs):8.0f} "
                  f"{statistics.median(f['seconds'] for f in figs):8.2f} "
                  f"{statistics.median(f['cpu_s'] for f in figs):7.2f} "
                  f"{statistics.median(f['maxrss_mib'] for f in figs):9.0f}   "
                  + " ".join(f"{f['seconds']:.2f}" for f in figs))
    goals = {"cold": (3.0, 5.0), "warm": (2.0, 3.0), "churn": (None, None)}
    names = {"cold": "first fetch into a new instance", "warm": "next fetch, every feed 304",
             "churn": f"fetch after {args.churn:.0%} of feeds changed"}
    print("\nratio = reader's wall seconds / ours, median over pairs (each pair run side by side)")
    for phase in PHASES:
        ratio = statistics.median(p[f"reader {phase}"]["seconds"] / p[f"ours {phase}"]["seconds"]
                                  for p in pairs)
        bar, goal = goals[phase]
        target = f"  (bar {bar}x, goal {goal}x)" if bar else ""
        print(f"  {names[phase]:<36} {ratio:5.2f}x{target}")
    rss = statistics.median(p["ours cold"]["maxrss_mib"] - p["reader cold"]["maxrss_mib"]
                            for p in pairs)
    print(f"  peak memory, first fetch: ours - reader = {rss:+.0f} MiB "
          f"(bar <= +{MEMORY_MARGIN_MIB} MiB)")


# -- the comparison --------------------------------------------------------------------


def run_child(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def one_pair(n: int, args: argparse.Namespace, models: Path | None, work: Path) -> dict[str, Any]:
    from bench.feedworld import control, world_process

    figures: dict[str, Any] = {}
    with world_process(args.feeds, args.hosts) as port:
        home, url_file, db = _sides(n, control(port, "_urls").split(), models, work)
        ours = [sys.executable, "-m", "bench.bench_ingest", "--ours-child", "--home", str(home)]
        ours += [] if models is not None and args.classify else ["--no-classify"]
        theirs = [args.reader_python, str(Path(__file__)), "--reader-child", "--db", str(db),
                  "--urls", str(url_file), "--workers", str(args.workers)]
        sides = [("ours", ours), ("reader", theirs)]
        if n % 2:
            sides.reverse()
        for phase in PHASES:
            if phase == "churn":
                changed = int(control(port, f"_tick?churn={args.churn}"))
                figures["changed_feeds"] = changed
            for side, command in sides:
                figures[f"{side} {phase}"] = run_child([*command, "--phase", phase])
    return figures


def report(pairs: list[dict[str, Any]], args: argparse.Namespace, classify: bool) -> None:
    def rate(fig: dict[str, Any]) -> float:
        return float(fig["entries"] / fig["seconds"]) if fig["entries"] else 0.0

    print(f"\nfeeds={args.feeds} hosts={args.hosts} pairs={len(pairs)} reader workers={args.workers} "
          f"classification {'on' if classify else 'OFF'}")
    print(f"{'phase':7} {'side':7} {'entries':>8} {'seconds':>8} {'entries/s':>10} "
          f"{'peak MiB':>9} {'DB KiB/entry':>12}   per pair (entries/s)")
    mid: dict[str, dict[str, float]] = {}
    for phase in PHASES:
        for side in ("ours", "reader"):
            figs = [p[f"{side} {phase}"] for p in pairs]
            m = {"entries": statistics.median(f["entries"] for f in figs),
                 "seconds": statistics.median(f["seconds"] for f in figs),
                 "rate": statistics.median(rate(f) for f in figs),
                 "rss": statistics.median(f["maxrss_mib"] for f in figs),
                 "db": statistics.median(f["db_bytes"] for f in figs)}
            mid[f"{side} {phase}"] = m
            per_entry = m["db"] / 1024 / max(mid[f"{side} cold"]["entries"], 1)
            print(f"{phase:7} {side:7} {m['entries']:8.0f} {m['seconds']:8.2f} {m['rate']:10.0f} "
                  f"{m['rss']:9.0f} {per_entry:12.2f}   "
                  + " ".join(f"{rate(f):.0f}" for f in figs))
    search = statistics.median(p["reader cold"]["search_s"] for p in pairs)
    plain = statistics.median(p["reader cold"]["db_bytes_unindexed"] for p in pairs)
    print(f"\nreader cold: update_search took {search:.1f} s; its database before indexing: "
          f"{plain / 1024 / max(mid['reader cold']['entries'], 1):.2f} KiB/entry")
    load = statistics.median(p["ours cold"].get("load_s", 0.0) for p in pairs)
    print(f"ours: model loaded in {load:.2f} s before each phase (not in the times above)")
    ratios = {phase: statistics.median(rate(p[f"ours {phase}"]) / max(rate(p[f"reader {phase}"]), 1e-9)
                                       for p in pairs) for phase in ("cold", "churn")}
    warm = statistics.median(p["reader warm"]["seconds"] / p["ours warm"]["seconds"] for p in pairs)
    rss = mid["ours cold"]["rss"] - mid["reader cold"]["rss"]
    print(f"cold ingest, entries/s vs reader:  {ratios['cold']:5.2f}x  (goal >= {GOALS['cold']}x)")
    print(f"churn pass, entries/s vs reader:   {ratios['churn']:5.2f}x  (goal >= {GOALS['churn']}x)")
    print(f"warm pass (all 304), time ratio:   {warm:5.2f}x  (reader's seconds / ours)")
    print(f"peak memory, cold: ours - reader = {rss:+.0f} MiB  (goal <= +{MEMORY_MARGIN_MIB} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--churn", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=16, help="reader's update_feeds workers")
    parser.add_argument("--reader-python", default=READER_PYTHON)
    parser.add_argument("--no-classify", dest="classify", action="store_false")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--whole-process", action="store_true",
                        help="time fresh processes (console script vs reader), imports and all")
    # Internal: one phase of one side.
    parser.add_argument("--ours-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reader-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_child:
        reader_child(args)
        return
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    if args.ours_child:
        ours_child(args)
        return
    if args.whole_process and not args.classify:
        raise SystemExit("--whole-process runs 'aggregator fetch', which always classifies")
    if not Path(args.reader_python).exists():
        raise SystemExit(f"no reader venv at {args.reader_python}: see this script's docstring")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        models = train_models(work) if args.classify else None
        pairs = []
        for n in range(args.pairs):
            pair = one_pair_whole if args.whole_process else one_pair
            pairs.append(pair(n, args, models, work))
            cold = pairs[-1]["ours cold"], pairs[-1]["reader cold"]
            print(f"pair {n + 1}: cold ours {cold[0]['entries']} entries in {cold[0]['seconds']:.1f} s, "
                  f"reader {cold[1]['entries']} in {cold[1]['seconds']:.1f} s", flush=True)
        if args.whole_process:
            report_whole(pairs, args)
        else:
            report(pairs, args, models is not None and args.classify)


if __name__ == "__main__":
    main()
