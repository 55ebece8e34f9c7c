"""Domain values: frozen dataclasses passed between the pure parts and the edges.

Nothing here does I/O. Times are timezone-aware UTC datetimes throughout. What the read
commands take and return (items, tags, queries, feed declarations) is in ``aggregator.views``,
kept off the fast path's imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Feed:
    """A feed as stored: its declaration plus its fetch state.

    The fetch state is the schedule: a feed is due when ``next_fetch_at`` has passed.
    """

    id: int
    name: str
    url: str
    tags: tuple[str, ...] = ()
    interval: timedelta | None = None
    active: bool = True  # still declared in feeds.toml
    disabled_at: datetime | None = None  # set when disabled by failures or by hand
    disabled_reason: str | None = None
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_fetched_at: datetime | None = None
    last_success_at: datetime | None = None
    last_full_fetch_at: datetime | None = None  # last fetch sent without validators
    next_fetch_at: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None
    malformed: bool = False
    # A permanent redirect is only adopted once seen on several consecutive fetches.
    pending_redirect_url: str | None = None
    pending_redirect_count: int = 0
    # New items per hour, smoothed: drives the adaptive interval.
    new_items_rate: float | None = None
    # The feed's own refresh hint (RSS ttl, sy:updatePeriod) from the last parse: kept so
    # it still holds on the 304s that follow, which carry no document.
    ttl: timedelta | None = None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class Attempt:
    """One fetch attempt, as recorded on its feed (a bounded history per feed)."""

    feed_id: int
    at: datetime
    status: int | None
    duration_ms: int
    bytes: int  # as received on the wire: a 304 is 0
    error: str | None
    event: str = ""  # the decision's event: ok, not_modified, unchanged, failed, ...
    new_items: int = 0


@dataclass(frozen=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True)
class Entry:
    """One normalized entry from one feed, before storage."""

    key: str  # identity within the feed: guid, else link, else hash of title and date
    title: str
    url: str | None
    canonical_url: str | None
    summary: str  # plain text
    content_html: str  # sanitized HTML, for display
    published: datetime
    date_is_fetch_time: bool = False  # the feed gave no date: we used the fetch time
    updated: datetime | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    language: str | None = None
    content_hash: str = ""  # changes when the text changes, drives update and reclassification
    # Why the entry's markup was not parsed (too deep, too big, the feed's CPU budget
    # spent): its text is kept, displayed as plain text. Not stored: the feed records it.
    markup_dropped: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    entries: tuple[Entry, ...]
    malformed: bool = False  # entries were recovered from a broken document
    error: str | None = None  # why it is malformed, or why nothing could be read
    ttl: timedelta | None = None  # the feed's own refresh hint (RSS ttl, sy:updatePeriod)
    language: str | None = None
    # Entries identical to ones stored (by raw hash), left out of ``entries`` unread.
    skipped: int = 0
    # aggregator.parse.feeds.raw_hash of each of ``entries``, in order (empty: not computed).
    # Not part of equality: the two readers hand over differently shaped raw entries.
    raw_hashes: tuple[str, ...] = field(default=(), compare=False)





@dataclass(frozen=True)
class ItemToClassify:
    id: int
    title: str
    text: str
    categories: tuple[str, ...] = ()
    feed_tags: tuple[str, ...] = ()
    url: str = ""  # its link: the path names the site's section, which tells the genre


@dataclass(frozen=True)
class IngestResult:
    new_item_ids: tuple[int, ...] = ()
    updated_item_ids: tuple[int, ...] = ()



@dataclass(frozen=True)
class PassSummary:
    """What one fetch pass did: printed by the CLI, logged by the daemon."""

    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    new_items: int = 0
    updated_items: int = 0
    tags_assigned: int = 0
    failures: tuple[tuple[str, str], ...] = ()  # (feed name, error)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncResult:
    """What syncing config/feeds.toml into the store changed, by feed name."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    deactivated: tuple[str, ...] = ()
