"""An httpx transport over aiohttp: httpx stays the surface, aiohttp does the wire.

Why: in a warm pass (every answer a 304, a fresh connection per host) most of the CPU
per request went to httpcore's pool bookkeeping, anyio's cancel scopes and task groups,
and h11's pure-Python parsing. aiohttp's connector and C parser cost about half as much,
which is what a pass over many slow servers is bound by (``[fetch] transport``).

Only what ``Fetcher`` needs, deliberately:

- bodies come raw (no decompression: ``Fetcher`` inflates under its own size cap);
- no redirects, no cookies (a ``DummyCookieJar``), no default headers of aiohttp's own;
- the URL goes out exactly as httpx built it (``encoded=True``: no re-quoting);
- timeouts from the request's ``timeout`` extension (connect, read; pool bounds the
  wait for a connection plus the connect);
- ``max_connections`` bounds the connections in use; idle keep-alive connections are
  dropped after ``keepalive_expiry``;
- proxies: none here. ``httpx.AsyncClient(trust_env=True)`` mounts its own transports
  for the proxies the environment names, so proxied URLs never reach this one.

aiohttp's errors become httpx's, by what they mean to the caller (httpx-aiohttp 0.2's
own table maps a dropped connection to ``ConnectTimeout``, hence this module).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def _no_default_contexts() -> Iterator[None]:
    """While aiohttp is imported here, its two module-level default TLS contexts are made
    without loading the CA bundle (each load ~35 ms of CPU: a tenth of a whole ``fetch``
    process where every feed answers 304). They are never used: ``handle_async_request``
    passes our own context (``_tls``) for every https request and none for plain http,
    redirects are ours and proxies httpx's. Were one used all the same, it would trust no
    CA and refuse the connection (fail closed). Only this thread sees the change: another
    thread building a context meanwhile gets the real one."""
    me = threading.get_ident()
    create, verify_paths = ssl.create_default_context, ssl.SSLContext.set_default_verify_paths

    def bare_context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        if threading.get_ident() == me and not args and not kwargs:
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA to trust
        return create(*args, **kwargs)

    def no_paths(self: ssl.SSLContext) -> None:
        if threading.get_ident() != me:
            verify_paths(self)

    ssl.create_default_context = bare_context
    ssl.SSLContext.set_default_verify_paths = no_paths  # type: ignore[method-assign]
    try:
        yield
    finally:
        ssl.create_default_context = create
        ssl.SSLContext.set_default_verify_paths = verify_paths  # type: ignore[method-assign]


with _no_default_contexts():
    import aiohttp
import httpx  # noqa: E402
from yarl import URL  # noqa: E402

# Header lines can be long in the wild (CSP, cookies): h11 allows ~100 KB for a whole
# head, aiohttp's default is 8 KB a line.
MAX_LINE = 64 * 1024


@contextmanager
def _mapped() -> Iterator[None]:
    """Raise aiohttp's exceptions as the httpx ones the caller handles."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as e:
        raise httpx.ConnectTimeout(str(e) or "connect timeout") from e
    except aiohttp.ServerTimeoutError as e:  # includes SocketTimeoutError (sock_read)
        raise httpx.ReadTimeout(str(e) or "read timeout") from e
    except (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError) as e:
        raise httpx.ProxyError(str(e)) from e
    except aiohttp.ClientConnectorError as e:  # refused, DNS, TLS handshake, ...
        raise httpx.ConnectError(str(e)) from e
    except aiohttp.ServerDisconnectedError as e:  # as httpcore: a protocol error
        raise httpx.RemoteProtocolError(str(e) or "server disconnected without a response") from e
    except aiohttp.ClientPayloadError as e:  # body cut short, bad chunking
        raise httpx.RemoteProtocolError(str(e)) from e
    except aiohttp.ClientResponseError as e:  # the response head did not parse
        raise httpx.RemoteProtocolError(" ".join(f"{e.status}, {e.message}".split())) from e
    except (aiohttp.NonHttpUrlClientError, aiohttp.InvalidUrlClientError) as e:
        raise httpx.UnsupportedProtocol(str(e)) from e
    except aiohttp.InvalidURL as e:
        raise httpx.InvalidURL(str(e)) from e
    except aiohttp.ClientError as e:  # ClientOSError (reset, broken pipe) and the rest
        raise httpx.ReadError(f"{type(e).__name__}: {e}") from e


_READ_SIZE = 64 * 1024


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            # Bounded reads: the size cap is checked between chunks, so one read must not
            # carry far past it (iter_any hands over whatever is buffered, up to ~2**17).
            async for chunk in self._response.content.iter_chunked(_READ_SIZE):
                yield chunk

    async def aclose(self) -> None:
        # Back to the pool if the body was read to its end, else the connection closes.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
                 limits: httpx.Limits) -> None:
        # A context, or what makes one when the first https request needs it (loading a CA
        # bundle costs ~20 ms, which a pass over plain http feeds need not pay).
        self._ssl = ssl_context
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: a ClientSession belongs to the running loop.
        limits = self._limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,  # 0: no limit
            keepalive_timeout=limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            # httpx already set Host, User-Agent, Accept and Accept-Encoding.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            trust_env=False,  # see the module docstring: httpx routes the proxies
            timeout=aiohttp.ClientTimeout(total=None),
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
        )
        return self._session

    def _tls(self) -> ssl.SSLContext:
        return self._ssl if isinstance(self._ssl, ssl.SSLContext) else self._ssl()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        try:
            data: bytes | None = request.content or None
        except httpx.RequestNotRead:
            data = await request.aread() or None
        with _mapped():
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,
                ssl=self._tls() if request.url.scheme == "https" else True,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            await asyncio.sleep(0)  # let the closed transports finish before the loop ends
