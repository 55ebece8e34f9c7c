"""The whole pipeline from the outside: a real feed server on 127.0.0.1, the real CLI in a
subprocess, a real SQLite file, the default model trained from the starter corpus."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.demo import demo_feed_files, feed_name
from aggregator.demo.server import FeedFileServer

RUSSIA_IRAN = {
    "Russian and Iranian navies hold joint search-and-rescue drill off Bandar Anzali",
    "Analysis: Moscow and Tehran find common cause against the 'Trump Route'",
    "Gazprom begins winter gas flows to Iran via Azerbaijan under swap deal",
    "Rasht–Astara railway: Iran completes land acquisition as Russian loan tranche is released",
    "From Shahed to Geran: how Russia's drone localisation changes Iran's leverage",
    "One year on, the Russia–Iran treaty is a partnership without an alliance",
    "Su-35s for Iran: what the first deliveries mean for the Gulf air balance",
    "Iranian Shetab cards now accepted at Russian ATMs nationwide",
    "Soyuz rocket carries two Iranian satellites into orbit from Vostochny",
    "Lavrov and Araghchi pledge to speed up work under strategic partnership treaty",
    "Russia has received more Iranian Fath-360 missiles, Ukrainian intelligence says",
    "Rosatom says Bushehr-2 reactor building reaches dome stage",
}
NOT_RUSSIA_IRAN = {
    "Deterrence after the Twelve-Day War: Israel and Iran's new red lines",  # Iran–Israel
    "Israel says Iran is rebuilding missile production lines, warns it will act",
    "Iran stages air-defence drills around Natanz, warns Israel against new strikes",
    "Iran's parliament sends Pezeshkian's budget back for revision",  # Tehran only
    "Tehran cuts night-time water pressure as reservoirs fall below 10 percent",
    "IAEA board told Iran still bars inspectors from Fordow and Isfahan",
    "Russia's 2027 budget: guns, taxes and a shrinking cushion",  # Moscow only
    "Putin replaces three regional governors in Kremlin reshuffle",
    "Bank of Russia holds key rate at 13% as inflation slows and growth stalls",
}


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})


@pytest.fixture
def served_instance(instance_with_model: Path):
    with FeedFileServer(demo_feed_files()) as server:
        feeds = "".join(
            f'[[feed]]\nname = "{feed_name(p)}"\nurl = "{server.url(p.name)}"\n'
            + ('tags = ["analysis"]\n' if p.name.startswith("eurasia") else "")
            for p in demo_feed_files())
        (instance_with_model / "config" / "feeds.toml").write_text(feeds)
        yield instance_with_model


def test_fetch_then_query_finds_the_russia_iran_pieces(served_instance: Path) -> None:
    fetched = run(served_instance, "fetch")
    assert fetched.returncode == 0, fetched.stderr
    assert "6 ok, 0 not modified, 0 failed" in fetched.stdout
    assert "0 updated" in fetched.stdout

    everything = [json.loads(line) for line in
                  run(served_instance, "query", "--limit", "0", "--format", "jsonl").stdout.splitlines()]
    assert len(everything) >= 36
    first = everything[0]
    assert set(first) >= {"id", "title", "url", "feed", "published", "summary", "tags"}
    assert first["published"].endswith("Z")
    assert all(set(t) == {"tag", "score", "source"} for i in everything for t in i["tags"])
    assert [i["published"] for i in everything] == sorted(
        (i["published"] for i in everything), reverse=True)

    proc = run(served_instance, "query", "--tag", "russia-iran", "--limit", "0")
    assert proc.returncode == 0  # piped: JSON lines by default
    tagged = {json.loads(line)["title"] for line in proc.stdout.splitlines()}
    missed = RUSSIA_IRAN - tagged
    assert len(missed) <= 2, f"Russia–Iran pieces not tagged russia-iran: {missed}"
    assert not (tagged & NOT_RUSSIA_IRAN), "tagged russia-iran but about one side or Iran–Israel"
    # The relationship implies its parts.
    for line in proc.stdout.splitlines():
        tags = {t["tag"] for t in json.loads(line)["tags"]}
        assert {"russia", "iran"} <= tags

    # The feed's own tag is applied as a rule.
    analysis = [json.loads(line) for line in
                run(served_instance, "query", "--tag", "analysis", "--limit", "0").stdout.splitlines()]
    assert any(t["source"] == "rule" for i in analysis for t in i["tags"] if t["tag"] == "analysis")

    # A second pass: the server answers 304 to our validators; nothing new, nothing updated.
    again = run(served_instance, "fetch", "--all")
    assert again.returncode == 0, again.stderr
    assert "0 ok, 6 not modified, 0 failed; items: 0 new, 0 updated" in again.stdout


def test_query_exit_codes(served_instance: Path) -> None:
    assert run(served_instance, "fetch").returncode == 0
    assert run(served_instance, "query", "--since", "2000-01-01", "--limit", "1").returncode == 0
    nothing = run(served_instance, "query", "--since", "2099-01-01")
    assert nothing.returncode == 1 and nothing.stdout == ""
    bad = run(served_instance, "query", "--since", "last tuesday")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --since: expected an ISO date")


def test_demo_runs_offline_and_writes_a_digest_preview(instance_with_model: Path) -> None:
    proc = run(instance_with_model, "demo")
    assert proc.returncode == 0, proc.stderr
    preview = instance_with_model / "var" / "demo" / "digest-preview.html"
    assert f"digest preview: {preview}" in proc.stdout
    html = preview.read_text()
    assert "russia-iran" in html and "<script" not in html
    assert preview.with_suffix(".txt").read_text().strip()
    # The table lists the Russia–Iran pieces first.
    rows = [ln.split() for ln in proc.stdout.splitlines()
            if re.match(r"\s*\d+\s+\d{4}-\d\d-\d\d\s", ln)]
    assert len(rows) >= 30
    env = {**os.environ, "AGGREGATOR_DATABASE_URL":
           f"sqlite:///{instance_with_model / 'var' / 'demo' / 'aggregator.db'}"}
    first = subprocess.run([sys.executable, "-m", "aggregator", "--home", str(instance_with_model),
                            "show", rows[0][0], "--format", "json"],
                           capture_output=True, text=True, env=env)
    assert "russia-iran" in [t["tag"] for t in json.loads(first.stdout)["tags"]]
    assert (instance_with_model / "var" / "demo" / "aggregator.db").exists()


def test_help_lists_every_command(tmp_path: Path) -> None:
    proc = run(tmp_path, "--help")
    assert proc.returncode == 0
    for command in ("init", "fetch", "query", "demo"):
        assert f"  {command} " in proc.stdout
    for command in ("init", "fetch", "query", "demo"):
        assert run(tmp_path, command, "--help").returncode == 0


def test_init_creates_a_working_instance(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    proc = subprocess.run([sys.executable, "-m", "aggregator", "init", str(home)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in ("aggregator.toml", "feeds.toml", "taxonomy.toml"):
        assert (home / "config" / name).read_text().lstrip().startswith("#")
    assert (home / "var").is_dir()
    # An empty database answers a query with "nothing" (exit 1), not an error.
    assert run(home, "query").returncode == 1
