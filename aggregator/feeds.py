"""The use cases behind ``aggregator feeds``: follow, drop, import, export, enable, disable,
and how each feed is doing.

config/feeds.toml is the one truth about which feeds are followed: ``add_feed``,
``import_feeds`` and ``remove_feeds`` edit it (keeping its comments, ``feedfile``) and then
sync the database at once, both under the file's lock. ``enable_feeds`` and
``disable_feeds`` act on the database state only. The command module keeps the options and
the output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from aggregator.errors import UsageError, suggest

if TYPE_CHECKING:
    from aggregator.instance import Instance
    from aggregator.opml import ImportPlan
    from aggregator.store.base import Attempt, Store
    from aggregator.types import Feed
    from aggregator.views import FeedConfig


class FeedHealth(NamedTuple):
    """A declared feed, its stored state (None before its first sync) and its attempts."""

    name: str
    feed: Feed | None
    attempts: list[Attempt]


class Added(NamedTuple):
    feed: FeedConfig
    page: str | None  # the web page the feed was found on, when URL was one


class Toggled(NamedTuple):
    """A feed as it was before ``enable_feeds`` or ``disable_feeds``, and whether it changed."""

    before: Feed
    changed: bool


# -- reading -------------------------------------------------------------------------


def feed_health(instance: Instance, names: Sequence[str]) -> list[FeedHealth]:
    """The declared feeds (those named, or all), with their state and attempts kept."""
    from aggregator.feedfile import read_feeds

    declared = read_feeds(instance)
    check_names(names, [f.name for f in declared])
    wanted = [f for f in declared if not names or f.name in names]
    store = _open_existing(instance)
    try:
        stored = {f.name: f for f in store.feeds()} if store else {}
        out = []
        for decl in wanted:
            feed = stored.get(decl.name)
            attempts = list(store.attempts(feed.id, limit=100_000)) if store and feed else []
            out.append(FeedHealth(decl.name, feed, attempts))
        return out
    finally:
        if store:
            store.close()


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


def export_feeds(instance: Instance, now: datetime) -> tuple[str, int]:
    """The feeds as OPML 2.0 text, and how many."""
    from aggregator.feedfile import read_feeds
    from aggregator.opml import ExportFeed, export_opml

    declared = read_feeds(instance)
    store = _open_existing(instance)
    try:
        stored = {f.name: f for f in store.feeds()} if store else {}
    finally:
        if store:
            store.close()
    text = export_opml([ExportFeed(f.name, f.url, f.tags, f.interval,
                                   getattr(stored.get(f.name), "title", None))
                        for f in declared], now)
    return text, len(declared)


def write_export(file: Path, text: str) -> None:
    from aggregator.feedfile import write_text_atomically

    try:
        write_text_atomically(file, text)
    except OSError as e:
        raise UsageError(f"{file}: cannot write: {e.strerror or e}") from None


# -- editing the file ----------------------------------------------------------------


def add_feed(instance: Instance, url: str, *, name: str | None, tags: Sequence[str],
             interval: str | None, pick: int | None, check: bool, now: datetime) -> Added:
    """Follow the feed at ``url`` (fetched once first unless not ``check``; a web page is
    searched for the feeds it announces: ``feedcheck.ChooseFeed`` when it lists several
    and ``pick`` chose none)."""
    from aggregator.config import NAME_PATTERN, load_feeds
    from aggregator.feedfile import append_feeds, name_from_url, unique_name, valid_url
    from aggregator.opml import url_key
    from aggregator.timeutil import parse_duration
    from aggregator.views import FeedConfig

    known = known_tags(instance)
    current = load_feeds(instance, known)
    url = url.strip()
    if not valid_url(url):
        raise UsageError(f"expected an http(s) feed URL like https://example.org/feed.xml, "
                         f"found {url!r}")
    for tag in tags:
        if tag not in known:
            raise UsageError(f"unknown tag {tag!r}{suggest(tag, sorted(known))}")
    try:
        delta: timedelta | None = parse_duration(interval) if interval is not None else None
    except ValueError as e:
        raise UsageError(f"--interval: {e}") from None
    if pick is not None and not check:
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
    page = None
    if check:
        from aggregator.config import load_config
        from aggregator.feedcheck import check_feed

        checked = check_feed(load_config(instance).settings.fetch.to_settings(), url, now,
                             pick=pick)
        page = checked.page
        if checked.url != url:  # found on the page given
            url = checked.url
            already_followed(url)
    if name is None:
        name = unique_name(name_from_url(url), taken)
    feed = FeedConfig(name, url, tuple(dict.fromkeys(tags)), delta)
    edit_and_sync(instance, lambda text: append_feeds(text, [feed]), now)
    return Added(feed, page)


def remove_feeds(instance: Instance, names: Sequence[str], now: datetime) -> list[str]:
    """Stop following ``names`` (their items are kept); the names removed, once each."""
    from aggregator.config import load_feeds
    from aggregator.feedfile import remove_feed

    check_names(names, [f.name for f in load_feeds(instance)])
    unique = list(dict.fromkeys(names))

    def edit(text: str) -> str:
        for name in unique:
            text = remove_feed(text, name)
        return text

    edit_and_sync(instance, edit, now)
    return unique


def import_feeds(instance: Instance, file: Path, *, dry_run: bool, now: datetime) -> ImportPlan:
    """Add the feeds of an OPML file (not with ``dry_run``): what was added and skipped."""
    from aggregator.config import load_feeds
    from aggregator.feedfile import append_feeds
    from aggregator.opml import OpmlError, plan_import, read_opml

    known = known_tags(instance)
    current = load_feeds(instance, known)
    try:
        outlines = read_opml(file.read_bytes())
    except OpmlError as e:
        raise UsageError(f"{file}: {e}") from None
    except OSError as e:
        raise UsageError(f"{file}: cannot read: {e.strerror or e}") from None
    plan = plan_import(outlines, current, known)
    if plan.added and not dry_run:
        comment = f"Imported from {file.name} on {now:%Y-%m-%d}"
        edit_and_sync(instance, lambda text: append_feeds(text, plan.added, comment), now)
    return plan


def edit_and_sync(instance: Instance, edit: Callable[[str], str], now: datetime) -> None:
    """Apply a text edit to config/feeds.toml, then make the database agree at once.

    Both under one lock: a sync that read the file before another command's edit would
    deactivate the feed that edit added.
    """
    from aggregator.config import load_feeds
    from aggregator.errors import ConfigError
    from aggregator.feedfile import FeedFileError, edit_file, locked

    path = instance.feeds_file
    shown = instance.display(path)
    try:
        with locked(path):
            edit_file(path, edit)
            declared = load_feeds(instance)
            store = _open(instance)
            try:
                store.sync_feeds(declared, now)
            finally:
                store.close()
    except FeedFileError as e:
        raise ConfigError(shown, "", e.expected, e.found) from None
    except OSError as e:
        raise ConfigError(shown, "", "a file this user can write", e.strerror or str(e)) from None


# -- the database state --------------------------------------------------------------


def enable_feeds(instance: Instance, names: Sequence[str], now: datetime) -> list[Toggled]:
    """Clear the disabled and failure state of ``names``: due at once."""
    out = []
    store = _synced_store(instance, names, now)
    try:
        for name in dict.fromkeys(names):
            before = store.feeds([name])[0]
            store.set_feed_disabled(name, None, now)
            out.append(Toggled(before, True))
    finally:
        store.close()
    return out


def disable_feeds(instance: Instance, names: Sequence[str], reason: str,
                  now: datetime) -> list[Toggled]:
    """Stop fetching ``names``; a feed already disabled keeps its first reason."""
    out = []
    store = _synced_store(instance, names, now)
    try:
        for name in dict.fromkeys(names):
            before = store.feeds([name])[0]
            if before.enabled:
                store.set_feed_disabled(name, reason, now)
            out.append(Toggled(before, before.enabled))
    finally:
        store.close()
    return out


# -- plumbing ------------------------------------------------------------------------


def check_names(names: Sequence[str], declared: Sequence[str]) -> None:
    for name in names:
        if name not in declared:
            raise UsageError(f"no feed named {name!r} in config/feeds.toml"
                             f"{suggest(name, declared)}")


def known_tags(instance: Instance) -> set[str]:
    from aggregator.config import load_taxonomy

    return {t.name for t in load_taxonomy(instance).tags}


def _open(instance: Instance) -> Store:
    from aggregator.store import open_store

    store: Store = open_store(instance.database_url())
    return store


def _open_existing(instance: Instance) -> Store | None:
    """The store, or None when its SQLite file does not exist yet (reading creates nothing)."""
    from aggregator.store import store_exists

    if not store_exists(instance.database_url()):
        return None
    return _open(instance)


def _synced_store(instance: Instance, names: Sequence[str], now: datetime) -> Store:
    """An open store that knows every feed in the file, after checking ``names`` are there."""
    from aggregator.config import load_feeds
    from aggregator.feedfile import locked

    store: Store | None = None
    try:
        # Under the edit lock, so this sync never works from a file read mid-edit.
        with locked(instance.feeds_file):
            declared = load_feeds(instance)
            check_names(names, [f.name for f in declared])
            store = _open(instance)
            store.sync_feeds(declared, now)
    except BaseException:
        if store is not None:
            store.close()
        raise
    return store
