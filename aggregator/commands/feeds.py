"""feeds: list, add, remove, enable, disable, import, export, status.

config/feeds.toml is the one truth about which feeds are followed: ``add``, ``import`` and
``remove`` edit it (keeping its comments) and then sync the database at once, so the two
agree without waiting for the next fetch. ``enable`` and ``disable`` act on the database
state only: a feed the fetcher disabled after failing for 30 days comes back with
``enable``, which also clears its failure state so it is due at once.

``list`` and ``status`` are read in shell loops: they read the file with tomllib and the
database with sqlite3, import rich only to draw a table, and never create a database.
Everything but ``list`` goes through ``aggregator.feeds``; here are the options and output.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator.commands import reading
from aggregator.commands.common import Context, handle_errors, pass_ctx

# The reading side lives in commands/reading.py, which the click-free fast path imports
# (aggregator/launch.py runs a plain ``feeds list`` there); status uses it too.
from aggregator.commands.reading import emit_rows as _emit
from aggregator.commands.reading import feed_state, state_text

if TYPE_CHECKING:
    from aggregator.store.base import Attempt
    from aggregator.types import Feed

_format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "jsonl"]),
    help="Default: table on a terminal, jsonl when piped.")


@click.group()
def feeds() -> None:
    """Manage the feeds followed (config/feeds.toml)."""


# -- reading -------------------------------------------------------------------------


@feeds.command("list")
@reading.FEEDS_LIST[0].click_decorator()  # --format, defined once for click and the fast path
@pass_ctx
@handle_errors
def list_feeds(ctx: Context, fmt: str | None) -> None:
    """Print the feeds: name, url, tags, interval, state."""
    reading.run_feeds_list(ctx, fmt)


@feeds.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@_format_option
@pass_ctx
@handle_errors
def status(ctx: Context, names: tuple[str, ...], fmt: str | None) -> None:
    """Show how each feed is doing.

    State, last success and error, consecutive failures, next fetch, new items per day.

    New items per day are counted over the fetch attempts kept (see [fetch] attempts_kept).
    """
    from aggregator.feeds import feed_health
    from aggregator.timeutil import utcnow

    now = utcnow()
    rows = [status_row(h.name, h.feed, h.attempts, now) for h in feed_health(ctx.instance, names)]
    _emit(rows, fmt, ["feed", "state~", "last success~", "last error*", "failures", "next due~",
                      "new/day"],
          lambda r: [r["feed"], r["state_text"], _when(r["last_success"]),
                     r["last_error"] or "", str(r["consecutive_failures"]),
                     "never" if r["state"] == "disabled" else _when(r["next_due"], "now"),
                     "" if r["new_items_per_day"] is None else f"{r['new_items_per_day']:g}"])


# -- editing the file ----------------------------------------------------------------


@feeds.command()
@click.argument("url")
@click.option("--name", help="Feed name (default: made from the URL's site and path).")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="A tag the whole source implies, from config/taxonomy.toml (repeatable).")
@click.option("--interval", metavar="DURATION",
              help="How often to fetch: 30m, 2h (default: [fetch] interval).")
@click.option("--pick", type=click.IntRange(min=1), metavar="N",
              help="URL is a web page announcing several feeds: follow the N-th it lists.")
@click.option("--no-check", is_flag=True,
              help="Add the URL as given, without fetching it first.")
@pass_ctx
@handle_errors
def add(ctx: Context, url: str, name: str | None, tags: tuple[str, ...],
        interval: str | None, pick: int | None, no_check: bool) -> None:
    """Follow the feed at URL.

    Fetches URL once first: an error (connection refused, HTTP 404, not a feed) refuses
    it, unless --no-check. A web page is searched for the feeds it announces
    (<link rel="alternate">): the only one is followed; of several, they are listed and
    --pick N chooses. Adds a [[feed]] table at the end of config/feeds.toml; the feed is
    due at once.
    """
    from aggregator.feedcheck import ChooseFeed
    from aggregator.feeds import add_feed
    from aggregator.timeutil import format_duration, utcnow

    try:
        added = add_feed(ctx.instance, url, name=name, tags=tags, interval=interval, pick=pick,
                         check=not no_check, now=utcnow())
    except ChooseFeed as e:
        from aggregator.parse.normalize import clean_text

        for number, (feed_url, title) in enumerate(e.candidates, 1):
            shown = f"  ({clean_text(title)})" if title else ""
            click.echo(f"{number}. {feed_url}{shown}", err=True)
        raise
    feed = added.feed
    details = "".join([f" tags: {' '.join(feed.tags)};" if feed.tags else "",
                       f" every {format_duration(feed.interval)};" if feed.interval else ""])
    found = f" (found on {added.page})" if added.page else ""
    click.echo(f"added {feed.name}: {feed.url}{found};{details} due now")


@feeds.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@pass_ctx
@handle_errors
def remove(ctx: Context, names: tuple[str, ...]) -> None:
    """Stop following feeds (their items are kept).

    Deletes their tables from config/feeds.toml and deactivates them in the database.
    """
    from aggregator.feeds import remove_feeds
    from aggregator.timeutil import utcnow

    instance = ctx.instance
    for name in remove_feeds(instance, names, utcnow()):
        click.echo(f"removed {name} from {instance.display(instance.feeds_file)}; "
                   "its items are kept")


@feeds.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would be added; change nothing.")
@pass_ctx
@handle_errors
def import_opml(ctx: Context, file: Path, dry_run: bool) -> None:
    """Add the feeds of an OPML file.

    Folders that are tags in config/taxonomy.toml become tags. Duplicates (by URL or
    name) and invalid entries are skipped and reported.
    """
    from aggregator.feeds import import_feeds
    from aggregator.timeutil import utcnow

    plan = import_feeds(ctx.instance, file, dry_run=dry_run, now=utcnow())
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {len(plan.added)} feed{'s' * (len(plan.added) != 1)} from {file}"
               + (f", skipped {len(plan.skipped)}" if plan.skipped else ""))
    for f in plan.added:
        click.echo(f"  + {f.name}: {f.url}" + (f"  [{' '.join(f.tags)}]" if f.tags else ""))
    for s in plan.skipped:
        click.echo(f"  skipped {s.label}: {s.reason}")
    if plan.unknown_folders:
        click.echo("  not tags in config/taxonomy.toml, so not kept: "
                   + ", ".join(repr(g) for g in plan.unknown_folders))


@feeds.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
@handle_errors
def export_opml(ctx: Context, file: Path | None) -> None:
    """Write the feeds as OPML 2.0.

    To FILE, or to standard output; other feed readers import it.
    """
    from aggregator.feeds import export_feeds, write_export
    from aggregator.timeutil import utcnow

    text, count = export_feeds(ctx.instance, utcnow())
    if file is None:
        click.echo(text, nl=False)
        return
    write_export(file, text)
    click.echo(f"wrote {count} feeds to {file}", err=True)


# -- the database state --------------------------------------------------------------


@feeds.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@pass_ctx
@handle_errors
def enable(ctx: Context, names: tuple[str, ...]) -> None:
    """Fetch feeds again, at once.

    Clears the disabled and failure state, e.g. of a feed the fetcher disabled after
    failing for [fetch] disable_after (30 days).
    """
    from aggregator.feeds import enable_feeds
    from aggregator.timeutil import utcnow

    for before, _ in enable_feeds(ctx.instance, names, utcnow()):
        name = before.name
        if not before.enabled:
            click.echo(f"enabled {name} (was disabled since {before.disabled_at:%Y-%m-%d}: "
                       f"{before.disabled_reason}); due now")
        elif before.consecutive_failures:
            click.echo(f"{name} was not disabled; cleared {before.consecutive_failures} "
                       "failures; due now")
        else:
            click.echo(f"{name} was not disabled; due now")


@feeds.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--reason", default="by hand", show_default=True, help="Why, shown by status.")
@pass_ctx
@handle_errors
def disable(ctx: Context, names: tuple[str, ...], reason: str) -> None:
    """Stop fetching feeds (they stay in the file).

    Database state only: config/feeds.toml is not changed; 'enable' undoes it.
    """
    from aggregator.feeds import disable_feeds
    from aggregator.timeutil import utcnow

    for before, changed in disable_feeds(ctx.instance, names, reason, utcnow()):
        name = before.name
        if not changed:
            # Keep the first reason: it says why (e.g. 30 days of failures).
            click.echo(f"{name} is already disabled since {before.disabled_at:%Y-%m-%d}: "
                       f"{before.disabled_reason}")
        else:
            click.echo(f"disabled {name}: {reason}; 'aggregator feeds enable {name}' undoes it")


# -- rows (pure) ---------------------------------------------------------------------


def status_row(name: str, feed: Feed | None, attempts: Sequence[Attempt],
               now: datetime) -> dict[str, Any]:
    from aggregator.feeds import new_items_per_day
    from aggregator.timeutil import to_iso

    def iso(dt: datetime | None) -> str | None:
        return to_iso(dt) if dt else None

    state = feed_state(feed)
    return {
        "feed": name,
        "state": state,
        "state_text": state_text(feed),
        "failing_since": iso(feed.failing_since) if feed and state != "ok" else None,
        "disabled_at": iso(feed.disabled_at) if feed else None,
        "disabled_reason": feed.disabled_reason if feed else None,
        "last_success": iso(feed.last_success_at) if feed else None,
        "last_error": feed.last_error if feed and (feed.consecutive_failures or feed.malformed)
        else None,
        "consecutive_failures": feed.consecutive_failures if feed else 0,
        # None: due now (never fetched, or enabled again); disabled feeds are never due.
        "next_due": None if state == "disabled" or not feed else iso(
            feed.next_fetch_at if feed.next_fetch_at and feed.next_fetch_at > now else None),
        "new_items_per_day": new_items_per_day(attempts, now),
    }


# -- plumbing ------------------------------------------------------------------------


def _when(iso: str | None, none: str = "") -> str:
    return iso.replace("T", " ")[:16] if iso else none
