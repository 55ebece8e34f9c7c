"""query, show, tags and feeds list without click: their options (defined once), bodies.

These run in shell loops, so ``aggregator.launch`` runs them straight from a plain command
line without importing click; ``aggregator.commands.query`` wraps the same bodies and
options as click commands for everything else (help, errors in the command line). A body
gets what click would pass: ``Context`` and one keyword per option.

Imports here are of sqlite3, json and tomllib's size; rich only for a table on a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from aggregator.cmdline import Param
from aggregator.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a read command ~5 ms of its start
    from typing import Any

    from aggregator.cmdline import Context
    from aggregator.store.base import Store
    from aggregator.types import Feed
    from aggregator.views import FeedConfig, FeedState

# Ids and counts are 64-bit integers in the database: a larger number is a usage error.
MAX_ID = 2**63 - 1
FORMATS = ["table", "jsonl", "json", "csv", "urls"]
FIELDS = ["id", "title", "url", "feed", "published", "summary", "categories", "tags", "updated",
          "enclosures"]

QUERY = [
    Param("saved", required=False, metavar="[SAVED]"),
    Param("--tag", "tags", multiple=True, metavar="TAG", help="Has this tag (repeatable: all of them)."),
    Param("--any-tag", "any_tags", multiple=True, metavar="TAG",
          help="Has at least one of these tags (repeatable)."),
    Param("--not-tag", "not_tags", multiple=True, metavar="TAG", help="Has not this tag (repeatable)."),
    Param("--min-score", kind="float", low=0, high=1, help="Minimum score on the tags named."),
    Param("--source", "sources", multiple=True, kind="choice", choices=["model", "rule", "user"],
          help="Tags from this source only (repeatable)."),
    Param("--feed", "feeds", multiple=True, metavar="NAME", help="From this feed (repeatable)."),
    Param("--since", metavar="WHEN", help="Published since: 2026-11-20, 2026-11-20T08:00, 24h, 7d."),
    Param("--until", metavar="WHEN", help="Published before (same forms as --since)."),
    Param("--search", metavar="TEXT",
          help='Full text over title and text (FTS5: "a phrase", OR, NOT, prefix*).'),
    Param("--limit", kind="int", low=0, high=MAX_ID,
          help="At most this many items; 0 for all. [default: 50]"),
    Param("--sort", kind="choice", choices=["date", "score"], help="Newest first, or best score first."),
    Param("--format", "fmt", kind="choice", choices=FORMATS,
          help="Default: table on a terminal, jsonl when piped."),
    Param("--fields", metavar="F,F",
          help=f"Columns to print, of: {','.join(FIELDS)}. Default: all, but a table shows "
               "id, date, feed, title and the top tags."),
    Param("--csv-raw", kind="flag",
          help="With --format csv: cells as stored, without the leading ' that keeps a "
               "spreadsheet from running a cell starting with = + - @ as a formula."),
    Param("--save", metavar="NAME", help="Save these filters as NAME in config/queries.toml."),
]

SHOW = [
    Param("item_id", kind="int", low=0, high=MAX_ID),
    Param("--format", "fmt", kind="choice", choices=["text", "json"],
          help="Default: text on a terminal, json when piped."),
]

TAGS = [
    Param("--since", metavar="WHEN", default="14d", show_default=True,
          help="Count items published since: 2026-11-01, 7d, 2w."),
    Param("--format", "fmt", kind="choice", choices=["table", "jsonl"],
          help="Default: table on a terminal, jsonl when piped."),
]

# ``feeds list``; the click command is commands/feeds.py's list_feeds.
FEEDS_LIST = [
    Param("--format", "fmt", kind="choice", choices=["table", "jsonl"],
          help="Default: table on a terminal, jsonl when piped."),
]


def _when(option: str, value: str | None) -> Any:
    from aggregator.timeutil import parse_when, utcnow

    if not value:
        return None
    try:
        return parse_when(value, utcnow())
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def _known_tags(ctx: Context, store: Any) -> list[str]:
    from aggregator.instance import read_toml, shipped_config

    inst = ctx.instance
    path = inst.taxonomy_file if inst.taxonomy_file.exists() else shipped_config() / "taxonomy.toml"
    names = [t.get("name") for t in read_toml(path, inst).get("tag", []) if isinstance(t, dict)]
    return sorted({*filter(None, names), *store.distinct_tags()})


def _explain_empty(ctx: Context, store: Any, tags: list[str], feeds: list[str]) -> None:
    """A misspelt tag or feed is a usage error, not an empty answer.

    Checked when nothing matched (and for --any-tag and --not-tag always), so a plain
    successful query never pays for it."""
    from aggregator.errors import suggest

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


def story_requested() -> bool:
    """Whether --story was given: only click knows that option (see commands/query.py),
    so without click loaded it was not."""
    click = sys.modules.get("click")
    current = click.get_current_context(silent=True) if click is not None else None
    return bool(current is not None and current.meta.get("story"))


def run_query(ctx: Context, saved: str | None, save: str | None, fmt: str | None,
              fields: str | None, csv_raw: bool = False, **options: Any) -> None:
    """Print tagged items, newest first. Exit 1 when nothing matches.

    Filters combine with AND. SAVED runs a query saved with --save; options given beside
    it override the saved ones.
    """
    from aggregator import saved_queries
    from aggregator.views import ItemQuery

    given = {k: v for k, v in options.items() if v not in (None, ())}
    if save:
        import click  # rare: saving is done once, not in a loop

        saved_queries.save(ctx.instance, save, given)
        click.echo(f"saved query {save!r} in {ctx.instance.display(ctx.instance.queries_file)}",
                   err=True)
    if saved:
        given = {**saved_queries.load(ctx.instance, saved), **given}
    limit = given.get("limit", 50)
    min_score = given.get("min_score")
    if min_score is not None and not 0 <= min_score <= 1:  # NaN: click's FloatRange lets it by
        raise UsageError(f"--min-score: expected a number from 0 to 1, found {min_score}")
    q = ItemQuery(
        tags=tuple(given.get("tags", ())), any_tags=tuple(given.get("any_tags", ())),
        not_tags=tuple(given.get("not_tags", ())), min_score=given.get("min_score"),
        sources=tuple(given.get("sources", ())), feeds=tuple(given.get("feeds", ())),
        since=_when("--since", given.get("since")), until=_when("--until", given.get("until")),
        search=given.get("search"), limit=limit or None, sort=given.get("sort", "date"))
    chosen = _fields(fields)
    store = ctx.store()
    stories = None
    try:
        if story_requested():  # one row per story, with the story's sources (see Store.query_stories)
            rows = store.query_stories(q)
            items = [item for item, _ in rows]
            stories = {item.id: s for item, s in rows}
        else:
            items = store.query_items(q)
        if items and (q.any_tags or q.not_tags):
            # A misspelt --not-tag excludes nothing and a misspelt --any-tag adds nothing, so
            # the answer looks right: check them even when something matched.
            _explain_empty(ctx, store, [*q.any_tags, *q.not_tags], [])
        if not items:
            _explain_empty(ctx, store, [*q.tags, *q.any_tags, *q.not_tags], list(q.feeds))
    finally:
        store.close()
    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    _print(items, fmt, chosen, stories, csv_raw)
    sys.exit(0 if items else 1)


def _fields(spec: str | None) -> list[str] | None:
    """The fields asked for; None for the default (all, or a table's few)."""
    if not spec:
        return None
    chosen = [f.strip() for f in spec.split(",") if f.strip()]
    for f in chosen:
        if f not in FIELDS:
            from aggregator.errors import suggest

            raise UsageError(f"--fields: unknown field {f!r}{suggest(f, FIELDS)}; "
                             f"fields are {', '.join(FIELDS)}")
    return chosen


def _print(items: list[Any], fmt: str, fields: list[str] | None,
           stories: dict[int, Any] | None = None, csv_raw: bool = False) -> None:
    from aggregator import output

    out = sys.stdout
    every = output.ALL_FIELDS if fields is None else fields
    if fmt == "jsonl":
        output.write_jsonl(items, out, every, stories)
    elif fmt == "json":
        output.write_json(items, out, every, stories)
    elif fmt == "csv":
        output.write_csv(items, out, every, stories, raw=csv_raw)
    elif fmt == "urls":
        from aggregator.safe_text import http_url

        out.writelines(f"{url}\n" for i in items if (url := http_url(i.url)))
    else:
        output.print_table(items, fields=fields, stories=stories)


def run_show(ctx: Context, item_id: int, fmt: str | None) -> None:
    """Show one item whole: text, sources, tags, reasons."""
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


def run_tags(ctx: Context, since: str, fmt: str | None) -> None:
    """Tag counts with a per-day sparkline, so spikes show."""
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


# -- feeds list ------------------------------------------------------------------------
# Here rather than in commands/feeds.py (which is click through and through) so that the
# fast path can run it; feeds.py imports these for ``feeds status`` too.


def run_feeds_list(ctx: Context, fmt: str | None) -> None:
    """Print the feeds: name, url, tags, interval, state."""
    from aggregator.feedfile import read_feeds

    declared = read_feeds(ctx.instance)
    stored = feed_states(ctx)
    rows = [list_row(f, stored.get(f.name)) for f in declared]
    emit_rows(rows, fmt, ["name", "url*", "tags", "interval", "state~"],
          lambda r: [r["name"], r["url"], " ".join(r["tags"]), r["interval"] or "default",
                     state_text(stored.get(r["name"]))])


def feed_state(feed: Feed | FeedState | None) -> str:
    """new | ok | failing | disabled."""
    if feed is not None and not feed.enabled:
        return "disabled"
    if feed is None or (feed.last_fetched_at is None and not feed.consecutive_failures):
        return "new"
    return "failing" if feed.consecutive_failures else "ok"


def state_text(feed: Feed | FeedState | None) -> str:
    state = feed_state(feed)
    if feed is not None and state == "disabled":
        return f"disabled: {feed.disabled_reason or 'by hand'}"
    if feed is not None and state == "failing":
        since = feed.failing_since or feed.last_fetched_at
        return f"failing since {since:%Y-%m-%d}" if since else "failing"
    return state


def list_row(decl: FeedConfig, feed: Feed | FeedState | None) -> dict[str, Any]:
    from aggregator.timeutil import format_duration

    return {"name": decl.name, "url": decl.url, "tags": list(decl.tags),
            "interval": format_duration(decl.interval) if decl.interval else None,
            "state": feed_state(feed)}


def emit_rows(rows: list[dict[str, Any]], fmt: str | None, headers: list[str],
              cells: Callable[[dict[str, Any]], list[str]]) -> None:
    """JSON lines when piped (or asked), a rich table on a terminal.

    The table fits the terminal: headers marked '*' take the width that is left and wrap
    (a URL, an error); headers marked '~' (a state with its reason, a date) are cut with an
    ellipsis to the width that is left; the others never wrap, so names and dates stay
    whole and greppable. Text from feeds and servers is printed as text: no markup, no
    escape sequences.
    """
    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    if fmt == "jsonl":
        from aggregator.safe_text import json_line

        sys.stdout.writelines(json_line(r) for r in rows)
        return
    from rich import box
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from aggregator.safe_text import clean

    body = [[clean(" ".join(c.split())) for c in cells(r)] for r in rows]
    names = [h.rstrip("*~") for h in headers]
    natural = [max([cell_len(n), *(cell_len(row[i]) for row in body)])
               for i, n in enumerate(names)]
    console = Console()
    # A space of padding after each column and a space of rule between them; no edges.
    flexible = [i for i, h in enumerate(headers) if h.endswith(("*", "~"))]
    left = console.width - (2 * len(headers) - 1) - sum(
        w for i, w in enumerate(natural) if i not in flexible)
    # Too wide: each flexible column keeps a minimum (16 for a folding one, 11 for a cut
    # one: a date); what is left goes to the folding ones first (a URL shown whole), then
    # to the cut ones in proportion to what they lack.
    limit = {i: min(natural[i], 16 if headers[i].endswith("*") else 11) for i in flexible}
    if sum(limit.values()) > left:  # a narrow terminal: the minimums shrink too
        total = sum(limit.values())
        limit = {i: max(4, left * w // total) for i, w in limit.items()}
    spare = max(0, left - sum(limit.values()))
    for mark in ("*", "~"):
        group = [i for i in flexible if headers[i].endswith(mark)]
        lack = sum(natural[i] - limit[i] for i in group)
        if lack <= spare:
            given = {i: natural[i] - limit[i] for i in group}
        else:
            given = {i: spare * (natural[i] - limit[i]) // lack for i in group}
            for i in sorted(group, key=lambda i: natural[i] - limit[i]):  # what rounding left
                if sum(given.values()) < spare and given[i] < natural[i] - limit[i]:
                    given[i] += 1
        for i, extra in given.items():
            limit[i] += extra
        spare -= sum(given.values())
    table = Table(header_style="bold", expand=False, box=box.SIMPLE_HEAD, show_edge=False,
                  padding=(0, 1, 0, 0))
    for i, (header, name) in enumerate(zip(headers, names, strict=True)):
        if header.endswith("*"):
            table.add_column(name, overflow="fold", max_width=limit[i])
        elif header.endswith("~"):
            table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=limit[i])
        else:
            table.add_column(name, no_wrap=True)
    for row in body:
        table.add_row(*(Text(c) for c in row))
    console.print(table)


def open_existing_store(ctx: Context) -> Store | None:
    """The store, or None when its SQLite file does not exist yet (reading creates nothing)."""
    from aggregator.store import store_exists

    url = ctx.instance.database_url()
    if not store_exists(url):
        return None
    store: Store = ctx.store(url)
    return store


def feed_states(ctx: Context) -> dict[str, FeedState]:
    """The stored feeds' health by name; none before the database exists."""
    store = open_existing_store(ctx)
    if store is None:
        return {}
    try:
        return store.feed_states()
    finally:
        store.close()
