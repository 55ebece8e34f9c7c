"""Storage: ``open_store(url)`` picks the engine from the URL."""

from __future__ import annotations

from aggregator.errors import ConfigError
from aggregator.store.base import Store


def open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        from aggregator.store.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///"):])
    if url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("database.url", "", "a supported database (PostgreSQL support is "
                          "not built yet: use sqlite:///var/aggregator.db)", url.split("@")[-1])
    raise ConfigError("database.url", "", "sqlite:///PATH or postgresql://...", repr(url))
