"""The command line: parse arguments, call one service function, print.

Heavy modules are imported inside the commands that need them: a piped ``query`` pays for
sqlite3 and json, not for pydantic, httpx, feedparser or scikit-learn, and a plain one not
even for click (the console script is aggregator.launch:main, which comes here otherwise).
"""

from __future__ import annotations

from typing import Any

import click

# Defined click-free in cmdline.py (launch.py runs query, show and tags without click); kept
# importable from here.
from aggregator.cmdline import Context, _fail, handle_errors
from aggregator.commands.common import pass_ctx, progress_reporter

__all__ = ["COMMANDS", "Context", "_fail", "cli", "handle_errors", "main", "pass_ctx",
           "progress_reporter"]

class LazyGroup(click.Group):
    """Commands are imported only when run, so each pays only for its own imports."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module, attr = self.lazy[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand:
            # click suggests from the commands it has loaded, and these are loaded lazily.
            raise click.exceptions.NoSuchCommand(
                args[0], possibilities=self.list_commands(ctx), ctx=ctx) from None


COMMANDS = {
    "init": "aggregator.commands.core:init",
    "fetch": "aggregator.commands.core:fetch",
    "demo": "aggregator.commands.core:demo",
    "query": "aggregator.commands.query:query",
    "feeds": "aggregator.commands.feeds:feeds",
    "digest": "aggregator.commands.digest:digest",
    "show": "aggregator.commands.query:show",
    "tags": "aggregator.commands.query:tags",
    "train": "aggregator.commands.models:train",
    "evaluate": "aggregator.commands.models:evaluate",
    "classify": "aggregator.commands.models:classify",
    "label": "aggregator.commands.models:label",
    "reclassify": "aggregator.commands.models:reclassify",
    "models": "aggregator.commands.models:models",
    "daemon": "aggregator.commands.daemon:daemon",
    "status": "aggregator.commands.daemon:status",
    "db": "aggregator.commands.db:db",
}


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", type=click.Path(file_okay=False), envvar="AGGREGATOR_HOME",
              help="Instance directory (holds config/ and var/). Default: $AGGREGATOR_HOME, "
                   "else the current directory.")
@click.version_option(package_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """A geopolitical news aggregator: fetch feeds, tag items with a trained model, query them."""
    ctx.obj = Context(home)


def main() -> None:
    cli(prog_name="aggregator")
