"""The compiled entry reader (parse/_walk.pyx) reads exactly what the Python one reads.

The parity tests compare the fast path (compiled reader included) with feedparser; these
compare the compiled reader with the pure-Python reader it speeds up, document by
document, and its C helpers (dates, URLs, the document scan) with the Python code they
stand in for, so that a difference shows where it starts.

No exceptions here: the exceptions to parity with feedparser (listed in
test_parse_parity.PARITY_EXCEPTIONS) are made before the readers (a document's encoding
label) or after them (normalization), so the compiled and Python readers still read the
same bytes into the same entries.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lxml import etree

from aggregator.parse import fast

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "aggregator" / "demo" / "feeds"
SHARED = REPO.parent / "shared" / "data" / "feeds"
URL = "https://feeds.example.org/world/rss.xml"

if fast._walk is None:
    pytest.skip("the compiled entry reader is not built (no Cython or C compiler at install "
                "time); the pure-Python reader is in use", allow_module_level=True)
native = fast._walk


def _files() -> list[Path]:
    folders = [DEMO, REPO / "tests" / "data", SHARED / "miniflux-testdata",
               SHARED / "feedparser-tests" / "tests"]
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.rglob("*.xml"))]


FILES = _files()


def _read_in_python(body: bytes) -> fast.FastResult | None:
    return fast.fast_parse(body, URL, compiled=False)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(p.parents[1])) for p in FILES])
def test_compiled_reader_reads_what_the_python_reader_reads(path: Path) -> None:
    body = path.read_bytes()
    assert fast.fast_parse(body, URL) == _read_in_python(body)


@pytest.mark.parametrize("path", sorted(DEMO.glob("*.xml")), ids=lambda p: p.name)
def test_compiled_reader_reads_every_demo_entry_itself(path: Path) -> None:
    """It does not hand ordinary entries back to Python (where the speed would go)."""
    body = path.read_bytes()
    root = etree.fromstring(body, fast._PARSER)
    version = fast._version(root, body)
    assert version is not None
    doc = fast._Doc(body, version, URL, native)
    doc.inside_root()
    entries = root.findall("channel/item") or root.findall(f"{{{fast._ATOM}}}entry")
    assert entries
    walker = native.Walker(doc)
    read = [walker.entry(el, 3, doc.base, None) for el in entries]
    assert all(entry is not None for entry in read)
    assert [e["id"] for e in read] == [e["id"] for e in _read_in_python(body).entries]


def test_entries_it_does_not_cover_go_to_the_python_reader() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><id>urn:1</id><title>plain</title><updated>2026-11-20T10:00:00Z</updated></entry>
<entry><id>urn:2</id><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">in <b>bold</b></div></title>
<updated>2026-11-21T10:00:00Z</updated></entry>
</feed>"""
    result = fast.fast_parse(body, URL)
    assert result is not None
    assert [e["title"] for e in result.entries] == ["plain", "in <b>bold</b>"]
    assert result == _read_in_python(body)


DATES = [
    "Tue, 24 Nov 2026 18:20:00 +0200", "24 Nov 2026 18:20:00 GMT", "4 Nov 2026 00:00:00 UT",
    "Sun, 01 Mar 2026 00:30:00 +0100", "Thu, 01 Jan 1970 00:00:00 Z", "Mon, 31 Dec 2029 23:59:59 -1200",
    "Fri, 29 Feb 2028 12:00:00 +0000", "Fri, 29 Feb 2027 12:00:00 +0000", "Wed, 25 Nov 2026 15:55:00 EST",
    "Wed, 25 Nov 2026 15:55:00 +05:30", "Wed, 25 Nov 2026 15:55 +0000", "Wed, 25 Nov 1899 15:55:00 +0000",
    "Wed, 25 Nov 9000 15:55:00 +0000", "Wed, 25 Nov 2026 24:00:00 +0000", "Wed, 25 Nov 2026 23:59:60 +0000",
    "Wed,25 Nov 2026 15:55:00 +0000", "Xyz, 25 Nov 2026 15:55:00 +0000", "25 nov 2026 15:55:00 +0000",
    "2026-11-24T18:20:00Z", "2026-11-24T18:20:00.123456+02:00", "2026-11-24T18:20:00-08:00",
    "2026-01-01T00:30:00+01:00", "2026-11-24T18:20:00.Z", "2026-11-24T18:20:00", "2026-11-24 18:20:00Z",
    "2026-13-24T18:20:00Z", "2026-02-30T18:20:00Z", "2026-11-24T18:20:00z", "2026-11-24T18:20:00+0200",
    "٢٠٢٦-11-24T18:20:00Z", "", "yesterday",
]


@pytest.mark.parametrize("value", DATES)
def test_dates_read_as_the_python_reader_reads_them(value: str) -> None:
    assert native.parse_date_native(value) == fast.parse_date(value)


def test_dates_over_a_sweep_of_fields_and_offsets() -> None:
    rnd = random.Random(7)
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    zones = ["Z", "GMT", "UT", "+0000", "-0500", "+0530", "+1400", "-1200", "+9959", "+05:30", "-08:00"]
    for _ in range(20_000):
        y = rnd.choice([1900, 1901, 1970, 2000, 2024, 2026, 2100, 8999, rnd.randint(1800, 9999)])
        mo, d = rnd.randint(0, 13), rnd.randint(0, 32)
        hh, mm, ss = rnd.randint(0, 24), rnd.randint(0, 60), rnd.randint(0, 60)
        zone = rnd.choice(zones)
        rfc = f"{rnd.choice(days)}, {d:02} {months[(mo - 1) % 12]} {y} {hh:02}:{mm:02}:{ss:02} {zone}"
        w3c = f"{y:04}-{mo:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{rnd.choice(['', '.5'])}{zone}"
        for value in (rfc, w3c):
            assert native.parse_date_native(value) == fast.parse_date(value), value


URLS = [
    "https://example.org/a/b?x=1&y=2#frag", "http://example.org", "http://example.org:8080/x",
    "http://example.org:123456/x", "http://example.org:/x", "http://ex ample.org/", "http://example.org/a b",
    "http://example.org/a;b", "http://example.org/?", "http://example.org/#", "http://example.org/?a#",
    "http://example.org/a\tb", "http://example.org/\x1c", "https:///path", "ftp://example.org/",
    "HTTP://example.org/", "//example.org/x", "/relative", "", "http://exämple.org/",
    "http://example.org/?q=a?b;c", "http://under_score.org/",
]


@pytest.mark.parametrize("value", URLS)
def test_urls_that_need_no_joining_are_the_same(value: str) -> None:
    expected = bool(fast._PLAIN_URL.match(value)) and value.isascii()
    assert native.plain_url_native(value) == expected


SCANS = [
    b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel/></rss>',
    b'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><entry xml:base="/x"/></feed>',
    b"<a xmlns:x = 'u' xmlns:y=\"v\" fooxmlns=\"w\" xmlns:=\"z\"><b lang=\"fr\">database=1</b></a>",
    b'<a b="xmlns=&quot;q&quot;" xmlns="http://x/xmlns=\'y\'"/>',
    b'<a>xmlnsxmlns = "p" base = "q" lang=</a>',
    b"",
]


@pytest.mark.parametrize("data", SCANS)
def test_document_scan_finds_what_the_byte_searches_find(data: bytes) -> None:
    first = fast._FIRST_TAG.search(data)
    after = first.end() if first else 0
    has_base, base_below, has_lang, lang_below, starts = native.scan(data, after)
    assert (has_base, base_below) == fast._where(data, b"base=", after)
    assert (has_lang, lang_below) == fast._where(data, b"lang=", after)
    assert fast._declarations(data, starts) == fast._NS_DECL.findall(data)


def test_the_build_records_the_source_it_was_compiled_from() -> None:
    source = REPO / "aggregator" / "parse" / "_walk.pyx"
    assert fast.source_digest(source) == native.SOURCE_DIGEST
    assert fast.compiled_reader(source) is native


def test_a_build_older_than_its_source_is_not_used(tmp_path: Path) -> None:
    """An edit to _walk.pyx not yet rebuilt: its rules may differ from the source's, so
    entries are read in Python, and the warning says how to rebuild."""
    edited = tmp_path / "_walk.pyx"
    edited.write_bytes((REPO / "aggregator" / "parse" / "_walk.pyx").read_bytes() + b"\n# edited\n")
    with pytest.warns(RuntimeWarning, match="pip install -e"):
        assert fast.compiled_reader(edited) is None


def test_a_build_without_its_source_beside_it_is_used(tmp_path: Path) -> None:
    assert fast.compiled_reader(tmp_path / "absent.pyx") is native
