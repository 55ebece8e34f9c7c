"""Hostile feeds: bounded work per entry, nothing that drives a terminal, only http(s)
links. The pass is the real CLI against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedserver import FeedServer, feed_server  # noqa: F401

from aggregator.parse.feeds import parse_feed
from aggregator.parse.normalize import (
    MAX_DEPTH,
    clean_text,
    item_link,
    markup_excess,
    plain_text,
    sanitize_html,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1"})


def rss(title: str, items: list[tuple[str, str, str]], encoding: str = "utf-8") -> bytes:
    """An RSS document; ``items`` are (guid, link, escaped description)."""
    body = "".join(f"<item><title>{guid} story</title><link>{link}</link><guid>{guid}</guid>"
                   f"<description>{desc}</description></item>" for guid, link, desc in items)
    return (f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
            f"<title>{title}</title><link>http://127.0.0.1/</link>{body}</channel></rss>").encode()


def nested_divs(n: int) -> str:
    """``n`` nested <div>s around a sentence, escaped as a description carries HTML."""
    return "&lt;div&gt;" * n + "the deep sentence" + "&lt;/div&gt;" * n


def test_a_hostile_feed_does_not_hold_up_the_pass(instance_with_model: Path,
                                                  feed_server: FeedServer) -> None:  # noqa: F811
    # 100,000 nested <div>s (2.3 MB) once took 85 s of the event loop's CPU, and feeds
    # behind it were reported as timeouts although their servers had answered at once.
    feed_server.route("/hostile.xml", body=rss("Hostile", [
        ("deep", "http://127.0.0.1/deep", nested_divs(100_000)),
        ("plain", "http://127.0.0.1/plain", "a &lt;b&gt;bold&lt;/b&gt; word")]))
    feeds = {"hostile": feed_server.url("/hostile.xml")}
    for i in range(6):
        path = f"/ordinary{i}.xml"
        feed_server.route(path, body=rss(f"Ordinary {i}", [
            (f"o{i}", f"http://127.0.0.{1 + i % 4}/o{i}", "an &lt;p&gt;ordinary&lt;/p&gt; story")]))
        feeds[f"ordinary{i}"] = feed_server.url(path, host=f"127.0.0.{1 + i % 4}")
    (instance_with_model / "config" / "feeds.toml").write_text("".join(
        f'[[feed]]\nname = "{n}"\nurl = "{u}"\n' for n, u in feeds.items()))

    result = run(instance_with_model, "fetch", "--all")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "feeds: 7 ok" in result.stdout and "0 failed" in result.stdout

    rows = [json.loads(line) for line in
            run(instance_with_model, "query", "--format", "jsonl", "--limit", "0").stdout.splitlines()]
    by_feed: dict[str, list[dict]] = {}
    for row in rows:
        by_feed.setdefault(row["feed"], []).append(row)
    assert {f"ordinary{i}" for i in range(6)} <= set(by_feed)
    # The hostile feed's entries are kept: the deep one as its text, markup dropped.
    deep = next(r for r in by_feed["hostile"] if r["title"] == "deep story")
    assert deep["summary"] == "the deep sentence"
    assert next(r for r in by_feed["hostile"] if r["title"] == "plain story")["summary"] == \
        "a bold word"
    # And the feed says why, in its state and on the attempt.
    status = {r["feed"]: r for r in map(json.loads, run(
        instance_with_model, "feeds", "status", "--format", "jsonl").stdout.splitlines())}
    assert status["hostile"]["state"] == "ok"
    assert "markup dropped, text kept" in status["hostile"]["last_error"]
    assert "100,000 elements" in status["hostile"]["last_error"]
    assert all(status[f"ordinary{i}"]["last_error"] is None for i in range(6))
    with sqlite3.connect(instance_with_model / "var" / "aggregator.db") as db:
        errors = dict(db.execute("SELECT f.name, a.error FROM fetch_attempts a "
                                 "JOIN feeds f ON f.id = a.feed_id").fetchall())
    assert "markup dropped" in errors["hostile"]
    assert all(errors[f"ordinary{i}"] is None for i in range(6))  # no timeout, no error


def test_markup_bounds() -> None:
    assert markup_excess("<div>" * 600 + "x" + "</div>" * 600) == \
        f"elements nested 600 deep (limit {MAX_DEPTH})"
    assert markup_excess("<div>" * 500 + "x" + "</div>" * 500) is None
    # Elements whose end tag is implied, and void ones, do not nest: a sloppy list is flat.
    assert markup_excess("<ul>" + "<li>item<br><img src=a.png>" * 5000 + "</ul>") is None
    assert markup_excess("<p>x</p>" * 20_001).startswith("20,001 elements")
    assert markup_excess("x" * (3 << 20)).endswith("characters of markup (limit 2,097,152)")
    deep = "<div>" * 50_000 + "some &amp; text<script>evil()</script>" + "</div>" * 50_000
    assert plain_text(deep) == "some & text"
    assert sanitize_html(deep) == "some &amp; text"


def test_past_the_cpu_budget_entries_keep_their_text() -> None:
    body = rss("Budget", [("a", "http://x.org/a", "one &lt;b&gt;two&lt;/b&gt;"),
                          ("b", "http://x.org/b", "three &lt;i&gt;four&lt;/i&gt;")])
    spent = parse_feed(body, NOW, cpu_budget=0)
    assert [e.summary for e in spent.entries] == ["one two", "three four"]
    assert [e.content_html for e in spent.entries] == ["one two", "three four"]
    assert spent.malformed and "2 entries" in (spent.error or "")
    assert "CPU budget" in (spent.error or "")
    roomy = parse_feed(body, NOW, cpu_budget=60)
    assert [e.content_html for e in roomy.entries] == ["one <b>two</b>", "three <i>four</i>"]
    assert not roomy.malformed and roomy.error is None


@pytest.mark.parametrize(("raw", "clean"), [
    ("Breaking\x1b[2J\x1b[31mred\x1b[0m", "Breakingred"),
    ("\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07 here", "click here"),
    ("bell\x07 and \x9b31m C1 CSI\x9d0;title\x9c", "bell and  C1 CSI"),
    ("tab\tand\nnewline kept, NUL\x00 DEL\x7f gone", "tab\tand\nnewline kept, NUL DEL gone"),
    ("plain", "plain"),
])
def test_control_characters_never_leave_normalization(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(("link", "base", "kept"), [
    ("https://example.org/a", None, "https://example.org/a"),
    ("javascript:alert(4)", "https://example.org/feed", None),
    ("JavaScript:alert(4)", None, None),
    ("data:text/html,<script>alert(1)</script>", None, None),
    ("file:///etc/passwd", None, None),
    ("/story/1", "https://example.org/feeds/world.xml", "https://example.org/story/1"),
    ("story/1", "https://example.org/feeds/world.xml", "https://example.org/feeds/story/1"),
    ("//cdn.example.org/x", "https://example.org/feed", "https://cdn.example.org/x"),
    ("story/1", None, None),
])
def test_only_http_item_links(link: str, base: str | None, kept: str | None) -> None:
    assert item_link(link, base) == kept


def test_a_feed_carrying_escapes_and_bad_links_is_stored_clean(
        instance_with_model: Path, feed_server: FeedServer) -> None:  # noqa: F811
    # Raw ESC and BEL make the document ill-formed XML: feedparser reads it, and both
    # readers' output goes through the same normalization.
    body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Evil\x1b[2J feed</title><link>http://127.0.0.1/</link>"
            "<item><title>Click\x1b]8;;http://evil.example/\x07 me\x1b]8;;\x07</title>"
            "<link>javascript:alert(4)</link><guid>js</guid><author>Mal\x07lory</author>"
            "<category>news\x1b[31m</category><description>text\x9d</description></item>"
            "<item><title>Relative</title><link>/stories/2</link><guid>rel</guid>"
            "<description>fine</description></item>"
            "<item><title>Data</title><link>data:text/html,hi</link><guid>data</guid>"
            "<description>x</description></item></channel></rss>").encode()
    feed_server.route("/evil.xml", body=body)
    (instance_with_model / "config" / "feeds.toml").write_text(
        f'[[feed]]\nname = "evil"\nurl = "{feed_server.url("/evil.xml")}"\n')
    assert run(instance_with_model, "fetch", "--all").returncode == 0
    rows = {r["title"]: r for r in map(json.loads, run(
        instance_with_model, "query", "--format", "jsonl").stdout.splitlines())}
    assert set(rows) == {"Click me", "Relative", "Data"}
    assert rows["Click me"]["url"] is None and rows["Data"]["url"] is None
    assert rows["Relative"]["url"] == feed_server.url("/stories/2")
    assert rows["Click me"]["summary"] == "text" and rows["Click me"]["categories"] == ["news"]
    everything = json.dumps(rows, ensure_ascii=False)
    assert not any(ch in everything for ch in "\x1b\x07\x9b\x9d")
    with sqlite3.connect(instance_with_model / "var" / "aggregator.db") as db:
        (title,) = db.execute("SELECT title FROM feeds WHERE name = 'evil'").fetchone()
        authors = [r[0] for r in db.execute("SELECT authors FROM items")]
    assert title == "Evil feed"
    assert not any("\x07" in (a or "") for a in authors)
