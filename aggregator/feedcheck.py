"""What ``feeds add`` checks before it follows a URL: that it answers, and with a feed.

A web page is not refused outright: like every feed reader, the feeds it announces
(``<link rel="alternate" type="application/rss+xml" href=...>``, Atom and RDF alike) are
found, and the only one is taken; of several, the user picks one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from aggregator.errors import AggregatorError, UsageError

FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml",
                        "application/xml", "text/xml"})


class FeedCheckError(AggregatorError):
    """The URL does not give a feed now (unreachable, an error status, not a feed)."""

    exit_code = 1


class ChooseFeed(UsageError):
    """A page announces several feeds: the user must say which (``--pick N``)."""

    def __init__(self, page: str, candidates: tuple[tuple[str, str | None], ...]) -> None:
        self.page, self.candidates = page, candidates
        super().__init__(f"{page} is a web page announcing {len(candidates)} feeds: give one's "
                         "URL, or --pick N")


@dataclass(frozen=True)
class CheckedFeed:
    url: str  # the feed's URL: as given, or found on the page given
    title: str | None
    entries: int
    page: str | None = None  # the web page it was found on, if any


def discover_feeds(html: bytes, page_url: str) -> tuple[tuple[str, str | None], ...]:
    """The feeds a web page announces, in page order, without repeats: (absolute URL,
    title). Relative hrefs are resolved against the page's ``<base href>``, else its URL."""
    import lxml.html
    from lxml import etree

    try:
        doc = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ()
    base = page_url
    for el in doc.iter("base"):
        href = (el.get("href") or "").strip()
        if href:
            base = urljoin(page_url, href)
            break
    found: dict[str, str | None] = {}
    for el in doc.iter("link", "a"):
        rel = (el.get("rel") or "").lower().split()
        kind = (el.get("type") or "").split(";")[0].strip().lower()
        href = (el.get("href") or "").strip()
        if "alternate" in rel and kind in FEED_TYPES and href:
            url = urljoin(base, href)
            if url.startswith(("http://", "https://")) and url not in found:
                found[url] = (el.get("title") or "").strip() or None
    return tuple(found.items())


def check_feed(settings: Any, url: str, now: datetime, *, pick: int | None = None,
               discover: bool = True) -> CheckedFeed:
    """Fetch ``url`` once and make sure a feed is there (or announced there). Raises
    ``FeedCheckError`` with the plain reason, or ``ChooseFeed`` for a page of several."""
    return asyncio.run(_check(settings, url, now, pick, discover))


async def _check(settings: Any, url: str, now: datetime, pick: int | None,
                 discover: bool) -> CheckedFeed:
    from aggregator.fetch.http import Fetcher, FetchRequest
    from aggregator.parse.feeds import looks_like_html, parse_feed

    async with Fetcher(settings) as fetcher:
        response = await fetcher.fetch(FetchRequest(0, url))
    if not response.ok or response.body is None:
        raise FeedCheckError(f"cannot add {url}: {response.error or 'no answer'} "
                             "(add it anyway with --no-check)")
    content_type = response.headers.get("content-type")
    parsed = await asyncio.to_thread(parse_feed, response.body, now, url=response.final_url,
                                     headers=response.headers)
    if parsed.entries or not parsed.error:
        if pick is not None:
            raise UsageError(f"--pick: {url} is a feed itself, not a page of feeds")
        return CheckedFeed(url, parsed.title, len(parsed.entries))
    if not (discover and looks_like_html(response.body, content_type)):
        raise FeedCheckError(f"cannot add {url}: {parsed.error} (add it anyway with --no-check)")
    candidates = discover_feeds(response.body, response.final_url)
    if not candidates:
        raise FeedCheckError(f"cannot add {url}: it is a web page that announces no feed "
                             "(<link rel=\"alternate\">); give the feed's own URL")
    if pick is None and len(candidates) > 1:
        raise ChooseFeed(url, candidates)
    if pick is not None and not 1 <= pick <= len(candidates):
        raise UsageError(f"--pick: expected a number from 1 to {len(candidates)}, found {pick}")
    chosen = candidates[(pick or 1) - 1][0]
    found = await _check(settings, chosen, now, None, discover=False)
    return CheckedFeed(found.url, found.title, found.entries, page=url)
