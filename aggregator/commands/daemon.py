"""daemon and status."""

from __future__ import annotations

import json
import sys

import click

from aggregator.commands.common import Context, handle_errors, pass_ctx


@click.command()
@click.option("--log-format", type=click.Choice(["auto", "text", "json"]), default="auto",
              show_default=True, help="auto: text on a terminal, JSON lines otherwise.")
@pass_ctx
@handle_errors
def daemon(ctx: Context, log_format: str) -> None:
    """Run continuously: fetch, tag, send digests on time.

    SIGTERM stops it cleanly; SIGHUP reloads config/.
    """
    from aggregator import logs
    from aggregator.daemon import Daemon

    instance = ctx.instance
    logs.setup(instance.var_dir / "log", log_format)
    sys.exit(Daemon(instance).run())


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]),
              help="Default: text on a terminal, json when piped.")
@pass_ctx
@handle_errors
def status(ctx: Context, fmt: str | None) -> None:
    """Daemon, feeds, items and tags today, model, next digests."""
    from aggregator.service import status as run
    from aggregator.timeutil import utcnow

    config = ctx.config()
    store = ctx.store(config.database_url)
    try:
        report = run(config, store, utcnow())
    finally:
        store.close()
    fmt = fmt or ("text" if sys.stdout.isatty() else "json")
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    d = report["daemon"]
    if d["running"] and "pid" in d:
        hours, rest = divmod(d["uptime_s"], 3600)
        click.echo(f"daemon:   running, PID {d['pid']}, up {hours}h{rest // 60:02d}m")
    elif d["running"]:
        click.echo(f"daemons:  {len(d['daemons'])} running: "
                   + ", ".join(f"{x['owner']} (since {x['started']})" for x in d["daemons"]))
    else:
        click.echo("daemon:   not running")
    click.echo(f"last pass: {d.get('last_pass') or 'never'}")
    f = report["feeds"]
    click.echo(f"feeds:    {f['active']} active, {f['due']} due, {f['failing']} failing, "
               f"{f['disabled']} disabled")
    i = report["items"]
    click.echo(f"items:    {i['today']} today, {i['total']} in all")
    tags = report["tags_today"]
    if tags:
        click.echo("tags today: " + ", ".join(f"{t} {n}" for t, n in list(tags.items())[:12]))
    m = report["model"]
    if m.get("version"):
        micro, macro = m.get("cv_micro_f1"), m.get("cv_macro_f1")
        scores = f" (cross-validated micro F1 {micro:.3f}, macro F1 {macro:.3f})" \
            if micro is not None and macro is not None else ""
        click.echo(f"model:    {m['version']}{scores}")
    else:
        click.echo(f"model:    none{(': ' + m['error']) if m.get('error') else ''}")
    for name, dg in report["digests"].items():
        click.echo(f"digest {name}: next {dg['next']}, last sent up to "
                   f"{dg['last_sent_period_end'] or 'never'}")
