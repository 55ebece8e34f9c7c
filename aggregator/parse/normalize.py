"""Normalization: identities, canonical URLs, plain text, sanitized HTML, dates.

Pure functions over a parser's entry; the fetch time is passed in.

Hostile input is bounded here, before it reaches an HTML parser: html5ever (under nh3) is
quadratic in nesting depth (100,000 nested <div>s in one description took 85 s), so markup
past a bound in depth, elements or size is not parsed at all: its text is kept, its
markup dropped, and the entry says why (``Entry.markup_dropped``). Control characters
(C0 but tab and newline, DEL, C1) never leave this module: in a terminal they clear the
screen or plant disguised links.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

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
# Markup past any of these is not handed to an HTML parser (see the module docstring).
# Depth: Blink's HTML parser stops nesting at 512 too; real articles stay under ~40.
MAX_MARKUP_CHARS = 2 * 1024 * 1024
MAX_ELEMENTS = 20_000
MAX_DEPTH = 512
# Terminal escape sequences (CSI, OSC and other ESC sequences, 7- and 8-bit), then any
# control character left: C0 but tab and newline, DEL, C1.
_ESCAPES = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
                      r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                      r"|\x1b[ -/]*[0-~]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Tags, for bounding and for the text of markup too big to parse.
_TAG = re.compile(r"<(/?)([a-zA-Z][^\s/>]*)[^>]*?(/?)>")
_ANY_TAG = re.compile(r"<[^>]*>?")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
# Elements that never nest (void), or whose end tag the parser implies when a sibling
# starts: not counted in the depth, so sloppy <p> and <li> lists are not "deep".
_FLAT = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th",
    "thead", "tbody", "tfoot", "colgroup", "rb", "rt", "rp", "caption"})
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


def clean_text(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab and newline
    stay)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub("", _ESCAPES.sub("", text))


def markup_excess(markup: str) -> str | None:
    """Why ``markup`` is too much to hand to an HTML parser, or None. Linear: one count,
    and a scan of the tags only when there are enough of them to nest past MAX_DEPTH."""
    if len(markup) > MAX_MARKUP_CHARS:
        return f"{len(markup):,} characters of markup (limit {MAX_MARKUP_CHARS:,})"
    tags = markup.count("<")
    if tags <= MAX_DEPTH:
        return None
    elements = depth = deepest = 0
    for m in _TAG.finditer(markup):
        closing, name, selfclosing = m.groups()
        elements += not closing
        if name.lower() in _FLAT or selfclosing:
            continue
        depth = max(depth - 1, 0) if closing else depth + 1
        deepest = max(deepest, depth)
    if elements > MAX_ELEMENTS:
        return f"{elements:,} elements (limit {MAX_ELEMENTS:,})"
    if deepest > MAX_DEPTH:
        return f"elements nested {deepest:,} deep (limit {MAX_DEPTH})"
    return None


def _crude_text(markup: str) -> str:
    """The text of markup too big to parse: tags cut out by pattern, not parsed."""
    markup = _ANY_TAG.sub("", _BLOCK.sub(" ", _SCRIPT.sub(" ", markup)))
    return " ".join(html.unescape(markup).split())


def plain_text(markup: str | None) -> str:
    """HTML to one line of text: tags stripped (script/style with their content), entities
    decoded, whitespace folded; block boundaries become spaces so words do not merge.
    Markup past the bounds (``markup_excess``) is not parsed: its tags are cut out."""
    if not markup:
        return ""
    if "<" in markup:
        if markup_excess(markup):
            return clean_text(_crude_text(markup))
        markup = nh3.clean(_BLOCK.sub(" ", markup), tags=set())
    if "&" in markup:
        markup = html.unescape(markup)
    # split/join folds whitespace as _SPACE.sub + strip would, several times faster.
    return clean_text(" ".join(markup.split()))


def sanitize_html(markup: str | None, base: str | None = None) -> str:
    """HTML safe to display: no scripts, styles, handlers or foreign elements; relative
    links and image sources made absolute against ``base`` (the URL the markup came from),
    as a browser would resolve them, since the item is displayed away from its feed."""
    if not markup or not _INERT.search(markup):
        return clean_text(markup) if markup else ""
    if markup_excess(markup):
        return html.escape(_crude_text(markup), quote=False)
    relative: tuple[Literal["rewrite_with_base"], str] | None = None
    if base and base.startswith(("http://", "https://")) and "=" in markup:
        relative = ("rewrite_with_base", base)
    try:
        return clean_text(nh3.clean(markup, link_rel=_LINK_REL, url_relative=relative))
    except ValueError:  # a base the URL standard rejects (bad port, ...): links stay as written
        return clean_text(nh3.clean(markup, link_rel=_LINK_REL))


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


def item_link(link: str | None, base: str | None = None) -> str | None:
    """An item's link as it may be shown and followed: absolute (resolved against ``base``,
    the document's URL, when the readers left it relative) and http(s); else None
    (``javascript:``, ``data:``, ``file:`` ...)."""
    if not link:
        return None
    link = clean_text(link).strip()
    if link.startswith(("http://", "https://")):
        return link
    try:
        if base and not urlsplit(link).scheme:
            link = urljoin(base, link)
        scheme = urlsplit(link).scheme.lower()
    except ValueError:
        return None
    return link if scheme in ("http", "https") else None


def normalize_entry(e: Any, now: datetime, feed_language: str | None = None, *,
                    base_url: str | None = None, markup: bool = True) -> Entry:
    """One feedparser-shaped entry (a mapping) to an ``Entry``. ``base_url`` (the
    document's URL) resolves a link the readers left relative. ``markup=False`` parses no
    HTML at all (a feed past its CPU budget): the text is kept, the markup dropped."""
    title_html = e.get("title") or ""
    dropped = None
    if "<" in title_html or "&" in title_html:
        if not markup and "<" in title_html:
            title = clean_text(_crude_text(title_html))
        else:
            title = plain_text(title_html)
    else:
        title = clean_text(_SPACE.sub(" ", title_html).strip())
    raw_link = e.get("link") or None
    link = item_link(raw_link, base_url)
    contents = e.get("content") or []
    best: Mapping[str, Any] = max(contents, key=lambda c: len(c.get("value") or ""), default={})
    body, base = best.get("value") or "", best.get("base")
    summary_html = e.get("summary") or ""
    if not markup:
        dropped = "the feed's CPU budget was spent"
    else:
        dropped = markup_excess(body) if "<" in body else None
        dropped = dropped or (markup_excess(summary_html) if "<" in summary_html else None)
    # Bounded or not, all of it as text only: the bounds scan once, not per field.
    text_of = _crude_text if dropped else plain_text
    # Each text made plain once: this is most of normalization's cost on a long entry.
    summary_text = clean_text(text_of(summary_html))
    text = clean_text(text_of(body))
    if len(summary_text) > len(text) or not body:
        body, text = summary_html, summary_text
        base = (e.get("summary_detail") or {}).get("base")
    updated = _struct_to_dt(e.get("updated_parsed"))
    published = _struct_to_dt(e.get("published_parsed")) or updated
    raw_date = e.get("published") or e.get("updated") or ""
    authors = tuple(a for a in (clean_text(a.get("name") or "").strip()
                                for a in e.get("authors") or []) if a)
    if not authors and e.get("author"):
        authors = tuple(a for a in (clean_text(str(e["author"])).strip(),) if a)
    categories = tuple(dict.fromkeys(
        t for t in (clean_text(t.get("term") or "").strip() for t in e.get("tags") or []) if t))
    enclosures = tuple(
        Enclosure(clean_text(str(en.get("href"))), clean_text(en["type"]) if en.get("type") else None,
                  int(en["length"]) if str(en.get("length", "")).isdigit() else None)
        for en in e.get("enclosures") or [] if en.get("href"))
    language = None
    for c in contents:
        language = c.get("language") or language
    language = language or feed_language
    content_hash = hashlib.sha1(f"{title}\x00{text}".encode()).hexdigest()
    content_html = html.escape(text, quote=False) if dropped else sanitize_html(body, base)
    return Entry(
        # The raw link: an entry's identity stays what it was before links were filtered.
        key=entry_key(e.get("id"), raw_link, title, raw_date),
        title=title or text[:80] or "(untitled)",
        url=link,
        canonical_url=canonical_url(link),
        summary=text,
        content_html=content_html,
        published=published or now,
        date_is_fetch_time=published is None,
        updated=updated,
        authors=authors,
        categories=categories,
        enclosures=enclosures,
        language=language,
        content_hash=content_hash,
        markup_dropped=dropped,
    )
