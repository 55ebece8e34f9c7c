"""The store's behaviour on a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.store.base import Attempt
from aggregator.store.sqlite import SQLiteStore
from aggregator.types import Entry, FeedConfig, ItemQuery, TagScore

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def entry(key: str, title: str = "Title", url: str | None = None, text: str = "Text",
          published: datetime = NOW) -> Entry:
    return Entry(key=key, title=title, url=url, canonical_url=url, summary=text,
                 content_html=f"<p>{text}</p>", published=published,
                 content_hash=f"{title}|{text}")


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "var" / "agg.db")
    s.sync_feeds([FeedConfig("wire", "https://wire.example/rss"),
                  FeedConfig("outlet", "https://outlet.example/rss", tags=("iran",))], NOW)
    yield s
    s.close()


def feed(store: SQLiteStore, name: str):
    return next(f for f in store.feeds() if f.name == name)


def test_migrations_are_numbered_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    SQLiteStore(path).close()
    SQLiteStore(path).close()
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sync_adds_updates_and_deactivates_keeping_items(store: SQLiteStore) -> None:
    store.save_entries(feed(store, "outlet"), [entry("a", url="https://outlet.example/a")], NOW)
    result = store.sync_feeds([FeedConfig("wire", "https://wire.example/atom")], NOW)
    assert result.updated == ("wire",) and result.deactivated == ("outlet",)
    assert [f.name for f in store.feeds()] == ["wire"]
    assert [f.name for f in store.feeds(include_inactive=True)] == ["outlet", "wire"]
    assert store.count_items() == 1


def test_new_changed_and_known_entries(store: SQLiteStore) -> None:
    wire = feed(store, "wire")
    first = store.save_entries(wire, [entry("g1", url="https://x.example/1"),
                                      entry("g2", url="https://x.example/2")], NOW)
    assert len(first.new_item_ids) == 2 and not first.updated_item_ids
    again = store.save_entries(wire, [entry("g1", url="https://x.example/1")], NOW)
    assert again.new_item_ids == () and again.updated_item_ids == ()
    # A title edited after publication: same item, updated, to be classified again.
    edited = store.save_entries(wire, [entry("g1", title="Title (updated)",
                                             url="https://x.example/1")], NOW)
    assert edited.updated_item_ids == (first.new_item_ids[0],)
    assert store.count_items() == 2
    assert {i.id for i in store.items_to_classify(10)} == set(first.new_item_ids)


def test_same_canonical_url_from_two_feeds_is_one_item_with_two_sources(store: SQLiteStore) -> None:
    a = store.save_entries(feed(store, "wire"), [entry("w-1", url="https://x.example/story")],
                           NOW)
    b = store.save_entries(feed(store, "outlet"),
                           [entry("o-9", url="https://x.example/story")], NOW + timedelta(hours=1))
    assert b.new_item_ids == ()
    item = store.get_item(a.new_item_ids[0])
    assert item is not None
    assert [s.feed for s in item.sources] == ["wire", "outlet"]
    assert store.query_items(ItemQuery(feeds=("outlet",)))[0].id == item.id


def test_user_label_outranks_model_and_survives_reclassification(store: SQLiteStore) -> None:
    (item_id,) = store.save_entries(feed(store, "wire"), [entry("k")], NOW).new_item_ids
    store.write_model_tags([(item_id, [TagScore("iran", 0.9, "model", "v1"),
                                       TagScore("israel", 0.7, "model", "v1")])], NOW)
    store.set_labels(item_id, add=["russia"], remove=["israel"], now=NOW)
    store.write_model_tags([(item_id, [TagScore("iran", 0.8, "model", "v2"),
                                       TagScore("israel", 0.9, "model", "v2"),
                                       TagScore("russia", 0.2, "model", "v2")])], NOW)
    tags = {t.tag: t for t in store.get_item(item_id).tags}  # type: ignore[union-attr]
    assert set(tags) == {"iran", "russia"}
    assert tags["russia"].source == "user" and tags["russia"].score == 1.0
    assert tags["iran"].model_version == "v2"


def test_query_filters(store: SQLiteStore) -> None:
    wire = feed(store, "wire")
    ids = store.save_entries(wire, [
        entry("1", "Moscow and Tehran sign a treaty", "https://x.example/1",
              published=NOW - timedelta(days=3)),
        entry("2", "Tehran water crisis", "https://x.example/2", published=NOW - timedelta(days=1)),
        entry("3", "Football results", "https://x.example/3", published=NOW),
    ], NOW).new_item_ids
    store.write_model_tags([(ids[0], [TagScore("russia-iran", 0.8), TagScore("iran", 0.9)]),
                            (ids[1], [TagScore("iran", 0.6)]), (ids[2], [])], NOW)
    titles = lambda q: [i.title for i in store.query_items(q)]  # noqa: E731
    assert titles(ItemQuery(tags=("iran",))) == ["Tehran water crisis",
                                                 "Moscow and Tehran sign a treaty"]
    assert titles(ItemQuery(tags=("iran",), min_score=0.7)) == ["Moscow and Tehran sign a treaty"]
    assert titles(ItemQuery(since=NOW - timedelta(days=2))) == ["Football results",
                                                                "Tehran water crisis"]
    assert titles(ItemQuery(not_tags=("iran",))) == ["Football results"]
    assert titles(ItemQuery(search="tehran NOT treaty")) == ["Tehran water crisis"]
    assert titles(ItemQuery(limit=1)) == ["Football results"]


def test_attempts_are_bounded_per_feed(store: SQLiteStore) -> None:
    wire = feed(store, "wire")
    for n in range(8):
        store.update_feed(wire, Attempt(wire.id, NOW + timedelta(minutes=n), 200, 5, 100, None),
                          attempts_kept=3)
    kept = store.attempts(wire.id)
    assert [a.at.minute for a in kept] == [7, 6, 5]


def test_a_failed_write_leaves_nothing_half_done(store: SQLiteStore) -> None:
    wire = feed(store, "wire")
    bad = entry("x", url="https://x.example/x")
    with pytest.raises(AttributeError):
        store.save_entries(wire, [entry("ok", url="https://x.example/ok"), bad, None], NOW)  # type: ignore[list-item]
    assert store.count_items() == 0
