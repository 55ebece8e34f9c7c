"""query, show and tags: tagged items, filtered, in the formats other tools read.

This is the path analysts run in shell loops: it imports click, sqlite3 and json, and
reads config with tomllib; rich only for a table on a terminal.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from aggregator.cli import Context, handle_errors, pass_ctx
from aggregator.errors import UsageError

FORMATS = ["table", "jsonl", "json", "csv", "urls"]
FIELDS = ["id", "title", "url", "feed", "published", "summary", "categories", "tags"]


def _when(option: str, value: str | None) -> Any:
    from aggregator.timeutil import parse_when, utcnow

    if not value:
        return None
    try:
        return parse_when(value, utcnow())
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def _known_tags(ctx: Context, store: Any) -> list[str]:
    from aggregator.instance import SHIPPED_CONFIG, read_toml

    inst = ctx.instance
    path = inst.taxonomy_file if inst.taxonomy_file.exists() else SHIPPED_CONFIG / "taxonomy.toml"
    names = [t.get("name") for t in read_toml(path, inst).get("tag", []) if isinstance(t, dict)]
    return sorted({*filter(None, names), *store.distinct_tags()})


def _explain_empty(ctx: Context, store: Any, tags: list[str], feeds: list[str]) -> None:
    """Nothing matched: a misspelt tag or feed is a usage error, not an empty answer.

    Checked only when nothing matched, so a successful query never pays for it."""
    from aggregator.service import suggest

    if tags:
        known = _known_tags(ctx, store)
        for tag in tags:
            if tag not in known:
                raise UsageError(f"unknown tag {tag!r}{suggest(tag, known)}")
    if feeds:
        names = [f.name for f in store.feeds(include_inactive=True)]
        for name in feeds:
            if name not in names:
                raise UsageError(f"unknown feed {name!r}{suggest(name, names)}")


@click.command()
@click.argument("saved", required=False, metavar="[SAVED]")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Has this tag (repeatable: all of them).")
@click.option("--any-tag", "any_tags", multiple=True, metavar="TAG",
              help="Has at least one of these tags (repeatable).")
@click.option("--not-tag", "not_tags", multiple=True, metavar="TAG", help="Has not this tag (repeatable).")
@click.option("--min-score", type=click.FloatRange(0, 1), help="Minimum score on the tags named.")
@click.option("--source", "sources", multiple=True, type=click.Choice(["model", "rule", "user"]),
              help="Tags from this source only (repeatable).")
@click.option("--feed", "feeds", multiple=True, metavar="NAME", help="From this feed (repeatable).")
@click.option("--since", metavar="WHEN", help="Published since: 2026-11-20, 2026-11-20T08:00, 24h, 7d.")
@click.option("--until", metavar="WHEN", help="Published before (same forms as --since).")
@click.option("--search", metavar="TEXT",
              help='Full text over title and text (FTS5: "a phrase", OR, NOT, prefix*).')
@click.option("--limit", type=click.IntRange(min=0), help="At most this many items; 0 for all. [default: 50]")
@click.option("--sort", type=click.Choice(["date", "score"]), help="Newest first, or best score first.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Default: table on a terminal, jsonl when piped.")
@click.option("--fields", metavar="F,F", help=f"Columns to print, of: {','.join(FIELDS)}.")
@click.option("--save", metavar="NAME", help="Save these filters as NAME in config/queries.toml.")
@pass_ctx
@handle_errors
def query(ctx: Context, saved: str | None, save: str | None, fmt: str | None, fields: str | None,
          **options: Any) -> None:
    """Print tagged items, newest first. Exit 1 when nothing matches.

    Filters combine with AND. SAVED runs a query saved with --save; options given beside
    it override the saved ones.
    """
    from aggregator import saved_queries
    from aggregator.types import ItemQuery

    given = {k: v for k, v in options.items() if v not in (None, ())}
    if save:
        saved_queries.save(ctx.instance, save, given)
        click.echo(f"saved query {save!r} in {ctx.instance.display(ctx.instance.queries_file)}",
                   err=True)
    if saved:
        given = {**saved_queries.load(ctx.instance, saved), **given}
    limit = given.get("limit", 50)
    q = ItemQuery(
        tags=tuple(given.get("tags", ())), any_tags=tuple(given.get("any_tags", ())),
        not_tags=tuple(given.get("not_tags", ())), min_score=given.get("min_score"),
        sources=tuple(given.get("sources", ())), feeds=tuple(given.get("feeds", ())),
        since=_when("--since", given.get("since")), until=_when("--until", given.get("until")),
        search=given.get("search"), limit=limit or None, sort=given.get("sort", "date"))
    chosen = _fields(fields)
    store = ctx.store()
    try:
        items = store.query_items(q)
        if not items:
            _explain_empty(ctx, store, [*q.tags, *q.any_tags, *q.not_tags], list(q.feeds))
    finally:
        store.close()
    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    _print(items, fmt, chosen)
    sys.exit(0 if items else 1)


def _fields(spec: str | None) -> list[str]:
    if not spec:
        return FIELDS
    chosen = [f.strip() for f in spec.split(",") if f.strip()]
    for f in chosen:
        if f not in FIELDS:
            from aggregator.service import suggest

            raise UsageError(f"--fields: unknown field {f!r}{suggest(f, FIELDS)}; "
                             f"fields are {', '.join(FIELDS)}")
    return chosen


def _print(items: list[Any], fmt: str, fields: list[str]) -> None:
    from aggregator import output

    out = sys.stdout
    if fmt == "jsonl":
        output.write_jsonl(items, out, fields)
    elif fmt == "json":
        output.write_json(items, out, fields)
    elif fmt == "csv":
        output.write_csv(items, out, fields)
    elif fmt == "urls":
        out.writelines(f"{i.url}\n" for i in items if i.url)
    else:
        output.print_table(items, fields=fields)


@click.command()
@click.argument("item_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]),
              help="Default: text on a terminal, json when piped.")
@pass_ctx
@handle_errors
def show(ctx: Context, item_id: int, fmt: str | None) -> None:
    """Show one item whole: text, sources, tags with scores, model versions and reasons."""
    from aggregator import output

    store = ctx.store()
    try:
        item = store.get_item(item_id)
    finally:
        store.close()
    if item is None:
        raise UsageError(f"no item with id {item_id} (ids are in the first column of 'query')")
    fmt = fmt or ("text" if sys.stdout.isatty() else "json")
    if fmt == "json":
        output.write_item_detail_json(item, sys.stdout)
    else:
        output.write_item_detail_text(item, sys.stdout)


@click.command()
@click.option("--since", metavar="WHEN", default="14d", show_default=True,
              help="Count items published since: 2026-11-01, 7d, 2w.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]),
              help="Default: table on a terminal, jsonl when piped.")
@pass_ctx
@handle_errors
def tags(ctx: Context, since: str, fmt: str | None) -> None:
    """Each tag with its item count and a per-day sparkline, so a spike stands out."""
    from aggregator import output
    from aggregator.timeutil import utcnow

    start = _when("--since", since)
    store = ctx.store()
    try:
        counts = store.tag_counts(start, utcnow())
    finally:
        store.close()
    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    output.write_tag_counts(counts, start, utcnow(), fmt, sys.stdout)
    sys.exit(0 if counts else 1)
