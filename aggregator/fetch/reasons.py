"""Why a fetch failed, in plain words: "connection refused", not "Cannot connect to host
127.0.0.1:1 ssl:default [Connect call failed ...]".

A pure mapping from what the network layer raised to (error kind, reason). The libraries
under httpx (aiohttp or httpcore) wrap the operating system's error differently, so the
cause chain is walked for the first error that says what happened.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

import httpx

from aggregator.fetch.messages import (
    BAD_SCHEME,
    BAD_URL,
    CONNECT,
    DECODE,
    INTERNAL,
    NETWORK,
    PROTOCOL,
    TIMEOUT,
)

_ERRNOS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "timed out connecting",
    errno.EPIPE: "connection closed by the server",
    errno.ECONNABORTED: "connection aborted",
}


def _causes(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _os_reason(e: BaseException) -> str | None:
    """The plain reason of the first OS-level error in ``e``'s causes, if any."""
    for cause in _causes(e):
        if isinstance(cause, ssl.SSLCertVerificationError) or \
                type(cause).__name__ == "ClientConnectorCertificateError":
            detail = getattr(cause, "verify_message", None) or "not trusted"
            return f"TLS certificate not accepted ({detail})"
        if isinstance(cause, ssl.SSLError):
            # aiohttp's wrapper is an SSLError too, without the reason its cause carries.
            reason = next((r for c in _causes(cause) if (r := getattr(c, "reason", None))), None)
            return f"TLS handshake failed ({reason.lower().replace('_', ' ')})" \
                if reason else "TLS handshake failed"
        if isinstance(cause, socket.gaierror) or type(cause).__name__ == "ClientConnectorDNSError":
            return "host name not found (DNS)"
        if isinstance(cause, OSError) and cause.errno in _ERRNOS:
            return _ERRNOS[cause.errno]
    return None


def _seconds(value: float) -> str:
    return f"{value:g}s"


def network_reason(e: BaseException, *, connect_timeout: float = 10,
                   read_timeout: float = 30) -> tuple[str, str]:
    """(error kind, plain reason) for an exception raised while fetching."""
    if isinstance(e, httpx.ConnectTimeout):
        return TIMEOUT, f"timed out connecting (no answer within {_seconds(connect_timeout)})"
    if isinstance(e, httpx.PoolTimeout):
        return TIMEOUT, "timed out waiting for a connection"
    if isinstance(e, httpx.TimeoutException):
        return TIMEOUT, f"the server went silent (nothing received for {_seconds(read_timeout)})"
    if isinstance(e, httpx.ProxyError):
        return CONNECT, f"the proxy refused the request ({_os_reason(e) or e})"
    if isinstance(e, httpx.ConnectError):
        return CONNECT, _os_reason(e) or "cannot connect"
    if isinstance(e, httpx.RemoteProtocolError):
        if "disconnected" in str(e).lower() or "without sending" in str(e).lower():
            return PROTOCOL, "the server closed the connection without an answer"
        return PROTOCOL, "the server sent broken HTTP"
    if isinstance(e, httpx.LocalProtocolError):
        return PROTOCOL, "the request could not be sent (invalid URL or header)"
    if isinstance(e, httpx.DecodingError):
        return DECODE, "the server sent a body that does not decompress"
    if isinstance(e, httpx.UnsupportedProtocol):
        return BAD_SCHEME, "only http and https URLs can be fetched"
    if isinstance(e, httpx.InvalidURL):
        return BAD_URL, f"invalid URL ({e})"
    if isinstance(e, httpx.HTTPError | OSError):
        return NETWORK, _os_reason(e) or "the connection broke"
    return INTERNAL, f"internal error ({type(e).__name__}: {e})"


def size_text(n: int) -> str:
    """A byte count as people write it: 15 MiB, 512 KiB, 900 bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
