"""query_items finds its page by several routes (SQLiteStore._page_ids): each must give
what the plain query gave, on both engines, and on SQLite each must read indexes, never
scan the items or sort every match (the 1M-item timings are in bench/bench_query.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgschema import pg_url  # noqa: F401  (the fixture, used through ``store``)

from aggregator.store.base import Store
from aggregator.store.core import VIEW_SELECT
from aggregator.store.postgres import PostgresStore
from aggregator.store.sqlite import SQLiteStore
from aggregator.types import Entry
from aggregator.views import FeedConfig, ItemQuery, TagScore

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@dataclass
class Stored:
    """What was written, to compute each query's answer independently of the store."""

    published: dict[int, datetime] = field(default_factory=dict)
    tags: dict[int, dict[str, float]] = field(default_factory=dict)
    words: dict[int, set[str]] = field(default_factory=dict)
    feed: dict[int, str] = field(default_factory=dict)


def fill(store: Store) -> Stored:
    """60 items over two feeds: 'common' on most, 'rare' on three, 'old' only on the
    oldest; scores and dates with ties; 'alpha' in most texts, 'beta' in a few."""
    store.sync_feeds([FeedConfig("wire", "https://wire.example/rss"),
                      FeedConfig("outlet", "https://outlet.example/rss")], NOW)
    feeds = {f.name: f for f in store.feeds()}
    stored = Stored()
    for n in range(60):
        name = "wire" if n % 3 else "outlet"
        words = {f"w{n}", "alpha" if n % 4 else "gamma", *(["beta"] if n % 17 == 5 else [])}
        # Two items an hour, so published ties; newer items have higher n.
        published = NOW - timedelta(hours=60 - n // 2)
        e = Entry(key=f"k{n}", title=" ".join(sorted(words)), url=f"https://x.example/{n}",
                  canonical_url=f"https://x.example/{n}", summary=f"Story number {n}",
                  content_html="", published=published, content_hash=str(n))
        (item_id,) = store.save_entries(feeds[name], [e], NOW).new_item_ids
        tags = {"common": (0.5, 0.9, 0.7)[n % 3]} if n % 5 else {}
        if n in (7, 31, 44):
            tags["rare"] = 0.6 + n / 100
        if n < 12:
            tags["old"] = 0.9 if n % 2 else 0.4
        store.write_model_tags([(item_id, [TagScore(t, s, "model", "v1")
                                           for t, s in tags.items()])], NOW)
        stored.published[item_id], stored.tags[item_id] = published, tags
        stored.words[item_id], stored.feed[item_id] = words, name
    return stored


def expected(s: Stored, q: ItemQuery) -> list[int]:
    """The documented answer: every filter (AND), newest first or best score first, ties
    by date and then by id, newest first."""

    def has(i: int, tag: str) -> bool:
        return tag in s.tags[i] and (q.min_score is None or s.tags[i][tag] >= q.min_score)

    ids = [i for i in s.published
           if all(has(i, t) for t in q.tags)
           and (not q.any_tags or any(has(i, t) for t in q.any_tags))
           and not any(t in s.tags[i] for t in q.not_tags)
           and (not q.feeds or s.feed[i] in q.feeds)
           and (q.since is None or s.published[i] >= q.since)
           and (q.until is None or s.published[i] < q.until)
           and (q.search is None or q.search in s.words[i])]
    ranked = q.tags or q.any_tags
    if q.sort == "score" and ranked:
        ids.sort(key=lambda i: (max(s.tags[i].get(t, -1) for t in ranked),
                                s.published[i], i), reverse=True)
    else:
        ids.sort(key=lambda i: (s.published[i], i), reverse=True)
    return ids[:q.limit] if q.limit else ids


QUERIES = {
    "common tag": ItemQuery(tags=("common",), limit=5),
    "rare tag": ItemQuery(tags=("rare",), limit=5),
    "old tag": ItemQuery(tags=("old",), limit=4),
    "two tags": ItemQuery(tags=("common", "old"), limit=3),
    "any tags": ItemQuery(any_tags=("rare", "old"), limit=6),
    "tag, not tag": ItemQuery(tags=("common",), not_tags=("old",), limit=7),
    "tag, min score": ItemQuery(tags=("common",), min_score=0.8, limit=6),
    "tag, feed": ItemQuery(tags=("common",), feeds=("outlet",), limit=4),
    "tag, since": ItemQuery(tags=("common",), since=NOW - timedelta(hours=20), limit=50),
    "tag, until": ItemQuery(tags=("common",), until=NOW - timedelta(hours=40), limit=5),
    "tag, no limit": ItemQuery(tags=("common",), limit=None),
    "rare, no limit": ItemQuery(tags=("rare",), limit=None),
    "score": ItemQuery(tags=("common",), sort="score", limit=8),
    "score, rare": ItemQuery(tags=("rare",), sort="score", limit=2),
    "score, old, feed": ItemQuery(tags=("old",), feeds=("wire",), sort="score", limit=3),
    "score, any": ItemQuery(any_tags=("old",), sort="score", limit=5),
    "score, two": ItemQuery(tags=("common", "old"), sort="score", limit=5),
    "score, no limit": ItemQuery(tags=("common",), sort="score", limit=None),
    "search common": ItemQuery(search="alpha", limit=6),
    "search rare": ItemQuery(search="beta", limit=6),
    "search, tag": ItemQuery(tags=("common",), search="alpha", limit=4),
    "search, old tag": ItemQuery(tags=("old",), search="alpha", limit=4),
    "search, rare tag": ItemQuery(tags=("rare",), search="gamma", limit=4),
    "search, none": ItemQuery(search="nothing", limit=4),
    "unknown tag": ItemQuery(tags=("nope",), limit=4),
    "feed only": ItemQuery(feeds=("outlet",), limit=5),
}
# (FEW, WINDOW) of SQLiteStore: the defaults, then small enough that each query above
# takes the window, the walk on down and the fallback to a tag's or a search's matches.
ROUTES = [(SQLiteStore.FEW, SQLiteStore.WINDOW), (2, 10), (3, 1), (1000, 2)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = (SQLiteStore(tmp_path / "agg.db") if request.param == "sqlite"
                else PostgresStore(request.getfixturevalue("pg_url")))
    yield s
    s.close()


def test_every_route_gives_the_plain_answer(store: Store) -> None:
    stored = fill(store)
    routes = ROUTES if isinstance(store, SQLiteStore) else [None]
    for route in routes:
        if isinstance(store, SQLiteStore) and route is not None:
            store.FEW, store.WINDOW = route
        for name, q in QUERIES.items():
            assert [v.id for v in store.query_items(q)] == expected(stored, q), (name, route)


def test_a_whole_view_comes_back_in_order(store: Store) -> None:
    stored = fill(store)
    views = store.query_items(ItemQuery(tags=("rare",), sort="score"))
    assert [v.id for v in views] == expected(stored, ItemQuery(tags=("rare",), sort="score"))
    assert [(t.tag, t.score) for t in views[0].tags] == sorted(
        stored.tags[views[0].id].items(), key=lambda kv: -kv[1])
    assert views[0].feed == stored.feed[views[0].id] and views[0].summary.startswith("Story")


# -- SQLite: the plans ---------------------------------------------------------------------


def plans(store: SQLiteStore, q: ItemQuery) -> list[str]:
    """EXPLAIN QUERY PLAN of the SELECTs query_items runs for q to find its page (not
    those reading the page's rows and tags by id), one line per step."""
    ran: list[str] = []
    store.conn.set_trace_callback(ran.append)  # the SQL with its parameters filled in
    try:
        store.query_items(q)
    finally:
        store.conn.set_trace_callback(None)
    conn = sqlite3.connect(store.path)
    try:
        return [f"{n}: {row[3]}" for n, sql in enumerate(ran)
                if sql.lstrip().upper().startswith("SELECT")
                and not sql.startswith(VIEW_SELECT) and "WHERE item_id IN" not in sql
                for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "agg.db")
    fill(s)
    yield s
    s.close()


def assert_no_scan(steps: list[str]) -> None:
    for step in steps:
        # A scan of items or item_tags is a read of every row; of a covering index
        # (the date order, walked until the page is full) it is not, nor of a subquery's
        # rows (a LIMITed count of a tag's matches), whose own steps are checked here too.
        if " SCAN " in f" {step.split(': ', 1)[1]}" and "(subquery-" not in step:
            assert "INDEX" in step, steps


def test_sort_by_score_walks_the_tag_score_index(sqlite_store: SQLiteStore) -> None:
    steps = plans(sqlite_store, ItemQuery(tags=("common",), sort="score"))
    assert_no_scan(steps)
    assert any("item_tags_tag (tag=?)" in s for s in steps), steps
    # Only ties on score are sorted: no sort of every item with the tag.
    assert any("RIGHT PART OF ORDER BY" in s for s in steps), steps
    assert not any(s.endswith("USE TEMP B-TREE FOR ORDER BY") for s in steps), steps


def test_a_rare_tag_starts_from_its_items(sqlite_store: SQLiteStore) -> None:
    steps = plans(sqlite_store, ItemQuery(tags=("rare",)))
    assert_no_scan(steps)
    assert any("item_tags_tag (tag=?)" in s for s in steps), steps
    assert any("COVERING INDEX items_id_published" in s for s in steps), steps
    assert not any("items_published" in s for s in steps), steps


def test_a_common_tag_walks_the_date_index_within_a_window(sqlite_store: SQLiteStore) -> None:
    sqlite_store.FEW, sqlite_store.WINDOW = 2, 30
    steps = plans(sqlite_store, ItemQuery(tags=("common",), limit=5))
    assert_no_scan(steps)
    assert any("items_published (published>?)" in s for s in steps), steps
    assert not any(s.endswith("USE TEMP B-TREE FOR ORDER BY") for s in steps), steps


def test_a_common_search_reads_only_the_windows_matches(sqlite_store: SQLiteStore) -> None:
    sqlite_store.FEW, sqlite_store.WINDOW = 2, 30
    steps = plans(sqlite_store, ItemQuery(search="alpha", limit=5))
    assert_no_scan(steps)
    # The FTS5 lookup is bounded by rowid (>= and <=), not every match of the term.
    assert any("items_fts VIRTUAL TABLE INDEX 0:M" in s and ">" in s and "<" in s
               for s in steps), steps
    assert not any(s.endswith("USE TEMP B-TREE FOR ORDER BY") for s in steps), steps
