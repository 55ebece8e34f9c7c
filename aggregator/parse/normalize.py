"""Normalization: identities, canonical URLs, plain text, sanitized HTML, dates.

Pure functions over a parser's entry; the fetch time is passed in.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import nh3

from aggregator.types import Enclosure, Entry

# Parameters that identify a click, not a page.
_TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|_ga|_gl|igshid|"
    r"mkt_tok|oly_anon_id|oly_enc_id|vero_id|wt_mc|cmpid|ocid|ref_src|s_cid|__s)$", re.I)
# Before each block-level tag (a space is inserted there: a literal replacement, so no
# per-match template expansion).
_BLOCK = re.compile(r"(?=</?(?:p|div|br|li|ul|ol|h[1-6]|tr|td|th|blockquote|section|article|"
                    r"header|footer|figure|figcaption|pre|hr|table)\b)", re.I)
# Text the HTML parser gives back unchanged: nothing to sanitize.
_INERT = re.compile(r"[<>&\r\0\xa0]")
# Already canonical: lowercase http(s) host, no port, path, no query or fragment.
_CANONICAL = re.compile(r"https?://[a-z0-9.-]+/[^?#\s]*\Z")
_SPACE = re.compile(r"\s+")
_LINK_REL = "noopener noreferrer nofollow"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str | None) -> str | None:
    """Lowercase scheme and host, no fragment, no default port, no tracking parameters,
    parameters in a stable order. None for anything that is not an http(s) URL."""
    if not url:
        return None
    if _CANONICAL.match(url):
        return url
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not _TRACKING.match(k)))
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def plain_text(markup: str | None) -> str:
    """HTML to one line of text: tags stripped (script/style with their content), entities
    decoded, whitespace folded; block boundaries become spaces so words do not merge."""
    if not markup:
        return ""
    if "<" in markup:
        markup = nh3.clean(_BLOCK.sub(" ", markup), tags=set())
    if "&" in markup:
        markup = html.unescape(markup)
    # split/join folds whitespace as _SPACE.sub + strip would, several times faster.
    return " ".join(markup.split())


def sanitize_html(markup: str | None, base: str | None = None) -> str:
    """HTML safe to display: no scripts, styles, handlers or foreign elements; relative
    links and image sources made absolute against ``base`` (the URL the markup came from),
    as a browser would resolve them, since the item is displayed away from its feed."""
    if not markup or not _INERT.search(markup):
        return markup or ""
    relative: tuple[Literal["rewrite_with_base"], str] | None = None
    if base and base.startswith(("http://", "https://")) and "=" in markup:
        relative = ("rewrite_with_base", base)
    try:
        return nh3.clean(markup, link_rel=_LINK_REL, url_relative=relative)
    except ValueError:  # a base the URL standard rejects (bad port, ...): links stay as written
        return nh3.clean(markup, link_rel=_LINK_REL)


def stored_html(text: str, content_html: str) -> str:
    """The HTML worth storing beside an item's plain text: none when it has no markup
    (text and entities only), which ``display_html`` rebuilds from the text. Storing both
    doubled an item's size for feeds whose descriptions are plain text (bench_store.py)."""
    return content_html if "<" in content_html else ""


def display_html(text: str, stored: str) -> str:
    """An item's HTML for display from what ``stored_html`` kept."""
    return stored or html.escape(text, quote=False)


def _struct_to_dt(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        # Parsers give UTC struct_times: the fields are the datetime's (a leap second or
        # other odd field takes the arithmetic way).
        year, month, day, hour, minute, second = value[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        pass
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def entry_key(guid: str | None, link: str | None, title: str, date: str) -> str:
    """Identity within a feed: guid, else link, else a hash of title and date."""
    if guid and guid.strip():
        return guid.strip()
    if link and link.strip():
        return link.strip()
    return "sha1:" + hashlib.sha1(f"{title}\x00{date}".encode()).hexdigest()


def normalize_entry(e: Any, now: datetime, feed_language: str | None = None) -> Entry:
    """One feedparser-shaped entry (a mapping) to an ``Entry``."""
    title_html = e.get("title") or ""
    title = plain_text(title_html) if "<" in title_html or "&" in title_html else \
        _SPACE.sub(" ", title_html).strip()
    link = e.get("link") or None
    contents = e.get("content") or []
    best: Mapping[str, Any] = max(contents, key=lambda c: len(c.get("value") or ""), default={})
    body, base = best.get("value") or "", best.get("base")
    summary_html = e.get("summary") or ""
    # Each text made plain once: this is most of normalization's cost on a long entry.
    summary_text = plain_text(summary_html)
    text = plain_text(body)
    if len(summary_text) > len(text) or not body:
        body, text = summary_html, summary_text
        base = (e.get("summary_detail") or {}).get("base")
    updated = _struct_to_dt(e.get("updated_parsed"))
    published = _struct_to_dt(e.get("published_parsed")) or updated
    raw_date = e.get("published") or e.get("updated") or ""
    authors = tuple(a.get("name", "").strip() for a in e.get("authors") or []
                    if a.get("name", "").strip())
    if not authors and e.get("author"):
        authors = (str(e["author"]).strip(),)
    categories = tuple(dict.fromkeys(
        t.get("term", "").strip() for t in e.get("tags") or [] if t.get("term", "").strip()))
    enclosures = tuple(
        Enclosure(str(en.get("href")), en.get("type"),
                  int(en["length"]) if str(en.get("length", "")).isdigit() else None)
        for en in e.get("enclosures") or [] if en.get("href"))
    language = None
    for c in contents:
        language = c.get("language") or language
    language = language or feed_language
    content_hash = hashlib.sha1(f"{title}\x00{text}".encode()).hexdigest()
    return Entry(
        key=entry_key(e.get("id"), link, title, raw_date),
        title=title or text[:80] or "(untitled)",
        url=link,
        canonical_url=canonical_url(link),
        summary=text,
        content_html=sanitize_html(body, base),
        published=published or now,
        date_is_fetch_time=published is None,
        updated=updated,
        authors=authors,
        categories=categories,
        enclosures=enclosures,
        language=language,
        content_hash=content_hash,
    )
