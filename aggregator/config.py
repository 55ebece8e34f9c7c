"""The three config files as validated values, with environment overrides.

Every problem becomes one ``ConfigError`` naming the file, the key, what was expected and
what was found. Any setting ``[section] key`` can be overridden by the environment variable
``AGGREGATOR_<SECTION>_<KEY>``; secrets (the SMTP password) come only from the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from aggregator.errors import ConfigError
from aggregator.instance import DEFAULT_DATABASE_URL, Instance, read_toml
from aggregator.timeutil import parse_duration
from aggregator.views import FeedConfig


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected a duration like '30m', '2h' or '7d', found {value!r}")


def _size(value: Any) -> Any:
    """Byte sizes as an integer or '15MiB', '512KiB', '2GB'."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*", value)
        if m:
            mult = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6,
                    "MiB": 1024**2, "GB": 10**9, "GiB": 1024**3}[m.group(2)]
            return int(float(m.group(1)) * mult)
    raise ValueError(f"expected a size like 15728640 or '15MiB', found {value!r}")


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Size = Annotated[int, BeforeValidator(_size)]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = DEFAULT_DATABASE_URL
    # SQLite: how long a write waits for another writer's lock before the write fails.
    busy_timeout: Duration = timedelta(seconds=30)


class FetchSection(_Section):
    interval: Duration = timedelta(hours=1)
    min_interval: Duration = timedelta(minutes=5)
    max_interval: Duration = timedelta(hours=24)
    full_fetch_every: Duration = timedelta(hours=12)
    disable_after: Duration = timedelta(days=30)
    max_redirects: int = Field(5, ge=0, le=20)
    redirect_confirmations: int = Field(3, ge=1)
    concurrency: int = Field(50, ge=1)
    per_host: int = Field(2, ge=1)
    connections_per_client: int = Field(10, ge=1)
    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=30)
    total_timeout: Duration = timedelta(seconds=60)
    max_body_size: Size = 15 * 1024 * 1024
    # CPU one feed's document may take to parse and normalize per pass (see the shipped file).
    parse_cpu_budget: Duration = timedelta(seconds=5)
    transport: Literal["aiohttp", "httpcore"] = "aiohttp"
    user_agent: str = "aggregator/0.1 (+https://github.com/aggregator-project/aggregator)"
    jitter: float = Field(0.1, ge=0, le=0.5)
    attempts_kept: int = Field(100, ge=1)

    def to_settings(self) -> Any:
        from aggregator.fetch.settings import FetchSettings

        return FetchSettings(
            interval=self.interval, min_interval=self.min_interval,
            max_interval=self.max_interval, full_fetch_every=self.full_fetch_every,
            disable_after=self.disable_after, max_redirects=self.max_redirects,
            redirect_confirmations=self.redirect_confirmations, concurrency=self.concurrency,
            per_host=self.per_host, connections_per_client=self.connections_per_client,
            connect_timeout=self.connect_timeout.total_seconds(),
            read_timeout=self.read_timeout.total_seconds(),
            total_timeout=self.total_timeout.total_seconds(),
            max_body_bytes=self.max_body_size, transport=self.transport, user_agent=self.user_agent,
            jitter=self.jitter, attempts_kept=self.attempts_kept,
        )


class ClassifierSettings(_Section):
    models_dir: str = "var/models"
    batch_size: int = Field(300, ge=1)
    extra_data: list[str] = []
    use_starter: bool = True
    use_labels: bool = True


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    from_: str = Field("aggregator@localhost", alias="from")
    password_env: str = "AGGREGATOR_SMTP_PASSWORD"
    timeout: Duration = timedelta(seconds=30)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def password(self) -> str | None:
        return os.environ.get(self.password_env) or None


class DigestSubscription(_Section):
    name: str = Field(pattern=NAME_PATTERN)
    to: list[str] = Field(min_length=1)
    tags: list[str] = []
    query: str | None = None
    min_score: float = Field(0.5, ge=0, le=1)
    at: str = Field("07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = [
        "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    max_items: int = Field(100, ge=1)
    skip_empty: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected an IANA time zone like 'Europe/Berlin', found {value!r}") from None
        return value


class DaemonSettings(_Section):
    poll_interval: Duration = timedelta(seconds=10)
    stop_timeout: Duration = timedelta(seconds=10)
    digest_grace: Duration = timedelta(hours=12)
    retrain_every: Duration = timedelta(days=1)
    batch_size: int = Field(200, ge=1)
    # Feeds claimed at a time, refilled as each claim is stored: daemons sharing a
    # database split the due feeds evenly, and a slow or dead one holds few.
    claim_size: int = Field(10, ge=1)


class RetentionSettings(_Section):
    keep: Duration = timedelta(days=365)


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    fetch: FetchSection = FetchSection()
    classifier: ClassifierSettings = ClassifierSettings()
    smtp: SmtpSettings = SmtpSettings()
    daemon: DaemonSettings = DaemonSettings()
    retention: RetentionSettings = RetentionSettings()
    digest: list[DigestSubscription] = []


class _FeedEntry(_Section):
    name: str = Field(pattern=NAME_PATTERN)
    url: str = Field(pattern=r"^https?://\S+$")
    tags: list[str] = []
    interval: Duration | None = None


class _FeedsFile(_Section):
    feed: list[_FeedEntry] = []


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
    for section, model in Settings.model_fields.items():
        annotation = model.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, _Section)):
            continue  # [[digest]] lists are not overridable one key at a time
        for key, field in annotation.model_fields.items():
            name = field.alias or key
            var = f"AGGREGATOR_{section}_{name}".upper()
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


def _first_error(err: ValidationError, file: str, prefix: str = "",
                 origin: dict[tuple[str, str], str] | None = None,
                 names: list[str] | None = None) -> ConfigError:
    e = err.errors()[0]
    loc = [str(p) for p in e["loc"]]
    # Feed and digest lists read better with the item's name than its index.
    parts: list[str] = []
    for p in loc:
        if p.isdigit() and parts:
            label = f"{parts[-1]}[{p}]"
            if names is not None and parts[-1] == "feed" and int(p) < len(names):
                label = f"feed[{p}] ({names[int(p)]})"
            parts[-1] = label
        else:
            parts.append(p)
    key = prefix + ".".join(parts)
    if origin and len(loc) >= 2 and (loc[0], loc[1]) in origin:
        file = f"environment {origin[(loc[0], loc[1])]}"
    found = repr(e.get("input"))
    if e["type"] == "extra_forbidden":
        return ConfigError(file, key, "no such key (see the comments in the shipped file)",
                           f"unknown key '{loc[-1]}'")
    if e["type"] == "missing":
        return ConfigError(file, key, "this key to be set", "nothing")
    msg = e["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if msg.startswith("expected "):
        # Our validators already say "expected X, found Y".
        expected, _, found_part = msg[len("expected "):].partition(", found ")
        return ConfigError(file, key, expected, found_part or found)
    return ConfigError(file, key, msg[0].lower() + msg[1:], found)


def load_settings(instance: Instance) -> Settings:
    shown = instance.display(instance.settings_file)
    data, origin = _env_overrides(read_toml(instance.settings_file, instance))
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        raise _first_error(err, shown, origin=origin) from None


def load_feeds(instance: Instance, known_tags: set[str] | None = None) -> tuple[FeedConfig, ...]:
    path = instance.feeds_file
    shown = instance.display(path)
    data = read_toml(path, instance)
    raw = data.get("feed", [])
    names = [f.get("name", "?") if isinstance(f, dict) else "?" for f in raw] \
        if isinstance(raw, list) else None
    try:
        parsed = _FeedsFile.model_validate(data)
    except ValidationError as err:
        raise _first_error(err, shown, names=names) from None
    seen: dict[str, int] = {}
    feeds = []
    for i, f in enumerate(parsed.feed):
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
        feeds.append(FeedConfig(f.name, f.url, tuple(f.tags), f.interval))
    return tuple(feeds)


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
