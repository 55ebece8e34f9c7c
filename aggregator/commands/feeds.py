"""feeds: list, add, remove, enable, disable, import, export, status.

config/feeds.toml is the one truth about which feeds are followed: ``add``, ``import`` and
``remove`` edit it (keeping its comments) and then sync the database at once, so the two
agree without waiting for the next fetch. ``enable`` and ``disable`` act on the database
state only: a feed the fetcher disabled after failing for 30 days comes back with
``enable``, which also clears its failure state so it is due at once.

``list`` and ``status`` are read in shell loops: they read the file with tomllib and the
database with sqlite3, import rich only to draw a table, and never create a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator.commands import reading
from aggregator.commands.common import Context, handle_errors, pass_ctx

# The reading side lives in commands/reading.py, which the click-free fast path imports
# (aggregator/launch.py runs a plain ``feeds list`` there); status and export use it too.
from aggregator.commands.reading import emit_rows as _emit
from aggregator.commands.reading import feed_state, state_text
from aggregator.commands.reading import open_existing_store as _open_existing_store
from aggregator.commands.reading import stored_feeds as _stored

if TYPE_CHECKING:
    from aggregator.instance import Instance
    from aggregator.store.base import Attempt, Store
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
    from aggregator.feedfile import read_feeds
    from aggregator.timeutil import utcnow

    declared = read_feeds(ctx.instance)
    _check_names(names, [f.name for f in declared])
    wanted = [f for f in declared if not names or f.name in names]
    now = utcnow()
    store = _open_existing_store(ctx)
    try:
        stored = {f.name: f for f in store.feeds()} if store else {}
        rows = []
        for decl in wanted:
            feed = stored.get(decl.name)
            attempts = store.attempts(feed.id, limit=100_000) if store and feed else []
            rows.append(status_row(decl.name, feed, attempts, now))
    finally:
        if store:
            store.close()
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
    import re

    from aggregator.config import NAME_PATTERN, load_feeds
    from aggregator.errors import UsageError
    from aggregator.feedfile import append_feeds, name_from_url, unique_name, valid_url
    from aggregator.opml import url_key
    from aggregator.service import check_tags
    from aggregator.timeutil import format_duration, parse_duration
    from aggregator.views import FeedConfig

    instance = ctx.instance
    known = _known_tags(instance)
    current = load_feeds(instance, known)
    url = url.strip()
    if not valid_url(url):
        raise UsageError(f"expected an http(s) feed URL like https://example.org/feed.xml, "
                         f"found {url!r}")
    check_tags(tags, sorted(known))
    try:
        delta = parse_duration(interval) if interval is not None else None
    except ValueError as e:
        raise UsageError(f"--interval: {e}") from None
    if pick is not None and no_check:
        raise UsageError("--pick needs the page fetched: drop --no-check")
    taken = {f.name for f in current}

    def already_followed(url: str) -> None:
        same = next((f for f in current if url_key(f.url) == url_key(url)), None)
        if same:
            raise UsageError(f"{url} is already followed as {same.name!r}")

    # What needs no network first: a refusal should not wait for a fetch.
    already_followed(url)
    if name is not None:
        if not re.match(NAME_PATTERN, name):
            raise UsageError(f"--name: expected lower-case letters, digits, '-' and '_', starting "
                             f"with a letter or digit, found {name!r}")
        if name in taken:
            other = next(f.url for f in current if f.name == name)
            raise UsageError(f"--name: a feed named {name!r} already exists ({other}); "
                             "choose another name")
    checked = None
    if not no_check:
        checked = _check_url(ctx, url, pick)
        if checked.url != url:  # found on the page given
            url = checked.url
            already_followed(url)
    if name is None:
        name = unique_name(name_from_url(url), taken)
    feed = FeedConfig(name, url, tuple(dict.fromkeys(tags)), delta)
    _edit_and_sync(ctx, instance, lambda text: append_feeds(text, [feed]))
    details = "".join([f" tags: {' '.join(feed.tags)};" if feed.tags else "",
                       f" every {format_duration(delta)};" if delta else ""])
    found = f" (found on {checked.page})" if checked and checked.page else ""
    click.echo(f"added {name}: {url}{found};{details} due now")


def _check_url(ctx: Context, url: str, pick: int | None) -> Any:
    """The feed at (or announced by) ``url``, fetched once; the candidates on stderr when
    the page announces several."""
    from aggregator.feedcheck import ChooseFeed, check_feed
    from aggregator.parse.normalize import clean_text
    from aggregator.timeutil import utcnow

    settings = ctx.config().settings.fetch.to_settings()
    try:
        return check_feed(settings, url, utcnow(), pick=pick)
    except ChooseFeed as e:
        for number, (feed_url, title) in enumerate(e.candidates, 1):
            shown = f"  ({clean_text(title)})" if title else ""
            click.echo(f"{number}. {feed_url}{shown}", err=True)
        raise


@feeds.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@pass_ctx
@handle_errors
def remove(ctx: Context, names: tuple[str, ...]) -> None:
    """Stop following feeds (their items are kept).

    Deletes their tables from config/feeds.toml and deactivates them in the database.
    """
    from aggregator.config import load_feeds
    from aggregator.feedfile import remove_feed

    instance = ctx.instance
    _check_names(names, [f.name for f in load_feeds(instance)])

    def edit(text: str) -> str:
        for name in dict.fromkeys(names):
            text = remove_feed(text, name)
        return text

    _edit_and_sync(ctx, instance, edit)
    for name in dict.fromkeys(names):
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
    from aggregator.config import load_feeds
    from aggregator.errors import UsageError
    from aggregator.feedfile import append_feeds
    from aggregator.opml import OpmlError, plan_import, read_opml
    from aggregator.timeutil import utcnow

    instance = ctx.instance
    known = _known_tags(instance)
    current = load_feeds(instance, known)
    try:
        outlines = read_opml(file.read_bytes())
    except OpmlError as e:
        raise UsageError(f"{file}: {e}") from None
    except OSError as e:
        raise UsageError(f"{file}: cannot read: {e.strerror or e}") from None
    plan = plan_import(outlines, current, known)
    if plan.added and not dry_run:
        comment = f"Imported from {file.name} on {utcnow():%Y-%m-%d}"
        _edit_and_sync(ctx, instance, lambda text: append_feeds(text, plan.added, comment))
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
    from aggregator.errors import UsageError
    from aggregator.feedfile import read_feeds, write_text_atomically
    from aggregator.opml import ExportFeed
    from aggregator.opml import export_opml as render
    from aggregator.timeutil import utcnow

    declared = read_feeds(ctx.instance)
    stored = _stored(ctx)
    text = render([ExportFeed(f.name, f.url, f.tags, f.interval,
                              getattr(stored.get(f.name), "title", None))
                   for f in declared], utcnow())
    if file is None:
        click.echo(text, nl=False)
        return
    try:
        write_text_atomically(file, text)
    except OSError as e:
        raise UsageError(f"{file}: cannot write: {e.strerror or e}") from None
    click.echo(f"wrote {len(declared)} feeds to {file}", err=True)


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
    from aggregator.timeutil import utcnow

    store = _synced_store(ctx, names)
    try:
        for name in dict.fromkeys(names):
            before = store.feeds([name])[0]
            store.set_feed_disabled(name, None, utcnow())
            if not before.enabled:
                click.echo(f"enabled {name} (was disabled since {before.disabled_at:%Y-%m-%d}: "
                           f"{before.disabled_reason}); due now")
            elif before.consecutive_failures:
                click.echo(f"{name} was not disabled; cleared {before.consecutive_failures} "
                           "failures; due now")
            else:
                click.echo(f"{name} was not disabled; due now")
    finally:
        store.close()


@feeds.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--reason", default="by hand", show_default=True, help="Why, shown by status.")
@pass_ctx
@handle_errors
def disable(ctx: Context, names: tuple[str, ...], reason: str) -> None:
    """Stop fetching feeds (they stay in the file).

    Database state only: config/feeds.toml is not changed; 'enable' undoes it.
    """
    from aggregator.timeutil import utcnow

    store = _synced_store(ctx, names)
    try:
        for name in dict.fromkeys(names):
            before = store.feeds([name])[0]
            if not before.enabled:
                # Keep the first reason: it says why (e.g. 30 days of failures).
                click.echo(f"{name} is already disabled since {before.disabled_at:%Y-%m-%d}: "
                           f"{before.disabled_reason}")
                continue
            store.set_feed_disabled(name, reason, utcnow())
            click.echo(f"disabled {name}: {reason}; 'aggregator feeds enable {name}' undoes it")
    finally:
        store.close()


# -- rows (pure) ---------------------------------------------------------------------


def status_row(name: str, feed: Feed | None, attempts: Sequence[Attempt],
               now: datetime) -> dict[str, Any]:
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


def new_items_per_day(attempts: Sequence[Attempt], now: datetime) -> float | None:
    """New items over the attempts kept, per day of the span they cover (at least a day).

    At least a day, so a feed fetched once an hour ago does not claim its whole backlog
    as a daily rate.
    """
    if not attempts:
        return None
    oldest = min(a.at for a in attempts)
    days = max((now - oldest).total_seconds() / 86400, 1.0)
    return round(sum(a.new_items for a in attempts) / days, 1)


# -- plumbing ------------------------------------------------------------------------


def _when(iso: str | None, none: str = "") -> str:
    return iso.replace("T", " ")[:16] if iso else none


def _check_names(names: Sequence[str], declared: Sequence[str]) -> None:
    from aggregator.errors import UsageError, suggest

    for name in names:
        if name not in declared:
            raise UsageError(f"no feed named {name!r} in config/feeds.toml"
                             f"{suggest(name, declared)}")


def _known_tags(instance: Instance) -> set[str]:
    from aggregator.config import load_taxonomy

    return {t.name for t in load_taxonomy(instance).tags}


def _edit_and_sync(ctx: Context, instance: Instance, edit: Callable[[str], str]) -> None:
    """Apply a text edit to config/feeds.toml, then make the database agree at once.

    Both under one lock: a sync that read the file before another command's edit would
    deactivate the feed that edit added.
    """
    from aggregator.config import load_feeds
    from aggregator.errors import ConfigError
    from aggregator.feedfile import FeedFileError, edit_file, locked
    from aggregator.timeutil import utcnow

    path = instance.feeds_file
    shown = instance.display(path)
    try:
        with locked(path):
            edit_file(path, edit)
            declared = load_feeds(instance)
            store = ctx.store()
            try:
                store.sync_feeds(declared, utcnow())
            finally:
                store.close()
    except FeedFileError as e:
        raise ConfigError(shown, "", e.expected, e.found) from None
    except OSError as e:
        raise ConfigError(shown, "", "a file this user can write", e.strerror or str(e)) from None


def _synced_store(ctx: Context, names: Sequence[str]) -> Store:
    """An open store that knows every feed in the file, after checking ``names`` are there."""
    from aggregator.config import load_feeds
    from aggregator.feedfile import locked
    from aggregator.timeutil import utcnow

    store: Store | None = None
    try:
        # Under the edit lock, so this sync never works from a file read mid-edit.
        with locked(ctx.instance.feeds_file):
            declared = load_feeds(ctx.instance)
            _check_names(names, [f.name for f in declared])
            store = ctx.store()
            store.sync_feeds(declared, utcnow())
    except BaseException:
        if store is not None:
            store.close()
        raise
    return store
