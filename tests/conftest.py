"""Shared fixtures: temporary instances made from the shipped config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def instance_dir(tmp_path: Path) -> Path:
    """A fresh instance: the shipped config files and an empty var/."""
    home = tmp_path / "inst"
    (home / "var").mkdir(parents=True)
    shutil.copytree(ROOT / "config", home / "config")
    return home


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model, trained once per test session from the starter corpus."""
    from aggregator.config import load_config
    from aggregator.instance import Instance
    from aggregator.service import train_default

    home = tmp_path_factory.mktemp("models-home")
    shutil.copytree(ROOT / "config", home / "config")
    config = load_config(Instance(home))
    train_default(config)
    return home / "var" / "models"


@pytest.fixture
def instance_with_model(instance_dir: Path, trained_models: Path) -> Path:
    shutil.copytree(trained_models, instance_dir / "var" / "models")
    return instance_dir
