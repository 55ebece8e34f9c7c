"""digest preview | send: the subscriptions in [[digest]] of config/aggregator.toml."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aggregator.commands.common import Context, handle_errors, pass_ctx


@click.group()
def digest() -> None:
    """Email digests: preview them, send the ones due."""


@digest.command()
@click.argument("name", required=False)
@click.option("--since", metavar="WHEN",
              help="Everything first seen since then (2026-11-20, 24h, 7d), delivered or not. "
                   "Default: what the next digest holds so far.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.html",
              help="Write here (and FILE.txt). Default: var/digest-preview/NAME.html.")
@pass_ctx
@handle_errors
def preview(ctx: Context, name: str | None, since: str | None, out: Path | None) -> None:
    """Write a digest as HTML and text; send nothing.

    NAME: one subscription (default: every one).
    """
    from aggregator.digest.deliver import preview_digest
    from aggregator.errors import UsageError
    from aggregator.timeutil import parse_when, utcnow

    now = utcnow()
    try:
        since_dt = parse_when(since, now) if since else None
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None
    config = ctx.config()
    store = ctx.store(config.database_url)
    try:
        paths = preview_digest(config, store, name, since_dt, out, now)
    finally:
        store.close()
    for path in paths:
        click.echo(f"wrote {path}")


@digest.command()
@click.argument("name", required=False)
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send and record nothing.")
@pass_ctx
@handle_errors
def send(ctx: Context, name: str | None, dry_run: bool) -> None:
    """Send the digests that are due now (NAME: only that one). Exit 1 if any failed.

    Each item goes to each recipient once, ever: run it as often as you like (cron every
    few minutes is fine); what is not due or already sent is left alone.
    """
    from aggregator.digest.deliver import send_digests
    from aggregator.digest.render import format_date
    from aggregator.timeutil import utcnow

    config = ctx.config()
    zones = {s.name: s.timezone for s in config.settings.digest}
    store = ctx.store(config.database_url)
    try:
        outcomes = send_digests(config, store, [name] if name else [], dry_run, now=utcnow())
    finally:
        store.close()
    for o in outcomes:
        zone = zones.get(o.subscription, "UTC")
        span = (f" ({format_date(o.period.start, zone)} – {format_date(o.period.end, zone)})"
                if o.period else "")
        if o.status in ("sent", "dry-run"):
            verb = "sent" if o.status == "sent" else "would send"
            click.echo(f"{o.subscription}: {verb} {o.items} item{'' if o.items == 1 else 's'} "
                       f"to {', '.join(o.recipients) or 'nobody'}{span}")
        elif o.status == "empty":
            click.echo(f"{o.subscription}: nothing new{span}, no mail (skip_empty)")
        elif o.status == "not-due":
            when = format_date(o.next_run, zone) if o.next_run else "never (no days)"
            click.echo(f"{o.subscription}: not due; next {when}")
        elif o.status == "busy":
            click.echo(f"{o.subscription}: skipped{span}: {o.detail}")
        else:
            click.echo(f"{o.subscription}: FAILED{span}: {o.detail}", err=True)
    if any(o.status == "failed" for o in outcomes):
        sys.exit(1)
