"""query, show and tags as click commands: the bodies and options of commands/reading.py.

Their options are defined once, as ``Param`` lists in reading.py, so that a plain command
line can run without click (see aggregator/launch.py); this module is what runs for help,
for command-line errors and for anything else the fast path leaves to click.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from aggregator.cmdline import Param
from aggregator.commands import reading
from aggregator.commands.common import handle_errors, pass_ctx

FORMATS = reading.FORMATS
FIELDS = reading.FIELDS


def _command(name: str, body: Callable[..., Any], params: Sequence[Param]) -> click.Command:
    fn = pass_ctx(handle_errors(body))
    # click lists parameters in the order their decorators are written, top down.
    for param in reversed(params):
        fn = param.click_decorator()(fn)
    return click.command(name)(fn)


query = _command("query", reading.run_query, reading.QUERY)
# A flag, which launch.Param does not model: the fast path leaves a command line with
# --story to click (an unknown option there). Not passed as a keyword, so both paths call
# run_query alike; the value waits in the click context (reading.story_requested).
query.params.append(click.Option(
    ["--story"], is_flag=True, default=False, expose_value=False, is_eager=True,
    callback=lambda ctx, _param, value: ctx.meta.__setitem__("story", value),
    help="One row per story (near-identical items from several feeds) with its sources and "
         "the feed that published first; JSON gains a 'story' field."))
show = _command("show", reading.run_show, reading.SHOW)
tags = _command("tags", reading.run_tags, reading.TAGS)
