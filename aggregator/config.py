"""The three config files as validated values, with environment overrides.

Every problem becomes one ``ConfigError`` naming the file, the key, what was expected and
what was found. Any setting ``[section] key`` can be overridden by the environment variable
``AGGREGATOR_<SECTION>_<KEY>``; secrets (the SMTP password) come only from the environment.

The values are named tuples (cheaper to define than dataclasses, and as immutable); the
schema that validates them is pydantic, in ``aggregator.config_schema``, imported only when
needed. ``load_config`` validates once per
change: it keeps the validated values in ``var/.config-cache.json`` under a digest of the
three files' bytes and the overriding variables, so a cron ``fetch`` with an unchanged
config reads them back in about a millisecond instead of importing pydantic (~60 ms) and
validating (~70 ms more). Any change, to a byte of a file or to a variable, validates anew,
so a bad config is always reported.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aggregator.config_types import (  # noqa: F401  (re-exported: the settings' types)
    NAME_PATTERN,
    SECTIONS,
    ClassifierSettings,
    DaemonSettings,
    DatabaseSettings,
    DigestSubscription,
    FetchSection,
    RetentionSettings,
    Settings,
    SmtpSettings,
)
from aggregator.errors import ConfigError
from aggregator.instance import Instance, read_toml
from aggregator.views import FeedConfig

CACHE_FILE = ".config-cache.json"
# Bump when the cached form changes (what _dump writes, or a field's meaning).
CACHE_FORMAT = 1


def settings_from(data: dict[str, Any]) -> Settings:
    """Settings from a mapping shaped like config/aggregator.toml (ConfigError if bad)."""
    from aggregator.config_schema import validate_settings

    return validate_settings(data)


@dataclass(frozen=True)
class Config:
    """Everything an instance is configured with."""

    instance: Instance
    settings: Settings
    feeds: tuple[FeedConfig, ...]
    taxonomy: Any  # classifiers.taxonomy.Taxonomy

    @property
    def database_url(self) -> str:
        return self.instance.absolute_database_url(self.settings.database.url)


def _env_overrides(data: dict[str, Any]) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    """Apply AGGREGATOR_<SECTION>_<KEY> variables; remember which keys came from where."""
    origin: dict[tuple[str, str], str] = {}
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for section, var, name in _override_names():
        if var in os.environ:
            raw = os.environ[var]
            value: Any = raw
            if raw[:1] in "[{":
                with contextlib.suppress(ValueError):
                    value = json.loads(raw)
            target = merged.setdefault(section, {})
            if isinstance(target, dict):
                target[name] = value
                origin[(section, name)] = var
    return merged, origin


_ALIASES = {"from_": "from"}  # keys that are Python keywords


def _override_names() -> list[tuple[str, str, str]]:
    """(section, variable, key) of every overridable setting; [[digest]] lists are not."""
    out = []
    for section, cls in SECTIONS.items():
        for key in cls._fields:  # type: ignore[attr-defined]
            name = _ALIASES.get(key, key)
            out.append((section, f"AGGREGATOR_{section}_{name}".upper(), name))
    return out


def load_settings(instance: Instance) -> Settings:
    from aggregator.config_schema import validate_settings

    shown = instance.display(instance.settings_file)
    data, origin = _env_overrides(read_toml(instance.settings_file, instance))
    return validate_settings(data, shown, origin)


def load_feeds(instance: Instance, known_tags: set[str] | None = None) -> tuple[FeedConfig, ...]:
    from aggregator.config_schema import validate_feeds

    path = instance.feeds_file
    shown = instance.display(path)
    parsed = validate_feeds(read_toml(path, instance), shown)
    seen: dict[str, int] = {}
    for i, f in enumerate(parsed):
        if f.name in seen:
            raise ConfigError(shown, f"feed[{i}].name",
                              f"a unique feed name (already used by feed[{seen[f.name]}])",
                              repr(f.name))
        seen[f.name] = i
        if known_tags is not None:
            for tag in f.tags:
                if tag not in known_tags:
                    raise ConfigError(shown, f"feed[{i}] ({f.name}).tags",
                                      "tags from config/taxonomy.toml", repr(tag))
    return tuple(parsed)


def load_taxonomy(instance: Instance) -> Any:
    from classifiers.taxonomy import TaxonomyError
    from classifiers.taxonomy import load_taxonomy as _load

    path = instance.taxonomy_file
    try:
        return _load(path)
    except FileNotFoundError:
        read_toml(path, instance)  # raises the uniform missing-file error
        raise
    except TaxonomyError as e:
        raise ConfigError(instance.display(path), e.key, e.expected, e.found) from None


def load_config(instance: Instance) -> Config:
    key = _cache_key(instance)
    cached = _read_cache(instance, key) if key else None
    if cached is not None:
        settings, feeds = cached
        return Config(instance, settings, feeds, load_taxonomy(instance))
    config = validate_config(instance)
    if key:
        _write_cache(instance, key, config)
    return config


def validate_config(instance: Instance) -> Config:
    """The config validated in full, bypassing the cache."""
    settings = load_settings(instance)
    taxonomy = load_taxonomy(instance)
    known = {t.name for t in taxonomy.tags}
    feeds = load_feeds(instance, known)
    for i, sub in enumerate(settings.digest):
        for tag in sub.tags:
            if tag not in known:
                raise ConfigError(instance.display(instance.settings_file),
                                  f"digest[{i}] ({sub.name}).tags",
                                  "tags from config/taxonomy.toml", repr(tag))
    return Config(instance, settings, feeds, taxonomy)


# -- the validated config, kept between runs --------------------------------------------


def _cache_key(instance: Instance) -> str | None:
    """A digest of everything the validated values depend on; None if a file is unreadable
    (then validation reports it)."""
    import hashlib

    h = hashlib.blake2b(digest_size=20)
    h.update(f"{CACHE_FORMAT}\0".encode())
    # The schema's own code: an upgrade that changes a rule or a default validates anew.
    here = Path(__file__).resolve().parent
    for code in (here / "config.py", here / "config_types.py", here / "config_schema.py"):
        try:
            st = code.stat()
        except OSError:
            return None
        h.update(f"{st.st_mtime_ns} {st.st_size}\0".encode())
    for path in (instance.settings_file, instance.feeds_file, instance.taxonomy_file):
        try:
            h.update(path.read_bytes())
        except OSError:
            return None
        h.update(b"\0file\0")
    for _, var, _ in _override_names():
        if var in os.environ:
            h.update(f"{var}={os.environ[var]}\0".encode())
    return h.hexdigest()


def _dump(value: Any) -> Any:
    if isinstance(value, timedelta):
        return {"s": value.total_seconds()}
    if hasattr(value, "_fields"):
        return {name: _dump(v) for name, v in zip(value._fields, value, strict=True)}
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return timedelta(seconds=value["s"])
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def _build(cls: type, data: dict[str, Any]) -> Any:
    return cls(**{k: _plain(v) for k, v in data.items()})


def _read_cache(instance: Instance, key: str) -> tuple[Settings, tuple[FeedConfig, ...]] | None:
    try:
        with open(instance.var_dir / CACHE_FILE, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("key") != key:
            return None
        s = data["settings"]
        settings = Settings(
            **{name: _build(cls, s[name]) for name, cls in SECTIONS.items()},
            digest=tuple(_build(DigestSubscription, d) for d in s["digest"]))
        feeds = tuple(FeedConfig(name, url, tuple(tags),
                                 None if every is None else timedelta(seconds=every))
                      for name, url, tags, every in data["feeds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, stale or unreadable: validate
    return settings, feeds


def _write_cache(instance: Instance, key: str, config: Config) -> None:
    data = {"key": key, "settings": _dump(config.settings),
            "feeds": [[f.name, f.url, list(f.tags),
                       f.interval.total_seconds() if f.interval is not None else None]
                      for f in config.feeds]}
    path = instance.var_dir / CACHE_FILE
    tmp = path.with_name(f"{CACHE_FILE}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only instance: validate every time
        with contextlib.suppress(OSError):
            tmp.unlink()


def init_instance(target: Path, source: Path | None = None) -> list[Path]:
    """Create an instance: config/ with the commented default files, and var/."""
    import shutil

    source = source or Path(__file__).resolve().parent.parent / "config"
    written = []
    (target / "var").mkdir(parents=True, exist_ok=True)
    (target / "config").mkdir(parents=True, exist_ok=True)
    for name in ("aggregator.toml", "feeds.toml", "taxonomy.toml"):
        dest = target / "config" / name
        if dest.exists():
            continue
        shutil.copyfile(source / name, dest)
        written.append(dest)
    return written
