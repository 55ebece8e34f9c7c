"""db migrate: move an instance from SQLite to PostgreSQL."""

from __future__ import annotations

import click

from aggregator.commands.common import Context, handle_errors, pass_ctx, progress_reporter


@click.group()
def db() -> None:
    """The database: move it to PostgreSQL."""


@db.command()
@click.option("--to", "to_url", required=True, metavar="postgresql://USER@HOST/DB",
              help="The PostgreSQL database to copy into; it must be empty.")
@click.option("--from", "from_url", metavar="sqlite:///PATH",
              help="The SQLite database to copy. Default: this instance's.")
@click.option("--batch", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Rows read and written at a time.")
@pass_ctx
@handle_errors
def migrate(ctx: Context, to_url: str, from_url: str | None, batch: int) -> None:
    """Copy this SQLite database into an empty PostgreSQL one.

    Feeds with their fetch state, items and their sources, tags, labels, fetch attempts,
    the digest ledger and runs, and settings kept in the database are copied with their
    ids, in one transaction, and the row counts checked: on any failure the target is
    left empty. The SQLite file is only read. Then point the instance at PostgreSQL
    ([database] url in config/aggregator.toml, or AGGREGATOR_DATABASE_URL) and start the
    daemons.
    """
    from aggregator.service import migrate_to_postgres
    from aggregator.store import display_url

    report, stop = progress_reporter()
    try:
        path, copied = migrate_to_postgres(ctx.instance, to_url, from_url, batch=batch,
                                           progress=report)
    finally:
        stop()
    width = max(len(c.table) for c in copied)
    for c in copied:
        click.echo(f"{c.table:<{width}}  {c.rows:>9} rows")
    click.echo(f"copied {path} into {display_url(to_url)}: counts match. Next: set [database] url "
               "(or AGGREGATOR_DATABASE_URL) to it, then start the daemons.")
