"""Several fetch workers on PostgreSQL against one on SQLite, on a loopback feed world.

For each setup (SQLite with 1 worker; PostgreSQL with 1, 2 and 4 workers), a fresh
database and two timed phases:

1. cold ingest: every feed fetched for the first time, every entry stored;
2. churn: the world publishes (a share of feeds get 1-3 new entries), every feed is made
   due, and one pass over all of them runs (mostly 304s, the changed ones parsed).

A worker is a process doing what the daemon's jobs do: ``fetch_pass`` with ``claim_owner``
(``--claim`` feeds in flight, 10 as ``[daemon] claim_size``, one more claimed with FOR
UPDATE SKIP LOCKED and a lease as each finishes) until nothing is due, then
``classify_pending`` with ``owner`` (pending items claimed batch by batch the same way).
Workers import everything, load the model (trained once for the run) and connect first, then
all start on one signal; the fetch clock runs from that signal until the last worker has
fetched its last feed, and the classification is reported apart, as each worker's share of
the items. The feed world (bench/feedworld.py) runs in its own process.

Run from the repository root (PostgreSQL from $AGGREGATOR_TEST_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/test; each setup gets its own schema, dropped after):

    .venv/bin/python -m bench.bench_postgres [--feeds 500] [--hosts 50] [--churn 0.2]
        [--workers 1,2,4] [--claim 10] [--profile]

``--profile`` (Linux, PostgreSQL on this machine) samples every 0.2 s while the workers run:
the CPU of the workers and of PostgreSQL's processes (/proc), the machine's busy share, and
what PostgreSQL's busy backends are doing (pg_stat_activity): waiting on a lock, running a
feed claim or a classification claim. That tells where it saturates: CPU, locks or claims.

Reading the figures: on a 2-core machine the feed world, PostgreSQL and the workers
share the cores, so parallel workers can at best roughly double throughput, and less once
the CPU is full; feeds/s is what a deployment plans with, entries/s shows the storing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.feedworld import control, world_process

ROOT = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

SETTINGS = """
[database]
url = "{url}"

[fetch]
concurrency = 50
per_host = 2
"""


@dataclass(frozen=True)
class Result:
    engine: str
    workers: int
    phase: str
    seconds: float
    feeds: int
    entries: int
    failed: int  # feeds whose last fetch failed (an overloaded world times out)
    fetched: tuple[int, ...] = ()  # feeds fetched by each worker
    classified: tuple[int, ...] = ()  # items classified by each worker
    profile: str = ""  # with --profile: where the time went

    @staticmethod
    def shares(counts: tuple[int, ...]) -> str:
        total = sum(counts) or 1
        return "/".join(f"{100 * n / total:.0f}" for n in counts) + "%"

    @property
    def feeds_per_s(self) -> float:
        return self.feeds / self.seconds

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.seconds


# -- one worker (a child process) ---------------------------------------------------------


def worker(home: str, owner: str, claim: int) -> None:
    from aggregator.config import load_config
    from aggregator.instance import Instance
    from aggregator.service import classify_pending, fetch_pass, load_classifier
    from aggregator.store import open_store

    config = load_config(Instance(Path(home)))
    store = open_store(config.database_url)
    classifier = load_classifier(config)
    import aggregator.fetch.http  # imported before the clock starts
    import aggregator.parse.feeds  # noqa: F401

    print("READY", flush=True)
    sys.stdin.readline()  # GO
    fetched = 0
    while True:
        s = fetch_pass(config, store, classify=False, limit=claim, claim_owner=owner)
        n = s.feeds_ok + s.feeds_not_modified + s.feeds_failed
        fetched += n
        if n == 0:
            break
    fetch_end = time.time()
    items = 0

    def count(_: str, done: int, total: int) -> None:
        nonlocal items
        items = done

    classify_pending(store, classifier, batch_size=config.settings.daemon.batch_size,
                     progress=count, owner=owner)
    store.close()
    print(f"DONE {fetched} {items} {fetch_end}", flush=True)


# -- the driver ------------------------------------------------------------------------------


class Profile:
    """Samples while the workers run (fetching and classifying): see ``--profile``."""

    EVERY = 0.2

    def __init__(self, url: str, workers: list[int]) -> None:
        self.url, self.workers = url, set(workers)
        self.cpu: dict[str, float] = {"workers": 0.0, "postgresql": 0.0}  # CPU seconds
        self.busy = self.total = 0  # jiffies of the whole machine
        self.backends: Counter[str] = Counter()  # busy backend samples by what they did
        self.samples = 0
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _cpu(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _processes(self) -> dict[int, tuple[str, float]]:
        out = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                if pid in self.workers:
                    out[pid] = ("workers", self._cpu(pid))
                elif (entry / "cmdline").read_bytes().startswith(b"postgres"):
                    out[pid] = ("postgresql", self._cpu(pid))
            except OSError:
                continue  # gone meanwhile
        return out

    @staticmethod
    def _jiffies() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(SERVER, autocommit=True) as c:
            before, (total0, idle0) = self._processes(), self._jiffies()
            while not self._stop.wait(self.EVERY):
                now = self._processes()
                for pid, (group, cpu) in now.items():
                    if pid in before:
                        self.cpu[group] += cpu - before[pid][1]
                before = now
                for wait, query in c.execute(
                        "SELECT wait_event_type, left(query, 40) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend' AND state <> 'idle'"):
                    self.backends["busy"] += 1
                    if wait in ("Lock", "LWLock"):
                        self.backends["lock"] += 1
                    if (query or "").startswith("WITH due AS"):
                        self.backends["feed claim"] += 1
                    elif (query or "").startswith("UPDATE items SET classify_owner"):
                        self.backends["classify claim"] += 1
                self.samples += 1
            total, idle = self._jiffies()
            self.total, self.busy = total - total0, (total - total0) - (idle - idle0)

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        seconds = time.monotonic() - self.started
        busy = self.backends["busy"] or 1
        return (f"cores: workers {self.cpu['workers'] / seconds:.2f}, PostgreSQL "
                f"{self.cpu['postgresql'] / seconds:.2f}, machine {self.busy / (self.total or 1):.0%} busy; "
                f"busy backends {self.backends['busy'] / (self.samples or 1):.2f} on average: "
                f"{self.backends['lock'] / busy:.1%} waiting on locks, "
                f"{self.backends['feed claim'] / busy:.1%} claiming feeds, "
                f"{self.backends['classify claim'] / busy:.1%} claiming items "
                f"({seconds:.1f} s, fetch and classify)")


def run_workers(home: Path, count: int, claim: int,
                profile: bool = False) -> tuple[float, list[int], list[int], str]:
    """Seconds until the last feed was fetched; feeds and items each worker took; with
    ``profile``, where the time went."""
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.bench_postgres", "--worker", str(home), f"bench:{n}",
         str(claim)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for n in range(count)]
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"worker did not start: {line!r}")
    sampler = Profile(SERVER, [p.pid for p in procs]) if profile else None
    start = time.time()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("GO\n")
        p.stdin.flush()
    fetched, classified, ends = [], [], []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode:
            raise RuntimeError(f"worker failed with {p.returncode}")
        _, feeds, items, end = out.split()
        fetched.append(int(feeds))
        classified.append(int(items))
        ends.append(float(end))
    return max(ends) - start, fetched, classified, sampler.stop() if sampler else ""


class Database:
    """A fresh SQLite file or PostgreSQL schema, with plain-SQL access for the driver."""

    def __init__(self, engine: str, directory: Path) -> None:
        self.engine = engine
        if engine == "sqlite":
            self.url = f"sqlite:///{directory / 'var' / 'aggregator.db'}"
        else:
            import psycopg

            self.schema = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(SERVER, autocommit=True) as c:
                c.execute(f"CREATE SCHEMA {self.schema}")
            sep = "&" if "?" in SERVER else "?"
            self.url = f"{SERVER}{sep}options=-csearch_path%3D{self.schema}"

    def sql(self, statement: str) -> int:
        if self.engine == "sqlite":
            import sqlite3

            with sqlite3.connect(self.url[len("sqlite:///"):]) as c:
                row = c.execute(statement).fetchone()
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as c:
                cur = c.execute(statement)
                row = cur.fetchone() if cur.description else None
        return int(row[0]) if row else 0

    def drop(self) -> None:
        if self.engine == "postgresql":
            import psycopg

            with psycopg.connect(SERVER, autocommit=True) as c:
                c.execute(f"DROP SCHEMA {self.schema} CASCADE")


def setup(engine: str, workers: int, port: int, urls: list[str], churn: float,
          claim: int, models: Path, profile: bool = False) -> list[Result]:
    directory = Path(tempfile.mkdtemp(prefix=f"bench-{engine}-{workers}-"))
    db = Database(engine, directory)
    try:
        shutil.copytree(ROOT / "config", directory / "config")
        (directory / "var").mkdir(exist_ok=True)
        shutil.copytree(models, directory / "var" / "models")
        (directory / "config" / "aggregator.toml").write_text(SETTINGS.format(url=db.url))
        (directory / "config" / "feeds.toml").write_text("".join(
            f'[[feed]]\nname = "f{n:05d}"\nurl = "{u}"\n' for n, u in enumerate(urls)))
        out = []
        profile = profile and engine == "postgresql"
        seconds, fetched, classified, where = run_workers(directory, workers, claim, profile)
        entries = db.sql("SELECT count(*) FROM item_sources")
        failed = "SELECT count(*) FROM feeds WHERE last_error IS NOT NULL"
        out.append(Result(engine, workers, "cold", seconds, len(urls), entries, db.sql(failed),
                          tuple(fetched), tuple(classified), where))
        control(port, f"_tick?churn={churn}")
        db.sql("UPDATE feeds SET next_fetch_at = NULL")
        seconds, fetched, classified, where = run_workers(directory, workers, claim, profile)
        after = db.sql("SELECT count(*) FROM item_sources")
        out.append(Result(engine, workers, "churn", seconds, len(urls), after - entries,
                          db.sql(failed), tuple(fetched), tuple(classified), where))
        return out
    finally:
        db.drop()
        shutil.rmtree(directory, ignore_errors=True)


def train_once() -> Path:
    """The default model, trained once for the run (workers only load it)."""
    from aggregator.config import load_config
    from aggregator.instance import Instance
    from aggregator.service import train_default

    home = Path(tempfile.mkdtemp(prefix="bench-models-"))
    shutil.copytree(ROOT / "config", home / "config")
    train_default(load_config(Instance(home)))
    return home / "var" / "models"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--churn", type=float, default=0.2)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--claim", type=int, default=10,
                        help="feeds a worker keeps in flight ([daemon] claim_size)")
    parser.add_argument("--profile", action="store_true",
                        help="sample CPU and pg_stat_activity while the workers run")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    results: list[Result] = []
    models = train_once()
    try:
        with world_process(args.feeds, args.hosts) as port:
            urls = control(port, "_urls").split("\n")
            print(f"{args.feeds} feeds on {args.hosts} hosts, churn {args.churn:.0%}, "
                  f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
            for engine, workers in [("sqlite", 1), *(("postgresql", w) for w in counts)]:
                for r in setup(engine, workers, port, urls, args.churn, args.claim, models,
                               args.profile):
                    results.append(r)
                    print(f"  {r.engine:<10} x{r.workers}  {r.phase:<5}  {r.seconds:6.2f}s  "
                          f"{r.feeds_per_s:7.1f} feeds/s  {r.entries_per_s:8.1f} entries/s "
                          f"({r.entries} entries, {r.failed} feeds failed)  "
                          f"feeds {r.shares(r.fetched)}  classified {r.shares(r.classified)}",
                          flush=True)
                    if r.profile:
                        print(f"      {r.profile}", flush=True)
    finally:
        shutil.rmtree(models.parent.parent, ignore_errors=True)
    print("\nscaling on PostgreSQL (throughput relative to 1 worker; SQLite x1 for reference):")
    for phase in ("cold", "churn"):
        base = next(r for r in results if r.engine == "postgresql" and r.phase == phase
                    and r.workers == counts[0])
        lite = next(r for r in results if r.engine == "sqlite" and r.phase == phase)
        row = "  ".join(f"x{r.workers}: {base.seconds / r.seconds:.2f}" for r in results
                        if r.engine == "postgresql" and r.phase == phase)
        print(f"  {phase:<5}  {row}   (sqlite x1: {base.seconds / lite.seconds:.2f})")


if __name__ == "__main__":
    main()
