"""The offline demo: feeds written for the project, served from 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

FEEDS_DIR = Path(__file__).parent / "feeds"


def demo_feed_files() -> list[Path]:
    return sorted(p for p in FEEDS_DIR.glob("*.xml"))


def feed_name(path: Path) -> str:
    return path.name.split(".", 1)[0]
