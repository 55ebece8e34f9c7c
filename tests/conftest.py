"""Shared fixtures: temporary instances made from the shipped config."""

from __future__ import annotations

import shutil
from datetime import datetime
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


def tagged_instance(home: Path, now: datetime, tags: tuple[str, ...]) -> Path:
    """An instance at ``home`` (shipped config) with three items from one feed, each tagged
    ``tags`` by the model, written through the store: what the read commands' tests read."""
    from aggregator.store.sqlite import SQLiteStore
    from aggregator.types import Entry
    from aggregator.views import FeedConfig, TagScore

    root = Path(__file__).resolve().parents[1]
    (home / "var").mkdir(parents=True)
    shutil.copytree(root / "config", home / "config")
    with SQLiteStore(home / "var" / "aggregator.db") as store:
        store.sync_feeds([FeedConfig("wire", "https://wire.example.org/rss")], now)
        feed = store.feeds()[0]
        entries = [Entry(key=f"k{i}", title=f"Talks in Vienna, day {i}",
                         url=f"https://wire.example.org/{i}", canonical_url=None,
                         summary="Negotiators met again. " * 20, content_html="<p>text</p>",
                         published=now, content_hash=str(i)) for i in range(3)]
        ids = store.save_entries(feed, entries, now).new_item_ids
        scores = [TagScore(tag, 0.9 - 0.2 * n) for n, tag in enumerate(tags)]
        store.write_model_tags([(i, scores) for i in ids], now)
    return home
