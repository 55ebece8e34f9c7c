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

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from aggregator.fetch.http import Fetcher


def __getattr__(name: str) -> Any:
    # Fetcher on first use: httpx and aiohttp cost ~0.15 s, which deciding never needs.
    if name == "Fetcher":
        from aggregator.fetch.http import Fetcher

        return Fetcher
    raise AttributeError(f"module 'aggregator.fetch' has no attribute {name!r}")


_loading: list[Any] = []


def start_loading(transport: str = "aiohttp") -> None:
    """Import the HTTP stack and build the TLS context in a thread, once per process.

    For a whole ``fetch`` process these are the largest fixed cost (~0.15 s), and a part of
    it runs without the GIL (loading CA bundles: aiohttp builds two contexts as it is
    imported, we build one): started before the config is read and the store opened, it
    overlaps them. The importer blocks on the module lock until the thread is done, so
    nothing is ever used half-imported. Call it only when something is to be fetched.
    """
    if _loading:
        return
    import threading

    def load() -> None:
        import importlib

        # aiohttp first: its CA bundle is the longest stretch without the GIL.
        if transport == "aiohttp":
            importlib.import_module("aggregator.fetch.transport")
        importlib.import_module("aggregator.fetch.http")._tls_context()

    thread = threading.Thread(target=load, name="aggregator-preload")
    _loading.append(thread)
    thread.start()

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
