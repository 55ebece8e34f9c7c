"""Digests: the delivery ledger, claimed periods, candidates with their stories collapsed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aggregator.store.core.items import Items
from aggregator.views import ItemQuery, ItemView

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from aggregator.store.core.sql import Sent, Writer


class Digests(Items):
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
