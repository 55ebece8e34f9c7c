"""The SQLite store: the standard library's sqlite3, WAL mode, numbered migrations.

What is SQLite's own: the connection and its pragmas, transactions (``BEGIN IMMEDIATE`` so
writers queue instead of failing half-way), migrations, ISO text for times and JSON text
for lists, FTS5 search, storing a feed's entries with ids chosen under the write lock, and
the page planner for queries. The rest is ``core.StoreCore``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from json.encoder import encode_basestring_ascii as _quote

from aggregator.errors import StoreError
from aggregator.store.core import (
    FEED_COLUMNS,
    STORY_WINDOW,
    VIEW_SELECT,
    StoreCore,
    fingerprint_columns,
    split_entries,
)
from aggregator.timeutil import from_iso, to_iso
from aggregator.views import ItemQuery, ItemView

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing (or pathlib) costs a query ~5 ms each
    from os import PathLike
    from typing import Any, TypeVar

    from aggregator.store.core.sql import Term, Writer
    from aggregator.types import Entry, Feed, IngestResult, ItemToClassify

    _T = TypeVar("_T")
    _B = TypeVar("_B")

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations", "sqlite")
# Pages of WAL (4 KiB each) before a writer copies them back into the database: 40 MiB.
WAL_AUTOCHECKPOINT_PAGES = 10_000
# Page cache per connection (KiB; SQLite's default is 2,000). Storing a group of feeds or a
# batch of tags updates indexes in random order (canonical URLs, SimHash bands, tag
# scores): with the default, their pages were evicted and read back within one commit.
# Taken only as pages are read, so a query that reads little costs nothing more.
CACHE_KIB = 6_000
# A list of ids as one parameter (JSON): no limit on how many, unlike ?, ?, ...
_ID_LIST = "SELECT value FROM json_each(?)"
# Lists up to this long go as ?, ?, ... (the planner sees each value); longer ones as JSON.
_MARKS_UP_TO = 100


def _search_syntax_error(e: Exception) -> bool:
    """FTS5 words its syntax errors variously ('fts5: syntax error', 'unterminated string',
    'no such column'); what is not about locking or the disk is the user's expression."""
    text = str(e).lower()
    return not any(word in text for word in ("locked", "disk", "readonly", "busy"))


def _json_strings(values: Sequence[str]) -> str:
    """A JSON list of strings exactly as json.dumps writes it (ASCII, ", " between items),
    without its per-call setup: reasons, authors and categories are several an item, and
    json.dumps was a tenth of storing a cold ingest's items and tags."""
    return "[" + ", ".join(map(_quote, values)) + "]"


class SQLiteStore(StoreCore):
    def __init__(self, path: str | PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self.url = f"sqlite:///{self.path}"
        self._depth = 0  # open _tx blocks: the outermost begins and commits
        try:
            if parent := os.path.dirname(self.path):
                os.makedirs(parent, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                        check_same_thread=False)
            if not self.conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
                # Only takes before the first table (and before WAL writes the header):
                # lets prune() give pages back (PRAGMA incremental_vacuum), no full VACUUM.
                self.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._wal(timeout)
            self.conn.execute("PRAGMA synchronous=NORMAL")
            # A checkpoint costs two fsyncs whatever its size: at the default 1,000 pages a
            # cold ingest of 35k items spent a third of its time in them (bench_ingest).
            self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._migrate()
        except (sqlite3.Error, OSError) as e:  # OSError: a directory it cannot create
            reason = e.strerror if isinstance(e, OSError) and e.strerror else e
            raise StoreError(f"cannot open the database {self.path}: {reason}") from None

    def _wal(self, timeout: float) -> None:
        # Turning a new file to WAL takes an exclusive lock, and SQLite does not wait for it:
        # connections opening a new database at once (the daemon's jobs) wait here instead.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -- plumbing -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes made inside commit together, or not at all. The fetch pass stores a
        group of feeds' entries, their rule tags and their new states in one: a commit is
        most of the cost of a small write, and a killed run then never leaves items without
        their feed state."""
        with self._tx():
            yield

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._depth:  # inside transaction(): part of the outer one
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(f"database {self.path} is busy or unwritable: {e}") from None
        self._depth += 1
        try:
            yield self.conn
        except BaseException as e:
            self._rollback()
            if isinstance(e, sqlite3.OperationalError):
                # Disk full, I/O error, locked: the write failed whole; callers see a StoreError.
                raise StoreError(f"could not write to {self.path}: {e}") from None
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise StoreError(f"could not commit to {self.path}: {e}") from None
        finally:
            self._depth -= 1

    def _rollback(self) -> None:
        # SQLITE_FULL, IOERR, BUSY and NOMEM may have rolled the transaction back already:
        # a second ROLLBACK would fail and hide the error that matters.
        if self.conn.in_transaction:
            with suppress(sqlite3.Error):  # gone either way; the first error is the one reported
                self.conn.execute("ROLLBACK")

    def _migrate(self) -> None:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        done = {r[0] for r in self.conn.execute("SELECT version FROM schema_migrations")}
        # os.listdir, not pathlib: every read command opens the store (see TYPE_CHECKING).
        for name in sorted(os.listdir(MIGRATIONS)):
            if not name.endswith(".sql"):
                continue
            version = int(name.split("_", 1)[0])
            if version in done:
                continue
            with open(os.path.join(MIGRATIONS, name), encoding="utf-8") as f:
                script = f.read()
            # executescript commits first; wrap the script itself in a transaction.
            try:
                self.conn.executescript(
                    "BEGIN IMMEDIATE;\n" + script +
                    f"\nINSERT INTO schema_migrations VALUES ({version}, '{name[:-4]}', "
                    "strftime('%Y-%m-%dT%H:%M:%SZ','now'));\nCOMMIT;")
            except sqlite3.Error:
                # A failed script leaves its transaction (and the write lock) open.
                self._rollback()
                # Another connection opened at the same moment (the daemon's jobs each open
                # one; a CLI command) applied it between our look and our write lock.
                if self.conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                                     (version,)).fetchone():
                    continue
                raise

    # -- the engine's hooks (core.StoreCore) --------------------------------------------

    TRUE = "1"

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.conn.execute(sql, args).fetchall()

    def _write(self, fn: Callable[[Writer], _B], *, durable: bool = True) -> _B:
        with self._tx() as c:
            return fn(c)

    def _time(self, dt: datetime) -> str:
        return to_iso(dt)

    def _read_time(self, value: str) -> datetime:
        return from_iso(value)

    def _json(self, value: list[Any]) -> str:
        if all(isinstance(v, str) for v in value):
            return _json_strings(value)
        return json.dumps(value)

    def _read_json(self, value: str) -> Any:
        return json.loads(value) if value != "[]" else []

    def _in(self, expr: str, values: Sequence[Any]) -> Term:
        if len(values) <= _MARKS_UP_TO:
            return f"{expr} IN ({','.join('?' * len(values))})", list(values)
        return f"{expr} IN ({_ID_LIST})", [json.dumps(list(values))]

    def _search_term(self, expression: str, id_range: tuple[int, int] | None = None) -> Term:
        # IN rather than a probe per row: FTS5 lists matches at a fraction of a
        # microsecond each, a probe costs tens. The range: FTS5 then reads only that part
        # of each doclist.
        if id_range:
            return ("i.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ? "
                    "AND rowid BETWEEN ? AND ?)", [expression, *id_range])
        return "i.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)", [expression]

    SEARCH_ERROR = sqlite3.OperationalError
    SEARCH_EXPECTED = "an FTS5 expression"

    def _is_search_error(self, error: Exception) -> bool:
        return _search_syntax_error(error)

    def _after_prune(self) -> None:
        # Each step of this pragma frees one page, and execute() steps once:
        # executescript runs it to the end.
        self.conn.executescript("PRAGMA incremental_vacuum;")

    def _tag_day_rows(self, since: datetime | None) -> list[Any]:
        cond, args = ("WHERE i.published >= ? ", [to_iso(since)]) if since else ("", [])
        # CROSS JOIN keeps items outside: the date range on the items_published index
        # (covering), then each item's tags by primary key. Left to itself, without ANALYZE
        # statistics, SQLite scans every tag row and reads every item.
        return self._rows(
            "SELECT t.tag, substr(i.published, 1, 10) AS day, count(*) FROM items i "
            f"CROSS JOIN item_tags t ON t.item_id = i.id {cond}GROUP BY t.tag, day "
            "ORDER BY t.tag, day", args)

    # -- feeds --------------------------------------------------------------------------

    def claim_due_feeds(self, now: datetime, limit: int | None, owner: str,
                        lease: timedelta) -> list[Feed]:
        """Take due feeds for ``owner`` until ``now + lease`` (BEGIN IMMEDIATE makes the
        select-and-mark one step); ``update_feed`` ends the lease."""
        with self._tx() as c:
            rows = c.execute(
                "UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE id IN ("
                "SELECT id FROM feeds WHERE active = 1 AND disabled_at IS NULL "
                "AND (next_fetch_at IS NULL OR next_fetch_at <= ?) "
                "AND (lease_until IS NULL OR lease_until <= ?) "
                "ORDER BY next_fetch_at, id LIMIT ?) "
                f"RETURNING {FEED_COLUMNS}",
                (owner, to_iso(now + lease), to_iso(now), to_iso(now),
                 limit if limit else -1)).fetchall()
        # RETURNING comes in no particular order: due order, as due_feeds gives it.
        return sorted((self._feed(r) for r in rows),
                      key=lambda f: (f.next_fetch_at is not None, f.next_fetch_at or now, f.id))

    # -- items --------------------------------------------------------------------------

    def save_entries(self, feed: Feed, entries: Sequence[Entry], now: datetime) -> IngestResult:
        """Store a feed's entries: new ones inserted, changed ones updated, known ones left.

        Identity within the feed is the entry key; across feeds, the canonical URL: the same
        story from a second feed becomes a second source of the same item. A new item whose
        text is near-identical to another's published within ``STORY_WINDOW`` joins that
        item's story (see ``_assign_stories``); nothing is merged or deleted.
        """
        from aggregator.parse import dedupe  # numpy: only writers pay for it, never a query
        from aggregator.types import IngestResult

        new: list[int] = []
        stamp = to_iso(now)
        with self._tx() as c:
            known = self._known_entries(c, feed.id, [e.key for e in entries])
            fresh, changed = split_entries(feed.id, entries, known)
            self._rewrite(c, feed.id, changed, stamp)
            # Fingerprints in one batch (numpy's cost is per call), only for what is new.
            fps = dedupe.fingerprints([(e.title, e.summary) for e in fresh])
            if fresh:
                new = self._insert_fresh(c, feed, list(zip(fresh, fps, strict=True)), stamp)
            self._index_for_search(c, new)
            self._refingerprint(c, changed)
        return IngestResult(tuple(new), tuple(i for i, _ in changed))

    @staticmethod
    def _index_for_search(c: sqlite3.Connection, item_ids: Sequence[int]) -> None:
        """New items into the search index, in the transaction that stores them: one
        statement for all, which FTS5 does 3.5x faster than a trigger row by row."""
        if item_ids:
            c.execute("INSERT INTO items_fts (rowid, title, summary) SELECT id, title, summary "
                      f"FROM items WHERE id IN ({_ID_LIST})", (json.dumps(item_ids),))

    @staticmethod
    def _known_entries(c: sqlite3.Connection, feed_id: int,
                       keys: Sequence[str]) -> dict[str, tuple[int, int, str]]:
        """entry key -> (item id, the item's first feed, content hash), for keys stored."""
        found: dict[str, tuple[int, int, str]] = {}
        unique = list(dict.fromkeys(keys))
        for n in range(0, len(unique), 500):  # well under SQLite's variable limit
            chunk = unique[n:n + 500]
            for key, item_id, owner, content_hash in c.execute(
                    "SELECT s.entry_key, s.item_id, i.feed_id, i.content_hash FROM item_sources s "
                    "JOIN items i ON i.id = s.item_id WHERE s.feed_id = ? AND s.entry_key IN "
                    f"({','.join('?' * len(chunk))})", [feed_id, *chunk]):
                found[key] = (item_id, owner, content_hash)
        return found

    def _insert_fresh(self, c: sqlite3.Connection, feed: Feed,
                      todo: Sequence[tuple[Entry, int | None]], stamp: str) -> list[int]:
        """Insert new entries, in entry order: an item for each canonical URL not stored
        yet (the first entry carrying it), a source for every entry. Returns the ids of the
        items created. A statement per table for the whole feed, not per row: the
        per-call overhead was a third of storing a cold ingest."""
        urls = [e.canonical_url for e, _ in todo if e.canonical_url]
        owner: dict[str, int] = dict(c.execute(
            f"SELECT canonical_url, id FROM items WHERE canonical_url IN ({_ID_LIST})",
            (json.dumps(urls),))) if urls else {}
        # Ids chosen here, as SQLite would (one past the largest), so that rows need no
        # lastrowid each: BEGIN IMMEDIATE holds the write lock, nobody inserts meanwhile.
        next_id = int(c.execute("SELECT coalesce(max(id), 0) + 1 FROM items").fetchone()[0])
        items: list[tuple[object, ...]] = []
        sources: list[tuple[object, ...]] = []
        stories: list[tuple[int, int, datetime, tuple[int | None, ...]]] = []
        new: list[int] = []
        columns = fingerprint_columns([fp for _, fp in todo])
        for (e, fp), fp_columns in zip(todo, columns, strict=True):
            published = to_iso(e.published)
            target = owner.get(e.canonical_url) if e.canonical_url else None
            if target is None:
                target = next_id
                next_id += 1
                if e.canonical_url:
                    owner[e.canonical_url] = target
                items.append((
                    target, feed.id, e.canonical_url, e.url, e.title, e.summary, published,
                    int(e.date_is_fetch_time), *self.entry_columns(e), e.content_hash, stamp,
                    stamp, *fp_columns))
                new.append(target)
                if fp is not None:
                    stories.append((target, fp, e.published, fp_columns[1:]))
            sources.append((feed.id, e.key, target, e.url, e.title, published, stamp))
        c.executemany(
            "INSERT INTO items (id, feed_id, canonical_url, url, title, summary, published, "
            "date_is_fetch_time, content_html, authors, categories, language, enclosures, "
            "updated, content_hash, first_seen, updated_at, simhash, simhash_b0, simhash_b1, "
            "simhash_b2, simhash_b3) "
            f"VALUES ({', '.join('?' * 22)})", items)
        c.executemany(
            "INSERT INTO item_sources (feed_id, entry_key, item_id, url, title, published, "
            "first_seen) VALUES (?, ?, ?, ?, ?, ?, ?)", sources)
        SQLiteStore._assign_stories(c, stories)
        return new

    @staticmethod
    def _assign_stories(c: sqlite3.Connection,
                        items: Sequence[tuple[int, int, datetime, tuple[int | None, ...]]]) -> None:
        """Put each new item in the story of its nearest near-duplicate, if any: one
        published within ``STORY_WINDOW`` either way (feeds arrive in any order) whose
        fingerprint is within ``dedupe.MAX_DISTANCE`` bits. Candidates come from the band
        indexes, for the whole batch in one query, each item seeing only older ids (as
        when inserted one by one); ``dedupe.story_choices`` then decides, in order."""
        from aggregator.parse import dedupe

        if not items:
            return
        rows = json.dumps([(i, *bands, to_iso(p - STORY_WINDOW), to_iso(p + STORY_WINDOW))
                           for i, _, p, bands in items])
        found: dict[int, list[tuple[int, int | None, int]]] = {}
        for new_id, other, story, simhash in c.execute(
                "WITH n (id, b0, b1, b2, b3, lo, hi) AS (SELECT "
                + ", ".join(f"json_extract(value, '$[{k}]')" for k in range(7))
                + " FROM json_each(?)) " + " UNION ".join(
                    f"SELECT n.id, i.id, i.story_id, i.simhash FROM n JOIN items i ON "
                    f"i.simhash_b{b} = n.b{b} AND i.published BETWEEN n.lo AND n.hi "
                    "AND i.id < n.id" for b in range(dedupe.BANDS)), (rows,)):
            found.setdefault(new_id, []).append((other, story, simhash))
        updates = dedupe.story_choices([(i, fp) for i, fp, _, _ in items], found)
        if updates:
            c.execute(f"UPDATE items SET story_id = id WHERE id IN ({_ID_LIST}) "
                      "AND story_id IS NULL", (json.dumps(sorted({h for _, h in updates})),))
            c.executemany("UPDATE items SET story_id = ? WHERE id = ?",
                          [(h, i) for i, h in updates])

    _CLASSIFY_SELECT = (
        "SELECT i.id, i.title, i.summary, i.categories, "
        "(SELECT group_concat(f.tags, '\x1f') FROM item_sources s JOIN feeds f ON f.id = s.feed_id "
        " WHERE s.item_id = i.id), i.url FROM items i ")

    @staticmethod
    def _to_classify(rows: Iterable[tuple]) -> list[ItemToClassify]:
        from aggregator.types import ItemToClassify

        out = []
        loads = json.loads
        for r in rows:
            feed_tags: set[str] = set()
            if r[4]:
                for chunk in r[4].split("\x1f"):
                    if chunk != "[]":  # most feeds imply no tags
                        feed_tags.update(loads(chunk))
            out.append(ItemToClassify(r[0], r[1], r[2],
                                      tuple(loads(r[3])) if r[3] != "[]" else (),
                                      tuple(sorted(feed_tags)), r[5] or ""))
        return out

    def _to_classify_rows(self, where: str, args: Sequence[Any]) -> list[ItemToClassify]:
        return self._to_classify(self.conn.execute(self._CLASSIFY_SELECT + "WHERE " + where, args))

    def items_to_classify(self, limit: int, after_id: int = 0) -> list[ItemToClassify]:
        return self._to_classify_rows("i.needs_classify = 1 AND i.id > ? ORDER BY i.id LIMIT ?",
                                      (after_id, limit))

    # The routes of _page_ids, in rows; class attributes so that tests can shrink them and
    # take every route on a small database. FEW: a tag or search with fewer matches than
    # this is read whole (about 2 us a match through items_id_published). WINDOW: else the
    # page is first looked for among this many newest items (about 1 us each).
    FEW = 4096
    WINDOW = 20_000

    def query_items(self, q: ItemQuery) -> list[ItemView]:
        with self._search_errors(q, config=False):
            ids = self._page_ids(q)
            if ids is None:
                query = self._order(q, self._view_query().where_all(self._item_filters(q)))
                return self._views(self._rows(str(query), query.args), with_sources=False)
        if not ids:
            return []
        rows = self.conn.execute(VIEW_SELECT + f"WHERE i.id IN ({_ID_LIST})",
                                 (json.dumps(ids),)).fetchall()
        rank = {item_id: n for n, item_id in enumerate(ids)}
        rows.sort(key=lambda r: rank[r[0]])
        return self._views(rows, with_sources=False)

    def _page_ids(self, q: ItemQuery) -> list[int] | None:
        """The ids of a query's page, in order, read from indexes only; None where SQLite's
        own plan for the plain query is as good (no tag or search to start from).

        Left to itself SQLite walks the date index testing every item, which is quick for a
        common tag and a scan for a rare one, and it sorts every search match by date.
        Here, by what a cheap count through the index says:
        - --sort score on one tag: down that tag's (tag, score) index; only items tied on
          score are sorted by date, and LIMIT stops the walk;
        - a tag or search with fewer than FEW matches: those matches, sorted by date;
        - else the newest WINDOW items, by the date index (a prefix of the order, so a full
          page found there is the page); a search reads only its matches among their ids;
        - else, when some matched there, on down the date index; when none did (the tag's
          items are all older), the matches of the first tag or of the search.
        Every route applies every filter, so each gives what the plain query gives.
        """
        limit = [q.limit] if q.limit else []
        page = " LIMIT ?" if q.limit else ""
        # Without a page every match is read anyway: the plain query's own sort is as good.
        paged = bool(q.limit)
        ranked = q.tags or q.any_tags
        if q.sort == "score" and ranked:
            if len(ranked) > 1 or not paged:
                return None  # best of several tags: no one index has that order
            where, args = _and(self._item_filters(q))
            return self._ids(
                "SELECT i.id FROM item_tags r CROSS JOIN items i INDEXED BY items_id_published "
                "ON i.id = r.item_id WHERE r.tag = ?" + where
                + " ORDER BY r.score DESC, i.published DESC, i.id DESC" + page,
                [ranked[0], *args, *limit])
        drivers: list[tuple[str, list[object]]] = [
            ("SELECT item_id FROM item_tags WHERE tag = ?", [tag]) for tag in q.tags]
        if q.any_tags:
            drivers.append((f"SELECT item_id FROM item_tags WHERE tag IN "
                            f"({','.join('?' * len(q.any_tags))})", list(q.any_tags)))
        if q.search:  # last: FTS5 costs more per match than an index
            drivers.append(("SELECT rowid FROM items_fts WHERE items_fts MATCH ?", [q.search]))
        if not drivers:
            return None
        by_date = " ORDER BY i.published DESC, i.id DESC"
        for n, (sql, args) in enumerate(drivers):
            # Counted in SQLite first: a common tag's thousands of ids are never built in Python.
            count = self.conn.execute(f"SELECT count(*) FROM ({sql} LIMIT {self.FEW})", args).fetchone()[0]
            if not count:
                return []
            if count < self.FEW:  # all of them: the page is among these
                found = self._ids(sql, args)
                is_search = bool(q.search) and n == len(drivers) - 1
                where, wargs = _and(self._item_filters(q, (min(found), max(found)),
                                                       search=not is_search))
                return self._ids(
                    f"SELECT i.id FROM items i INDEXED BY items_id_published WHERE i.id IN "
                    f"({_ID_LIST})" + where + by_date + page,
                    [json.dumps(found), *wargs, *limit])
        if not paged:
            return None
        # The newest WINDOW items first.
        edge = self.conn.execute(
            "SELECT published FROM items INDEXED BY items_published"
            + (" WHERE published < ?" if q.until else "")
            + " ORDER BY published DESC, id DESC LIMIT 1 OFFSET ?",
            [*([to_iso(q.until)] if q.until else []), self.WINDOW - 1]).fetchone()
        span = None
        if edge is not None and q.search:
            span = self.conn.execute(
                "SELECT min(id), max(id) FROM items INDEXED BY items_published "
                "WHERE published >= ?", (edge[0],)).fetchone()
        where, args = _and(self._item_filters(q, span))
        ids = self._ids(
            "SELECT i.id FROM items i INDEXED BY items_published WHERE "
            + ("i.published >= ?" if edge else "1 = 1") + where
            + by_date + page, [*(edge or ()), *args, *limit])
        if len(ids) == q.limit or edge is None:  # a page, or every item was looked at
            return ids
        if ids:
            # Matches are sparse, not absent, near the top (another filter is selective):
            # walking on down the date index beats reading every match of the tag.
            where, args = _and(self._item_filters(q))
            return self._ids("SELECT i.id FROM items i INDEXED BY items_published WHERE 1 = 1"
                             + where + by_date + page, [*args, *limit])
        sql, args = drivers[0]
        is_search = bool(q.search) and len(drivers) == 1
        where, wargs = _and(self._item_filters(q, search=not is_search))
        return self._ids(
            f"SELECT i.id FROM items i INDEXED BY items_id_published WHERE i.id IN ({sql})"
            + where + by_date + page, [*args, *wargs, *limit])

    def _ids(self, sql: str, args: Sequence[object]) -> list[int]:
        return [r[0] for r in self.conn.execute(sql, args)]


def _and(terms: Sequence[Term]) -> tuple[str, list[Any]]:
    """Terms as " AND a AND b" and their arguments, to append to a WHERE."""
    return "".join(f" AND {sql}" for sql, _ in terms), [a for _, args in terms for a in args]
