"""OPML 2.0, the subscription-list format every feed reader reads and writes.

Export: one ``<outline type="rss">`` per feed with ``text``/``title``, ``xmlUrl``,
``htmlUrl`` when known, and the feed's tags as ``category`` (comma-separated, the OPML 2.0
form of tags). Feeds sit in a folder named after their first tag, since most readers
organise by folder and ignore ``category``. Our feed name and interval ride along in
namespaced attributes other readers ignore, so an export imported again is the same list.

Import: nested outlines are folders; a folder, or a ``category`` entry, becomes a tag
when the taxonomy knows it, and is reported otherwise. Duplicates (by URL or by name,
against the feeds already followed and within the file) and invalid entries are skipped
and reported, never fatal.

Parsing uses the standard library. OPML files come from anywhere, so a file with a DTD
or entity declarations is refused outright: that is what XML bombs and external-entity
tricks need, and no real subscription list has one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlsplit

from aggregator.feedfile import name_from_url, slugify, valid_url
from aggregator.timeutil import format_duration, parse_duration
from aggregator.views import FeedConfig

NAMESPACE = "https://github.com/aggregator-project/aggregator/opml"
_NAME_ATTR = f"{{{NAMESPACE}}}name"
_INTERVAL_ATTR = f"{{{NAMESPACE}}}interval"


class OpmlError(ValueError):
    """The file is not an OPML document we are willing to read."""


# -- export --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFeed:
    name: str
    url: str
    tags: tuple[str, ...] = ()
    interval: timedelta | None = None
    title: str | None = None  # the feed's own title, once fetched
    html_url: str | None = None  # the site the feed belongs to, when known


def export_opml(feeds: Sequence[ExportFeed], now: datetime,
                title: str = "aggregator feeds") -> str:
    ET.register_namespace("aggregator", NAMESPACE)
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent = body
        if feed.tags:
            first = feed.tags[0]
            if first not in folders:
                folders[first] = ET.SubElement(body, "outline", text=first, title=first)
            parent = folders[first]
        label = feed.title or feed.name
        attrs = {"type": "rss", "text": label, "title": label, "xmlUrl": feed.url}
        if feed.html_url:
            attrs["htmlUrl"] = feed.html_url
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        attrs[_NAME_ATTR] = feed.name
        if feed.interval is not None:
            attrs[_INTERVAL_ATTR] = format_duration(feed.interval)
        ET.SubElement(parent, "outline", attrs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outline:
    """One feed outline as the file gives it."""

    url: str
    label: str  # text, else title, else the URL
    name: str | None = None  # our own name attribute, when the file came from us
    folders: tuple[str, ...] = ()  # enclosing folders, outermost first
    categories: tuple[str, ...] = ()  # from the category attribute, split
    interval: str | None = None  # ours, as written


@dataclass(frozen=True)
class Skipped:
    label: str  # what the user will recognise: the name, the label, or the URL
    reason: str


def read_opml(data: bytes) -> list[Outline | Skipped]:
    """The outlines of an OPML file in document order: feeds, and leaves that are not feeds."""
    _refuse_declarations(data)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise OpmlError(f"not well-formed XML: {e}") from None
    if root.tag != "opml":
        raise OpmlError(f"expected an <opml> document, found <{root.tag}>")
    body = root.find("body")
    if body is None:
        raise OpmlError("expected a <body> element, found none")
    found: list[Outline | Skipped] = []
    _walk(body, (), found)
    return found


def _refuse_declarations(data: bytes) -> None:
    """Reject any DTD or entity declaration before the real parse sees the file.

    expat reports them whatever the encoding, unlike a byte search, which a UTF-16 file
    would slip past; the byte search stays as a cheap first look.
    """
    import xml.parsers.expat

    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise OpmlError("refusing a file with a DTD or entity declarations (<!DOCTYPE, <!ENTITY)")

    def refuse(*_: object) -> None:
        raise OpmlError("refusing a file with a DTD or entity declarations (<!DOCTYPE, <!ENTITY)")

    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as e:
        raise OpmlError(f"not well-formed XML: {e}") from None


def _walk(element: ET.Element, folders: tuple[str, ...], found: list[Outline | Skipped]) -> None:
    for child in element.findall("outline"):
        label = (child.get("text") or child.get("title") or "").strip()
        url = (child.get("xmlUrl") or child.get("xmlurl") or "").strip()
        children = child.findall("outline")
        if url:
            categories = tuple(
                part.strip() for entry in (child.get("category") or "").split(",")
                for part in entry.split("/") if part.strip())
            found.append(Outline(url, label or url, child.get(_NAME_ATTR), folders, categories,
                                 child.get(_INTERVAL_ATTR)))
        elif children:
            _walk(child, (*folders, label) if label else folders, found)
        elif child.get("type") or child.get("htmlUrl") or child.get("url"):
            # A leaf that is something (a link, a podcast page) but not a feed. Empty
            # folders are silently nothing.
            found.append(Skipped(label or "(untitled outline)", "not a feed: it has no xmlUrl"))
        if url and children:
            _walk(child, folders, found)


# -- planning an import (pure) -------------------------------------------------------


@dataclass(frozen=True)
class ImportPlan:
    added: tuple[FeedConfig, ...]
    skipped: tuple[Skipped, ...]
    unknown_folders: tuple[str, ...]  # folders and categories that are not tags, kept as nothing


def plan_import(outlines: Sequence[Outline | Skipped], existing: Sequence[FeedConfig],
                known_tags: Collection[str]) -> ImportPlan:
    """Which outlines become feeds, under which names and tags, and which are skipped why."""
    by_url = {url_key(f.url): f.name for f in existing}
    by_name = {f.name: f.url for f in existing}
    added: list[FeedConfig] = []
    new_urls: dict[str, str] = {}
    new_names: set[str] = set()
    out_skipped: list[Skipped] = []
    unknown: list[str] = []
    for o in outlines:
        if isinstance(o, Skipped):
            out_skipped.append(o)
            continue
        if not valid_url(o.url):
            out_skipped.append(Skipped(o.label, f"invalid URL {o.url!r}: expected http(s)://..."))
            continue
        # Our own name attribute, else the label readers show, else the URL's site and path.
        name = (slugify(o.name or "") or (slugify(o.label) if o.label != o.url else "")
                or name_from_url(o.url))
        key = url_key(o.url)
        if key in by_url:
            out_skipped.append(Skipped(o.label, f"already followed as {by_url[key]!r}"))
        elif key in new_urls:
            out_skipped.append(Skipped(o.label, f"duplicate URL: same as {new_urls[key]!r} "
                                                "earlier in this file"))
        elif name in by_name:
            out_skipped.append(Skipped(o.label, f"duplicate name: {name!r} is already the feed "
                                                f"at {by_name[name]}"))
        elif name in new_names:
            out_skipped.append(Skipped(o.label, f"duplicate name: {name!r} is used earlier "
                                                "in this file"))
        else:
            tags: list[str] = []
            for group in (*o.folders, *o.categories):
                tag = _as_tag(group, known_tags)
                if tag is None:
                    if group not in unknown:
                        unknown.append(group)
                elif tag not in tags:
                    tags.append(tag)
            added.append(FeedConfig(name, o.url, tuple(tags), _interval(o.interval)))
            new_urls[key] = name
            new_names.add(name)
    return ImportPlan(tuple(added), tuple(out_skipped), tuple(unknown))


def _interval(text: str | None) -> timedelta | None:
    """Our interval attribute; one we cannot read leaves the default, it is no reason to skip."""
    try:
        return parse_duration(text) if text else None
    except ValueError:
        return None


def _as_tag(group: str, known: Collection[str]) -> str | None:
    """A folder like 'Middle East' is the tag 'middle-east' when the taxonomy has it."""
    for candidate in (group, group.lower(), slugify(group)):
        if candidate in known:
            return candidate
    return None


def url_key(url: str) -> str:
    """What makes two feed URLs the same feed: not the scheme, the host's case or a final '/'."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    try:
        port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    except ValueError:  # a port that is not a number: compare the URL as written
        return url.strip().lower()
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}{parts.path.rstrip('/')}{query}"
