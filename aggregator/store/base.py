"""The storage interface: what the service layer may ask of a database, in domain types.

SQLite implements it today; a PostgreSQL implementation sits beside it without changing
callers. Every method that writes runs in one transaction: a killed process never leaves
half an item.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aggregator.types import (
    Attempt,
    Entry,
    Feed,
    FeedConfig,
    IngestResult,
    ItemQuery,
    ItemToClassify,
    ItemView,
    Source,
    TagScore,
)


@dataclass(frozen=True)
class SyncResult:
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    deactivated: tuple[str, ...] = ()


@dataclass(frozen=True)
class TagCount:
    tag: str
    count: int
    per_day: tuple[tuple[str, int], ...] = ()  # (YYYY-MM-DD, count), oldest first


@dataclass(frozen=True)
class Story:
    """Near-identical items from several feeds, as one: ``id`` is its first item's id;
    ``sources`` are every feed's entry for any of its items, earliest published first;
    ``first`` is the feed that published first."""

    id: int
    items: int
    sources: tuple[Source, ...]
    first: str


class Store(Protocol):
    url: str

    def close(self) -> None: ...

    # feeds
    def sync_feeds(self, feeds: Sequence[FeedConfig], now: datetime) -> SyncResult: ...
    def feeds(self, names: Sequence[str] | None = None, *, include_inactive: bool = False) -> list[Feed]: ...
    def due_feeds(self, now: datetime, limit: int | None = None) -> list[Feed]: ...
    # Several daemons on one database: take due feeds for ``owner`` until ``now + lease``
    # (feeds another owner holds a live lease on are skipped); ``update_feed`` ends the
    # lease, and a lease left by a daemon that died runs out on its own.
    def claim_due_feeds(self, now: datetime, limit: int | None, owner: str,
                        lease: timedelta) -> list[Feed]: ...
    # Give leases back: an owner's (a daemon stopping), or all (owner None: a SQLite
    # daemon starting, which holds the only lock, so any lease left is a dead one's).
    def release_leases(self, owner: str | None = None) -> int: ...
    def update_feed(self, feed: Feed, attempt: Attempt | None = None, attempts_kept: int = 100) -> None: ...
    def set_feed_disabled(self, name: str, reason: str | None, now: datetime) -> bool: ...
    def attempts(self, feed_id: int, limit: int = 20) -> list[Attempt]: ...

    # items
    def save_entries(self, feed: Feed, entries: Sequence[Entry], now: datetime) -> IngestResult: ...
    def items_to_classify(self, limit: int, after_id: int = 0) -> list[ItemToClassify]: ...
    def items_for_reclassify(self, since: datetime | None, batch: int) -> Iterator[list[ItemToClassify]]: ...
    def write_model_tags(self, results: Sequence[tuple[int, Sequence[TagScore]]], now: datetime) -> int: ...
    def write_rule_tags(self, results: Sequence[tuple[int, Sequence[TagScore]]], now: datetime) -> int: ...
    def query_items(self, q: ItemQuery) -> list[ItemView]: ...
    # One row per story: its earliest item, with the story (same filters as query_items;
    # a story matches when any of its items does).
    def query_stories(self, q: ItemQuery) -> list[tuple[ItemView, Story]]: ...
    # Retention: delete items published and first seen before ``before``, except those a
    # user labelled (sources, tags and search rows go with them); returns how many.
    def prune(self, before: datetime) -> int: ...
    def get_item(self, item_id: int) -> ItemView | None: ...
    def tag_counts(self, since: datetime | None, now: datetime) -> list[TagCount]: ...
    def count_items(self) -> int: ...
    def count_items_since(self, since: datetime) -> int: ...
    def distinct_tags(self) -> list[str]: ...

    # labels
    def set_labels(self, item_id: int, add: Sequence[str], remove: Sequence[str], now: datetime) -> None: ...
    def labelled_examples(self) -> list[tuple[ItemToClassify, dict[str, int]]]: ...

    # digests
    def delivered(self, recipient: str, item_ids: Sequence[int]) -> set[int]: ...
    def record_delivery(self, subscription: str, recipients: Sequence[str], item_ids: Sequence[int],
                        period_end: datetime, message_id: str, now: datetime) -> None: ...
    def last_digest(self, subscription: str) -> datetime | None: ...
    # A period goes out once: claimed ('sending') in one transaction before the mail is
    # sent, then marked 'sent' with the ledger in one transaction, or released on failure.
    # ``sent`` lists what the SMTP server accepted: (recipients, item ids, Message-ID).
    def claim_digest(self, subscription: str, period_end: datetime, owner: str, now: datetime,
                     stale_before: datetime) -> bool: ...
    def complete_digest(self, subscription: str, period_end: datetime, owner: str,
                        sent: Sequence[tuple[Sequence[str], Sequence[int], str | None]],
                        now: datetime) -> None: ...
    def release_digest(self, subscription: str, period_end: datetime, owner: str,
                       sent: Sequence[tuple[Sequence[str], Sequence[int], str | None]],
                       now: datetime) -> None: ...
    def digest_candidates(self, q: ItemQuery, seen_since: datetime, seen_before: datetime,
                          limit: int | None = None) -> list[ItemView]: ...

    # key/value
    def get_meta(self, key: str) -> str | None: ...
    def meta_with_prefix(self, prefix: str) -> dict[str, str]: ...
    def delete_meta(self, key: str) -> None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    # A job one daemon of several runs (retraining): True when ``owner`` holds the lease
    # named ``name`` until ``now + lease`` (free, run out, or already its own).
    def claim_lease(self, name: str, owner: str, now: datetime, lease: timedelta) -> bool: ...
