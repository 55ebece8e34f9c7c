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

# Imported on first use (PEP 562): ``aggregator.fetch.settings`` and the like must not pull
# in httpx and aiohttp (~0.15 s) for a pass that has nothing to fetch.
_WHERE = {
    "Attempt": "aggregator.fetch.decide", "Decision": "aggregator.fetch.decide",
    "decide": "aggregator.fetch.decide", "needs_parse": "aggregator.fetch.decide",
    "parse_failed": "aggregator.fetch.decide", "plan": "aggregator.fetch.decide",
    "retry_after": "aggregator.fetch.decide", "Fetcher": "aggregator.fetch.http",
    "FetchRequest": "aggregator.fetch.http", "FetchResponse": "aggregator.fetch.http",
    "FetchSettings": "aggregator.fetch.settings",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'aggregator.fetch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
        http = importlib.import_module("aggregator.fetch.http")
        importlib.import_module("aggregator.fetch.decide")
        http._tls_context()

    thread = threading.Thread(target=load, name="aggregator-preload")
    _loading.append(thread)
    thread.start()


if TYPE_CHECKING:
    from aggregator.fetch.decide import (
        Attempt,
        Decision,
        decide,
        needs_parse,
        parse_failed,
        plan,
        retry_after,
    )
    from aggregator.fetch.http import Fetcher, FetchRequest, FetchResponse
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
