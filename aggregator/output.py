"""Printing items: JSON lines for scripts, a table for people.

The JSON fields are a stable contract (see the README): id, title, url, feed, published,
summary, categories, tags [{tag, score, source}]. New fields may be added; none removed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO, Any

from aggregator.timeutil import to_iso
from aggregator.types import ItemView


def item_json(item: ItemView) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "url": item.url,
        "feed": item.feed,
        "published": to_iso(item.published),
        "summary": item.summary,
        "categories": list(item.categories),
        "tags": [{"tag": t.tag, "score": round(t.score, 4), "source": t.source} for t in item.tags],
    }


def write_jsonl(items: Sequence[ItemView], out: IO[str] = sys.stdout) -> None:
    out.writelines(json.dumps(item_json(i), ensure_ascii=False) + "\n" for i in items)


def tags_text(item: ItemView, limit: int = 6) -> str:
    return " ".join(f"{t.tag}:{t.score:.2f}" for t in item.tags[:limit])


def print_table(items: Sequence[ItemView], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, expand=True, show_lines=False, header_style="bold")
    table.add_column("id", justify="right", no_wrap=True, ratio=None)
    table.add_column("date", no_wrap=True)
    table.add_column("feed", no_wrap=True, max_width=18, overflow="ellipsis")
    table.add_column("title", ratio=3, overflow="fold")
    table.add_column("tags", ratio=2, overflow="fold", style="cyan")
    for item in items:
        table.add_row(str(item.id), item.published.strftime("%Y-%m-%d"), item.feed, item.title,
                      tags_text(item))
    Console().print(table)
