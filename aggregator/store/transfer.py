"""Copy a SQLite instance into an empty PostgreSQL database (``aggregator db migrate``).

Every table, every column, ids kept: the SQLite side is read in batches, the PostgreSQL
side written with COPY, all in one PostgreSQL transaction, so a failure (or a count that
does not match at the end) leaves the target as empty as it was and the copy can simply
be run again. The SQLite values go over as text, which PostgreSQL reads into its own
types: ISO times into timestamptz, 0/1 into boolean, JSON text into jsonb. Only the
search vector is computed on the way (see store/search.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aggregator.errors import UsageError
from aggregator.store import search

if TYPE_CHECKING:
    import psycopg

    from aggregator.store.postgres import PostgresStore
    from aggregator.store.sqlite import SQLiteStore

# Parents before children (foreign keys); schema_migrations is each engine's own.
TABLES = ("feeds", "items", "item_sources", "item_tags", "labels", "fetch_attempts",
          "deliveries", "digest_runs", "meta")
_IDENTITIES = ("feeds", "items", "fetch_attempts")
_PG_ONLY = {"items": {"search"}}

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int


def _pg_columns(c: psycopg.Connection[Any], table: str) -> list[str]:
    return [r[0] for r in c.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = %s ORDER BY ordinal_position", (table,))]


def _sqlite_columns(source: SQLiteStore, table: str) -> list[str]:
    return [r[1] for r in source.conn.execute(f"PRAGMA table_info({table})")]


def _count_pg(c: psycopg.Connection[Any], table: str) -> int:
    row = c.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _columns(source: SQLiteStore, c: psycopg.Connection[Any], table: str) -> list[str]:
    """The columns both sides have; a column only SQLite has means the two engines'
    migrations are out of step, and copying would lose it."""
    theirs = _sqlite_columns(source, table)
    ours = _pg_columns(c, table)
    missing = [col for col in theirs if col not in ours]
    if missing:
        raise UsageError(f"the PostgreSQL table {table} has no column "
                         f"{', '.join(missing)}: its migrations are behind the SQLite ones")
    return [col for col in ours if col in theirs and col not in _PG_ONLY.get(table, ())]


def copy_sqlite(source: SQLiteStore, target: PostgresStore, *, batch: int = 5000,
                progress: Progress | None = None) -> list[Copied]:
    """Copy ``source`` into ``target``, which must hold nothing yet. Returns the counts."""
    conn = target.conn
    nonempty = [t for t in TABLES if _count_pg(conn, t)]
    if nonempty:
        raise UsageError(f"the target database {target.url.split('@')[-1]} is not empty "
                         f"({', '.join(nonempty)} hold rows): migrate into an empty one")
    totals = {t: int(source.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
              for t in TABLES}
    copied: list[Copied] = []
    with conn.transaction():
        for table in TABLES:
            columns = _columns(source, conn, table)
            extra = ["search"] if table == "items" else []
            done = 0
            reader = source.conn.execute(f"SELECT {', '.join(columns)} FROM {table}")
            if table == "items":
                # COPY cannot compute; the search vector is built from staged text.
                conn.execute("CREATE TEMP TABLE stage_items (LIKE items INCLUDING DEFAULTS) ON COMMIT DROP")
                conn.execute("ALTER TABLE stage_items ADD COLUMN title_doc TEXT, "
                             "ADD COLUMN summary_doc TEXT")
            into = "stage_items" if table == "items" else table
            names = columns + (["title_doc", "summary_doc"] if table == "items" else [])
            title, summary = (columns.index("title"), columns.index("summary")) \
                if table == "items" else (0, 0)
            while rows := reader.fetchmany(batch):
                with conn.cursor() as cur, cur.copy(
                        f"COPY {into} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in rows:
                        if table == "items":
                            row = (*row, search.document(row[title]), search.document(row[summary]))
                        copy.write_row(row)
                if table == "items":
                    conn.execute(
                        f"INSERT INTO items ({', '.join(columns + extra)}) SELECT "
                        f"{', '.join(columns)}, setweight(to_tsvector('simple', title_doc), 'A') "
                        "|| setweight(to_tsvector('simple', summary_doc), 'B') FROM stage_items")
                    conn.execute("TRUNCATE stage_items")
                done += len(rows)
                if progress:
                    progress(table, done, totals[table])
            count = _count_pg(conn, table)
            if count != totals[table]:
                # Raising here rolls the whole copy back: the target is empty again.
                raise UsageError(f"copy check failed for {table}: {totals[table]} rows in "
                                 f"SQLite, {count} in PostgreSQL; nothing was kept")
            copied.append(Copied(table, count))
        for table in _IDENTITIES:
            # New rows continue after the copied ids.
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
    return copied
