"""When a digest is due, what period it covers, and which items go in.

Pure functions of (subscription, now, what was sent before): no clock, no database. The
store answers "what was the last period sent" and "which items were first seen in this
window"; these functions decide.

A period is identified by its scheduled end (``at`` on one of ``days`` in ``timezone``,
as UTC): that end is the key of the ``digest_runs`` row that makes a period go out once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from aggregator.views import ItemView

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# An item stored just before a cut-off but tagged just after it would otherwise fall
# between two digests. Each window reaches back this far before the previous period's end;
# the delivery ledger keeps the overlap from repeating anything.
LATE_TAG_SLACK = timedelta(hours=6)

# How far schedules are searched: a week plus a day covers any set of weekdays.
_SEARCH_DAYS = 8


class Schedule(Protocol):
    """What of a subscription the schedule needs (``config.DigestSubscription`` fits)."""

    @property
    def at(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def days(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Period:
    """The time a digest covers.

    ``end`` is the scheduled time the digest is for (its identity); ``start`` is where the
    reader's period begins (the previous digest's end). Items are chosen by when they were
    first seen, from ``seen_since`` (``start`` less a slack) up to the moment the digest is
    built, however long ago they were published: a feed back after days of failure
    brings items published days ago, and they are news to the reader all the same.
    """

    start: datetime
    end: datetime
    seen_since: datetime
    missed: int = 1  # scheduled times this one digest covers (more than 1 after downtime)


def _slot(sub: Schedule, day: date) -> datetime | None:
    """The scheduled time on a local date, in UTC; None if the subscription skips that day.

    A wall time that does not exist (spring forward) resolves to the hour after; one that
    happens twice (fall back) to the first: both are what zoneinfo does with fold=0.
    """
    if WEEKDAYS[day.weekday()] not in sub.days:
        return None
    hour, minute = (int(p) for p in sub.at.split(":"))
    local = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(sub.timezone))
    return local.astimezone(UTC)


def _slots_around(sub: Schedule, now: datetime, backwards: bool) -> Iterable[datetime]:
    today = now.astimezone(ZoneInfo(sub.timezone)).date()
    # One day of margin either way: 'today' in the zone can be a day off UTC's.
    offsets = range(1, -_SEARCH_DAYS - 1, -1) if backwards else range(-1, _SEARCH_DAYS + 1)
    for offset in offsets:
        slot = _slot(sub, today + timedelta(days=offset))
        if slot is not None:
            yield slot


def latest_slot(sub: Schedule, now: datetime) -> datetime | None:
    """The last scheduled time at or before ``now`` (None when no days are scheduled)."""
    return next((s for s in _slots_around(sub, now, backwards=True) if s <= now), None)


def next_run(sub: Schedule, now: datetime) -> datetime | None:
    """The next scheduled time after ``now``: for ``aggregator status``."""
    return next((s for s in _slots_around(sub, now, backwards=False) if s > now), None)


def slots_between(sub: Schedule, after: datetime, until: datetime) -> list[datetime]:
    """Scheduled times in (after, until], oldest first."""
    found: list[datetime] = []
    cursor = until
    while True:
        slot = latest_slot(sub, cursor)
        if slot is None or slot <= after:
            return found[::-1]
        found.append(slot)
        cursor = slot - timedelta(seconds=1)


def due_period(sub: Schedule, now: datetime, last_end: datetime | None,
               grace: timedelta | None = None) -> Period | None:
    """The period a digest is due for now, or None when nothing is due.

    After downtime the latest scheduled time stands for all those missed: ONE digest covers
    the whole gap since ``last_end``. The first digest ever covers the time since the
    scheduled time before (24 h for a daily digest). With a ``grace`` (the daemon's
    ``digest_grace``) a scheduled time further back than that is let go: the next one will
    cover the gap, rather than a digest arriving at an odd hour.
    """
    end = latest_slot(sub, now)
    if end is None or (last_end is not None and end <= last_end):
        return None
    if grace is not None and now - end > grace:
        return None
    if last_end is not None:
        start = last_end
        seen_since = last_end - LATE_TAG_SLACK
        missed = len(slots_between(sub, last_end, end))
    else:
        before = latest_slot(sub, end - timedelta(seconds=1))
        start = before if before is not None else end - timedelta(hours=24)
        seen_since, missed = start, 1
    return Period(start=start, end=end, seen_since=seen_since,
                  missed=max(missed, 1))


def pending_period(sub: Schedule, now: datetime, last_end: datetime | None) -> Period:
    """What the next digest holds so far (for a preview): due or not, up to ``now``."""
    due = due_period(sub, now, last_end)
    if due is not None:
        return due
    end = next_run(sub, now) or now
    if last_end is not None:
        start, seen_since = last_end, last_end - LATE_TAG_SLACK
    else:
        start = latest_slot(sub, now) or now - timedelta(hours=24)
        seen_since = start
    return Period(start=start, end=end, seen_since=seen_since)


def window_since(since: datetime, now: datetime) -> Period:
    """An explicit preview window (``--since``): everything first seen since then."""
    return Period(start=since, end=now, seen_since=since)


def relevance(item: ItemView, focus: Sequence[str], min_score: float) -> float:
    """The best score among the tags the reader asked for (any tag when none were named)."""
    scores = [t.score for t in item.tags
              if t.score >= min_score and (not focus or t.tag in focus)]
    return max(scores, default=0.0)


def select_items(candidates: Sequence[ItemView], exclude: set[int] | frozenset[int],
                 focus: Sequence[str], min_score: float, max_items: int) -> tuple[ItemView, ...]:
    """The items one digest carries: not yet delivered, most relevant first, at most
    ``max_items`` (the rest stay undelivered and may go in the next digest)."""
    fresh = {i.id: i for i in candidates if i.id not in exclude}.values()
    ranked = sorted(fresh, key=lambda i: (-relevance(i, focus, min_score),
                                          -i.published.timestamp(), i.id))
    return tuple(ranked[:max_items])


def group_recipients(recipients: Sequence[str],
                     selections: dict[str, tuple[ItemView, ...]]) -> list[tuple[tuple[str, ...],
                                                                                tuple[ItemView, ...]]]:
    """Recipients who get the same items share one message.

    Usually that is all of them; someone added to ``to`` later, or on two subscriptions,
    has a different ledger and gets a message of their own, so nobody gets an item twice.
    """
    groups: dict[tuple[int, ...], list[str]] = {}
    for r in recipients:
        groups.setdefault(tuple(i.id for i in selections[r]), []).append(r)
    return [(tuple(rs), selections[rs[0]]) for rs in groups.values()]
