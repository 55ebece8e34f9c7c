"""What the read commands take and return: immutable named tuples.

``query``, ``show``, ``tags`` and ``feeds list`` run in shell loops, where the process start
is most of the cost. Frozen dataclasses would put ``dataclasses`` (and ``inspect``, ``ast``,
``dis`` behind it) plus the generated methods of every class on that path: about 20 ms of a
60 ms command, measured with ``python -X importtime``. Named tuples are as immutable, cost a
tenth of that to define and less to build, which counts when a query builds thousands of
rows (``aggregator.namedtuple`` builds them without importing ``typing``). The pipeline's
own values (entries, fetch state, attempts) stay frozen dataclasses in ``aggregator.types``;
change a value here with ``value._replace(...)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aggregator.namedtuple import NamedTuple


class FeedConfig(NamedTuple):
    """A feed as declared in config/feeds.toml."""

    name: str
    url: str
    tags: tuple[str, ...] = ()
    interval: timedelta | None = None


class FeedState(NamedTuple):
    """A stored feed's health, all that ``feeds list`` shows of it."""

    name: str
    enabled: bool
    disabled_reason: str | None
    last_fetched_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None


class TagScore(NamedTuple):
    tag: str
    score: float
    source: str = "model"  # model | rule | user
    model_version: str | None = None
    reasons: tuple[str, ...] = ()


class Source(NamedTuple):
    """One feed that carried an item."""

    feed: str
    url: str | None
    published: datetime
    first_seen: datetime


class Enclosure(NamedTuple):
    """A file an entry links to (a podcast's audio, a report's PDF)."""

    url: str
    type: str | None = None
    length: int | None = None  # bytes, as the feed claims


class ItemView(NamedTuple):
    """An item as the query, show and digest commands see it."""

    id: int
    title: str
    url: str | None
    feed: str  # the feed that carried it first
    published: datetime
    summary: str
    categories: tuple[str, ...] = ()
    tags: tuple[TagScore, ...] = ()
    sources: tuple[Source, ...] = ()
    content_html: str = ""
    authors: tuple[str, ...] = ()
    language: str | None = None
    date_is_fetch_time: bool = False
    enclosures: tuple[Enclosure, ...] = ()
    updated: datetime | None = None  # when the feed says the entry last changed

    def tag(self, name: str) -> TagScore | None:
        return next((t for t in self.tags if t.tag == name), None)


class ItemQuery(NamedTuple):
    """Filters for a query; every filter narrows (AND)."""

    tags: tuple[str, ...] = ()  # all of them
    any_tags: tuple[str, ...] = ()  # at least one
    not_tags: tuple[str, ...] = ()
    min_score: float | None = None
    sources: tuple[str, ...] = ()  # model | rule | user
    feeds: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    limit: int | None = 50  # None: no limit
    sort: str = "date"  # date | score


class TagCount(NamedTuple):
    tag: str
    count: int  # type: ignore[assignment]  # shadows tuple.count, on purpose: the JSON name
    per_day: tuple[tuple[str, int], ...] = ()  # (YYYY-MM-DD, count), oldest first


class Story(NamedTuple):
    """Near-identical items from several feeds, as one: ``id`` is its first item's id;
    ``sources`` are every feed's entry for any of its items, earliest published first;
    ``first`` is the feed that published first."""

    id: int
    items: int
    sources: tuple[Source, ...]
    first: str
