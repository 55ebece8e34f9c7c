"""Bytes of a feed document to a ``ParsedFeed``.

feedparser reads every dialect and every broken feed; whatever entries it recovers are
kept, and the feed is marked malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import feedparser

from aggregator.parse.normalize import normalize_entry
from aggregator.types import ParsedFeed

_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000,
            "yearly": 31536000}
# Oddities that feedparser flags but that lose nothing we store.
_BENIGN = ("CharacterEncodingOverride", "NonXMLContentType")


def _ttl(feed: Mapping) -> timedelta | None:
    hints = []
    ttl = str(feed.get("ttl") or "").strip()
    if ttl.isdigit() and int(ttl) > 0:
        hints.append(int(ttl) * 60)
    period = str(feed.get("sy_updateperiod") or "").strip().lower()
    if period in _PERIODS:
        freq = str(feed.get("sy_updatefrequency") or "1").strip()
        hints.append(_PERIODS[period] // max(1, int(freq) if freq.isdigit() else 1))
    return timedelta(seconds=max(hints)) if hints else None


def parse_feed(body: bytes, now: datetime, *, url: str | None = None,
               headers: Mapping[str, str] | None = None) -> ParsedFeed:
    response_headers = {"content-location": url or ""}
    if headers and headers.get("content-type"):
        response_headers["content-type"] = headers["content-type"]
    d = feedparser.parse(body, response_headers=response_headers, sanitize_html=False,
                         resolve_relative_uris=True)
    feed = d.get("feed", {})
    language = feed.get("language") or None
    entries = []
    for raw in d.get("entries", []):
        try:
            entries.append(normalize_entry(raw, now, language))
        except Exception:
            continue
    error = None
    malformed = False
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        if type(exc).__name__ not in _BENIGN:
            malformed = True
            error = f"{type(exc).__name__}: {exc}"
    if not entries and not d.get("version"):
        error = error or "not a feed: no RSS or Atom document found"
        malformed = True
    # Two entries with one key in one document: keep the first, as the feed lists it.
    seen: set[str] = set()
    unique = [e for e in entries if not (e.key in seen or seen.add(e.key))]  # type: ignore[func-returns-value]
    return ParsedFeed(
        title=feed.get("title") or None, link=feed.get("link") or None, entries=tuple(unique),
        malformed=malformed, error=error, ttl=_ttl(feed), language=language)
