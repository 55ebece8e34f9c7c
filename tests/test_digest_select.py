"""When a digest is due, what it covers and what goes in: pure, the clock passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.digest.select import (
    LATE_TAG_SLACK,
    due_period,
    group_recipients,
    latest_slot,
    next_run,
    pending_period,
    select_items,
    slots_between,
)
from aggregator.views import ItemView, TagScore

ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


@dataclass(frozen=True)
class Sub:
    at: str = "07:00"
    timezone: str = "UTC"
    days: tuple[str, ...] = ALL_DAYS


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# 2026-11-20 is a Friday.
BERLIN = Sub(timezone="Europe/Berlin")  # 07:00 CET = 06:00 UTC in November


@pytest.mark.parametrize(("sub", "now", "expected"), [
    (Sub(), utc(2026, 11, 20, 7, 0), utc(2026, 11, 20, 7, 0)),  # exactly at the time
    (Sub(), utc(2026, 11, 20, 6, 59), utc(2026, 11, 19, 7, 0)),
    (BERLIN, utc(2026, 11, 20, 6, 30), utc(2026, 11, 20, 6, 0)),
    (BERLIN, utc(2026, 11, 20, 5, 59), utc(2026, 11, 19, 6, 0)),
    # Summer time: 07:00 CEST = 05:00 UTC.
    (BERLIN, utc(2026, 7, 1, 5, 0), utc(2026, 7, 1, 5, 0)),
    # Weekdays only: on Sunday the last one was Friday's.
    (Sub(days=WEEKDAYS), utc(2026, 11, 22, 12, 0), utc(2026, 11, 20, 7, 0)),
    # A zone ahead of UTC: 07:00 in Tokyo on Saturday is 22:00 UTC on Friday.
    (Sub(timezone="Asia/Tokyo", days=("sat",)), utc(2026, 11, 20, 23, 0), utc(2026, 11, 20, 22, 0)),
    (Sub(days=()), utc(2026, 11, 20, 8, 0), None),
])
def test_latest_slot(sub: Sub, now: datetime, expected: datetime | None) -> None:
    assert latest_slot(sub, now) == expected


@pytest.mark.parametrize(("sub", "now", "expected"), [
    (Sub(), utc(2026, 11, 20, 7, 0), utc(2026, 11, 21, 7, 0)),  # strictly after now
    (Sub(), utc(2026, 11, 20, 6, 0), utc(2026, 11, 20, 7, 0)),
    (Sub(days=WEEKDAYS), utc(2026, 11, 20, 8, 0), utc(2026, 11, 23, 7, 0)),  # Fri -> Mon
    (Sub(days=("wed",)), utc(2026, 11, 19, 0, 0), utc(2026, 11, 25, 7, 0)),
    (BERLIN, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 5, 0)),  # clocks go forward that night
    (Sub(days=()), utc(2026, 11, 20, 8, 0), None),
])
def test_next_run(sub: Sub, now: datetime, expected: datetime | None) -> None:
    assert next_run(sub, now) == expected


def test_spring_forward_gap_resolves_to_the_hour_after() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: it is sent at 03:30 CEST (01:30 UTC).
    sub = Sub(at="02:30", timezone="Europe/Berlin")
    assert latest_slot(sub, utc(2026, 3, 29, 12, 0)) == utc(2026, 3, 29, 1, 30)


@pytest.mark.parametrize(("now", "last_end", "due_end", "start", "missed"), [
    # Not yet 07:00: the last scheduled time was sent already.
    (utc(2026, 11, 20, 6, 59), utc(2026, 11, 19, 7, 0), None, None, 0),
    # At 07:00: due, covering the day since the last one.
    (utc(2026, 11, 20, 7, 0), utc(2026, 11, 19, 7, 0), utc(2026, 11, 20, 7, 0),
     utc(2026, 11, 19, 7, 0), 1),
    # Sent already (a second run the same day): nothing.
    (utc(2026, 11, 20, 9, 0), utc(2026, 11, 20, 7, 0), None, None, 0),
    # Three days down: ONE digest for the latest time, covering the whole gap.
    (utc(2026, 11, 20, 7, 10), utc(2026, 11, 17, 7, 0), utc(2026, 11, 20, 7, 0),
     utc(2026, 11, 17, 7, 0), 3),
    # First run ever: since the scheduled time before (24 h for a daily digest).
    (utc(2026, 11, 20, 7, 5), None, utc(2026, 11, 20, 7, 0), utc(2026, 11, 19, 7, 0), 1),
    (utc(2026, 11, 20, 23, 0), None, utc(2026, 11, 20, 7, 0), utc(2026, 11, 19, 7, 0), 1),
])
def test_due_period_daily(now: datetime, last_end: datetime | None, due_end: datetime | None,
                          start: datetime | None, missed: int) -> None:
    period = due_period(Sub(), now, last_end)
    if due_end is None:
        assert period is None
        return
    assert period is not None
    assert (period.end, period.start, period.missed) == (due_end, start, missed)
    # After a previous digest the window reaches back a little: the ledger dedups.
    slack = LATE_TAG_SLACK if last_end else timedelta(0)
    assert period.seen_since == period.start - slack


def test_first_weekly_digest_covers_the_week() -> None:
    period = due_period(Sub(days=("mon",)), utc(2026, 11, 23, 8, 0), None)
    assert period is not None
    assert (period.start, period.end) == (utc(2026, 11, 16, 7, 0), utc(2026, 11, 23, 7, 0))


def test_monday_digest_on_weekdays_covers_the_weekend() -> None:
    period = due_period(Sub(days=WEEKDAYS), utc(2026, 11, 23, 7, 0), utc(2026, 11, 20, 7, 0))
    assert period is not None and period.missed == 1
    assert period.start == utc(2026, 11, 20, 7, 0)


@pytest.mark.parametrize(("now", "due"), [
    (utc(2026, 11, 20, 7, 0) + timedelta(hours=11), True),
    (utc(2026, 11, 20, 7, 0) + timedelta(hours=13), False),  # too late today: tomorrow's covers it
])
def test_grace_lets_an_old_scheduled_time_go(now: datetime, due: bool) -> None:
    period = due_period(Sub(), now, utc(2026, 11, 17, 7, 0), grace=timedelta(hours=12))
    assert (period is not None) == due
    # Tomorrow's then covers everything since the last one sent.
    later = due_period(Sub(), utc(2026, 11, 21, 7, 0), utc(2026, 11, 17, 7, 0),
                       grace=timedelta(hours=12))
    assert later is not None and later.start == utc(2026, 11, 17, 7, 0) and later.missed == 4


def test_slots_between_is_half_open() -> None:
    assert slots_between(Sub(), utc(2026, 11, 18, 7, 0), utc(2026, 11, 20, 7, 0)) == [
        utc(2026, 11, 19, 7, 0), utc(2026, 11, 20, 7, 0)]


def test_pending_period_before_the_time_shows_the_digest_so_far() -> None:
    period = pending_period(Sub(), utc(2026, 11, 20, 15, 0), utc(2026, 11, 20, 7, 0))
    assert (period.start, period.end) == (utc(2026, 11, 20, 7, 0), utc(2026, 11, 21, 7, 0))


def item(item_id: int, scores: dict[str, float], hours_ago: int = 0) -> ItemView:
    return ItemView(id=item_id, title=f"item {item_id}", url=None, feed="wire",
                    published=utc(2026, 11, 20, 7, 0) - timedelta(hours=hours_ago), summary="",
                    tags=tuple(TagScore(t, s) for t, s in scores.items()))


CANDIDATES = [
    item(1, {"iran": 0.9}, hours_ago=5),
    item(2, {"russia-iran": 0.7, "iran": 0.95}, hours_ago=1),
    item(3, {"russia-iran": 0.99}, hours_ago=3),
    item(4, {"ukraine": 0.99}, hours_ago=2),
    item(5, {"russia-iran": 0.6}, hours_ago=2),
]


@pytest.mark.parametrize(("exclude", "focus", "max_items", "expected"), [
    # Most relevant to the subscription's tags first.
    (set(), ("russia-iran",), 10, [3, 2, 5, 4, 1]),
    (set(), ("russia-iran", "iran"), 10, [3, 2, 1, 5, 4]),
    # max_items keeps the best; the rest stays undelivered for the next digest.
    (set(), ("russia-iran",), 2, [3, 2]),
    # Already in the recipient's ledger: never again.
    ({3, 2}, ("russia-iran",), 2, [5, 4]),
    # No focus: any tag counts; ties go to the newer item.
    (set(), (), 3, [4, 3, 2]),
])
def test_select_items(exclude: set[int], focus: tuple[str, ...], max_items: int,
                      expected: list[int]) -> None:
    chosen = select_items(CANDIDATES, exclude, focus, 0.5, max_items)
    assert [i.id for i in chosen] == expected


def test_an_item_is_selected_once_even_if_listed_twice() -> None:
    assert [i.id for i in select_items([*CANDIDATES, CANDIDATES[0]], set(), (), 0.5, 10)].count(1) == 1


def test_recipients_with_the_same_items_share_one_message() -> None:
    a, b = CANDIDATES[0], CANDIDATES[1]
    groups = group_recipients(["x@a", "y@a", "z@a"],
                              {"x@a": (a, b), "y@a": (a, b), "z@a": (b,)})
    assert groups == [(("x@a", "y@a"), (a, b)), (("z@a",), (b,))]


def test_an_item_sits_in_the_first_listed_tag_it_carries_not_its_best_scored() -> None:
    from aggregator.digest.render import group_by_tag
    from aggregator.views import ItemView, TagScore

    def item(n: int, **tags: float) -> ItemView:
        return ItemView(id=n, title=f"t{n}", url=None, feed="wire",
                        published=datetime(2026, 11, 20, tzinfo=UTC), summary="",
                        tags=tuple(TagScore(t.replace("_", "-"), s) for t, s in tags.items()))

    items = [item(1, iran=1.0, russia_iran=0.9), item(2, iran=0.99), item(3, iran=0.4)]
    sections = group_by_tag(items, ["russia-iran", "iran"], min_score=0.5)
    assert [(s.tag, [i.id for i in s.items]) for s in sections] == [("iran", [2]),
                                                                    ("russia-iran", [1])]
    # Without an order, the best score decides.
    assert [s.tag for s in group_by_tag(items[:1])] == ["iran"]
