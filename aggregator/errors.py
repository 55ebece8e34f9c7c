"""Errors a user can act on: one type each, with a message that says what to do.

The CLI prints ``str(error)`` on one line and exits with ``exit_code``; nothing here
should ever reach a user as a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


def suggest(name: str, choices: Sequence[str]) -> str:
    """The closest known name, for a message about an unknown one: " (did you mean 'x'?)"."""
    import difflib

    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class AggregatorError(Exception):
    """Base class: an error with a one-line, actionable message."""

    exit_code = 1


class ConfigError(AggregatorError):
    """A config file (or environment override) is missing, malformed or holds a bad value."""

    exit_code = 2

    def __init__(self, file: str, key: str, expected: str, found: str) -> None:
        self.file, self.key, self.expected, self.found = file, key, expected, found
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: expected {expected}, found {found}")


class UsageError(AggregatorError):
    """A command was asked for something that cannot be: unknown tag or feed, bad date."""

    exit_code = 2


class StoreError(AggregatorError):
    """The database cannot be opened or used (locked, full, unreachable)."""

    exit_code = 1


class ModelError(AggregatorError):
    """No usable classifier model (missing, corrupt, or incompatible)."""

    exit_code = 1


class DeliveryError(AggregatorError):
    """A digest could not be delivered; nothing was recorded as sent."""

    exit_code = 1
