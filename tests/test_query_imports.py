"""The commands run in shell loops stay light: no heavy import creeps onto their path.

Each runs as the console script under ``python -X importtime`` (piped, so no terminal
table) and the modules it imported are checked; a plain query, show, tags or feeds list
must not even import click (aggregator/launch.py runs them without it). Speed itself is measured by
bench/bench_query.py, not here.

Also checks that the fast path reads a command line exactly as click does, whenever it
reads it at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

HEAVY = {"sklearn", "scipy", "numpy", "httpx", "feedparser", "apscheduler", "pydantic",
         "jinja2", "lxml", "rich"}
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import tagged_instance

    return tagged_instance(tmp_path_factory.mktemp("imports") / "inst", NOW, ("iran", "nuclear"))


def _run(home: Path, *args: str) -> tuple[int, set[str], str]:
    """Exit code, top-level modules imported, stdout: the console script, piped."""
    script = Path(sys.executable).parent / "aggregator"
    entry = [str(script)] if script.exists() else ["-c", "from aggregator.launch import main; main()"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGGREGATOR_", "_AGGREGATOR"))}
    done = subprocess.run([sys.executable, "-X", "importtime", *entry, "--home", str(home), *args],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    modules = {line.rsplit("|", 1)[1].strip().split(".")[0]
               for line in done.stderr.splitlines() if line.startswith("import time:")}
    modules.discard("package")  # the header line
    return done.returncode, modules, done.stdout


@pytest.mark.parametrize("args, plain", [
    (["query", "--tag", "iran", "--limit", "50", "--format", "jsonl"], True),
    (["query", "--tag", "iran"], True),
    (["query", "--any-tag", "iran", "--format", "csv", "--fields", "id,title"], True),
    (["show", "1"], True),
    (["show", "1", "--format", "json"], True),
    (["tags", "--since", "2026-11-01"], True),
    (["tags", "--since", "2026-11-01", "--format", "jsonl"], True),
    (["feeds", "list"], True),
    (["feeds", "list", "--format", "jsonl"], True),
    (["feeds", "status"], False),
    (["query", "--tag", "iran", "-h"], False),  # help goes through click
])
def test_read_commands_import_nothing_heavy(home: Path, args: list[str], plain: bool) -> None:
    code, modules, out = _run(home, *args)
    assert code == 0 and out, (args, code)
    assert not modules & HEAVY, f"{' '.join(args)} imported {sorted(modules & HEAVY)}"
    if plain:
        assert "click" not in modules, f"{' '.join(args)} imported click"


@pytest.mark.parametrize("args", [
    ["query", "--tag", "iarn"],  # a misspelt tag: a usage error, with a suggestion
    ["query", "--tag", "nuclear", "--not-tag", "iran"],  # nothing matches: exit 1
    ["show", "999"],
])
def test_failing_read_commands_import_nothing_heavy(home: Path, args: list[str]) -> None:
    code, modules, _ = _run(home, *args)
    assert code in (1, 2)
    assert not modules & HEAVY, f"{' '.join(args)} imported {sorted(modules & HEAVY)}"


CASES = [
    ["--tag", "iran"],
    ["--tag=iran", "--tag", "russia", "--limit", "0", "--format=csv"],
    ["--any-tag", "a", "--not-tag", "b", "--min-score", "0.5", "--source", "rule", "--feed", "x"],
    ["--min-score", "1", "--min-score", "0"], ["--min-score", "1.5"], ["--min-score", "nan"],
    ["--min-score", "1e-1"], ["--limit", " 7"], ["--limit", "+7"], ["--limit", "1_0"],
    ["--limit", "-1"], ["--limit", "x"], ["--since", "7d", "--until", "1d", "--search", "a OR b"],
    ["--search", "-a"], ["--tag"], ["--tag", "--limit", "3"], ["--format", "JSON"],
    ["--format", "urls", "--fields", "id,url", "--sort", "score"], ["saved"], ["a", "b"],
    ["--", "--tag"], ["-h"], ["--help"], ["--tag", "x", "--bogus"], ["--tag="], ["-"],
    ["--save", "mine", "--tag", "x"], ["--sort=date", "q"],
]


@pytest.mark.parametrize("command, args", [("query", a) for a in CASES] + [
    ("show", ["1"]), ("show", ["x"]), ("show", []), ("show", ["1", "--format", "text"]),
    ("show", ["--format", "json", "12"]), ("show", ["1", "2"]), ("show", ["١٢"]),
    ("tags", []), ("tags", ["--since", "2w"]), ("tags", ["--format", "table"]),
    ("feeds list", []), ("feeds list", ["--format", "table"]), ("feeds list", ["--format=jsonl"]),
    ("feeds list", ["--format", "csv"]), ("feeds list", ["x"]), ("feeds list", ["-h"]),
])
def test_fast_parse_agrees_with_click(command: str, args: list[str]) -> None:
    """Whatever the fast path accepts, click reads the same way; the rest it leaves alone."""
    import click

    from aggregator.commands import query as commands
    from aggregator.commands import reading
    from aggregator.launch import parse

    fast = parse(args, {"query": reading.QUERY, "show": reading.SHOW, "tags": reading.TAGS,
                        "feeds list": reading.FEEDS_LIST}[command])
    if fast is None:
        return
    cmd: click.Command
    if command == "feeds list":
        from aggregator.commands.feeds import list_feeds as cmd
    else:
        cmd = getattr(commands, command)
    with cmd.make_context(command, list(args)) as ctx:
        assert ctx.params == fast


def test_plain_command_lines_take_the_fast_path() -> None:
    from aggregator.launch import _plain

    for argv in (["query", "--tag", "iran"], ["--home", "x", "query", "--limit", "5"],
                 ["--home=x", "show", "3"], ["tags", "--format", "jsonl"], ["feeds", "list"],
                 ["--home", "x", "feeds", "list", "--format", "jsonl"]):
        assert _plain(argv) is not None, argv
    for argv in (["--version"], ["-h"], ["--home", "x"], ["feeds"], ["feeds", "status"],
                 ["feeds", "--help", "list"], ["feeds", "list", "-h"], ["query", "-h"],
                 ["--home", "x", "--home", "y", "query"], ["--homes", "x", "query"]):
        assert _plain(argv) is None, argv


def test_predicting_with_a_saved_model_does_not_import_scikit_learn(tmp_path: Path) -> None:
    # The daemon and `fetch` predict with every pass; scikit-learn (about 0.8 s and 77 MiB)
    # is for training only, and a saved model is plain arrays and JSON.
    from classifiers import Example, train

    rows = [Example(f"{i}", f"{word} report {i}", f"{word} {word} news {i}", labels=(word,))
            for i in range(12) for word in ("sanctions", "drones")]
    train(rows, None).save(tmp_path / "model")
    code = (
        "import sys\n"
        "import aggregator.service, classifiers\n"
        "from classifiers.model import Doc, TagModel\n"
        f"model = TagModel.load({str(tmp_path / 'model')!r})\n"
        "[p] = model.predict([Doc('1', 'drones drones', 'drones report')])\n"
        "assert p.labels == ('drones',), p.labels\n"
        "print(sorted(m for m in ('sklearn', 'joblib') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
