"""The base of the shared store: the hooks each engine supplies, conversions, lifetime, and
the entry diff both engines store with."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from aggregator.views import ItemQuery

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query ~5 ms
    from typing import Any, TypeVar

    from aggregator.store.core.sql import Term, Writer
    from aggregator.types import Entry, Feed, ItemToClassify

    _T = TypeVar("_T")


class CoreBase:
    """The engine hooks the shared code stands on, the conversions built on them, and a
    store's lifetime; the engine class supplies the hooks."""

    url: str
    conn: Any
    TRUE = "TRUE"  # the literals a partial index's predicate is written with
    SKIP_LOCKED = ""  # how a claim passes over rows another transaction is claiming

    # -- engine hooks -----------------------------------------------------------------

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _write(self, fn: Callable[[Writer], _T], *, durable: bool = True) -> _T:
        """``fn`` in one transaction. ``durable=False``: the fetch path, where an engine may
        commit without waiting for the disk (see PostgresStore._write)."""
        raise NotImplementedError

    def _time(self, dt: datetime) -> Any:
        """A time as the engine stores it."""
        raise NotImplementedError

    def _read_time(self, value: Any) -> datetime:
        raise NotImplementedError

    def _json(self, value: list[Any]) -> Any:
        """A list (of strings, or of enclosure mappings) as the engine stores JSON."""
        raise NotImplementedError

    def _read_json(self, value: Any) -> Any:
        raise NotImplementedError

    def _in(self, expr: str, values: Sequence[Any]) -> Term:
        """``expr`` is one of ``values``: a list parameter both engines take whatever its size."""
        raise NotImplementedError

    def _search_term(self, expression: str, id_range: tuple[int, int] | None = None) -> Term:
        """The WHERE term (over ``items i``) for a --search expression."""
        raise NotImplementedError

    # The exception a bad search expression raises (building or running the statement),
    # and what the user is told to give instead.
    SEARCH_ERROR: type[Exception] = Exception
    SEARCH_EXPECTED = "a search expression"

    def _is_search_error(self, error: Exception) -> bool:
        return True

    @contextmanager
    def _search_errors(self, q: ItemQuery, *, config: bool) -> Iterator[None]:
        """A bad search expression as a UsageError (a command's --search) or a ConfigError
        (a saved query's)."""
        try:
            yield
        except self.SEARCH_ERROR as e:
            if not (q.search and self._is_search_error(e)):
                raise
            raise bad_search(q, e, config=config, expected=self.SEARCH_EXPECTED) from None

    def _after_prune(self) -> None:
        """Give freed space back, where the engine does not on its own."""

    def _to_classify_rows(self, where: str, args: Sequence[Any]) -> list[ItemToClassify]:
        raise NotImplementedError

    # -- conversions --------------------------------------------------------------------

    def _opt_time(self, dt: datetime | None) -> Any:
        return self._time(dt) if dt else None

    def _opt_read_time(self, value: Any) -> datetime | None:
        return self._read_time(value) if value else None

    def _feed(self, r: Sequence[Any]) -> Feed:
        from aggregator.types import Feed

        t = self._opt_read_time
        return Feed(
            id=r[0], name=r[1], url=r[2], tags=tuple(self._read_json(r[3])),
            interval=timedelta(seconds=r[4]) if r[4] is not None else None,
            active=bool(r[5]), disabled_at=t(r[6]), disabled_reason=r[7], title=r[8],
            etag=r[9], last_modified=r[10], body_hash=r[11], last_fetched_at=t(r[12]),
            last_success_at=t(r[13]), last_full_fetch_at=t(r[14]), next_fetch_at=t(r[15]),
            consecutive_failures=r[16], failing_since=t(r[17]), last_error=r[18],
            malformed=bool(r[19]), pending_redirect_url=r[20], pending_redirect_count=r[21],
            new_items_rate=r[22], ttl=timedelta(seconds=r[23]) if r[23] is not None else None)

    @staticmethod
    def _enclosures(entry: Entry) -> list[dict[str, Any]]:
        return [{"url": x.url, "type": x.type, "length": x.length} for x in entry.enclosures]

    def entry_columns(self, e: Entry) -> tuple[Any, ...]:
        """What an entry stores beyond title, url, summary and dates, in this order:
        content_html, authors, categories, language, enclosures, updated."""
        from aggregator.parse.normalize import stored_html

        return (stored_html(e.summary, e.content_html), self._json(list(e.authors)),
                self._json(list(e.categories)), e.language,
                # NULL for none: most entries have none, and an empty list costs bytes a row.
                self._json(self._enclosures(e)) if e.enclosures else None,
                self._opt_time(e.updated))

    def _rewrite_search(self, e: Entry) -> Term:
        """More columns to set when an item's text is rewritten (PostgreSQL's search vector)."""
        return "", []

    def _rewrite(self, c: Writer, feed_id: int, changed: Sequence[tuple[int, Entry]],
                 stamp: Any) -> None:
        """Changed entries written over their items (and this feed's sources), to be
        classified again."""
        for item_id, e in changed:
            more, more_args = self._rewrite_search(e)
            c.execute(
                "UPDATE items SET title = ?, url = ?, summary = ?, content_html = ?, "
                "authors = ?, categories = ?, language = ?, enclosures = ?, updated = ?, "
                f"content_hash = ?, updated_at = ?, needs_classify = ?{more} WHERE id = ?",
                (e.title, e.url, e.summary, *self.entry_columns(e), e.content_hash, stamp,
                 True, *more_args, item_id))
            c.execute("UPDATE item_sources SET title = ?, url = ? "
                      "WHERE feed_id = ? AND entry_key = ?", (e.title, e.url, feed_id, e.key))

    @staticmethod
    def _refingerprint(c: Writer, changed: Sequence[tuple[int, Entry]]) -> None:
        """A rewritten text gets a fresh fingerprint for later copies to match; the story
        it is in stays (story ids do not move under readers' feet)."""
        from aggregator.parse import dedupe

        if changed:
            fps = dedupe.fingerprints([(e.title, e.summary) for _, e in changed])
            c.executemany(
                "UPDATE items SET simhash = ?, simhash_b0 = ?, simhash_b1 = ?, "
                "simhash_b2 = ?, simhash_b3 = ? WHERE id = ?",
                [(*cols, i) for (i, _), cols in zip(changed, fingerprint_columns(fps),
                                                    strict=True)])

    # -- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bad_search(q: ItemQuery, error: Exception, *, config: bool, expected: str) -> Exception:
    """The error for a search expression the engine refused: the user's --search, or a
    saved query's (a config error, named after the file it came from)."""
    if config:
        from aggregator.errors import ConfigError
        return ConfigError("config/queries.toml", "search", expected, f"{q.search!r} ({error})")
    from aggregator.errors import UsageError
    return UsageError(f"bad --search expression {q.search!r}: {error}")


def split_entries(feed_id: int, entries: Sequence[Entry], known: dict[str, tuple[int, int, str]]
                  ) -> tuple[list[Entry], list[tuple[int, Entry]]]:
    """A feed's entries against what it stored before (entry key -> (item id, the item's
    first feed, content hash)): the new ones (the same key twice in one document: the
    first wins), and the (item id, entry) whose text changed. Only the feed that first
    carried an item rewrites it."""
    fresh: dict[str, Entry] = {}
    changed: list[tuple[int, Entry]] = []
    for e in entries:
        row = known.get(e.key)
        if row is None:
            fresh.setdefault(e.key, e)
        elif row[1] == feed_id and row[2] != e.content_hash:
            changed.append((row[0], e))
    return list(fresh.values()), changed


def fingerprint_columns(fps: Sequence[int | None]) -> list[tuple[int | None, ...]]:
    """simhash and its bands as stored (signed 64-bit; NULLs when there is none), for a
    batch: one import, not one per row."""
    from aggregator.parse import dedupe  # numpy: only writers pay for it, never a query

    none = (None,) * (1 + dedupe.BANDS)
    return [none if fp is None else (dedupe.to_signed(fp), *dedupe.bands(fp)) for fp in fps]
