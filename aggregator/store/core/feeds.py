"""Feeds: the sync with feeds.toml, reading, fetch state, leases given back, attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aggregator.store.core.base import CoreBase
from aggregator.store.core.sql import FEED_COLUMNS, Query
from aggregator.views import FeedState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from aggregator.store.core.sql import Writer
    from aggregator.types import Attempt, Feed, SyncResult
    from aggregator.views import FeedConfig


class Feeds(CoreBase):
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
