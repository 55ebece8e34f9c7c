"""Storage: ``open_store(url)`` picks the engine from the URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aggregator.errors import ConfigError

if TYPE_CHECKING:  # the Protocol is for type checkers: building it costs the CLI 1-2 ms
    from aggregator.store.base import Store


def open_store(url: str, *, busy_timeout: float = 30.0) -> Store:
    """``busy_timeout`` (seconds): how long an SQLite write waits for another writer."""
    if url.startswith("sqlite:///"):
        from aggregator.store.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///"):], timeout=busy_timeout)
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg is an optional extra, imported only here: connect() says how to install it.
        from aggregator.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError("database.url", "", "sqlite:///PATH or postgresql://...", repr(url))
