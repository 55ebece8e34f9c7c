"""fetch without click: its options (defined once) and its body.

A cron job or a systemd timer runs ``aggregator fetch`` every few minutes, and most runs find
little or nothing due: ``aggregator.launch`` runs a plain command line straight from here,
without click (~30 ms); ``aggregator.commands.core`` wraps the same body and options as the
click command for everything else (help, errors in the command line).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from aggregator.cmdline import Param

if TYPE_CHECKING:
    from aggregator.cmdline import Context

FETCH = [
    Param("--feed", "names", multiple=True, metavar="NAME", help="Fetch this feed (repeatable)."),
    Param("--all", "all_feeds", kind="flag", help="Fetch every enabled feed, due or not."),
]


def run_fetch(ctx: Context, names: tuple[str, ...], all_feeds: bool) -> None:
    """Fetch due feeds once: store new items and tag them.

    Exit code 0 when every feed fetched was fetched, 1 when any failed (each named on
    standard error with the reason), 2 for a usage or config error.
    """
    if all_feeds or names:  # something to fetch: load HTTP while the config and store open
        from aggregator.fetch import start_loading

        start_loading()
    from aggregator.service import fetch_pass

    config = ctx.config()
    store = ctx.store(config.database_url)
    report, stop = _progress()
    try:
        summary = fetch_pass(config, store, names=names, all_feeds=all_feeds, progress=report,
                             notice=_notice)
    finally:
        stop()
        store.close()
    sys.stdout.write(summary_line(summary) + "\n")
    sys.stdout.flush()
    if summary.failures:
        # Like grep: 1 says something went wrong, for cron and systemd to alert on; the
        # items that did come are stored all the same.
        count = len(summary.failures)
        lines = [f"{count} feed{'s' if count > 1 else ''} failed:"]
        lines += [f"  {name}: {error}" for name, error in summary.failures]
        sys.stderr.write("\n".join(lines) + "\n")
        raise SystemExit(1)


def _notice(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _progress() -> tuple[Any, Any]:
    if not sys.stderr.isatty():  # piped or from cron: no bar, and no rich to import
        return None, lambda: None
    from aggregator.commands.common import progress_reporter

    return progress_reporter()


def summary_line(s: Any) -> str:
    return (f"feeds: {s.feeds_ok} ok, {s.feeds_not_modified} not modified, {s.feeds_failed} failed; "
            f"items: {s.new_items} new, {s.updated_items} updated; tags: {s.tags_assigned} assigned")
