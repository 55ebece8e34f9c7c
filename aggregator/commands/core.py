"""init, fetch and demo."""

from __future__ import annotations

from pathlib import Path

import click

from aggregator.cli import Context, handle_errors, pass_ctx


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


