"""Fetching feeds politely: plan a request, fetch it, decide what it means.

The service layer drives it::

    req = plan(feed, now, settings)
    resp = await fetcher.fetch(req)            # or: async for resp in fetcher.fetch_all(reqs)
    parsed = parse(resp.body) if needs_parse(feed, resp) else None
    ...store parsed entries, count new_items...
    d = decide(feed, resp, parsed, new_items, now, settings, rand)
    ...store d.feed and d.attempt; d.feed.next_fetch_at is the schedule

``http`` does the I/O; ``decide`` is pure.
"""

from typing import Any

from aggregator.fetch.decide import (
    Attempt,
    Decision,
    decide,
    needs_parse,
    parse_failed,
    plan,
    retry_after,
)
from aggregator.fetch.messages import FetchRequest, FetchResponse
from aggregator.fetch.settings import FetchSettings

__all__ = [
    "Attempt",
    "Decision",
    "FetchRequest",
    "FetchResponse",
    "FetchSettings",
    "Fetcher",
    "decide",
    "needs_parse",
    "parse_failed",
    "plan",
    "retry_after",
]


def __getattr__(name: str) -> Any:
    # The fetcher loads httpx: only when asked for, so that importing the pure decider
    # (which imports this package first) stays free of it.
    if name == "Fetcher":
        from aggregator.fetch.http import Fetcher

        return Fetcher
    raise AttributeError(name)
