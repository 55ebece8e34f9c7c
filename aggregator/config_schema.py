"""The config files' schema, in pydantic: what ``aggregator.config`` validates with.

Imported only when a config file (or an ``AGGREGATOR_*`` override) changed since it was
last validated, or by the commands that edit config: pydantic costs ~60 ms to import and
more to build these models, which a cron ``fetch`` or a ``query`` should not pay every run.
Validated values come back as the named tuples of ``aggregator.config`` (a test
keeps their fields equal to these models').
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from aggregator import config_types as runtime
from aggregator.config_types import NAME_PATTERN
from aggregator.errors import ConfigError
from aggregator.instance import DEFAULT_DATABASE_URL
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
    # Feeds a daemon keeps in flight, one more claimed as each finishes: daemons sharing
    # a database split the due feeds evenly, and a slow or dead one holds few.
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


def _runtime(model: BaseModel, cls: type) -> Any:
    """The validated model as ``cls``, the named tuple of the same fields."""
    values: dict[str, Any] = {}
    for name in cls._fields:  # type: ignore[attr-defined]
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            value = _runtime(value, runtime.SECTIONS[name])
        elif isinstance(value, list):
            value = tuple(_runtime(v, runtime.DigestSubscription) if isinstance(v, BaseModel)
                          else v for v in value)
        values[name] = value
    return cls(**values)


def validate_settings(data: dict[str, Any], shown: str = "config/aggregator.toml",
                      origin: dict[tuple[str, str], str] | None = None) -> runtime.Settings:
    try:
        model = Settings.model_validate(data)
    except ValidationError as err:
        raise _first_error(err, shown, origin=origin) from None
    settings: runtime.Settings = _runtime(model, runtime.Settings)
    return settings


def validate_feeds(data: dict[str, Any], shown: str) -> list[FeedConfig]:
    raw = data.get("feed", [])
    names = [f.get("name", "?") if isinstance(f, dict) else "?" for f in raw] \
        if isinstance(raw, list) else None
    try:
        parsed = _FeedsFile.model_validate(data)
    except ValidationError as err:
        raise _first_error(err, shown, names=names) from None
    return [FeedConfig(f.name, f.url, tuple(f.tags), f.interval) for f in parsed.feed]


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
