"""The decider: pure functions of (feed, response, now, settings, rand). No server here."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from aggregator.fetch import (
    Decision,
    FetchRequest,
    FetchResponse,
    FetchSettings,
    decide,
    needs_parse,
    plan,
    retry_after,
)
from aggregator.types import Entry, Feed, ParsedFeed

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
S = FetchSettings()
URL = "https://example.org/feed.xml"
BODY = b"<rss>body</rss>"
ENTRY = Entry(key="k", title="t", url=None, canonical_url=None, summary="", content_html="", published=NOW)
PARSED = ParsedFeed(title="T", link=None, entries=(ENTRY,))
H = timedelta(hours=1)
M = timedelta(minutes=1)
FIXED = replace(S, adapt_range=1.0)  # no adaptation: the base interval, for hint tests
EXACT = replace(FIXED, jitter=0)


def feed(**changes: object) -> Feed:
    base = Feed(id=7, name="f", url=URL, last_success_at=NOW - H, last_full_fetch_at=NOW - H)
    return replace(base, **changes)  # type: ignore[arg-type]


def response(
    status: int | None = 200,
    body: bytes | None = BODY,
    headers: dict[str, str] | None = None,
    error_kind: str | None = None,
    redirects: tuple[tuple[int, str], ...] = (),
    conditional: bool = True,
) -> FetchResponse:
    failed = error_kind is not None or (status is not None and status >= 400)
    return FetchResponse(
        feed_id=7,
        url=URL,
        final_url=redirects[-1][1] if redirects else URL,
        status=status,
        headers=headers or {},
        body=body if status is not None and 200 <= status < 300 else None,
        error=(f"HTTP {status}" if status else error_kind) if failed else None,
        error_kind=(error_kind or "http") if failed else None,
        redirects=redirects,
        elapsed=0.25,
        conditional=conditional,
        wire_bytes=len(body or b""),
    )


def run(
    f: Feed,
    r: FetchResponse,
    parsed: ParsedFeed | None = None,
    new_items: int = 0,
    now: datetime = NOW,
    settings: FetchSettings = S,
    seed: int = 0,
) -> Decision:
    if parsed is None and needs_parse(f, r):
        parsed = PARSED
    return decide(f, r, parsed, new_items, now, settings, random.Random(seed))


def delay(d: Decision, now: datetime = NOW) -> timedelta:
    assert d.feed.next_fetch_at is not None
    return d.feed.next_fetch_at - now


# -- plan and needs_parse --------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_full", "conditional"),
    [(None, False), (NOW - 11 * H, True), (NOW - 12 * H, False), (NOW - 40 * H, False)],
)
def test_plan_sends_validators_unless_a_full_fetch_is_due(
    last_full: datetime | None, conditional: bool
) -> None:
    f = feed(etag='"e"', last_modified="lm", last_full_fetch_at=last_full)
    request = plan(f, NOW, S)
    assert request.conditional is conditional
    expected = ('"e"', "lm") if conditional else (None, None)
    assert (request.etag, request.last_modified) == expected
    assert (request.feed_id, request.url) == (7, URL)


def test_plan_without_stored_validators_is_plain() -> None:
    assert plan(feed(), NOW, S) == FetchRequest(7, URL)


@pytest.mark.parametrize(
    ("stored_hash", "r", "expected"),
    [
        (None, response(200), True),
        (hashlib.sha256(BODY).hexdigest(), response(200), False),
        ("other", response(200), True),
        (None, response(304), False),
        (None, response(500), False),
        (None, response(None, error_kind="timeout"), False),
    ],
)
def test_needs_parse(stored_hash: str | None, r: FetchResponse, expected: bool) -> None:
    assert needs_parse(feed(body_hash=stored_hash), r) is expected


def test_decide_refuses_an_unparsed_new_body() -> None:
    with pytest.raises(ValueError, match="needs_parse"):
        decide(feed(), response(200), None, 0, NOW, S, random.Random(0))


# -- success ---------------------------------------------------------------------------


def test_ok_stores_state_and_entries() -> None:
    r = response(200, headers={"etag": '"v2"', "last-modified": "Sun, 01 Mar 2026 07:00:00 GMT"})
    d = run(feed(consecutive_failures=3, failing_since=NOW - H, last_error="x"), r)
    assert (d.event, d.store_entries) == ("ok", True)
    f = d.feed
    assert (f.etag, f.last_modified) == ('"v2"', "Sun, 01 Mar 2026 07:00:00 GMT")
    assert f.body_hash == hashlib.sha256(BODY).hexdigest() and f.title == "T"
    assert (f.consecutive_failures, f.failing_since, f.last_error) == (0, None, None)
    assert f.last_fetched_at == f.last_success_at == NOW
    assert f.last_full_fetch_at == NOW - H  # it was a conditional request
    assert d.attempt.feed_id == 7 and d.attempt.at == NOW and d.attempt.status == 200
    assert (d.attempt.duration_ms, d.attempt.bytes, d.attempt.error) == (250, len(BODY), None)
    assert (d.attempt.event, d.attempt.new_items) == ("ok", 0)


@pytest.mark.parametrize(
    ("stored", "r", "expected"),
    [
        # A 304 that does not repeat the validators keeps the old ones.
        (('"a"', "lm"), response(304, body=None), ('"a"', "lm")),
        (('"a"', "lm"), response(304, body=None, headers={"etag": '"b"'}), ('"b"', "lm")),
        # A 200 without them clears them: they would no longer match anything.
        (('"a"', "lm"), response(200), (None, None)),
    ],
)
def test_validators_follow_the_response(
    stored: tuple[str, str], r: FetchResponse, expected: tuple[str | None, str | None]
) -> None:
    f = run(feed(etag=stored[0], last_modified=stored[1]), r).feed
    assert (f.etag, f.last_modified) == expected


@pytest.mark.parametrize("status", [200, 304])
def test_full_fetch_time_is_recorded_only_for_unconditional_success(status: int) -> None:
    f = feed(body_hash=hashlib.sha256(BODY).hexdigest())
    assert run(f, response(status, conditional=False)).feed.last_full_fetch_at == NOW
    assert run(f, response(status, conditional=True)).feed.last_full_fetch_at == NOW - H
    failed = run(f, response(500, conditional=False)).feed
    assert failed.last_full_fetch_at == NOW - H  # still due: the next plan is full again


@pytest.mark.parametrize("seed", range(20))
def test_interval_is_jittered_within_ten_percent(seed: int) -> None:
    d = run(feed(), response(304, body=None), settings=FIXED, seed=seed)
    assert 54 * M <= delay(d) <= 66 * M


def test_jitter_spreads_feeds_apart() -> None:
    delays = {delay(run(feed(), response(304, body=None), settings=FIXED, seed=s)) for s in range(50)}
    assert len(delays) == 50 and max(delays) - min(delays) > 8 * M


def test_feed_interval_overrides_the_default() -> None:
    d = run(feed(interval=3 * H), response(304, body=None), settings=EXACT)
    assert delay(d) == 3 * H


@pytest.mark.parametrize(
    ("rate", "new_items", "expected"),
    [
        (None, 1, 60 * M),  # no history yet: starts from the base interval's rate
        (None, 0, 85.7 * M),  # one quiet fetch: a little later, not 4x
        (1.0, 1, 60 * M),  # one item an hour: once an hour
        (4.0, 4, 15 * M),  # busier: sooner, down to base / 4
        (40.0, 40, 15 * M),  # much busier: still base / 4
        (0.5, 0, 2.86 * H),  # nothing new: later ...
        (0.0, 0, 4 * H),  # ... up to base * 4
    ],
)
def test_interval_adapts_to_the_publishing_rate(
    rate: float | None, new_items: int, expected: timedelta
) -> None:
    d = run(feed(new_items_rate=rate), response(200), new_items=new_items, settings=replace(S, jitter=0))
    assert abs(delay(d) - expected) < M


def test_first_import_is_not_taken_as_a_rate() -> None:
    d = run(feed(last_success_at=None), response(200), new_items=40)
    assert d.feed.new_items_rate is None


def test_rate_is_smoothed() -> None:
    rate: float | None = None
    f = feed()
    for step in range(14):  # a burst of 10 items an hour, then silence
        now = NOW + step * H
        f = replace(f, last_success_at=now - H, new_items_rate=rate)
        rate = run(f, response(200), new_items=10 if step < 6 else 0, now=now).feed.new_items_rate
        assert rate is not None
        if step == 0:
            assert rate == pytest.approx(0.7 * 1 + 0.3 * 10)  # from the base interval's rate
        if step == 5:
            assert rate > 8  # caught up with the burst
        if step == 7:
            assert 3 < rate < 6  # fading, not dropped at once
    assert rate is not None and rate < 1


@pytest.mark.parametrize(
    ("interval", "settings", "expected"),
    [
        (timedelta(seconds=30), FIXED, 5 * M),  # min_interval
        (30 * H * 24, FIXED, 24 * H),  # max_interval
        (2 * M, replace(FIXED, min_interval=M), 2 * M),
    ],
)
def test_interval_is_clamped(interval: timedelta, settings: FetchSettings, expected: timedelta) -> None:
    d = run(feed(interval=interval), response(304, body=None), settings=replace(settings, jitter=0))
    assert delay(d) == expected


@pytest.mark.parametrize(
    ("ttl", "headers", "expected"),
    [
        (3 * H, {}, 3 * H),  # RSS ttl
        (None, {"cache-control": "public, max-age=7200"}, 2 * H),
        (None, {"cache-control": 'max-age="7200"', "age": "3600"}, 60 * M),  # aged: no raise
        (
            None,
            {"expires": "Sun, 01 Mar 2026 13:00:00 GMT", "date": "Sun, 01 Mar 2026 09:00:00 GMT"},
            4 * H,
        ),  # read against the server's Date
        (None, {"expires": "Sun, 01 Mar 2026 11:00:00 GMT"}, 3 * H),  # against now
        (None, {"expires": "0"}, 60 * M),  # invalid: ignored
        # max-age wins over Expires
        (None, {"cache-control": "max-age=7200", "expires": "Mon, 02 Mar 2026 08:00:00 GMT"}, 2 * H),
        (10 * H * 24, {}, 24 * H),  # a hint never goes past max_interval
        (10 * M, {}, 60 * M),  # hints only ever raise the interval
    ],
)
def test_hints_raise_the_interval(
    ttl: timedelta | None, headers: dict[str, str], expected: timedelta
) -> None:
    d = run(feed(ttl=ttl), response(304, body=None, headers=headers), settings=EXACT)
    assert delay(d) == expected


def test_hint_bounds_the_jitter_from_below() -> None:
    for seed in range(20):
        d = run(feed(ttl=2 * H), response(304, body=None), settings=FIXED, seed=seed)
        assert 2 * H <= delay(d) <= 2.2 * H


def test_parsed_ttl_is_kept_for_later_304s() -> None:
    d = run(feed(), response(200), parsed=replace(PARSED, ttl=3 * H))
    assert d.feed.ttl == 3 * H
    later = run(d.feed, response(304, body=None), now=NOW + 3 * H, settings=EXACT)
    assert delay(later, NOW + 3 * H) == 3 * H


# -- failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures_before", "expected"),
    [
        (0, 5 * M),
        (1, 10 * M),
        (2, 20 * M),
        (3, 40 * M),
        (5, 160 * M),
        (8, 1280 * M),
        (9, 24 * H),
        (40, 24 * H),
        (10_000, 24 * H),
    ],
)
def test_backoff_grows_and_is_capped(failures_before: int, expected: timedelta) -> None:
    since = NOW - H if failures_before else None
    f = feed(consecutive_failures=failures_before, failing_since=since)
    for seed in range(5):
        d = run(f, response(500), seed=seed)
        assert d.event == "failed" and not d.store_entries
        assert d.feed.consecutive_failures == failures_before + 1
        assert expected * 0.9 <= delay(d) <= min(expected * 1.1, 24 * H)


@pytest.mark.parametrize(
    "r",
    [
        response(None, error_kind="timeout"),
        response(None, error_kind="connect"),
        response(502),
        response(404),
        response(503),  # no Retry-After: an ordinary failure
        response(429, headers={"retry-after": "soon"}),  # unreadable: likewise
        response(200, error_kind="too_large"),
    ],
)
def test_errors_back_off(r: FetchResponse) -> None:
    d = run(feed(), r)
    assert d.event == "failed"
    assert d.feed.failing_since == NOW and d.feed.last_error == r.error
    assert d.attempt.error == r.error
    assert 4.5 * M <= delay(d) <= 5.5 * M


def test_parse_failure_is_a_failure_and_is_parsed_again() -> None:
    broken = ParsedFeed(title=None, link=None, entries=(), error="not XML")
    d = run(feed(body_hash="old"), response(200), parsed=broken)
    assert (d.event, d.store_entries) == ("failed", False)
    assert d.feed.last_error == "not XML" == d.attempt.error
    assert d.feed.body_hash is None  # so the same broken body is not "unchanged" next time
    assert needs_parse(d.feed, response(200))


def test_malformed_with_entries_is_ok() -> None:
    salvaged = replace(PARSED, malformed=True, error="mismatched tag")
    d = run(feed(), response(200), parsed=salvaged)
    assert (d.event, d.store_entries) == ("ok", True)
    assert d.feed.malformed and d.feed.last_error == "mismatched tag"


@pytest.mark.parametrize(
    ("failing_for", "event"),
    [
        (29 * 24 * H, "failed"),
        (30 * 24 * H - M, "failed"),
        (30 * 24 * H, "disabled"),
        (90 * 24 * H, "disabled"),
    ],
)
def test_disabled_after_the_failure_window(failing_for: timedelta, event: str) -> None:
    since = NOW - failing_for
    d = run(feed(consecutive_failures=50, failing_since=since), response(500))
    assert d.event == event
    if event == "disabled":
        assert d.feed.disabled_at == NOW and d.feed.next_fetch_at is None
        reason = d.feed.disabled_reason or ""
        assert "HTTP 500" in reason and f"{since:%Y-%m-%d}" in reason and "2026-03-01" in reason
    else:
        assert d.feed.disabled_at is None and d.feed.failing_since == since


def test_one_success_ends_the_failure_window() -> None:
    f = feed(consecutive_failures=50, failing_since=NOW - 29 * 24 * H)
    ok = run(f, response(304, body=None))
    assert (ok.feed.failing_since, ok.feed.consecutive_failures) == (None, 0)
    again = run(ok.feed, response(500), now=NOW + 2 * 24 * H)
    assert again.event == "failed" and again.feed.failing_since == NOW + 2 * 24 * H


def test_410_disables_at_once() -> None:
    d = run(feed(), response(410))
    assert d.event == "disabled" and d.feed.disabled_at == NOW
    assert "410" in (d.feed.disabled_reason or "")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "120"}, timedelta(seconds=120)),
        ({"retry-after": " 7200 "}, 2 * H),
        ({"retry-after": "Sun, 01 Mar 2026 10:00:00 GMT"}, 2 * H),
        # against the server's Date when it sent one
        ({"retry-after": "Sun, 01 Mar 2026 10:00:00 GMT", "date": "Sun, 01 Mar 2026 09:30:00 GMT"}, 30 * M),
        ({"retry-after": format_datetime(NOW - H, usegmt=True)}, timedelta(0)),  # past: now
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-5"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: timedelta | None) -> None:
    assert retry_after(headers, NOW) == expected


@pytest.mark.parametrize(
    ("status", "value", "low", "high"),
    [
        (503, "7200", 2 * H, 2.2 * H),
        (429, "Sun, 01 Mar 2026 11:00:00 GMT", 3 * H, 3.3 * H),
        (429, "30", 5 * M, 5.5 * M),  # never sooner than min_interval
        (503, str(7 * 24 * 3600), 24 * H, 24 * H),  # never later than max_interval
    ],
)
def test_retry_after_sets_the_next_fetch(status: int, value: str, low: timedelta, high: timedelta) -> None:
    d = run(
        feed(consecutive_failures=6, failing_since=NOW - H), response(status, headers={"retry-after": value})
    )
    assert d.event == "retry_after" and not d.store_entries
    assert low <= delay(d) <= high
    assert d.feed.consecutive_failures == 7  # still a failure: it counts toward disabling


def test_retry_after_past_the_window_still_disables() -> None:
    f = feed(consecutive_failures=99, failing_since=NOW - 31 * 24 * H)
    assert run(f, response(503, headers={"retry-after": "60"})).event == "disabled"


# -- redirects -------------------------------------------------------------------------

NEW = "https://example.org/new.xml"
MOVED = ((301, NEW),)


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_needs_three_consecutive_sightings(status: int) -> None:
    f = feed()
    for count in (1, 2):
        f = run(f, response(200, redirects=((status, NEW),))).feed
        assert (f.url, f.pending_redirect_url, f.pending_redirect_count) == (URL, NEW, count)
    f = run(f, response(304, body=None, redirects=((status, NEW),))).feed
    assert (f.url, f.pending_redirect_url, f.pending_redirect_count) == (NEW, None, 0)


def test_a_fetch_without_the_redirect_resets_the_count() -> None:
    f = run(run(feed(), response(200, redirects=MOVED)).feed, response(200, redirects=MOVED)).feed
    assert f.pending_redirect_count == 2
    f = run(f, response(304, body=None)).feed  # answered at the old URL
    assert (f.url, f.pending_redirect_url, f.pending_redirect_count) == (URL, None, 0)


def test_a_different_target_starts_over() -> None:
    f = feed(pending_redirect_url="https://example.org/elsewhere", pending_redirect_count=2)
    f = run(f, response(200, redirects=MOVED)).feed
    assert (f.url, f.pending_redirect_url, f.pending_redirect_count) == (URL, NEW, 1)


def test_no_answer_neither_counts_nor_resets() -> None:
    f = feed(pending_redirect_url=NEW, pending_redirect_count=2)
    f = run(f, response(None, error_kind="connect")).feed
    assert (f.pending_redirect_url, f.pending_redirect_count) == (NEW, 2)


def test_redirect_to_a_failing_target_does_not_count() -> None:
    f = feed(pending_redirect_url=NEW, pending_redirect_count=2)
    f = run(f, response(500, redirects=MOVED)).feed
    assert (f.url, f.pending_redirect_url, f.pending_redirect_count) == (URL, NEW, 2)


@pytest.mark.parametrize(
    ("redirects", "adopted"),
    [
        (((302, NEW),), None),
        (((307, NEW),), None),
        (((301, NEW), (302, "https://cdn.example.org/x")), NEW),  # only the permanent prefix
        (((302, "https://a.example.org/"), (301, NEW)), None),  # temporary first: nothing
        (((301, "https://a.example.org/"), (308, NEW)), NEW),
    ],
)
def test_only_the_permanent_prefix_of_a_chain_counts(
    redirects: tuple[tuple[int, str], ...], adopted: str | None
) -> None:
    f = feed()
    for _ in range(3):
        f = run(f, response(200, redirects=redirects)).feed
    assert f.url == (adopted or URL)


# -- purity ----------------------------------------------------------------------------


def test_same_inputs_same_decision() -> None:
    f, r = feed(), response(200, headers={"etag": '"x"'})
    assert run(f, r, seed=3) == run(f, r, seed=3)
    assert run(f, r, seed=3).feed.next_fetch_at != run(f, r, seed=4).feed.next_fetch_at
