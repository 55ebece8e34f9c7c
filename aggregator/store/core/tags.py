"""Tags and labels: classification claims and batches, tags written by source, labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from aggregator.store.core.base import CoreBase
from aggregator.store.core.sql import PRECEDENCE
from aggregator.views import TagScore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from aggregator.store.core.sql import Writer
    from aggregator.types import ItemToClassify


class Tags(CoreBase):
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
