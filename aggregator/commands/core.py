"""init, fetch and demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aggregator.cli import Context, handle_errors, pass_ctx, progress_reporter


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@handle_errors
def init(directory: Path) -> None:
    """Create a new instance with commented default config files."""
    from aggregator.config import init_instance

    written = init_instance(directory)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"instance ready: aggregator --home {directory} fetch")


@click.command()
@click.option("--feed", "names", multiple=True, metavar="NAME", help="Fetch this feed (repeatable).")
@click.option("--all", "all_feeds", is_flag=True, help="Fetch every enabled feed, due or not.")
@pass_ctx
@handle_errors
def fetch(ctx: Context, names: tuple[str, ...], all_feeds: bool) -> None:
    """Fetch due feeds once: store new items and tag them."""
    if all_feeds or names:  # something to fetch: load HTTP while the config and store open
        from aggregator.fetch import start_loading

        start_loading()
    from aggregator.service import fetch_pass

    config = ctx.config()
    store = ctx.store(config.database_url)
    report, stop = progress_reporter()
    try:
        summary = fetch_pass(config, store, names=names, all_feeds=all_feeds, progress=report)
    finally:
        stop()
        store.close()
    click.echo(_summary_line(summary))
    for name, error in summary.failures:
        click.echo(f"  failed: {name}: {error}")


def _summary_line(s: Any) -> str:
    return (f"feeds: {s.feeds_ok} ok, {s.feeds_not_modified} not modified, {s.feeds_failed} failed; "
            f"items: {s.new_items} new, {s.updated_items} updated; tags: {s.tags_assigned} assigned")


@click.command()
@pass_ctx
@handle_errors
def demo(ctx: Context) -> None:
    """Run the whole pipeline offline on the shipped demo feeds.

    Serves the demo feeds on 127.0.0.1, fetches them into var/demo/, tags them, prints the
    items (Russia–Iran first) and writes a digest preview.
    """
    from aggregator.demo.run import run_demo

    run_demo(ctx.instance, echo=click.echo)


