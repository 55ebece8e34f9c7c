"""feeds list/add/remove/enable/disable/import/export/status, from the outside.

The real CLI runs in a subprocess against a temporary instance made from the shipped
config; the database is a real SQLite file, read and seeded through the real store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import listparser
import pytest
from feedserver import FeedServer, feed_server  # noqa: F401

from aggregator.config import load_feeds
from aggregator.feedcheck import discover_feeds
from aggregator.feedfile import FeedFileError, append_feeds, name_from_url, remove_feed
from aggregator.instance import Instance
from aggregator.opml import Outline, Skipped, plan_import, url_key
from aggregator.store.sqlite import SQLiteStore
from aggregator.types import Attempt, Entry
from aggregator.views import FeedConfig

DATA = Path(__file__).parent / "data"
NESTED = DATA / "feeds-nested.opml"
NOW = datetime.now(UTC).replace(microsecond=0)


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # stdout is a pipe here, so commands print JSON lines unless told --format table.
    return subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"})


def jsonl(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def feeds_file(home: Path) -> Path:
    return home / "config" / "feeds.toml"


def store(home: Path) -> SQLiteStore:
    return SQLiteStore(home / "var" / "aggregator.db")


def synced_store(home: Path) -> SQLiteStore:
    s = store(home)
    s.sync_feeds(load_feeds(Instance(home)), NOW)
    return s


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# -- list ----------------------------------------------------------------------------


def test_list_prints_json_lines_when_piped_and_creates_no_database(instance_dir: Path) -> None:
    result = run(instance_dir, "feeds", "list")
    assert result.returncode == 0, result.stderr
    rows = jsonl(result.stdout)
    declared = tomllib.loads(feeds_file(instance_dir).read_text())["feed"]
    assert [r["name"] for r in rows] == [f["name"] for f in declared]
    assert rows[1] == {"name": "bbc-middle-east",
                       "url": "https://feeds.bbci.co.uk/news/world/middle_east/rss.xml",
                       "tags": ["middle-east"], "interval": "15m", "state": "new"}
    assert not (instance_dir / "var" / "aggregator.db").exists()


def test_list_shows_the_database_state(instance_dir: Path) -> None:
    with synced_store(instance_dir) as s:
        s.set_feed_disabled("tass-en", "by hand", NOW)
        feed = s.feeds(["meduza-en"])[0]
        s.update_feed(replace(feed, last_fetched_at=NOW, last_success_at=NOW))
    states = {r["name"]: r["state"] for r in jsonl(run(instance_dir, "feeds", "list").stdout)}
    assert states["tass-en"] == "disabled"
    assert states["meduza-en"] == "ok"
    assert states["bbc-world"] == "new"


def test_list_as_a_table(instance_dir: Path) -> None:
    result = run(instance_dir, "feeds", "list", "--format", "table")
    assert result.returncode == 0, result.stderr
    assert "interval" in result.stdout
    assert "bbc-middle-east" in result.stdout and "middle-east" in result.stdout


def test_list_loads_no_heavy_library(instance_dir: Path) -> None:
    """It runs in shell loops: no pydantic, httpx, feedparser, scikit-learn, not even rich."""
    with synced_store(instance_dir):
        pass
    code = (
        "import sys\n"
        "from aggregator.cli import cli\n"
        f"cli(['--home', {str(instance_dir)!r}, 'feeds', 'list'], standalone_mode=False)\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'httpx',"
        " 'feedparser', 'sklearn', 'numpy', 'lxml', 'rich', 'tomlkit', 'classifiers'})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr


def test_a_bad_feeds_file_is_one_line_naming_file_and_key(instance_dir: Path) -> None:
    feeds_file(instance_dir).write_text('[[feed]]\nname = "Bad Name"\nurl = "https://x.org/"\n')
    err = one_line_error(run(instance_dir, "feeds", "list"))
    assert err.startswith("error: config/feeds.toml: feed[0]") and "'Bad Name'" in err


# -- add -----------------------------------------------------------------------------


def test_add_appends_a_table_keeping_the_file_and_the_feed_is_due_at_once(
        instance_dir: Path) -> None:
    before = feeds_file(instance_dir).read_text()
    result = run(instance_dir, "feeds", "add", "https://caspian-notes.example.org/feed/",
                 "--no-check", "--name", "caspian-notes", "--tag", "caucasus", "--tag", "analysis",
                 "--interval", "90m")
    assert result.returncode == 0, result.stderr
    assert "added caspian-notes" in result.stdout
    after = feeds_file(instance_dir).read_text()
    assert after.startswith(before.rstrip("\n") + "\n\n[[feed]]\n")  # every comment kept
    assert tomllib.loads(after)["feed"][-1] == {
        "name": "caspian-notes", "url": "https://caspian-notes.example.org/feed/",
        "tags": ["caucasus", "analysis"], "interval": "90m"}
    with store(instance_dir) as s:
        assert "caspian-notes" in {f.name for f in s.due_feeds(NOW)}
        feed = s.feeds(["caspian-notes"])[0]
        assert (feed.tags, feed.interval) == (("caucasus", "analysis"), timedelta(minutes=90))


def test_add_names_a_feed_from_its_url_and_keeps_names_unique(instance_dir: Path) -> None:
    first = run(instance_dir, "feeds", "add", "https://www.example.org/world/news/rss.xml",
                "--no-check")
    second = run(instance_dir, "feeds", "add", "https://example.org/world/news/rss.xml?lang=fr",
                 "--no-check")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    names = [f.name for f in load_feeds(Instance(instance_dir))][-2:]
    assert names == ["example-world-news", "example-world-news-2"]


def test_adds_run_at_once_all_land_in_the_file(instance_dir: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "aggregator", "--home", str(instance_dir),
                               "feeds", "add", f"https://site{i}.example.org/rss", "--no-check"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(6)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    names = {f.name for f in load_feeds(Instance(instance_dir))}
    assert {f"example-site{i}" for i in range(6)} <= names
    with store(instance_dir) as s:
        assert {f"example-site{i}" for i in range(6)} <= {f.name for f in s.feeds()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["https://x.example.org/rss", "--tag", "rusia"], "unknown tag 'rusia' (did you mean 'russia'?)"),
        (["https://feeds.bbci.co.uk/news/world/rss.xml/"], "already followed as 'bbc-world'"),
        (["https://x.example.org/rss", "--name", "bbc-world"], "'bbc-world' already exists"),
        (["https://x.example.org/rss", "--name", "Big News"], "--name: expected lower-case"),
        (["https://x.example.org/rss", "--interval", "often"], "--interval: expected a duration"),
        (["feeds.example.org/rss"], "expected an http(s) feed URL"),
        (["https://x.example.org/rss", "--no-check", "--pick", "2"], "--pick needs the page"),
    ],
)
def test_add_refuses_with_one_line_and_exit_2_leaving_the_file(
        instance_dir: Path, args: list[str], message: str) -> None:
    before = feeds_file(instance_dir).read_text()
    err = one_line_error(run(instance_dir, "feeds", "add", *args))
    assert message in err
    assert feeds_file(instance_dir).read_text() == before


def test_edits_refuse_a_feeds_file_that_is_already_invalid(instance_dir: Path) -> None:
    path = feeds_file(instance_dir)
    path.write_text(path.read_text() + '\n[[feed]]\nname = "bbc-world"\nurl = "https://x.org/"\n')
    before = path.read_text()
    err = one_line_error(run(instance_dir, "feeds", "add", "https://y.example.org/rss",
                             "--no-check"))
    assert "config/feeds.toml" in err and "unique feed name" in err
    assert path.read_text() == before


# -- remove --------------------------------------------------------------------------


def test_remove_deletes_the_table_keeps_other_comments_and_the_items(instance_dir: Path) -> None:
    with synced_store(instance_dir) as s:
        tass = s.feeds(["tass-en"])[0]
        s.save_entries(tass, [Entry(key="k1", title="Lavrov meets Araghchi", url="https://tass.com/1",
                                    canonical_url="https://tass.com/1", summary="s",
                                    content_html="<p>s</p>", published=NOW, content_hash="h")],
                       NOW)
    before = feeds_file(instance_dir).read_text()
    result = run(instance_dir, "feeds", "remove", "tass-en")
    assert result.returncode == 0, result.stderr
    assert "its items are kept" in result.stdout
    after = feeds_file(instance_dir).read_text()
    own_block = ('# Russian state news agency, English service: the Kremlin\'s and ministries\' '
                 'own line.\n[[feed]]\nname = "tass-en"\nurl = "https://tass.com/rss/v2.xml"\n'
                 'tags = ["russia"]\ninterval = "15m"\n\n')
    assert own_block in before
    assert after == before.replace(own_block, "")  # only its table and its own comment go
    assert "# --- Russia and Ukraine" in after and "# --- Iran" in after
    with store(instance_dir) as s:
        assert "tass-en" not in {f.name for f in s.feeds()}
        assert not s.feeds(["tass-en"], include_inactive=True)[0].active
        assert s.count_items() == 1
    assert "tass-en" not in {r["name"] for r in jsonl(run(instance_dir, "feeds", "list").stdout)}


def test_remove_an_unknown_feed_suggests_the_closest(instance_dir: Path) -> None:
    err = one_line_error(run(instance_dir, "feeds", "remove", "tass"))
    assert "no feed named 'tass'" in err and "did you mean 'tass-en'?" in err


# -- enable, disable, status ---------------------------------------------------------


def test_a_feed_disabled_after_30_days_of_failure_comes_back_with_enable(
        instance_dir: Path) -> None:
    since = NOW - timedelta(days=31)
    with synced_store(instance_dir) as s:
        feed = s.feeds(["irna-en"])[0]
        # What the fetcher leaves behind when it gives up on a feed.
        s.update_feed(replace(
            feed, consecutive_failures=60, failing_since=since, last_fetched_at=NOW,
            last_success_at=since - timedelta(hours=1), last_error="HTTP 503",
            disabled_at=NOW, disabled_reason=f"HTTP 503; failing since {since:%Y-%m-%d} (31 days)",
            next_fetch_at=None), Attempt(feed.id, NOW, 503, 40, 0, "HTTP 503", "disabled"))
    [row] = jsonl(run(instance_dir, "feeds", "status", "irna-en").stdout)
    assert row["state"] == "disabled"
    assert row["state_text"].startswith("disabled: HTTP 503; failing since")
    assert (row["next_due"], row["consecutive_failures"]) == (None, 60)

    result = run(instance_dir, "feeds", "enable", "irna-en")
    assert result.returncode == 0, result.stderr
    assert "enabled irna-en (was disabled since" in result.stdout
    with store(instance_dir) as s:
        feed = s.feeds(["irna-en"])[0]
        assert feed.enabled and feed.consecutive_failures == 0 and feed.failing_since is None
        assert "irna-en" in {f.name for f in s.due_feeds(NOW)}
    [row] = jsonl(run(instance_dir, "feeds", "status", "irna-en").stdout)
    assert row["state"] == "ok" and row["next_due"] is None


def test_disable_by_hand_stops_fetching_and_keeps_the_first_reason(instance_dir: Path) -> None:
    before = feeds_file(instance_dir).read_text()
    first = run(instance_dir, "feeds", "disable", "bbc-world", "--reason", "paywalled")
    assert first.returncode == 0, first.stderr
    again = run(instance_dir, "feeds", "disable", "bbc-world")
    assert "already disabled" in again.stdout
    with store(instance_dir) as s:
        assert "bbc-world" not in {f.name for f in s.due_feeds(NOW)}
        assert s.feeds(["bbc-world"])[0].disabled_reason == "paywalled"
    assert feeds_file(instance_dir).read_text() == before  # database state only
    table = run(instance_dir, "feeds", "status", "--format", "table", "bbc-world").stdout
    assert "disabled: paywalled" in table


def test_status_reports_failures_and_new_items_per_day(instance_dir: Path) -> None:
    with synced_store(instance_dir) as s:
        feed = s.feeds(["civil-ge"])[0]
        good = replace(feed, last_fetched_at=NOW - timedelta(days=1),
                       last_success_at=NOW - timedelta(days=1))
        s.update_feed(good, Attempt(feed.id, NOW - timedelta(days=2), 200, 90, 5000, None, "ok", 10))
        s.update_feed(good, Attempt(feed.id, NOW - timedelta(days=1), 200, 90, 5000, None, "ok", 4))
        failing = replace(good, consecutive_failures=1, failing_since=NOW, last_fetched_at=NOW,
                          last_error="connection refused", next_fetch_at=NOW + timedelta(hours=1))
        s.update_feed(failing, Attempt(feed.id, NOW, None, 5, 0, "connection refused", "failed"))
    [row] = jsonl(run(instance_dir, "feeds", "status", "civil-ge").stdout)
    assert row["state"] == "failing"
    assert row["state_text"] == f"failing since {NOW:%Y-%m-%d}"
    assert row["last_error"] == "connection refused"
    assert row["consecutive_failures"] == 1
    assert row["new_items_per_day"] == 7.0  # 14 new items over the two days the attempts span
    assert row["next_due"] == (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    table = run(instance_dir, "feeds", "status", "--format", "table").stdout
    assert f"failing since {NOW:%Y-%m-%d}" in table and "connection refused" in table
    assert len(jsonl(run(instance_dir, "feeds", "status").stdout)) == len(
        load_feeds(Instance(instance_dir)))


# -- import and export ---------------------------------------------------------------


def test_import_nested_opml_folders_become_known_tags_and_skips_are_reported(
        instance_dir: Path) -> None:
    before = feeds_file(instance_dir).read_text()
    result = run(instance_dir, "feeds", "import", str(NESTED))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("imported 6 feeds from") and "skipped 6" in out
    for line in [
        "skipped Kura (copy): duplicate URL: same as 'kura-valley-news' earlier in this file",
        "skipped BBC News - World: already followed as 'bbc-world'",
        "skipped Moscow Times: duplicate name: 'moscow-times' is already the feed at",
        "skipped Broken Link: invalid URL 'ftp://files.example.org/feed.xml'",
        "skipped No Scheme: invalid URL 'example.org/rss'",
        "skipped A web page: not a feed",
        "not tags in config/taxonomy.toml, so not kept: 'Regions', 'Tech'",
    ]:
        assert line in out
    after = feeds_file(instance_dir).read_text()
    assert after.startswith(before.rstrip("\n") + "\n\n# Imported from feeds-nested.opml on ")
    declared = {f.name: f for f in load_feeds(Instance(instance_dir))}
    assert declared["levant-ledger"].tags == ("middle-east",)
    assert declared["volga-wire"].tags == ("russia", "analysis")  # folder, then category
    assert declared["kura-valley-news"].tags == ("caucasus",)
    assert declared["gadget-hour"].tags == ()  # 'Tech' is not a tag: kept as nothing
    assert "example-untitled-news-world" in declared  # no label: named from the URL
    with store(instance_dir) as s:
        assert {"levant-ledger", "gadget-hour"} <= {f.name for f in s.due_feeds(NOW)}

    again = run(instance_dir, "feeds", "import", str(NESTED))
    assert again.stdout.startswith("imported 0 feeds") and "already followed as 'volga-wire'" in again.stdout
    assert feeds_file(instance_dir).read_text() == after


def test_import_dry_run_changes_nothing(instance_dir: Path) -> None:
    before = feeds_file(instance_dir).read_text()
    result = run(instance_dir, "feeds", "import", "--dry-run", str(NESTED))
    assert result.stdout.startswith("would import 6 feeds")
    assert feeds_file(instance_dir).read_text() == before
    assert not (instance_dir / "var" / "aggregator.db").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ((DATA / "doctype.opml").read_bytes(), "refusing a file with a DTD"),
        ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE opml><opml/>'.encode("utf-16"),
         "refusing a file with a DTD"),
        (b"<opml version='2.0'><body><outline", "not well-formed XML"),
        (b"<rss version='2.0'><channel/></rss>", "expected an <opml> document, found <rss>"),
    ],
)
def test_import_refuses_what_is_not_a_plain_opml_file(
        instance_dir: Path, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "in.opml"
    path.write_bytes(content)
    before = feeds_file(instance_dir).read_text()
    err = one_line_error(run(instance_dir, "feeds", "import", str(path)))
    assert message in err
    assert feeds_file(instance_dir).read_text() == before


def test_export_is_read_by_other_readers(instance_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "feeds.opml"
    result = run(instance_dir, "feeds", "export", str(out))
    assert result.returncode == 0, result.stderr
    parsed = listparser.parse(out.read_text(encoding="utf-8"))
    assert not parsed.bozo, parsed.bozo_exception
    declared = load_feeds(Instance(instance_dir))
    assert sorted(f["url"] for f in parsed.feeds) == sorted(f.url for f in declared)
    by_url = {f["url"]: f for f in parsed.feeds}
    assert by_url["https://www.armscontrol.org/rss.xml"]["title"] == "arms-control-association"
    assert {"nuclear", "analysis"} <= set(by_url["https://www.armscontrol.org/rss.xml"]["tags"])
    piped = run(instance_dir, "feeds", "export").stdout  # no FILE: standard output

    def undated(text: str) -> list[str]:
        return [line for line in text.splitlines() if "<dateCreated>" not in line]

    assert undated(piped) == undated(out.read_text(encoding="utf-8"))


def test_export_then_import_gives_the_same_feeds(instance_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "feeds.opml"
    assert run(instance_dir, "feeds", "export", str(out)).returncode == 0
    other = tmp_path / "other"
    (other / "var").mkdir(parents=True)
    (other / "config").mkdir()
    for name in ("aggregator.toml", "taxonomy.toml"):
        (other / "config" / name).write_bytes((instance_dir / "config" / name).read_bytes())
    feeds_file(other).write_text("# Feeds, imported.\n")
    result = run(other, "feeds", "import", str(out))
    assert result.returncode == 0, result.stderr
    assert "skipped" not in result.stdout
    original = sorted(load_feeds(Instance(instance_dir)), key=lambda f: f.name)
    assert sorted(load_feeds(Instance(other)), key=lambda f: f.name) == original


# -- the text edits themselves -------------------------------------------------------


def test_remove_feed_takes_its_touching_comment_and_leaves_no_double_blank() -> None:
    text = ('# header\n\n[[feed]]\nname = "a"\nurl = "https://a.org/"\n\n'
            '# b is special\n[[feed]]\nname = "b"\nurl = "https://b.org/"\n\n'
            '# --- section ---\n\n[[feed]]\nname = "c"\nurl = "https://c.org/"\n')
    assert remove_feed(text, "b") == ('# header\n\n[[feed]]\nname = "a"\nurl = "https://a.org/"\n\n'
                                      '# --- section ---\n\n[[feed]]\nname = "c"\n'
                                      'url = "https://c.org/"\n')
    assert remove_feed(text, "c").endswith('url = "https://b.org/"\n\n# --- section ---\n')
    with pytest.raises(KeyError):
        remove_feed(text, "d")


def test_edits_refuse_a_layout_they_cannot_keep() -> None:
    inline = 'feed = [{name = "a", url = "https://a.org/"}]\n'
    with pytest.raises(FeedFileError):
        remove_feed(inline, "a")
    with pytest.raises(FeedFileError):
        append_feeds(inline, [FeedConfig("b", "https://b.org/")])


def test_append_to_an_empty_file_and_quote_what_needs_quoting() -> None:
    text = append_feeds("", [FeedConfig("q", 'https://q.org/?a="1"&b=\\', ("x",))])
    assert tomllib.loads(text)["feed"] == [{"name": "q", "url": 'https://q.org/?a="1"&b=\\',
                                            "tags": ["x"]}]


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://feeds.bbci.co.uk/news/world/rss.xml", "bbci-news-world"),
        ("https://en.irna.ir/rss", "irna-en"),
        ("https://www.theguardian.com/world/russia/rss", "theguardian-world-russia"),
        ("http://127.0.0.1:8080/wire.xml", "wire"),
        ("https://example.org/", "example"),
    ],
)
def test_names_from_urls(url: str, name: str) -> None:
    assert name_from_url(url) == name


def test_the_light_read_checks_names_as_the_config_loader_does() -> None:
    from aggregator.config import NAME_PATTERN
    from aggregator.feedfile import NAME_RE

    assert NAME_RE.pattern == NAME_PATTERN


def test_same_feed_urls_compare_equal() -> None:
    assert url_key("http://WWW.Example.org/feed/") == url_key("https://example.org/feed")
    assert url_key("https://example.org/feed?a=1") != url_key("https://example.org/feed?a=2")
    assert url_key("https://example.org:8443/feed") != url_key("https://example.org/feed")


def test_plan_import_keeps_document_order_and_first_of_duplicates() -> None:
    plan = plan_import(
        [Outline("https://a.org/rss", "A"), Skipped("page", "not a feed"),
         Outline("https://a.org/rss/", "A again"), Outline("https://b.org/rss", "A")],
        existing=[], known_tags={"iran"})
    assert [f.name for f in plan.added] == ["a"]
    assert [s.label for s in plan.skipped] == ["page", "A again", "A"]


# -- add checks what it adds ---------------------------------------------------------

_FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Served</title>'
         b"<item><title>One</title><link>http://127.0.0.1/one</link></item></channel></rss>")


def _page(*links: str) -> bytes:
    return ("<!DOCTYPE html><html><head><title>Site</title>" + "".join(links) +
            "</head><body><p>Welcome</p></body></html>").encode()


def _declared(home: Path) -> dict[str, str]:
    return {f.name: f.url for f in load_feeds(Instance(home))}


def test_add_fetches_the_feed_once_and_adds_it(instance_dir: Path,
                                               feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/rss.xml", body=_FEED)
    url = feed_server.url("/rss.xml")
    result = run(instance_dir, "feeds", "add", url, "--name", "served")
    assert result.returncode == 0, result.stderr
    assert _declared(instance_dir)["served"] == url and feed_server.hits("/rss.xml") == 1


def test_add_takes_the_only_feed_a_web_page_announces(instance_dir: Path,
                                                      feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/news/", body=_page(
        '<link rel="alternate" type="application/rss+xml" title="News" href="feed.xml">'),
        headers={"Content-Type": "text/html; charset=utf-8"})
    feed_server.route("/news/feed.xml", body=_FEED)
    result = run(instance_dir, "feeds", "add", feed_server.url("/news/"), "--name", "news")
    assert result.returncode == 0, result.stderr
    assert _declared(instance_dir)["news"] == feed_server.url("/news/feed.xml")
    assert f"found on {feed_server.url('/news/')}" in result.stdout


def test_add_lists_the_feeds_of_a_page_of_several_and_pick_chooses(
        instance_dir: Path, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/", body=_page(
        '<link rel="alternate" type="application/rss+xml" title="All" href="/all.xml">',
        '<link rel="alternate" type="application/atom+xml" title="World" href="/world.atom">'))
    feed_server.route("/world.atom", body=_FEED)
    before = feeds_file(instance_dir).read_text()
    listed = run(instance_dir, "feeds", "add", feed_server.url("/"))
    assert listed.returncode == 2
    assert listed.stderr.splitlines() == [
        f"1. {feed_server.url('/all.xml')}  (All)",
        f"2. {feed_server.url('/world.atom')}  (World)",
        f"error: {feed_server.url('/')} is a web page announcing 2 feeds: give one's URL, "
        "or --pick N"]
    assert feeds_file(instance_dir).read_text() == before
    picked = run(instance_dir, "feeds", "add", feed_server.url("/"), "--pick", "2")
    assert picked.returncode == 0, picked.stderr
    assert feed_server.url("/world.atom") in _declared(instance_dir).values()
    out_of_range = run(instance_dir, "feeds", "add", feed_server.url("/"), "--pick", "3")
    assert "--pick: expected a number from 1 to 2, found 3" in one_line_error(out_of_range)


@pytest.mark.parametrize(("path", "route", "reason"), [
    ("/gone.xml", {"status": 404, "body": b"nothing"}, "HTTP 404 Not Found"),
    ("/page.html", {"body": _page()}, "it is a web page that announces no feed"),
    ("/text.txt", {"body": b"just words"}, "not well-formed XML"),
    (None, None, "connection refused"),
])
def test_add_refuses_what_gives_no_feed_unless_no_check(
        instance_dir: Path, feed_server: FeedServer, path: str | None, route: dict | None,  # noqa: F811
        reason: str) -> None:
    if path is not None:
        feed_server.route(path, **(route or {}))
    url = feed_server.url(path) if path else "http://127.0.0.1:1/feed.xml"
    before = feeds_file(instance_dir).read_text()
    refused = run(instance_dir, "feeds", "add", url, "--name", "x")
    err = one_line_error(refused, code=1)
    assert f"cannot add {url}: " in err and reason in err
    assert feeds_file(instance_dir).read_text() == before
    assert run(instance_dir, "feeds", "add", url, "--name", "x", "--no-check").returncode == 0
    assert _declared(instance_dir)["x"] == url


def test_feed_discovery_resolves_against_the_base_and_skips_what_is_no_feed() -> None:
    page = _page('<base href="https://cdn.example.org/site/">',
                 '<link rel="alternate" type="application/rss+xml" href="rss.xml">',
                 '<link rel="Alternate Feed" type="application/atom+xml; charset=utf-8" '
                 'href="https://example.org/atom" title=" Atom ">',
                 '<link rel="alternate" type="text/html" href="/fr/">',
                 '<link rel="stylesheet" type="application/rss+xml" href="x.xml">',
                 '<link rel="alternate" type="application/rss+xml" href="javascript:x()">',
                 '<link rel="alternate" type="application/rss+xml" href="rss.xml">')
    assert discover_feeds(page, "https://example.org/") == (
        ("https://cdn.example.org/site/rss.xml", None), ("https://example.org/atom", "Atom"))
    assert discover_feeds(b"", "https://example.org/") == ()
