"""Wrong, empty, huge, negative and hostile input through the real CLI: no traceback, ever,
the documented exit code, and nothing hostile reaching a terminal, a spreadsheet or a link.

Most of it is one table of (command line, exit code, message fragment), run as subprocesses
against one instance prepared per module. The items in it were stored as an old version
stored them, before normalization stripped control characters: output must clean them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ESC = "\x1b"
# A title that clears the screen, colours itself, plants a disguised hyperlink, rings the bell
# and carries C1 and C0 controls.
HOSTILE_TITLE = (f"{ESC}[2J{ESC}[31mRed alert{ESC}[0m {ESC}]8;;https://evil.example/{ESC}\\"
                 f"click{ESC}]8;;{ESC}\\ bell\x07 c1\x9b31m nul\x00 cr\r end [bold]markup[/bold]")
CLEAN_TITLE = "Red alert click bell c1 nul cr end [bold]markup[/bold]"
LONG_TITLE = ("Moscow and Tehran sign a twenty-year treaty on energy, arms and space "
              "cooperation as sanctions bite on both economies")
LONG_REASON = "paywalled since the redesign; " * 6


def cli(home: Path | None, *args: str, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The console script as a user runs it, piped."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGGREGATOR_", "_AGGREGATOR"))}
    home_args = ["--home", str(home)] if home is not None else []
    return subprocess.run([sys.executable, "-c", "from aggregator.launch import main; main()",
                           *home_args, *args], capture_output=True, text=True, timeout=120,
                          env={**base, "NO_COLOR": "1", **(env or {})}, input=stdin,
                          cwd=home if home is not None else None)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance holding hostile items, written through the store as older versions did."""
    from aggregator.store.sqlite import SQLiteStore
    from aggregator.types import Entry
    from aggregator.views import FeedConfig, TagScore

    home = tmp_path_factory.mktemp("hardening") / "inst"
    (home / "var").mkdir(parents=True)
    shutil.copytree(ROOT / "config", home / "config")
    (home / "config" / "feeds.toml").write_text(
        '[[feed]]\nname = "wire"\nurl = "https://wire.example.org/rss"\n\n'
        '[[feed]]\nname = "paywalled-outlet"\nurl = "https://p.example.org/rss"\n')
    store = SQLiteStore(home / "var" / "aggregator.db")
    try:
        store.sync_feeds([FeedConfig("wire", "https://wire.example.org/rss"),
                          FeedConfig("paywalled-outlet",
                                     "https://p.example.org/rss")], NOW)
        feed = store.feeds(["wire"])[0]
        rows = [
            (HOSTILE_TITLE, "javascript:alert(4)", f"text {ESC}[2J with escapes"),
            ("=HYPERLINK(\"https://evil.example/\",\"x\")", "data:text/html,<script>x</script>",
             "+1 formula summary"),
            ("@SUM(1+1)", "https://wire.example.org/ok", "-2 starts with minus"),
            (LONG_TITLE, "http://wire.example.org/long", "plain text"),
        ]
        entries = [Entry(key=f"k{i}", title=title, url=url, canonical_url=None, summary=text,
                         content_html="<p>text</p>", published=NOW, content_hash=str(i),
                         categories=(f"{ESC}[1msection",))
                   for i, (title, url, text) in enumerate(rows)]
        ids = store.save_entries(feed, entries, NOW).new_item_ids
        store.write_model_tags([(i, [TagScore("iran", 0.9, "model", "v1", (f"tehran{ESC}[5m",)),
                                     TagScore("russia-iran", 0.8), TagScore("nuclear", 0.7),
                                     TagScore("sanctions", 0.6), TagScore("energy", 0.5)])
                                for i in ids], NOW)
        store.set_feed_disabled("paywalled-outlet",
                                f"{ESC}[2J{LONG_REASON}", NOW)
    finally:
        store.close()
    return home


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bad input files, and a plain file to put paths under."""
    d = tmp_path_factory.mktemp("files")
    (d / "bad.jsonl").write_text("{bad\n")
    (d / "list.jsonl").write_text("[1, 2]\n")
    (d / "latin1.jsonl").write_bytes(b"\xff\xfe{}\n")
    (d / "plain").write_text("not a directory\n")
    return d


# (command line, exit code, a fragment of stderr). {files} is the directory above.
CASES = [
    # the README's usage errors: exit 2 with a suggestion
    ("query --not-tag isreal", 2, "unknown tag 'isreal' (did you mean 'israel'?)"),
    ("query --any-tag iran --any-tag irann", 2, "unknown tag 'irann'"),
    ("query --tag irann", 2, "did you mean 'iran'"),
    ("query --feed wier", 2, "unknown feed 'wier' (did you mean 'wire'?)"),
    ("query --fields id,titel", 2, "did you mean 'title'"),
    ("query --limit 9223372036854775808", 2, "not in the range"),
    ("query --limit -1", 2, "not in the range"),
    ("query --min-score nan", 2, "--min-score"),
    ("query --min-score 2", 2, "not in the range"),
    ("query --since 999999999d", 2, "--since"),
    ("query --until 10000000000000d", 2, "--until"),
    ("query --since 2026-13-45", 2, "--since"),
    ("query --format xml", 2, "Invalid value for '--format'"),
    ("query --csv-raw=yes", 2, "does not take a value"),
    ("show 9223372036854775808", 2, "not in the range"),
    ("show 99999", 2, "no item with id 99999"),
    ("tags --since 999999999d", 2, "--since"),
    ("reclassify --since 999999999d", 2, "--since"),
    ("label 99999 --add iran", 2, "no item with id 99999"),
    ("label 1 --add irann", 2, "did you mean 'iran'"),
    ("label 9223372036854775808 --add iran", 2, "not in the range"),
    ("label --suggest 0", 2, "not in the range"),
    ("fetchh", 2, "Did you mean 'fetch'?"),
    ("feeds lst", 2, "Did you mean 'list'?"),
    ("models use nosuch", 2, "no model version 'nosuch'"),
    # training data: a clean message naming the file, never a traceback
    ("train --no-starter --no-labels --data {files}/bad.jsonl", 2, "bad.jsonl:1: invalid JSON"),
    ("train --no-starter --no-labels --data {files}/list.jsonl", 2,
     "list.jsonl:1: expected a JSON object, found list"),
    ("train --no-starter --no-labels --data {files}/latin1.jsonl", 2, "not UTF-8"),
    ("evaluate --data {files}/bad.jsonl", 2, "invalid JSON"),
    ("classify --data {files}/list.jsonl", 2, "expected a JSON object"),
    # paths it cannot create
    ("init /proc/aggregator-x", 2, "cannot create the instance /proc/aggregator-x"),
    ("init {files}/plain/x", 2, "Not a directory"),
    ("init ''", 2, "give the directory"),
    ("digest preview --since 999999999d", 2, "--since"),
]


@pytest.mark.parametrize("line, code, fragment", CASES, ids=[c[0] for c in CASES])
def test_wrong_input_exits_with_the_documented_code(home: Path, files: Path, line: str,
                                                    code: int, fragment: str) -> None:
    import shlex

    proc = cli(home, *shlex.split(line.format(files=files)))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert fragment in proc.stderr, proc.stderr


def test_not_an_instance_names_the_directory(tmp_path: Path) -> None:
    for args in (["query"], ["feeds", "list"], ["status"]):
        proc = cli(None, *args, env={"AGGREGATOR_HOME": str(tmp_path)})
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"{tmp_path}: expected an instance" in proc.stderr, proc.stderr
        assert "aggregator init DIR" in proc.stderr


def test_a_database_path_it_cannot_create_is_an_error_not_a_traceback(home: Path) -> None:
    proc = cli(home, "query", env={"AGGREGATOR_DATABASE_URL": "sqlite:////proc/x/y.db"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot open the database /proc/x/y.db" in proc.stderr


# -- output safe wherever it goes --------------------------------------------------------


def _controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\t\n") or 0x7f <= ord(c) <= 0x9f]


@pytest.mark.parametrize("args", [
    ["query", "--format", "table"],
    ["query", "--format", "table", "--fields", "id,title,url,summary,categories,tags"],
    ["show", "1", "--format", "text"],
    ["tags", "--since", "2026-11-01", "--format", "table"],
    ["feeds", "list", "--format", "table"],
    ["feeds", "status", "--format", "table"],
], ids=" ".join)
def test_no_control_character_reaches_a_terminal(home: Path, args: list[str]) -> None:
    proc = cli(home, *args, env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert _controls(proc.stdout) == []
    assert "evil.example" not in proc.stdout.replace('HYPERLINK("https://evil.example/', "")


def test_hostile_title_is_shown_as_text(home: Path) -> None:
    shown = cli(home, "show", "1", "--format", "text").stdout
    assert shown.splitlines()[0] == CLEAN_TITLE  # rich markup stays literal text too
    table = cli(home, "query", "--format", "table", "--fields", "id,title",
                env={"COLUMNS": "200"}).stdout
    assert CLEAN_TITLE in table


def test_json_escapes_every_control_character_and_keeps_the_text(home: Path) -> None:
    for fmt in ("jsonl", "json"):
        proc = cli(home, "query", "--format", fmt)
        assert _controls(proc.stdout) == []
        rows = ([json.loads(line) for line in proc.stdout.splitlines()] if fmt == "jsonl"
                else json.loads(proc.stdout))
        assert HOSTILE_TITLE in [r["title"] for r in rows]  # the data is unchanged
    detail = cli(home, "show", "1", "--format", "json").stdout
    assert _controls(detail) == [] and json.loads(detail)["title"] == HOSTILE_TITLE


def test_only_http_links_in_every_output(home: Path) -> None:
    rows = [json.loads(line) for line in cli(home, "query", "--format", "jsonl").stdout.splitlines()]
    assert sorted(r["url"] or "" for r in rows) == [
        "", "", "http://wire.example.org/long", "https://wire.example.org/ok"]
    urls = cli(home, "query", "--format", "urls").stdout.split()
    assert sorted(urls) == ["http://wire.example.org/long", "https://wire.example.org/ok"]
    for item in ("1", "2"):
        detail = json.loads(cli(home, "show", item, "--format", "json").stdout)
        assert detail["url"] is None and detail["sources"][0]["url"] is None
        text = cli(home, "show", item, "--format", "text").stdout
        assert "javascript:" not in text and "data:" not in text
    csv_text = cli(home, "query", "--format", "csv").stdout
    table = cli(home, "query", "--format", "table", "--fields", "id,url",
                env={"COLUMNS": "200"}).stdout
    for out in (csv_text, table):
        assert "javascript:" not in out and "data:text" not in out


def test_csv_cells_that_would_run_as_formulas_are_neutralized(home: Path) -> None:
    proc = cli(home, "query", "--format", "csv", "--fields", "id,title,summary")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(proc.stdout))}
    assert rows["2"]["title"] == "'=HYPERLINK(\"https://evil.example/\",\"x\")"
    assert rows["2"]["summary"] == "'+1 formula summary"
    assert rows["3"]["title"] == "'@SUM(1+1)" and rows["3"]["summary"] == "'-2 starts with minus"
    assert rows["1"]["title"] == CLEAN_TITLE
    assert rows["4"]["title"] == LONG_TITLE
    raw = cli(home, "query", "--format", "csv", "--fields", "id,title,summary", "--csv-raw")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(raw.stdout))}
    assert rows["2"]["title"].startswith("=HYPERLINK(") and rows["3"]["title"] == "@SUM(1+1)"
    assert rows["1"]["title"] == HOSTILE_TITLE.replace("\r", "\n")  # csv reads CR as a newline


def test_digest_parts_carry_no_control_characters(home: Path, tmp_path: Path) -> None:
    settings = home / "config" / "aggregator.toml"
    original = settings.read_text()
    settings.write_text(original + '\n[[digest]]\nname = "desk"\nto = ["a@example.org"]\n'
                                   'tags = ["iran"]\n')
    try:
        proc = cli(home, "digest", "preview", "--since", "100000d", "--out",
                   str(tmp_path / "d.html"))
    finally:
        settings.write_text(original)
    assert proc.returncode == 0, proc.stderr
    html, text = (tmp_path / "d.html").read_text(), (tmp_path / "d.txt").read_text()
    for part in (html, text):
        assert _controls(part) == []
        assert "Red alert click bell" in part
        assert "javascript:" not in part and "data:text" not in part


# -- tables that fit the terminal ---------------------------------------------------------


def _in_pty(home: Path, *args: str, columns: int = 80) -> str:
    """What a user sees on an 80-column terminal: the CLI on a pseudo-terminal, so it picks
    the table by itself."""
    import pty

    main, child = pty.openpty()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGGREGATOR_", "_AGGREGATOR"))}
    proc = subprocess.Popen([sys.executable, "-c", "from aggregator.launch import main; main()",
                             "--home", str(home), *args], stdout=child, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL,
                            env={**base, "COLUMNS": str(columns), "LINES": "50", "NO_COLOR": "1",
                                 "TERM": "dumb"})
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert proc.wait(timeout=60) in (0, 1), proc.stderr.read() if proc.stderr else ""
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_default_query_table_fits_80_columns(home: Path) -> None:
    out = _in_pty(home, "query")
    lines = [line for line in out.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == ["id", "date", "feed", "title", "tags"]
    assert len(lines) == 2 + 4  # header, rule, one line per item: nothing wraps
    row = next(line for line in lines if "Moscow" in line)
    assert "Moscow and Tehran sign a" in row and "…" in row  # the title has the room, cut
    assert "iran russia-iran" in row  # the top tags, by name
    # --fields still chooses
    chosen = _in_pty(home, "query", "--fields", "id,url").splitlines()
    assert chosen[0].split() == ["id", "url"]


def test_feeds_status_keeps_its_names_at_80_columns(home: Path) -> None:
    for args in (["feeds", "status"], ["feeds", "list"]):
        lines = [line for line in _in_pty(home, *args).splitlines() if line.strip()]
        assert max(len(line) for line in lines) <= 80, lines
        row = next(line for line in lines if "paywalled-outlet" in line)
        assert row.startswith("paywalled-outlet ")  # the name whole
        assert "disabled" in row and "…" in row  # the reason cut


# -- models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_models(home: Path, trained_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance whose models directory holds a good model and three damaged copies."""
    inst = tmp_path_factory.mktemp("models") / "inst"
    shutil.copytree(home / "config", inst / "config")
    models = inst / "var" / "models"
    shutil.copytree(trained_models, models)
    good = (models / "current").read_text().strip()
    for name in ("broken-truncated", "broken-typed", "broken-arrays"):
        shutil.copytree(models / good, models / name)
    meta = models / good / "model.json"
    (models / "broken-truncated" / "model.json").write_text(meta.read_text()[:300])
    doc = json.loads(meta.read_text())
    (models / "broken-typed" / "model.json").write_text(json.dumps({**doc, "tags": "iran"}))
    (models / "broken-arrays" / "model.json").write_text(json.dumps({**doc, "tags": doc["tags"][:3]}))
    return inst


@pytest.mark.parametrize("version, fragment", [
    ("broken-truncated", "model.json: not valid JSON (truncated?)"),
    ("broken-typed", "model.json: tags: expected a list of tags, found str"),
    ("broken-arrays", "cannot use it"),
])
def test_models_use_refuses_a_damaged_model(broken_models: Path, version: str,
                                            fragment: str) -> None:
    before = (broken_models / "var" / "models" / "current").read_text()
    proc = cli(broken_models, "models", "use", version)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"model {version} not made current: {fragment}" in proc.stderr, proc.stderr
    assert (broken_models / "var" / "models" / "current").read_text() == before


def test_models_list_after_a_broken_model_was_made_current(broken_models: Path) -> None:
    models = broken_models / "var" / "models"
    good = (models / "current").read_text()
    try:
        (models / "current").write_text("broken-truncated\n")  # as an older version allowed
        proc = cli(broken_models, "models", "list")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert "* broken-truncated  unreadable model.json" in proc.stdout
        from classifiers.train import starter_examples

        assert f"  {good.strip()}  {len(starter_examples())} examples" in proc.stdout
        classify = cli(broken_models, "classify", "--text", "Moscow and Tehran")
        assert classify.returncode == 1 and "cannot load the model" in classify.stderr
        (models / "current").write_text("../../elsewhere\n")
        proc = cli(broken_models, "models", "list")
        assert proc.returncode == 0 and "not a saved model" in proc.stderr
        assert cli(broken_models, "models", "use", good.strip()).returncode == 0
    finally:
        (models / "current").write_text(good)


# -- the first fetch, and status after it ----------------------------------------------------


def test_first_fetch_says_it_trains_and_status_counts_the_pass(tmp_path: Path) -> None:
    from aggregator.demo import demo_feed_files, feed_name
    from aggregator.demo.server import FeedFileServer

    inst = tmp_path / "inst"
    (inst / "var").mkdir(parents=True)
    shutil.copytree(ROOT / "config", inst / "config")
    assert json.loads(cli(inst, "status", "--format", "json").stdout)["daemon"]["last_pass"] is None
    with FeedFileServer(demo_feed_files()[:2]) as server:
        (inst / "config" / "feeds.toml").write_text("".join(
            f'[[feed]]\nname = "{feed_name(p)}"\nurl = "{server.url(p.name)}"\n'
            for p in demo_feed_files()[:2]))
        first = cli(inst, "fetch")
        assert first.returncode == 0, first.stderr
        assert first.stderr.count("training the default model from the starter corpus") == 1
        again = cli(inst, "fetch", "--all")
        assert again.returncode == 0, again.stderr
        assert "training" not in again.stderr
    assert json.loads(cli(inst, "status", "--format", "json").stdout)["daemon"]["last_pass"]
    assert "last pass: never" not in cli(inst, "status", "--format", "text").stdout
