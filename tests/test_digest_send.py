"""Digests end to end: a real SQLite file, a real SMTP server on 127.0.0.1, the clock passed in."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from smtpserver import SmtpServer, self_signed_cert

from aggregator.config import Config, settings_from
from aggregator.digest.deliver import preview_digest, send_digests
from aggregator.errors import ConfigError
from aggregator.instance import Instance
from aggregator.store.sqlite import SQLiteStore
from aggregator.types import Entry
from aggregator.views import FeedConfig, TagScore

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # a Friday, 07:00: a daily digest is due
SEEN = NOW - timedelta(hours=3)  # when the test items were first stored
DESK = "desk@example.org"
SENDER = "Digest Desk <digest@aggregator.example>"


# -- building blocks -------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "var" / "aggregator.db")
    s.sync_feeds([FeedConfig("wire", "https://wire.example/rss"),
                  FeedConfig("gazette", "https://gazette.example/atom")], NOW - timedelta(days=30))
    yield s
    s.close()


def add(store: SQLiteStore, key: str, title: str, tags: dict[str, float], *,
        feed: str = "wire", url: str | None = None, seen: datetime = SEEN,
        summary: str = "A summary of what happened.", reasons: tuple[str, ...] = (),
        published: datetime | None = None) -> int:
    """Store one entry as ``feed`` carried it at ``seen`` and give it model tags."""
    url = url or f"https://{feed}.example/{key}"
    f = next(x for x in store.feeds() if x.name == feed)
    store.save_entries(f, [Entry(key=key, title=title, url=url, canonical_url=url,
                                 summary=summary, content_html=f"<p>{summary}</p>",
                                 published=published or seen - timedelta(minutes=30),
                                 content_hash=f"{title}|{summary}")], seen)
    item_id = int(store.conn.execute("SELECT item_id FROM item_sources s JOIN feeds f ON "
                                     "f.id = s.feed_id WHERE f.name = ? AND s.entry_key = ?",
                                     (feed, key)).fetchone()[0])
    if tags:
        store.write_model_tags([(item_id, [TagScore(t, s, "model", "test-1", reasons)
                                           for t, s in tags.items()])], seen)
    return item_id


def make_config(home: Path, server: SmtpServer | None = None, *, security: str = "none",
                username: str = "", **digest: Any) -> Config:
    (home / "config").mkdir(parents=True, exist_ok=True)
    smtp: dict[str, Any] = {"host": "127.0.0.1", "port": server.port if server else 2525,
                            "security": security, "from": SENDER, "timeout": "5s",
                            "username": username, "password_env": "TEST_DIGEST_SMTP_PASSWORD"}
    sub = {"name": "russia-iran-desk", "to": [DESK], "tags": ["russia-iran", "iran"],
           "min_score": 0.5, "at": "07:00", "timezone": "UTC", **digest}
    return Config(Instance(home), settings_from({"smtp": smtp, "digest": [sub]}), (), None)


def ledger(store: SQLiteStore) -> set[tuple[str, int]]:
    with sqlite3.connect(store.path) as c:
        return {(r, i) for r, i in c.execute("SELECT recipient, item_id FROM deliveries")}


def runs(store: SQLiteStore) -> list[tuple[str, str]]:
    with sqlite3.connect(store.path) as c:
        return list(c.execute("SELECT period_end, status FROM digest_runs ORDER BY period_end"))


def parts(msg: EmailMessage) -> tuple[str, str]:
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    made = self_signed_cert(tmp_path_factory.mktemp("tls"))
    if isinstance(made, str):
        pytest.skip(f"no self-signed certificate for the TLS tests: {made}")
    return made


# -- the message -----------------------------------------------------------------------


def test_one_mail_both_parts_links_sections_sources_and_headers(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer) -> None:
    both = add(store, "w1", "Moscow and Tehran sign a gas deal", {"russia-iran": 0.93, "energy": 0.7},
               url="https://news.example/gas-deal", reasons=("gas", "tehran", "moscow"))
    add(store, "g7", "Moscow and Tehran sign a gas deal (Gazette)", {"russia-iran": 0.93},
        feed="gazette", url="https://news.example/gas-deal?utm_source=x")  # another URL: 2 items
    same = add(store, "g8", "Same story, second feed", {}, feed="gazette",
               url="https://news.example/gas-deal")  # the same canonical URL: one item
    assert same == both
    drones = add(store, "w2", "Drone parts shipped across the Caspian", {"russia-iran": 0.81})
    iran = add(store, "w3", "Iran's parliament debates budget", {"iran": 0.88})
    weak = add(store, "w4", "Weakly related", {"russia-iran": 0.2})
    ukraine = add(store, "w5", "Front line report", {"ukraine": 0.97})

    outcomes = send_digests(make_config(tmp_path / "inst", smtp), store, now=NOW)

    assert [(o.status, o.items, o.recipients) for o in outcomes] == [("sent", 4, (DESK,))]
    assert len(smtp.received) == 1
    got = smtp.received[0]
    assert got.rcpt_tos == (DESK,) and got.mail_from == "digest@aggregator.example"
    msg = got.message
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["To"] == DESK and msg["From"] == SENDER
    assert msg["List-Id"] == "russia-iran-desk digest <russia-iran-desk.aggregator.local>"
    assert re.fullmatch(r"<\S+@aggregator\.example>", msg["Message-ID"])
    assert msg["Date"].datetime == NOW
    assert msg["Subject"].startswith("[russia-iran-desk] Fri 20 Nov 2026: 4 items, 2 tags – ")
    text, html = parts(msg)
    # Sections by tag, most items first; each item once, in its best tag's section.
    assert text.index("== russia-iran (3) ==") < text.index("== iran (1) ==")
    assert html.index("russia-iran &middot; 3") < html.index("iran &middot; 1")
    for item_id in (both, drones, iran):
        assert (DESK, item_id) in ledger(store)
    assert not {(DESK, weak), (DESK, ukraine)} & ledger(store)
    assert html.count("Moscow and Tehran sign a gas deal</a>") == 1
    # One item under one canonical URL, carried by two feeds: both sources shown.
    assert '<a href="https://news.example/gas-deal" style="color:#1d1d1b;' in html
    assert re.search(r'<a href="https://news.example/gas-deal"[^>]*>wire</a> · '
                     r'<a href="https://news.example/gas-deal"[^>]*>gazette</a>', html)
    assert "wire, gazette | 2026-11-20 03:30 UTC" in text
    # Tags with scores, and the reasons for the subscription's tags.
    assert "russia-iran 0.93" in html and "energy 0.70" in html
    assert "why russia-iran: gas, tehran, moscow" in text
    assert "Weakly related" not in text and "Front line report" not in text
    assert "<script" not in html and "<img" not in html and "http://" not in html


def test_feed_markup_and_urls_are_escaped_and_sanitized(tmp_path: Path, store: SQLiteStore,
                                                        smtp: SmtpServer) -> None:
    add(store, "x1", "<b>Bold</b> & <script>alert(1)</script>", {"iran": 0.9},
        url="javascript:alert(1)", summary="<p onclick='x()'>Text <img src=https://t.example/p.gif></p>")
    send_digests(make_config(tmp_path / "inst", smtp), store, now=NOW)
    text, html = parts(smtp.received[0].message)
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;script&gt;" in html
    assert "<script" not in html and "javascript:" not in html and "<img" not in html
    assert "onclick" not in html and "t.example" not in html
    assert "* <b>Bold</b> & <script>alert(1)</script>" in text  # plain text stays as written


def test_a_title_with_cr_lf_does_not_inject_a_header(tmp_path: Path, store: SQLiteStore,
                                                     smtp: SmtpServer) -> None:
    add(store, "evil", "Breaking\r\nBcc: victim@evil.example\r\nX-Injected: yes", {"russia-iran": 0.99})
    [outcome] = send_digests(make_config(tmp_path / "inst", smtp), store, now=NOW)
    assert outcome.status == "sent"
    got = smtp.received[0]
    assert got.rcpt_tos == (DESK,)
    assert got.message["Bcc"] is None and got.message["X-Injected"] is None
    headers = got.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^(Bcc|X-Injected):", headers, re.MULTILINE | re.IGNORECASE)
    assert "Breaking Bcc: victim@evil.example X-Injected: yes" in got.message["Subject"]


# -- exactly once ----------------------------------------------------------------------


def test_the_second_send_sends_nothing_new(tmp_path: Path, store: SQLiteStore,
                                           smtp: SmtpServer) -> None:
    config = make_config(tmp_path / "inst", smtp)
    first = add(store, "a", "First", {"iran": 0.9})
    assert send_digests(config, store, now=NOW)[0].status == "sent"
    # The same run again (a cron job firing twice, a restart): not due, nothing sent.
    assert send_digests(config, store, now=NOW + timedelta(minutes=5))[0].status == "not-due"
    # Next day: the window overlaps the last one a little, but the ledger holds "First".
    second = add(store, "b", "Second", {"iran": 0.9}, seen=NOW + timedelta(hours=2))
    [outcome] = send_digests(config, store, now=NOW + timedelta(days=1))
    assert (outcome.status, outcome.items) == ("sent", 1)
    assert len(smtp.received) == 2
    text, _ = parts(smtp.received[1].message)
    assert "Second" in text and "First" not in text
    assert ledger(store) == {(DESK, first), (DESK, second)}
    # Nothing new the day after: no mail (skip_empty), the period is still marked sent.
    [empty] = send_digests(config, store, now=NOW + timedelta(days=2))
    assert empty.status == "empty" and len(smtp.received) == 2
    assert [s for _, s in runs(store)] == ["sent", "sent", "sent"]


def test_a_refused_message_leaves_the_ledger_untouched_and_the_next_run_delivers(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer) -> None:
    config = make_config(tmp_path / "inst", smtp)
    item = add(store, "a", "Refused at first", {"iran": 0.9})
    smtp.handler.reject_data = "554 5.7.1 message refused by policy"
    [failed] = send_digests(config, store, now=NOW)
    assert failed.status == "failed" and "554" in failed.detail and "refused" in failed.detail
    assert ledger(store) == set() and runs(store) == []  # the claim was released
    smtp.handler.reject_data = None
    [sent] = send_digests(config, store, now=NOW + timedelta(minutes=10))
    assert sent.status == "sent" and ledger(store) == {(DESK, item)}
    assert len(smtp.received) == 1


def test_an_unreachable_server_marks_nothing(tmp_path: Path, store: SQLiteStore) -> None:
    add(store, "a", "Nobody listening", {"iran": 0.9})
    [failed] = send_digests(make_config(tmp_path / "inst", None), store, now=NOW)
    assert failed.status == "failed" and "127.0.0.1:2525" in failed.detail
    assert ledger(store) == set() and runs(store) == []


def test_a_refused_recipient_gets_the_items_on_the_next_run_and_only_they(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer) -> None:
    config = make_config(tmp_path / "inst", smtp, to=[DESK, "away@example.org"])
    item = add(store, "a", "Two readers", {"iran": 0.9})
    smtp.handler.refuse_rcpt = {"away@example.org"}
    [partial] = send_digests(config, store, now=NOW)
    assert partial.status == "failed" and "away@example.org" in partial.detail
    assert ledger(store) == {(DESK, item)}
    smtp.handler.refuse_rcpt = set()
    [retry] = send_digests(config, store, now=NOW + timedelta(minutes=10))
    assert retry.status == "sent" and retry.recipients == ("away@example.org",)
    assert [r.rcpt_tos for r in smtp.received] == [(DESK,), ("away@example.org",)]
    assert ledger(store) == {(DESK, item), ("away@example.org", item)}


def test_after_three_days_of_downtime_one_digest_covers_the_gap(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer) -> None:
    config = make_config(tmp_path / "inst", smtp)
    add(store, "old", "Sent before the outage", {"iran": 0.9}, seen=NOW - timedelta(days=3, hours=2))
    assert send_digests(config, store, now=NOW - timedelta(days=3))[0].status == "sent"
    ids = {add(store, f"d{d}", f"Day {d} news", {"russia-iran": 0.9},
               seen=NOW - timedelta(days=3) + timedelta(days=d, hours=-3)) for d in (1, 2, 3)}
    # Down for three days; back at 07:20 on the fourth.
    [outcome] = send_digests(config, store, now=NOW + timedelta(minutes=20))
    assert (outcome.status, outcome.items) == ("sent", 3)
    assert outcome.period is not None and outcome.period.missed == 3
    assert len(smtp.received) == 2
    text, _ = parts(smtp.received[1].message)
    assert all(f"Day {d} news" in text for d in (1, 2, 3)) and "Sent before" not in text
    assert "covers 3 scheduled digests" in text
    assert {i for _, i in ledger(store)} >= ids
    assert len(runs(store)) == 2


def test_items_stored_after_the_cut_off_go_in_the_next_digest(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer) -> None:
    config = make_config(tmp_path / "inst", smtp)
    add(store, "in", "Before the cut-off", {"iran": 0.9})
    late = add(store, "late", "Stored while the digest was built", {"iran": 0.9},
               seen=NOW + timedelta(seconds=30))
    send_digests(config, store, now=NOW)
    assert "Stored while" not in parts(smtp.received[0].message)[0]
    send_digests(config, store, now=NOW + timedelta(days=1))
    assert "Stored while" in parts(smtp.received[1].message)[0]
    assert (DESK, late) in ledger(store)


def test_items_published_days_ago_but_first_seen_now_are_not_skipped(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer) -> None:
    # A feed back after days of failure brings what it published meanwhile.
    config = make_config(tmp_path / "inst", smtp)
    old = add(store, "old", "Published while the feed was down", {"iran": 0.9},
              published=SEEN - timedelta(days=10))
    send_digests(config, store, now=NOW)
    assert "Published while the feed was down" in parts(smtp.received[0].message)[0]
    assert (DESK, old) in ledger(store)


def test_a_fresh_claim_blocks_a_second_sender_and_a_stale_one_is_taken_over(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer) -> None:
    config = make_config(tmp_path / "inst", smtp)
    add(store, "a", "Claimed", {"iran": 0.9})
    assert store.claim_digest("russia-iran-desk", NOW, "other-daemon", NOW, NOW - timedelta(minutes=15))
    [busy] = send_digests(config, store, now=NOW + timedelta(minutes=1))
    assert busy.status == "busy" and smtp.received == []
    # The other daemon died holding it: 20 minutes on, the claim is stale.
    [taken] = send_digests(config, store, now=NOW + timedelta(minutes=20))
    assert taken.status == "sent" and len(smtp.received) == 1
    assert runs(store) == [("2026-11-20T07:00:00Z", "sent")]


def test_two_connections_claiming_one_period_only_one_wins(store: SQLiteStore) -> None:
    other = SQLiteStore(store.path)  # a second daemon on the same database file
    stale = NOW - timedelta(minutes=15)
    try:
        assert store.claim_digest("desk", NOW, "a", NOW, stale)
        assert not other.claim_digest("desk", NOW, "b", NOW + timedelta(minutes=1), stale)
        # Released after a failure: free again.
        store.release_digest("desk", NOW, "a", [], NOW)
        assert other.claim_digest("desk", NOW, "b", NOW, stale)
        other.complete_digest("desk", NOW, "b", [], NOW)
        # Sent: never claimed again, however old.
        later = NOW + timedelta(days=1)
        assert not store.claim_digest("desk", NOW, "a", later, later)
        assert store.last_digest("desk") == NOW
    finally:
        other.close()


def test_dry_run_sends_and_records_nothing(tmp_path: Path, store: SQLiteStore,
                                           smtp: SmtpServer) -> None:
    add(store, "a", "Would go", {"iran": 0.9})
    [plan] = send_digests(make_config(tmp_path / "inst", smtp), store, dry_run=True, now=NOW)
    assert (plan.status, plan.items, plan.recipients) == ("dry-run", 1, (DESK,))
    assert smtp.received == [] and ledger(store) == set() and runs(store) == []


# -- TLS and AUTH ----------------------------------------------------------------------


@pytest.fixture
def trust(cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The client trusts the test certificate the way an operator would point it at a CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    return cert


def test_starttls_with_auth(tmp_path: Path, store: SQLiteStore, trust: tuple[Path, Path],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    item = add(store, "a", "Over TLS", {"iran": 0.9})
    with SmtpServer(cert=trust, users={"desk": "s3cret pass"}) as server:
        config = make_config(tmp_path / "inst", server, security="starttls", username="desk")
        monkeypatch.setenv("TEST_DIGEST_SMTP_PASSWORD", "wrong")
        [denied] = send_digests(config, store, now=NOW)
        assert denied.status == "failed" and "login" in denied.detail
        assert ledger(store) == set() and runs(store) == []
        monkeypatch.setenv("TEST_DIGEST_SMTP_PASSWORD", "s3cret pass")
        [sent] = send_digests(config, store, now=NOW + timedelta(minutes=1))
    assert sent.status == "sent" and ledger(store) == {(DESK, item)}
    [got] = server.received
    assert got.tls and got.authenticated


def test_starttls_refuses_an_untrusted_certificate(tmp_path: Path, store: SQLiteStore,
                                                   cert: tuple[Path, Path]) -> None:
    add(store, "a", "Not to an impostor", {"iran": 0.9})
    with SmtpServer(cert=cert) as server:
        [failed] = send_digests(make_config(tmp_path / "inst", server, security="starttls"),
                                store, now=NOW)
    assert failed.status == "failed" and "certificate" in failed.detail.lower()
    assert server.received == [] and ledger(store) == set()


def test_implicit_tls(tmp_path: Path, store: SQLiteStore, trust: tuple[Path, Path]) -> None:
    add(store, "a", "Over SMTPS", {"iran": 0.9})
    with SmtpServer(cert=trust, implicit_tls=True) as server:
        [sent] = send_digests(make_config(tmp_path / "inst", server, security="ssl"), store, now=NOW)
    assert sent.status == "sent" and len(server.received) == 1


def test_a_username_without_the_password_variable_fails_clearly(
        tmp_path: Path, store: SQLiteStore, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DIGEST_SMTP_PASSWORD", raising=False)
    add(store, "a", "x", {"iran": 0.9})
    [failed] = send_digests(make_config(tmp_path / "inst", smtp, username="desk"), store, now=NOW)
    assert failed.status == "failed" and "TEST_DIGEST_SMTP_PASSWORD" in failed.detail


# -- saved queries and previews --------------------------------------------------------


def test_a_missing_saved_query_is_a_one_line_config_error(tmp_path: Path, store: SQLiteStore,
                                                          smtp: SmtpServer) -> None:
    home = tmp_path / "inst"
    config = make_config(home, smtp, tags=[], query="caspian")
    with pytest.raises(ConfigError, match=r"^config/queries.toml: expected .*no such file$"):
        send_digests(config, store, now=NOW)
    (home / "config" / "queries.toml").write_text('[other]\ntags = ["iran"]\n')
    with pytest.raises(ConfigError, match=r"caspian.*saved: other") as err:
        send_digests(config, store, now=NOW)
    assert "\n" not in str(err.value)
    assert smtp.received == [] and runs(store) == []


def test_a_saved_query_selects_the_items(tmp_path: Path, store: SQLiteStore,
                                         smtp: SmtpServer) -> None:
    home = tmp_path / "inst"
    config = make_config(home, smtp, tags=[], query="caspian")
    (home / "config" / "queries.toml").write_text(
        '[caspian]\nany_tags = ["russia-iran", "iran"]\nnot_tags = ["ukraine"]\nmin_score = 0.6\n'
        'feeds = ["gazette"]\n')
    add(store, "g1", "From the Gazette", {"iran": 0.9}, feed="gazette")
    add(store, "g2", "Gazette, also Ukraine", {"iran": 0.9, "ukraine": 0.8}, feed="gazette")
    add(store, "w1", "From the wire", {"iran": 0.9})
    add(store, "g3", "Gazette, low score", {"iran": 0.55}, feed="gazette")
    [sent] = send_digests(config, store, now=NOW)
    assert sent.items == 1
    text, _ = parts(smtp.received[0].message)
    assert "From the Gazette" in text and "== iran (1) ==" in text


def test_preview_writes_html_and_text_and_records_nothing(tmp_path: Path, store: SQLiteStore) -> None:
    config = make_config(tmp_path / "inst")
    add(store, "a", "Previewed", {"russia-iran": 0.9})
    out = tmp_path / "out" / "desk.html"
    paths = preview_digest(config, store, None, None, out, NOW + timedelta(hours=1))
    assert paths == [out, out.with_suffix(".txt")]
    assert "Previewed" in out.read_text() and "Previewed" in out.with_suffix(".txt").read_text()
    assert ledger(store) == set() and runs(store) == []
    default = preview_digest(config, store, "russia-iran-desk", NOW - timedelta(days=1), None, NOW)
    assert default[0] == tmp_path / "inst" / "var" / "digest-preview" / "russia-iran-desk.html"


def test_templates_are_overridable_from_config_templates(tmp_path: Path, store: SQLiteStore,
                                                         smtp: SmtpServer) -> None:
    home = tmp_path / "inst"
    config = make_config(home, smtp)
    (home / "config" / "templates").mkdir()
    (home / "config" / "templates" / "digest.txt").write_text(
        "OUR TEMPLATE {{ digest.item_count }}{% for i in digest.items %} {{ i.title }}{% endfor %}\n")
    add(store, "a", "Custom", {"iran": 0.9})
    send_digests(config, store, now=NOW)
    text, html = parts(smtp.received[0].message)
    assert text.strip() == "OUR TEMPLATE 1 Custom" and "Custom</a>" in html


# -- how it looks ----------------------------------------------------------------------


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html: Path, png: Path, profile: Path) -> None:
    assert CHROMIUM is not None
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=800,1200",
         html.resolve().as_uri()],
        check=True, capture_output=True, timeout=60, env={**os.environ, "HOME": str(profile)})


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_preview_renders_in_a_browser(tmp_path: Path, store: SQLiteStore) -> None:
    for n in range(6):
        add(store, f"i{n}", f"Story number {n} about Moscow and Tehran", {"russia-iran": 0.6 + n / 20},
            summary="Officials met in the Caspian port city to discuss rail links and grain. " * 3)
    [html, _] = preview_digest(make_config(tmp_path / "inst"), store, None, None, None, NOW)
    png = tmp_path / "digest.png"
    screenshot(html, png, tmp_path / "profile")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


# -- the commands ----------------------------------------------------------------------


def test_cli_preview_and_send(instance_dir: Path, smtp: SmtpServer,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("classifiers.taxonomy", reason="the taxonomy loader is not built yet")
    from click.testing import CliRunner

    from aggregator.cli import cli
    from aggregator.config import load_taxonomy
    from aggregator.timeutil import utcnow

    tag = load_taxonomy(Instance(instance_dir)).tags[0].name
    with open(instance_dir / "config" / "aggregator.toml", "a") as f:
        f.write(f'\n[[digest]]\nname = "desk"\nto = ["{DESK}"]\ntags = ["{tag}"]\nat = "00:00"\n')
    for key, value in {"HOST": "127.0.0.1", "PORT": str(smtp.port), "SECURITY": "none"}.items():
        monkeypatch.setenv(f"AGGREGATOR_SMTP_{key}", value)
    seeded = SQLiteStore(instance_dir / "var" / "aggregator.db")
    seeded.sync_feeds([FeedConfig("wire", "https://wire.example/rss")], utcnow())
    add(seeded, "a", "From the command line", {tag: 0.9}, seen=utcnow() - timedelta(hours=1))
    seeded.close()
    home = ["--home", str(instance_dir)]
    runner = CliRunner()

    shown = runner.invoke(cli, [*home, "digest", "preview", "--out", str(instance_dir / "p.html")])
    assert shown.exit_code == 0, shown.output
    assert "From the command line" in (instance_dir / "p.txt").read_text()
    dry = runner.invoke(cli, [*home, "digest", "send", "--dry-run"])
    assert dry.exit_code == 0 and "desk: would send 1 item" in dry.output and not smtp.received
    sent = runner.invoke(cli, [*home, "digest", "send", "desk"])
    assert sent.exit_code == 0 and f"desk: sent 1 item to {DESK}" in sent.output, sent.output
    again = runner.invoke(cli, [*home, "digest", "send"])
    assert again.exit_code == 0 and "desk: not due; next" in again.output
    assert len(smtp.received) == 1
    unknown = runner.invoke(cli, [*home, "digest", "send", "dsek"])
    assert unknown.exit_code == 2 and "did you mean 'desk'" in unknown.output
