"""Saved queries in config/queries.toml: one table per name, keys as the query options.

Relative times ('7d') are kept as written, so a saved query always means "the last week".
"""

from __future__ import annotations

from aggregator.errors import ConfigError, UsageError
from aggregator.instance import Instance, read_toml

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KEYS = {"tags": list, "any_tags": list, "not_tags": list, "min_score": float, "sources": list,
        "feeds": list, "since": str, "until": str, "search": str, "limit": int, "sort": str}


def load_all(instance: Instance) -> dict[str, dict[str, Any]]:
    if not instance.queries_file.exists():
        return {}
    data = read_toml(instance.queries_file, instance)
    shown = instance.display(instance.queries_file)
    for name, options in data.items():
        if not isinstance(options, dict):
            raise ConfigError(shown, name, "a table of query options", repr(options))
        for key, value in options.items():
            kind = KEYS.get(key)
            if kind is None:
                raise ConfigError(shown, f"{name}.{key}", f"one of {', '.join(KEYS)}",
                                  f"unknown key '{key}'")
            if not isinstance(value, kind) and not (kind is float and isinstance(value, int)):
                raise ConfigError(shown, f"{name}.{key}", f"a {kind.__name__}", repr(value))
    return data


def load(instance: Instance, name: str) -> dict[str, Any]:
    queries = load_all(instance)
    if name not in queries:
        from aggregator.errors import suggest

        raise UsageError(f"no saved query {name!r}{suggest(name, list(queries))} "
                         f"(save one with 'aggregator query --save {name} ...')")
    return dict(queries[name])


def save(instance: Instance, name: str, options: dict[str, Any]) -> None:
    import re

    import tomlkit

    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise UsageError(f"--save: a name of lowercase letters, digits, '-' and '_', not {name!r}")
    path = instance.queries_file
    if path.exists():
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    else:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("Saved queries: 'aggregator query NAME' runs one; a digest "
                                "subscription can name one with query = \"NAME\"."))
    table = tomlkit.table()
    for key, value in options.items():
        table[key] = list(value) if isinstance(value, tuple) else value
    doc[name] = table
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
