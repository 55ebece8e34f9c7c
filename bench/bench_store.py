"""Store benchmark: the SQLite store at the size of a cold ingest (~35k items).

The entries are the loopback feed world's (bench/feedworld.py: 1,000 feeds, ~35k
entries), parsed once up front (not timed). Then, on new database files:

1. storing: ``save_entries`` per feed (one transaction each, as a fetch pass does), with
   the FTS5 triggers, and again with the triggers dropped: the difference is what keeping
   the search index current costs, given as items/s (reader's ``update_search`` indexed
   6,840 items in 6.2 s here: ~1,100 items/s; bench_ingest.py measures it each run);
2. tag writes: ``write_model_tags`` for every item, three tags each, 2,000 items a batch
   (one transaction, executemany); reader's ``set_tag`` did ~10.5k tags/s here;
3. size: bytes per item, by table and index (dbstat), with plain-text descriptions'
   HTML left out (``normalize.stored_html``) and, for comparison, stored beside the text;
4. retention: ``prune`` of about half the items, then the file's size.

    .venv/bin/python -m bench.bench_store [--feeds 1000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.parse import normalize
from aggregator.parse.feeds import parse_feed
from aggregator.store.sqlite import SQLiteStore
from aggregator.types import Entry
from aggregator.views import FeedConfig, TagScore
from bench.feedworld import FeedWorld

NOW = datetime(2026, 1, 2, tzinfo=UTC)
GOALS = {"tags/s": 50_000, "fts items/s": 5 * 6840 / 6.2}


def world_entries(feeds: int) -> list[tuple[str, list[Entry]]]:
    world = FeedWorld(feeds=feeds, hosts=50)
    out = []
    for f in world.feeds:
        body = f.response_200.split(b"\r\n\r\n", 1)[1]
        parsed = parse_feed(body, NOW, url=f"http://{world.host(f.index)}{world.path(f.index)}")
        out.append((f"f{f.index:04d}", list(parsed.entries)))
    return out


class _Unindexed(SQLiteStore):
    """The store without its search index: the baseline that prices keeping it current."""

    @staticmethod
    def _index_for_search(c: sqlite3.Connection, item_ids: Sequence[int]) -> None:
        return None


def ingest(path: Path, feeds: list[tuple[str, list[Entry]]], *,
           fts: bool = True) -> tuple[SQLiteStore, float]:
    store = SQLiteStore(path) if fts else _Unindexed(path)
    store.sync_feeds([FeedConfig(name, f"http://example.org/{name}") for name, _ in feeds], NOW)
    by_name = {f.name: f for f in store.feeds()}
    started = time.perf_counter()
    for name, entries in feeds:
        store.save_entries(by_name[name], entries, NOW)
    return store, time.perf_counter() - started


def sizes(path: Path) -> tuple[int, dict[str, int]]:
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        return path.stat().st_size, dict(rows.fetchall())


@contextmanager
def html_kept() -> Iterator[None]:
    """Store every item's HTML beside its text, as before stored_html (for comparison)."""
    original = normalize.stored_html
    normalize.stored_html = lambda text, html: html  # type: ignore[assignment]
    try:
        yield
    finally:
        normalize.stored_html = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--feeds", type=int, default=1000)
    args = parser.parse_args()
    feeds = world_entries(args.feeds)
    n = sum(len(e) for _, e in feeds)
    print(f"{len(feeds)} feeds, {n} entries (parsed up front, not timed)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store, with_fts = ingest(work / "a.db", feeds)
        bare, without_fts = ingest(work / "b.db", feeds, fts=False)
        bare.close()
        fts_cost = max(with_fts - without_fts, 1e-9)
        print(f"\nstore, {len(feeds)} transactions: {with_fts:.2f} s with the search index "
              f"({n / with_fts:,.0f} items/s), {without_fts:.2f} s without")
        print(f"search index kept current: {fts_cost:.2f} s, {n / fts_cost:,.0f} items/s "
              f"(goal >= {GOALS['fts items/s']:,.0f}: 5x reader's update_search)")
        started = time.perf_counter()
        store.conn.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")
        rebuild = time.perf_counter() - started
        print(f"  (a full FTS5 rebuild of the same items: {rebuild:.2f} s, {n / rebuild:,.0f} items/s)")

        ids = [r[0] for r in store.conn.execute("SELECT id FROM items ORDER BY id")]
        results = [(i, [TagScore("iran", 0.9, "model", "v1", ("iran", "tehran")),
                        TagScore("russia", 0.7, "model", "v1", ("moscow",)),
                        TagScore("energy", 0.55, "model", "v1", ())]) for i in ids]
        started = time.perf_counter()
        written = sum(store.write_model_tags(results[b:b + 2000], NOW)
                      for b in range(0, len(results), 2000))
        took = time.perf_counter() - started
        print(f"\ntag writes: {written:,} tags in {took:.2f} s, {written / took:,.0f} tags/s "
              f"(goal >= {GOALS['tags/s']:,}; reader's set_tag ~10.5k/s)")
        started = time.perf_counter()
        again = sum(store.write_model_tags(results[b:b + 2000], NOW)
                    for b in range(0, len(results), 2000))
        took = time.perf_counter() - started
        print(f"  rewritten (a new model version over the same items): {again / took:,.0f} tags/s")
        store.close()

        with html_kept():
            kept, _ = ingest(work / "c.db", feeds)
        kept.close()
        for label, path in (("HTML only when it has markup (in use), 3 tags an item", work / "a.db"),
                            ("HTML always stored beside the text, no tags", work / "c.db")):
            total, parts = sizes(path)
            print(f"\nsize, {label}: {total / n:,.0f} bytes per item ({total / 2**20:.1f} MiB)")
            for name, size in list(parts.items())[:8]:
                print(f"  {name:32} {size / n:8.0f} B/item")

        store = SQLiteStore(work / "a.db")
        published = sorted(r[0] for r in store.conn.execute("SELECT published FROM items"))
        cut = datetime.fromisoformat(published[len(published) // 2].replace("Z", "+00:00"))
        store.conn.execute("UPDATE items SET first_seen = ?", ("2025-01-01T00:00:00Z",))
        before = sizes(work / "a.db")[0]
        started = time.perf_counter()
        removed = store.prune(cut + timedelta(seconds=0))
        took = time.perf_counter() - started
        store.close()
        after = sizes(work / "a.db")[0]
        print(f"\nprune: {removed:,} items in {took:.2f} s; file {before / 2**20:.1f} -> "
              f"{after / 2**20:.1f} MiB (incremental vacuum)")


if __name__ == "__main__":
    main()
