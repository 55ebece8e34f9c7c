"""Fetch settings: one frozen value, built by the config loader from ``[fetch]``.

Every field has a default so tests and benchmarks can build one with only the fields
they care about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

TRANSPORTS = ("aiohttp", "httpcore")
DEFAULT_USER_AGENT = "aggregator/0.1 (+https://github.com/aggregator-project/aggregator)"


@dataclass(frozen=True)
class FetchSettings:
    # Scheduling.
    interval: timedelta = timedelta(hours=1)  # a feed's base interval unless it sets its own
    min_interval: timedelta = timedelta(minutes=5)
    max_interval: timedelta = timedelta(hours=24)
    full_fetch_every: timedelta = timedelta(hours=12)  # a fetch without validators, at least
    disable_after: timedelta = timedelta(days=30)  # of uninterrupted failure
    # First retry after a failure; doubles with each further failure up to max_interval.
    backoff_base: timedelta = timedelta(minutes=5)
    # How far the publishing rate may move the interval from the feed's base, both ways:
    # 4 lets an hourly feed go between 15 minutes and 4 hours.
    adapt_range: float = 4.0
    # The adaptive interval aims at this many new items per fetch.
    target_new_items: float = 1.0

    # Redirects.
    max_redirects: int = 5
    redirect_confirmations: int = 3  # consecutive fetches seeing a permanent redirect

    # Limits.
    concurrency: int = 50
    per_host: int = 2
    connections_per_client: int = 10  # see Fetcher: many small clients beat one big one
    connect_timeout: float = 10
    read_timeout: float = 30
    total_timeout: float = 60
    max_body_bytes: int = 15 * 1024 * 1024  # decoded size
    # What speaks HTTP under httpx: "aiohttp" (aggregator.fetch.transport; about half the
    # CPU per request) or "httpcore" (httpx's own).
    transport: str = "aiohttp"

    user_agent: str = DEFAULT_USER_AGENT
    jitter: float = 0.1  # +-10% on every scheduled delay, so feeds do not synchronize
    attempts_kept: int = 100  # per feed, for the store

    def __post_init__(self) -> None:
        # Fail at construction rather than deep inside a pass.
        if not timedelta(0) < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if min(self.concurrency, self.per_host, self.connections_per_client) < 1:
            raise ValueError("concurrency, per_host and connections_per_client must be >= 1")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.adapt_range < 1:
            raise ValueError("adapt_range must be >= 1")
        if self.max_redirects < 0 or self.redirect_confirmations < 1:
            raise ValueError("need max_redirects >= 0 and redirect_confirmations >= 1")
