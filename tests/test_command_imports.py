"""Each command, as a whole process, imports what it needs for what it does, and nothing else.

Every command runs as the console script does (``aggregator.launch:main``), piped, in a real
process that writes ``sys.modules`` out as it exits; every module it imported must be in the
command's allowed set. Allowed sets are built from the standard library, our own modules
named one by one, and (for a fetch that goes to the network) the HTTP client's packages as
their installed metadata names them. Speed is measured by bench/bench_query.py and
bench/bench_ingest.py --whole-process, not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedserver import FeedServer, feed_server  # noqa: F401  (the fixture)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# Put there by the interpreter's own start in some environments, not by us.
STARTUP = {"__main__", "_distutils_hack", "sitecustomize", "usercustomize"}
STDLIB = set(sys.stdlib_module_names) | STARTUP

# What the read commands may import of ours: the SQLite store and the output code.
# The SQLite store is the engine module and the core both engines share.
STORE = {"aggregator.store", "aggregator.store.sqlite", "aggregator.store.urls",
         "aggregator.store.core", "aggregator.store.core.base", "aggregator.store.core.digests",
         "aggregator.store.core.feeds", "aggregator.store.core.items", "aggregator.store.core.meta",
         "aggregator.store.core.sql", "aggregator.store.core.tags"}
READ = {"aggregator", "aggregator.errors", "aggregator.instance", "aggregator.launch",
        "aggregator.cmdline", "aggregator.output", "aggregator.safe_text",
        "aggregator.saved_queries", "aggregator.timeutil", "aggregator.views",
        "aggregator.namedtuple",
        "aggregator.commands", "aggregator.commands.reading", "aggregator.feedfile", *STORE}
# Standard modules the read path has no use for (each costs a few ms to tens of ms).
READ_REFUSED_STDLIB = {"asyncio", "ssl", "concurrent", "multiprocessing", "email", "http",
                       "urllib.request", "logging", "dataclasses", "inspect"}
# ... and, for the commands that read only the database, these too (~5 ms each; pathlib with
# the urllib.parse and ipaddress it imports). ``feeds list`` reads feeds.toml and
# ``--any-tag`` checks its tags against taxonomy.toml: tomllib needs typing, so they may.
DATABASE_ONLY_REFUSED_STDLIB = {"typing", "pathlib", "urllib", "ipaddress"}
# A fetch pass's own modules, with nothing fetched.
FETCH_BASE = {"aggregator", "aggregator.commands", "aggregator.commands.fetching",
              "aggregator.config", "aggregator.config_types", "aggregator.cmdline",
              "aggregator.errors", "aggregator.instance", "aggregator.launch",
              "aggregator.service", "aggregator.ingest", "aggregator.classify", *STORE,
              "aggregator.timeutil", "aggregator.types", "aggregator.views",
              "aggregator.namedtuple",
              "classifiers", "classifiers.taxonomy"}
# ... and those to go to the network and decide what the answers mean.
FETCH_NETWORK = FETCH_BASE | {"aggregator.fetch", "aggregator.fetch.decide",
                              "aggregator.fetch.http", "aggregator.fetch.messages",
                              "aggregator.fetch.reasons",
                              "aggregator.fetch.settings", "aggregator.fetch.transport"}
# ... and those to read a 200 (the parsers).
FETCH_PARSE = FETCH_NETWORK | {"aggregator.parse", "aggregator.parse.feeds",
                               "aggregator.parse.fast", "aggregator.parse.normalize",
                               "aggregator.parse._walk"}
RSS = ("<?xml version='1.0'?><rss version='2.0'><channel><title>{title}</title>"
       "<link>https://wire.example.org/</link>{items}</channel></rss>")
ITEM = ("<item><title>Talks in Vienna, day {n}</title><link>https://wire.example.org/{n}</link>"
        "<guid>wire-{n}</guid><pubDate>Fri, 20 Nov 2026 0{n}:00:00 GMT</pubDate>"
        "<description>Negotiators met again in Vienna on the nuclear file.</description></item>")


def _dists_requiring(roots: Iterable[str]) -> set[str]:
    """The distributions ``roots`` need (not their optional extras), transitively."""
    from importlib.metadata import PackageNotFoundError, distribution

    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        seen.add(name)
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(re.match(r"[A-Za-z0-9_.-]+", req).group(0))  # type: ignore[union-attr]
    return seen


def _top_level(dists: set[str]) -> set[str]:
    from importlib.metadata import packages_distributions

    return {top for top, names in packages_distributions().items()
            if any(re.sub(r"[-_.]+", "-", n).lower() in dists for n in names)}


# The HTTP client as installed (httpx over aiohttp), and the optional decoders and
# resolvers they pick up when present: these are theirs to import, not ours to list.
HTTP_STACK = _top_level(_dists_requiring(["httpx", "aiohttp"])) | {
    "brotli", "brotlicffi", "zstandard", "aiodns", "pycares", "backports"}
PARSERS = _top_level(_dists_requiring(["feedparser", "lxml", "nh3"]))
PYDANTIC = _top_level(_dists_requiring(["pydantic"]))
HEAVY = {"numpy", "scipy", "sklearn", "pydantic", "pydantic_core", "feedparser", "lxml", "nh3",
         "jinja2", "rich", "pygments", "psycopg", "apscheduler", "joblib"}


def _run(home: Path, *args: str) -> tuple[int, set[str], str, str]:
    """Exit code, modules imported (all of sys.modules at exit), stdout, stderr."""
    dump = home / "var" / "modules.txt"
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: open({str(dump)!r}, 'w').write('\\n'.join(sys.modules)))\n"
            f"sys.argv = ['aggregator', '--home', {str(home)!r}, *{list(args)!r}]\n"
            "from aggregator.launch import main\n"
            "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGGREGATOR_", "_AGGREGATOR"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)
    modules = set(dump.read_text().split("\n")) if dump.exists() else set()
    return done.returncode, modules, done.stdout, done.stderr


def _refused(modules: set[str], ours: set[str], others: set[str]) -> list[str]:
    """The modules outside the allowed sets: ours (aggregator/classifiers) by full name,
    anyone else's by top-level package."""
    out = []
    for m in modules:
        top = m.split(".")[0]
        # Cython's shared runtime (one per Cython version a compiled module was built with)
        # and the interpreter's build data are nobody's choice.
        if top.startswith(("_cython_", "_sysconfigdata_", "cython_runtime")):
            continue
        if top in ("aggregator", "classifiers"):
            if m not in ours:
                out.append(m)
        elif top not in others:
            out.append(m)
    return sorted(out)


@pytest.fixture(scope="module")
def read_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import tagged_instance

    return tagged_instance(tmp_path_factory.mktemp("imports") / "inst", NOW, ("iran",))


@pytest.mark.parametrize("args", [
    ["query", "--tag", "iran", "--limit", "50", "--format", "jsonl"],
    ["query", "--any-tag", "iran", "--format", "csv", "--fields", "id,title"],
    ["show", "1", "--format", "json"],
    ["tags", "--since", "2026-11-01", "--format", "jsonl"],
    ["feeds", "list", "--format", "jsonl"],
])
def test_read_commands_import_the_stdlib_the_store_and_the_output_code(
        read_home: Path, args: list[str]) -> None:
    _run(read_home, *args)  # the first run after a settings change reads the TOML (below)
    code, modules, out, err = _run(read_home, *args)
    assert code == 0 and out, (args, code, err)
    assert not _refused(modules, READ, STDLIB), " ".join(args)
    assert not modules & READ_REFUSED_STDLIB, sorted(modules & READ_REFUSED_STDLIB)
    if args[0] != "feeds" and "--any-tag" not in args:
        assert not modules & DATABASE_ONLY_REFUSED_STDLIB, sorted(
            modules & DATABASE_ONLY_REFUSED_STDLIB)


def test_a_query_reads_the_settings_file_only_when_it_changed(read_home: Path) -> None:
    args = ["query", "--tag", "iran", "--format", "jsonl"]
    assert _run(read_home, *args)[0] == 0
    code, modules, out, _ = _run(read_home, *args)
    assert code == 0 and out and "tomllib" not in modules  # the URL remembered
    settings = read_home / "config" / "aggregator.toml"
    text = settings.read_text()
    try:
        settings.write_text(text.replace('url = "sqlite:///var/aggregator.db"',
                                         'url = "sqlite:///var/elsewhere.db"'))
        code, modules, _, _ = _run(read_home, *args)
        assert "tomllib" in modules and (read_home / "var" / "elsewhere.db").exists()
    finally:
        settings.write_text(text)
    code, modules, out, _ = _run(read_home, *args)
    assert code == 0 and out and "tomllib" in modules


def _fetch_home(tmp_path: Path, url: str, models: Path | None = None) -> Path:
    import shutil

    root = Path(__file__).resolve().parents[1]
    home = tmp_path / "inst"
    (home / "var").mkdir(parents=True)
    shutil.copytree(root / "config", home / "config")
    (home / "config" / "feeds.toml").write_text(f'[[feed]]\nname = "wire"\nurl = "{url}"\n')
    if models is not None:
        shutil.copytree(models, home / "var" / "models")
    return home


def test_fetch_imports_the_http_client_only_when_something_is_due(
        tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    # An empty feed: the first fetch parses it and stores nothing, so no model is needed.
    feed_server.route("/rss", body=RSS.format(title="Wire", items="").encode(), etag='"v1"')
    home = _fetch_home(tmp_path, feed_server.url("/rss"))
    code, modules, out, err = _run(home, "fetch", "--all")
    assert code == 0 and "1 ok" in out, (out, err)
    assert "pydantic" in modules  # a new instance: its config validated in full
    assert not _refused(modules, FETCH_PARSE | {"aggregator.config_schema"},
                        STDLIB | HTTP_STACK | PARSERS | PYDANTIC)
    assert not modules & {"numpy", "scipy", "sklearn"}  # nothing to classify

    # Due in an hour: nothing to fetch, so no HTTP client, no parser, no validation.
    code, modules, out, err = _run(home, "fetch")
    assert code == 0 and "feeds: 0 ok, 0 not modified" in out, (out, err)
    assert not _refused(modules, FETCH_BASE, STDLIB), sorted(modules - STDLIB)

    # Every feed again: one 304, so the HTTP client and nothing to read a body.
    code, modules, out, err = _run(home, "fetch", "--all")
    assert code == 0 and "1 not modified" in out, (out, err)
    assert not _refused(modules, FETCH_NETWORK, STDLIB | HTTP_STACK)
    assert not modules & HEAVY, sorted(modules & HEAVY)


def test_a_changed_feed_with_nothing_new_loads_no_model(
        tmp_path: Path, feed_server: FeedServer, trained_models: Path) -> None:  # noqa: F811
    items = "".join(ITEM.format(n=n) for n in range(1, 4))
    feed_server.route("/rss", body=RSS.format(title="Wire", items=items).encode(), etag='"v1"')
    home = _fetch_home(tmp_path, feed_server.url("/rss"), trained_models)
    code, _, out, err = _run(home, "fetch", "--all")
    assert code == 0 and "items: 3 new" in out, (out, err)
    # The document changed (its title), its entries did not: they are skipped unread, and
    # with nothing new there is nothing to fingerprint or classify.
    feed_server.route("/rss", body=RSS.format(title="Wire (renamed)", items=items).encode(),
                      etag='"v2"')
    code, modules, out, err = _run(home, "fetch", "--all")
    assert code == 0 and "1 ok" in out and "items: 0 new, 0 updated" in out, (out, err)
    assert not modules & {"numpy", "scipy", "sklearn", "classifiers.model"}, \
        sorted(modules & {"numpy", "scipy", "sklearn", "classifiers.model"})
    assert "aggregator.parse.normalize" in modules  # it was read, not taken for a 304
    # One entry edited, one added: those two are normalized and stored, the rest skipped.
    items = (ITEM.format(n=1).replace("met again", "met once more")
             + "".join(ITEM.format(n=n) for n in range(2, 5)))
    feed_server.route("/rss", body=RSS.format(title="Wire", items=items).encode(), etag='"v3"')
    code, modules, out, err = _run(home, "fetch", "--all")
    assert code == 0 and "items: 1 new, 1 updated" in out, (out, err)


def test_a_config_changed_after_it_was_validated_is_validated_again(
        tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/rss", body=RSS.format(title="Wire", items="").encode(), etag='"v1"')
    home = _fetch_home(tmp_path, feed_server.url("/rss"))
    assert _run(home, "fetch")[0] == 0
    settings = home / "config" / "aggregator.toml"
    settings.write_text('[fetch]\nconcurrency = "many"\n')
    code, modules, _, err = _run(home, "fetch")
    assert code != 0 and "pydantic" in modules
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "config/aggregator.toml" in lines[0] \
        and "fetch.concurrency" in lines[0], err
    # An override in the environment is part of what was validated, too.
    settings.write_text("[fetch]\nconcurrency = 4\n")
    assert _run(home, "fetch")[0] == 0
    env_code = subprocess.run(
        [sys.executable, "-m", "aggregator", "--home", str(home), "fetch"], capture_output=True,
        text=True, env={**os.environ, "AGGREGATOR_FETCH_CONCURRENCY": "0"})
    assert env_code.returncode != 0 and "AGGREGATOR_FETCH_CONCURRENCY" in env_code.stderr


@pytest.mark.parametrize("args", [
    [], ["--all"], ["--feed", "a"], ["--feed=a", "--feed", "b", "--all"], ["--all", "--all"],
    ["--all=yes"], ["--feed"], ["-h"], ["--all", "x"], ["--feed", "--all"],
])
def test_fetch_is_read_without_click_exactly_as_click_reads_it(args: list[str]) -> None:
    from aggregator.commands import core, fetching
    from aggregator.launch import parse

    fast = parse(args, fetching.FETCH)
    if fast is None:
        return
    with core.fetch.make_context("fetch", list(args)) as ctx:
        assert ctx.params == fast
