"""The settings as values: named tuples (cheaper to define than dataclasses, and as
immutable). ``aggregator.config`` reads and caches them, ``aggregator.config_schema``
validates them; both import these, so neither imports the other at module level.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, NamedTuple

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


class DatabaseSettings(NamedTuple):
    url: str
    busy_timeout: timedelta


class FetchSection(NamedTuple):
    interval: timedelta
    min_interval: timedelta
    max_interval: timedelta
    full_fetch_every: timedelta
    disable_after: timedelta
    max_redirects: int
    redirect_confirmations: int
    concurrency: int
    per_host: int
    connections_per_client: int
    connect_timeout: timedelta
    read_timeout: timedelta
    total_timeout: timedelta
    max_body_size: int
    parse_cpu_budget: timedelta  # CPU one feed's document may take to parse and normalize per pass
    transport: str
    user_agent: str
    jitter: float
    attempts_kept: int

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


class ClassifierSettings(NamedTuple):
    models_dir: str
    batch_size: int
    extra_data: tuple[str, ...]
    use_starter: bool
    use_labels: bool


class SmtpSettings(NamedTuple):
    host: str
    port: int
    security: str
    username: str
    from_: str  # "from" in the file
    password_env: str
    timeout: timedelta

    @property
    def password(self) -> str | None:
        return os.environ.get(self.password_env) or None


class DigestSubscription(NamedTuple):
    name: str
    to: tuple[str, ...]
    tags: tuple[str, ...]
    query: str | None
    min_score: float
    at: str
    timezone: str
    days: tuple[str, ...]
    max_items: int
    skip_empty: bool


class DaemonSettings(NamedTuple):
    poll_interval: timedelta
    stop_timeout: timedelta
    digest_grace: timedelta
    retrain_every: timedelta
    batch_size: int
    claim_size: int  # feeds claimed at a time (see config_schema)


class RetentionSettings(NamedTuple):
    keep: timedelta


class Settings(NamedTuple):
    database: DatabaseSettings
    fetch: FetchSection
    classifier: ClassifierSettings
    smtp: SmtpSettings
    daemon: DaemonSettings
    retention: RetentionSettings
    digest: tuple[DigestSubscription, ...]


# The sections of Settings that are tables of their own (overridable key by key).
SECTIONS: dict[str, type] = {"database": DatabaseSettings, "fetch": FetchSection,
                             "classifier": ClassifierSettings, "smtp": SmtpSettings,
                             "daemon": DaemonSettings, "retention": RetentionSettings}
