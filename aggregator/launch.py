"""The console script: the read commands run in shell loops start without click.

``aggregator query --tag T`` is typed dozens of times a day and run in loops, and importing
click costs about as much as the whole query. So ``main`` first tries to read the command
line itself, for the commands registered in ``FAST`` (query, show, tags, feeds list) and
only for plain forms: ``--home`` before the command, then that command's long options as ``--opt value``
or ``--opt=value`` and its arguments. The options are the ``Param`` lists the commands
define once; ``aggregator.commands.query`` builds its click parameters from the same lists,
so the two can never disagree on a name, type, range or default.

Anything else (help, ``--version``, short options, ``--``, an unknown option, a missing or
doubtful value, a value click would reject, shell completion) goes to the click CLI, which
then behaves and fails exactly as it always has: this path never reports a parse error of
its own. Errors raised by the commands go through the same ``handle_errors`` either way.

Kept free of heavy imports: click is imported only to report an error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

# parse and Param are the fast path's; they live in cmdline so the commands can share them
# without importing the entry point.
from aggregator.cmdline import Context, Param, handle_errors, parse  # noqa: F401

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a read command ~5 ms of its start
    from typing import Any

# command -> "module:attribute" of its click-free body and "module:attribute" of its Param
# list; the body is called as body(ctx, **values) with the values click would pass.
FAST = {
    "query": ("aggregator.commands.reading:run_query", "aggregator.commands.reading:QUERY"),
    "show": ("aggregator.commands.reading:run_show", "aggregator.commands.reading:SHOW"),
    "tags": ("aggregator.commands.reading:run_tags", "aggregator.commands.reading:TAGS"),
    # A cron job's command: a pass with nothing due should not pay ~30 ms for click.
    "fetch": ("aggregator.commands.fetching:run_fetch", "aggregator.commands.fetching:FETCH"),
    # A group's subcommand, keyed by both words: the group takes no options of its own.
    "feeds list": ("aggregator.commands.reading:run_feeds_list",
                   "aggregator.commands.reading:FEEDS_LIST"),
}


def _resolve(ref: str) -> Any:
    module, attr = ref.split(":")
    # __import__, not importlib.import_module: importing importlib costs the command ~0.5 ms.
    return getattr(__import__(module, fromlist=[attr]), attr)


def _plain(argv: Sequence[str]) -> tuple[Callable[..., Any], str | None, dict[str, Any]] | None:
    """(body, --home, values) for a plain command line of a FAST command, else None."""
    if os.environ.get("_AGGREGATOR_COMPLETE"):  # click's shell completion
        return None
    home = None
    i = 0
    while i < len(argv) and argv[i].startswith("--home"):
        name, eq, text = argv[i].partition("=")
        if name != "--home" or home is not None:
            return None
        if not eq:
            if i + 1 == len(argv):
                return None
            i += 1
            text = argv[i]
        if text.startswith("-"):
            return None
        home = text
        i += 1
    if i == len(argv):
        return None
    command = argv[i]
    if command not in FAST and i + 1 < len(argv) and f"{command} {argv[i + 1]}" in FAST:
        command = f"{command} {argv[i + 1]}"
        i += 1
    if command not in FAST:
        return None
    # click.Path(file_okay=False) rejects a regular file, from the option or the variable.
    checked = home if home is not None else os.environ.get("AGGREGATOR_HOME")
    if checked and os.path.isfile(checked):
        return None
    body_ref, params_ref = FAST[command]
    values = parse(argv[i + 1:], _resolve(params_ref))
    if values is None:
        return None
    return _resolve(body_ref), home, values


def main() -> None:
    plain = _plain(sys.argv[1:])
    if plain is None:
        from aggregator.cli import main as click_main

        click_main()
        return
    body, home, values = plain
    try:
        handle_errors(body)(Context(home), **values)
    except BrokenPipeError:
        # As click does: the reader went away (``| head``); quiet, and exit 1.
        from click.utils import _PacifyFlushWrapper

        sys.stdout = _PacifyFlushWrapper(sys.stdout)
        sys.stderr = _PacifyFlushWrapper(sys.stderr)
        sys.exit(1)
    sys.exit(0)
