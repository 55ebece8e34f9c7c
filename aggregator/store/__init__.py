"""Storage: the engines by URL scheme, and ``open_store(url)``.

Every question that depends on which engine a URL names (how to open it, whether it exists
yet, where a daemon's lock goes, how to show it in a message, what a relative path means)
is answered here, so that nothing outside ``store/`` reads URL prefixes.
"""

from __future__ import annotations

import os

from aggregator.errors import ConfigError
from aggregator.namedtuple import NamedTuple
from aggregator.store.urls import display_url

# What only type checkers read: the Store Protocol costs the CLI 1-2 ms to build, and typing
# and pathlib about 5 ms each.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from os import PathLike
    from pathlib import Path

    from aggregator.store.base import Store

_SQLITE = "sqlite:///"


class Engine(NamedTuple):
    """What a database URL's scheme says about it. A NamedTuple: cheap for the fast CLI path."""

    name: str                     # "sqlite", "postgresql"
    prefixes: tuple[str, ...]     # the URL forms it answers to
    shares_work: bool             # several daemons may run on one database

    def matches(self, url: str) -> bool:
        return url.startswith(self.prefixes)

    def path(self, url: str) -> str | None:
        """The file behind a URL, for engines that keep one (SQLite)."""
        if self.name != "sqlite":
            return None
        return url[len(_SQLITE):]

    def open(self, url: str, *, busy_timeout: float = 30.0) -> Store:
        if self.name == "sqlite":
            from aggregator.store.sqlite import SQLiteStore

            return SQLiteStore(url[len(_SQLITE):], timeout=busy_timeout)
        # psycopg is an optional extra, imported only here: connect() says how to install it.
        from aggregator.store.postgres import PostgresStore

        return PostgresStore(url)

    def exists(self, url: str) -> bool:
        """False only when opening would create the database (a SQLite file not there yet)."""
        path = self.path(url)
        return path is None or path == ":memory:" or os.path.exists(path)

    def lock_path(self, url: str) -> Path | None:
        """Where a daemon's lock file goes; None where several daemons share the work."""
        path = self.path(url)
        if self.shares_work or path is None:
            return None
        from pathlib import Path

        return Path(path + ".daemon.lock")

    def display(self, url: str) -> str:
        """The URL fit for a message: no password."""
        return display_url(url)

    def absolute(self, url: str, home: str | PathLike[str]) -> str:
        """A SQLite path relative to the instance home made absolute; other URLs unchanged."""
        path = self.path(url)
        if path and path != ":memory:" and not os.path.isabs(path):
            return _SQLITE + os.path.join(home, path)
        return url


SQLITE = Engine("sqlite", (_SQLITE,), shares_work=False)
POSTGRESQL = Engine("postgresql", ("postgresql://", "postgres://"), shares_work=True)
ENGINES = (SQLITE, POSTGRESQL)


def engine_for(url: str) -> Engine:
    for engine in ENGINES:
        if engine.matches(url):
            return engine
    raise ConfigError("database.url", "", "sqlite:///PATH or postgresql://...", repr(url))


def open_store(url: str, *, busy_timeout: float = 30.0) -> Store:
    """``busy_timeout`` (seconds): how long an SQLite write waits for another writer."""
    return engine_for(url).open(url, busy_timeout=busy_timeout)


def store_exists(url: str) -> bool:
    return engine_for(url).exists(url)


def lock_path(url: str) -> Path | None:
    return engine_for(url).lock_path(url)


def absolute_url(url: str, home: str | PathLike[str]) -> str:
    """Relative SQLite paths resolved against ``home``; any other URL as it is."""
    return SQLITE.absolute(url, home) if SQLITE.matches(url) else url


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL; None for any other engine."""
    return SQLITE.path(url) if SQLITE.matches(url) else None
