"""Query-path benchmark: whole-process times of the commands run in shell loops.

Builds (once, cached under var/bench/) an instance holding 35k items with realistic titles,
1-2 KB summaries and 3-6 tags each, through the store's public methods, and a
lemon24/reader database with the same entries and tags (in /work/bench-venv, which has
``reader``); then times whole processes, ours against reader's equivalent script and a bare
Python start:

    query --tag T --limit 50 --format jsonl   vs  get_entries(tags=[T], limit=50) as JSON lines
    show ID --format json                     vs  get_entry + get_tags as JSON
    tags --since DATE --format jsonl          vs  get_entry_counts(tags=[t]) per tag (less work
                                                  than ours: reader has no per-day counts)
    feeds list --format jsonl                 vs  get_feeds as JSON lines

and the same query on a 1M-item instance, which should stay within 2x of the 35k one; so
should the query shapes reader has no index for (ours only): --sort score, --search over a
word in most items, and a rare tag (RARE_TAG, a user's label on RARE_COUNT items spread
over the whole span, added to the cached databases once).
Goal: ours at least 3x faster than reader; ``query`` within 3x of a bare ``python -c pass``
start in the same venv (bar: 4x), printed as the last line of each table.
Times with a loop of its own by default: every command once per round, in shuffled order,
median wall and CPU time; on a shared machine that keeps the ratios fair. ``--hyperfine``
uses hyperfine instead (apt install hyperfine).

    .venv/bin/python bench/bench_query.py                 # 35k and 1M (1M built once, minutes)
    .venv/bin/python bench/bench_query.py --sizes 35000   # 35k only
    .venv/bin/python bench/bench_query.py --plans         # EXPLAIN QUERY PLAN of the query SQL
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "bench"
OURS_PYTHON = ROOT / ".venv" / "bin" / "python"
OURS_CLI = ROOT / ".venv" / "bin" / "aggregator"
READER_PYTHON = Path("/work/bench-venv/bin/python")
# Bump when the generator changes, so cached databases are rebuilt.
GENERATOR_VERSION = 1
SEED = 20261126
# The newest item is at this time, whatever day the bench runs: cached databases stay
# comparable, and ``tags`` is given an explicit --since inside the data.
END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SPAN_DAYS = {35_000: 365, 1_000_000: 3 * 365}
TAGS_SINCE = (END - timedelta(days=14)).strftime("%Y-%m-%d")
RARE_TAG, RARE_COUNT = "bench-rare", 20
SEARCH_WORD = "uranium"  # in about 80% of the items

# -- the data -------------------------------------------------------------------------

_WORDS = ["minister", "talks", "ceasefire", "border", "sanctions", "oil", "gas", "pipeline", "election",
          "parliament", "president", "government", "forces", "troops", "drone", "strike", "missile",
          "negotiations", "summit", "treaty", "agreement", "embassy", "protest", "police", "capital",
          "region", "province", "security", "council", "resolution", "nuclear", "enrichment", "inspectors",
          "agency", "uranium", "reactor", "exports", "imports", "tariffs", "currency", "inflation",
          "central", "bank", "economy", "budget", "defence", "ministry", "spokesman", "officials",
          "statement", "report", "analysis", "according", "sources", "said", "week", "month", "year",
          "talks", "delegation", "visit", "foreign", "affairs", "cooperation", "military", "exercise",
          "navy", "fleet", "airspace", "violation", "shelling", "frontline", "offensive", "counteroffensive",
          "humanitarian", "aid", "refugees", "corridor", "reconstruction", "energy", "grid",
          "infrastructure", "cyberattack", "hackers", "satellite", "launch", "space", "programme",
          "opposition", "leader", "arrested", "court", "ruling", "constitution", "referendum", "coalition",
          "cabinet", "reshuffle", "diplomats", "expelled", "ambassador", "recalled", "mediation", "envoy",
          "framework", "deal", "partnership", "strategic"]
_PLACES = ["Moscow", "Tehran", "Beijing", "Kyiv", "Jerusalem", "Washington", "Baku", "Yerevan", "Tbilisi",
           "Ankara", "Riyadh", "Doha", "Cairo", "Damascus", "Baghdad", "Beirut", "Brussels", "Vienna",
           "Geneva", "Delhi"]
_HEADS = ["{p} and {q} {v} {n}", "{p} {v} new {n} amid {m}", "Why {p}'s {n} matters for {q}",
          "{p} says {n} with {q} will {v} {m}", "Officials in {p} {v} {n} after {m}",
          "Analysis: {p}, {q} and the {n} question", "{p} {v} {n}; {q} warns of {m}"]
_VERBS = ["signs", "rejects", "announces", "extends", "suspends", "expands", "questions", "resumes", "halts"]


def _tag_names() -> list[str]:
    with open(ROOT / "config" / "taxonomy.toml", "rb") as f:
        return [t["name"] for t in tomllib.load(f)["tag"]]


def _tag_weights(n: int) -> list[float]:
    """Zipf-like: a few tags on many items, a long tail on few."""
    return [1 / (rank + 1) ** 0.9 for rank in range(n)]


def query_tag() -> str:
    """A tag of middling frequency (the 6th most common, on ~15% of items)."""
    return _tag_names()[5]


def _feed_names() -> list[tuple[str, str]]:
    with open(ROOT / "config" / "feeds.toml", "rb") as f:
        return [(d["name"], d["url"]) for d in tomllib.load(f)["feed"]]


def generate(n: int) -> Iterator[dict[str, Any]]:
    """n items, oldest first: title, summary (1-2 KB), feed, published, tags with scores."""
    rng = random.Random(SEED + n)
    names = _tag_names()
    weights = _tag_weights(len(names))
    feeds = [name for name, _ in _feed_names()]
    span = timedelta(days=SPAN_DAYS.get(n, 365)).total_seconds()
    # Evenly spread with jitter, oldest first, so ids follow time as they do when fetched.
    start = END.timestamp() - span
    step = span / n
    for i in range(n):
        ts = start + (i + rng.random()) * step
        p, q = rng.sample(_PLACES, 2)
        title = rng.choice(_HEADS).format(p=p, q=q, v=rng.choice(_VERBS),
                                          n=" ".join(rng.sample(_WORDS, 2)),
                                          m=" ".join(rng.sample(_WORDS, 2)))
        sentences = []
        size = rng.randint(1000, 2000)
        length = 0
        while length < size:
            s = " ".join(rng.choices(_WORDS, k=rng.randint(8, 22)))
            s = f"{s[0].upper()}{s[1:]} in {rng.choice(_PLACES)}."
            sentences.append(s)
            length += len(s) + 1
        chosen: dict[str, float] = {}
        want = rng.randint(3, 6)
        while len(chosen) < want:
            chosen[rng.choices(names, weights)[0]] = round(rng.uniform(0.35, 0.99), 4)
        yield {
            "key": f"urn:bench:{n}:{i}",
            "title": title,
            "url": f"https://news.example.org/{i // 1000}/{i}-{p.lower()}-{q.lower()}",
            "summary": " ".join(sentences),
            "feed": feeds[rng.randrange(len(feeds))],
            "published": datetime.fromtimestamp(ts, UTC).replace(microsecond=0),
            "tags": sorted(chosen.items(), key=lambda kv: -kv[1]),
        }


# -- building our instance --------------------------------------------------------------


def ours_home(n: int) -> Path:
    return CACHE / f"ours-{n}"


def _stamp(n: int) -> dict[str, Any]:
    return {"generator": GENERATOR_VERSION, "items": n,
            "migrations": sorted(p.name for p in
                                 (ROOT / "aggregator/store/migrations/sqlite").glob("*.sql"))}


def build_ours(n: int, rebuild: bool = False) -> Path:
    """An instance (shipped config, var/aggregator.db) with n items, cached by stamp."""
    home = ours_home(n)
    stamp_file = home / "bench.json"
    if not rebuild and stamp_file.exists():
        old = json.loads(stamp_file.read_text())
        if old.get("generator") == GENERATOR_VERSION and old.get("items") == n:
            if old != _stamp(n):
                # A new migration: opening the store applies it to the cached database.
                _open(home).close()
                stamp_file.write_text(json.dumps(_stamp(n)))
            return home
    from aggregator.store.sqlite import SQLiteStore
    from aggregator.types import Entry
    from aggregator.views import FeedConfig, TagScore

    if home.exists():
        shutil.rmtree(home)
    (home / "var").mkdir(parents=True)
    shutil.copytree(ROOT / "config", home / "config")
    t0 = time.perf_counter()
    store = SQLiteStore(home / "var" / "aggregator.db")
    # Bench data is disposable: no fsync per transaction while building.
    store.conn.execute("PRAGMA synchronous=OFF")
    store.sync_feeds([FeedConfig(name, url) for name, url in _feed_names()], END)
    feeds = {f.name: f for f in store.feeds()}
    chunk = 50_000 if n > 100_000 else 10_000
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        by_feed: dict[str, list[Entry]] = {}
        for d in batch:
            text = d["summary"]
            by_feed.setdefault(d["feed"], []).append(Entry(
                key=d["key"], title=d["title"], url=d["url"], canonical_url=d["url"],
                summary=text, content_html=f"<p>{text}</p>", published=d["published"],
                categories=("World",), language="en",
                content_hash=hashlib.sha1(text.encode()).hexdigest()))
        ids: dict[str, int] = {}
        for name, entries in by_feed.items():
            result = store.save_entries(feeds[name], entries, END)
            ids.update(zip((e.key for e in entries), result.new_item_ids, strict=True))
        store.write_model_tags(
            [(ids[d["key"]], [TagScore(t, s, "model", "bench-1") for t, s in d["tags"]])
             for d in batch], END)
        batch.clear()

    for i, d in enumerate(generate(n), 1):
        batch.append(d)
        if len(batch) == chunk:
            flush()
            print(f"  ours {n}: {i} items, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if batch:
        flush()
    store.conn.execute("PRAGMA optimize")
    store.close()
    stamp_file.write_text(json.dumps(_stamp(n)))
    print(f"  built ours {n} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return home


def ensure_rare_tag(home: Path) -> None:
    """RARE_TAG on RARE_COUNT items evenly spread by id (so over the whole span), through
    the store's labels; once per cached database."""
    from aggregator.timeutil import utcnow

    store = _open(home)
    try:
        if RARE_TAG in store.distinct_tags():
            return
        top = store.count_items()
        for k in range(RARE_COUNT):
            store.set_labels(1 + k * top // RARE_COUNT, [RARE_TAG], [], utcnow())
    finally:
        store.close()


def _open(home: Path) -> Any:
    from aggregator.store.sqlite import SQLiteStore

    return SQLiteStore(home / "var" / "aggregator.db")


# -- building reader's database (run by the bench venv's Python) -------------------------


def reader_db(n: int) -> Path:
    return CACHE / f"reader-{n}.sqlite"


def _build_reader_here(path: Path, n: int) -> None:
    """Runs inside /work/bench-venv: the same entries and tags through reader's API."""
    from reader import make_reader

    tmp = path.with_suffix(".tmp")
    for p in tmp.parent.glob(tmp.name + "*"):
        p.unlink()
    r = make_reader(str(tmp))
    # Bench data is disposable: no fsync per entry (reader commits each call).
    r._storage.get_db().execute("PRAGMA synchronous=OFF")
    urls = dict(_feed_names())
    for name, url in urls.items():
        r.add_feed(url, allow_invalid_url=True)
        r.set_tag(url, "name", name)
    t0 = time.perf_counter()
    for i, d in enumerate(generate(n), 1):
        feed_url = urls[d["feed"]]
        r.add_entry({"feed_url": feed_url, "id": d["key"], "title": d["title"],
                     "link": d["url"], "summary": d["summary"], "published": d["published"]})
        for tag, score in d["tags"]:
            r.set_tag((feed_url, d["key"]), tag, {"score": score, "source": "model"})
        if i % 10_000 == 0:
            print(f"  reader {n}: {i} entries, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    r.close()
    tmp.rename(path)
    for p in tmp.parent.glob(tmp.name + "*"):
        p.unlink()


def build_reader(n: int, rebuild: bool = False) -> Path | None:
    path = reader_db(n)
    stamp = path.with_suffix(".json")
    if (not rebuild and path.exists() and stamp.exists()
            and json.loads(stamp.read_text()) == {"generator": GENERATOR_VERSION, "items": n}):
        return path
    if not READER_PYTHON.exists():
        print(f"no {READER_PYTHON}: python3 -m venv /work/bench-venv && "
              "/work/bench-venv/bin/pip install reader sgmllib3k", file=sys.stderr)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(READER_PYTHON), __file__, "_build-reader", str(path), str(n)], check=True)
    stamp.write_text(json.dumps({"generator": GENERATOR_VERSION, "items": n}))
    return path


# reader's equivalents of our commands, run by the bench venv's Python. Each prints what
# ours prints (JSON lines or JSON), from reader's public API.
READER_SCRIPT = r'''
import json, sys
from reader import make_reader

def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None

def entry_json(r, e):
    tags = sorted(((k, v) for k, v in r.get_tags(e)), key=lambda kv: -kv[1]["score"])
    return {"id": e.id, "title": e.title, "url": e.link, "feed": e.feed_url,
            "published": iso(e.published), "summary": e.summary, "categories": [],
            "tags": [{"tag": k, "score": v["score"], "source": v["source"]} for k, v in tags]}

db, command, *args = sys.argv[1:]
r = make_reader(db)
out = sys.stdout
if command == "query":
    for e in r.get_entries(tags=[args[0]], limit=int(args[1])):
        out.write(json.dumps(entry_json(r, e), ensure_ascii=False) + "\n")
elif command == "show":
    feed_url, entry_id = args
    e = r.get_entry((feed_url, entry_id))
    json.dump(entry_json(r, e), out, ensure_ascii=False, indent=2)
    out.write("\n")
elif command == "tags":
    for key in r.get_tag_keys((None, None)):
        counts = r.get_entry_counts(tags=[key])
        out.write(json.dumps({"tag": key, "count": counts.total}) + "\n")
elif command == "feeds":
    for f in r.get_feeds():
        out.write(json.dumps({"name": r.get_tag(f, "name", None), "url": f.url,
                              "title": f.title, "updates_enabled": f.updates_enabled}) + "\n")
'''


# -- timing ---------------------------------------------------------------------------------


def time_commands(commands: dict[str, list[str]], runs: int, env: dict[str, str],
                  use_hyperfine: bool) -> dict[str, tuple[float, float]]:
    """(median wall ms, median CPU ms) of each whole process, stdout to /dev/null (piped).

    By default the commands are interleaved, one run of each per round: on a shared machine
    the load then falls on all of them alike and the ratios stay fair, where consecutive
    blocks (hyperfine's way) can each meet a different load. CPU time (user + system, from
    wait4) is the steadier figure under load. --hyperfine gives wall times only (CPU 0).
    """
    for name, cmd in commands.items():
        # Each must succeed and print something: a fast failure is no result.
        done = subprocess.run(cmd, capture_output=True, env=env)
        if done.returncode != 0 or ("bare" not in name and not done.stdout):
            raise SystemExit(f"{name}: exit {done.returncode}, {len(done.stdout)} bytes out\n"
                             f"{' '.join(cmd)}\n{done.stderr.decode()[-2000:]}")
    if use_hyperfine:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--style", "none",
                 "--export-json", out.name, *(_quote(c) for c in commands.values())],
                check=True, env=env, stdout=subprocess.DEVNULL)
            results = json.loads(Path(out.name).read_text())["results"]
        return {name: (r["median"] * 1000, 0.0)
                for name, r in zip(commands, results, strict=True)}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    devnull = os.open(os.devnull, os.O_WRONLY)
    order = list(commands)
    for round_ in range(runs + 2):  # two warm-up rounds
        random.Random(round_).shuffle(order)
        for name in order:
            t = time.perf_counter()
            pid = os.posix_spawn(commands[name][0], commands[name], env,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1),
                                               (os.POSIX_SPAWN_DUP2, devnull, 2)])
            _, _, usage = os.wait4(pid, 0)
            elapsed = time.perf_counter() - t
            if round_ >= 2:
                wall[name].append(elapsed * 1000)
                cpu[name].append((usage.ru_utime + usage.ru_stime) * 1000)
    os.close(devnull)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]))
            for name in commands}


def _quote(cmd: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(c) for c in cmd)


def _first_item(home: Path) -> tuple[int, str, str]:
    """An item with the query tag, its reader identity (feed url, entry id)."""
    conn = sqlite3.connect(home / "var" / "aggregator.db")
    item_id, key, url = conn.execute(
        "SELECT i.id, s.entry_key, f.url FROM items i JOIN item_sources s ON s.item_id = i.id "
        "JOIN feeds f ON f.id = s.feed_id ORDER BY i.published DESC LIMIT 1").fetchone()
    conn.close()
    return item_id, url, key


def show_plans(home: Path) -> None:
    """EXPLAIN QUERY PLAN of the SQL the query, show and tags commands run."""
    from aggregator.timeutil import from_iso
    from aggregator.views import ItemQuery

    store = _open(home)
    captured: list[tuple[str, Any]] = []
    store.conn.set_trace_callback(lambda sql: captured.append((sql, None)))
    cases = {
        "query --tag": ItemQuery(tags=(query_tag(),)),
        "query --tag (rare)": ItemQuery(tags=(RARE_TAG,)),
        "query --tag --sort score": ItemQuery(tags=(query_tag(),), sort="score"),
        "query --tag --since 7d": ItemQuery(tags=(query_tag(),), since=END - timedelta(days=7)),
        "query --search": ItemQuery(search=SEARCH_WORD),
        "query (no filter)": ItemQuery(),
    }
    conn = sqlite3.connect(home / "var" / "aggregator.db")
    for label, q in cases.items():
        captured.clear()
        t = time.perf_counter()
        store.query_items(q)
        ms = (time.perf_counter() - t) * 1000
        print(f"\n== {label}: {ms:.1f} ms in the store")
        for sql, _ in captured:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            print("  " + sql[:160].replace("\n", " "))
            # The traced SQL has its parameters inlined already.
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql):
                print("     ", row[3])
    t = time.perf_counter()
    store.tag_counts(from_iso(TAGS_SINCE + "T00:00:00Z"), END)
    print(f"\n== tags: {(time.perf_counter() - t) * 1000:.1f} ms in the store")
    store.close()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "_build-reader":
        _build_reader_here(Path(sys.argv[2]), int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="35000,1000000",
                    help="Item counts, comma-separated (the first is compared with reader).")
    ap.add_argument("--runs", type=int, default=30, help="Runs per command.")
    ap.add_argument("--rebuild", action="store_true", help="Rebuild the cached databases.")
    ap.add_argument("--plans", action="store_true", help="Print query plans and store times.")
    ap.add_argument("--hyperfine", action="store_true",
                    help="Time with hyperfine (consecutive blocks, wall time only).")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "reader_cmd.py").write_text(READER_SCRIPT)
    # As a user runs it: no instance from the environment, and bytecode cached (a shell
    # with PYTHONDONTWRITEBYTECODE set would compile every module on every start).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGGREGATOR_") and k != "PYTHONDONTWRITEBYTECODE"}
    tag = query_tag()
    # One pool of commands for every size, interleaved, so that sizes compare fairly too.
    commands: dict[str, list[str]] = {
        "bare python": [str(OURS_PYTHON), "-c", "pass"],
        "bare python -I": [str(OURS_PYTHON), "-I", "-c", "pass"],
    }
    kinds = ["query", "show", "tags", "feeds list", "query score", "query search", "query rare"]
    for n in sizes:
        home = build_ours(n, args.rebuild)
        ensure_rare_tag(home)
        if args.plans:
            print(f"\n#### {n:,} items")
            show_plans(home)
        cli = [str(OURS_CLI), "--home", str(home)]
        item_id, feed_url, key = _first_item(home)
        commands |= {
            f"{n} query": [*cli, "query", "--tag", tag, "--limit", "50", "--format", "jsonl"],
            f"{n} show": [*cli, "show", str(item_id), "--format", "json"],
            f"{n} tags": [*cli, "tags", "--since", TAGS_SINCE, "--format", "jsonl"],
            f"{n} feeds list": [*cli, "feeds", "list", "--format", "jsonl"],
            f"{n} query score": [*cli, "query", "--tag", tag, "--sort", "score", "--limit", "50",
                                 "--format", "jsonl"],
            f"{n} query search": [*cli, "query", "--search", SEARCH_WORD, "--limit", "50",
                                  "--format", "jsonl"],
            f"{n} query rare": [*cli, "query", "--tag", RARE_TAG, "--limit", "50", "--format",
                                "jsonl"],
        }
        rdb = build_reader(n, args.rebuild) if n == sizes[0] else None
        if rdb:
            rcmd = [str(READER_PYTHON), str(CACHE / "reader_cmd.py"), str(rdb)]
            commands |= {"reader query": [*rcmd, "query", tag, "50"],
                         "reader show": [*rcmd, "show", feed_url, key],
                         "reader tags": [*rcmd, "tags"],
                         "reader feeds list": [*rcmd, "feeds"],
                         "reader bare python": [str(READER_PYTHON), "-c", "pass"]}
    results = time_commands(commands, args.runs, env, args.hyperfine)
    print(f"\nquery --tag {tag} --limit 50 --format jsonl; show ID --format json; tags --since "
          f"{TAGS_SINCE} --format jsonl; feeds list --format jsonl")
    for i, what in enumerate(["wall", "CPU (user+sys)"]):
        if args.hyperfine and i == 1:
            break
        ms = {name: r[i] for name, r in results.items()}
        bare = ms["bare python"]
        print(f"\n{what}: median of {args.runs} whole processes, ms; bare python {bare:.1f} "
              f"(-I {ms['bare python -I']:.1f}), reader's venv {ms.get('reader bare python', 0):.1f}")
        header = f"  {'command':<14}{'reader':>8}"
        for n in sizes:
            header += f"{f'ours {n // 1000}k':>11}{'reader/us':>10}{'us/bare':>9}"
        print(header + (f"{'1M/35k':>8}" if len(sizes) > 1 else ""))
        for k in kinds:
            theirs = ms.get(f"reader {k}")
            line = f"  {k:<14}" + (f"{theirs:>8.1f}" if theirs else f"{'':>8}")
            for n in sizes:
                mine = ms[f"{n} {k}"]
                line += f"{mine:>11.1f}" + (f"{theirs / mine:>9.1f}x" if theirs else f"{'':>10}")
                line += f"{mine / bare:>8.1f}x"
            if len(sizes) > 1:
                line += f"{ms[f'{sizes[-1]} {k}'] / ms[f'{sizes[0]} {k}']:>7.2f}x"
            print(line)
        # The headline: a whole `query` process against the interpreter starting and doing
        # nothing, in the same venv (the same site-packages .pth files and startup).
        print(f"  query vs a bare `python -c pass` in the same venv: "
              f"{ms[f'{sizes[0]} query'] / bare:.2f}x ({what}; bar <= 4x, goal <= 3x)")


if __name__ == "__main__":
    main()
