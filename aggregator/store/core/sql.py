"""The statements' parts both engines share: the constants, the ``Query`` builder (after
lemon24/reader's ``_sql_utils.Query``) and what a write method is handed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

TYPE_CHECKING = False
if TYPE_CHECKING:  # what the type checker reads: importing typing costs a query ~5 ms
    from typing import Any, Protocol

    Sent = Sequence[tuple[Sequence[str], Sequence[int], "str | None"]]
    Term = tuple[str, list[Any]]

    class Cursor(Protocol):
        @property
        def rowcount(self) -> int: ...

        def fetchall(self) -> list[Any]: ...
        def fetchone(self) -> Any: ...

    class Writer(Protocol):
        """What a write method gets inside its transaction: ``?`` marks on either engine."""

        def execute(self, sql: str, args: Sequence[Any] = (), /) -> Cursor: ...
        def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any: ...


# Copies of a story are looked for among items published this long before or after it.
STORY_WINDOW = timedelta(days=3)
# Which source's tag wins on an item: a user's label over a feed's rule over the model.
PRECEDENCE = {"model": 0, "rule": 1, "user": 2}

FEED_COLUMNS = (
    "id, name, url, tags, interval_s, active, disabled_at, disabled_reason, title, etag, "
    "last_modified, body_hash, last_fetched_at, last_success_at, last_full_fetch_at, "
    "next_fetch_at, consecutive_failures, failing_since, last_error, malformed, "
    "pending_redirect_url, pending_redirect_count, new_items_rate, ttl_s")
VIEW_COLUMNS = (
    "i.id, i.title, i.url, f.name, i.published, i.summary, i.categories, "
    "i.content_html, i.authors, i.language, i.date_is_fetch_time, i.enclosures, i.updated")
VIEW_SELECT = f"SELECT {VIEW_COLUMNS} FROM items i JOIN feeds f ON f.id = i.feed_id "


class Query:
    """A statement built from parts, each with its own arguments, rendered in SQL's order
    whatever order the parts were added in."""

    __slots__ = ("_args", "_parts")
    _ORDER = ("WITH", "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "LIMIT")

    def __init__(self) -> None:
        self._parts: dict[str, list[str]] = {k: [] for k in self._ORDER}
        self._args: dict[str, list[Any]] = {k: [] for k in self._ORDER}

    def add(self, keyword: str, sql: str, *args: Any) -> Query:
        self._parts[keyword].append(sql)
        self._args[keyword].extend(args)
        return self

    def WITH(self, sql: str, *args: Any) -> Query:
        return self.add("WITH", sql, *args)

    def SELECT(self, sql: str, *args: Any) -> Query:
        return self.add("SELECT", sql, *args)

    def FROM(self, sql: str, *args: Any) -> Query:
        return self.add("FROM", sql, *args)

    def WHERE(self, sql: str, *args: Any) -> Query:
        return self.add("WHERE", sql, *args)

    def ORDER_BY(self, sql: str, *args: Any) -> Query:
        return self.add("ORDER BY", sql, *args)

    def LIMIT(self, n: int | None) -> Query:
        return self.add("LIMIT", "?", n) if n else self

    def where_all(self, terms: Sequence[tuple[str, Sequence[Any]]]) -> Query:
        for sql, args in terms:
            self.WHERE(sql, *args)
        return self

    @property
    def args(self) -> list[Any]:
        return [a for k in self._ORDER for a in self._args[k]]

    def __str__(self) -> str:
        joins = {"WITH": ", ", "SELECT": ", ", "FROM": " ", "WHERE": " AND ", "GROUP BY": ", ",
                 "ORDER BY": ", ", "LIMIT": ""}
        return " ".join(f"{k} {joins[k].join(self._parts[k])}"
                        for k in self._ORDER if self._parts[k])

