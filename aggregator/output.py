"""Printing items: JSON for scripts, CSV for spreadsheets, tables for people.

The JSON fields are a stable contract (see the README): id, title, url, feed, published,
summary, categories, tags [{tag, score, source}]. Fields may be added, never removed or
renamed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from aggregator.timeutil import to_iso
from aggregator.views import ItemView

if TYPE_CHECKING:
    from aggregator.views import Story

ALL_FIELDS = ["id", "title", "url", "feed", "published", "summary", "categories", "tags",
              "updated", "enclosures"]
# CSV columns are read by position: the fields added later come only when named.
CSV_FIELDS = ALL_FIELDS[:8]
_SPARKS = " ▁▂▃▄▅▆▇█"


def story_json(story: Story) -> dict[str, Any]:
    """The ``story`` field (``query --story`` only): id, how many items, every feed's
    entry earliest first, and which feed published first."""
    return {"id": story.id, "items": story.items,
            "sources": [{"feed": s.feed, "url": s.url, "published": to_iso(s.published)}
                        for s in story.sources],
            "first": story.first}


def item_json(item: ItemView, fields: Sequence[str] = ALL_FIELDS,
              story: Story | None = None) -> dict[str, Any]:
    full = {
        "id": item.id,
        "title": item.title,
        "url": item.url,
        "feed": item.feed,
        "published": to_iso(item.published),
        "summary": item.summary,
        "categories": list(item.categories),
        "tags": [{"tag": t.tag, "score": round(t.score, 4), "source": t.source} for t in item.tags],
        "updated": to_iso(item.updated) if item.updated else None,
        "enclosures": [{"url": x.url, "type": x.type, "length": x.length}
                       for x in item.enclosures],
    }
    chosen = full if fields is ALL_FIELDS else {f: full[f] for f in fields}
    if story is not None:  # only when asked for: existing readers see what they know
        chosen["story"] = story_json(story)
    return chosen


def write_jsonl(items: Sequence[ItemView], out: IO[str] = sys.stdout,
                fields: Sequence[str] = ALL_FIELDS,
                stories: Mapping[int, Story] | None = None) -> None:
    found = stories or {}
    out.writelines(json.dumps(item_json(i, fields, found.get(i.id)), ensure_ascii=False) + "\n"
                   for i in items)


def write_json(items: Sequence[ItemView], out: IO[str] = sys.stdout,
               fields: Sequence[str] = ALL_FIELDS,
               stories: Mapping[int, Story] | None = None) -> None:
    found = stories or {}
    json.dump([item_json(i, fields, found.get(i.id)) for i in items], out, ensure_ascii=False,
              indent=2)
    out.write("\n")


def tags_text(item: ItemView, limit: int | None = None, sep: str = " ") -> str:
    return sep.join(f"{t.tag}:{t.score:.2f}" for t in item.tags[:limit])


def write_csv(items: Sequence[ItemView], out: IO[str] = sys.stdout,
              fields: Sequence[str] = ALL_FIELDS,
              stories: Mapping[int, Story] | None = None) -> None:
    import csv

    if fields is ALL_FIELDS:
        fields = CSV_FIELDS
    writer = csv.writer(out)
    extra = ["story_id", "story_items", "story_feeds", "first"] if stories is not None else []
    writer.writerow([*fields, *extra])
    for item in items:
        row = item_json(item, fields)
        if "tags" in row:
            row["tags"] = tags_text(item, sep=";")
        if "categories" in row:
            row["categories"] = ";".join(item.categories)
        if "enclosures" in row:
            row["enclosures"] = ";".join(x.url for x in item.enclosures)
        cells = [row[f] for f in fields]
        if stories is not None:
            s = stories[item.id]
            cells += [s.id, s.items, ";".join(dict.fromkeys(x.feed for x in s.sources)), s.first]
        writer.writerow(cells)


def print_table(items: Sequence[ItemView], title: str | None = None,
                fields: Sequence[str] = ("id", "published", "feed", "title", "tags"),
                stories: Mapping[int, Story] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    if fields is ALL_FIELDS:
        fields = ("id", "published", "feed", "title", "tags")
    table = Table(title=title, expand=True, header_style="bold")
    styles: dict[str, dict[str, Any]] = {
        "id": {"justify": "right", "no_wrap": True},
        "published": {"no_wrap": True, "header": "date"},
        "feed": {"no_wrap": True, "max_width": 18, "overflow": "ellipsis"},
        "title": {"ratio": 3, "overflow": "fold"},
        "url": {"ratio": 2, "overflow": "fold"},
        "summary": {"ratio": 4, "overflow": "fold"},
        "categories": {"ratio": 1, "overflow": "fold"},
        "tags": {"ratio": 2, "overflow": "fold", "style": "cyan"},
        "updated": {"no_wrap": True},
        "enclosures": {"ratio": 2, "overflow": "fold"},
    }
    for f in fields:
        opts = dict(styles[f])
        table.add_column(opts.pop("header", f), **opts)
    for item in items:
        cells = {
            "id": str(item.id), "published": item.published.strftime("%Y-%m-%d"),
            # A story: the feed that published first, and how many other entries.
            "feed": item.feed if not stories or len(stories[item.id].sources) < 2 else
            f"{stories[item.id].first} +{len(stories[item.id].sources) - 1}",
            "title": item.title, "url": item.url or "",
            "summary": item.summary[:300], "categories": ", ".join(item.categories),
            "tags": tags_text(item, 6),
            "updated": item.updated.strftime("%Y-%m-%d") if item.updated else "",
            "enclosures": " ".join(x.url for x in item.enclosures),
        }
        table.add_row(*(cells[f] for f in fields))
    Console().print(table)


def write_item_detail_json(item: ItemView, out: IO[str]) -> None:
    data = item_json(item)
    data["tags"] = [{"tag": t.tag, "score": round(t.score, 4), "source": t.source,
                     "model_version": t.model_version, "reasons": list(t.reasons)}
                    for t in item.tags]
    data["sources"] = [{"feed": s.feed, "url": s.url, "published": to_iso(s.published),
                        "first_seen": to_iso(s.first_seen)} for s in item.sources]
    data["authors"] = list(item.authors)
    data["language"] = item.language
    data["date_is_fetch_time"] = item.date_is_fetch_time
    json.dump(data, out, ensure_ascii=False, indent=2)
    out.write("\n")


def write_item_detail_text(item: ItemView, out: IO[str]) -> None:
    import textwrap

    lines = [item.title, "=" * min(len(item.title), 100)]
    lines.append(f"id {item.id} · {to_iso(item.published)}"
                 + (" (no date in the feed: fetch time)" if item.date_is_fetch_time else ""))
    if item.updated:
        lines.append(f"updated {to_iso(item.updated)}")
    if item.url:
        lines.append(item.url)
    if item.authors:
        lines.append("by " + ", ".join(item.authors))
    if item.categories:
        lines.append("categories: " + ", ".join(item.categories))
    lines.append("")
    lines += textwrap.wrap(item.summary, 100) or ["(no text)"]
    if item.enclosures:
        lines += ["", "enclosures:"]
        for x in item.enclosures:
            about = ", ".join(v for v in (x.type, f"{x.length:,} bytes" if x.length else None) if v)
            lines.append(f"  {x.url}" + (f"  ({about})" if about else ""))
    lines += ["", "sources:"]
    for s in item.sources:
        lines.append(f"  {s.feed:<20} {to_iso(s.published)}  {s.url or ''}")
    lines += ["", "tags:"]
    for t in item.tags:
        origin = t.source + (f" {t.model_version}" if t.model_version else "")
        lines.append(f"  {t.tag:<16} {t.score:.3f}  {origin}")
        if t.reasons:
            lines.append(f"  {'':<16} because: {', '.join(t.reasons)}")
    out.write("\n".join(lines) + "\n")


def sparkline(values: Sequence[int]) -> str:
    top = max(values, default=0)
    if top == 0:
        return _SPARKS[0] * len(values)
    return "".join(_SPARKS[0 if v == 0 else max(1, round(v / top * 8))] for v in values)


def write_tag_counts(counts: Sequence[Any], since: datetime | None, now: datetime, fmt: str,
                     out: IO[str]) -> None:
    first = since or min((datetime.fromisoformat(d[0][0]) for c in counts if (d := c.per_day)),
                         default=now)
    days = [(first + timedelta(days=n)).strftime("%Y-%m-%d")
            for n in range((now.date() - first.date()).days + 1)]
    rows = []
    for c in counts:
        per = dict(c.per_day)
        rows.append((c.tag, c.count, [per.get(d, 0) for d in days]))
    if fmt == "jsonl":
        for tag, count, series in rows:
            out.write(json.dumps({"tag": tag, "count": count,
                                  "per_day": dict(zip(days, series, strict=True))}) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(header_style="bold")
    table.add_column("tag")
    table.add_column("items", justify="right")
    table.add_column(f"per day {days[0]} → {days[-1]}" if days else "per day", no_wrap=True)
    for tag, count, series in rows:
        table.add_row(tag, str(count), sparkline(series))
    Console().print(table)
