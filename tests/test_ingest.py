"""The ingest pipeline's stages one at a time (aggregator.ingest): when a group is stored,
what the store stage commits and counts, and a classify stage with nothing pending."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.errors import UsageError
from aggregator.fetch.messages import FetchResponse
from aggregator.ingest import GROUP_ENTRIES, GROUP_SECONDS, Ingest, Received, group_due
from aggregator.instance import Instance
from aggregator.parse.feeds import parse_feed
from aggregator.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RSS = ("<?xml version='1.0'?><rss version='2.0'><channel><title>Wire</title>"
       "<link>https://wire.example.org/</link>{items}</channel></rss>")
ITEM = ("<item><title>Talks in Vienna, day {n}</title><link>https://wire.example.org/{n}</link>"
        "<guid>wire-{n}</guid><pubDate>Fri, 20 Nov 2026 0{n}:00:00 GMT</pubDate>"
        "<description>Negotiators met again in Vienna on the nuclear file.</description></item>")


@pytest.mark.parametrize(("feeds", "entries", "waited", "due"), [
    (0, 0, 10.0, False),                            # nothing waiting: nothing to store
    (1, 0, 0.0, False),                             # a 304 that just came waits for company
    (1, 5, GROUP_SECONDS - 0.01, False),
    (1, 5, GROUP_SECONDS, True),                    # the first has waited long enough
    (3, GROUP_ENTRIES - 1, 0.0, False),
    (3, GROUP_ENTRIES, 0.0, True),                  # big enough, however young
])
def test_a_group_is_stored_when_big_enough_or_old_enough(
        feeds: int, entries: int, waited: float, due: bool) -> None:
    assert group_due(feeds, entries, 100.0, 100.0 + waited) is due


def test_the_group_limits_can_be_given() -> None:
    assert group_due(1, 10, 0.0, 0.0, max_entries=10)
    assert not group_due(1, 9, 0.0, 1.0, max_entries=10, max_seconds=2.0)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = Path(__file__).resolve().parents[1]
    home = tmp_path / "inst"
    (home / "var").mkdir(parents=True)
    shutil.copytree(root / "config", home / "config")
    (home / "config" / "feeds.toml").write_text(
        '[[feed]]\nname = "wire"\nurl = "https://wire.example.org/rss"\ntags = ["iran"]\n'
        '[[feed]]\nname = "quiet"\nurl = "https://quiet.example.org/rss"\n')
    return home


def _response(feed_id: int, url: str, status: int, body: bytes | None) -> FetchResponse:
    return FetchResponse(feed_id=feed_id, url=url, final_url=url, status=status,
                         headers={"etag": '"v1"'} if body else {}, body=body, error=None,
                         error_kind=None)


def test_the_store_stage_commits_the_group_at_once_and_counts_it(home: Path) -> None:
    config = load_config(Instance(home))
    db = home / "var" / "aggregator.db"
    with SQLiteStore(db) as store:
        events: list[tuple[str, dict[str, object]]] = []
        pipeline = Ingest(config, store, now=lambda: NOW,
                          events=lambda name, fields: events.append((name, fields)))
        feeds = {f.name: f for f in pipeline.select(all_feeds=True)}
        assert set(feeds) == {"wire", "quiet"}
        wire, quiet = feeds["wire"], feeds["quiet"]
        body = RSS.format(items=ITEM.format(n=1) + ITEM.format(n=2)).encode()
        parsed = parse_feed(body, NOW, url=wire.url)
        pipeline.add(Received(wire, _response(wire.id, wire.url, 200, body), parsed, NOW), 1.0)
        pipeline.add(Received(quiet, _response(quiet.id, quiet.url, 304, None), None, NOW), 1.1)
        assert pipeline.group_entries == 2 and pipeline.group_since == 1.0
        with sqlite3.connect(db) as other:
            assert other.execute("SELECT count(*) FROM items").fetchone() == (0,)

        pipeline.store()

        assert pipeline.group == [] and pipeline.group_entries == 0
        with sqlite3.connect(db) as other:
            assert other.execute("SELECT count(*) FROM items").fetchone() == (2,)
        summary = pipeline.summary()
        assert (summary.feeds_ok, summary.feeds_not_modified, summary.feeds_failed) == (1, 1, 0)
        # The feed's declared tag, on each of its new items.
        assert (summary.new_items, summary.tags_assigned) == (2, 2)
        assert [name for name, _ in events] == ["feed ok", "feed not_modified"]
        assert {f.name: f.etag for f in store.feeds()}["wire"] == '"v1"'
        # The same group again: nothing new, nothing counted twice.
        pipeline.add(Received(wire, _response(wire.id, wire.url, 200, body), parsed, NOW), 2.0)
        pipeline.store()
        assert pipeline.summary().new_items == 2 and pipeline.done == 3


def test_select_names_an_unknown_feed_with_a_suggestion(home: Path) -> None:
    config = load_config(Instance(home))
    with SQLiteStore(home / "var" / "aggregator.db") as store, \
            pytest.raises(UsageError, match=r"no feed named 'wir'.*wire"):
        Ingest(config, store, now=lambda: NOW).select(["wir"])


def test_the_classify_stage_loads_no_model_when_nothing_is_pending(home: Path) -> None:
    config = load_config(Instance(home))
    with SQLiteStore(home / "var" / "aggregator.db") as store:
        pipeline = Ingest(config, store, now=lambda: NOW)
        pipeline.select(all_feeds=True)
        assert pipeline.classify() == 0
    # No model trained at first use (that takes seconds): nothing asked for one.
    assert not (home / "var" / "models").exists() or not any((home / "var" / "models").iterdir())
