"""Parsing and normalization: what we store from what feeds say."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import pytest

from aggregator.parse.feeds import parse_feed
from aggregator.parse.normalize import canonical_url, entry_key, plain_text, sanitize_html

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel><title>Wire</title><link>https://wire.example/</link><language>en-gb</language>
<ttl>45</ttl>
<item><title>Lavrov &amp; Araghchi meet</title><link>https://wire.example/a?utm_source=rss</link>
<guid isPermaLink="false">wire-1</guid><pubDate>Tue, 24 Nov 2026 09:30:00 +0300</pubDate>
<category>World</category><category>Analysis</category>
<description>&lt;p&gt;Talks in &lt;b&gt;Moscow&lt;/b&gt;.&lt;/p&gt;&lt;p&gt;Next&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</description>
</item>
<item><title>No date, no guid</title><link>https://wire.example/b#top</link></item>
<item><title>Only a title</title></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fa">
<title>Review</title><id>tag:review.example,2026:feed</id><updated>2026-11-20T00:00:00Z</updated>
<entry><title type="html">Gas &lt;em&gt;swap&lt;/em&gt;</title><id>tag:review.example,2026:1</id>
<link href="https://review.example/1"/><updated>2026-11-20T10:00:00Z</updated>
<author><name>A. Writer</name></author>
<content type="html">&lt;p&gt;Gazprom gas via Azerbaijan.&lt;/p&gt;</content></entry>
</feed>"""


def test_rss_entries_normalized() -> None:
    parsed = parse_feed(RSS, NOW)
    assert not parsed.malformed and parsed.title == "Wire"
    assert parsed.ttl is not None and parsed.ttl.total_seconds() == 45 * 60
    first, second, third = parsed.entries
    assert first.key == "wire-1"
    assert first.title == "Lavrov & Araghchi meet"
    assert first.canonical_url == "https://wire.example/a"
    assert first.summary == "Talks in Moscow . Next" or first.summary == "Talks in Moscow. Next"
    assert "script" not in first.content_html and "<b>Moscow</b>" in first.content_html
    assert first.published == datetime(2026, 11, 24, 6, 30, tzinfo=UTC)
    assert first.categories == ("World", "Analysis")
    assert first.language == "en-gb"
    # No guid: the link is the identity; no date: the fetch time, flagged.
    assert second.key == "https://wire.example/b#top"
    assert second.canonical_url == "https://wire.example/b"
    assert second.published == NOW and second.date_is_fetch_time
    # Neither: a hash of title and date.
    assert third.key.startswith("sha1:")


def test_atom_entries_normalized() -> None:
    (e,) = parse_feed(ATOM, NOW).entries
    assert e.key == "tag:review.example,2026:1"
    assert e.title == "Gas swap"
    assert e.summary == "Gazprom gas via Azerbaijan."
    assert e.authors == ("A. Writer",)
    assert e.published == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert e.language == "fa"


def test_malformed_feed_keeps_what_it_can() -> None:
    broken = RSS.replace(b"</channel></rss>", b"<item><title>Cut off")
    parsed = parse_feed(broken, NOW)
    assert parsed.malformed and parsed.error
    assert [e.key for e in parsed.entries][:1] == ["wire-1"]


def test_not_a_feed_is_an_error() -> None:
    parsed = parse_feed(b"<html><body>Service unavailable</body></html>", NOW)
    assert parsed.entries == () and parsed.error


def test_title_edit_keeps_identity() -> None:
    edited = RSS.replace(b"Lavrov &amp; Araghchi meet", b"Lavrov and Araghchi meet in Moscow")
    a, b = parse_feed(RSS, NOW).entries[0], parse_feed(edited, NOW).entries[0]
    assert a.key == b.key and a.content_hash != b.content_hash


@pytest.mark.parametrize(("url", "canonical"), [
    ("HTTP://Example.COM:80/Path?b=2&a=1", "http://example.com/Path?a=1&b=2"),
    ("https://example.com/a?utm_medium=x&fbclid=y&gclid=z&id=5#comments",
     "https://example.com/a?id=5"),
    ("https://example.com:8443", "https://example.com:8443/"),
    ("https://example.com/World/2026/x.html", "https://example.com/World/2026/x.html"),
    ("https://Example.com/x", "https://example.com/x"),
    ("https://example.com:443/x", "https://example.com/x"),
    ("mailto:x@example.com", None),
    ("not a url", None),
])
def test_canonical_url(url: str, canonical: str | None) -> None:
    assert canonical_url(url) == canonical


def test_plain_text_and_keys() -> None:
    assert plain_text("<div>a</div><div>b&nbsp;c</div>") == "a b c"
    assert plain_text("Mos<b>cow</b> <P>talks</p><br/>end") == "Moscow talks end"
    assert plain_text("a < p> b") == "a < p> b"
    assert sanitize_html("Plain words, no markup.") == "Plain words, no markup."
    assert sanitize_html("AT&T <script>x()</script>") == "AT&amp;T "
    assert entry_key(" g ", "l", "t", "d") == "g"
    assert entry_key(None, "l", "t", "d") == "l"
    assert entry_key(None, None, "t", "d") == entry_key("", "", "t", "d")


RELATIVE_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Ministry</title><link>https://mfa.example/</link>
<item><title>Statement</title><guid>s-1</guid>
<description>&lt;p&gt;&lt;a href="/press/1?a=1&amp;amp;b=2"&gt;Read&lt;/a&gt; &lt;img src="img/map.png"&gt;
&lt;a href="//cdn.example/doc.pdf"&gt;PDF&lt;/a&gt; &lt;a href="https://other.example/x"&gt;x&lt;/a&gt;
&lt;a href="javascript:alert(1)"&gt;j&lt;/a&gt;&lt;/p&gt;</description></item>
</channel></rss>"""

RELATIVE_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://think.example/research/">
<title>Tank</title><id>tag:think.example,2026:feed</id><updated>2026-11-20T00:00:00Z</updated>
<entry xml:base="papers/"><title>Paper</title><id>tag:think.example,2026:p1</id>
<updated>2026-11-20T10:00:00Z</updated>
<content type="html">&lt;p&gt;&lt;a href="p1.html"&gt;Full text&lt;/a&gt;&lt;/p&gt;</content></entry>
</feed>"""


@pytest.mark.parametrize("reader", ["fast", "feedparser"])
def test_relative_urls_in_html_are_made_absolute(reader: Literal["fast", "feedparser"]) -> None:
    # Items are read away from their feed (CLI, mail): links must not point at our host.
    (e,) = parse_feed(RELATIVE_RSS, NOW, url="https://mfa.example/en/rss.xml", reader=reader).entries
    assert 'href="https://mfa.example/press/1?a=1&amp;b=2"' in e.content_html
    assert 'src="https://mfa.example/en/img/map.png"' in e.content_html
    assert 'href="https://cdn.example/doc.pdf"' in e.content_html
    assert 'href="https://other.example/x"' in e.content_html
    assert "javascript" not in e.content_html
    assert e.summary == "Read PDF x j"
    # xml:base on the feed and the entry, relative to the document's URL.
    (a,) = parse_feed(RELATIVE_ATOM, NOW, url="https://think.example/feed.xml", reader=reader).entries
    assert 'href="https://think.example/research/papers/p1.html"' in a.content_html


def test_relative_urls_without_a_usable_base_stay_as_written() -> None:
    for url in (None, "http://mfa.example:99999/rss.xml"):
        (e,) = parse_feed(RELATIVE_RSS, NOW, url=url).entries
        assert 'href="/press/1?a=1&amp;b=2"' in e.content_html
