"""The PostgreSQL store: psycopg 3, numbered migrations, the same behaviour as SQLiteStore.

Several daemons on several machines may share one database, so every write is safe when
another process does the same at the same moment: uniqueness lives in constraints (an
item per canonical URL, a source per feed and entry key, a digest run per period), inserts
use ON CONFLICT, and a transaction that loses a deadlock is run again. Feeds are handed
out with ``FOR UPDATE SKIP LOCKED`` and a lease; the lease only saves duplicate work, the
constraints are what keep an entry from being stored twice.

The connection is in autocommit mode: a read is one statement; a write method opens one
transaction. Times are timestamptz in UTC, truncated to the second like SQLite's ISO
strings, so both engines compare and order them the same way.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aggregator.errors import ConfigError, StoreError
from aggregator.store import search
from aggregator.types import Attempt, Entry, Feed, IngestResult, ItemToClassify, SyncResult
from aggregator.views import FeedConfig, FeedState, ItemQuery, ItemView, Source, Story, TagCount, TagScore

if TYPE_CHECKING:
    import psycopg

MIGRATIONS = Path(__file__).parent / "migrations" / "postgresql"
_PRECEDENCE = {"model": 0, "rule": 1, "user": 2}
_MIGRATION_LOCK = 0x61676772  # pg_advisory_xact_lock key: daemons starting together migrate once
# Copies of a story are looked for among items published this long before or after it
# (SQLiteStore's STORY_WINDOW).
STORY_WINDOW = timedelta(days=3)
_STORY_LOCKS = 0x61677201  # pg_advisory_xact_lock(_STORY_LOCKS, crc of a canonical URL)
_RETRIES = 8  # a transaction that lost a deadlock, or a serialization failure, is run again
T = TypeVar("T")


def _ts(dt: datetime) -> datetime:
    """A time as stored: UTC, to the second (what SQLite's ISO strings keep)."""
    return dt.astimezone(UTC).replace(microsecond=0)


def _ots(dt: datetime | None) -> datetime | None:
    return _ts(dt) if dt else None


def _utc(dt: datetime | None) -> datetime | None:
    return dt.astimezone(UTC) if dt is not None else None


def redact(url: str) -> str:
    """A database URL fit for a message: no password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, host = rest.partition("@")
    return f"{scheme}://{userinfo.split(':', 1)[0]}@{host}"


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection in UTC; one-line errors when psycopg or the server is missing."""
    try:
        import psycopg
    except ImportError:
        raise ConfigError("database.url", "", "psycopg installed for a postgresql:// URL "
                          "(pip install 'aggregator[postgres]', or pip install -e '.[postgres]')",
                          "no module named psycopg") from None
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise StoreError(f"cannot connect to the database {redact(url)}: {reason}") from None
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def _fingerprint_columns(fp: int | None) -> tuple[int | None, ...]:
    """simhash and its bands as stored (signed 64-bit; NULLs when there is none)."""
    from aggregator.parse import dedupe

    if fp is None:
        return (None,) * (1 + dedupe.BANDS)
    return (dedupe.to_signed(fp), *dedupe.bands(fp))


def _lock_stories(c: psycopg.Connection[Any], urls: Sequence[str]) -> None:
    """Transaction locks on the canonical URLs about to be inserted, taken in one global
    order: two daemons storing the same stories (in different orders) then queue instead
    of deadlocking on the unique index. The two-integer key space is apart from the
    migration lock's."""
    if not urls:
        return
    keys = sorted({zlib.crc32(u.encode()) - (1 << 31) for u in urls})
    c.execute("SELECT count(pg_advisory_xact_lock(%s, k)) FROM unnest(%s::int[]) AS k",
              (_STORY_LOCKS, keys))


def _document(title: str, summary: str) -> tuple[str, str]:
    return search.document(title), search.document(summary)


# The tsvector as the migration describes it: title weighted A, summary B.
_SEARCH_SQL = ("setweight(to_tsvector('simple', %s), 'A') || "
               "setweight(to_tsvector('simple', %s), 'B')")


class PostgresStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = connect(url)
        try:
            self._migrate()
        except Exception:
            self.conn.close()
            raise

    # -- plumbing -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """As SQLite's in shape only: each write inside still commits on its own, because
        each is retried whole when PostgreSQL picks it as a deadlock victim, which an outer
        transaction would make impossible. Commits here cost no fsync (``durable=False``)."""
        yield

    def _write(self, fn: Callable[[psycopg.Connection[Any]], T], *, durable: bool = True) -> T:
        """Run ``fn`` in one transaction; again when PostgreSQL picked it as a deadlock
        victim or could not serialize it (two daemons storing the same stories at once).

        ``durable=False`` (the fetch path: feed state, items, tags) commits without waiting
        for the WAL flush, as SQLite does in WAL mode with synchronous=NORMAL: a server
        crash may lose the last fraction of a second of such commits, in order, so a feed's
        state goes back together with its items and they are fetched again; nothing is
        corrupted. Digests, labels and settings always wait for the flush."""
        import psycopg
        from psycopg import errors

        for attempt in range(_RETRIES):
            try:
                with self.conn.transaction():
                    if not durable:
                        self.conn.execute("SET LOCAL synchronous_commit = off")
                    return fn(self.conn)
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.01 * 2 ** attempt)
            except psycopg.OperationalError as e:
                raise StoreError(f"database {redact(self.url)}: {e}") from None
        raise AssertionError("unreachable")

    def _migrate(self) -> None:
        def run(c: psycopg.Connection[Any]) -> None:
            # One process migrates at a time; the others find the work done.
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            c.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                      "KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            done = {r[0] for r in c.execute("SELECT version FROM schema_migrations")}
            for path in sorted(MIGRATIONS.glob("*.sql")):
                version = int(path.name.split("_", 1)[0])
                if version in done:
                    continue
                c.execute(path.read_text())  # our own file, no parameters
                c.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                          (version, path.stem))

        self._write(run)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> PostgresStore:
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
    def _feed(r: Sequence[Any]) -> Feed:
        return Feed(
            id=r[0], name=r[1], url=r[2], tags=tuple(r[3]),
            interval=timedelta(seconds=r[4]) if r[4] is not None else None,
            active=bool(r[5]), disabled_at=_utc(r[6]), disabled_reason=r[7], title=r[8],
            etag=r[9], last_modified=r[10], body_hash=r[11], last_fetched_at=_utc(r[12]),
            last_success_at=_utc(r[13]), last_full_fetch_at=_utc(r[14]),
            next_fetch_at=_utc(r[15]), consecutive_failures=r[16], failing_since=_utc(r[17]),
            last_error=r[18], malformed=bool(r[19]), pending_redirect_url=r[20],
            pending_redirect_count=r[21], new_items_rate=r[22],
            ttl=timedelta(seconds=r[23]) if r[23] is not None else None)

    def sync_feeds(self, feeds: Sequence[FeedConfig], now: datetime) -> SyncResult:
        """Bring the feeds table in line with feeds.toml (see SQLiteStore.sync_feeds).

        Every daemon does this at each pass: a feed another daemon added a moment ago is
        left alone (ON CONFLICT DO NOTHING), not reported as added twice.
        """
        from psycopg.types.json import Jsonb

        def run(c: psycopg.Connection[Any]) -> SyncResult:
            added, updated, deactivated = [], [], []
            existing = {r[0]: r for r in c.execute(
                "SELECT name, declared_url, tags, interval_s, active FROM feeds")}
            for f in feeds:
                tags = list(f.tags)
                interval = int(f.interval.total_seconds()) if f.interval else None
                old = existing.get(f.name)
                if old is None:
                    cur = c.execute(
                        "INSERT INTO feeds (name, url, declared_url, tags, interval_s) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                        (f.name, f.url, f.url, Jsonb(tags), interval))
                    if cur.rowcount:
                        added.append(f.name)
                elif (old[1], list(old[2]), old[3], old[4]) != (f.url, tags, interval, True):
                    c.execute("UPDATE feeds SET tags = %s, interval_s = %s, active = TRUE "
                              "WHERE name = %s", (Jsonb(tags), interval, f.name))
                    if old[1] != f.url:
                        # A new URL in the file is a fresh start for that feed's validators.
                        c.execute(
                            "UPDATE feeds SET url = %s, declared_url = %s, etag = NULL, "
                            "last_modified = NULL, body_hash = NULL, next_fetch_at = NULL, "
                            "pending_redirect_url = NULL, pending_redirect_count = 0 "
                            "WHERE name = %s", (f.url, f.url, f.name))
                    updated.append(f.name)
            declared = {f.name for f in feeds}
            for name, row in existing.items():
                if name not in declared and row[4]:
                    c.execute("UPDATE feeds SET active = FALSE WHERE name = %s", (name,))
                    deactivated.append(name)
            return SyncResult(tuple(added), tuple(updated), tuple(deactivated))

        return self._write(run, durable=False)

    def feeds(self, names: Sequence[str] | None = None, *,
              include_inactive: bool = False) -> list[Feed]:
        sql = f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE TRUE"
        args: list[object] = []
        if names:
            sql += " AND name = ANY(%s)"
            args.append(list(names))
        if not include_inactive:
            sql += " AND active"
        return [self._feed(r) for r in self.conn.execute(sql + " ORDER BY name", args)]

    def feed_states(self) -> dict[str, FeedState]:
        rows = self.conn.execute(
            "SELECT name, disabled_at IS NULL, disabled_reason, last_fetched_at, "
            "consecutive_failures, failing_since FROM feeds WHERE active")
        return {r[0]: FeedState(r[0], r[1], r[2], _utc(r[3]), r[4], _utc(r[5])) for r in rows}

    def due_feeds(self, now: datetime, limit: int | None = None) -> list[Feed]:
        sql = (f"SELECT {self._FEED_COLUMNS} FROM feeds WHERE active AND disabled_at IS NULL "
               "AND (next_fetch_at IS NULL OR next_fetch_at <= %s) "
               "ORDER BY next_fetch_at NULLS FIRST, id")
        args: list[object] = [_ts(now)]
        if limit:
            sql += " LIMIT %s"
            args.append(limit)
        return [self._feed(r) for r in self.conn.execute(sql, args)]

    def claim_due_feeds(self, now: datetime, limit: int | None, owner: str,
                        lease: timedelta) -> list[Feed]:
        """Take up to ``limit`` due feeds for ``owner`` until ``now + lease``.

        SKIP LOCKED: daemons claiming at the same moment get disjoint feeds without
        waiting on each other. A feed leased by a daemon that died is due again once its
        lease has passed. ``update_feed`` ends the lease.
        """
        def run(c: psycopg.Connection[Any]) -> list[Feed]:
            rows = c.execute(
                "WITH due AS (SELECT id FROM feeds WHERE active AND disabled_at IS NULL "
                "AND (next_fetch_at IS NULL OR next_fetch_at <= %(now)s) "
                "AND (lease_until IS NULL OR lease_until <= %(now)s) "
                "ORDER BY next_fetch_at NULLS FIRST, id LIMIT %(limit)s "
                "FOR UPDATE SKIP LOCKED) "
                "UPDATE feeds f SET lease_owner = %(owner)s, lease_until = %(until)s "
                "FROM due WHERE f.id = due.id RETURNING "
                + ", ".join(f"f.{col.strip()}" for col in self._FEED_COLUMNS.split(",")),
                {"now": _ts(now), "limit": limit, "owner": owner,
                 "until": _ts(now + lease)}).fetchall()
            feeds = [self._feed(r) for r in rows]
            far = datetime.min.replace(tzinfo=UTC)
            return sorted(feeds, key=lambda f: (f.next_fetch_at or far, f.id))

        return self._write(run, durable=False)

    def release_leases(self, owner: str | None = None) -> int:
        return self._write(lambda c: c.execute(
            "UPDATE feeds SET lease_owner = NULL, lease_until = NULL "
            "WHERE lease_owner IS NOT NULL AND (%(owner)s::text IS NULL OR lease_owner = %(owner)s)",
            {"owner": owner}).rowcount)

    def update_feed(self, feed: Feed, attempt: Attempt | None = None,
                    attempts_kept: int = 100) -> None:
        def run(c: psycopg.Connection[Any]) -> None:
            c.execute(
                "UPDATE feeds SET url = %s, disabled_at = %s, disabled_reason = %s, title = %s, "
                "etag = %s, last_modified = %s, body_hash = %s, last_fetched_at = %s, "
                "last_success_at = %s, last_full_fetch_at = %s, next_fetch_at = %s, "
                "consecutive_failures = %s, failing_since = %s, last_error = %s, malformed = %s, "
                "pending_redirect_url = %s, pending_redirect_count = %s, new_items_rate = %s, "
                "ttl_s = %s, lease_owner = NULL, lease_until = NULL WHERE id = %s",
                (feed.url, _ots(feed.disabled_at), feed.disabled_reason, feed.title, feed.etag,
                 feed.last_modified, feed.body_hash, _ots(feed.last_fetched_at),
                 _ots(feed.last_success_at), _ots(feed.last_full_fetch_at),
                 _ots(feed.next_fetch_at), feed.consecutive_failures, _ots(feed.failing_since),
                 feed.last_error, feed.malformed, feed.pending_redirect_url,
                 feed.pending_redirect_count, feed.new_items_rate,
                 int(feed.ttl.total_seconds()) if feed.ttl else None, feed.id))
            if attempt is not None:
                c.execute(
                    "INSERT INTO fetch_attempts (feed_id, at, status, duration_ms, bytes, error, "
                    "event, new_items) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (attempt.feed_id, _ts(attempt.at), attempt.status, attempt.duration_ms,
                     attempt.bytes, attempt.error, attempt.event, attempt.new_items))
                # Bounded history per feed.
                c.execute(
                    "DELETE FROM fetch_attempts WHERE feed_id = %s AND id <= "
                    "(SELECT id FROM fetch_attempts WHERE feed_id = %s ORDER BY id DESC "
                    "LIMIT 1 OFFSET %s)", (attempt.feed_id, attempt.feed_id, attempts_kept))

        self._write(run, durable=False)

    def set_feed_disabled(self, name: str, reason: str | None, now: datetime) -> bool:
        def run(c: psycopg.Connection[Any]) -> bool:
            if reason is None:
                cur = c.execute(
                    "UPDATE feeds SET disabled_at = NULL, disabled_reason = NULL, "
                    "consecutive_failures = 0, failing_since = NULL, next_fetch_at = NULL "
                    "WHERE name = %s", (name,))
            else:
                cur = c.execute("UPDATE feeds SET disabled_at = %s, disabled_reason = %s "
                                "WHERE name = %s", (_ts(now), reason, name))
            return cur.rowcount > 0

        return self._write(run)

    def attempts(self, feed_id: int, limit: int = 20) -> list[Attempt]:
        rows = self.conn.execute(
            "SELECT feed_id, at, status, duration_ms, bytes, error, event, new_items "
            "FROM fetch_attempts WHERE feed_id = %s ORDER BY id DESC LIMIT %s", (feed_id, limit))
        return [Attempt(r[0], r[1].astimezone(UTC), r[2], r[3], r[4], r[5], r[6], r[7])
                for r in rows]

    # -- items --------------------------------------------------------------------------

    def save_entries(self, feed: Feed, entries: Sequence[Entry], now: datetime) -> IngestResult:
        """Store a feed's entries (see SQLiteStore.save_entries: the same rules, the same
        stories), safe against another daemon storing the same story at the same moment:
        the canonical URL's unique index decides who creates the item, the other adds its
        source to it."""
        from psycopg.types.json import Jsonb

        from aggregator.parse import dedupe

        stamp = _ts(now)

        def run(c: psycopg.Connection[Any]) -> IngestResult:
            new: list[int] = []
            updated: list[int] = []
            # What this feed already has, in one round trip.
            known: dict[str, tuple[int, int, str]] = {
                r[0]: (r[1], r[2], r[3]) for r in c.execute(
                    "SELECT s.entry_key, s.item_id, i.feed_id, i.content_hash FROM item_sources s "
                    "JOIN items i ON i.id = s.item_id WHERE s.feed_id = %s AND s.entry_key = ANY(%s)",
                    (feed.id, list(dict.fromkeys(e.key for e in entries))))}
            fresh: list[Entry] = []
            changed: list[tuple[int, Entry]] = []
            _lock_stories(c, [e.canonical_url for e in entries
                              if e.canonical_url and e.key not in known])
            for e in entries:
                row = known.get(e.key)
                if row is None:
                    fresh.append(e)
                    continue
                item_id, owner, old_hash = row
                # Only the feed that first carried an item rewrites it.
                if owner == feed.id and old_hash != e.content_hash:
                    c.execute(
                        "UPDATE items SET title = %s, url = %s, summary = %s, content_html = %s, "
                        "authors = %s, categories = %s, language = %s, content_hash = %s, "
                        f"updated_at = %s, search = {_SEARCH_SQL}, needs_classify = TRUE "
                        "WHERE id = %s",
                        (e.title, e.url, e.summary, e.content_html, Jsonb(list(e.authors)),
                         Jsonb(list(e.categories)), e.language, e.content_hash, stamp,
                         *_document(e.title, e.summary), item_id))
                    c.execute("UPDATE item_sources SET title = %s, url = %s "
                              "WHERE feed_id = %s AND entry_key = %s",
                              (e.title, e.url, feed.id, e.key))
                    updated.append(item_id)
                    changed.append((item_id, e))
            # Fingerprints in one batch (numpy's cost is per call), only for what is new.
            fps = dedupe.fingerprints([(e.title, e.summary) for e in fresh])
            todo: list[tuple[Entry, int | None]] = []
            for e, fp in zip(fresh, fps, strict=True):
                if e.key not in known:  # the same key twice in one document: the first wins
                    known[e.key] = (0, feed.id, e.content_hash)
                    todo.append((e, fp))
            if todo:
                new = self._insert_fresh(c, feed, todo, stamp)
            if changed:
                # A rewritten text gets a fresh fingerprint for later copies to match; the
                # story it is in stays (story ids do not move under readers' feet).
                fps = dedupe.fingerprints([(e.title, e.summary) for _, e in changed])
                with c.cursor() as cur:
                    cur.executemany(
                        "UPDATE items SET simhash = %s, simhash_b0 = %s, simhash_b1 = %s, "
                        "simhash_b2 = %s, simhash_b3 = %s WHERE id = %s",
                        [(*_fingerprint_columns(fp), i)
                         for (i, _), fp in zip(changed, fps, strict=True)])
            return IngestResult(tuple(new), tuple(updated))

        return self._write(run, durable=False)

    @staticmethod
    def _insert_fresh(c: psycopg.Connection[Any], feed: Feed,
                      todo: Sequence[tuple[Entry, int | None]], stamp: datetime) -> list[int]:
        """Insert new entries in a few statements whatever their number (a round trip per
        row is what costs on a network database); returns the ids of the items created,
        in entry order, with the same outcome as SQLite's row-by-row loop."""
        from psycopg.types.json import Jsonb

        # Ids taken first, in entry order, so each row's id is known before the insert
        # (one lost to a canonical URL already stored is a harmless gap).
        ids = sorted(r[0] for r in c.execute(
            "SELECT nextval(pg_get_serial_sequence('items', 'id')) FROM generate_series(1, %s)",
            (len(todo),)))
        cols: list[list[Any]] = [[] for _ in range(20)]
        for n, (e, fp) in enumerate(todo):
            row = (ids[n], e.canonical_url, e.url, e.title, e.summary, e.content_html,
                   _ts(e.published), e.date_is_fetch_time, Jsonb(list(e.authors)),
                   Jsonb(list(e.categories)), e.language, e.content_hash,
                   *_fingerprint_columns(fp), *_document(e.title, e.summary), n)
            for col, value in zip(cols, row, strict=True):
                col.append(value)
        created = {r[0] for r in c.execute(
            "INSERT INTO items (id, feed_id, canonical_url, url, title, summary, content_html, "
            "published, date_is_fetch_time, authors, categories, language, content_hash, "
            "first_seen, updated_at, simhash, simhash_b0, simhash_b1, simhash_b2, simhash_b3, "
            "search) SELECT id, %s, cu, url, title, summary, html, pub, dft, au, cat, lang, ch, "
            "%s, %s, sh, b0, b1, b2, b3, setweight(to_tsvector('simple', td), 'A') || "
            "setweight(to_tsvector('simple', sd), 'B') FROM unnest(%s::bigint[], %s::text[], "
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::bool[], "
            "%s::jsonb[], %s::jsonb[], %s::text[], %s::text[], %s::bigint[], %s::int[], "
            "%s::int[], %s::int[], %s::int[], %s::text[], %s::text[], %s::int[]) "
            "AS r (id, cu, url, title, summary, html, pub, dft, au, cat, lang, ch, sh, b0, b1, "
            "b2, b3, td, sd, ord) ORDER BY ord "
            # Whoever inserts a canonical URL first owns the item (another daemon's
            # transaction is waited for); the others join it as sources, below.
            "ON CONFLICT (canonical_url) WHERE canonical_url IS NOT NULL DO NOTHING "
            "RETURNING id", (feed.id, stamp, stamp, *cols))}
        owners: dict[str, int] = {}
        lost = [e.canonical_url for n, (e, _) in enumerate(todo)
                if ids[n] not in created and e.canonical_url]
        if lost:
            owners = {r[1]: r[0] for r in c.execute(
                "SELECT id, canonical_url FROM items WHERE canonical_url = ANY(%s)", (lost,))}
        item_of = [ids[n] if ids[n] in created else owners[e.canonical_url or ""]
                   for n, (e, _) in enumerate(todo)]
        stored = {r[0] for r in c.execute(
            "INSERT INTO item_sources (feed_id, entry_key, item_id, url, title, published, "
            "first_seen) SELECT %s, k, i, u, t, p, %s FROM unnest(%s::text[], %s::bigint[], "
            "%s::text[], %s::text[], %s::timestamptz[]) AS r (k, i, u, t, p) "
            "ON CONFLICT (feed_id, entry_key) DO NOTHING RETURNING entry_key",
            (feed.id, stamp, [e.key for e, _ in todo], item_of, [e.url for e, _ in todo],
             [e.title for e, _ in todo], [_ts(e.published) for e, _ in todo]))}
        dropped: set[int] = set()
        if len(stored) < len(todo):
            # Another daemon stored some of these very entries a moment ago (a lease that
            # ran out mid-fetch): they are theirs; items made here for them go.
            orphans = [ids[n] for n, (e, _) in enumerate(todo)
                       if e.key not in stored and ids[n] in created]
            dropped = {r[0] for r in c.execute(
                "DELETE FROM items i WHERE id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM "
                "item_sources s WHERE s.item_id = i.id) RETURNING id", (orphans,))}
        new = [ids[n] for n in range(len(todo)) if ids[n] in created and ids[n] not in dropped]
        by_id = {ids[n]: (e, fp) for n, (e, fp) in enumerate(todo)}
        PostgresStore._assign_stories(c, [(i, fp, e.published) for i in new
                                          for e, fp in [by_id[i]] if fp is not None])
        return new

    @staticmethod
    def _assign_stories(c: psycopg.Connection[Any],
                        items: Sequence[tuple[int, int, datetime]]) -> None:
        """Put each new item in the story of its nearest near-duplicate (see
        dedupe.story_choices), for a whole batch: the candidates of every item in one
        query (each item seeing only older ids, as when inserted one by one), the choices
        made in order in Python, the updates sent together. Two daemons storing two copies
        at the same instant do not see each other's uncommitted item: those stay apart."""
        from aggregator.parse import dedupe

        if not items:
            return
        bands = [dedupe.bands(fp) for _, fp, _ in items]
        arrays = ([i for i, _, _ in items], *([b[n] for b in bands] for n in range(dedupe.BANDS)),
                  [_ts(p - STORY_WINDOW) for _, _, p in items],
                  [_ts(p + STORY_WINDOW) for _, _, p in items])
        found: dict[int, list[tuple[int, int | None, int]]] = {}
        for new_id, other, story, simhash in c.execute(
                "WITH n (id, b0, b1, b2, b3, lo, hi) AS (SELECT * FROM unnest(%s::bigint[], "
                "%s::int[], %s::int[], %s::int[], %s::int[], %s::timestamptz[], "
                "%s::timestamptz[])) " + " UNION ".join(
                    f"SELECT n.id, i.id, i.story_id, i.simhash FROM n JOIN items i ON "
                    f"i.simhash_b{b} = n.b{b} AND i.published BETWEEN n.lo AND n.hi "
                    "AND i.id < n.id" for b in range(dedupe.BANDS)), arrays):
            found.setdefault(new_id, []).append((other, story, simhash))
        updates = dedupe.story_choices([(i, fp) for i, fp, _ in items], found)
        if updates:
            heads = sorted({h for _, h in updates})
            c.execute("UPDATE items SET story_id = id WHERE id = ANY(%s) AND story_id IS NULL",
                      (heads,))
            c.execute("UPDATE items i SET story_id = u.s FROM unnest(%s::bigint[], %s::bigint[]) "
                      "AS u (id, s) WHERE i.id = u.id",
                      ([i for i, _ in updates], [h for _, h in updates]))

    _CLASSIFY_SELECT = (
        "SELECT i.id, i.title, i.summary, i.categories, "
        "ARRAY(SELECT DISTINCT jsonb_array_elements_text(f.tags) FROM item_sources s "
        " JOIN feeds f ON f.id = s.feed_id WHERE s.item_id = i.id) FROM items i ")

    @staticmethod
    def _to_classify(r: Sequence[Any]) -> ItemToClassify:
        return ItemToClassify(r[0], r[1], r[2], tuple(r[3]), tuple(sorted(r[4] or ())))

    def items_to_classify(self, limit: int, after_id: int = 0) -> list[ItemToClassify]:
        rows = self.conn.execute(
            self._CLASSIFY_SELECT + "WHERE i.needs_classify AND i.id > %s ORDER BY i.id LIMIT %s",
            (after_id, limit))
        return [self._to_classify(r) for r in rows]

    def items_for_reclassify(self, since: datetime | None,
                             batch: int) -> Iterator[list[ItemToClassify]]:
        last = 0
        while True:
            sql = self._CLASSIFY_SELECT + "WHERE i.id > %s"
            args: list[object] = [last]
            if since is not None:
                sql += " AND i.published >= %s"
                args.append(_ts(since))
            rows = [self._to_classify(r) for r in self.conn.execute(
                sql + " ORDER BY i.id LIMIT %s", [*args, batch])]
            if not rows:
                return
            last = rows[-1].id
            yield rows

    def _write_tags(self, source: str, results: Sequence[tuple[int, Sequence[TagScore]]],
                    now: datetime, mark_classified: bool) -> int:
        from psycopg.types.json import Jsonb

        stamp = _ts(now)
        rank = _PRECEDENCE[source]
        ids = [item_id for item_id, _ in results]
        rows = [(item_id, t.tag, float(t.score), source, t.model_version,
                 Jsonb(list(t.reasons)), stamp)
                for item_id, tags in results for t in tags]
        higher = [s for s, r in _PRECEDENCE.items() if r > rank]

        def run(c: psycopg.Connection[Any]) -> int:
            with c.cursor() as cur:
                # Replace this source's tags on these items; never touch a higher-ranked source.
                cur.execute("DELETE FROM item_tags WHERE item_id = ANY(%s) AND source = %s",
                            (ids, source))
                if rows:
                    cur.executemany(
                        "INSERT INTO item_tags (item_id, tag, score, source, model_version, "
                        "reasons, tagged_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT (item_id, tag) DO UPDATE SET score = excluded.score, "
                        "source = excluded.source, model_version = excluded.model_version, "
                        "reasons = excluded.reasons, tagged_at = excluded.tagged_at "
                        "WHERE item_tags.source <> ALL(%s)",
                        [(*r, higher) for r in rows])
                # A user's "not this tag" label keeps the model from putting it back.
                cur.execute(
                    "DELETE FROM item_tags t USING labels l WHERE t.item_id = ANY(%s) "
                    "AND t.source <> 'user' AND l.item_id = t.item_id AND l.tag = t.tag "
                    "AND l.value = 0", (ids,))
                if mark_classified:
                    cur.execute("UPDATE items SET needs_classify = FALSE WHERE id = ANY(%s)",
                                (ids,))
            return len(rows)

        return self._write(run, durable=False)

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
    def _search(expression: str) -> tuple[str, list[object]]:
        """The WHERE clause for a search (raises SearchSyntaxError)."""
        tsquery = search.to_tsquery(expression)
        if tsquery is None:
            return "FALSE", []  # only punctuation: matches nothing, as on FTS5
        return "i.search @@ to_tsquery('simple', %s)", [tsquery]

    @staticmethod
    def _narrowing_filters(q: ItemQuery) -> tuple[list[str], list[object]]:
        """The filters every item query shares, whatever it starts from: tags excluded,
        feeds, and the publication window (as SQLiteStore's)."""
        where: list[str] = []
        args: list[object] = []
        for tag in q.not_tags:
            where.append("NOT EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id "
                         "AND t.tag = %s)")
            args.append(tag)
        if q.feeds:
            where.append("EXISTS (SELECT 1 FROM item_sources s JOIN feeds sf ON sf.id = s.feed_id "
                         "WHERE s.item_id = i.id AND sf.name = ANY(%s))")
            args.append(list(q.feeds))
        if q.since:
            where.append("i.published >= %s")
            args.append(_ts(q.since))
        if q.until:
            where.append("i.published < %s")
            args.append(_ts(q.until))
        return where, args

    def _item_filters(self, q: ItemQuery) -> tuple[list[str], list[object]]:
        """The WHERE terms (over ``items i``) and their arguments for a query's filters."""
        where: list[str] = []
        args: list[object] = []
        score = "" if q.min_score is None else " AND t.score >= %s"
        score_args = [] if q.min_score is None else [q.min_score]
        source = " AND t.source = ANY(%s)" if q.sources else ""
        source_args: list[object] = [list(q.sources)] if q.sources else []
        for tag in q.tags:
            where.append("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id AND t.tag = %s"
                         + score + source + ")")
            args += [tag, *score_args, *source_args]
        if q.any_tags:
            where.append("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id "
                         "AND t.tag = ANY(%s)" + score + source + ")")
            args += [list(q.any_tags), *score_args, *source_args]
        if q.sources and not (q.tags or q.any_tags):
            where.append("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id"
                         + source + ")")
            args += source_args
        narrow, narrow_args = self._narrowing_filters(q)
        where += narrow
        args += narrow_args
        if q.search:
            try:
                clause, more = self._search(q.search)
            except search.SearchSyntaxError as e:
                from aggregator.errors import UsageError
                raise UsageError(f"bad --search expression {q.search!r}: {e}") from None
            where.append(clause)
            args += more
        return where, args

    def query_items(self, q: ItemQuery) -> list[ItemView]:
        where, args = self._item_filters(q)
        ranked = q.tags or q.any_tags
        if q.sort == "score" and len(ranked) == 1 and q.limit:
            # As SQLiteStore._page_ids: down the one tag's (tag, score) index, only items
            # tied on score sorted by date (an incremental sort), LIMIT stopping the walk;
            # ordering by a subquery per item instead sorts every item with the tag.
            sql = (self._VIEW_SELECT.replace("FROM items i", "FROM item_tags r JOIN items i "
                                             "ON i.id = r.item_id", 1)
                   + "WHERE r.tag = %s" + "".join(f" AND {w}" for w in where)
                   + " ORDER BY r.score DESC, i.published DESC, i.id DESC LIMIT %s")
            rows = self.conn.execute(sql, [ranked[0], *args, q.limit]).fetchall()
            return self._views(rows, with_sources=False)
        sql = self._VIEW_SELECT + ("WHERE " + " AND ".join(where) if where else "")
        return self._views(self._ordered(q, sql, args), with_sources=False)

    def _ordered(self, q: ItemQuery, sql: str, args: list[object]) -> list[Any]:
        """Run a view query with the query's order and limit."""
        if q.sort == "score" and (q.tags or q.any_tags):
            # NULLS LAST: SQLite sorts NULL lowest, so last when descending.
            sql += (" ORDER BY (SELECT max(t.score) FROM item_tags t WHERE t.item_id = i.id AND "
                    "t.tag = ANY(%s)) DESC NULLS LAST, i.published DESC, i.id DESC")
            args = [*args, list(q.tags or q.any_tags)]
        else:
            sql += " ORDER BY i.published DESC, i.id DESC"
        if q.limit:
            sql += " LIMIT %s"
            args = [*args, q.limit]
        return self.conn.execute(sql, args).fetchall()

    def query_stories(self, q: ItemQuery) -> list[tuple[ItemView, Story]]:
        """One row per story that has an item matching the filters: the story's earliest
        published item, with the story's sources (see SQLiteStore.query_stories)."""
        where, args = self._item_filters(q)
        hits = ("SELECT DISTINCT coalesce(i.story_id, i.id) FROM items i"
                + (" WHERE " + " AND ".join(where) if where else ""))
        sql = (f"WITH hits (sid) AS ({hits}), heads AS (SELECT id FROM (SELECT m.id, "
               "row_number() OVER (PARTITION BY coalesce(m.story_id, m.id) "
               "ORDER BY m.published, m.id) AS rn FROM items m "
               "WHERE m.id IN (SELECT sid FROM hits) OR m.story_id IN (SELECT sid FROM hits)) "
               "AS ranked WHERE rn = 1) " + self._VIEW_SELECT
               + "WHERE i.id IN (SELECT id FROM heads)")
        views = self._views(self._ordered(q, sql, args), with_sources=False)
        stories = self._stories([v.id for v in views])
        return [(v, stories[v.id]) for v in views]

    def _stories(self, item_ids: Sequence[int]) -> dict[int, Story]:
        """The story of each of these items, keyed by the item id."""
        if not item_ids:
            return {}
        of: dict[int, int] = {r[0]: r[1] for r in self.conn.execute(
            "SELECT id, coalesce(story_id, id) FROM items WHERE id = ANY(%s)", (list(item_ids),))}
        sids = sorted(set(of.values()))
        members: dict[int, set[int]] = {}
        sources: dict[int, list[Source]] = {}
        for sid, item_id, feed, url, published, first_seen in self.conn.execute(
                "SELECT coalesce(i.story_id, i.id), i.id, f.name, s.url, s.published, "
                "s.first_seen FROM items i JOIN item_sources s ON s.item_id = i.id "
                "JOIN feeds f ON f.id = s.feed_id WHERE i.id = ANY(%s) "
                "OR i.story_id = ANY(%s) ORDER BY s.published, s.first_seen, f.name",
                (sids, sids)):
            members.setdefault(sid, set()).add(item_id)
            sources.setdefault(sid, []).append(
                Source(feed, url, published.astimezone(UTC), first_seen.astimezone(UTC)))
        out = {}
        for item_id, sid in of.items():
            found = sources.get(sid, [])
            out[item_id] = Story(sid, len(members.get(sid, ())), tuple(found),
                                 found[0].feed if found else "")
        return out

    def _collapse_stories(self, views: list[ItemView]) -> list[ItemView]:
        """One view per story, in the order stories first appear (see
        SQLiteStore._collapse_stories)."""
        stories = self._stories([v.id for v in views])
        if all(stories[v.id].items <= 1 for v in views):
            return views
        sids = list(dict.fromkeys(stories[v.id].id for v in views))
        story_of: dict[int, int] = {r[0]: r[1] for r in self.conn.execute(
            "SELECT id, coalesce(story_id, id) FROM items WHERE id = ANY(%s) "
            "OR story_id = ANY(%s)", (sids, sids))}
        rows = self.conn.execute(self._VIEW_SELECT + "WHERE i.id = ANY(%s) ORDER BY i.id",
                                 (list(story_of),)).fetchall()
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

    def _views(self, rows: list[Any], *, with_sources: bool) -> list[ItemView]:
        if not rows:
            return []
        ids = [r[0] for r in rows]
        tags: dict[int, list[TagScore]] = {i: [] for i in ids}
        for r in self.conn.execute(
                "SELECT item_id, tag, score, source, model_version, reasons FROM item_tags "
                "WHERE item_id = ANY(%s) ORDER BY score DESC, tag", (ids,)):
            tags[r[0]].append(TagScore(r[1], r[2], r[3], r[4], tuple(r[5])))
        sources: dict[int, list[Source]] = {i: [] for i in ids}
        if with_sources:
            for r in self.conn.execute(
                    "SELECT s.item_id, f.name, s.url, s.published, s.first_seen FROM item_sources s "
                    "JOIN feeds f ON f.id = s.feed_id WHERE s.item_id = ANY(%s) "
                    "ORDER BY s.published, s.first_seen", (ids,)):
                sources[r[0]].append(Source(r[1], r[2], r[3].astimezone(UTC),
                                            r[4].astimezone(UTC)))
        return [ItemView(
            id=r[0], title=r[1], url=r[2], feed=r[3], published=r[4].astimezone(UTC),
            summary=r[5], categories=tuple(r[6]), tags=tuple(tags[r[0]]),
            sources=tuple(sources[r[0]]), content_html=r[7], authors=tuple(r[8]),
            language=r[9], date_is_fetch_time=bool(r[10])) for r in rows]

    def get_item(self, item_id: int) -> ItemView | None:
        rows = self.conn.execute(self._VIEW_SELECT + "WHERE i.id = %s", (item_id,)).fetchall()
        views = self._views(rows, with_sources=True)
        return views[0] if views else None

    def items_by_ids(self, item_ids: Sequence[int]) -> list[ItemView]:
        if not item_ids:
            return []
        rows = self.conn.execute(
            self._VIEW_SELECT + "WHERE i.id = ANY(%s) ORDER BY i.published DESC, i.id DESC",
            (list(item_ids),)).fetchall()
        return self._views(rows, with_sources=True)

    def tag_counts(self, since: datetime | None, now: datetime) -> list[TagCount]:
        args: list[object] = []
        cond = ""
        if since:
            cond = " AND i.published >= %s"
            args.append(_ts(since))
        per_day: dict[str, list[tuple[str, int]]] = {}
        for tag, day, n in self.conn.execute(
                "SELECT t.tag, to_char(i.published AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, "
                "count(*) FROM item_tags t JOIN items i ON i.id = t.item_id "
                f"WHERE TRUE{cond} GROUP BY t.tag, day ORDER BY t.tag, day", args):
            per_day.setdefault(tag, []).append((day, n))
        counts = [TagCount(tag, sum(n for _, n in days), tuple(days))
                  for tag, days in per_day.items()]
        return sorted(counts, key=lambda c: (-c.count, c.tag))

    def raw_hashes(self, feed_id: int) -> set[str]:
        """The raw hashes of a feed's stored entries (aggregator.parse.feeds.raw_hash)."""
        return {r[0] for r in self.conn.execute(
            "SELECT raw_hash FROM item_sources WHERE feed_id = %s AND raw_hash IS NOT NULL",
            (feed_id,))}

    def remember_raw_hashes(self, feed_id: int, pairs: Sequence[tuple[str, str]]) -> None:
        """Record (entry key, raw hash) for a feed's stored entries."""
        if not pairs:
            return
        def run(c: Any) -> None:
            with c.cursor() as cur:
                cur.executemany("UPDATE item_sources SET raw_hash = %s "
                                "WHERE feed_id = %s AND entry_key = %s",
                                [(h, feed_id, key) for key, h in pairs])

        self._write(run, durable=False)

    def distinct_tags(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT tag FROM item_tags ORDER BY tag")]

    def count_items(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM items").fetchone()
        return int(row[0]) if row else 0

    def count_items_since(self, since: datetime) -> int:
        row = self.conn.execute("SELECT count(*) FROM items WHERE first_seen >= %s",
                                (_ts(since),)).fetchone()
        return int(row[0]) if row else 0

    # -- labels -------------------------------------------------------------------------

    def set_labels(self, item_id: int, add: Sequence[str], remove: Sequence[str],
                   now: datetime) -> None:
        stamp = _ts(now)

        def run(c: psycopg.Connection[Any]) -> None:
            for tag, value in [*((t, 1) for t in add), *((t, 0) for t in remove)]:
                c.execute("INSERT INTO labels (item_id, tag, value, labelled_at) "
                          "VALUES (%s, %s, %s, %s) ON CONFLICT (item_id, tag) DO UPDATE SET "
                          "value = excluded.value, labelled_at = excluded.labelled_at",
                          (item_id, tag, value, stamp))
                if value:
                    c.execute(
                        "INSERT INTO item_tags (item_id, tag, score, source, reasons, tagged_at) "
                        "VALUES (%s, %s, 1.0, 'user', '[\"labelled by a user\"]', %s) "
                        "ON CONFLICT (item_id, tag) DO UPDATE SET score = 1.0, source = 'user', "
                        "model_version = NULL, reasons = excluded.reasons, "
                        "tagged_at = excluded.tagged_at", (item_id, tag, stamp))
                else:
                    c.execute("DELETE FROM item_tags WHERE item_id = %s AND tag = %s",
                              (item_id, tag))

        self._write(run)

    def labelled_examples(self) -> list[tuple[ItemToClassify, dict[str, int]]]:
        labels: dict[int, dict[str, int]] = {}
        for item_id, tag, value in self.conn.execute("SELECT item_id, tag, value FROM labels"):
            labels.setdefault(item_id, {})[tag] = value
        if not labels:
            return []
        ids = sorted(labels)
        rows = self.conn.execute(self._CLASSIFY_SELECT + "WHERE i.id = ANY(%s)", (ids,))
        return [(item, labels[item.id]) for item in map(self._to_classify, rows)]

    # -- digests ------------------------------------------------------------------------

    def delivered(self, recipient: str, item_ids: Sequence[int]) -> set[int]:
        if not item_ids:
            return set()
        rows = self.conn.execute(
            "SELECT item_id FROM deliveries WHERE recipient = %s AND item_id = ANY(%s)",
            (recipient, list(item_ids)))
        return {r[0] for r in rows}

    def record_delivery(self, subscription: str, recipients: Sequence[str],
                        item_ids: Sequence[int], period_end: datetime, message_id: str,
                        now: datetime) -> None:
        stamp = _ts(now)

        def run(c: psycopg.Connection[Any]) -> None:
            with c.cursor() as cur:
                cur.executemany(
                    "INSERT INTO deliveries (recipient, item_id, subscription, sent_at, "
                    "message_id) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(r, i, subscription, stamp, message_id) for r in recipients for i in item_ids])
                cur.execute(
                    "INSERT INTO digest_runs (subscription, period_end, status, claimed_at, "
                    "sent_at, items, message_id) VALUES (%s, %s, 'sent', %s, %s, %s, %s) "
                    "ON CONFLICT (subscription, period_end) DO UPDATE SET status = 'sent', "
                    "sent_at = excluded.sent_at, items = excluded.items, "
                    "message_id = excluded.message_id",
                    (subscription, _ts(period_end), stamp, stamp, len(item_ids), message_id))

        self._write(run)

    def last_digest(self, subscription: str) -> datetime | None:
        row = self.conn.execute(
            "SELECT max(period_end) FROM digest_runs WHERE subscription = %s AND status = 'sent'",
            (subscription,)).fetchone()
        return _utc(row[0]) if row else None

    @staticmethod
    def _ledger(c: psycopg.Connection[Any], subscription: str,
                sent: Sequence[tuple[Sequence[str], Sequence[int], str | None]],
                stamp: datetime) -> int:
        rows = [(r, i, subscription, stamp, message_id)
                for recipients, item_ids, message_id in sent for r in recipients for i in item_ids]
        if rows:
            # DO NOTHING: the first delivery of an item to a recipient is the one on record.
            with c.cursor() as cur:
                cur.executemany(
                    "INSERT INTO deliveries (recipient, item_id, subscription, sent_at, "
                    "message_id) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", rows)
        return len({i for _, item_ids, _ in sent for i in item_ids})

    def claim_digest(self, subscription: str, period_end: datetime, owner: str, now: datetime,
                     stale_before: datetime) -> bool:
        """Take a period for sending (see SQLiteStore.claim_digest). One statement: two
        daemons inserting at once serialize on the primary key, and the second sees the
        first's claim through ON CONFLICT and gets no row back unless that claim is stale."""
        def run(c: psycopg.Connection[Any]) -> bool:
            row = c.execute(
                "INSERT INTO digest_runs (subscription, period_end, status, claimed_by, "
                "claimed_at) VALUES (%s, %s, 'sending', %s, %s) "
                "ON CONFLICT (subscription, period_end) DO UPDATE SET "
                "claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at "
                "WHERE digest_runs.status = 'sending' AND digest_runs.claimed_at < %s "
                "RETURNING claimed_by",
                (subscription, _ts(period_end), owner, _ts(now), _ts(stale_before))).fetchone()
            return row is not None

        return self._write(run)

    def complete_digest(self, subscription: str, period_end: datetime, owner: str,
                        sent: Sequence[tuple[Sequence[str], Sequence[int], str | None]],
                        now: datetime) -> None:
        """The ledger for what the server accepted and the period marked 'sent', together."""
        stamp = _ts(now)

        def run(c: psycopg.Connection[Any]) -> None:
            items = self._ledger(c, subscription, sent, stamp)
            ids = [m for _, _, m in sent if m]
            c.execute(
                "INSERT INTO digest_runs (subscription, period_end, status, claimed_by, "
                "claimed_at, sent_at, items, message_id) "
                "VALUES (%s, %s, 'sent', %s, %s, %s, %s, %s) "
                "ON CONFLICT (subscription, period_end) DO UPDATE SET status = 'sent', "
                "sent_at = excluded.sent_at, items = excluded.items, "
                "message_id = excluded.message_id",
                (subscription, _ts(period_end), owner, stamp, stamp, items, " ".join(ids) or None))

        self._write(run)

    def release_digest(self, subscription: str, period_end: datetime, owner: str,
                       sent: Sequence[tuple[Sequence[str], Sequence[int], str | None]],
                       now: datetime) -> None:
        """Give a claimed period back after a failure, keeping in the ledger what the
        server did accept."""
        def run(c: psycopg.Connection[Any]) -> None:
            self._ledger(c, subscription, sent, _ts(now))
            c.execute("DELETE FROM digest_runs WHERE subscription = %s AND period_end = %s "
                      "AND status = 'sending' AND claimed_by = %s",
                      (subscription, _ts(period_end), owner))

        self._write(run)

    def digest_candidates(self, q: ItemQuery, seen_since: datetime, seen_before: datetime,
                          limit: int | None = None) -> list[ItemView]:
        """Items matching a query first stored in [seen_since, seen_before), with their
        sources (see SQLiteStore.digest_candidates)."""
        where = ["i.first_seen >= %s", "i.first_seen < %s"]
        args: list[object] = [_ts(seen_since), _ts(seen_before)]
        extra = ""
        extra_args: list[object] = []
        if q.min_score is not None:
            extra += " AND t.score >= %s"
            extra_args.append(q.min_score)
        if q.sources:
            extra += " AND t.source = ANY(%s)"
            extra_args.append(list(q.sources))
        for tag in q.tags:
            where.append("i.id IN (SELECT t.item_id FROM item_tags t WHERE t.tag = %s"
                         + extra + ")")
            args += [tag, *extra_args]
        if q.any_tags:
            where.append("i.id IN (SELECT t.item_id FROM item_tags t WHERE t.tag = ANY(%s)"
                         + extra + ")")
            args += [list(q.any_tags), *extra_args]
        if extra and not (q.tags or q.any_tags):
            where.append("i.id IN (SELECT t.item_id FROM item_tags t WHERE TRUE" + extra + ")")
            args += extra_args
        narrow, narrow_args = self._narrowing_filters(q)
        where += narrow
        args += narrow_args
        if q.search:
            try:
                clause, more = self._search(q.search)
            except search.SearchSyntaxError as e:
                raise ConfigError("config/queries.toml", "search", "a search expression",
                                  f"{q.search!r} ({e})") from None
            where.append(clause)
            args += more
        sql = self._VIEW_SELECT + "WHERE " + " AND ".join(where) + " ORDER BY i.first_seen, i.id"
        if limit:
            sql += " LIMIT %s"
            args.append(limit)
        rows = self.conn.execute(sql, args).fetchall()
        return self._collapse_stories(self._views(rows, with_sources=True))

    # -- retention ----------------------------------------------------------------------

    def prune(self, before: datetime) -> int:
        """Delete items published and first seen before ``before``, except those a user
        labelled (see SQLiteStore.prune); sources, tags and deliveries go with them (ON
        DELETE CASCADE), the search vector is a column of the row. Autovacuum gives the
        space back. Returns how many items were deleted."""
        cut = _ts(before)

        def run(c: psycopg.Connection[Any]) -> int:
            removed = c.execute(
                "DELETE FROM items WHERE published < %s AND first_seen < %s "
                "AND id NOT IN (SELECT item_id FROM labels)", (cut, cut)).rowcount
            # Members left behind by a deleted first item: the earliest remaining one
            # becomes the story's id (computed first, then written).
            moves = c.execute(
                "SELECT story_id, min(id) FROM items WHERE story_id IS NOT NULL "
                "AND story_id NOT IN (SELECT id FROM items) GROUP BY story_id").fetchall()
            if moves:
                with c.cursor() as cur:
                    cur.executemany("UPDATE items SET story_id = %s WHERE story_id = %s",
                                    [(new, old) for old, new in moves])
            return int(removed)

        return self._write(run)

    # -- key/value ----------------------------------------------------------------------

    def delete_meta(self, key: str) -> None:
        self._write(lambda c: c.execute("DELETE FROM meta WHERE key = %s", (key,)))

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.conn.execute("SELECT key, value FROM meta WHERE key LIKE %s ESCAPE '\\'",
                                 (escaped + "%",)).fetchall()
        return {k: v for k, v in rows}

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._write(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value", (key, value)))

    def claim_lease(self, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """A lease in the meta table, as '<until, ISO> <owner>' (the SQLite store's format,
        so 'db migrate' copies it as is); one statement, so two daemons cannot both win."""
        from aggregator.timeutil import to_iso

        return bool(self._write(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value WHERE substr(meta.value, 1, 20) <= %s "
            "OR substr(meta.value, 22) = %s",
            (f"lease:{name}", f"{to_iso(now + lease)} {owner}", to_iso(now), owner)).rowcount))
