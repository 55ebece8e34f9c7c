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

import sys
from typing import TYPE_CHECKING, Any

# httpx's package imports its command-line tool (httpx._main: click, rich, pygments, ~40 ms)
# when click is installed; a missing module makes it fall back to a stub, as without click.
# Here, before anything of ours imports httpx (transport.py does, ahead of http.py).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from aggregator.fetch.decide import (  # noqa: E402
    Attempt,
    Decision,
    decide,
    needs_parse,
    parse_failed,
    plan,
    retry_after,
)
from aggregator.fetch.messages import FetchRequest, FetchResponse  # noqa: E402
from aggregator.fetch.settings import FetchSettings  # noqa: E402

if TYPE_CHECKING:
    from aggregator.fetch.http import Fetcher


def __getattr__(name: str) -> Any:
    # Fetcher on first use: httpx and aiohttp cost ~0.15 s, which deciding never needs.
    if name == "Fetcher":
        from aggregator.fetch.http import Fetcher

        return Fetcher
    raise AttributeError(f"module 'aggregator.fetch' has no attribute {name!r}")


_requested: set[str] = set()


def start_loading(transport: str = "aiohttp", *, parse: bool = False, tls: bool = False) -> None:
    """Import the HTTP stack (with ``parse``, the parsers; with ``tls``, load the CA bundle
    for https) in a thread; each once.

    For a whole ``fetch`` process these are the largest fixed cost (~0.15 s, and ~0.05 s
    more for the parsers), and a part of it runs without the GIL (loading CA bundles:
    aiohttp builds two contexts as it is imported, we build one for https feeds). Started before the config
    is read and the store opened, and the parsers while the first requests are out, it
    overlaps them. An importer blocks on the module's lock until the thread is done with
    it, so nothing is used half-imported; a failed import fails again, reported, where the
    module is used. Call it only when something is to be fetched, with ``parse`` only when
    a body is sure to come (a feed never fetched).
    """
    wanted = ["aggregator.fetch.transport"] if transport == "aiohttp" else []
    wanted.append("aggregator.fetch.http")
    if tls:
        wanted.append("tls")
    if parse:
        wanted.append("aggregator.parse.feeds")
    todo = [name for name in wanted if name not in _requested]
    if not todo:
        return
    _requested.update(todo)
    import threading

    def load() -> None:
        import contextlib
        import importlib

        with contextlib.suppress(Exception):
            for name in todo:  # aiohttp first: its CA bundle is the longest without the GIL
                if name == "tls":
                    importlib.import_module("aggregator.fetch.http")._tls_context()
                else:
                    importlib.import_module(name)

    threading.Thread(target=load, name="aggregator-preload").start()


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
