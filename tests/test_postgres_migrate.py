"""``aggregator db migrate --to postgresql://...``: a SQLite instance copied into an empty
PostgreSQL database reads back the same through the store, keeps its ids, searches the
same, and a non-empty target is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgschema import pg_url  # noqa: F401  (the fixture, through ``target``)

from aggregator.store.postgres import PostgresStore
from aggregator.store.sqlite import SQLiteStore
from aggregator.types import Attempt, Entry
from aggregator.views import FeedConfig, ItemQuery, TagScore

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TEXT = ("Officials from Moscow and Tehran met in Baku on Thursday to discuss the north south "
        "transport corridor, rail links and a new gas swap arrangement")


@pytest.fixture
def target(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_url"))


def fill(store: SQLiteStore) -> None:
    store.sync_feeds([FeedConfig("wire", "https://wire.example/rss", tags=("iran",)),
                      FeedConfig("gazette", "https://gazette.example/atom")], NOW)
    wire, gazette = store.feeds(["wire"])[0], store.feeds(["gazette"])[0]
    entries = [Entry(key=f"k{n}", title=f"Story {n} about Téhéran", url=f"https://x.example/{n}",
                     canonical_url=f"https://x.example/{n}", summary=f"{TEXT} number {n}",
                     content_html="<p>x</p>", published=NOW - timedelta(hours=n),
                     authors=("A. Writer",), categories=("Politics",), content_hash=f"h{n}")
             for n in range(30)]
    ids = store.save_entries(wire, entries, NOW).new_item_ids
    store.save_entries(gazette, entries[:5], NOW + timedelta(minutes=5))  # second sources
    store.write_model_tags([(i, [TagScore("russia-iran", 0.8, "model", "v1", ("corridor",))])
                            for i in ids], NOW)
    store.set_labels(ids[0], add=["caucasus"], remove=["russia-iran"], now=NOW)
    store.update_feed(wire, Attempt(wire.id, NOW, 200, 12, 5000, None, "ok", 30))
    store.claim_digest("desk", NOW, "me", NOW, NOW)
    store.complete_digest("desk", NOW, "me", [(("desk@example.org",), tuple(ids[:3]), "<m@x>")],
                          NOW)
    store.set_meta("labels_at_training", "1")


def migrate(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    return subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), "db",
                           "migrate", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_migrate_copies_everything_and_refuses_a_non_empty_target(
        instance_dir: Path, target: str) -> None:
    db = instance_dir / "var" / "aggregator.db"
    with SQLiteStore(db) as source:
        fill(source)
    done = migrate(instance_dir, "--to", target, "--batch", "7")
    assert done.returncode == 0, done.stderr
    assert "counts match" in done.stdout and "items" in done.stdout

    everything = ItemQuery(limit=None)
    with SQLiteStore(db) as source, PostgresStore(target) as copy:
        assert copy.feeds(include_inactive=True) == source.feeds(include_inactive=True)
        assert copy.query_items(everything) == source.query_items(everything)
        ids = [v.id for v in source.query_items(everything)]
        assert copy.items_by_ids(ids) == source.items_by_ids(ids)
        assert copy.labelled_examples() == source.labelled_examples()
        wire = source.feeds(["wire"])[0]
        assert copy.attempts(wire.id) == source.attempts(wire.id)
        assert copy.delivered("desk@example.org", ids) == source.delivered("desk@example.org", ids)
        assert copy.last_digest("desk") == source.last_digest("desk") == NOW
        assert copy.get_meta("labels_at_training") == "1"
        assert copy.tag_counts(None, NOW) == source.tag_counts(None, NOW)
        search = ItemQuery(search="teheran story", limit=None)
        assert [v.id for v in copy.query_items(search)] == [v.id for v in source.query_items(search)]
        assert len(copy.query_items(search)) == 30
        # New rows continue after the copied ids.
        (new,) = copy.save_entries(copy.feeds(["wire"])[0], [Entry(
            key="late", title="Late", url=None, canonical_url=None, summary="s",
            content_html="", published=NOW, content_hash="l")], NOW).new_item_ids
        assert new > max(ids)

    again = migrate(instance_dir, "--to", target)
    assert again.returncode != 0
    assert "is not empty" in again.stderr and again.stderr.count("\n") == 1


def test_migrate_wants_a_postgresql_target(instance_dir: Path) -> None:
    SQLiteStore(instance_dir / "var" / "aggregator.db").close()
    done = migrate(instance_dir, "--to", "sqlite:///elsewhere.db")
    assert done.returncode == 2 and "--to must be a postgresql:// URL" in done.stderr


def _plain(value: object) -> object:
    """A stored value in one form for both engines: times as ISO text, booleans as 0/1,
    JSON as what it parses to."""
    import json

    from aggregator.timeutil import to_iso

    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def test_migrate_round_trips_every_field_identically(tmp_path: Path, target: str) -> None:
    """Every column of every table reads the same on both sides, and every field of an
    item (the views the commands show) is the same, for items that set every field."""
    from aggregator.store.transfer import TABLES, copy_sqlite
    from aggregator.types import Enclosure

    with SQLiteStore(tmp_path / "agg.db") as source, PostgresStore(target) as copy:
        fill(source)
        wire = source.feeds(["wire"])[0]
        full = [Entry(key="full", title="Podcast: Caspian", url="https://x.example/pod",
                      canonical_url="https://x.example/pod", summary="Plain & text",
                      content_html="Plain &amp; text", published=NOW,
                      date_is_fetch_time=True, updated=NOW + timedelta(hours=1),
                      authors=("B", "C"), categories=("Audio",), language="en",
                      enclosures=(Enclosure("https://x.example/a.mp3", "audio/mpeg", 10),
                                  Enclosure("https://x.example/b.pdf")), content_hash="f"),
                Entry(key="html", title="Analysis", url=None, canonical_url=None,
                      summary="Bold text", content_html="<p><b>Bold</b> text</p>",
                      published=NOW, content_hash="g")]
        source.save_entries(wire, full, NOW)
        copy_sqlite(source, copy, batch=3)

        for table in TABLES:
            theirs = source.conn.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in theirs.description]
            want = sorted(([_plain(v) for v in row] for row in theirs.fetchall()), key=repr)
            got = sorted(([_plain(v) for v in row] for row in copy.conn.execute(
                f"SELECT {', '.join(columns)} FROM {table}").fetchall()), key=repr)
            assert got == want, table

        ids = [v.id for v in source.query_items(ItemQuery(limit=None))]
        mine, theirs_views = source.items_by_ids(ids), copy.items_by_ids(ids)
        assert theirs_views == mine
        # Every field of ItemView is exercised by some item (else the check above is weak).
        blank = mine[0]._make([None] * len(mine[0]._fields))
        for field in mine[0]._fields:
            assert any(getattr(v, field) not in (None, (), "", False, 0)
                       and getattr(v, field) != getattr(blank, field) for v in mine), field
