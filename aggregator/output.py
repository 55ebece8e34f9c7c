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

from aggregator.safe_text import clean, csv_cell, http_url, json_line, json_text
from aggregator.timeutil import to_iso
from aggregator.views import ItemView

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a read command ~5 ms of its start
    from typing import IO, Any

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
            "sources": [{"feed": s.feed, "url": http_url(s.url), "published": to_iso(s.published)}
                        for s in story.sources],
            "first": story.first}


def item_json(item: ItemView, fields: Sequence[str] = ALL_FIELDS,
              story: Story | None = None) -> dict[str, Any]:
    full = {
        "id": item.id,
        "title": item.title,
        "url": http_url(item.url),
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
    out.writelines(json_line(item_json(i, fields, found.get(i.id))) for i in items)


def write_json(items: Sequence[ItemView], out: IO[str] = sys.stdout,
               fields: Sequence[str] = ALL_FIELDS,
               stories: Mapping[int, Story] | None = None) -> None:
    found = stories or {}
    out.write(json_text([item_json(i, fields, found.get(i.id)) for i in items], indent=2) + "\n")


def tags_text(item: ItemView, limit: int | None = None, sep: str = " ") -> str:
    return sep.join(f"{t.tag}:{t.score:.2f}" for t in item.tags[:limit])


def write_csv(items: Sequence[ItemView], out: IO[str] = sys.stdout,
              fields: Sequence[str] = ALL_FIELDS,
              stories: Mapping[int, Story] | None = None, raw: bool = False) -> None:
    """CSV a spreadsheet can open safely: cells that would start a formula get a leading
    ``'`` and control characters go, unless ``raw`` (``query --csv-raw``)."""
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
        writer.writerow(cells if raw else [csv_cell(c) for c in cells])


# The default table: what a person scans for, one line per item. The title takes the width
# the others leave and is cut with an ellipsis; --fields chooses other columns.
TABLE_FIELDS = ("id", "published", "feed", "title", "tags")
TABLE_TAGS = 3  # the best-scored tags named in the default table


def print_table(items: Sequence[ItemView], title: str | None = None,
                fields: Sequence[str] | None = None,
                stories: Mapping[int, Story] | None = None) -> None:
    """A table that fits the terminal: every cell on one line (ellipsis), except a URL,
    which folds so it can still be copied whole. Text from feeds is printed as text (no
    rich markup, no escape sequences)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if fields is None or fields is ALL_FIELDS:
        fields = TABLE_FIELDS
    table = Table(title=Text(clean(title)) if title else None, expand=True,
                  header_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                  padding=(0, 1, 0, 0))
    styles: dict[str, dict[str, Any]] = {
        "id": {"justify": "right", "no_wrap": True},
        "published": {"no_wrap": True, "header": "date", "min_width": 10},
        "feed": {"no_wrap": True, "max_width": 16, "overflow": "ellipsis"},
        "title": {"ratio": 4, "min_width": 12, "no_wrap": True, "overflow": "ellipsis"},
        "url": {"ratio": 3, "overflow": "fold"},
        "summary": {"ratio": 5, "no_wrap": True, "overflow": "ellipsis"},
        "categories": {"ratio": 1, "no_wrap": True, "overflow": "ellipsis"},
        "tags": {"ratio": 2, "max_width": 34, "no_wrap": True, "overflow": "ellipsis",
                 "style": "cyan"},
        "updated": {"no_wrap": True, "min_width": 10},
        "enclosures": {"ratio": 2, "overflow": "fold"},
    }
    for f in fields:
        opts = dict(styles[f])
        table.add_column(opts.pop("header", f), **opts)
    for item in items:
        story = stories[item.id] if stories else None
        cells = {
            "id": str(item.id), "published": item.published.strftime("%Y-%m-%d"),
            # A story: the feed that published first, and how many other entries.
            "feed": item.feed if story is None or len(story.sources) < 2 else
            f"{story.first} +{len(story.sources) - 1}",
            "title": item.title, "url": http_url(item.url) or "",
            "summary": item.summary[:300], "categories": ", ".join(item.categories),
            # The default table names the best tags; scores when the columns are chosen.
            "tags": " ".join(t.tag for t in item.tags[:TABLE_TAGS]) if fields is TABLE_FIELDS
            else tags_text(item, 6),
            "updated": item.updated.strftime("%Y-%m-%d") if item.updated else "",
            "enclosures": " ".join(u for u in (http_url(x.url) for x in item.enclosures) if u),
        }
        table.add_row(*(Text(clean(" ".join(cells[f].split()))) for f in fields))
    Console().print(table)


def write_item_detail_json(item: ItemView, out: IO[str]) -> None:
    data = item_json(item)
    data["tags"] = [{"tag": t.tag, "score": round(t.score, 4), "source": t.source,
                     "model_version": t.model_version, "reasons": list(t.reasons)}
                    for t in item.tags]
    data["sources"] = [{"feed": s.feed, "url": http_url(s.url), "published": to_iso(s.published),
                        "first_seen": to_iso(s.first_seen)} for s in item.sources]
    data["authors"] = list(item.authors)
    data["language"] = item.language
    data["date_is_fetch_time"] = item.date_is_fetch_time
    out.write(json_text(data, indent=2) + "\n")


def write_item_detail_text(item: ItemView, out: IO[str]) -> None:
    """``show`` on a terminal: every text from the feed cleaned of escape sequences, and only
    http(s) links."""
    import textwrap

    title = clean(" ".join(item.title.split()))
    lines = [title, "=" * min(len(title), 100)]
    lines.append(f"id {item.id} · {to_iso(item.published)}"
                 + (" (no date in the feed: fetch time)" if item.date_is_fetch_time else ""))
    if item.updated:
        lines.append(f"updated {to_iso(item.updated)}")
    url = http_url(item.url)
    if url:
        lines.append(url)
    if item.authors:
        lines.append("by " + clean(", ".join(item.authors)))
    if item.categories:
        lines.append("categories: " + clean(", ".join(item.categories)))
    lines.append("")
    lines += textwrap.wrap(clean(item.summary), 100) or ["(no text)"]
    enclosures = [(u, x) for u, x in ((http_url(x.url), x) for x in item.enclosures) if u]
    if enclosures:
        lines += ["", "enclosures:"]
        for u, x in enclosures:
            size = f"{x.length:,} bytes" if x.length else None
            about = ", ".join(v for v in (clean(x.type or ""), size) if v)
            lines.append(f"  {u}" + (f"  ({about})" if about else ""))
    lines += ["", "sources:"]
    for s in item.sources:
        lines.append(f"  {clean(s.feed):<20} {to_iso(s.published)}  {http_url(s.url) or ''}")
    lines += ["", "tags:"]
    for t in item.tags:
        origin = t.source + (f" {clean(t.model_version)}" if t.model_version else "")
        lines.append(f"  {clean(t.tag):<16} {t.score:.3f}  {origin}")
        if t.reasons:
            lines.append(f"  {'':<16} because: {clean(', '.join(t.reasons))}")
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
    from rich.text import Text

    table = Table(header_style="bold")
    table.add_column("tag")
    table.add_column("items", justify="right")
    table.add_column(f"per day {days[0]} → {days[-1]}" if days else "per day", no_wrap=True)
    for tag, count, series in rows:
        table.add_row(Text(clean(tag)), str(count), sparkline(series))
    Console().print(table)
