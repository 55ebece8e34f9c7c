"""Fast path: well-formed RSS 2.0, Atom 1.0 and RSS 1.0 (RDF) read with lxml.

feedparser walks every document through a pure-Python SAX handler and re-parses every
HTML field with a pure-Python SGML parser; that is most of its cost. Here lxml builds the
tree and a small reader walks it, producing the same feedparser-shaped entry mappings so
that the one normalization step (``normalize_entry``) consumes both.

The contract is parity, not a second opinion: every rule below mirrors what feedparser's
strict (XML) parser does with the same document, quirks included, because the stored
``Entry`` must not depend on which path read the feed. Anything this reader is not sure
to read exactly as feedparser would (an element it does not know in a place that
matters, a DOCTYPE, an encoding feedparser had to guess, markup in a text element, ...)
makes it return None, and the caller uses feedparser. When in doubt, decline.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.encodings import RE_XML_PI_ENCODING, convert_to_utf8, parse_content_type
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri
from lxml import etree

__all__ = ["FastResult", "fast_parse"]

# feedparser flags these but reads the document all the same.
_BENIGN = ("CharacterEncodingOverride", "NonXMLContentType")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          remove_comments=True, remove_pis=True, huge_tree=False)

_ATOM = "http://www.w3.org/2005/Atom"
_RSS10 = "http://purl.org/rss/1.0/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XML_NS = "http://www.w3.org/XML/1998/namespace"
_XHTML = "http://www.w3.org/1999/xhtml"

# Namespace URI (lowercased) -> feedparser's canonical prefix ('' for the feed formats).
_MATCH: dict[str, str] = {k.lower(): v for k, v in _FeedParserMixin.namespaces.items()}
_CANONICAL = set(_MATCH.values()) - {""}
# Namespaces whose declaration alone changes feedparser's idea of the version.
_VERSION_NS = {"http://my.netscape.com/rdf/simple/0.9/", _RSS10, _ATOM.lower()}

# Every element name feedparser has a handler for; anything else is stored verbatim under
# its own name and cannot touch what we read (bar the names in _RESERVED).
_HANDLED = ({m[7:].lower() for m in dir(StrictFeedParser) if m.startswith("_start_")}
            | {m[5:].lower() for m in dir(StrictFeedParser) if m.startswith("_end_")})
# Keys we read, and FeedParserDict aliases of them: an unknown element of that name would
# overwrite them in feedparser.
_RESERVED = {"title", "link", "links", "id", "guid", "published", "updated", "summary",
             "content", "tags", "authors", "author", "author_detail", "enclosures",
             "published_parsed", "updated_parsed", "date", "date_parsed", "modified_parsed",
             "issued_parsed", "guidislink", "description", "category", "href"}

_TITLE = {"title", "dc_title"}
_PUBLISHED = {"pubdate", "published", "issued", "dcterms_issued"}
_UPDATED = {"updated", "modified", "lastbuilddate", "dc_date", "dcterms_modified"}
_DESCRIPTION = {"description", "dc_description", "media_description"}
_SUMMARY = {"summary", "itunes_summary"}
_AUTHOR = {"author", "managingeditor", "dc_creator", "dc_author", "itunes_author"}
_CATEGORY = {"category", "keywords", "dc_subject", "media_category"}
_PERSON_PARTS = {"name", "email", "uri", "url", "homepage"}
# Handled elements that only ever write keys we do not read (when they have no children).
_HARMLESS = {
    "rights", "copyright", "dc_rights", "subtitle", "tagline", "itunes_subtitle", "info",
    "feedburner_browserfriendly", "generator", "created", "dcterms_created", "expirationdate",
    "language", "dc_language", "webmaster", "dc_publisher", "cloud", "width", "height", "url",
    "homepage", "uri", "name", "email", "media_thumbnail", "media_credit", "media_rating",
    "media_restriction", "media_license", "media_player", "itunes_image", "itunes_link",
    "itunes_explicit", "itunes_block", "itunes_name", "itunes_email", "georss_point",
    "georss_line", "georss_polygon", "georss_box", "dcterms_valid", "newlocation", "cc_license",
    "creativecommons_license",
}
_HTML_TYPES = {"application/xhtml+xml", "text/html"}
# Entry-level dispatch: one dict lookup per element instead of a chain of set tests.
(K_UNKNOWN, K_TITLE, K_MEDIA_TITLE, K_LINK, K_GUID, K_PUBLISHED, K_UPDATED, K_DESCRIPTION,
 K_SUMMARY, K_CONTENT_ENCODED, K_CONTENT, K_CATEGORY, K_ITUNES_CATEGORY, K_KEYWORDS, K_AUTHOR,
 K_CONTRIBUTOR, K_ENCLOSURE, K_SOURCE, K_CONTAINER, K_HARMLESS, K_DECLINE) = range(21)
_KINDS: dict[str, int] = {
    **dict.fromkeys(_TITLE, K_TITLE), "media_title": K_MEDIA_TITLE, "link": K_LINK,
    "guid": K_GUID, "id": K_GUID, **dict.fromkeys(_PUBLISHED, K_PUBLISHED),
    **dict.fromkeys(_UPDATED, K_UPDATED), **dict.fromkeys(_DESCRIPTION, K_DESCRIPTION),
    **dict.fromkeys(_SUMMARY, K_SUMMARY), "content_encoded": K_CONTENT_ENCODED,
    "fullitem": K_CONTENT_ENCODED, "content": K_CONTENT, **dict.fromkeys(_CATEGORY, K_CATEGORY),
    "itunes_category": K_ITUNES_CATEGORY, "itunes_keywords": K_KEYWORDS,
    "media_keywords": K_KEYWORDS, "tags": K_KEYWORDS, **dict.fromkeys(_AUTHOR, K_AUTHOR),
    "contributor": K_CONTRIBUTOR, "enclosure": K_ENCLOSURE, "source": K_SOURCE,
    "media_group": K_CONTAINER, "media_content": K_CONTAINER,
    **dict.fromkeys(_HARMLESS, K_HARMLESS),
}
_DATE_KEYS = {K_PUBLISHED: ("published", "published_parsed"),
              K_UPDATED: ("updated", "updated_parsed")}
_ITUNES = "http://www.itunes.com/"
_MRSS_SCHEME = "http://search.yahoo.com/mrss/category_schema"
_EMAIL = re.compile(r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|"
                    r"(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?")
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_C1 = re.compile("[\x80-\x9f]")
_FIRST_TAG = re.compile(rb"<[^?!][^>]*>")
_NS_DECL = re.compile(rb"""xmlns(?::([^\s=>"']+))?\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_looks_like_html = _FeedParserMixin.looks_like_html


class _Decline(Exception):
    """The document is not one this reader is sure to read as feedparser does."""


@dataclass
class FastResult:
    """What parse_feed needs from a document: feed-level fields and raw entries."""

    version: str
    title: str | None = None
    link: str | None = None
    language: str | None = None
    # Raw values as feedparser keeps them (a string, or a dict when the element had
    # attributes); parse_feed interprets them.
    ttl: Any = None
    update_period: Any = None
    update_frequency: Any = None
    entries: list[dict[str, Any]] = field(default_factory=list)


# --- text values --------------------------------------------------------------------------

def _fix(output: str) -> str:
    """feedparser's last steps on every text value: undo UTF-8 read as Latin-1 (it always
    tries, since it re-encodes every document to UTF-8 first), then map C1 controls to the
    Windows-1252 characters they usually stand for."""
    if output.isascii():
        return output
    try:  # noqa: SIM105 (contextlib.suppress costs a context manager per non-ASCII value)
        output = output.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    if _C1.search(output):
        output = output.translate(_cp1252)
    return output


# An absolute http(s) URL that urljoin returns unchanged whatever the base: no empty query or
# fragment, no ';' (params), nothing urlsplit would strip or reject.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[^\s;?#]*)?(?:\?[^\s#]+)?"
                        r"(?:#\S+)?\Z")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?!//)")


class _Base:
    """URL resolution against one base, with the common cases answered without urljoin."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        m = _SCHEME.match(uri)
        self.scheme = m.group(1).lower() if m else (uri.split("://", 1)[0].lower()
                                                   if "://" in uri else "")

    def join(self, value: str) -> str:
        """feedparser's resolve_uri (elements such as link and id)."""
        if not self.uri or _PLAIN_URL.match(value):
            return value if self.uri or not value.startswith(("http:///", "https:///")) \
                else _urljoin("", value)
        m = _SCHEME.match(value)
        if m and m.group(1).lower() != self.scheme and "\t" not in value \
                and "\n" not in value and "\r" not in value:
            return value
        return _urljoin(self.uri, value)



# --- dates --------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_RFC822 = re.compile(r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
                     r"(\d\d):(\d\d):(\d\d) (?:([+-])(\d\d)(\d\d)|GMT|UT|Z)\Z")
_W3DTF = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|([+-])(\d\d):(\d\d))\Z")


def parse_date(value: str) -> time.struct_time | None:
    """feedparser's date parsing; the two shapes nearly every feed uses are read directly
    (and tested against feedparser), the rest go to feedparser's own parser."""
    m = _RFC822.match(value)
    if m:
        day, mon, year, hh, mm, ss, sign, tzh, tzm = m.groups()
        fields = (int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss))
        offset = (int(tzh) * 3600 + int(tzm) * 60) * (-1 if sign == "-" else 1) if sign else 0
    else:
        m = _W3DTF.match(value)
        if not m:
            return _parse_date(value)
        year, mon, day, hh, mm, ss, sign, tzh, tzm = m.groups()
        fields = (int(year), int(mon), int(day), int(hh), int(mm), int(ss))
        offset = (int(tzh) * 3600 + int(tzm) * 60) * (-1 if sign == "-" else 1) if sign else 0
    try:
        dt = datetime(*fields)
    except ValueError:
        return _parse_date(value)
    if not 1900 < fields[0] < 9000:
        return _parse_date(value)
    if offset:
        dt -= timedelta(seconds=offset)
    return dt.utctimetuple()


# --- the document ---------------------------------------------------------------------------

def _map_type(value: str) -> str:
    value = value.lower()
    if value in ("text", "plain"):
        return "text/plain"
    if value == "html":
        return "text/html"
    if value == "xhtml":
        return "application/xhtml+xml"
    return value


@functools.lru_cache(maxsize=4096)
def _settled_base(base: str) -> str:
    """feedparser re-joins its base with itself at every element: settle that once."""
    for _ in range(3):
        base = make_safe_absolute_uri(base, base) or base
    return base


def _where(data: bytes, needle: bytes, after: int) -> tuple[bool, bool]:
    """Whether ``needle`` occurs in ``data`` at all, and at or past ``after``."""
    at = data.find(needle)
    return at != -1, at >= after or (at != -1 and data.find(needle, after) != -1)


def _declarations(data: bytes, starts: list[int]) -> list[tuple[bytes, ...]]:
    """``_NS_DECL.findall(data)``, given every offset a match could start from."""
    found = []
    end = 0
    for start in starts:
        if start >= end:
            m = _NS_DECL.match(data, start)
            if m:
                found.append(m.groups(b""))
                end = m.end()
    return found


class _Doc:
    """Per-document state: names, bases, languages, and feedparser's cross-entry flags."""

    def __init__(self, data: bytes, version: str, base: str, native: Any = None) -> None:
        self.version = version
        self.atom = version.startswith("atom")
        self.names: dict[str, str] = {}
        self.kinds: dict[str, int] = {}
        # Most feeds declare xml:lang (or xml:base) on the root only: then no element below
        # it needs looking at (``inside_root`` switches to the *_below_root flags after the
        # root is read). A '>' inside the root's attributes only makes these more cautious.
        # One scan each where possible: a 50 KB document costs ~20 us a scan.
        first = _FIRST_TAG.search(data)
        after_root = first.end() if first else 0
        if native is not None:
            (self.has_base, self.base_below_root, self.has_lang, self.lang_below_root,
             starts) = native.scan(data, after_root)
            declarations = _declarations(data, starts)
        else:
            self.has_base, self.base_below_root = _where(data, b"base=", after_root)
            self.has_lang, self.lang_below_root = _where(data, b"lang=", after_root)
            declarations = _NS_DECL.findall(data)
        self.title_depth = -1
        self.has_content = 0
        base = _settled_base(base)
        self.base = _Base(base)
        if self.has_base and not base:
            raise _Decline("xml:base without a document URL")  # feedparser leaks it sideways
        self.namespacemap: dict[str | None, str] = {}
        self.in_use: dict[str, str] = {}
        self.declared: set[str] = set()
        for prefix_b, dq, sq in declarations:
            prefix = prefix_b.decode("utf-8", "replace") or None
            uri = (dq or sq).decode("utf-8", "replace")
            if not uri:
                continue
            lower = uri.lower()
            self.declared.add(lower)
            if "backend.userland.com/rss" in lower:
                uri = lower = "http://backend.userland.com/rss"
            if prefix is None:
                # Default namespaces never reach feedparser's prefix lookups.
                continue
            if lower in _MATCH:
                canon = _MATCH[lower]
                if (prefix in self.namespacemap and self.namespacemap[prefix] != canon) or (
                        prefix and prefix in self.in_use and self.in_use[prefix] != uri):
                    raise _Decline("prefix rebound")
                if prefix and prefix != canon and (prefix in _CANONICAL or prefix.lower() in _CANONICAL):
                    raise _Decline("prefix shadows a known namespace")
                self.namespacemap[prefix] = canon
                self.in_use[canon] = uri
            else:
                key = prefix or ""
                if key in _CANONICAL or (key in self.in_use and self.in_use[key] != uri) or (
                        key and key in self.namespacemap):
                    raise _Decline("unknown namespace under a known prefix")
                if key and uri in self.in_use.values() and self.in_use.get(key) != uri:
                    raise _Decline("one namespace, two prefixes")
                self.in_use[key] = uri

    def inside_root(self) -> None:
        self.has_base = self.base_below_root
        self.has_lang = self.lang_below_root

    def name(self, tag: str) -> str:
        """feedparser's name for an element (e.g. 'dc_creator', 'title')."""
        cached = self.names.get(tag)
        if cached is not None:
            return cached
        if tag[0] == "{":
            ns, local = tag[1:].split("}", 1)
        else:
            ns, local = "", tag
        lower = ns.lower()
        if "backend.userland.com/rss" in lower:
            lower = "http://backend.userland.com/rss"
        local = local.lower()
        canon = _MATCH.get(lower)
        if canon is None:
            # expat gives no qname: feedparser looks up the first prefix declared for it.
            canon = next((p for p, uri in self.in_use.items() if p and uri == ns), "")
            name = local if not canon else f"{self.namespacemap.get(canon, canon)}_{local}"
        elif canon:
            name = f"{self.namespacemap.get(canon, canon)}_{local}"
        else:
            name = local
        self.names[tag] = name
        return name

    def kind(self, tag: str) -> int:
        name = self.name(tag)
        kind = _KINDS.get(name)
        if kind is None:
            kind = K_DECLINE if name in _HANDLED or name in _RESERVED else K_UNKNOWN
        self.kinds[tag] = kind
        return kind

    def child_base(self, el: Any, base: _Base) -> _Base:
        if not self.has_base:
            return base
        value = el.get(f"{{{_XML_NS}}}base")
        if value is None:
            value = el.get("base")
            if value is None:
                for k, v in el.attrib.items():
                    if k.endswith("}base"):
                        value = v
        if value is None:
            return base
        joined = make_safe_absolute_uri(base.uri, value) or base.uri
        return _Base(joined)

    def child_lang(self, el: Any, lang: str | None) -> str | None:
        if not self.has_lang:
            return lang
        value = el.get(f"{{{_XML_NS}}}lang")
        if value is None:
            value = el.get("lang")
            if value is None:
                for k, v in el.attrib.items():
                    if k.endswith("}lang"):
                        value = v
        if value is None:
            return lang
        return value or None


def _attrs(el: Any) -> dict[str, str]:
    """feedparser's attribute mapping: names lowercased, known namespaces prefixed, rel and
    type values lowercased."""
    d: dict[str, str] = {}
    if not len(el.attrib):
        return d
    qnames: list[tuple[str, str]] = []
    for k, v in el.attrib.items():
        if k[0] == "{":
            ns, local = k[1:].split("}", 1)
            prefix = _MATCH.get(ns.lower(), "")
            key = f"{prefix}:{local}" if prefix else local
            qnames.append((local, v))
        else:
            key = k
        key = key.lower()
        d[key] = v.lower() if key in ("rel", "type") and v else v
    for local, v in qnames:
        key = local.lower()
        d[key] = v.lower() if key in ("rel", "type") and v else v
    return d


def _take_href(a: dict[str, str]) -> None:
    """feedparser's url/uri/href: the first of them present becomes ``href``."""
    href = a.get("url", a.get("uri", a.get("href")))
    if href:
        a.pop("url", None)
        a.pop("uri", None)
        a["href"] = href


def _link_attrs(el: Any, base: _Base) -> dict[str, str]:
    """feedparser's _start_link: defaults, url/uri as href, href resolved."""
    a = _attrs(el)
    a.setdefault("rel", "alternate")
    a.setdefault("type", "application/atom+xml" if a["rel"] == "self" else "text/html")
    _take_href(a)
    if "href" in a:
        a["href"] = base.join(a["href"])
    return a


def _text(el: Any) -> str:
    """The character data of an element that must have no child elements."""
    if len(el):
        raise _Decline("markup inside a text element")
    return el.text or ""


def _content_value(doc: _Doc, el: Any, default_type: str) -> tuple[str, str]:
    """A push_content/pop pair: the final value and its final content type. HTML is kept
    as the feed has it; normalization resolves its relative URLs while sanitizing it."""
    if el.keys():
        a = _attrs(el)
        if "mode" in a:
            raise _Decline("content mode")
        ctype = _map_type(a.get("type", default_type))
        if not (ctype.startswith("text/") or ctype.endswith(("+xml", "/xml"))):
            raise _Decline("base64 content")
    else:
        ctype = default_type  # text/plain or text/html
    if len(el):
        if ctype != "application/xhtml+xml":
            raise _Decline("markup inside a text element")
        output = _xhtml(el, doc)
    elif ctype == "application/xhtml+xml":
        output = _xml_escape(el.text or "").strip()
    else:
        output = (el.text or "").strip()
    if not doc.atom and ctype == "text/plain" and ("<" in output or "&" in output) \
            and _looks_like_html(output):
        ctype = "text/html"
    return (output if output.isascii() else _fix(output)), ctype


def _plain(el: Any, base: _Base | None = None) -> str:
    """A push/pop of a plain element (expecting text): stripped, resolved, fixed."""
    if len(el):
        raise _Decline("markup inside a text element")
    output = el.text
    if not output:
        return ""
    output = output.strip()
    if base is not None and output:
        output = base.join(output)
    return output if output.isascii() else _fix(output)


def _own_text(el: Any) -> str:
    """Character data directly inside an element: its text and its children's tails."""
    if not len(el):
        return el.text or ""
    return (el.text or "") + "".join(child.tail or "" for child in el)


class _Entry:
    """One entry, built the way feedparser's handlers build it, in document order."""

    def __init__(self, doc: _Doc, lang: str | None) -> None:
        self.doc = doc
        self.lang = lang
        self.e: dict[str, Any] = {}
        self.depths: dict[str, int] = {}
        self.links: list[dict[str, str]] = []
        self.tags: list[dict[str, Any]] = []
        self.authors: list[dict[str, str]] = []
        self.content: list[dict[str, Any]] = []
        self.guidislink = False
        self.last_date: tuple[str, Any] = ("", None)

    # storage ---------------------------------------------------------------------------
    def store(self, key: str, value: Any, depth: int) -> None:
        old = self.depths.get(key)
        if old is None or depth <= old:
            self.depths[key] = depth
            self.e[key] = value

    def add_tag(self, term: Any, scheme: Any, label: Any) -> None:
        if not term and not scheme and not label:
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in self.tags:
            self.tags.append(value)

    def end_category(self, value: str) -> None:
        if not value:
            return
        if self.tags and not self.tags[-1]["term"]:
            self.tags[-1]["term"] = value
        else:
            self.add_tag(value, None, None)

    def sync_author(self) -> None:
        """feedparser's _sync_author_detail for an entry."""
        e = self.e
        detail = self.authors[-1] if self.authors else {}
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                e["author"] = f"{name} ({email})"
            elif name:
                e["author"] = name
            elif email:
                e["author"] = email
            return
        author = e.get("author")
        if not author:
            return
        email = None
        m = _EMAIL.search(author) if "@" in author else None  # the pattern needs one
        if m:
            email = m.group(0)
            author = author.replace(email, "").replace("()", "").replace("<>", "")
            author = author.replace("&lt;&gt;", "").strip()
            if author and author[0] == "(":
                author = author[1:]
            if author and author[-1] == ")":
                author = author[:-1]
            author = author.strip()
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    def add_content(self, el: Any, default: str, base: _Base, lang: str | None) -> None:
        self.doc.has_content = 1
        value, ctype = _content_value(self.doc, el, default)
        item: dict[str, Any] = {"type": ctype, "language": lang.replace("_", "-") if lang else lang,
                                "base": base.uri, "value": value}
        src = el.get("src")
        if src:
            item["src"] = src
        self.content.append(item)
        if ctype in _HTML_TYPES or ctype == "text/plain":
            self.e.setdefault("summary", value)

    # walking ---------------------------------------------------------------------------
    def child(self, el: Any, depth: int, base: _Base, lang: str | None) -> None:
        doc = self.doc
        tag = el.tag
        kind = doc.kinds.get(tag)
        if kind is None:
            if not isinstance(tag, str):
                return  # an entity reference left in place: cannot happen without a DTD
            kind = doc.kind(tag)
        if doc.has_base:
            base = doc.child_base(el, base)
        if doc.has_lang:
            lang = doc.child_lang(el, lang)
        e = self.e
        if kind in (K_TITLE, K_MEDIA_TITLE):
            saved = doc.title_depth
            value, _ = _content_value(doc, el, "text/plain")
            if not (-1 < doc.title_depth <= depth):
                self.store("title", value, depth)
            if value:
                doc.title_depth = depth
            if kind == K_MEDIA_TITLE:
                doc.title_depth = saved
        elif kind == K_LINK:
            if len(el):
                raise _Decline("link with children")
            a = _link_attrs(el, base)
            self.links.append(a)
            if "href" in a:
                if a.get("rel") == "alternate" and _map_type(a.get("type") or "") in _HTML_TYPES:
                    e["link"] = a["href"]
            else:
                output = _plain(el, base)
                output = output.replace("&amp;", "&")
                if "&" in output:
                    output = _LINK_ENTITY.sub(r"&\g<1>", output)
                e["link"] = output
                if output:
                    a["href"] = output
        elif kind == K_GUID:
            self.guidislink = (_attrs(el).get("ispermalink", "true") if el.keys() else "true") == "true"
            output = _plain(el, base if self.guidislink else None)
            self.store("id", output, depth)
            if self.guidislink:
                e.setdefault("link", output)
        elif kind in (K_PUBLISHED, K_UPDATED):
            key, parsed_key = _DATE_KEYS[kind]
            output = _plain(el)
            self.store(key, output, depth)
            if output and output == self.last_date[0]:
                parsed = self.last_date[1]  # Atom's updated is often its published
            else:
                parsed = parse_date(output) if output else None
                self.last_date = (output, parsed)
            e[parsed_key] = parsed
        elif kind in (K_DESCRIPTION, K_SUMMARY):
            if "summary" in e and not doc.has_content:
                self.add_content(el, "text/plain", base, lang)
            else:
                default = "text/html" if kind == K_DESCRIPTION else "text/plain"
                value, _ = _content_value(doc, el, default)
                self.store("summary", value, depth)
                # As feedparser: the detail follows the last summary read, whatever its depth.
                e["summary_detail"] = {"base": base.uri}
        elif kind == K_CONTENT_ENCODED:
            self.add_content(el, "text/html", base, lang)
        elif kind == K_CONTENT:
            self.add_content(el, "text/plain", base, lang)
        elif kind in (K_CATEGORY, K_ITUNES_CATEGORY):
            name = doc.names[tag]
            a = _attrs(el)
            if kind == K_ITUNES_CATEGORY:
                self.add_tag(a.get("text"), _ITUNES, None)
            else:
                if name == "media_category":
                    a.setdefault("scheme", _MRSS_SCHEME)
                self.add_tag(a.get("term"), a.get("scheme", a.get("domain")), a.get("label"))
            self.end_category(_plain(el))
        elif kind == K_KEYWORDS:
            name = doc.names[tag]
            if len(el.attrib):
                if name == "tags":
                    raise _Decline("tags with attributes")
                return  # feedparser pushes nothing, so its end handler finds nothing
            for term in _plain(el).split(","):
                term = term.strip()
                if name == "tags":
                    self.add_tag(term, None, None)
                elif term:
                    self.add_tag(term, _ITUNES if name == "itunes_keywords" else None, None)
        elif kind == K_AUTHOR:
            self.authors.append({})
            for part in el:
                part_name = doc.name(part.tag)
                if part_name not in _PERSON_PARTS:
                    raise _Decline("unexpected element in an author")
                value = _text(part).strip()
                part_base = doc.child_base(part, base)
                if part_name in ("name", "email"):
                    self.sync_author()
                    self.authors[-1][part_name] = value
                else:
                    href = _fix(part_base.join(value)) if value else value
                    self.sync_author()
                    self.authors[-1]["href"] = href
            self.store("author", _fix(_own_text(el).strip()), depth)
            self.sync_author()
        elif kind == K_CONTRIBUTOR:
            for part in el:
                if doc.name(part.tag) not in _PERSON_PARTS or len(part):
                    raise _Decline("unexpected element in a contributor")
        elif kind == K_ENCLOSURE:
            if len(el):
                raise _Decline("enclosure with children")
            a = _attrs(el)
            _take_href(a)
            a["rel"] = "enclosure"
            self.links.append(a)
        elif kind == K_SOURCE:
            if len(el):
                raise _Decline("source with children")
            doc.title_depth = -1
        elif kind == K_CONTAINER:
            for sub in el:
                self.child(sub, depth + 1, base, lang)
        elif kind == K_HARMLESS:
            if len(el):
                raise _Decline(f"{doc.names[tag]} with children")
        elif kind == K_DECLINE:
            raise _Decline(f"{doc.names[tag]} in an entry")
        else:
            for sub in el:  # unknown: feedparser walks into it
                self.child(sub, depth + 1, base, lang)

    def result(self) -> dict[str, Any]:
        e = self.e
        out: dict[str, Any] = {k: e[k] for k in ("title", "link", "id", "summary",
                                                 "summary_detail", "author",
                                                 "published", "published_parsed", "updated",
                                                 "updated_parsed") if k in e}
        # FeedParserDict answers 'updated' with 'published' when there is none.
        if "updated" not in e and "published" in e:
            out["updated"] = e["published"]
        if "updated_parsed" not in e and "published_parsed" in e:
            out["updated_parsed"] = e["published_parsed"]
        if self.content:
            out["content"] = self.content
        if self.tags:
            out["tags"] = self.tags
        if self.authors:
            out["authors"] = self.authors
        out["links"] = self.links
        out["enclosures"] = [{k: v for k, v in link.items() if k != "rel"}
                             for link in self.links if link.get("rel") == "enclosure"]
        return out


def _xml_escape(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _xhtml(el: Any, doc: _Doc) -> str:
    """Inline XHTML as feedparser re-serializes it, enclosing div removed (Atom 1.0)."""
    if not doc.atom or "http://www.w3.org/1999/xlink" in doc.declared:
        raise _Decline("inline markup outside Atom, or with xlink declarations")
    pieces: list[str] = []
    if el.text:
        pieces.append(_xml_escape(el.text))
    for child in el:
        _xhtml_piece(child, doc, pieces)
        if child.tail:
            pieces.append(_xml_escape(child.tail))
    while len(pieces) > 1 and not pieces[-1].strip():
        del pieces[-1]
    while len(pieces) > 1 and not pieces[0].strip():
        del pieces[0]
    if pieces and (pieces[0] == "<div>" or pieces[0].startswith("<div ")) and pieces[-1] == "</div>":
        depth = 0
        for piece in pieces[:-1]:
            if piece.startswith("</"):
                depth -= 1
                if depth == 0:
                    break
            elif piece.startswith("<") and not piece.endswith("/>"):
                depth += 1
        else:
            pieces = pieces[1:-1]
    return "".join(pieces).strip()


def _xhtml_piece(el: Any, doc: _Doc, pieces: list[str]) -> None:
    tag = el.tag
    if not isinstance(tag, str):
        raise _Decline("entity or other node in xhtml")
    ns = tag[1:].split("}", 1)[0] if tag[0] == "{" else ""
    if ns not in (_XHTML, _ATOM):
        raise _Decline("foreign element in xhtml")
    name = doc.name(tag)
    if name in _HANDLED:  # feedparser would run that element's end handler
        raise _Decline(f"{name} inside xhtml")
    local = name.split("_", 1)[1] if ns == _XHTML and "_" in name else name
    if local in ("math", "svg"):
        raise _Decline("math or svg")
    attrs = "".join(f' {k}="{_xml_escape(v).replace(chr(34), "&quot;")}"'
                    for k, v in _attrs(el).items())
    pieces.append(f"<{local}{attrs}>")
    if el.text:
        pieces.append(_xml_escape(el.text))
    for child in el:
        _xhtml_piece(child, doc, pieces)
        if child.tail:
            pieces.append(_xml_escape(child.tail))
    pieces.append(f"</{local}>")


# --- feed level -----------------------------------------------------------------------------

class _Feed:
    def __init__(self, doc: _Doc, result: FastResult, native: Any) -> None:
        self.doc = doc
        self.r = result
        self.has_summary = False
        self.guidislink = False
        self.link_set = False
        self.walker = native.Walker(doc) if native is not None else None

    def channel(self, channel: Any, depth: int, base: _Base, lang: str | None) -> None:
        if self.walker is not None:
            self.walker.channel(self, channel, depth, base, lang)  # the same loop, compiled
            return
        for el in channel:
            self.child(el, depth, base, lang)

    def entry(self, el: Any, depth: int, base: _Base, lang: str | None) -> None:
        if self.walker is not None:
            read = self.walker.entry(el, depth, base, lang)
            if read is not None:
                self.r.entries.append(read)
                return
        self.read_entry(el, depth, base, lang)

    def read_entry(self, el: Any, depth: int, base: _Base, lang: str | None) -> None:
        doc = self.doc
        if doc.has_base:
            base = doc.child_base(el, base)
        if doc.has_lang:
            lang = doc.child_lang(el, lang)
        entry = _Entry(doc, lang)
        doc.title_depth = -1
        keys = el.keys()
        if keys:
            if {k.lower() for k in keys} & {"href", "lastmod"}:
                raise _Decline("CDF item attributes")
            about = el.get(f"{{{_RDF}}}about")
            if about:
                entry.e["id"] = about
        for child in el:
            entry.child(child, depth + 1, base, lang)
        doc.has_content = 0
        self.r.entries.append(entry.result())

    def child(self, el: Any, depth: int, base: _Base, lang: str | None) -> None:
        doc = self.doc
        name = doc.name(el.tag)
        if name in ("item", "entry"):
            self.entry(el, depth, base, lang)
            return
        base = doc.child_base(el, base)
        lang = doc.child_lang(el, lang)
        r = self.r
        if name in _TITLE or name == "media_title":
            saved = doc.title_depth
            value, _ = _content_value(doc, el, "text/plain")
            if not (-1 < doc.title_depth <= depth):
                r.title = value
            if value:
                doc.title_depth = depth
            if name == "media_title":
                doc.title_depth = saved
        elif name == "link":
            if len(el):
                raise _Decline("link with children")
            a = _link_attrs(el, base)
            if "href" in a:
                if a["rel"] == "alternate" and _map_type(a.get("type") or "") in _HTML_TYPES:
                    r.link = a["href"]
                    self.link_set = True
            else:
                output = _plain(el, base)
                r.link = _LINK_ENTITY.sub(r"&\g<1>", output) if "&" in output else output
                self.link_set = True
        elif name in ("guid", "id"):
            self.guidislink = _attrs(el).get("ispermalink", "true") == "true"
            output = _plain(el, base if self.guidislink else None)
            if self.guidislink and not self.link_set:
                r.link = output
                self.link_set = True
        elif name in ("language", "dc_language"):
            r.language = _plain(el)
        elif name in ("ttl", "sy_updateperiod", "sy_updatefrequency"):
            # With attributes feedparser stores the attribute dict, not the text.
            hint: Any = _attrs(el) if len(el.attrib) else _plain(el)
            if name == "ttl":
                r.ttl = hint
            elif name == "sy_updateperiod":
                r.update_period = hint
            else:
                r.update_frequency = hint
        elif name in _DESCRIPTION or name in _SUMMARY or name in ("content", "content_encoded",
                                                                  "fullitem"):
            if len(el):
                raise _Decline("markup in a feed-level text element")
            if name in ("content", "content_encoded", "fullitem") or (
                    self.has_summary and not doc.has_content):
                doc.has_content = 1
                self.has_summary = True
            elif name in _SUMMARY:
                self.has_summary = True
        elif name in ("image", "textinput"):
            doc.title_depth = -1
            allowed = {"title", "link", "url", "width", "height", "description", "name"}
            for sub in el:
                sub_name = doc.name(sub.tag)
                if sub_name not in allowed or len(sub):
                    raise _Decline(f"{sub_name} in {name}")
                if sub_name == "title" and _text(sub).strip():
                    doc.title_depth = depth + 1
        elif name in _AUTHOR or name in ("contributor", "itunes_owner"):
            for sub in el:
                sub_name = doc.name(sub.tag)
                if sub_name not in _PERSON_PARTS and sub_name not in ("itunes_name", "itunes_email"):
                    raise _Decline("unexpected element in a person")
                if len(sub):
                    raise _Decline("nested person element")
        elif name == "itunes_category":
            for sub in el.iter():
                if sub is not el and doc.name(sub.tag) != "itunes_category":
                    raise _Decline("unexpected element in itunes:category")
        elif name in ("items", "skiphours", "skipdays"):
            for sub in el.iter():
                if sub is el:
                    continue
                sub_name = doc.name(sub.tag)
                if sub_name in _HANDLED or sub_name in _RESERVED:
                    raise _Decline(f"{sub_name} in {name}")
        elif name in ("channel", "feed", "rss") or (name in _RESERVED and name not in _HANDLED):
            raise _Decline(f"{name} at feed level")
        elif len(el):
            if name in _HANDLED:
                raise _Decline(f"{name} with children at feed level")
            for sub in el.iter():
                if sub is not el and doc.name(sub.tag) in (_HANDLED | _RESERVED):
                    raise _Decline(f"known element under {name}")
        elif name in _HANDLED and name not in _HARMLESS and name not in _CATEGORY and name not in (
                "enclosure", "source", "media_content", "media_group", "updated", "modified",
                "lastbuilddate", "dc_date", "dcterms_modified", "pubdate", "published", "issued",
                "dcterms_issued", "media_keywords", "itunes_keywords", "tags"):
            raise _Decline(f"{name} at feed level")


def _version(root: Any, data: bytes) -> str | None:
    tag = root.tag
    if tag == "rss":
        v = root.get("version", "")
        return {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}.get(
            v, "rss20" if v.startswith("2.") else "rss")
    if tag == f"{{{_ATOM}}}feed":
        return "atom10"
    if tag == f"{{{_RDF}}}RDF":
        return "rss10"
    return None


# Declared encodings lxml decodes exactly as Python's codecs do: UTF-8 (invalid bytes make
# lxml refuse the document, and feedparser reads it), and Latin-1 (every byte is the code
# point of the same number, in both).
_AS_IS = {b"utf-8": "utf-8", b"utf8": "utf-8", b"iso-8859-1": "iso-8859-1",
          b"latin-1": "iso-8859-1", b"latin1": "iso-8859-1"}


def _readable_as_is(body: bytes, content_type: str | None) -> bool:
    """True when feedparser's convert_to_utf8 would decode the document with the encoding
    its XML declaration names, and that is one lxml reads identically: no BOM, and no HTTP
    type, or an XML one whose charset (if any) agrees. Re-encoding is then a wasted pass."""
    m = RE_XML_PI_ENCODING.match(body)
    declared = _AS_IS.get(m.group(1).lower()) if m else None
    if declared is None:
        return False
    if not content_type:
        return True
    media, charset = parse_content_type(content_type)
    if charset:  # RFC 3023: the HTTP charset wins, so it must be the same encoding
        return _AS_IS.get(charset.lower().encode()) == declared
    return media == "application/xml" or (media.startswith("application/") and media.endswith("+xml"))


def fast_parse(body: bytes, url: str | None, *, content_type: str | None = None,
               compiled: bool = True) -> FastResult | None:
    """The document read the way feedparser would read it, or None when this reader is not
    sure to (the caller then uses feedparser). ``compiled=False`` reads every entry in
    Python even where the compiled reader is built (the tests and benchmarks compare the
    two); the result is the same."""
    if _readable_as_is(body, content_type):
        data = body  # what convert_to_utf8 would return, bar its re-encoding
    else:
        headers = {"content-location": url or ""}
        if content_type:
            headers["content-type"] = content_type
        info: dict[str, Any] = {}
        try:
            data = convert_to_utf8(headers, body, info)
        except Exception:
            return None
        if not info.get("encoding") or (info.get("bozo") and type(
                info.get("bozo_exception")).__name__ not in _BENIGN):
            return None
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None or root.getroottree().docinfo.doctype:
        return None
    version = _version(root, data)
    if version is None:
        return None
    try:
        return _read(root, data, version, url or "", _walk if compiled else None)
    except _Decline:
        return None


def _read(root: Any, data: bytes, version: str, url: str, native: Any) -> FastResult:
    doc = _Doc(data, version, url, native)
    declared = doc.declared
    if version == "atom10" and declared & (_VERSION_NS - {_ATOM.lower()}):
        raise _Decline("RSS namespace declared in Atom")
    if version == "rss10":
        # feedparser takes the version from the first of these namespaces it meets; the
        # Netscape one (RSS 0.90) only counts as the default namespace.
        netscape = re.search(rb"""xmlns\s*=\s*["']http://my\.netscape\.com/rdf/simple/0\.9/["']""", data)
        kinds = (_RSS10 in declared) + bool(netscape)
        if kinds != 1 or _ATOM.lower() in declared:
            raise _Decline("RDF that is not plain RSS 1.0 or 0.90")
        version = doc.version = "rss10" if _RSS10 in declared else "rss090"
    result = FastResult(version=version)
    feed = _Feed(doc, result, native)
    base = doc.child_base(root, doc.base)
    lang = doc.child_lang(root, None)
    doc.inside_root()
    if lang and version not in ("rss10", "rss090"):
        result.language = lang.replace("_", "-")
    if version == "atom10":
        feed.channel(root, 2, base, lang)
    elif version in ("rss10", "rss090"):
        for el in root:
            name = doc.name(el.tag)
            if name == "channel":
                child_base = doc.child_base(el, base)
                child_lang = doc.child_lang(el, lang)
                feed.channel(el, 3, child_base, child_lang)
            elif name == "item":
                feed.entry(el, 2, base, lang)
            elif name in ("image", "textinput"):
                feed.child(el, 2, base, lang)
            elif name in _HANDLED or len(el):
                raise _Decline(f"{name} in RDF")
    else:
        channels = [el for el in root]
        if len(channels) != 1 or doc.name(channels[0].tag) != "channel":
            raise _Decline("rss without exactly one channel")
        channel = channels[0]
        feed.channel(channel, 3, doc.child_base(channel, base), doc.child_lang(channel, lang))
    return result


def source_digest(source: Path) -> str:
    """What the build records of ``_walk.pyx`` (hatch_build.py computes the same)."""
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]


_WALK_SOURCE = Path(__file__).with_name("_walk.pyx")


def compiled_reader(source: Path = _WALK_SOURCE) -> Any:
    """The compiled reader of common entries (``_walk.pyx``), or None: when it was not
    built, or was built from another version of its source than the one beside it (an
    edit not yet rebuilt), whose rules may no longer be this module's."""
    try:
        module = importlib.import_module("aggregator.parse._walk")
    except ImportError:
        return None
    if source.exists() and source_digest(source) != module.SOURCE_DIGEST:
        warnings.warn(f"{source} changed since it was compiled: run `pip install -e .` to "
                      "rebuild it; entries are read in Python meanwhile", RuntimeWarning,
                      stacklevel=2)
        return None
    return module


# Last: the compiled reader imports the helpers above.
_walk: Any = compiled_reader()
