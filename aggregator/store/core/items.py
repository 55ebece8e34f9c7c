"""Items as the commands read them: filters, views, stories, counts, retention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aggregator.store.core.base import CoreBase
from aggregator.store.core.sql import VIEW_COLUMNS, VIEW_SELECT, Query
from aggregator.views import Enclosure, ItemQuery, ItemView, Source, Story, TagCount, TagScore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from aggregator.store.core.sql import Term, Writer


def _escape(text: str) -> str:
    """html.escape(text, quote=False), without importing html (and html.entities: ~3 ms of
    every query)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Items(CoreBase):
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
            content_html=r[7] or _escape(r[5]), authors=tuple(j(r[8])),
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

    def raw_hashes(self, feed_id: int) -> set[str]:
        """The raw hashes of a feed's stored entries (aggregator.parse.feeds.raw_hash)."""
        return {r[0] for r in self._rows(
            "SELECT raw_hash FROM item_sources WHERE feed_id = ? AND raw_hash IS NOT NULL",
            (feed_id,))}

    def remember_raw_hashes(self, feed_id: int, pairs: Sequence[tuple[str, str]]) -> None:
        """Record (entry key, raw hash) for a feed's stored entries."""
        if not pairs:
            return

        def run(c: Writer) -> None:
            c.executemany("UPDATE item_sources SET raw_hash = ? WHERE feed_id = ? AND entry_key = ?",
                          [(h, feed_id, key) for key, h in pairs])

        self._write(run, durable=False)

    def distinct_tags(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT tag FROM item_tags ORDER BY tag")]

    def count_items(self) -> int:
        return int(self._rows("SELECT count(*) FROM items")[0][0])

    def count_items_since(self, since: datetime) -> int:
        return int(self._rows("SELECT count(*) FROM items WHERE first_seen >= ?",
                              (self._time(since),))[0][0])

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


def best_tags(group: Sequence[ItemView]) -> tuple[TagScore, ...]:
    """Each tag once, at its best score over a story's items, best first."""
    best: dict[str, TagScore] = {}
    for m in group:
        for t in m.tags:
            if t.tag not in best or t.score > best[t.tag].score:
                best[t.tag] = t
    return tuple(sorted(best.values(), key=lambda t: (-t.score, t.tag)))
