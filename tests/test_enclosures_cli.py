"""Enclosures and the updated date, as the commands show them: ``show``, ``query --fields``
and the JSON lines (new fields; the old ones unchanged), while CSV keeps its columns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.store.sqlite import SQLiteStore
from aggregator.types import Enclosure, Entry
from aggregator.views import FeedConfig

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    return subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_show_query_fields_and_json_carry_enclosures_and_updated(tmp_path: Path) -> None:
    home = tmp_path / "inst"
    (home / "var").mkdir(parents=True)
    shutil.copytree(ROOT / "config", home / "config")
    with SQLiteStore(home / "var" / "aggregator.db") as store:
        store.sync_feeds([FeedConfig("pods", "https://pods.example/rss")], NOW)
        feed = store.feeds()[0]
        (item_id,) = store.save_entries(feed, [Entry(
            key="e1", title="Episode 1", url="https://pods.example/1", canonical_url=None,
            summary="An hour on the Caspian.", content_html="", published=NOW,
            updated=NOW + timedelta(hours=3), content_hash="1",
            enclosures=(Enclosure("https://pods.example/1.mp3", "audio/mpeg", 52_000_000),))],
            NOW).new_item_ids

    shown = run(home, "show", str(item_id), "--format", "text")
    assert shown.returncode == 0, shown.stderr
    assert "updated 2026-11-20T15:00:00Z" in shown.stdout
    assert "https://pods.example/1.mp3  (audio/mpeg, 52,000,000 bytes)" in shown.stdout
    detail = json.loads(run(home, "show", str(item_id), "--format", "json").stdout)
    assert detail["updated"] == "2026-11-20T15:00:00Z" and len(detail["enclosures"]) == 1

    lines = run(home, "query", "--format", "jsonl").stdout.splitlines()
    row = json.loads(lines[0])
    assert {"id", "title", "url", "feed", "published", "summary", "categories", "tags"} <= set(row)
    assert row["updated"] == "2026-11-20T15:00:00Z"
    assert row["enclosures"] == [{"url": "https://pods.example/1.mp3", "type": "audio/mpeg",
                                  "length": 52_000_000}]

    picked = run(home, "query", "--fields", "id,enclosures,updated", "--format", "jsonl")
    assert json.loads(picked.stdout) == {"id": item_id, "enclosures": row["enclosures"],
                                         "updated": row["updated"]}
    csv_header = run(home, "query", "--format", "csv").stdout.splitlines()[0]
    assert csv_header == "id,title,url,feed,published,summary,categories,tags"
    named = run(home, "query", "--format", "csv", "--fields", "id,enclosures").stdout.splitlines()
    assert named == ["id,enclosures", f"{item_id},https://pods.example/1.mp3"]
