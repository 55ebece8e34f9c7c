"""What a fetch means for a feed: pure functions of (state, input, now).

No I/O, no clock reads, no global random: the caller passes ``now`` and a
``random.Random``, so every decision can be replayed in a test. Modelled on the
``Decider`` of lemon24/reader's ``_update``: the pipeline does the work, this only
decides.

The schedule is ``Feed.next_fetch_at``:

* success: the feed's interval, moved by its publishing rate, clamped to
  [min_interval, max_interval], raised by the feed's own hints (RSS ttl, Cache-Control
  max-age, Expires), jittered;
* 429/503 with Retry-After: what the server asked, never sooner than min_interval;
* other failures: exponential backoff from ``backoff_base``, capped at max_interval;
  after ``disable_after`` of uninterrupted failure the feed is disabled; 410 disables
  at once.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from aggregator.fetch.messages import BAD_SCHEME, HTTP, FetchRequest, FetchResponse
from aggregator.fetch.settings import FetchSettings
from aggregator.types import Attempt, Feed, ParsedFeed

# Decision.event values.
OK = "ok"  # parsed; entries to store
NOT_MODIFIED = "not_modified"  # 304
UNCHANGED = "unchanged"  # 200 with the same body as last time: not parsed
FAILED = "failed"
RETRY_AFTER = "retry_after"  # 429/503 with Retry-After
DISABLED = "disabled"

# Weight of the newest sample in the smoothed publishing rate: ~3 fetches of memory,
# enough to ride out a burst without chasing it.
RATE_SMOOTHING = 0.3
_MAX_DOUBLINGS = 32  # 2**32 * anything is past any sane max_interval


@dataclass(frozen=True)
class Decision:
    feed: Feed  # the new state; next_fetch_at is the schedule
    attempt: Attempt
    store_entries: bool
    event: str  # one of OK, NOT_MODIFIED, UNCHANGED, FAILED, RETRY_AFTER, DISABLED


def plan(feed: Feed, now: datetime, settings: FetchSettings) -> FetchRequest:
    """The request for ``feed``: conditional, unless a full fetch is due.

    Some servers' validators lie (a 304 for a changed feed), so every
    ``full_fetch_every`` one fetch goes without them; the body hash then tells whether
    anything really changed.
    """
    last_full = feed.last_full_fetch_at
    if last_full is None or now - last_full >= settings.full_fetch_every:
        return FetchRequest(feed.id, feed.url)
    return FetchRequest(feed.id, feed.url, feed.etag, feed.last_modified)


def needs_parse(feed: Feed, response: FetchResponse) -> bool:
    """Whether the body is worth parsing: a 2xx whose body differs from the last one."""
    return response.ok and response.body is not None and response.body_hash != feed.body_hash


def parse_failed(parsed: ParsedFeed) -> bool:
    """A document with an error and nothing recovered; with entries it is only malformed."""
    return parsed.error is not None and not parsed.entries and not parsed.skipped


def decide(
    feed: Feed,
    response: FetchResponse,
    parsed: ParsedFeed | None,
    new_items: int,
    now: datetime,
    settings: FetchSettings,
    rand: random.Random,
) -> Decision:
    """The feed's new state after ``response`` (and ``parsed``, when it was parsed).

    ``new_items`` is how many entries the store found new; 0 when nothing was parsed.
    """
    attempt = Attempt(
        feed_id=feed.id,
        at=now,
        status=response.status,
        duration_ms=round(response.elapsed * 1000),
        bytes=response.wire_bytes,
        error=response.error,
        new_items=new_items,
    )
    feed = replace(feed, last_fetched_at=now)

    if response.not_modified:
        return _success(feed, response, None, 0, NOT_MODIFIED, attempt, now, settings, rand)
    if response.ok:
        if parsed is None:
            if needs_parse(feed, response):
                raise ValueError("needs_parse() is true for this response but nothing was parsed")
            return _success(feed, response, None, 0, UNCHANGED, attempt, now, settings, rand)
        if parse_failed(parsed):
            reason = parsed.error or "not an RSS or Atom feed"
            attempt = replace(attempt, error=reason)
            return _failure(feed, response, reason, FAILED, attempt, now, settings, rand)
        return _success(feed, response, parsed, new_items, OK, attempt, now, settings, rand)

    reason = response.error or f"HTTP {response.status}"
    if response.error_kind == HTTP and response.status == 410:
        return _disable(feed, response, f"gone (HTTP 410) on {now:%Y-%m-%d}", attempt, now)
    if response.error_kind == BAD_SCHEME and not response.redirects:
        # The stored URL itself can never be fetched: retrying would only hide that.
        return _disable(feed, response, f"{reason}; disabled on {now:%Y-%m-%d}", attempt, now)
    if response.error_kind == HTTP and response.status in (429, 503):
        delay = retry_after(response.headers, now)
        if delay is not None:
            why = f"{reason} (Retry-After {delay.total_seconds():.0f}s)"
            return _failure(feed, response, why, RETRY_AFTER, attempt, now, settings, rand, asked=delay)
    return _failure(feed, response, reason, FAILED, attempt, now, settings, rand)


# -- outcomes --------------------------------------------------------------------------


def _success(
    feed: Feed,
    response: FetchResponse,
    parsed: ParsedFeed | None,
    new_items: int,
    event: str,
    attempt: Attempt,
    now: datetime,
    settings: FetchSettings,
    rand: random.Random,
) -> Decision:
    changes: dict[str, Any] = {
        "last_success_at": now,
        "consecutive_failures": 0,
        "failing_since": None,
        "last_error": None,
        "new_items_rate": _rate(feed, new_items, now, settings),
    }
    if not response.conditional:
        changes["last_full_fetch_at"] = now
    headers = response.headers
    if event == NOT_MODIFIED:
        # A 304 should repeat the validators; when it does not, the old ones still hold.
        changes["etag"] = headers.get("etag") or feed.etag
        changes["last_modified"] = headers.get("last-modified") or feed.last_modified
    else:
        # A 200 replaces them: a server that stopped sending one must not get it back.
        changes["etag"] = headers.get("etag")
        changes["last_modified"] = headers.get("last-modified")
    if parsed is not None:
        if parsed.malformed and parsed.error:
            # Kept what could be kept (entries recovered, markup dropped): say why on the
            # attempt too, where 'feeds status' and the history show it.
            attempt = replace(attempt, error=parsed.error)
        changes.update(
            body_hash=response.body_hash,
            title=parsed.title or feed.title,
            malformed=parsed.malformed,
            last_error=parsed.error if parsed.malformed else None,
            ttl=parsed.ttl,
        )
    changes.update(_redirect_changes(feed, response, settings, succeeded=True))
    feed = replace(feed, **changes)
    interval, floor = _interval(feed, feed.new_items_rate, _hint(feed.ttl, headers, now), settings)
    delay = _jittered(interval, floor, settings.max_interval, settings.jitter, rand)
    feed = replace(feed, next_fetch_at=now + delay)
    return Decision(feed, replace(attempt, event=event), store_entries=event == OK, event=event)


def _failure(
    feed: Feed,
    response: FetchResponse,
    reason: str,
    event: str,
    attempt: Attempt,
    now: datetime,
    settings: FetchSettings,
    rand: random.Random,
    asked: timedelta | None = None,
) -> Decision:
    since = feed.failing_since or now
    feed = replace(
        feed,
        consecutive_failures=feed.consecutive_failures + 1,
        failing_since=since,
        last_error=reason,
        # A failed parse must be retried on the same body, or "unchanged" would hide it.
        body_hash=None if event == FAILED and response.ok else feed.body_hash,
        **_redirect_changes(feed, response, settings, succeeded=False),
    )
    if now - since >= settings.disable_after:
        days = (now - since).days
        why = f"{reason}; failing since {since:%Y-%m-%d} ({days} days), disabled on {now:%Y-%m-%d}"
        return _disable(feed, response, why, attempt, now, counted=True)
    cap = settings.max_interval
    if asked is not None:
        # Never sooner than asked (jitter only adds), nor than min_interval.
        wait = min(max(asked, settings.min_interval), cap)
        delay = _jittered(wait, wait, cap, settings.jitter, rand)
    else:
        doublings = min(feed.consecutive_failures - 1, _MAX_DOUBLINGS)
        backoff = min(settings.backoff_base * 2**doublings, cap)
        delay = _jittered(backoff, timedelta(0), cap, settings.jitter, rand)
    return Decision(replace(feed, next_fetch_at=now + delay), replace(attempt, event=event), False, event)


def _disable(
    feed: Feed,
    response: FetchResponse,
    reason: str,
    attempt: Attempt,
    now: datetime,
    counted: bool = False,
) -> Decision:
    if not counted:
        feed = replace(
            feed,
            consecutive_failures=feed.consecutive_failures + 1,
            failing_since=feed.failing_since or now,
            last_error=response.error or f"HTTP {response.status}",
        )
    feed = replace(feed, disabled_at=now, disabled_reason=reason, next_fetch_at=None)
    return Decision(feed, replace(attempt, event=DISABLED), store_entries=False, event=DISABLED)


# -- redirects -------------------------------------------------------------------------


def _redirect_changes(
    feed: Feed, response: FetchResponse, settings: FetchSettings, *, succeeded: bool
) -> dict[str, Any]:
    """Adopt a permanent redirect once it was seen on enough consecutive fetches.

    Counted only on fetches that succeeded at the target (moving to a broken URL helps
    no one); reset by any answer from the stored URL that did not redirect there; left
    alone when nothing answered at all.
    """
    target = response.permanent_url
    if target is not None and target != feed.url and succeeded:
        count = feed.pending_redirect_count + 1 if feed.pending_redirect_url == target else 1
        if count >= settings.redirect_confirmations:
            return {"url": target, "pending_redirect_url": None, "pending_redirect_count": 0}
        return {"pending_redirect_url": target, "pending_redirect_count": count}
    seen_answer = response.status is not None or bool(response.redirects)
    if feed.pending_redirect_url is not None and seen_answer and target != feed.pending_redirect_url:
        return {"pending_redirect_url": None, "pending_redirect_count": 0}
    return {}


# -- timing ----------------------------------------------------------------------------


def _rate(feed: Feed, new_items: int, now: datetime, settings: FetchSettings) -> float | None:
    """New items per hour, smoothed over fetches.

    Per hour rather than per fetch: a per-fetch count depends on the interval it drives,
    a feedback loop; an hourly rate is the feed's own. The first success is an import of
    the whole feed, not a rate, and is skipped. Smoothing starts from the rate the base
    interval is right for, so one quiet fetch moves the interval a little, not 4x.
    """
    if feed.last_success_at is None:
        return feed.new_items_rate
    span = max(now - feed.last_success_at, settings.min_interval)
    sample = new_items / (span / timedelta(hours=1))
    rate = feed.new_items_rate
    if rate is None:
        rate = settings.target_new_items / (_base(feed, settings) / timedelta(hours=1))
    return (1 - RATE_SMOOTHING) * rate + RATE_SMOOTHING * sample


def _base(feed: Feed, settings: FetchSettings) -> timedelta:
    return feed.interval or settings.interval


def _interval(
    feed: Feed, rate: float | None, hint: timedelta | None, settings: FetchSettings
) -> tuple[timedelta, timedelta]:
    """(interval, floor): the floor is what jitter may not go under."""
    base = _base(feed, settings)
    interval = base
    if rate is not None:
        low, high = base / settings.adapt_range, base * settings.adapt_range
        wanted = timedelta(hours=settings.target_new_items / rate) if rate > 0 else high
        interval = min(max(wanted, low), high)
    floor = settings.min_interval
    if hint is not None:
        floor = max(floor, min(hint, settings.max_interval))
    return min(max(interval, floor), settings.max_interval), floor


def _jittered(
    delay: timedelta, floor: timedelta, cap: timedelta, jitter: float, rand: random.Random
) -> timedelta:
    """``delay`` +- ``jitter``, kept inside [floor, cap] (``delay`` itself is inside)."""
    low = max(delay * (1 - jitter), floor)
    high = min(delay * (1 + jitter), cap)
    if high <= low:
        return delay
    return low + (high - low) * rand.random()


def _hint(ttl: timedelta | None, headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """The longest of the feed's refresh hints: RSS ttl, Cache-Control max-age, Expires."""
    hints = [ttl] if ttl is not None else []
    max_age = _max_age(headers.get("cache-control", ""))
    if max_age is not None:
        age = headers.get("age", "").strip()
        hints.append(max_age - timedelta(seconds=int(age) if age.isdigit() else 0))
    elif "expires" in headers:
        # max-age overrides Expires (RFC 9111 5.3); Expires is read against the server's
        # Date so clock skew between us does not count.
        expires = _http_date(headers["expires"])
        if expires is not None:
            hints.append(expires - (_http_date(headers.get("date", "")) or now))
    return max(hints) if hints else None


def _max_age(cache_control: str) -> timedelta | None:
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        value = value.strip().strip('"')
        if name.strip().lower() == "max-age" and value.isdigit():
            return timedelta(seconds=int(value))
    return None


def retry_after(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """Retry-After as a delay: delta-seconds or an HTTP date (against the server's Date)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return timedelta(seconds=int(value))
    when = _http_date(value)
    if when is None:
        return None
    return max(when - (_http_date(headers.get("date", "")) or now), timedelta(0))


def _http_date(text: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when
