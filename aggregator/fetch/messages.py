"""What a fetch asks and what it gets back: plain values, no HTTP client.

Apart from ``aggregator.fetch.http`` so that deciding (``decide``) and the package itself
import without httpx and aiohttp: a pass with nothing to fetch loads neither.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

# error_kind values.
TIMEOUT = "timeout"
CONNECT = "connect"
NETWORK = "network"  # the connection broke after it was made
PROTOCOL = "protocol"  # the server spoke broken HTTP
TOO_LARGE = "too_large"
DECODE = "decode"  # bad or unsupported Content-Encoding
REDIRECT_LOOP = "redirect_loop"
TOO_MANY_REDIRECTS = "too_many_redirects"
BAD_SCHEME = "bad_scheme"
BAD_URL = "bad_url"
HTTP = "http"  # the server answered with an error status
INTERNAL = "internal"  # a bug of ours; reported on the feed rather than killing the pass

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
ALLOWED_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class FetchRequest:
    feed_id: int
    url: str
    etag: str | None = None
    last_modified: str | None = None

    @property
    def conditional(self) -> bool:
        return self.etag is not None or self.last_modified is not None


@dataclass(frozen=True)
class FetchResponse:
    feed_id: int
    url: str  # as requested
    final_url: str  # after redirects
    status: int | None  # of the last response; None when none came
    headers: Mapping[str, str]  # of the last response, names lower-cased
    body: bytes | None  # decoded; only for a 2xx
    error: str | None
    error_kind: str | None
    redirects: tuple[tuple[int, str], ...] = ()  # (status, target) per hop, in order
    elapsed: float = 0.0  # seconds on the network, queueing excluded
    conditional: bool = False  # the request carried validators
    wire_bytes: int = 0  # body bytes as received, before decoding

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.error is None and self.status == 304

    @cached_property
    def body_hash(self) -> str | None:
        # cached_property writes to __dict__ directly, which a frozen dataclass allows.
        return hashlib.sha256(self.body).hexdigest() if self.body is not None else None

    @property
    def permanent_url(self) -> str | None:
        """Where the leading run of permanent redirects points, if any.

        Only that prefix of the chain is permanent: after a 302 the rest may change.
        """
        target = None
        for status, location in self.redirects:
            if status not in PERMANENT_REDIRECTS:
                break
            target = location
        return target
