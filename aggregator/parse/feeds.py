"""Bytes of a feed document to a ``ParsedFeed``.

Two readers, one result. The fast path (``aggregator.parse.fast``) reads well-formed RSS
2.0, Atom 1.0 and RSS 1.0 with lxml and declines anything it is not sure to read exactly
as feedparser would; feedparser reads everything else, every dialect and every broken
feed: whatever entries it recovers are kept, and the feed is marked malformed. Both hand
feedparser-shaped entries to the one normalization step.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import feedparser

from aggregator.parse.fast import fast_parse
from aggregator.parse.normalize import clean_text, normalize_entry
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


# Single-byte encodings an XML declaration (or HTTP charset) names wrongly for a document
# that is really UTF-8. Only ASCII-compatible ones: bytes valid as UTF-8 say little about
# a UTF-16 document (its NULs are valid UTF-8).
_LEGACY = frozenset({"windows-1252", "cp1252", "iso-8859-1", "latin-1", "latin1", "l1",
                     "iso-8859-15", "us-ascii", "ascii"})
_PROLOG_ENCODING = re.compile(rb"""^(<\?xml[^>]*?encoding\s*=\s*["'])([A-Za-z0-9._-]+)(["'])""")
_CHARSET = re.compile(r"(;\s*charset\s*=\s*[\"']?)([^;\"'\s]+)", re.I)


def utf8_despite_label(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """The document and its type as they should be read. Where the bytes are valid UTF-8
    with some beyond ASCII, but the prolog or HTTP charset names a single-byte encoding,
    the label is wrong and the bytes right (as miniflux reads it: "Euro €", where
    feedparser stores "Euro â‚¬"): both labels are made UTF-8, for both readers."""
    m = _PROLOG_ENCODING.match(body)
    c = _CHARSET.search(content_type) if content_type else None
    labels = [x.decode("ascii").lower() if isinstance(x, bytes) else x.lower()
              for x in (m.group(2) if m else None, c.group(2) if c else None) if x]
    if not labels or not any(label in _LEGACY for label in labels) or body.isascii():
        return body, content_type
    if any(label not in _LEGACY and label not in ("utf-8", "utf8") for label in labels):
        return body, content_type
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body, content_type
    if m:
        body = m.group(1) + b"utf-8" + m.group(3) + body[m.end():]
    if c and content_type:
        content_type = content_type[:c.start(2)] + "utf-8" + content_type[c.end(2):]
    return body, content_type


def raw_hash(raw: Mapping[str, Any], language: str | None, base_url: str | None = None) -> str:
    """A digest of everything normalization reads of one raw entry (it reads nothing else:
    the raw mapping, the feed's language and the URL links are relative to): equal digests,
    equal entries."""
    return hashlib.blake2b(f"{language}\0{base_url}\0{raw!r}".encode(), digest_size=16).hexdigest()


def _normalize(raw_entries: list[Any], now: datetime, language: str | None,
               base_url: str | None = None, deadline: float | None = None,
               known: Collection[str] = ()
               ) -> tuple[tuple[Entry, ...], tuple[str, ...], int, str | None]:
    """(entries, their raw hashes, how many were skipped, why some lost their markup or
    None). An entry whose raw hash is in ``known`` (stored before, unchanged since) is
    skipped before it is normalized: in a changed feed most entries are, and normalizing is
    most of parsing's cost. Past ``deadline`` (on ``time.thread_time``: this thread's CPU)
    no more HTML is parsed: the remaining entries keep their text only."""
    entries = []
    hashes = []
    skipped = 0
    for raw in raw_entries:
        markup = deadline is None or time.thread_time() < deadline
        digest = raw_hash(raw, language, base_url)
        if digest in known:
            skipped += 1
            continue
        try:
            entries.append(normalize_entry(raw, now, language, base_url=base_url, markup=markup))
        except Exception:
            continue
        hashes.append(digest)
    # Two entries with one key in one document: keep the first, as the feed lists it.
    seen: set[str] = set()
    kept = [i for i, e in enumerate(entries)
            if not (e.key in seen or seen.add(e.key))]  # type: ignore[func-returns-value]
    out = tuple(entries[i] for i in kept)
    hashes_kept = tuple(hashes[i] for i in kept)
    dropped = [e for e in out if e.markup_dropped]
    if not dropped:
        return out, hashes_kept, skipped, None
    first = dropped[0]
    many = f"{len(dropped)} entries" if len(dropped) > 1 else "1 entry"
    return out, hashes_kept, skipped, (f"markup dropped, text kept, in {many} (first "
                                       f"{first.title[:60]!r}: {first.markup_dropped})")


_HTML_START = re.compile(
    rb"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html\b|head\b|body\b)",
    re.I | re.S)
_FEED_ROOT = re.compile(rb"<(?:[\w-]+:)?(?:rss|feed|RDF)\b")


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    """A web page rather than a feed: it starts as HTML, or is served as HTML with no feed
    root element near its start."""
    head = body[:4096]
    if _HTML_START.match(head):
        return True
    media = (content_type or "").split(";")[0].strip().lower()
    return media in ("text/html", "application/xhtml+xml") and not _FEED_ROOT.search(head)


def parse_reason(exc: BaseException | None, body: bytes, content_type: str | None) -> str:
    """Why a document could not be read (whole), in plain words."""
    if looks_like_html(body, content_type):
        return "the server sent an HTML page, not a feed"
    if not body.strip():
        return "the server sent an empty document"
    line = getattr(exc, "getLineNumber", None)
    message = getattr(exc, "getMessage", None)
    if callable(line) and callable(message):  # SAXParseException: where, and what
        return f"not well-formed XML (line {line()}: {message()})"
    name = type(exc).__name__
    if name == "CharacterEncodingUnknown" or "encoding" in name.lower():
        return "the document's character encoding is unknown or wrong"
    return f"not a readable feed ({exc})" if exc is not None else "not an RSS or Atom feed"


def _note(error: str | None, note: str | None) -> str | None:
    return "; ".join(x for x in (error, note) if x) or None


def parse_feed(body: bytes, now: datetime, *, url: str | None = None,
               headers: Mapping[str, str] | None = None, reader: Reader = "auto",
               cpu_budget: float | None = None, known: Collection[str] = ()) -> ParsedFeed:
    """``cpu_budget``: seconds of this thread's CPU the document may take; past it, no
    more HTML is parsed (entries keep their text) and the feed records why. ``known``: raw
    hashes of the feed's stored entries (Store.raw_hashes), not normalized again."""
    deadline = time.thread_time() + cpu_budget if cpu_budget is not None else None
    content_type = headers.get("content-type") if headers else None
    body, content_type = utf8_despite_label(body, content_type)
    if reader != "feedparser":
        fast = fast_parse(body, url, content_type=content_type)
        if fast is not None:
            language = fast.language or None
            feed = {"ttl": fast.ttl, "sy_updateperiod": fast.update_period,
                    "sy_updatefrequency": fast.update_frequency}
            entries, hashes, skipped, note = _normalize(fast.entries, now, language, url, deadline, known)
            return ParsedFeed(
                title=clean_text(fast.title or "") or None, link=fast.link or None,
                entries=entries, ttl=_ttl(feed), language=language,
                malformed=note is not None, error=note, skipped=skipped, raw_hashes=hashes)
        if reader == "fast":
            raise FastPathDeclined("the fast path does not read this document")
    return _parse_with_feedparser(body, now, url, content_type, deadline, known)


def _parse_with_feedparser(body: bytes, now: datetime, url: str | None,
                           content_type: str | None, deadline: float | None = None,
                           known: Collection[str] = ()) -> ParsedFeed:
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
    entries, hashes, skipped, note = _normalize(d.get("entries", []), now, language, url, deadline, known)
    error = None
    malformed = False
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        if type(exc).__name__ not in _BENIGN:
            malformed = True
            error = parse_reason(exc, body, content_type)
    if not entries and not skipped and not d.get("version"):
        error = parse_reason(None, body, content_type) if looks_like_html(body, content_type) \
            else error or "not an RSS or Atom feed"
        malformed = True
    return ParsedFeed(
        title=clean_text(feed.get("title") or "") or None, link=feed.get("link") or None,
        entries=entries, malformed=malformed or note is not None, error=_note(error, note),
        ttl=_ttl(feed), language=language, skipped=skipped, raw_hashes=hashes)
