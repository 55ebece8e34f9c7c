"""init, fetch and demo."""

from __future__ import annotations

from pathlib import Path

import click

from aggregator.commands.common import Context, handle_errors, pass_ctx


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@handle_errors
def init(directory: str) -> None:
    """Create a new instance with commented default config files."""
    from aggregator.config import init_instance
    from aggregator.errors import UsageError

    if not directory.strip():
        raise UsageError("init: give the directory to create, e.g. 'aggregator init ~/desk'")
    try:
        written = init_instance(Path(directory).expanduser())
    except OSError as e:  # /proc/x, a path under a plain file, no permission, a full disk
        where = e.filename or directory
        raise UsageError(f"cannot create the instance {directory}: {where}: "
                         f"{e.strerror or e}") from None
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"instance ready: aggregator --home {directory} fetch")


def _fetch_command() -> click.Command:
    from aggregator.commands.fetching import FETCH, run_fetch

    fn = pass_ctx(handle_errors(run_fetch))
    for param in reversed(FETCH):  # click lists them in decorator order, top down
        fn = param.click_decorator()(fn)
    return click.command("fetch")(fn)


# The body and options live in commands/fetching.py, which aggregator.launch runs without
# click for a plain command line.
fetch = _fetch_command()


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


