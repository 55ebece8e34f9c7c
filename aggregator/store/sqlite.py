"""The SQLite store: the standard library's sqlite3, WAL mode, numbered migrations.

Plain SQL, one transaction per write method (``BEGIN IMMEDIATE`` so writers queue instead
of failing half-way), rows turned into domain types at this edge.
"""

from __future__ import annotations

import html
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aggregator.errors import StoreError
from aggregator.timeutil import from_iso, to_iso
from aggregator.views import FeedConfig, FeedState, ItemQuery, ItemView, Source, Story, TagCount, TagScore

if TYPE_CHECKING:
    from aggregator.types import Attempt, Entry, Feed, IngestResult, ItemToClassify, SyncResult

# The pipeline's dataclasses (aggregator.types) are imported where they are built, not here:
# the read commands open this module in shell loops and build none of them (see views.py).

MIGRATIONS = Path(__file__).parent / "migrations" / "sqlite"
# Copies of a story are looked for among items published this long before or after it.
STORY_WINDOW = timedelta(days=3)
_PRECEDENCE = {"model": 0, "rule": 1, "user": 2}
# Pages of WAL (4 KiB each) before a writer copies them back into the database: 40 MiB.
WAL_AUTOCHECKPOINT_PAGES = 10_000
# Page cache per connection (KiB; SQLite's default is 2,000). Storing a group of feeds or a
# batch of tags updates indexes in random order (canonical URLs, SimHash bands, tag
# scores): with the default, their pages were evicted and read back within one commit.
# Taken only as pages are read, so a query that reads little costs nothing more.
CACHE_KIB = 6_000
_T = TypeVar("_T")
# A list of ids as one parameter (JSON): no limit on how many, unlike ?, ?, ...
_ID_LIST = "SELECT value FROM json_each(?)"


def _search_syntax_error(e: sqlite3.OperationalError) -> bool:
    """FTS5 words its syntax errors variously ('fts5: syntax error', 'unterminated string',
    'no such column'); what is not about locking or the disk is the user's expression."""
    text = str(e).lower()
    return not any(word in text for word in ("locked", "disk", "readonly", "busy"))


def _iso(dt: datetime | None) -> str | None:
    return to_iso(dt) if dt else None


def _dt(text: str | None) -> datetime | None:
    return from_iso(text) if text else None


def _json_strings(values: Sequence[str]) -> str:
    """A JSON list of strings exactly as json.dumps writes it (ASCII, ", " between items),
    without its per-call setup: reasons, authors and categories are several an item, and
    json.dumps was a tenth of storing a cold ingest's items and tags."""
    return "[" + ", ".join(map(_quote, values)) + "]"


def _fingerprint_columns(fps: Sequence[int | None]) -> list[tuple[int | None, ...]]:
    """simhash and its bands as stored (signed 64-bit; NULLs when there is none), for a
    batch: one import, not one per row."""
    from aggregator.parse import dedupe  # numpy: only writers pay for it, never a query

    none = (None,) * (1 + dedupe.BANDS)
    return [none if fp is None else (dedupe.to_signed(fp), *dedupe.bands(fp)) for fp in fps]


class SQLiteStore:
    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._depth = 0  # open _tx blocks: the outermost begins and commits
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the database {self.path}: {e}") from None

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
        # os.listdir, not Path.glob: every read command opens the store, and glob costs ~1 ms.
        for path in (MIGRATIONS / name for name in sorted(os.listdir(MIGRATIONS))
                     if name.endswith(".sql")):
            version = int(path.name.split("_", 1)[0])
            if version in done:
                continue
            # executescript commits first; wrap the script itself in a transaction.
            try:
                self.conn.executescript(
                    "BEGIN IMMEDIATE;\n" + path.read_text() +
                    f"\nINSERT INTO schema_migrations VALUES ({version}, '{path.stem}', "
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

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- feeds --------------------------------------------------------------------------

    _FEED_COLUMNS = (
        "id, name, url, tags, interval_s, active, disabled_at, disabled_reason, title, etag, "
        "last_modified, body_hash, last_fetched_at, last_success_at, last_full_fetch_at, "
        "next_fetch_at, consecutive_failures, failing_since, last_error, malformed, "
        "pending_redirect_url, pending_redirect_count, new_items_rate, ttl_s")

    @staticmethod
    def _feed(r: sqlite3.Row | tuple) -> Feed:
        from aggregator.types import Feed

        return Feed(
            id=r[0], name=r[1], url=r[2], tags=tuple(json.loads(r[3])),
            interval=timedelta(seconds=r[4]) if r[4] is not None else None,
            active=bool(r[5]), disabled_at=_dt(r[6]), disabled_reason=r[7], title=r[8],
            etag=r[9], last_modified=r[10], body_hash=r[11], last_fetched_at=_dt(r[12]),
            last_success_at=_dt(r[13]), last_full_fetch_at=_dt(r[14]), next_fetch_at=_dt(r[15]),
            consecutive_failures=r[16], failing_since=_dt(r[17]), last_error=r[18],
            malformed=bool(r[19]), pending_redirect_url=r[20], pending_redirect_count=r[21],
            new_items_rate=r[22], ttl=timedelta(seconds=r[23]) if r[23] is not None else None)

    def sync_feeds(self, feeds: Sequence[FeedConfig], now: datetime) -> SyncResult:
        """Bring the feeds table in line with feeds.toml.

        The URL in the file is the declared one; the stored ``url`` may have moved since
        through a confirmed permanent redirect, and only a change in the file resets it.
        """
        from aggregator.types import SyncResult

        added, updated, deactivated = [], [], []
        with self._tx() as c:
            existing = {r[0]: r for r in c.execute(
                "SELECT name, declared_url, tags, interval_s, active FROM feeds")}
            for f in feeds:
                tags = json.dumps(list(f.tags))
                interval = int(f.interval.total_seconds()) if f.interval else None
                old = existing.get(f.name)
                if old is None:
                    c.execute("INSERT INTO feeds (name, url, declared_url, tags, interval_s) "
                              "VALUES (?, ?, ?, ?, ?)", (f.name, f.url, f.url, tags, interval))
                    added.append(f.name)
                elif (old[1], old[2], old[3], old[4]) != (f.url, tags, interval, 1):
                    c.execute("UPDATE feeds SET tags = ?, interval_s = ?, active = 1 WHERE name = ?",
                              (tags, interval, f.name))
                    if old[1] != f.url:
                        # A new URL in the file is a fresh start for that feed's validators.
                        c.execute(
                            "UPDATE feeds SET url = ?, declared_url = ?, etag = NULL, "
                            "last_modified = NULL, body_hash = NULL, next_fetch_at = NULL, "
                            "pending_redirect_url = NULL, pending_redirect_count = 0 "
                            "WHERE name = ?", (f.url, f.url, f.name))
                    updated.append(f.name)
            declared = {f.name for f in feeds}
            for name, row in existing.items():
                if name not in declared and row[4]:
                    c.execute("UPDATE feeds SET active = 0 WHERE name = ?", (name,))
                    deactivated.append(name)
        return SyncResult(tuple(added), tuple(updated), tuple(deactivated))

    def feeds(self, names: Sequence[str] | None = None, *,
              include_inactive: bool = False) -> list[Feed]:
        sql = f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE 1=1"
        args: list[object] = []
        if names:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            args += list(names)
        if not include_inactive:
            sql += " AND active = 1"
        return [self._feed(r) for r in self.conn.execute(sql + " ORDER BY name", args)]

    def feed_states(self) -> dict[str, FeedState]:
        rows = self.conn.execute(
            "SELECT name, disabled_at IS NULL, disabled_reason, last_fetched_at, "
            "consecutive_failures, failing_since FROM feeds WHERE active = 1")
        return {r[0]: FeedState(r[0], bool(r[1]), r[2], from_iso(r[3]) if r[3] else None, r[4],
                                from_iso(r[5]) if r[5] else None) for r in rows}

    def due_feeds(self, now: datetime, limit: int | None = None) -> list[Feed]:
        sql = (f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE active = 1 AND disabled_at IS NULL "
               "AND (next_fetch_at IS NULL OR next_fetch_at <= ?) ORDER BY next_fetch_at")
        args: list[object] = [to_iso(now)]
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._feed(r) for r in self.conn.execute(sql, args)]

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
                f"RETURNING {self._FEED_COLUMNS}",
                (owner, to_iso(now + lease), to_iso(now), to_iso(now),
                 limit if limit else -1)).fetchall()
        # RETURNING comes in no particular order: due order, as due_feeds gives it.
        return sorted((self._feed(r) for r in rows),
                      key=lambda f: (f.next_fetch_at is not None, f.next_fetch_at or now, f.id))

    def release_leases(self, owner: str | None = None) -> int:
        with self._tx() as c:
            cur = c.execute("UPDATE feeds SET lease_owner = NULL, lease_until = NULL "
                            "WHERE lease_owner IS NOT NULL AND (? IS NULL OR lease_owner = ?)",
                            (owner, owner))
            return cur.rowcount

    def update_feed(self, feed: Feed, attempt: Attempt | None = None,
                    attempts_kept: int = 100) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE feeds SET url = ?, disabled_at = ?, disabled_reason = ?, title = ?, "
                "etag = ?, last_modified = ?, body_hash = ?, last_fetched_at = ?, "
                "last_success_at = ?, last_full_fetch_at = ?, next_fetch_at = ?, "
                "consecutive_failures = ?, failing_since = ?, last_error = ?, malformed = ?, "
                "pending_redirect_url = ?, pending_redirect_count = ?, new_items_rate = ?, "
                "ttl_s = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (feed.url, _iso(feed.disabled_at), feed.disabled_reason, feed.title, feed.etag,
                 feed.last_modified, feed.body_hash, _iso(feed.last_fetched_at),
                 _iso(feed.last_success_at), _iso(feed.last_full_fetch_at),
                 _iso(feed.next_fetch_at), feed.consecutive_failures, _iso(feed.failing_since),
                 feed.last_error, int(feed.malformed), feed.pending_redirect_url,
                 feed.pending_redirect_count, feed.new_items_rate,
                 int(feed.ttl.total_seconds()) if feed.ttl else None, feed.id))
            if attempt is not None:
                c.execute(
                    "INSERT INTO fetch_attempts (feed_id, at, status, duration_ms, bytes, error, "
                    "event, new_items) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (attempt.feed_id, to_iso(attempt.at), attempt.status, attempt.duration_ms,
                     attempt.bytes, attempt.error, attempt.event, attempt.new_items))
                # Bounded history per feed.
                c.execute(
                    "DELETE FROM fetch_attempts WHERE feed_id = ? AND id <= "
                    "(SELECT id FROM fetch_attempts WHERE feed_id = ? ORDER BY id DESC "
                    "LIMIT 1 OFFSET ?)", (attempt.feed_id, attempt.feed_id, attempts_kept))

    def set_feed_disabled(self, name: str, reason: str | None, now: datetime) -> bool:
        with self._tx() as c:
            if reason is None:
                cur = c.execute(
                    "UPDATE feeds SET disabled_at = NULL, disabled_reason = NULL, "
                    "consecutive_failures = 0, failing_since = NULL, next_fetch_at = NULL "
                    "WHERE name = ?", (name,))
            else:
                cur = c.execute("UPDATE feeds SET disabled_at = ?, disabled_reason = ? "
                                "WHERE name = ?", (to_iso(now), reason, name))
            return cur.rowcount > 0

    def attempts(self, feed_id: int, limit: int = 20) -> list[Attempt]:
        from aggregator.types import Attempt

        rows = self.conn.execute(
            "SELECT feed_id, at, status, duration_ms, bytes, error, event, new_items "
            "FROM fetch_attempts WHERE feed_id = ? ORDER BY id DESC LIMIT ?", (feed_id, limit))
        return [Attempt(r[0], from_iso(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]

    # -- items --------------------------------------------------------------------------

    def save_entries(self, feed: Feed, entries: Sequence[Entry], now: datetime) -> IngestResult:
        """Store a feed's entries: new ones inserted, changed ones updated, known ones left.

        Identity within the feed is the entry key; across feeds, the canonical URL: the same
        story from a second feed becomes a second source of the same item. A new item whose
        text is near-identical to another's published within ``STORY_WINDOW`` joins that
        item's story (see ``_assign_stories``); nothing is merged or deleted.
        """
        from aggregator.parse import dedupe  # numpy: only writers pay for it, never a query
        from aggregator.parse.normalize import stored_html
        from aggregator.types import IngestResult

        new: list[int] = []
        updated: list[int] = []
        stamp = to_iso(now)
        with self._tx() as c:
            known = self._known_entries(c, feed.id, [e.key for e in entries])
            fresh: dict[str, Entry] = {}
            changed: list[tuple[int, Entry]] = []
            for e in entries:
                row = known.get(e.key)
                if row is None:
                    fresh.setdefault(e.key, e)  # the same key twice in one document: the first wins
                    continue
                item_id, owner, old_hash = row
                # Only the feed that first carried an item rewrites it.
                if owner == feed.id and old_hash != e.content_hash:
                    c.execute(
                        "UPDATE items SET title = ?, url = ?, summary = ?, content_html = ?, "
                        "authors = ?, categories = ?, language = ?, content_hash = ?, "
                        "updated_at = ?, needs_classify = 1 WHERE id = ?",
                        (e.title, e.url, e.summary, stored_html(e.summary, e.content_html),
                         _json_strings(e.authors), _json_strings(e.categories),
                         e.language, e.content_hash, stamp, item_id))
                    c.execute("UPDATE item_sources SET title = ?, url = ? "
                              "WHERE feed_id = ? AND entry_key = ?",
                              (e.title, e.url, feed.id, e.key))
                    updated.append(item_id)
                    changed.append((item_id, e))
            # Fingerprints in one batch (numpy's cost is per call), only for what is new.
            fps = dedupe.fingerprints([(e.title, e.summary) for e in fresh.values()])
            if fresh:
                new = self._insert_fresh(c, feed, list(zip(fresh.values(), fps, strict=True)),
                                         stamp)
            self._index_for_search(c, new)
            if changed:
                # A rewritten text gets a fresh fingerprint for later copies to match; the
                # story it is in stays (story ids do not move under readers' feet).
                fps = dedupe.fingerprints([(e.title, e.summary) for _, e in changed])
                c.executemany(
                    "UPDATE items SET simhash = ?, simhash_b0 = ?, simhash_b1 = ?, "
                    "simhash_b2 = ?, simhash_b3 = ? WHERE id = ?",
                    [(*cols, i) for (i, _), cols in zip(changed, _fingerprint_columns(fps),
                                                        strict=True)])
        return IngestResult(tuple(new), tuple(updated))

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

    @staticmethod
    def _insert_fresh(c: sqlite3.Connection, feed: Feed,
                      todo: Sequence[tuple[Entry, int | None]], stamp: str) -> list[int]:
        """Insert new entries, in entry order: an item for each canonical URL not stored
        yet (the first entry carrying it), a source for every entry. Returns the ids of the
        items created. A statement per table for the whole feed, not per row: the
        per-call overhead was a third of storing a cold ingest."""
        from aggregator.parse.normalize import stored_html

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
        columns = _fingerprint_columns([fp for _, fp in todo])
        for (e, fp), fp_columns in zip(todo, columns, strict=True):
            published = to_iso(e.published)
            target = owner.get(e.canonical_url) if e.canonical_url else None
            if target is None:
                target = next_id
                next_id += 1
                if e.canonical_url:
                    owner[e.canonical_url] = target
                items.append((
                    target, feed.id, e.canonical_url, e.url, e.title, e.summary,
                    stored_html(e.summary, e.content_html), published,
                    int(e.date_is_fetch_time), _json_strings(e.authors),
                    _json_strings(e.categories), e.language, e.content_hash, stamp, stamp,
                    *fp_columns))
                new.append(target)
                if fp is not None:
                    stories.append((target, fp, e.published, fp_columns[1:]))
            sources.append((feed.id, e.key, target, e.url, e.title, published, stamp))
        c.executemany(
            "INSERT INTO items (id, feed_id, canonical_url, url, title, summary, content_html, "
            "published, date_is_fetch_time, authors, categories, language, content_hash, "
            "first_seen, updated_at, simhash, simhash_b0, simhash_b1, simhash_b2, simhash_b3) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", items)
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
        " WHERE s.item_id = i.id) FROM items i ")

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
                                      tuple(sorted(feed_tags))))
        return out

    def items_to_classify(self, limit: int, after_id: int = 0) -> list[ItemToClassify]:
        return self._to_classify(self.conn.execute(
            self._CLASSIFY_SELECT + "WHERE i.needs_classify = 1 AND i.id > ? ORDER BY i.id LIMIT ?",
            (after_id, limit)))

    def items_for_reclassify(self, since: datetime | None,
                             batch: int) -> Iterator[list[ItemToClassify]]:
        last = 0
        while True:
            sql = self._CLASSIFY_SELECT + "WHERE i.id > ?"
            args: list[object] = [last]
            if since is not None:
                sql += " AND i.published >= ?"
                args.append(to_iso(since))
            rows = self._to_classify(
                self.conn.execute(sql + " ORDER BY i.id LIMIT ?", [*args, batch]))
            if not rows:
                return
            last = rows[-1].id
            yield rows

    def _write_tags(self, source: str, results: Sequence[tuple[int, Sequence[TagScore]]],
                    now: datetime, mark_classified: bool) -> int:
        stamp = to_iso(now)
        rank = _PRECEDENCE[source]
        count = 0
        with self._tx() as c:
            ids = json.dumps([item_id for item_id, _ in results])
            # Replace this source's tags on these items; never touch a higher-ranked source.
            c.execute(f"DELETE FROM item_tags WHERE source = ? AND item_id IN ({_ID_LIST})",
                      (source, ids))
            higher = tuple(s for s, r in _PRECEDENCE.items() if r > rank)
            guard = (f" WHERE item_tags.source NOT IN ({','.join('?' * len(higher))})"
                     if higher else "")
            rows = [(item_id, t.tag, float(t.score), source, t.model_version,
                     _json_strings(t.reasons), stamp, *higher)
                    for item_id, tags in results for t in tags]
            c.executemany(
                "INSERT INTO item_tags (item_id, tag, score, source, model_version, reasons, "
                "tagged_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id, tag) DO UPDATE SET "
                "score = excluded.score, source = excluded.source, "
                "model_version = excluded.model_version, reasons = excluded.reasons, "
                "tagged_at = excluded.tagged_at" + guard, rows)
            count = len(rows)
            # A user's "not this tag" label keeps the model from putting it back.
            c.execute(
                "DELETE FROM item_tags WHERE source != 'user' AND (item_id, tag) IN "
                f"(SELECT item_id, tag FROM labels WHERE value = 0 AND item_id IN ({_ID_LIST}))",
                (ids,))
            if mark_classified:
                c.execute(f"UPDATE items SET needs_classify = 0 WHERE id IN ({_ID_LIST})", (ids,))
        return count

    def write_model_tags(self, results: Sequence[tuple[int, Sequence[TagScore]]],
                         now: datetime) -> int:
        return self._write_tags("model", results, now, mark_classified=True)

    def write_rule_tags(self, results: Sequence[tuple[int, Sequence[TagScore]]],
                        now: datetime) -> int:
        return self._write_tags("rule", results, now, mark_classified=False)

    _VIEW_SELECT = (
        "SELECT i.id, i.title, i.url, f.name, i.published, i.summary, i.categories, "
        "i.content_html, i.authors, i.language, i.date_is_fetch_time "
        "FROM items i JOIN feeds f ON f.id = i.feed_id ")

    @staticmethod
    def _narrowing_filters(q: ItemQuery) -> tuple[list[str], list[object]]:
        """The filters every item query shares, whatever it starts from: tags excluded,
        feeds, and the publication window."""
        where: list[str] = []
        args: list[object] = []
        for tag in q.not_tags:
            where.append("NOT EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id "
                         "AND t.tag = ?)")
            args.append(tag)
        if q.feeds:
            where.append("EXISTS (SELECT 1 FROM item_sources s JOIN feeds sf ON sf.id = s.feed_id "
                         f"WHERE s.item_id = i.id AND sf.name IN ({','.join('?' * len(q.feeds))}))")
            args += list(q.feeds)
        if q.since:
            where.append("i.published >= ?")
            args.append(to_iso(q.since))
        if q.until:
            where.append("i.published < ?")
            args.append(to_iso(q.until))
        return where, args

    @staticmethod
    def _item_filters(q: ItemQuery, fts_range: tuple[int, int] | None = None,
                      search: bool = True) -> tuple[list[str], list[object]]:
        """The WHERE terms (over ``items i``) and their arguments for a query's filters.

        They read only ``i.id`` and ``i.published``, so the items_published and
        items_id_published indexes cover them. ``fts_range``: the ids the caller looks
        among (FTS5 then reads only that part of each doclist); ``search=False`` leaves the
        search out, for a caller that starts from its matches.
        """
        where: list[str] = []
        args: list[object] = []
        score = "" if q.min_score is None else " AND t.score >= ?"
        score_args = [] if q.min_score is None else [q.min_score]
        source = ""
        if q.sources:
            source = f" AND t.source IN ({','.join('?' * len(q.sources))})"
        for tag in q.tags:
            where.append("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id AND t.tag = ?"
                         + score + source + ")")
            args += [tag, *score_args, *q.sources]
        if q.any_tags:
            where.append("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id AND t.tag IN "
                         f"({','.join('?' * len(q.any_tags))})" + score + source + ")")
            args += [*q.any_tags, *score_args, *q.sources]
        if q.sources and not (q.tags or q.any_tags):
            where.append("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id"
                         + source + ")")
            args += list(q.sources)
        more, more_args = SQLiteStore._narrowing_filters(q)
        where += more
        args += more_args
        if q.search and search:
            # Last: the cheap index probes above run first. IN rather than a probe per row:
            # FTS5 lists matches at a fraction of a microsecond each, a probe costs tens.
            where.append("i.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?"
                         + (" AND rowid BETWEEN ? AND ?" if fts_range else "") + ")")
            args += [q.search, *(fts_range or ())]
        return where, args

    # The routes of _page_ids, in rows; class attributes so that tests can shrink them and
    # take every route on a small database. FEW: a tag or search with fewer matches than
    # this is read whole (about 2 us a match through items_id_published). WINDOW: else the
    # page is first looked for among this many newest items (about 1 us each).
    FEW = 4096
    WINDOW = 20_000

    def query_items(self, q: ItemQuery) -> list[ItemView]:
        ids = self._run(q, self._page_ids, q)
        if ids is None:
            where, args = self._item_filters(q)
            sql = self._VIEW_SELECT + ("WHERE " + " AND ".join(where) if where else "")
            return self._views(self._ordered(q, sql, args), with_sources=False)
        if not ids:
            return []
        rows = self.conn.execute(self._VIEW_SELECT + f"WHERE i.id IN ({_ID_LIST})",
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
            where, args = self._item_filters(q)
            return self._ids(
                "SELECT i.id FROM item_tags r CROSS JOIN items i INDEXED BY items_id_published "
                "ON i.id = r.item_id WHERE r.tag = ?" + "".join(f" AND {w}" for w in where)
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
            found = self._ids(f"{sql} LIMIT {self.FEW}", args)
            if not found:
                return []
            if len(found) < self.FEW:  # all of them: the page is among these
                is_search = bool(q.search) and n == len(drivers) - 1
                where, wargs = self._item_filters(q, (min(found), max(found)),
                                                  search=not is_search)
                return self._ids(
                    f"SELECT i.id FROM items i INDEXED BY items_id_published WHERE i.id IN "
                    f"({_ID_LIST})" + "".join(f" AND {w}" for w in where) + by_date + page,
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
        where, args = self._item_filters(q, span)
        ids = self._ids(
            "SELECT i.id FROM items i INDEXED BY items_published WHERE "
            + " AND ".join([*(["i.published >= ?"] if edge else []), *where])
            + by_date + page, [*(edge or ()), *args, *limit])
        if len(ids) == q.limit or edge is None:  # a page, or every item was looked at
            return ids
        if ids:
            # Matches are sparse, not absent, near the top (another filter is selective):
            # walking on down the date index beats reading every match of the tag.
            where, args = self._item_filters(q)
            return self._ids("SELECT i.id FROM items i INDEXED BY items_published WHERE "
                             + " AND ".join(where) + by_date + page, [*args, *limit])
        sql, args = drivers[0]
        is_search = bool(q.search) and len(drivers) == 1
        where, wargs = self._item_filters(q, search=not is_search)
        return self._ids(
            f"SELECT i.id FROM items i INDEXED BY items_id_published WHERE i.id IN ({sql})"
            + "".join(f" AND {w}" for w in where) + by_date + page, [*args, *wargs, *limit])

    def _ids(self, sql: str, args: Sequence[object]) -> list[int]:
        return [r[0] for r in self.conn.execute(sql, args)]

    def _run(self, q: ItemQuery, fn: Callable[..., _T], *args: Any) -> _T:
        """fn(*args), a syntax error in the query's search turned into a UsageError."""
        try:
            return fn(*args)
        except sqlite3.OperationalError as e:
            if q.search and _search_syntax_error(e):
                from aggregator.errors import UsageError
                raise UsageError(f"bad --search expression {q.search!r}: {e}") from None
            raise

    def _ordered(self, q: ItemQuery, sql: str, args: list[object]) -> list[tuple]:
        """Run a view query with the query's order and limit."""
        if q.sort == "score" and (q.tags or q.any_tags):
            ranked = list(q.tags or q.any_tags)
            # i.id last, as in every order here: ties come out the same whatever the plan.
            sql += (" ORDER BY (SELECT max(t.score) FROM item_tags t WHERE t.item_id = i.id AND "
                    f"t.tag IN ({','.join('?' * len(ranked))})) DESC, i.published DESC, i.id DESC")
            args += ranked
        else:
            sql += " ORDER BY i.published DESC, i.id DESC"
        if q.limit:
            sql += " LIMIT ?"
            args.append(q.limit)
        return self._run(q, lambda: self.conn.execute(sql, args).fetchall())

    def query_stories(self, q: ItemQuery) -> list[tuple[ItemView, Story]]:
        """One row per story that has an item matching the filters: the story's earliest
        published item, with the story's sources. Order and limit apply to stories."""
        where, args = self._item_filters(q)
        hits = ("SELECT DISTINCT coalesce(i.story_id, i.id) FROM items i"
                + (" WHERE " + " AND ".join(where) if where else ""))
        # A story's first item has story_id = its own id (or NULL when alone), so members
        # are an index lookup each way; the head is the earliest published of them.
        sql = (f"WITH hits (sid) AS ({hits}), heads AS (SELECT id FROM (SELECT m.id, "
               "row_number() OVER (PARTITION BY coalesce(m.story_id, m.id) "
               "ORDER BY m.published, m.id) AS rn FROM items m "
               "WHERE m.id IN (SELECT sid FROM hits) OR m.story_id IN (SELECT sid FROM hits)) "
               "WHERE rn = 1) " + self._VIEW_SELECT + "WHERE i.id IN (SELECT id FROM heads)")
        views = self._views(self._ordered(q, sql, args), with_sources=False)
        stories = self._stories([v.id for v in views])
        return [(v, stories[v.id]) for v in views]

    def _stories(self, item_ids: Sequence[int]) -> dict[int, Story]:
        """The story of each of these items, keyed by the item id."""
        if not item_ids:
            return {}
        marks = ",".join("?" * len(item_ids))
        of = dict(self.conn.execute(
            f"SELECT id, coalesce(story_id, id) FROM items WHERE id IN ({marks})", item_ids))
        sids = sorted(set(of.values()))
        smarks = ",".join("?" * len(sids))
        members: dict[int, set[int]] = {}
        sources: dict[int, list[Source]] = {}
        for sid, item_id, feed, url, published, first_seen in self.conn.execute(
                "SELECT coalesce(i.story_id, i.id), i.id, f.name, s.url, s.published, "
                "s.first_seen FROM items i JOIN item_sources s ON s.item_id = i.id "
                f"JOIN feeds f ON f.id = s.feed_id WHERE i.id IN ({smarks}) "
                f"OR i.story_id IN ({smarks}) ORDER BY s.published, s.first_seen, f.name",
                [*sids, *sids]):
            members.setdefault(sid, set()).add(item_id)
            sources.setdefault(sid, []).append(
                Source(feed, url, from_iso(published), from_iso(first_seen)))
        out = {}
        for item_id, sid in of.items():
            found = sources.get(sid, [])
            out[item_id] = Story(sid, len(members.get(sid, ())), tuple(found),
                                 found[0].feed if found else "")
        return out

    def _views(self, rows: list[tuple], *, with_sources: bool) -> list[ItemView]:
        if not rows:
            return []
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        tags: dict[int, list[TagScore]] = {i: [] for i in ids}
        for r in self.conn.execute(
                "SELECT item_id, tag, score, source, model_version, reasons FROM item_tags "
                f"WHERE item_id IN ({marks}) ORDER BY score DESC, tag", ids):
            tags[r[0]].append(TagScore(r[1], r[2], r[3], r[4], tuple(json.loads(r[5]))))
        sources: dict[int, list[Source]] = {i: [] for i in ids}
        if with_sources:
            for r in self.conn.execute(
                    "SELECT s.item_id, f.name, s.url, s.published, s.first_seen FROM item_sources s "
                    f"JOIN feeds f ON f.id = s.feed_id WHERE s.item_id IN ({marks}) "
                    "ORDER BY s.published, s.first_seen", ids):
                sources[r[0]].append(Source(r[1], r[2], from_iso(r[3]), from_iso(r[4])))
        return [ItemView(
            id=r[0], title=r[1], url=r[2], feed=r[3], published=from_iso(r[4]), summary=r[5],
            categories=tuple(json.loads(r[6])), tags=tuple(tags[r[0]]),
            # No HTML is stored when it had no markup (normalize.stored_html): it is the
            # text, escaped (normalize.display_html, inlined: queries must not load nh3).
            sources=tuple(sources[r[0]]), content_html=r[7] or html.escape(r[5], quote=False),
            authors=tuple(json.loads(r[8])),
            language=r[9], date_is_fetch_time=bool(r[10])) for r in rows]

    def get_item(self, item_id: int) -> ItemView | None:
        rows = self.conn.execute(self._VIEW_SELECT + "WHERE i.id = ?", (item_id,)).fetchall()
        views = self._views(rows, with_sources=True)
        return views[0] if views else None

    def items_by_ids(self, item_ids: Sequence[int]) -> list[ItemView]:
        if not item_ids:
            return []
        rows = self.conn.execute(
            self._VIEW_SELECT + f"WHERE i.id IN ({','.join('?' * len(item_ids))}) "
            "ORDER BY i.published DESC, i.id DESC", list(item_ids)).fetchall()
        return self._views(rows, with_sources=True)

    def tag_counts(self, since: datetime | None, now: datetime) -> list[TagCount]:
        args: list[object] = []
        cond = ""
        if since:
            cond = " AND i.published >= ?"
            args.append(to_iso(since))
        per_day: dict[str, list[tuple[str, int]]] = {}
        for tag, day, n in self.conn.execute(
                # CROSS JOIN keeps items outside: the date range on the items_published
                # index (covering), then each item's tags by primary key. Left to itself,
                # without ANALYZE statistics, SQLite scans every tag row and reads every item.
                "SELECT t.tag, substr(i.published, 1, 10) AS day, count(*) FROM items i "
                f"CROSS JOIN item_tags t ON t.item_id = i.id WHERE 1=1{cond} GROUP BY t.tag, day "
                "ORDER BY t.tag, day", args):
            per_day.setdefault(tag, []).append((day, n))
        counts = [TagCount(tag, sum(n for _, n in days), tuple(days))
                  for tag, days in per_day.items()]
        return sorted(counts, key=lambda c: (-c.count, c.tag))

    def raw_hashes(self, feed_id: int) -> set[str]:
        """The raw hashes of a feed's stored entries (aggregator.parse.feeds.raw_hash)."""
        return {r[0] for r in self.conn.execute(
            "SELECT raw_hash FROM item_sources WHERE feed_id = ? AND raw_hash IS NOT NULL",
            (feed_id,))}

    def remember_raw_hashes(self, feed_id: int, pairs: Sequence[tuple[str, str]]) -> None:
        """Record (entry key, raw hash) for a feed's stored entries."""
        if not pairs:
            return
        with self._tx() as c:
            c.executemany("UPDATE item_sources SET raw_hash = ? WHERE feed_id = ? AND entry_key = ?",
                          [(h, feed_id, key) for key, h in pairs])

    def distinct_tags(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT tag FROM item_tags ORDER BY tag")]

    def count_items(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM items").fetchone()[0])

    def count_items_since(self, since: datetime) -> int:
        return int(self.conn.execute("SELECT count(*) FROM items WHERE first_seen >= ?",
                                     (to_iso(since),)).fetchone()[0])

    # -- labels -------------------------------------------------------------------------

    def set_labels(self, item_id: int, add: Sequence[str], remove: Sequence[str],
                   now: datetime) -> None:
        stamp = to_iso(now)
        with self._tx() as c:
            for tag, value in [*((t, 1) for t in add), *((t, 0) for t in remove)]:
                c.execute("INSERT INTO labels (item_id, tag, value, labelled_at) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT (item_id, tag) DO UPDATE SET value = excluded.value, "
                          "labelled_at = excluded.labelled_at", (item_id, tag, value, stamp))
                if value:
                    c.execute(
                        "INSERT INTO item_tags (item_id, tag, score, source, reasons, tagged_at) "
                        "VALUES (?, ?, 1.0, 'user', '[\"labelled by a user\"]', ?) "
                        "ON CONFLICT (item_id, tag) DO UPDATE SET score = 1.0, source = 'user', "
                        "model_version = NULL, reasons = excluded.reasons, "
                        "tagged_at = excluded.tagged_at", (item_id, tag, stamp))
                else:
                    c.execute("DELETE FROM item_tags WHERE item_id = ? AND tag = ?", (item_id, tag))

    def labelled_examples(self) -> list[tuple[ItemToClassify, dict[str, int]]]:
        labels: dict[int, dict[str, int]] = {}
        for item_id, tag, value in self.conn.execute("SELECT item_id, tag, value FROM labels"):
            labels.setdefault(item_id, {})[tag] = value
        if not labels:
            return []
        ids = sorted(labels)
        rows = self.conn.execute(
            self._CLASSIFY_SELECT + f"WHERE i.id IN ({','.join('?' * len(ids))})", ids)
        return [(item, labels[item.id]) for item in self._to_classify(rows)]

    # -- digests ------------------------------------------------------------------------

    def delivered(self, recipient: str, item_ids: Sequence[int]) -> set[int]:
        if not item_ids:
            return set()
        rows = self.conn.execute(
            f"SELECT item_id FROM deliveries WHERE recipient = ? AND item_id IN "
            f"({','.join('?' * len(item_ids))})", [recipient, *item_ids])
        return {r[0] for r in rows}

    def record_delivery(self, subscription: str, recipients: Sequence[str],
                        item_ids: Sequence[int], period_end: datetime, message_id: str,
                        now: datetime) -> None:
        stamp = to_iso(now)
        with self._tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO deliveries (recipient, item_id, subscription, sent_at, "
                "message_id) VALUES (?, ?, ?, ?, ?)",
                [(r, i, subscription, stamp, message_id) for r in recipients for i in item_ids])
            c.execute(
                "INSERT INTO digest_runs (subscription, period_end, status, claimed_at, sent_at, "
                "items, message_id) VALUES (?, ?, 'sent', ?, ?, ?, ?) "
                "ON CONFLICT (subscription, period_end) DO UPDATE SET status = 'sent', "
                "sent_at = excluded.sent_at, items = excluded.items, message_id = excluded.message_id",
                (subscription, to_iso(period_end), stamp, stamp, len(item_ids), message_id))

    def last_digest(self, subscription: str) -> datetime | None:
        row = self.conn.execute(
            "SELECT max(period_end) FROM digest_runs WHERE subscription = ? AND status = 'sent'",
            (subscription,)).fetchone()
        return _dt(row[0]) if row else None

    def _ledger(self, c: sqlite3.Connection, subscription: str,
                sent: Sequence[tuple[Sequence[str], Sequence[int], str | None]], stamp: str) -> int:
        rows = [(r, i, subscription, stamp, message_id)
                for recipients, item_ids, message_id in sent for r in recipients for i in item_ids]
        # OR IGNORE: the first delivery of an item to a recipient is the one on record.
        c.executemany(
            "INSERT OR IGNORE INTO deliveries (recipient, item_id, subscription, sent_at, "
            "message_id) VALUES (?, ?, ?, ?, ?)", rows)
        return len({i for _, item_ids, _ in sent for i in item_ids})

    def claim_digest(self, subscription: str, period_end: datetime, owner: str, now: datetime,
                     stale_before: datetime) -> bool:
        """Take a period for sending. False when it was sent, or another process holds a
        claim taken at or after ``stale_before`` (an older one is from a process that died)."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO digest_runs (subscription, period_end, status, claimed_by, "
                "claimed_at) VALUES (?, ?, 'sending', ?, ?) "
                "ON CONFLICT (subscription, period_end) DO UPDATE SET "
                "claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at "
                "WHERE digest_runs.status = 'sending' AND digest_runs.claimed_at < ?",
                (subscription, to_iso(period_end), owner, to_iso(now), to_iso(stale_before)))
            return cur.rowcount == 1

    def complete_digest(self, subscription: str, period_end: datetime, owner: str,
                        sent: Sequence[tuple[Sequence[str], Sequence[int], str | None]],
                        now: datetime) -> None:
        """The ledger for what the server accepted and the period marked 'sent', together.

        Whoever holds the claim by now, the mail went out: the ledger records it anyway.
        """
        stamp = to_iso(now)
        with self._tx() as c:
            items = self._ledger(c, subscription, sent, stamp)
            ids = [m for _, _, m in sent if m]
            c.execute(
                "INSERT INTO digest_runs (subscription, period_end, status, claimed_by, "
                "claimed_at, sent_at, items, message_id) VALUES (?, ?, 'sent', ?, ?, ?, ?, ?) "
                "ON CONFLICT (subscription, period_end) DO UPDATE SET status = 'sent', "
                "sent_at = excluded.sent_at, items = excluded.items, "
                "message_id = excluded.message_id",
                (subscription, to_iso(period_end), owner, stamp, stamp, items,
                 " ".join(ids) or None))

    def release_digest(self, subscription: str, period_end: datetime, owner: str,
                       sent: Sequence[tuple[Sequence[str], Sequence[int], str | None]],
                       now: datetime) -> None:
        """Give a claimed period back after a failure, keeping in the ledger what the
        server did accept (a digest split between recipients may have half gone out)."""
        with self._tx() as c:
            self._ledger(c, subscription, sent, to_iso(now))
            c.execute("DELETE FROM digest_runs WHERE subscription = ? AND period_end = ? "
                      "AND status = 'sending' AND claimed_by = ?",
                      (subscription, to_iso(period_end), owner))

    def digest_candidates(self, q: ItemQuery, seen_since: datetime, seen_before: datetime,
                          limit: int | None = None) -> list[ItemView]:
        """Items matching a query that were first stored in [seen_since, seen_before), with
        their sources. The upper bound is the digest's cut-off: an item stored while a
        digest is being built waits for the next one. ``q.limit`` and ``q.sort`` are not
        used: the digest ranks and cuts after removing what was already delivered."""
        where = ["i.first_seen >= ?", "i.first_seen < ?"]
        args: list[object] = [to_iso(seen_since), to_iso(seen_before)]
        extra = ""
        extra_args: list[object] = []
        if q.min_score is not None:
            extra += " AND t.score >= ?"
            extra_args.append(q.min_score)
        if q.sources:
            extra += f" AND t.source IN ({','.join('?' * len(q.sources))})"
            extra_args += list(q.sources)
        # IN (subquery) rather than EXISTS lets SQLite start from the (tag, score) index.
        for tag in q.tags:
            where.append("i.id IN (SELECT t.item_id FROM item_tags t WHERE t.tag = ?" + extra + ")")
            args += [tag, *extra_args]
        if q.any_tags:
            where.append("i.id IN (SELECT t.item_id FROM item_tags t WHERE t.tag IN "
                         f"({','.join('?' * len(q.any_tags))})" + extra + ")")
            args += [*q.any_tags, *extra_args]
        if extra and not (q.tags or q.any_tags):
            where.append("i.id IN (SELECT t.item_id FROM item_tags t WHERE 1 = 1" + extra + ")")
            args += extra_args
        more, more_args = self._narrowing_filters(q)
        where += more
        args += more_args
        if q.search:
            where.append("i.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)")
            args.append(q.search)
        sql = self._VIEW_SELECT + "WHERE " + " AND ".join(where) + " ORDER BY i.first_seen, i.id"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        try:
            rows = self.conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if q.search and _search_syntax_error(e):
                from aggregator.errors import ConfigError
                raise ConfigError("config/queries.toml", "search", "an FTS5 expression",
                                  f"{q.search!r} ({e})") from None
            raise
        return self._collapse_stories(self._views(rows, with_sources=True))

    def _collapse_stories(self, views: list[ItemView]) -> list[ItemView]:
        """One view per story, in the order stories first appear: the story's first item
        (its id is the story id, so the delivery ledger sees one id per story however
        many copies arrive later) with every member's sources and each tag's best score."""
        stories = self._stories([v.id for v in views])
        if all(stories[v.id].items <= 1 for v in views):
            return views
        sids = list(dict.fromkeys(stories[v.id].id for v in views))
        marks = ",".join("?" * len(sids))
        story_of = dict(self.conn.execute(
            f"SELECT id, coalesce(story_id, id) FROM items WHERE id IN ({marks}) "
            f"OR story_id IN ({marks})", [*sids, *sids]))
        rows = self.conn.execute(
            self._VIEW_SELECT + f"WHERE i.id IN ({','.join('?' * len(story_of))}) ORDER BY i.id",
            list(story_of)).fetchall()
        members: dict[int, list[ItemView]] = {}
        for m in self._views(rows, with_sources=False):
            members.setdefault(story_of[m.id], []).append(m)
        out = []
        for sid in sids:
            # Ordered by id: the first is the story's (after a prune, the next one).
            group = members[sid]
            best: dict[str, TagScore] = {}
            for m in group:
                for t in m.tags:
                    if t.tag not in best or t.score > best[t.tag].score:
                        best[t.tag] = t
            tags = tuple(sorted(best.values(), key=lambda t: (-t.score, t.tag)))
            sources = next(stories[v.id].sources for v in views if stories[v.id].id == sid)
            out.append(group[0]._replace(tags=tags, sources=sources))
        return out

    # -- retention ----------------------------------------------------------------------

    def prune(self, before: datetime) -> int:
        """Delete items published and first seen before ``before``, except those a user
        labelled (the labels are training data). Sources, tags, search rows and delivery
        records go with them (ON DELETE CASCADE and the FTS trigger); the free pages go
        back to the file system. Returns how many items were deleted."""
        cut = to_iso(before)
        with self._tx() as c:
            removed = c.execute(
                "DELETE FROM items WHERE published < ? AND first_seen < ? "
                "AND id NOT IN (SELECT item_id FROM labels)", (cut, cut)).rowcount
            # Members left behind by a deleted first item: the earliest remaining one
            # becomes the story's id (computed first, then written, so no row sees a
            # half-updated story).
            moves = c.execute(
                "SELECT story_id, min(id) FROM items WHERE story_id IS NOT NULL "
                "AND story_id NOT IN (SELECT id FROM items) GROUP BY story_id").fetchall()
            c.executemany("UPDATE items SET story_id = ? WHERE story_id = ?",
                          [(new, old) for old, new in moves])
        # Each step of this pragma frees one page, and execute() steps once:
        # executescript runs it to the end.
        self.conn.executescript("PRAGMA incremental_vacuum;")
        return int(removed)

    # -- key/value ----------------------------------------------------------------------

    def delete_meta(self, key: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM meta WHERE key = ?", (key,))

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.conn.execute("SELECT key, value FROM meta WHERE key LIKE ? ESCAPE '\\'",
                                 (escaped + "%",)).fetchall()
        return {k: v for k, v in rows}

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                      "SET value = excluded.value", (key, value))

    def claim_lease(self, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """A lease in the meta table, as '<until, ISO> <owner>': ISO times sort as text."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value WHERE substr(meta.value, 1, 20) <= ? "
                "OR substr(meta.value, 22) = ?",
                (f"lease:{name}", f"{to_iso(now + lease)} {owner}", to_iso(now), owner))
            return cur.rowcount == 1
