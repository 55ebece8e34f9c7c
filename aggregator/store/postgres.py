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

What is PostgreSQL's own lives here (the connection, retried transactions, migrations under
an advisory lock, timestamptz and jsonb, tsvector search, claiming with SKIP LOCKED, storing
entries in a few array statements); the rest is ``core.StoreCore``, whose ``?`` marks
``qmark`` turns into psycopg's.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aggregator.errors import ConfigError, StoreError
from aggregator.store import core, search
from aggregator.store.core import StoreCore
from aggregator.store.urls import display_url as redact
from aggregator.types import Entry, Feed, IngestResult, ItemToClassify
from aggregator.views import ItemQuery, ItemView

if TYPE_CHECKING:
    import psycopg

    from aggregator.store.core.sql import Term, Writer

MIGRATIONS = Path(__file__).parent / "migrations" / "postgresql"
_MIGRATION_LOCK = 0x61676772  # pg_advisory_xact_lock key: daemons starting together migrate once
_STORY_LOCKS = 0x61677201  # pg_advisory_xact_lock(_STORY_LOCKS, crc of a canonical URL)
_RETRIES = 8  # a transaction that lost a deadlock, or a serialization failure, is run again
T = TypeVar("T")


def _ts(dt: datetime) -> datetime:
    """A time as stored: UTC, to the second (what SQLite's ISO strings keep)."""
    return dt.astimezone(UTC).replace(microsecond=0)


@lru_cache(maxsize=512)
def qmark(sql: str) -> str:
    """The core's ``?`` marks as psycopg's ``%s`` (a literal % doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Writer:
    """The transaction's connection, taking the core's ``?`` statements."""

    __slots__ = ("conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = (), /) -> Any:
        return self.conn.execute(qmark(sql), args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(qmark(sql), rows)


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



class PostgresStore(StoreCore):
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

    def _transact(self, fn: Callable[[psycopg.Connection[Any]], T], *, durable: bool = True) -> T:
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

        self._transact(run)

    # -- the engine's hooks (core.StoreCore) --------------------------------------------

    def _write(self, fn: Callable[[Writer], T], *, durable: bool = True) -> T:
        return self._transact(lambda c: fn(_Writer(c)), durable=durable)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.conn.execute(qmark(sql), args).fetchall()

    def _time(self, dt: datetime) -> datetime:
        return _ts(dt)

    def _read_time(self, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def _json(self, value: list[Any]) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def _read_json(self, value: Any) -> Any:
        return value  # psycopg reads jsonb into lists already

    def _in(self, expr: str, values: Sequence[Any]) -> Term:
        return f"{expr} = ANY(?)", [list(values)]

    def _search_term(self, expression: str, id_range: tuple[int, int] | None = None) -> Term:
        tsquery = search.to_tsquery(expression)  # raises SearchSyntaxError
        if tsquery is None:
            return "FALSE", []  # only punctuation: matches nothing, as on FTS5
        return "i.search @@ to_tsquery('simple', ?)", [tsquery]

    SEARCH_ERROR = search.SearchSyntaxError
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def _rewrite_search(self, e: Entry) -> Term:
        return (", search = setweight(to_tsvector('simple', ?), 'A') || "
                "setweight(to_tsvector('simple', ?), 'B')", list(_document(e.title, e.summary)))

    def _tag_day_rows(self, since: datetime | None) -> list[Any]:
        cond, args = (" WHERE i.published >= %s", [_ts(since)]) if since else ("", [])
        return self.conn.execute(
            "SELECT t.tag, to_char(i.published AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, "
            f"count(*) FROM item_tags t JOIN items i ON i.id = t.item_id{cond} "
            "GROUP BY t.tag, day ORDER BY t.tag, day", args).fetchall()

    # -- feeds --------------------------------------------------------------------------

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
                + ", ".join(f"f.{col.strip()}" for col in core.FEED_COLUMNS.split(",")),
                {"now": _ts(now), "limit": limit, "owner": owner,
                 "until": _ts(now + lease)}).fetchall()
            feeds = [self._feed(r) for r in rows]
            far = datetime.min.replace(tzinfo=UTC)
            return sorted(feeds, key=lambda f: (f.next_fetch_at or far, f.id))

        return self._transact(run, durable=False)

    # -- items --------------------------------------------------------------------------

    def save_entries(self, feed: Feed, entries: Sequence[Entry], now: datetime) -> IngestResult:
        """Store a feed's entries (see SQLiteStore.save_entries: the same rules, the same
        stories), safe against another daemon storing the same story at the same moment:
        the canonical URL's unique index decides who creates the item, the other adds its
        source to it."""
        from aggregator.parse import dedupe

        stamp = _ts(now)

        def run(c: psycopg.Connection[Any]) -> IngestResult:
            new: list[int] = []
            # What this feed already has, in one round trip.
            known: dict[str, tuple[int, int, str]] = {
                r[0]: (r[1], r[2], r[3]) for r in c.execute(
                    "SELECT s.entry_key, s.item_id, i.feed_id, i.content_hash FROM item_sources s "
                    "JOIN items i ON i.id = s.item_id WHERE s.feed_id = %s AND s.entry_key = ANY(%s)",
                    (feed.id, list(dict.fromkeys(e.key for e in entries))))}
            fresh, changed = core.split_entries(feed.id, entries, known)
            _lock_stories(c, [e.canonical_url for e in fresh if e.canonical_url])
            self._rewrite(_Writer(c), feed.id, changed, stamp)
            # Fingerprints in one batch (numpy's cost is per call), only for what is new.
            fps = dedupe.fingerprints([(e.title, e.summary) for e in fresh])
            if fresh:
                new = self._insert_fresh(c, feed, list(zip(fresh, fps, strict=True)), stamp)
            self._refingerprint(_Writer(c), changed)
            return IngestResult(tuple(new), tuple(i for i, _ in changed))

        return self._transact(run, durable=False)

    def _insert_fresh(self, c: psycopg.Connection[Any], feed: Feed,
                      todo: Sequence[tuple[Entry, int | None]], stamp: datetime) -> list[int]:
        """Insert new entries in a few statements whatever their number (a round trip per
        row is what costs on a network database); returns the ids of the items created,
        in entry order, with the same outcome as SQLite's row-by-row loop."""
        # Ids taken first, in entry order, so each row's id is known before the insert
        # (one lost to a canonical URL already stored is a harmless gap).
        ids = sorted(r[0] for r in c.execute(
            "SELECT nextval(pg_get_serial_sequence('items', 'id')) FROM generate_series(1, %s)",
            (len(todo),)))
        cols: list[list[Any]] = [[] for _ in range(22)]
        prints = core.fingerprint_columns([fp for _, fp in todo])
        for n, ((e, _), fp_columns) in enumerate(zip(todo, prints, strict=True)):
            row = (ids[n], e.canonical_url, e.url, e.title, e.summary, _ts(e.published),
                   e.date_is_fetch_time, *self.entry_columns(e), e.content_hash,
                   *fp_columns, *_document(e.title, e.summary), n)
            for col, value in zip(cols, row, strict=True):
                col.append(value)
        created = {r[0] for r in c.execute(
            "INSERT INTO items (id, feed_id, canonical_url, url, title, summary, published, "
            "date_is_fetch_time, content_html, authors, categories, language, enclosures, "
            "updated, content_hash, first_seen, updated_at, simhash, simhash_b0, simhash_b1, "
            "simhash_b2, simhash_b3, search) SELECT id, %s, cu, url, title, summary, pub, dft, "
            "html, au, cat, lang, enc, upd, ch, %s, %s, sh, b0, b1, b2, b3, "
            "setweight(to_tsvector('simple', td), 'A') || "
            "setweight(to_tsvector('simple', sd), 'B') FROM unnest(%s::bigint[], %s::text[], "
            "%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::bool[], %s::text[], "
            "%s::jsonb[], %s::jsonb[], %s::text[], %s::jsonb[], %s::timestamptz[], %s::text[], "
            "%s::bigint[], %s::int[], %s::int[], %s::int[], %s::int[], %s::text[], %s::text[], "
            "%s::int[]) AS r (id, cu, url, title, summary, pub, dft, html, au, cat, lang, enc, "
            "upd, ch, sh, b0, b1, b2, b3, td, sd, ord) ORDER BY ord "
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
        self._assign_stories(c, [(i, fp, e.published) for i in new
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
                  [_ts(p - core.STORY_WINDOW) for _, _, p in items],
                  [_ts(p + core.STORY_WINDOW) for _, _, p in items])
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
        " JOIN feeds f ON f.id = s.feed_id WHERE s.item_id = i.id), i.url FROM items i ")

    @staticmethod
    def _to_classify(r: Sequence[Any]) -> ItemToClassify:
        return ItemToClassify(r[0], r[1], r[2], tuple(r[3]), tuple(sorted(r[4] or ())), r[5] or "")

    def _to_classify_rows(self, where: str, args: Sequence[Any]) -> list[ItemToClassify]:
        return [self._to_classify(r) for r in self.conn.execute(
            qmark(self._CLASSIFY_SELECT + "WHERE " + where), args)]

    def items_to_classify(self, limit: int, after_id: int = 0) -> list[ItemToClassify]:
        return self._to_classify_rows("i.needs_classify AND i.id > ? ORDER BY i.id LIMIT ?",
                                      (after_id, limit))

    def query_items(self, q: ItemQuery) -> list[ItemView]:
        ranked = q.tags or q.any_tags
        with self._search_errors(q, config=False):
            terms = self._item_filters(q)
        if q.sort == "score" and len(ranked) == 1 and q.limit:
            # As SQLiteStore._page_ids: down the one tag's (tag, score) index, only items
            # tied on score sorted by date (an incremental sort), LIMIT stopping the walk;
            # ordering by a subquery per item instead sorts every item with the tag.
            query = (core.Query().SELECT(core.VIEW_COLUMNS)
                     .FROM("item_tags r JOIN items i ON i.id = r.item_id "
                           "JOIN feeds f ON f.id = i.feed_id")
                     .WHERE("r.tag = ?", ranked[0]).where_all(terms)
                     .ORDER_BY("r.score DESC").ORDER_BY("i.published DESC")
                     .ORDER_BY("i.id DESC").LIMIT(q.limit))
        else:
            query = self._order(q, self._view_query().where_all(terms))
        return self._views(self._rows(str(query), query.args), with_sources=False)
