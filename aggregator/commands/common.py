"""What the click commands share: the context decorator and the progress bar.

Here rather than in ``cli.py`` so that the commands never import the entry point that
loads them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from aggregator.cmdline import Context, handle_errors

__all__ = ["Context", "handle_errors", "pass_ctx", "progress_reporter"]

pass_ctx = click.make_pass_decorator(Context)


def progress_reporter() -> tuple[Callable[[str, int, int], None] | None, Callable[[], None]]:
    """A progress bar on a terminal (stderr), nothing when piped."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        console=Console(stderr=True), transient=True)
    tasks: dict[str, Any] = {}
    progress.start()

    def report(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = progress.add_task(what, total=total or None)
        progress.update(tasks[what], completed=done, total=total or None)

    return report, progress.stop
