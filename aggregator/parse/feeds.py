"""Bytes of a feed document to a ``ParsedFeed``.

Two readers, one result. The fast path (``aggregator.parse.fast``) reads well-formed RSS
2.0, Atom 1.0 and RSS 1.0 with lxml and declines anything it is not sure to read exactly
as feedparser would; feedparser reads everything else, every dialect and every broken
feed: whatever entries it recovers are kept, and the feed is marked malformed. Both hand
feedparser-shaped entries to the one normalization step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import feedparser

from aggregator.parse.fast import fast_parse
from aggregator.parse.normalize import normalize_entry
from aggregator.types import Entry, ParsedFeed

# Which reader parse_feed uses: "auto" (fast path, feedparser when it declines), or one of
# them forced, for the parity tests and the benchmark.
Reader = Literal["auto", "fast", "feedparser"]

_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000,
            "yearly": 31536000}
# Oddities that feedparser flags but that lose nothing we store.
_BENIGN = ("CharacterEncodingOverride", "NonXMLContentType")


class FastPathDeclined(ValueError):
    """reader="fast" was forced on a document the fast path does not read."""


def _ttl(feed: Mapping[str, Any]) -> timedelta | None:
    hints = []
    ttl = str(feed.get("ttl") or "").strip()
    if ttl.isdigit() and int(ttl) > 0:
        hints.append(int(ttl) * 60)
    period = str(feed.get("sy_updateperiod") or "").strip().lower()
    if period in _PERIODS:
        freq = str(feed.get("sy_updatefrequency") or "1").strip()
        hints.append(_PERIODS[period] // max(1, int(freq) if freq.isdigit() else 1))
    return timedelta(seconds=max(hints)) if hints else None


def raw_hash(raw: Mapping[str, Any], language: str | None) -> str:
    """A digest of everything normalization reads of one raw entry (it reads nothing else:
    the raw mapping and the feed's language): equal digests, equal entries."""
    return hashlib.blake2b(f"{language}\0{raw!r}".encode(), digest_size=16).hexdigest()


def _normalize(raw_entries: list[Any], now: datetime, language: str | None,
               known: Collection[str] = ()) -> tuple[tuple[Entry, ...], tuple[str, ...], int]:
    """(entries, their raw hashes, how many were skipped): an entry whose raw hash is in
    ``known`` (stored before, unchanged since) is skipped before it is normalized: in a
    changed feed most entries are, and normalizing is most of parsing's cost."""
    entries = []
    hashes = []
    skipped = 0
    for raw in raw_entries:
        digest = raw_hash(raw, language)
        if digest in known:
            skipped += 1
            continue
        try:
            entries.append(normalize_entry(raw, now, language))
        except Exception:
            continue
        hashes.append(digest)
    # Two entries with one key in one document: keep the first, as the feed lists it.
    seen: set[str] = set()
    kept = [i for i, e in enumerate(entries)
            if not (e.key in seen or seen.add(e.key))]  # type: ignore[func-returns-value]
    return tuple(entries[i] for i in kept), tuple(hashes[i] for i in kept), skipped


def parse_feed(body: bytes, now: datetime, *, url: str | None = None,
               headers: Mapping[str, str] | None = None, reader: Reader = "auto",
               known: Collection[str] = ()) -> ParsedFeed:
    """``known``: raw hashes of the feed's stored entries (Store.raw_hashes), not read again."""
    content_type = headers.get("content-type") if headers else None
    if reader != "feedparser":
        fast = fast_parse(body, url, content_type=content_type)
        if fast is not None:
            language = fast.language or None
            feed = {"ttl": fast.ttl, "sy_updateperiod": fast.update_period,
                    "sy_updatefrequency": fast.update_frequency}
            entries, hashes, skipped = _normalize(fast.entries, now, language, known)
            return ParsedFeed(
                title=fast.title or None, link=fast.link or None,
                entries=entries, ttl=_ttl(feed), language=language, skipped=skipped,
                raw_hashes=hashes)
        if reader == "fast":
            raise FastPathDeclined("the fast path does not read this document")
    return _parse_with_feedparser(body, now, url, content_type, known)


def _parse_with_feedparser(body: bytes, now: datetime, url: str | None,
                           content_type: str | None, known: Collection[str] = ()) -> ParsedFeed:
    response_headers = {"content-location": url or ""}
    if content_type:
        response_headers["content-type"] = content_type
    # Raw HTML, as the fast path gives it: normalization sanitizes it and resolves its
    # relative URLs (nh3, in Rust) for both, where feedparser's resolver re-parses every
    # HTML field in pure Python.
    d = feedparser.parse(body, response_headers=response_headers, sanitize_html=False,
                         resolve_relative_uris=False)
    feed = d.get("feed", {})
    language = feed.get("language") or None
    entries, hashes, skipped = _normalize(d.get("entries", []), now, language, known)
    error = None
    malformed = False
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        if type(exc).__name__ not in _BENIGN:
            malformed = True
            error = f"{type(exc).__name__}: {exc}"
    if not entries and not skipped and not d.get("version"):
        error = error or "not a feed: no RSS or Atom document found"
        malformed = True
    return ParsedFeed(
        title=feed.get("title") or None, link=feed.get("link") or None, entries=entries,
        malformed=malformed, error=error, ttl=_ttl(feed), language=language, skipped=skipped,
        raw_hashes=hashes)
