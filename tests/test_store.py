"""The store's behaviour, the same on both engines: every test that takes ``store`` runs
on a real SQLite file and on a fresh schema of a real PostgreSQL server (skipped, naming
the URL, where none is reachable)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pgschema import pg_url  # noqa: F401  (the fixture, used through ``pg``)

from aggregator.errors import ConfigError, UsageError
from aggregator.store.base import Store
from aggregator.store.postgres import MIGRATIONS as PG_MIGRATIONS
from aggregator.store.postgres import PostgresStore
from aggregator.store.sqlite import MIGRATIONS, SQLiteStore
from aggregator.types import Attempt, Entry
from aggregator.views import FeedConfig, ItemQuery, TagScore

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def entry(key: str, title: str = "Title", url: str | None = None, text: str = "Text",
          published: datetime = NOW) -> Entry:
    return Entry(key=key, title=title, url=url, canonical_url=url, summary=text,
                 content_html=f"<p>{text}</p>", published=published,
                 content_hash=f"{title}|{text}")


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> str:
    """A URL on a fresh PostgreSQL schema (skips where there is no server)."""
    return str(request.getfixturevalue("pg_url"))


def open_engine(request: pytest.FixtureRequest, tmp_path: Path, engine: str) -> Store:
    if engine == "sqlite":
        return SQLiteStore(tmp_path / "var" / "agg.db")
    return PostgresStore(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    s = open_engine(request, tmp_path, request.param)
    s.sync_feeds([FeedConfig("wire", "https://wire.example/rss"),
                  FeedConfig("outlet", "https://outlet.example/rss", tags=("iran",))], NOW)
    yield s
    s.close()


def feed(store: Store, name: str):
    return next(f for f in store.feeds() if f.name == name)


def test_migrations_are_numbered_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    SQLiteStore(path).close()
    SQLiteStore(path).close()
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT version FROM schema_migrations").fetchall() == [
            (int(m.name.split("_")[0]),) for m in sorted(Path(MIGRATIONS).glob("*.sql"))]
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sync_adds_updates_and_deactivates_keeping_items(store: Store) -> None:
    store.save_entries(feed(store, "outlet"), [entry("a", url="https://outlet.example/a")], NOW)
    result = store.sync_feeds([FeedConfig("wire", "https://wire.example/atom")], NOW)
    assert result.updated == ("wire",) and result.deactivated == ("outlet",)
    assert [f.name for f in store.feeds()] == ["wire"]
    assert [f.name for f in store.feeds(include_inactive=True)] == ["outlet", "wire"]
    assert store.count_items() == 1


def test_new_changed_and_known_entries(store: Store) -> None:
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


def test_items_to_classify_carry_their_link(store: Store) -> None:
    # The link's path names the site's section (/opinion/), which the genre heads read.
    store.save_entries(feed(store, "wire"), [entry("op", url="https://x.example/opinion/2026/truce")], NOW)
    (item,) = store.items_to_classify(10)
    assert item.url == "https://x.example/opinion/2026/truce"


def test_same_canonical_url_from_two_feeds_is_one_item_with_two_sources(store: Store) -> None:
    a = store.save_entries(feed(store, "wire"), [entry("w-1", url="https://x.example/story")],
                           NOW)
    b = store.save_entries(feed(store, "outlet"),
                           [entry("o-9", url="https://x.example/story")], NOW + timedelta(hours=1))
    assert b.new_item_ids == ()
    item = store.get_item(a.new_item_ids[0])
    assert item is not None
    assert [s.feed for s in item.sources] == ["wire", "outlet"]
    assert store.query_items(ItemQuery(feeds=("outlet",)))[0].id == item.id


def test_user_label_outranks_model_and_survives_reclassification(store: Store) -> None:
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


def test_query_filters(store: Store) -> None:
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


def test_attempts_are_bounded_per_feed(store: Store) -> None:
    wire = feed(store, "wire")
    for n in range(8):
        store.update_feed(wire, Attempt(wire.id, NOW + timedelta(minutes=n), 200, 5, 100, None),
                          attempts_kept=3)
    kept = store.attempts(wire.id)
    assert [a.at.minute for a in kept] == [7, 6, 5]


def test_a_failed_write_leaves_nothing_half_done(store: Store) -> None:
    wire = feed(store, "wire")
    bad = entry("x", url="https://x.example/x")
    with pytest.raises(AttributeError):
        store.save_entries(wire, [entry("ok", url="https://x.example/ok"), bad, None], NOW)  # type: ignore[list-item]
    assert store.count_items() == 0


def test_a_feeds_writes_in_one_sqlite_transaction_commit_or_vanish_together(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.sync_feeds([FeedConfig("wire", "https://wire.example/rss")], NOW)
    wire = feed(store, "wire")
    with pytest.raises(RuntimeError), store.transaction():
        store.save_entries(wire, [entry("one", url="https://x.example/1")], NOW)
        store.update_feed(replace(wire, consecutive_failures=3), None)
        raise RuntimeError("killed between the items and the feed's new state")
    assert store.count_items() == 0
    assert store.feeds()[0].consecutive_failures == 0
    with store.transaction():
        store.save_entries(wire, [entry("one", url="https://x.example/1")], NOW)
        store.update_feed(replace(wire, consecutive_failures=3), None)
    other = SQLiteStore(tmp_path / "a.db")  # another connection sees both, committed
    assert other.count_items() == 1
    assert other.feeds()[0].consecutive_failures == 3


# -- PostgreSQL: migrations in step with SQLite's ---------------------------------------


def test_postgresql_migrations_mirror_sqlite_and_apply_once(pg: str) -> None:
    import psycopg

    numbered = lambda d: [m.name.split("_")[0] for m in sorted(Path(d).glob("*.sql"))]  # noqa: E731
    assert numbered(PG_MIGRATIONS) == numbered(MIGRATIONS), "each sqlite migration needs a twin"
    PostgresStore(pg).close()
    PostgresStore(pg).close()
    with psycopg.connect(pg) as c:
        versions = [r[0] for r in c.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [int(n) for n in numbered(PG_MIGRATIONS)]


def test_postgresql_without_a_server_is_one_actionable_line() -> None:
    from aggregator.errors import StoreError
    from aggregator.store import open_store

    with pytest.raises(StoreError, match=r"cannot connect to the database "
                                         r"postgresql://nobody@127\.0\.0\.1:1/x: "):
        open_store("postgresql://nobody:secret@127.0.0.1:1/x")


# -- leases: several daemons share the fetching ------------------------------------------


def many_feeds(store: Store, n: int) -> None:
    """n more feeds (the fixture's two stay declared)."""
    store.sync_feeds([FeedConfig("wire", "https://wire.example/rss"),
                      FeedConfig("outlet", "https://outlet.example/rss", tags=("iran",)),
                      *(FeedConfig(f"f{i:03d}", f"https://f{i}.example/rss") for i in range(n))],
                     NOW)


def test_claimed_feeds_are_leased_until_updated_or_expired(store: Store) -> None:
    lease = timedelta(minutes=5)
    first = store.claim_due_feeds(NOW, 1, "a:1", lease)
    assert len(first) == 1
    rest = store.claim_due_feeds(NOW, None, "b:2", lease)
    assert {f.name for f in first} | {f.name for f in rest} == {"wire", "outlet"}
    assert not {f.id for f in first} & {f.id for f in rest}
    # All leased: nothing left to claim, though still due.
    assert store.claim_due_feeds(NOW, None, "c:3", lease) == []
    assert len(store.due_feeds(NOW)) == 2
    # update_feed ends the lease: due again (it still has no next_fetch_at) and claimable.
    store.update_feed(first[0])
    assert [f.id for f in store.claim_due_feeds(NOW, None, "c:3", lease)] == [first[0].id]
    # A dead daemon's lease runs out.
    later = store.claim_due_feeds(NOW + lease, None, "d:4", lease)
    assert {f.name for f in later} == {"wire", "outlet"}
    assert store.release_leases("d:4") == 2
    assert len(store.claim_due_feeds(NOW, None, "e:5", lease)) == 2
    assert store.release_leases() == 2


def test_claims_follow_due_order_and_skip_what_is_not_due(store: Store) -> None:
    wire, outlet = feed(store, "wire"), feed(store, "outlet")
    from dataclasses import replace

    store.update_feed(replace(wire, next_fetch_at=NOW + timedelta(hours=1)))
    store.update_feed(replace(outlet, next_fetch_at=NOW - timedelta(hours=1)))
    many_feeds(store, 3)  # never fetched: due first
    claimed = store.claim_due_feeds(NOW, 10, "a:1", timedelta(minutes=5))
    assert [f.name for f in claimed] == ["f000", "f001", "f002", "outlet"]
    assert [f.name for f in claimed] == [f.name for f in store.due_feeds(NOW)]


def test_a_lease_for_one_job(store: Store) -> None:
    hour = timedelta(hours=1)
    assert store.claim_lease("retrain", "a:1", NOW, hour)
    assert not store.claim_lease("retrain", "b:2", NOW + timedelta(minutes=30), hour)
    assert store.claim_lease("retrain", "a:1", NOW + timedelta(minutes=30), hour)  # renewed
    assert not store.claim_lease("retrain", "b:2", NOW + timedelta(minutes=89), hour)
    assert store.claim_lease("retrain", "b:2", NOW + timedelta(minutes=90), hour)


# -- digests: a period goes out once -----------------------------------------------------


def test_a_digest_period_is_claimed_once_until_stale_or_released(store: Store) -> None:
    end = NOW.replace(hour=7)
    stale = timedelta(minutes=15)
    assert store.claim_digest("desk", end, "a", NOW, NOW - stale)
    assert not store.claim_digest("desk", end, "b", NOW + timedelta(minutes=1), NOW - stale)
    # A claim older than the stale bound belongs to a process that died.
    assert store.claim_digest("desk", end, "b", NOW + stale * 2, NOW + stale)
    store.release_digest("desk", end, "b", [], NOW)
    assert store.claim_digest("desk", end, "c", NOW, NOW - stale)
    (item,) = store.save_entries(feed(store, "wire"), [entry("k", url="https://x.example/k")],
                                 NOW).new_item_ids
    store.complete_digest("desk", end, "c", [(("r@example.org",), (item,), "<m@x>")], NOW)
    assert store.last_digest("desk") == end
    assert store.delivered("r@example.org", [item, item + 1]) == {item}
    # Sent: never again, however old.
    assert not store.claim_digest("desk", end, "d", NOW + timedelta(days=9), NOW + timedelta(days=8))


def test_digest_candidates_and_tag_counts(store: Store) -> None:
    wire = feed(store, "wire")
    a, b = store.save_entries(wire, [
        entry("a", "Tehran talks", "https://x.example/a", published=NOW - timedelta(days=1)),
        entry("b", "Moscow envoy", "https://x.example/b", published=NOW)], NOW).new_item_ids
    store.write_model_tags([(a, [TagScore("iran", 0.9)]), (b, [TagScore("russia", 0.4)])], NOW)
    got = store.digest_candidates(ItemQuery(any_tags=("iran", "russia"), min_score=0.5),
                                  NOW - timedelta(hours=1), NOW + timedelta(seconds=1))
    assert [v.id for v in got] == [a] and got[0].sources[0].feed == "wire"
    assert store.digest_candidates(ItemQuery(search="moscow"), NOW - timedelta(hours=1),
                                   NOW + timedelta(seconds=1))[0].id == b
    assert store.digest_candidates(ItemQuery(), NOW, NOW) == []
    counts = {c.tag: c for c in store.tag_counts(None, NOW)}
    assert counts["iran"].per_day == (("2026-11-19", 1),)
    assert counts["russia"].count == 1
    assert store.count_items_since(NOW) == 2 and store.distinct_tags() == ["iran", "russia"]
    with pytest.raises(ConfigError):
        store.digest_candidates(ItemQuery(search="NOT moscow"), NOW, NOW)


# -- search: the same syntax and the same answers on both engines -------------------------

CORPUS = [
    ("a b", "first"), ("a c", "second"), ("c", "third"), ("b c d", "fourth"),
    ("Téhéran crisis deepens", "Water rationing"), ("U.S. sanctions on Iran", "Treasury"),
    ("Moscow-Tehran talks", "Envoys met"), ("Don't stop", "Music"),
    ("Ceasefire in Gaza", "Talks in Cairo about the ceasefire"),
]
SEARCHES = {
    "a b OR c": [0, 1, 2, 3], "c OR a b": [0, 1, 2, 3], "a OR b c": [0, 1, 3],
    "a NOT b OR c": [1, 2, 3], "a OR b NOT c": [0, 1], "a AND b": [0],
    "teheran": [4], "TÉHÉRAN": [4], '"u s"': [5], '"moscow-tehran"': [6], "mos*": [6],
    '"moscow teh"*': [6], '"don t"': [7], "title:ceasefire": [8], "summary:cairo": [8],
    "title:cairo": [], "cease* NOT cairo": [], "(a OR c) AND b": [0, 3], "or": [],
    "a or b": [], '""': [], "ceasefire": [8], "ceasefires": [], "sanction*": [5],
}


@pytest.mark.parametrize("expression", sorted(SEARCHES))
def test_search_expressions(store: Store, expression: str) -> None:
    wire = feed(store, "wire")
    ids = store.save_entries(wire, [
        entry(str(n), title, f"https://x.example/{n}", text)
        for n, (title, text) in enumerate(CORPUS)], NOW).new_item_ids
    found = sorted(ids.index(v.id) for v in store.query_items(
        ItemQuery(search=expression, limit=None)))
    assert found == SEARCHES[expression]


@pytest.mark.parametrize("expression", ["NOT a", "a OR", '"unclosed', "x:y", "a AND"])
def test_bad_search_expressions_are_usage_errors(store: Store, expression: str) -> None:
    with pytest.raises(UsageError, match="bad --search expression"):
        store.query_items(ItemQuery(search=expression))


def test_search_follows_an_edited_title(store: Store) -> None:
    wire = feed(store, "wire")
    (item,) = store.save_entries(wire, [entry("k", "Old words", "https://x.example/k")],
                                 NOW).new_item_ids
    store.save_entries(wire, [entry("k", "Fresh headline", "https://x.example/k")], NOW)
    assert store.query_items(ItemQuery(search="old")) == []
    assert [v.id for v in store.query_items(ItemQuery(search="fresh"))] == [item]


def test_the_sqlite_search_index_matches_the_items_through_inserts_edits_and_pruning(
        tmp_path: Path) -> None:
    # New items are indexed by one statement per transaction (migration 0004), edits and
    # deletes by triggers: FTS5's own integrity check compares the index with the items.
    store = SQLiteStore(tmp_path / "a.db")
    store.sync_feeds([FeedConfig("wire", "https://wire.example/rss"),
                      FeedConfig("outlet", "https://outlet.example/rss")], NOW)
    wire, outlet = feed(store, "wire"), feed(store, "outlet")
    old = NOW - timedelta(days=400)
    store.save_entries(wire, [entry(f"w{n}", f"Caspian item {n}", f"https://x.example/{n}",
                                    published=old if n < 3 else NOW) for n in range(8)], old)
    store.save_entries(outlet, [entry("o1", "Caspian copy", "https://x.example/5"),
                                entry("o2", "Gas swap", "https://y.example/2")], NOW)
    store.save_entries(wire, [entry("w7", "Edited headline", "https://x.example/7")], NOW)
    assert store.prune(NOW - timedelta(days=30)) == 3
    store.conn.execute("INSERT INTO items_fts (items_fts, rank) VALUES ('integrity-check', 1)")
    found = {v.title for v in store.query_items(ItemQuery(search="caspian OR swap OR edited", limit=None))}
    assert found == {"Caspian item 3", "Caspian item 4", "Caspian item 5", "Caspian item 6",
                     "Edited headline", "Gas swap"}


# -- PostgreSQL: several processes at the same moment -------------------------------------


def parallel(n: int, work: Callable[[int], Any]) -> list[Any]:
    import threading

    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_postgresql_concurrent_claims_are_disjoint(pg: str) -> None:
    with PostgresStore(pg) as s:
        many_feeds(s, 300)
    stores = [PostgresStore(pg) for _ in range(6)]
    try:
        def claim(i: int) -> list[int]:
            got: list[int] = []
            while batch := stores[i].claim_due_feeds(NOW, 7, f"d{i}", timedelta(minutes=5)):
                got += [f.id for f in batch]
            return got

        claimed = parallel(6, claim)
    finally:
        for s in stores:
            s.close()
    every = [i for got in claimed for i in got]
    assert len(every) == len(set(every)) == 302
    assert sum(1 for got in claimed if got) > 1, "SKIP LOCKED should let several claim at once"


def test_postgresql_concurrent_digest_claims_have_one_winner(pg: str) -> None:
    stores = [PostgresStore(pg) for _ in range(8)]
    try:
        won = parallel(8, lambda i: stores[i].claim_digest(
            "desk", NOW, f"d{i}", NOW, NOW - timedelta(minutes=15)))
        assert won.count(True) == 1
        retrain = parallel(8, lambda i: stores[i].claim_lease(
            "retrain", f"d{i}", NOW, timedelta(hours=1)))
        assert retrain.count(True) == 1
    finally:
        for s in stores:
            s.close()


def test_postgresql_same_story_from_many_feeds_at_once_is_one_item(pg: str) -> None:
    names = [f"f{i:03d}" for i in range(6)]
    with PostgresStore(pg) as s:
        many_feeds(s, 6)
        feeds = {f.name: f for f in s.feeds()}
    stores = [PostgresStore(pg) for _ in range(6)]
    # The same 40 stories, each feed in its own order: inserts cross, deadlocks are retried.
    urls = [f"https://x.example/story{n}" for n in range(40)]
    try:
        def save(i: int) -> int:
            order = urls[i * 7 % 40:] + urls[:i * 7 % 40]
            result = stores[i].save_entries(feeds[names[i]], [
                entry(f"k{u[-2:]}", f"Story {u}", u) for u in order], NOW)
            return len(result.new_item_ids)

        new = parallel(6, save)
    finally:
        for s in stores:
            s.close()
    with PostgresStore(pg) as s:
        assert s.count_items() == 40 == sum(new)
        assert all(len(v.sources) == 6 for v in s.items_by_ids(
            [v.id for v in s.query_items(ItemQuery(limit=None))]))


# -- stories: the same grouping on both engines -------------------------------------------

STORY = ("Officials from Moscow and Tehran met in Baku on Thursday to discuss the north south "
         "transport corridor, rail links through Azerbaijan and a new gas swap arrangement")
OTHER = ("The central bank raised its key interest rate by two points on Friday, citing "
         "inflation that has stayed above target for eleven months in a row now")


def test_near_identical_items_are_one_story_within_and_across_batches(store: Store) -> None:
    wire, outlet = feed(store, "wire"), feed(store, "outlet")
    a, b, _ = store.save_entries(wire, [
        entry("a", "Moscow and Tehran talk", "https://w.example/a", STORY),
        entry("b", "Rates up", "https://w.example/b", OTHER),
        entry("c", "Moscow and Tehran talk", "https://w.example/c", "BAKU (Reuters) - " + STORY)],
        NOW).new_item_ids
    store.save_entries(outlet, [
        entry("d", "BAKU - Moscow and Tehran talk", "https://o.example/d", STORY)],
        NOW + timedelta(hours=1))
    stories = {v.id: s for v, s in store.query_stories(ItemQuery(limit=None))}
    assert set(stories) == {a, b}
    assert stories[a].items == 3 and stories[a].id == a and stories[b].items == 1
    assert sorted(s.feed for s in stories[a].sources) == ["outlet", "wire", "wire"]
    assert [v.id for v, _ in store.query_stories(ItemQuery(feeds=("outlet",)))] == [a]
    got = store.digest_candidates(ItemQuery(), NOW - timedelta(hours=1), NOW + timedelta(hours=2))
    assert [v.id for v in got] == [a, b]
    # Retention: the story's first item goes, the next one carries the story.
    store.set_labels(b, add=["iran"], remove=[], now=NOW)
    assert store.prune(NOW + timedelta(days=1)) == 3  # b is labelled: kept
    assert store.count_items() == 1


def test_meta_by_prefix_takes_like_wildcards_literally(store: Store) -> None:
    store.set_meta("daemon:host-a:1", "x")
    store.set_meta("daemon:host_b:2", "y")
    store.set_meta("daemonX", "z")
    store.set_meta("daemon%", "w")
    assert store.meta_with_prefix("daemon:") == {"daemon:host-a:1": "x", "daemon:host_b:2": "y"}
    assert store.meta_with_prefix("daemon%") == {"daemon%": "w"}
    store.delete_meta("daemon:host-a:1")
    assert store.meta_with_prefix("daemon:") == {"daemon:host_b:2": "y"}


def test_enclosures_updated_and_html_read_back_as_stored(store: Store) -> None:
    """What the parser reads is kept (enclosures, the updated date), and a text without
    markup reads back as the same HTML on both engines (stored_html, display_html)."""
    from aggregator.types import Enclosure as ParsedEnclosure
    from aggregator.views import Enclosure

    wire = feed(store, "wire")
    e = replace(entry("pod", "Episode 12", "https://wire.example/12", "Plain & simple"),
                content_html="Plain &amp; simple", updated=NOW + timedelta(hours=2),
                enclosures=(ParsedEnclosure("https://wire.example/12.mp3", "audio/mpeg", 31_337),
                            ParsedEnclosure("https://wire.example/12.pdf")))
    (item_id,) = store.save_entries(wire, [e], NOW).new_item_ids
    view = store.get_item(item_id)
    assert view is not None
    assert view.enclosures == (Enclosure("https://wire.example/12.mp3", "audio/mpeg", 31_337),
                               Enclosure("https://wire.example/12.pdf", None, None))
    assert view.updated == NOW + timedelta(hours=2)
    assert view.content_html == "Plain &amp; simple"
    assert store.query_items(ItemQuery(limit=None))[0].enclosures == view.enclosures
    # A changed text rewrites them with the rest.
    e2 = replace(e, enclosures=(), updated=None, content_html="<p>New</p>", content_hash="2")
    assert store.save_entries(wire, [e2], NOW).updated_item_ids == (item_id,)
    view = store.get_item(item_id)
    assert view is not None
    assert (view.enclosures, view.updated, view.content_html) == ((), None, "<p>New</p>")


def test_pending_items_are_claimed_once(store: Store) -> None:
    """Classifiers sharing a database take disjoint batches; a claim that ran out (its
    daemon died) is pending again; tags written end the claim."""
    wire = feed(store, "wire")
    ids = list(store.save_entries(wire, [entry(f"c{n}", f"T{n}", text=f"x{n}")
                                         for n in range(5)], NOW).new_item_ids)
    lease = timedelta(minutes=2)
    first = store.claim_items_to_classify(3, "a", NOW, lease)
    second = store.claim_items_to_classify(3, "b", NOW, lease)
    assert [i.id for i in first] == ids[:3] and [i.id for i in second] == ids[3:]
    assert store.claim_items_to_classify(3, "c", NOW + timedelta(minutes=1), lease) == []
    store.write_model_tags([(i.id, [TagScore("iran", 0.9)]) for i in first], NOW)
    # b died holding its batch: after the lease it goes to c, a's are done.
    again = store.claim_items_to_classify(10, "c", NOW + lease, lease)
    assert [i.id for i in again] == ids[3:]
    assert again[0].title == "T3"


def test_three_classifiers_at_once_classify_each_item_once(pg: str, tmp_path: Path) -> None:
    """Three connections classifying the same pending items at the same moment (as three
    daemons): each item is in exactly one claimed batch."""
    import threading

    from aggregator.service import classify_pending

    with PostgresStore(pg) as s:
        s.sync_feeds([FeedConfig("wire", "https://wire.example/rss")], NOW)
        s.save_entries(feed(s, "wire"), [entry(f"k{n}", f"Item {n}", text=f"t{n}")
                                         for n in range(600)], NOW)
    seen: dict[str, list[int]] = {}

    class Recording:
        """The classifier's interface; records what it was given, tags each item once."""

        version = "rec"

        def __init__(self, owner: str) -> None:
            self.owner = owner

        def tag(self, batch: list[Any]) -> list[tuple[int, list[TagScore]]]:
            seen.setdefault(self.owner, []).extend(i.id for i in batch)
            return [(i.id, [TagScore("iran", 0.5, "model", "rec")]) for i in batch]

    def work(owner: str) -> None:
        with PostgresStore(pg) as s:
            classify_pending(s, Recording(owner), batch_size=20, now=NOW, owner=owner)  # type: ignore[arg-type]

    threads = [threading.Thread(target=work, args=(f"d{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    every = [i for ids in seen.values() for i in ids]
    assert len(every) == len(set(every)) == 600
    assert len(seen) >= 2  # they did run side by side
    with PostgresStore(pg) as s:
        assert s.items_to_classify(10) == []


def test_raw_hashes_are_kept_per_feed_for_the_entries_stored(store: Store) -> None:
    wire, outlet = feed(store, "wire"), feed(store, "outlet")
    store.save_entries(wire, [entry("g1", url="https://x.example/1"),
                              entry("g2", url="https://x.example/2")], NOW)
    assert store.raw_hashes(wire.id) == set()
    store.remember_raw_hashes(wire.id, [("g1", "h1"), ("g2", "h2"), ("gone", "h3")])
    assert store.raw_hashes(wire.id) == {"h1", "h2"}  # only entries stored have one
    store.remember_raw_hashes(wire.id, [("g1", "h1b")])  # the entry changed: its new digest
    assert store.raw_hashes(wire.id) == {"h1b", "h2"}
    assert store.raw_hashes(outlet.id) == set()
