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

from aggregator.parse.fast import fast_parse, parse_date
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


_ENCODED = ('<?xml version="1.0" encoding="{enc}"?><rss version="2.0"><channel><title>Caf\u00e9 '
            'Tehr\u00e2n</title><item><guid>1</guid><title>Na\u00efve \u2013 {word}</title>'
            '<description>r\u00e9sum\u00e9</description></item></channel></rss>')


@pytest.mark.parametrize(("declared", "written", "content_type"), [
    ("utf-8", "utf-8", None),
    ("UTF8", "utf-8", "application/rss+xml"),
    ("utf-8", "utf-8", "application/xml; charset=utf-8"),
    ("utf-8", "windows-1252", None),  # declared wrongly: feedparser falls back, so must we
    ("utf-8", "utf-8", "text/xml"),  # RFC 3023: text/xml without charset is us-ascii
    ("utf-8", "iso-8859-1", "application/rss+xml; charset=iso-8859-1"),  # HTTP wins
    ("iso-8859-1", "iso-8859-1", None),
    ("ISO-8859-1", "iso-8859-1", "application/rss+xml; charset=latin1"),
    ("iso-8859-1", "utf-8", "text/html; charset=utf-8"),  # HTTP wins
    ("iso-8859-1", "windows-1252", None),  # C1 bytes: Windows-1252 characters
    ("us-ascii", "utf-8", None),
])
def test_encodings_read_as_feedparser_reads_them(declared: str, written: str,
                                                 content_type: str | None) -> None:
    body = _ENCODED.format(enc=declared, word="x").encode(written, "xmlcharrefreplace")
    headers = {"content-type": content_type} if content_type else None
    expected = parse_feed(body, NOW, url=URL, headers=headers, reader="feedparser")
    assert parse_feed(body, NOW, url=URL, headers=headers) == expected
    assert expected.entries and expected.title


# -- exceptions to parity with feedparser itself ----------------------------------------
# Our two readers always agree with each other (every test above). With feedparser itself
# they agree except where a better-kept reader is right and feedparser wrong, or where
# hostile input must not pass; each exception, with its reason:
PARITY_EXCEPTIONS = {
    "UTF-8 under a single-byte label": "bytes that are valid UTF-8 (beyond ASCII) under a "
    "windows-1252 / ISO-8859-1 / ASCII prolog or charset are read as UTF-8, as miniflux reads "
    "its encoding__windows-1252-incorrect-prolog.xml ('Euro €'; feedparser: 'Euro â‚¬'). "
    "Applied before both readers (parse.feeds.utf8_despite_label).",
    "control characters": "C0 (but tab and newline), DEL and C1, and whole terminal escape "
    "sequences, are stripped from every text field: in a terminal they clear the screen or "
    "plant disguised links. feedparser keeps them.",
    "item links": "only http(s) links are kept (javascript:, data:, file: become no link), "
    "and one left relative is resolved against the document's URL. feedparser keeps any.",
    "markup past the bounds": "an entry whose HTML nests deeper than 512, or holds more than "
    "20,000 elements or 2 MiB, keeps its text and loses its markup (normalize.markup_excess), "
    "and the feed says why: an HTML parser is quadratic in nesting depth.",
}

_EURO = ('<?xml version="1.0" encoding="{label}"?>\n<rss version="2.0"><channel>'
         "<title>Euro €</title><item><title>Price in €</title><guid>1</guid>"
         "<description>Ten € only</description></item></channel></rss>")


@pytest.mark.parametrize("label", ["windows-1252", "ISO-8859-1", "us-ascii"])
@pytest.mark.parametrize("reader", ["fast", "feedparser", "auto"])
def test_utf8_under_a_single_byte_label_is_read_as_utf8(label: str, reader: str) -> None:
    body = _EURO.format(label=label).encode("utf-8")
    parsed = parse_feed(body, NOW, url=URL, reader=reader)  # type: ignore[arg-type]
    assert parsed.title == "Euro €"
    assert [(e.title, e.summary) for e in parsed.entries] == [("Price in €", "Ten € only")]


def test_the_utf8_exception_is_one_feedparser_does_not_make() -> None:
    import feedparser

    assert "UTF-8 under a single-byte label" in PARITY_EXCEPTIONS
    body = _EURO.format(label="windows-1252").encode("utf-8")
    assert feedparser.parse(body).feed.title == "Euro â‚¬"


@pytest.mark.parametrize(("label", "content_type"), [
    ("windows-1252", None), ("iso-8859-1", "application/rss+xml; charset=windows-1252")])
def test_a_real_single_byte_document_is_still_read_by_its_label(
        label: str, content_type: str | None) -> None:
    body = _EURO.format(label=label).encode("cp1252")  # € is byte 0x80: not UTF-8
    headers = {"content-type": content_type} if content_type else None
    parsed = parse_feed(body, NOW, url=URL, headers=headers)
    assert parsed.title == "Euro €"


def test_an_http_charset_naming_utf8_differently_is_left_alone() -> None:
    # A UTF-16 or KOI8-R label is not a single-byte Latin one: no guessing there.
    body = _EURO.format(label="koi8-r").encode("utf-8")
    from aggregator.parse.feeds import utf8_despite_label

    assert utf8_despite_label(body, None) == (body, None)
    labelled = utf8_despite_label(body.replace(b"koi8-r", b"windows-1252"),
                                  "text/xml; charset=koi8-r")
    assert labelled[1] == "text/xml; charset=koi8-r"


@pytest.mark.skipif(not (MINIFLUX / "encoding__windows-1252-incorrect-prolog.xml").is_file(),
                    reason=_NO_SHARED)
def test_miniflux_incorrect_prolog_reads_as_miniflux_reads_it() -> None:
    body = (MINIFLUX / "encoding__windows-1252-incorrect-prolog.xml").read_bytes()
    for reader in ("fast", "feedparser"):
        assert parse_feed(body, NOW, url=URL, reader=reader).title == "Euro €"  # type: ignore[arg-type]
