"""What both stores share: row mapping, filters, stories, feeds, tags, labels, digests, meta.

SQLite and PostgreSQL differ in how they connect, run transactions, migrate, mark
parameters, type times and JSON, search, and in the statements where each engine has its
own fast way (storing a feed's entries, claiming feeds, SQLite's page planner). Everything
else is written once, here, in SQL both understand, with ``?`` for a parameter: the
PostgreSQL engine rewrites the marks (``qmark``) and its types come in through the hooks
at the top of ``StoreCore``.

A store is ``StoreCore`` plus an engine class supplying those hooks; ``Query`` composes
the filters (after lemon24/reader's ``_sql_utils.Query``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aggregator.views import Enclosure, FeedState, ItemQuery, ItemView, Source, Story, TagCount, TagScore

if TYPE_CHECKING:
    from aggregator.types import Attempt, Entry, Feed, ItemToClassify, SyncResult
    from aggregator.views import FeedConfig

# The pipeline's dataclasses (aggregator.types) are imported where they are built, not here:
# the read commands open the store in shell loops and build none of them (see views.py).

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

_T = TypeVar("_T")
Sent = Sequence[tuple[Sequence[str], Sequence[int], "str | None"]]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class Writer(Protocol):
    """What a write method gets inside its transaction: ``?`` marks on either engine."""

    def execute(self, sql: str, args: Sequence[Any] = (), /) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any: ...


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


Term = tuple[str, list[Any]]


class StoreCore:
    """The shared half of a store; the engine class supplies the hooks below."""

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

    # -- feeds --------------------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[FeedConfig], now: datetime) -> SyncResult:
        """Bring the feeds table in line with feeds.toml.

        The URL in the file is the declared one; the stored ``url`` may have moved since
        through a confirmed permanent redirect, and only a change in the file resets it.
        Several daemons do this at each pass: a feed another one added a moment ago is
        left alone (DO NOTHING), not reported as added twice.
        """
        from aggregator.types import SyncResult

        def run(c: Writer) -> SyncResult:
            added, updated, deactivated = [], [], []
            existing = {r[0]: r for r in c.execute(
                "SELECT name, declared_url, tags, interval_s, active FROM feeds").fetchall()}
            for f in feeds:
                tags = list(f.tags)
                interval = int(f.interval.total_seconds()) if f.interval else None
                old = existing.get(f.name)
                if old is None:
                    cur = c.execute(
                        "INSERT INTO feeds (name, url, declared_url, tags, interval_s) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                        (f.name, f.url, f.url, self._json(tags), interval))
                    if cur.rowcount:
                        added.append(f.name)
                elif (old[1], list(self._read_json(old[2])), old[3], bool(old[4])) != (
                        f.url, tags, interval, True):
                    c.execute("UPDATE feeds SET tags = ?, interval_s = ?, active = ? "
                              "WHERE name = ?", (self._json(tags), interval, True, f.name))
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
                    c.execute("UPDATE feeds SET active = ? WHERE name = ?", (False, name))
                    deactivated.append(name)
            return SyncResult(tuple(added), tuple(updated), tuple(deactivated))

        return self._write(run, durable=False)

    def feeds(self, names: Sequence[str] | None = None, *,
              include_inactive: bool = False) -> list[Feed]:
        q = Query().SELECT(FEED_COLUMNS).FROM("feeds").ORDER_BY("name")
        if names:
            q.where_all([self._in("name", names)])
        if not include_inactive:
            q.WHERE(f"active = {self.TRUE}")
        return [self._feed(r) for r in self._rows(str(q), q.args)]

    def feed_states(self) -> dict[str, FeedState]:
        t = self._opt_read_time
        rows = self._rows(
            "SELECT name, disabled_at IS NULL, disabled_reason, last_fetched_at, "
            f"consecutive_failures, failing_since FROM feeds WHERE active = {self.TRUE}")
        return {r[0]: FeedState(r[0], bool(r[1]), r[2], t(r[3]), r[4], t(r[5])) for r in rows}

    def due_feeds(self, now: datetime, limit: int | None = None) -> list[Feed]:
        q = (Query().SELECT(FEED_COLUMNS).FROM("feeds")
             .WHERE(f"active = {self.TRUE}").WHERE("disabled_at IS NULL")
             .WHERE("(next_fetch_at IS NULL OR next_fetch_at <= ?)", self._time(now))
             .ORDER_BY("next_fetch_at NULLS FIRST").ORDER_BY("id").LIMIT(limit))
        return [self._feed(r) for r in self._rows(str(q), q.args)]

    def release_leases(self, owner: str | None = None) -> int:
        sql = "UPDATE feeds SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL"
        return self._write(lambda c: c.execute(sql + " AND lease_owner = ?", (owner,)).rowcount
                           if owner is not None else c.execute(sql).rowcount)

    def update_feed(self, feed: Feed, attempt: Attempt | None = None,
                    attempts_kept: int = 100) -> None:
        t = self._opt_time

        def run(c: Writer) -> None:
            c.execute(
                "UPDATE feeds SET url = ?, disabled_at = ?, disabled_reason = ?, title = ?, "
                "etag = ?, last_modified = ?, body_hash = ?, last_fetched_at = ?, "
                "last_success_at = ?, last_full_fetch_at = ?, next_fetch_at = ?, "
                "consecutive_failures = ?, failing_since = ?, last_error = ?, malformed = ?, "
                "pending_redirect_url = ?, pending_redirect_count = ?, new_items_rate = ?, "
                "ttl_s = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (feed.url, t(feed.disabled_at), feed.disabled_reason, feed.title, feed.etag,
                 feed.last_modified, feed.body_hash, t(feed.last_fetched_at),
                 t(feed.last_success_at), t(feed.last_full_fetch_at), t(feed.next_fetch_at),
                 feed.consecutive_failures, t(feed.failing_since), feed.last_error,
                 bool(feed.malformed), feed.pending_redirect_url, feed.pending_redirect_count,
                 feed.new_items_rate, int(feed.ttl.total_seconds()) if feed.ttl else None,
                 feed.id))
            if attempt is not None:
                c.execute(
                    "INSERT INTO fetch_attempts (feed_id, at, status, duration_ms, bytes, error, "
                    "event, new_items) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (attempt.feed_id, self._time(attempt.at), attempt.status,
                     attempt.duration_ms, attempt.bytes, attempt.error, attempt.event,
                     attempt.new_items))
                # Bounded history per feed.
                c.execute(
                    "DELETE FROM fetch_attempts WHERE feed_id = ? AND id <= "
                    "(SELECT id FROM fetch_attempts WHERE feed_id = ? ORDER BY id DESC "
                    "LIMIT 1 OFFSET ?)", (attempt.feed_id, attempt.feed_id, attempts_kept))

        self._write(run, durable=False)

    def set_feed_disabled(self, name: str, reason: str | None, now: datetime) -> bool:
        def run(c: Writer) -> bool:
            if reason is None:
                cur = c.execute(
                    "UPDATE feeds SET disabled_at = NULL, disabled_reason = NULL, "
                    "consecutive_failures = 0, failing_since = NULL, next_fetch_at = NULL "
                    "WHERE name = ?", (name,))
            else:
                cur = c.execute("UPDATE feeds SET disabled_at = ?, disabled_reason = ? "
                                "WHERE name = ?", (self._time(now), reason, name))
            return cur.rowcount > 0

        return self._write(run)

    def attempts(self, feed_id: int, limit: int = 20) -> list[Attempt]:
        from aggregator.types import Attempt

        rows = self._rows(
            "SELECT feed_id, at, status, duration_ms, bytes, error, event, new_items "
            "FROM fetch_attempts WHERE feed_id = ? ORDER BY id DESC LIMIT ?", (feed_id, limit))
        return [Attempt(r[0], self._read_time(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])
                for r in rows]

    # -- classification -----------------------------------------------------------------

    def items_for_reclassify(self, since: datetime | None,
                             batch: int) -> Iterator[list[ItemToClassify]]:
        last = 0
        while True:
            where, args = "i.id > ?", [last]
            if since is not None:
                where += " AND i.published >= ?"
                args.append(self._time(since))
            rows = self._to_classify_rows(where + " ORDER BY i.id LIMIT ?", [*args, batch])
            if not rows:
                return
            last = rows[-1].id
            yield rows

    def labelled_examples(self) -> list[tuple[ItemToClassify, dict[str, int]]]:
        labels: dict[int, dict[str, int]] = {}
        for item_id, tag, value in self._rows("SELECT item_id, tag, value FROM labels"):
            labels.setdefault(item_id, {})[tag] = value
        if not labels:
            return []
        where, args = self._in("i.id", sorted(labels))
        return [(item, labels[item.id]) for item in self._to_classify_rows(where, args)]

    def claim_items_to_classify(self, limit: int, owner: str, now: datetime,
                                lease: timedelta) -> list[ItemToClassify]:
        """Take up to ``limit`` pending items for ``owner`` until ``now + lease``: classifiers
        claiming at once get disjoint batches (SKIP LOCKED on PostgreSQL, the write lock on
        SQLite), so each item is classified once; ``write_model_tags`` ends the claim, and a
        dead classifier's batch is pending again when the lease runs out."""
        stamp = self._time(now)

        def run(c: Writer) -> list[int]:
            return sorted(r[0] for r in c.execute(
                "UPDATE items SET classify_owner = ?, classify_until = ? WHERE id IN ("
                f"SELECT id FROM items WHERE needs_classify = {self.TRUE} "
                "AND (classify_until IS NULL OR classify_until <= ?) ORDER BY id LIMIT ?"
                f"{self.SKIP_LOCKED}) RETURNING id",
                (owner, self._time(now + lease), stamp, limit)).fetchall())

        ids = self._write(run, durable=False)
        if not ids:
            return []
        where, args = self._in("i.id", ids)
        return self._to_classify_rows(where + " ORDER BY i.id", args)

    def _write_tags(self, source: str, results: Sequence[tuple[int, Sequence[TagScore]]],
                    now: datetime, mark_classified: bool) -> int:
        stamp = self._time(now)
        rank = PRECEDENCE[source]
        ids = [item_id for item_id, _ in results]
        higher = tuple(s for s, r in PRECEDENCE.items() if r > rank)
        guard = f" WHERE item_tags.source NOT IN ({', '.join('?' * len(higher))})" if higher else ""
        rows = [(item_id, t.tag, float(t.score), source, t.model_version,
                 self._json(list(t.reasons)), stamp, *higher)
                for item_id, tags in results for t in tags]
        among, among_args = self._in("item_id", ids)

        def run(c: Writer) -> int:
            # Replace this source's tags on these items; never touch a higher-ranked source.
            c.execute(f"DELETE FROM item_tags WHERE source = ? AND {among}", (source, *among_args))
            if rows:
                c.executemany(
                    "INSERT INTO item_tags (item_id, tag, score, source, model_version, "
                    "reasons, tagged_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id, tag) "
                    "DO UPDATE SET score = excluded.score, source = excluded.source, "
                    "model_version = excluded.model_version, reasons = excluded.reasons, "
                    "tagged_at = excluded.tagged_at" + guard, rows)
            # A user's "not this tag" label keeps the model from putting it back.
            c.execute(
                f"DELETE FROM item_tags WHERE source <> 'user' AND {among} AND EXISTS "
                "(SELECT 1 FROM labels l WHERE l.item_id = item_tags.item_id "
                "AND l.tag = item_tags.tag AND l.value = 0)", among_args)
            if mark_classified:
                done, done_args = self._in("id", ids)
                c.execute("UPDATE items SET needs_classify = ?, classify_until = NULL "
                          f"WHERE {done}", (False, *done_args))
            return len(rows)

        return self._write(run, durable=False)

    def write_model_tags(self, results: Sequence[tuple[int, Sequence[TagScore]]],
                         now: datetime) -> int:
        return self._write_tags("model", results, now, mark_classified=True)

    def write_rule_tags(self, results: Sequence[tuple[int, Sequence[TagScore]]],
                        now: datetime) -> int:
        return self._write_tags("rule", results, now, mark_classified=False)

    # -- filters ------------------------------------------------------------------------

    def _narrowing_filters(self, q: ItemQuery) -> list[Term]:
        """The filters every item query shares, whatever it starts from: tags excluded,
        feeds, and the publication window."""
        terms: list[Term] = [("NOT EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id "
                              "AND t.tag = ?)", [tag]) for tag in q.not_tags]
        if q.feeds:
            names, args = self._in("sf.name", q.feeds)
            terms.append(("EXISTS (SELECT 1 FROM item_sources s JOIN feeds sf ON "
                          f"sf.id = s.feed_id WHERE s.item_id = i.id AND {names})", args))
        if q.since:
            terms.append(("i.published >= ?", [self._time(q.since)]))
        if q.until:
            terms.append(("i.published < ?", [self._time(q.until)]))
        return terms

    def _tag_condition(self, q: ItemQuery) -> Term:
        """The score and source conditions on a tag row ``t``."""
        sql, args = "", []
        if q.min_score is not None:
            sql, args = " AND t.score >= ?", [q.min_score]
        if q.sources:
            more, more_args = self._in("t.source", q.sources)
            sql += f" AND {more}"
            args += more_args
        return sql, args

    def _item_filters(self, q: ItemQuery, fts_range: tuple[int, int] | None = None,
                      search: bool = True) -> list[Term]:
        """The WHERE terms (over ``items i``) for a query's filters, the cheap index probes
        first and the search last. ``fts_range``: the ids the caller looks among;
        ``search=False`` leaves the search out, for a caller that starts from its matches."""
        cond, cond_args = self._tag_condition(q)
        terms: list[Term] = [("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id "
                              f"AND t.tag = ?{cond})", [tag, *cond_args]) for tag in q.tags]
        if q.any_tags:
            among, args = self._in("t.tag", q.any_tags)
            terms.append(("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id "
                          f"AND {among}{cond})", [*args, *cond_args]))
        if q.sources and not (q.tags or q.any_tags):
            terms.append((f"EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id{cond})",
                          cond_args))
        terms += self._narrowing_filters(q)
        if q.search and search:
            terms.append(self._search_term(q.search, fts_range))
        return terms

    def _order(self, q: ItemQuery, query: Query) -> Query:
        """A view query's order and limit; i.id last in every order, so ties come out the
        same whatever the plan."""
        if q.sort == "score" and (q.tags or q.any_tags):
            among, args = self._in("t.tag", q.tags or q.any_tags)
            # NULLS LAST: SQLite's own place for NULL when descending.
            query.ORDER_BY("(SELECT max(t.score) FROM item_tags t WHERE t.item_id = i.id AND "
                           f"{among}) DESC NULLS LAST", *args)
        query.ORDER_BY("i.published DESC").ORDER_BY("i.id DESC")
        return query.LIMIT(q.limit)

    def _view_query(self) -> Query:
        return Query().SELECT(VIEW_COLUMNS).FROM("items i JOIN feeds f ON f.id = i.feed_id")

    # -- reading items ------------------------------------------------------------------

    def query_stories(self, q: ItemQuery) -> list[tuple[ItemView, Story]]:
        """One row per story that has an item matching the filters: the story's earliest
        published item, with the story's sources. Order and limit apply to stories."""
        with self._search_errors(q, config=False):
            hits = Query().SELECT("DISTINCT coalesce(i.story_id, i.id)").FROM("items i")
            hits.where_all(self._item_filters(q))
            # A story's first item has story_id = its own id (or NULL when alone), so
            # members are an index lookup each way; the head is the earliest published.
            query = self._view_query().WITH(
                f"hits (sid) AS ({hits}), heads AS (SELECT id FROM (SELECT m.id, "
                "row_number() OVER (PARTITION BY coalesce(m.story_id, m.id) "
                "ORDER BY m.published, m.id) AS rn FROM items m "
                "WHERE m.id IN (SELECT sid FROM hits) OR m.story_id IN (SELECT sid FROM hits)) "
                "AS ranked WHERE rn = 1)", *hits.args).WHERE("i.id IN (SELECT id FROM heads)")
            self._order(q, query)
            rows = self._rows(str(query), query.args)
        views = self._views(rows, with_sources=False)
        stories = self._stories([v.id for v in views])
        return [(v, stories[v.id]) for v in views]

    def _stories(self, item_ids: Sequence[int]) -> dict[int, Story]:
        """The story of each of these items, keyed by the item id."""
        if not item_ids:
            return {}
        among, args = self._in("id", item_ids)
        of: dict[int, int] = {r[0]: r[1] for r in self._rows(
            f"SELECT id, coalesce(story_id, id) FROM items WHERE {among}", args)}
        sids = sorted(set(of.values()))
        heads, head_args = self._in("i.id", sids)
        members_of, member_args = self._in("i.story_id", sids)
        members: dict[int, set[int]] = {}
        sources: dict[int, list[Source]] = {}
        t = self._read_time
        for sid, item_id, feed, url, published, first_seen in self._rows(
                "SELECT coalesce(i.story_id, i.id), i.id, f.name, s.url, s.published, "
                "s.first_seen FROM items i JOIN item_sources s ON s.item_id = i.id "
                f"JOIN feeds f ON f.id = s.feed_id WHERE {heads} OR {members_of} "
                "ORDER BY s.published, s.first_seen, f.name", [*head_args, *member_args]):
            members.setdefault(sid, set()).add(item_id)
            sources.setdefault(sid, []).append(Source(feed, url, t(published), t(first_seen)))
        out = {}
        for item_id, sid in of.items():
            found = sources.get(sid, [])
            out[item_id] = Story(sid, len(members.get(sid, ())), tuple(found),
                                 found[0].feed if found else "")
        return out

    def _collapse_stories(self, views: list[ItemView]) -> list[ItemView]:
        """One view per story, in the order stories first appear: the story's first item
        (its id is the story id, so the delivery ledger sees one id per story however
        many copies arrive later) with every member's sources and each tag's best score."""
        stories = self._stories([v.id for v in views])
        if all(stories[v.id].items <= 1 for v in views):
            return views
        sids = list(dict.fromkeys(stories[v.id].id for v in views))
        heads, head_args = self._in("id", sids)
        members_of, member_args = self._in("story_id", sids)
        story_of: dict[int, int] = {r[0]: r[1] for r in self._rows(
            f"SELECT id, coalesce(story_id, id) FROM items WHERE {heads} OR {members_of}",
            [*head_args, *member_args])}
        query = self._view_query().where_all([self._in("i.id", list(story_of))]).ORDER_BY("i.id")
        members: dict[int, list[ItemView]] = {}
        for m in self._views(self._rows(str(query), query.args), with_sources=False):
            members.setdefault(story_of[m.id], []).append(m)
        out = []
        for sid in sids:
            # Ordered by id: the first is the story's (after a prune, the next one).
            group = members[sid]
            out.append(group[0]._replace(
                tags=best_tags(group),
                sources=next(stories[v.id].sources for v in views if stories[v.id].id == sid)))
        return out

    def _views(self, rows: list[Any], *, with_sources: bool) -> list[ItemView]:
        if not rows:
            return []
        ids = [r[0] for r in rows]
        among, args = self._in("item_id", ids)
        tags: dict[int, list[TagScore]] = {i: [] for i in ids}
        j = self._read_json
        for r in self._rows("SELECT item_id, tag, score, source, model_version, reasons "
                            f"FROM item_tags WHERE {among} ORDER BY score DESC, tag", args):
            tags[r[0]].append(TagScore(r[1], r[2], r[3], r[4], tuple(j(r[5]))))
        sources: dict[int, list[Source]] = {i: [] for i in ids}
        t = self._read_time
        if with_sources:
            among, args = self._in("s.item_id", ids)
            for r in self._rows(
                    "SELECT s.item_id, f.name, s.url, s.published, s.first_seen FROM item_sources s "
                    f"JOIN feeds f ON f.id = s.feed_id WHERE {among} "
                    "ORDER BY s.published, s.first_seen", args):
                sources[r[0]].append(Source(r[1], r[2], t(r[3]), t(r[4])))
        return [ItemView(
            id=r[0], title=r[1], url=r[2], feed=r[3], published=t(r[4]), summary=r[5],
            categories=tuple(j(r[6])), tags=tuple(tags[r[0]]), sources=tuple(sources[r[0]]),
            # No HTML is stored when it had no markup (normalize.stored_html): it is the
            # text, escaped (normalize.display_html, inlined: queries must not load nh3).
            content_html=r[7] or html.escape(r[5], quote=False), authors=tuple(j(r[8])),
            language=r[9], date_is_fetch_time=bool(r[10]),
            enclosures=tuple(Enclosure(x["url"], x.get("type"), x.get("length"))
                             for x in j(r[11])) if r[11] else (),
            updated=self._opt_read_time(r[12])) for r in rows]

    def get_item(self, item_id: int) -> ItemView | None:
        views = self._views(self._rows(VIEW_SELECT + "WHERE i.id = ?", (item_id,)),
                            with_sources=True)
        return views[0] if views else None

    def items_by_ids(self, item_ids: Sequence[int]) -> list[ItemView]:
        if not item_ids:
            return []
        query = (self._view_query().where_all([self._in("i.id", item_ids)])
                 .ORDER_BY("i.published DESC").ORDER_BY("i.id DESC"))
        return self._views(self._rows(str(query), query.args), with_sources=True)

    def _tag_day_rows(self, since: datetime | None) -> list[Any]:
        """(tag, 'YYYY-MM-DD', count) over items published since ``since``."""
        raise NotImplementedError

    def tag_counts(self, since: datetime | None, now: datetime) -> list[TagCount]:
        per_day: dict[str, list[tuple[str, int]]] = {}
        for tag, day, n in self._tag_day_rows(since):
            per_day.setdefault(tag, []).append((day, n))
        counts = [TagCount(tag, sum(n for _, n in days), tuple(days))
                  for tag, days in per_day.items()]
        return sorted(counts, key=lambda c: (-c.count, c.tag))

    def distinct_tags(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT tag FROM item_tags ORDER BY tag")]

    def count_items(self) -> int:
        return int(self._rows("SELECT count(*) FROM items")[0][0])

    def count_items_since(self, since: datetime) -> int:
        return int(self._rows("SELECT count(*) FROM items WHERE first_seen >= ?",
                              (self._time(since),))[0][0])

    # -- labels -------------------------------------------------------------------------

    def set_labels(self, item_id: int, add: Sequence[str], remove: Sequence[str],
                   now: datetime) -> None:
        stamp = self._time(now)

        def run(c: Writer) -> None:
            for tag, value in [*((t, 1) for t in add), *((t, 0) for t in remove)]:
                c.execute("INSERT INTO labels (item_id, tag, value, labelled_at) "
                          "VALUES (?, ?, ?, ?) ON CONFLICT (item_id, tag) DO UPDATE SET "
                          "value = excluded.value, labelled_at = excluded.labelled_at",
                          (item_id, tag, value, stamp))
                if value:
                    c.execute(
                        "INSERT INTO item_tags (item_id, tag, score, source, reasons, tagged_at) "
                        "VALUES (?, ?, 1.0, 'user', ?, ?) "
                        "ON CONFLICT (item_id, tag) DO UPDATE SET score = 1.0, source = 'user', "
                        "model_version = NULL, reasons = excluded.reasons, "
                        "tagged_at = excluded.tagged_at",
                        (item_id, tag, self._json(["labelled by a user"]), stamp))
                else:
                    c.execute("DELETE FROM item_tags WHERE item_id = ? AND tag = ?",
                              (item_id, tag))

        self._write(run)

    # -- digests ------------------------------------------------------------------------

    def delivered(self, recipient: str, item_ids: Sequence[int]) -> set[int]:
        if not item_ids:
            return set()
        among, args = self._in("item_id", item_ids)
        return {r[0] for r in self._rows(
            f"SELECT item_id FROM deliveries WHERE recipient = ? AND {among}", [recipient, *args])}

    @staticmethod
    def _ledger(c: Writer, subscription: str, sent: Sent, stamp: Any) -> int:
        rows = [(r, i, subscription, stamp, message_id)
                for recipients, item_ids, message_id in sent for r in recipients for i in item_ids]
        if rows:
            # DO NOTHING: the first delivery of an item to a recipient is the one on record.
            c.executemany(
                "INSERT INTO deliveries (recipient, item_id, subscription, sent_at, "
                "message_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
        return len({i for _, item_ids, _ in sent for i in item_ids})

    @staticmethod
    def _mark_sent(c: Writer, subscription: str, period_end: Any, owner: str | None, stamp: Any,
                   items: int, message_id: str | None) -> None:
        c.execute(
            "INSERT INTO digest_runs (subscription, period_end, status, claimed_by, "
            "claimed_at, sent_at, items, message_id) VALUES (?, ?, 'sent', ?, ?, ?, ?, ?) "
            "ON CONFLICT (subscription, period_end) DO UPDATE SET status = 'sent', "
            "sent_at = excluded.sent_at, items = excluded.items, "
            "message_id = excluded.message_id",
            (subscription, period_end, owner, stamp, stamp, items, message_id))

    def record_delivery(self, subscription: str, recipients: Sequence[str],
                        item_ids: Sequence[int], period_end: datetime, message_id: str,
                        now: datetime) -> None:
        stamp = self._time(now)

        def run(c: Writer) -> None:
            self._ledger(c, subscription, [(recipients, item_ids, message_id)], stamp)
            self._mark_sent(c, subscription, self._time(period_end), None, stamp,
                            len(item_ids), message_id)

        self._write(run)

    def last_digest(self, subscription: str) -> datetime | None:
        rows = self._rows("SELECT max(period_end) FROM digest_runs WHERE subscription = ? "
                          "AND status = 'sent'", (subscription,))
        return self._opt_read_time(rows[0][0]) if rows else None

    def claim_digest(self, subscription: str, period_end: datetime, owner: str, now: datetime,
                     stale_before: datetime) -> bool:
        """Take a period for sending. False when it was sent, or another process holds a
        claim taken at or after ``stale_before`` (an older one is from a process that
        died). One statement: two daemons inserting at once serialize on the primary key,
        and the second sees the first's claim through ON CONFLICT."""
        return self._write(lambda c: c.execute(
            "INSERT INTO digest_runs (subscription, period_end, status, claimed_by, "
            "claimed_at) VALUES (?, ?, 'sending', ?, ?) "
            "ON CONFLICT (subscription, period_end) DO UPDATE SET "
            "claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at "
            "WHERE digest_runs.status = 'sending' AND digest_runs.claimed_at < ?",
            (subscription, self._time(period_end), owner, self._time(now),
             self._time(stale_before))).rowcount == 1)

    def complete_digest(self, subscription: str, period_end: datetime, owner: str,
                        sent: Sent, now: datetime) -> None:
        """The ledger for what the server accepted and the period marked 'sent', together.

        Whoever holds the claim by now, the mail went out: the ledger records it anyway.
        """
        stamp = self._time(now)

        def run(c: Writer) -> None:
            items = self._ledger(c, subscription, sent, stamp)
            ids = [m for _, _, m in sent if m]
            self._mark_sent(c, subscription, self._time(period_end), owner, stamp, items,
                            " ".join(ids) or None)

        self._write(run)

    def release_digest(self, subscription: str, period_end: datetime, owner: str,
                       sent: Sent, now: datetime) -> None:
        """Give a claimed period back after a failure, keeping in the ledger what the
        server did accept (a digest split between recipients may have half gone out)."""
        def run(c: Writer) -> None:
            self._ledger(c, subscription, sent, self._time(now))
            c.execute("DELETE FROM digest_runs WHERE subscription = ? AND period_end = ? "
                      "AND status = 'sending' AND claimed_by = ?",
                      (subscription, self._time(period_end), owner))

        self._write(run)

    def digest_candidates(self, q: ItemQuery, seen_since: datetime, seen_before: datetime,
                          limit: int | None = None) -> list[ItemView]:
        """Items matching a query that were first stored in [seen_since, seen_before), with
        their sources. The upper bound is the digest's cut-off: an item stored while a
        digest is being built waits for the next one. ``q.limit`` and ``q.sort`` are not
        used: the digest ranks and cuts after removing what was already delivered."""
        query = (self._view_query().WHERE("i.first_seen >= ?", self._time(seen_since))
                 .WHERE("i.first_seen < ?", self._time(seen_before)))
        cond, cond_args = self._tag_condition(q)
        # IN (subquery) rather than EXISTS lets SQLite start from the (tag, score) index.
        for tag in q.tags:
            query.WHERE(f"i.id IN (SELECT t.item_id FROM item_tags t WHERE t.tag = ?{cond})",
                        tag, *cond_args)
        if q.any_tags:
            among, args = self._in("t.tag", q.any_tags)
            query.WHERE(f"i.id IN (SELECT t.item_id FROM item_tags t WHERE {among}{cond})",
                        *args, *cond_args)
        if cond and not (q.tags or q.any_tags):
            query.WHERE(f"i.id IN (SELECT t.item_id FROM item_tags t WHERE 1 = 1{cond})",
                        *cond_args)
        with self._search_errors(q, config=True):
            query.where_all(self._narrowing_filters(q))
            if q.search:
                query.where_all([self._search_term(q.search)])
            query.ORDER_BY("i.first_seen").ORDER_BY("i.id").LIMIT(limit)
            rows = self._rows(str(query), query.args)
        return self._collapse_stories(self._views(rows, with_sources=True))

    # -- retention ----------------------------------------------------------------------

    def prune(self, before: datetime) -> int:
        """Delete items published and first seen before ``before``, except those a user
        labelled (the labels are training data). Sources, tags, search rows and delivery
        records go with them (ON DELETE CASCADE, SQLite's FTS trigger); returns how many
        items were deleted."""
        cut = self._time(before)

        def run(c: Writer) -> int:
            removed = c.execute(
                "DELETE FROM items WHERE published < ? AND first_seen < ? "
                "AND id NOT IN (SELECT item_id FROM labels)", (cut, cut)).rowcount
            # Members left behind by a deleted first item: the earliest remaining one
            # becomes the story's id (computed first, then written, so no row sees a
            # half-updated story).
            moves = c.execute(
                "SELECT story_id, min(id) FROM items WHERE story_id IS NOT NULL "
                "AND story_id NOT IN (SELECT id FROM items) GROUP BY story_id").fetchall()
            if moves:
                c.executemany("UPDATE items SET story_id = ? WHERE story_id = ?",
                              [(new, old) for old, new in moves])
            return int(removed)

        removed = self._write(run)
        self._after_prune()
        return removed

    # -- key/value ----------------------------------------------------------------------

    def delete_meta(self, key: str) -> None:
        self._write(lambda c: c.execute("DELETE FROM meta WHERE key = ?", (key,)))

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return {k: v for k, v in self._rows(
            "SELECT key, value FROM meta WHERE key LIKE ? ESCAPE '\\'", (escaped + "%",))}

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value", (key, value)))

    def claim_lease(self, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """A lease in the meta table, as '<until, ISO> <owner>' (ISO times sort as text; the
        same text on both engines, so 'db migrate' copies it as is); one statement, so two
        daemons cannot both win."""
        from aggregator.timeutil import to_iso

        return bool(self._write(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value WHERE substr(meta.value, 1, 20) <= ? "
            "OR substr(meta.value, 22) = ?",
            (f"lease:{name}", f"{to_iso(now + lease)} {owner}", to_iso(now), owner)).rowcount))


def best_tags(group: Sequence[ItemView]) -> tuple[TagScore, ...]:
    """Each tag once, at its best score over a story's items, best first."""
    best: dict[str, TagScore] = {}
    for m in group:
        for t in m.tags:
            if t.tag not in best or t.score > best[t.tag].score:
                best[t.tag] = t
    return tuple(sorted(best.values(), key=lambda t: (-t.score, t.tag)))


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
