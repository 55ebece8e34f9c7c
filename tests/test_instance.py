"""Locating an instance: the home directory is found as ``Path(home).expanduser().resolve()``
would find it, though the read path builds no ``Path`` for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aggregator.instance import Instance


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "real" / "inst").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "real"))
    monkeypatch.delenv("AGGREGATOR_HOME", raising=False)
    return tmp_path


@pytest.mark.parametrize("given", [
    "real/inst", "./real/inst/", "link/inst", "link/../real/inst", "~/inst", "~", "missing/dir",
    ".",
])
def test_locate_resolves_as_pathlib_does(tree: Path, given: str) -> None:
    found = Instance.locate(given)
    assert found.home == Path(given).expanduser().resolve()
    assert found == Instance(Path(given).expanduser().resolve())


def test_locate_falls_back_to_the_variable_then_the_working_directory(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Instance.locate().home == tree.resolve()
    monkeypatch.setenv("AGGREGATOR_HOME", "link/inst")
    assert Instance.locate().home == (tree / "real" / "inst").resolve()


def test_paths_and_the_database_url_are_under_home(tree: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    inst = Instance.locate("link/inst")
    home = tree.resolve() / "real" / "inst"
    assert inst.settings_file == home / "config" / "aggregator.toml"
    assert inst.var_dir == home / "var"
    assert inst.display(home / "config" / "feeds.toml") == os.path.join("config", "feeds.toml")
    assert inst.absolute_database_url("sqlite:///var/aggregator.db") == (
        f"sqlite:///{home / 'var' / 'aggregator.db'}")
    assert inst.absolute_database_url("sqlite:////srv/a.db") == "sqlite:////srv/a.db"
    assert inst.absolute_database_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_instances_compare_and_hash_by_home(tree: Path) -> None:
    assert Instance("a") == Instance(Path("a")) and hash(Instance("a")) == hash(Instance("a"))
    assert Instance("a") != Instance("b")
    assert len({Instance("a"), Instance(Path("a")), Instance("b")}) == 2
