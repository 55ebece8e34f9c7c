"""What every command shares, click or not: the context, error handling, options defined once.

Below both entry points (``launch`` without click, ``cli`` with it) and the command modules,
so that none of them imports another's entry point.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import wraps

from aggregator.errors import AggregatorError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a read command ~5 ms of its start
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    import click  # only on the way out: the fast path must not pay for it

    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Errors a user can act on: one line on stderr and the error's exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AggregatorError as e:
            _fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


class Context:
    """What every command gets: the --home option, and the instance, config and store."""

    def __init__(self, home: str | None) -> None:
        self.home_option = home

    @property
    def instance(self):
        from aggregator.instance import Instance

        return Instance.locate(self.home_option)

    def config(self):
        from aggregator.config import load_config

        return load_config(self.instance)

    def store(self, url: str | None = None):
        from aggregator.store import open_store

        return open_store(url or self.instance.database_url())


class Param:
    """One option or argument of a command, defined once for click and for ``parse``.

    ``decls`` as click takes them: ``("--tag", "tags")`` is the option --tag stored as
    ``tags``; ``("saved",)`` is an argument. ``kind`` is str, int, float, choice or flag
    (an option without a value: False unless given); ``low``/``high`` make int and float a
    click IntRange/FloatRange.
    """

    __slots__ = ("choices", "decls", "default", "dest", "flag", "help", "high", "kind",
                 "low", "metavar", "multiple", "required", "show_default")

    def __init__(self, *decls: str, kind: str = "str", multiple: bool = False,
                 choices: Sequence[str] = (), low: float | None = None,
                 high: float | None = None, default: Any = None, required: bool | None = None,
                 metavar: str | None = None, help: str | None = None,
                 show_default: bool = False) -> None:
        self.decls = decls
        self.flag = decls[0] if decls[0].startswith("--") else None
        names = [d for d in decls if not d.startswith("-")]
        self.dest = names[0] if names else decls[0].lstrip("-").replace("-", "_")
        self.kind, self.multiple, self.choices = kind, multiple, tuple(choices)
        self.low, self.high = low, high
        self.default = False if kind == "flag" else default
        # click's defaults: arguments are required, options are not.
        self.required = (self.flag is None) if required is None else required
        self.metavar, self.help, self.show_default = metavar, help, show_default

    def click_decorator(self) -> Callable[[F], F]:
        import click

        kind: Any = {"str": None, "int": int, "float": float}.get(self.kind)
        if self.kind == "choice":
            kind = click.Choice(self.choices)
        elif self.kind == "int" and (self.low is not None or self.high is not None):
            kind = click.IntRange(self.low, self.high)  # type: ignore[arg-type]
        elif self.kind == "float" and (self.low is not None or self.high is not None):
            kind = click.FloatRange(self.low, self.high)
        extra: dict[str, Any] = {"type": kind} if kind is not None else {}
        if self.metavar is not None:
            extra["metavar"] = self.metavar
        if self.flag is None:
            return click.argument(*self.decls, required=self.required, **extra)
        if self.kind == "flag":
            return click.option(*self.decls, is_flag=True, help=self.help)
        if self.default is not None:
            extra["default"] = self.default
        return click.option(*self.decls, multiple=self.multiple, help=self.help,
                            show_default=self.show_default, **extra)

    def convert(self, text: str) -> Any:
        """The value click would pass, or ``_DOUBT`` when click might see it otherwise."""
        try:
            if self.kind == "int":
                value: Any = int(text)  # what click's INT and IntRange do
            elif self.kind == "float":
                value = float(text)
            elif self.kind == "choice":
                return text if text in self.choices else _DOUBT
            else:
                return text
        except ValueError:
            return _DOUBT
        # Written so that NaN, which click lets through, doubts rather than passes.
        if not ((self.low is None or value >= self.low) and (self.high is None or value <= self.high)):
            return _DOUBT
        return value


_DOUBT = object()


def parse(args: Sequence[str], params: Sequence[Param]) -> dict[str, Any] | None:
    """The values click would pass the command for ``args``; None when in any doubt."""
    options = {p.flag: p for p in params if p.flag}
    arguments = [p for p in params if p.flag is None]
    values: dict[str, Any] = {p.dest: () if p.multiple else p.default for p in params}
    given: set[str] = set()
    positional: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if not token.startswith("-"):
            positional.append(token)
            continue
        name, eq, text = token.partition("=")
        param = options.get(name)
        if param is None:  # -h, --help, --, -, short or unknown options: click's business
            return None
        if param.kind == "flag":
            if eq:  # click refuses a value for a flag
                return None
            values[param.dest] = True
            given.add(param.dest)
            continue
        if not eq:
            if i == len(args):
                return None
            text = args[i]
            i += 1
        # click would take '--tag --limit' as the tag '--limit'; a slip more likely than meant.
        if text.startswith("-"):
            return None
        value = param.convert(text)
        if value is _DOUBT:
            return None
        if param.multiple:
            values[param.dest] += (value,)
        elif param.dest in given:  # click keeps the last; rare enough to leave to it
            return None
        else:
            values[param.dest] = value
        given.add(param.dest)
    if len(positional) > len(arguments):
        return None
    for param, text in zip(arguments, positional, strict=False):
        value = param.convert(text)
        if value is _DOUBT:
            return None
        values[param.dest] = value
    if any(p.required for p in arguments[len(positional):]):
        return None
    return values
