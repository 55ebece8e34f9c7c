"""Stories, retention and batched tag writes, on real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.store.sqlite import SQLiteStore
from aggregator.types import Entry
from aggregator.views import FeedConfig, ItemQuery, TagScore

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TEXT = ("Iran and Russia signed an accord on Tuesday to build a gas pipeline across the "
        "Caspian Sea, officials in Tehran said, a step both governments called strategic. "
        "The pipeline would carry up to 20 billion cubic metres a year.")
TITLE = "Iran and Russia sign a gas pipeline accord"
OTHER = ("Turkey's central bank raised its main interest rate by five points on Thursday, "
         "its fourth increase this year, as inflation stayed above sixty percent.")


def entry(key: str, url: str, title: str = TITLE, text: str = TEXT,
          published: datetime = NOW) -> Entry:
    return Entry(key=key, title=title, url=url, canonical_url=url, summary=text,
                 content_html=f"<p>{text}</p>", published=published,
                 content_hash=f"{title}|{text}")


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "agg.db")
    s.sync_feeds([FeedConfig("wire", "https://wire.example/rss"),
                  FeedConfig("outlet", "https://outlet.example/rss"),
                  FeedConfig("blog", "https://blog.example/rss")], NOW)
    yield s
    s.close()


def feed(store: SQLiteStore, name: str):
    return next(f for f in store.feeds() if f.name == name)


def save(store: SQLiteStore, name: str, *entries: Entry, at: datetime = NOW) -> tuple[int, ...]:
    return store.save_entries(feed(store, name), list(entries), at).new_item_ids


def test_copies_from_other_feeds_become_one_story_and_stay_items(store: SQLiteStore) -> None:
    (wire,) = save(store, "wire", entry("w1", "https://wire.example/1"))
    (copy,) = save(store, "outlet", entry("o1", "https://outlet.example/9", title=TITLE.upper(),
                                          text="MOSCOW (Reuters) - " + TEXT,
                                          published=NOW + timedelta(hours=2)),
                   at=NOW + timedelta(hours=3))
    (other,) = save(store, "blog", entry("b1", "https://blog.example/1", "Rates", OTHER))
    # Nothing merged or deleted: three items, each feed's entry kept.
    assert store.count_items() == 3
    rows = store.query_stories(ItemQuery())
    assert sorted((v.id, s.id, s.items) for v, s in rows) == [(wire, wire, 2), (other, other, 1)]
    assert copy not in {v.id for v, _ in rows}
    view, story = next((v, s) for v, s in rows if s.id == wire)
    assert view.id == wire  # the earliest published item stands for the story
    assert [s.feed for s in story.sources] == ["wire", "outlet"] and story.first == "wire"
    # A filter that only the copy matches still finds the story, shown by its first item.
    (hit,) = store.query_stories(ItemQuery(feeds=("outlet",)))
    assert hit[0].id == wire and hit[1].items == 2


def test_the_story_is_whoever_published_first_and_a_window_bounds_it(store: SQLiteStore) -> None:
    (late,) = save(store, "outlet", entry("o1", "https://outlet.example/1",
                                          published=NOW + timedelta(hours=5)))
    (early,) = save(store, "wire", entry("w1", "https://wire.example/1"))
    (view, story), = store.query_stories(ItemQuery())
    assert view.id == early and story.first == "wire" and story.id == late
    # The same text a week later is news again, not a copy.
    (again,) = save(store, "blog", entry("b1", "https://blog.example/1",
                                         published=NOW + timedelta(days=7)))
    assert len(store.query_stories(ItemQuery())) == 2
    assert store.query_stories(ItemQuery(feeds=("blog",)))[0][1].id == again


def test_short_texts_are_never_grouped(store: SQLiteStore) -> None:
    save(store, "wire", entry("w1", "https://wire.example/1", "Press review", "Today's papers."))
    save(store, "outlet", entry("o1", "https://outlet.example/1", "Press review", "Today's papers."))
    assert len(store.query_stories(ItemQuery())) == 2


def test_digest_candidates_show_a_story_once_with_all_its_sources(store: SQLiteStore) -> None:
    (wire,) = save(store, "wire", entry("w1", "https://wire.example/1"))
    (copy,) = save(store, "outlet", entry("o1", "https://outlet.example/1",
                                          text="AP - " + TEXT), at=NOW + timedelta(minutes=5))
    store.write_model_tags([(wire, [TagScore("iran", 0.6)]),
                            (copy, [TagScore("iran", 0.9), TagScore("russia", 0.7)])], NOW)
    found = store.digest_candidates(ItemQuery(any_tags=("iran",)), NOW - timedelta(hours=1),
                                    NOW + timedelta(hours=1))
    assert [v.id for v in found] == [wire]
    assert [s.feed for s in found[0].sources] == ["wire", "outlet"]
    assert {t.tag for t in found[0].tags} == {"iran", "russia"} and \
        found[0].tag("iran").score == 0.9  # type: ignore[union-attr]
    # Once the story went out, a copy arriving later is the same id: the ledger holds it.
    store.record_delivery("daily", ["a@example.org"], [wire], NOW, "<m@x>", NOW)
    save(store, "blog", entry("b1", "https://blog.example/1", text="BEIRUT — " + TEXT),
         at=NOW + timedelta(hours=2))
    later = store.digest_candidates(ItemQuery(), NOW + timedelta(hours=1), NOW + timedelta(hours=3))
    assert [v.id for v in later] == [wire]
    assert store.delivered("a@example.org", [v.id for v in later]) == {wire}


def test_query_story_json_field_only_when_asked(store: SQLiteStore) -> None:
    from io import StringIO

    from aggregator import output

    save(store, "wire", entry("w1", "https://wire.example/1"))
    save(store, "outlet", entry("o1", "https://outlet.example/1"), at=NOW + timedelta(hours=1))
    plain, stories = StringIO(), StringIO()
    output.write_jsonl(store.query_items(ItemQuery()), plain)
    rows = store.query_stories(ItemQuery())
    output.write_jsonl([v for v, _ in rows], stories, stories={v.id: s for v, s in rows})
    assert all("story" not in json.loads(line) for line in plain.getvalue().splitlines())
    (line,) = stories.getvalue().splitlines()
    story = json.loads(line)["story"]
    assert set(story) == {"id", "items", "sources", "first"}
    assert story["items"] == 2 and story["first"] == "wire"
    assert [s["feed"] for s in story["sources"]] == ["wire", "outlet"]
    assert set(story["sources"][0]) == {"feed", "url", "published"}


def test_prune_keeps_labelled_items_and_takes_the_rest_with_their_rows(tmp_path: Path) -> None:
    path = tmp_path / "agg.db"
    store = SQLiteStore(path)
    store.sync_feeds([FeedConfig("wire", "https://wire.example/rss")], NOW)
    wire = feed(store, "wire")
    old = NOW - timedelta(days=400)
    ids = store.save_entries(wire, [entry(f"o{n}", f"https://wire.example/o{n}",
                                          f"Old story {n}", f"{OTHER} {n}", published=old)
                                    for n in range(50)], old).new_item_ids
    (fresh,) = store.save_entries(wire, [entry("new", "https://wire.example/new")], NOW).new_item_ids
    store.write_model_tags([(i, [TagScore("iran", 0.8)]) for i in [*ids, fresh]], NOW)
    store.set_labels(ids[0], add=["iran"], remove=[], now=NOW)
    store.set_labels(ids[1], add=[], remove=["iran"], now=NOW)  # "not iran" is a label too
    store.record_delivery("daily", ["a@example.org"], list(ids[:5]), NOW, "<m@x>", NOW)
    assert store.prune(NOW - timedelta(days=365)) == 48
    assert {v.id for v in store.query_items(ItemQuery(limit=None))} == {ids[0], ids[1], fresh}
    c = sqlite3.connect(path)
    kept = (ids[0], ids[1], fresh)
    for table in ("item_sources", "item_tags", "deliveries"):
        left = {r[0] for r in c.execute(f"SELECT item_id FROM {table}")}
        assert left <= set(kept), table
    # The search index lost the pruned rows too.
    assert store.query_items(ItemQuery(search="Old")) == \
        [v for v in store.query_items(ItemQuery(search="Old")) if v.id in kept]
    assert len(store.query_items(ItemQuery(search="Old"))) == 2
    assert c.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental, from creation
    assert c.execute("PRAGMA freelist_count").fetchone()[0] == 0  # pages given back
    c.close()
    # A pruned entry the feed still carries comes back as new, not as an error.
    again = store.save_entries(wire, [entry("o9", "https://wire.example/o9", "Old story 9",
                                            f"{OTHER} 9", published=old)], NOW)
    assert len(again.new_item_ids) == 1
    store.close()


def test_prune_hands_a_story_to_its_next_item(store: SQLiteStore) -> None:
    old = NOW - timedelta(days=400)
    (first,) = save(store, "wire", entry("w1", "https://wire.example/1", published=old), at=old)
    (second,) = save(store, "outlet", entry("o1", "https://outlet.example/1", published=old),
                     at=old)
    (third,) = save(store, "blog", entry("b1", "https://blog.example/1", published=old), at=old)
    store.set_labels(second, add=["iran"], remove=[], now=NOW)
    store.set_labels(third, add=["iran"], remove=[], now=NOW)
    assert store.prune(NOW) == 1
    ((view, story),) = store.query_stories(ItemQuery())
    assert story.id == second and story.items == 2 and {view.id} <= {second, third}
    assert first not in {v.id for v in store.query_items(ItemQuery())}


def test_batched_tag_writes_keep_precedence_and_mark_items(store: SQLiteStore) -> None:
    ids = save(store, "wire", *(entry(f"k{n}", f"https://wire.example/{n}", f"Story {n}",
                                      f"{OTHER} number {n}") for n in range(300)))
    store.set_labels(ids[0], add=["russia"], remove=["iran"], now=NOW)
    results = [(i, [TagScore("iran", 0.7, "model", "v1"), TagScore("russia", 0.4, "model", "v1")])
               for i in ids]
    assert store.write_model_tags(results, NOW) == 600
    assert store.items_to_classify(1000) == []
    first = store.get_item(ids[0])
    assert first is not None
    # The user's label outranks the model; their "not iran" keeps the model's iran out.
    assert {(t.tag, t.source) for t in first.tags} == {("russia", "user")}
    rest = store.query_items(ItemQuery(tags=("iran",), limit=None))
    assert len(rest) == 299 and all(len(v.tags) == 2 for v in rest)
    # A second batch replaces the model's tags rather than adding to them.
    store.write_model_tags([(i, [TagScore("israel", 0.9, "model", "v2")]) for i in ids[1:]], NOW)
    assert store.query_items(ItemQuery(tags=("iran",))) == []
    assert len(store.query_items(ItemQuery(tags=("israel",), limit=None))) == 299


def test_query_story_on_the_command_line(instance_dir: Path) -> None:
    import subprocess
    import sys

    from aggregator.config import load_config
    from aggregator.instance import Instance

    config = load_config(Instance(instance_dir))
    s = SQLiteStore(config.database_url.removeprefix("sqlite:///"))
    s.sync_feeds([FeedConfig("wire", "https://wire.example/rss"),
                  FeedConfig("outlet", "https://outlet.example/rss")], NOW)
    save(s, "wire", entry("w1", "https://wire.example/1"))
    save(s, "outlet", entry("o1", "https://outlet.example/1", text="AP - " + TEXT),
         at=NOW + timedelta(hours=1))
    s.close()

    def run(*args: str) -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "aggregator", "--home", str(instance_dir),
                               "query", "--format", "jsonl", *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    plain = run()
    assert len(plain) == 2 and all("story" not in row for row in plain)
    (row,) = run("--story")
    assert row["story"]["items"] == 2 and row["story"]["first"] == "wire"
    assert set(row) >= {"id", "title", "url", "feed", "published", "summary", "tags", "story"}
