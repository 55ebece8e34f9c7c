"""The fast path and feedparser store the same thing.

Every document is read by both readers; wherever the fast path accepts one, the
``ParsedFeed`` (feed fields and every normalized ``Entry``) must be equal to feedparser's.
Wherever it declines, ``parse_feed`` must still read the document through feedparser.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedparser.datetimes import _parse_date
from feedparser.urls import resolve_relative_uris
from lxml import etree

from aggregator.parse.fast import _Base, _emulate_resolver, fast_parse, parse_date
from aggregator.parse.feeds import FastPathDeclined, parse_feed

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
URL = "https://feeds.example.org/world/rss.xml"
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "aggregator" / "demo" / "feeds"
SHARED = REPO.parent / "shared" / "data" / "feeds"
MINIFLUX = SHARED / "miniflux-testdata"
FEEDPARSER = SHARED / "feedparser-tests" / "tests"


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.xml")) if folder.is_dir() else []


def _ids(paths: list[Path], root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in paths]


DEMO_FILES = _files(DEMO)
MINIFLUX_FILES = _files(MINIFLUX)
FEEDPARSER_FILES = _files(FEEDPARSER)
_NO_SHARED = "shared corpus not present at " + str(SHARED)


def _check(path: Path, url: str | None = URL) -> bool:
    """Both readers agree (or the fast path declines); True when the fast path read it."""
    body = path.read_bytes()
    expected = parse_feed(body, NOW, url=url, reader="feedparser")
    auto = parse_feed(body, NOW, url=url)
    if fast_parse(body, url) is None:
        assert auto == expected
        with pytest.raises(FastPathDeclined):
            parse_feed(body, NOW, url=url, reader="fast")
        return False
    got = parse_feed(body, NOW, url=url, reader="fast")
    assert (got.title, got.link, got.language, got.ttl, got.malformed, got.error) == (
        expected.title, expected.link, expected.language, expected.ttl, expected.malformed,
        expected.error)
    assert len(got.entries) == len(expected.entries)
    for mine, theirs in zip(got.entries, expected.entries, strict=True):
        assert mine == theirs
    assert auto == got
    return True


def test_demo_fixtures_exist() -> None:
    assert len(DEMO_FILES) >= 6


@pytest.mark.parametrize("path", DEMO_FILES, ids=_ids(DEMO_FILES, DEMO))
@pytest.mark.parametrize("url", [URL, None])
def test_demo_feed_parity(path: Path, url: str | None) -> None:
    # The project's own feeds are plain RSS and Atom: the fast path must read all of them.
    assert _check(path, url), f"fast path declined {path.name}"


@pytest.mark.skipif(not MINIFLUX_FILES, reason=_NO_SHARED)
@pytest.mark.parametrize("path", MINIFLUX_FILES, ids=_ids(MINIFLUX_FILES, MINIFLUX) or None)
def test_miniflux_capture_parity(path: Path) -> None:
    _check(path)


@pytest.mark.skipif(not FEEDPARSER_FILES, reason=_NO_SHARED)
@pytest.mark.parametrize("path", FEEDPARSER_FILES, ids=_ids(FEEDPARSER_FILES, FEEDPARSER) or None)
def test_feedparser_suite_parity(path: Path) -> None:
    _check(path)


@pytest.mark.skipif(not MINIFLUX_FILES, reason=_NO_SHARED)
def test_fast_path_reads_the_large_real_captures() -> None:
    for name in ("parser__large_rss.xml", "parser__large_atom.xml", "parser__rdf_UTF8.xml"):
        assert fast_parse((MINIFLUX / name).read_bytes(), URL) is not None, name


def _html_values() -> list[str]:
    """Markup from every description/content/summary/title in the corpora."""
    values = []
    for path in DEMO_FILES + MINIFLUX_FILES + FEEDPARSER_FILES:
        try:
            root = etree.fromstring(path.read_bytes())
        except (etree.XMLSyntaxError, ValueError):
            continue
        for el in root.iter():
            if isinstance(el.tag, str) and el.tag.rsplit("}", 1)[-1] in (
                    "description", "encoded", "content", "summary", "title") and el.text \
                    and ("<" in el.text or "&" in el.text):
                values.append(el.text)
    return values


@pytest.mark.skipif(not FEEDPARSER_FILES, reason=_NO_SHARED)
@pytest.mark.parametrize("base", ["https://feeds.example.org/world/", ""])
def test_html_resolution_matches_feedparser(base: str) -> None:
    # The stand-in for feedparser's RelativeURIResolver either gives its exact output or
    # declines (and the real one runs).
    checked = 0
    for value in _html_values():
        for xhtml in (False, True):
            mine = _emulate_resolver(value, _Base(base), xhtml)
            if mine is not None:
                ctype = "application/xhtml+xml" if xhtml else "text/html"
                assert mine == resolve_relative_uris(value, base, "utf-8", ctype), value
                checked += 1
    assert checked > 1000


@pytest.mark.parametrize("markup", [
    '<p>Hi <a href="/x" title="T">there</a><img src="i.png" alt="A"/></p>',
    '<P CLASS="a" id=b>AT&T &copy 2026 &amp; &nbsp;&foo; &#X41; &#150; x < y</P>',
    '<br/><div/><hr/> <!-- note --> <a href="javascript:alert(1)">j</a>',
    "<a href='https://other.example/a?b=1&c=2' REL='NoFollow'>q</a>&#39;&#34;",
    '<input disabled type="CHECKBOX" value="&#38x">',
])
def test_html_resolution_examples(markup: str) -> None:
    base = "https://feeds.example.org/world/"
    for xhtml in (False, True):
        ctype = "application/xhtml+xml" if xhtml else "text/html"
        mine = _emulate_resolver(markup, _Base(base), xhtml)
        assert mine is not None
        assert mine == resolve_relative_uris(markup, base, "utf-8", ctype)


@pytest.mark.parametrize("value", [
    "Wed, 25 Nov 2026 15:55:00 +0000", "Tue, 24 Nov 2026 09:30:00 +0300",
    "24 Nov 2026 09:30:00 -0530", "Sun, 01 Mar 2026 00:00:00 GMT", "1 Jan 2027 23:59:59 Z",
    "2026-11-21T17:25:00Z", "2026-11-21T17:25:00.123+02:00", "2026-02-29T10:00:00Z",
    "Wed, 31 Nov 2026 15:55:00 +0000", "2026-11-21T17:25:00-07:30", "Tue, 24 Nov 2026 09:30 EST",
    "2026-11-21", "not a date",
])
def test_dates_match_feedparser(value: str) -> None:
    assert parse_date(value) == _parse_date(value)


def test_dates_match_feedparser_over_a_range() -> None:
    start = time.mktime((2026, 1, 1, 0, 0, 0, 0, 0, 0))
    for i in range(0, 400 * 86400, 86400 * 7 + 3671):
        t = time.gmtime(start + i)
        rfc = time.strftime("%a, %d %b %Y %H:%M:%S +0130", t)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S-04:00", t)
        assert parse_date(rfc) == _parse_date(rfc)
        assert parse_date(iso) == _parse_date(iso)


def test_declines_what_it_cannot_be_sure_of() -> None:
    broken = b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>x</title></channel>'
    doctype = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY n "v">]><rss version="2.0">'
               b"<channel><item><title>&n;</title></item></channel></rss>")
    html = b"<html><body>Service unavailable</body></html>"
    for body in (broken, doctype, html):
        assert fast_parse(body, URL) is None
        parse_feed(body, NOW, url=URL)  # feedparser still reads it
