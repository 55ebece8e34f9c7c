"""The fetcher against a real HTTP server on 127.0.0.x: one test per behaviour.

Scheduling decisions are checked here too where they hinge on what a real server sends
(validators, Retry-After, redirects); the clock is always passed in.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import zlib
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TypeVar

import pytest
from feedserver import FeedServer, feed_server

from aggregator.fetch import (
    Decision,
    Fetcher,
    FetchRequest,
    FetchResponse,
    FetchSettings,
    decide,
    needs_parse,
    plan,
)
from aggregator.fetch.http import by_host
from aggregator.types import Entry, Feed, ParsedFeed

__all__ = ["feed_server"]  # the fixture, imported for pytest

T = TypeVar("T")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RSS = b"<rss version='2.0'><channel><title>t</title><item><guid>1</guid></item></channel></rss>"
FAST = FetchSettings(connect_timeout=2, read_timeout=2, total_timeout=5)


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def fetch(request: FetchRequest, settings: FetchSettings = FAST) -> FetchResponse:
    async def go() -> FetchResponse:
        async with Fetcher(settings) as fetcher:
            return await fetcher.fetch(request)

    return asyncio.run(go())


def fake_parse(body: bytes) -> ParsedFeed:
    # The real parser lives elsewhere; the decider only needs "it parsed".
    entry = Entry(key="1", title="t", url=None, canonical_url=None, summary="", content_html="", published=T0)
    return ParsedFeed(title="t", link=None, entries=(entry,))


def cycle(feed: Feed, now: datetime, settings: FetchSettings = FAST) -> tuple[Decision, bool]:
    """One service-layer round: plan, fetch, parse if needed, decide."""
    response = fetch(plan(feed, now, settings), settings)
    parse = needs_parse(feed, response)
    parsed = fake_parse(response.body or b"") if parse else None
    return decide(feed, response, parsed, 0, now, settings, random.Random(1)), parse


def test_conditional_get_gets_304_and_costs_no_parse(feed_server: FeedServer) -> None:
    feed_server.route("/f", body=RSS, etag='"v1"', last_modified="Mon, 05 Jan 2026 10:00:00 GMT")
    feed = Feed(id=1, name="f", url=feed_server.url("/f"))
    first, parsed = cycle(feed, T0)
    assert (first.event, parsed, first.feed.etag) == ("ok", True, '"v1"')
    second, parsed = cycle(first.feed, T0 + timedelta(hours=1))
    assert (second.event, parsed) == ("not_modified", False)
    sent = feed_server.last("/f")
    assert sent.header("if-none-match") == '"v1"'
    assert sent.header("if-modified-since") == "Mon, 05 Jan 2026 10:00:00 GMT"
    assert second.attempt.status == 304 and second.attempt.bytes == 0


def test_same_body_again_is_not_parsed(feed_server: FeedServer) -> None:
    feed_server.route("/f", body=RSS)  # no validators at all
    first, _ = cycle(Feed(id=1, name="f", url=feed_server.url("/f")), T0)
    second, parsed = cycle(first.feed, T0 + timedelta(hours=1))
    assert (second.event, parsed, second.store_entries) == ("unchanged", False, False)


def test_lying_validators_are_caught_by_the_periodic_full_fetch(feed_server: FeedServer) -> None:
    feed_server.route("/f", body=RSS, etag='"v1"', lying=True)
    feed = cycle(Feed(id=1, name="f", url=feed_server.url("/f")), T0)[0].feed
    feed_server.route("/f", body=RSS.replace(b"<guid>1", b"<guid>2"), etag='"v1"', lying=True)
    for hours in (1, 6, 11):  # the server keeps saying "not modified"
        d, parsed = cycle(feed, T0 + timedelta(hours=hours))
        assert (d.event, parsed) == ("not_modified", False)
        feed = d.feed
    d, parsed = cycle(feed, T0 + timedelta(hours=12))  # full_fetch_every: no validators
    assert feed_server.last("/f").header("if-none-match") is None
    assert (d.event, parsed) == ("ok", True)
    assert d.feed.last_full_fetch_at == T0 + timedelta(hours=12)


@pytest.mark.parametrize("status", [503, 429])
@pytest.mark.parametrize("form", ["seconds", "date"])
def test_retry_after_delays_only_that_feed(feed_server: FeedServer, status: int, form: str) -> None:
    # The date form is read against the server's Date header: our clock may be anywhere.
    value = (
        "10800" if form == "seconds" else format_datetime(datetime.now(UTC) + timedelta(hours=3), usegmt=True)
    )
    feed_server.route("/busy", status=status, headers={"Retry-After": value})
    feed_server.route("/fine", body=RSS)
    busy = cycle(Feed(id=1, name="busy", url=feed_server.url("/busy")), T0)[0]
    fine = cycle(Feed(id=2, name="fine", url=feed_server.url("/fine")), T0)[0]
    assert busy.event == "retry_after"
    assert busy.feed.next_fetch_at is not None
    delay = busy.feed.next_fetch_at - T0
    assert timedelta(hours=3) - timedelta(seconds=2) <= delay <= timedelta(hours=3.3)
    assert fine.event == "ok" and fine.feed.next_fetch_at is not None
    assert fine.feed.next_fetch_at - T0 <= timedelta(hours=1.1)  # same host, not delayed


def test_410_gone_disables_at_once(feed_server: FeedServer) -> None:
    feed_server.route("/gone", status=410)
    d, _ = cycle(Feed(id=1, name="g", url=feed_server.url("/gone")), T0)
    assert d.event == "disabled"
    assert d.feed.disabled_at == T0 and d.feed.next_fetch_at is None
    assert d.feed.disabled_reason is not None and "410" in d.feed.disabled_reason
    assert "2026-01-05" in d.feed.disabled_reason


def test_permanent_redirect_moves_the_url_after_three_fetches(feed_server: FeedServer) -> None:
    new = feed_server.url("/new")
    feed_server.route("/old", redirect_to=new, status=301)
    feed_server.route("/new", body=RSS)
    feed = Feed(id=1, name="f", url=feed_server.url("/old"))
    for n in (1, 2):
        d, _ = cycle(feed, T0 + timedelta(hours=n))
        assert (d.feed.url, d.feed.pending_redirect_url, d.feed.pending_redirect_count) == (
            feed_server.url("/old"),
            new,
            n,
        )
        feed = d.feed
    d, _ = cycle(feed, T0 + timedelta(hours=3))
    assert (d.feed.url, d.feed.pending_redirect_url, d.feed.pending_redirect_count) == (new, None, 0)
    hits = feed_server.hits("/old")
    cycle(d.feed, T0 + timedelta(hours=4))
    assert feed_server.hits("/old") == hits  # the old URL is no longer asked


@pytest.mark.parametrize("status", [302, 307])
def test_temporary_redirect_never_moves_the_url(feed_server: FeedServer, status: int) -> None:
    feed_server.route("/old", redirect_to="/new", status=status)  # relative Location
    feed_server.route("/new", body=RSS)
    feed = Feed(id=1, name="f", url=feed_server.url("/old"))
    for n in range(4):
        d, _ = cycle(feed, T0 + timedelta(hours=n))
        assert d.event in ("ok", "unchanged")
        assert (d.feed.url, d.feed.pending_redirect_url) == (feed_server.url("/old"), None)
        feed = d.feed
    response = fetch(FetchRequest(1, feed_server.url("/old")))
    assert response.redirects == ((status, feed_server.url("/new")),)
    assert response.final_url == feed_server.url("/new") and response.body == RSS


def test_redirect_loop_is_an_error(feed_server: FeedServer) -> None:
    feed_server.route("/a", redirect_to="/b")
    feed_server.route("/b", redirect_to="/a", status=302)
    response = fetch(FetchRequest(1, feed_server.url("/a")))
    assert response.error_kind == "redirect_loop" and response.body is None
    assert len(response.redirects) == 2
    d = decide(Feed(id=1, name="f", url=response.url), response, None, 0, T0, FAST, random.Random(1))
    assert d.event == "failed" and d.feed.url == response.url  # a loop adopts nothing


def test_too_many_redirects_is_an_error(feed_server: FeedServer) -> None:
    for n in range(8):
        feed_server.route(f"/r{n}", redirect_to=f"/r{n + 1}", status=307)
    response = fetch(FetchRequest(1, feed_server.url("/r0")), FetchSettings(max_redirects=5))
    assert response.error_kind == "too_many_redirects"
    assert len(response.redirects) == 6 and feed_server.hits("/r6") == 0


def test_slow_body_hits_the_total_timeout(feed_server: FeedServer) -> None:
    # Each chunk comes well within the read timeout; the whole never comes in time.
    feed_server.route("/slow", body=RSS * 50, dribble=0.05, dribble_size=16)
    settings = FetchSettings(read_timeout=1, total_timeout=0.5)
    response = fetch(FetchRequest(1, feed_server.url("/slow")), settings)
    assert response.error_kind == "timeout" and response.body is None
    assert 0.4 < response.elapsed < 1.5


def test_silent_server_hits_the_read_timeout(feed_server: FeedServer) -> None:
    feed_server.route("/silent", body=RSS, delay=2)
    settings = FetchSettings(read_timeout=0.3, total_timeout=5)
    response = fetch(FetchRequest(1, feed_server.url("/silent")), settings)
    assert response.error_kind == "timeout"
    assert response.elapsed < 1


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_is_refused(feed_server: FeedServer, chunked: bool) -> None:
    feed_server.route("/big", body=b"x" * 300_000, chunked=chunked)
    settings = FetchSettings(max_body_bytes=100_000)
    response = fetch(FetchRequest(1, feed_server.url("/big")), settings)
    assert response.error_kind == "too_large" and response.body is None
    assert response.wire_bytes <= 100_000 + 65_536  # stopped at the cap, give or take a read


def test_gzip_bomb_is_refused_on_its_decoded_size(feed_server: FeedServer) -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    feed_server.route("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    settings = FetchSettings(max_body_bytes=1_000_000)
    response = fetch(FetchRequest(1, feed_server.url("/bomb")), settings)
    assert response.error_kind == "too_large" and response.body is None


def test_gzip_body_is_decoded(feed_server: FeedServer) -> None:
    feed_server.route("/gz", body=RSS * 100, gzip=True)
    response = fetch(FetchRequest(1, feed_server.url("/gz")))
    assert response.body == RSS * 100 and response.wire_bytes < len(RSS * 100)
    assert feed_server.last("/gz").header("accept-encoding") == "gzip, deflate"


def test_per_host_and_global_limits_hold(feed_server: FeedServer) -> None:
    hosts = feed_server.hosts
    for n in range(40):
        feed_server.route(f"/f{n}", body=RSS, delay=0.05)
    requests = [FetchRequest(n, feed_server.url(f"/f{n}", hosts[n % len(hosts)])) for n in range(40)]
    settings = FetchSettings(concurrency=6, per_host=2, connections_per_client=2)

    async def go() -> list[FetchResponse]:
        async with Fetcher(settings) as fetcher:
            return [r async for r in fetcher.fetch_all(requests)]

    responses = run(go())
    assert sorted(r.feed_id for r in responses) == list(range(40))
    assert all(r.status == 200 for r in responses)
    assert max(feed_server.max_active.values()) == 2  # reached, never exceeded
    assert feed_server.max_active_total == 6


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed", "file:///etc/passwd", "feed.xml"])
def test_non_http_scheme_is_rejected(url: str) -> None:
    response = fetch(FetchRequest(1, url))
    assert response.error_kind in ("bad_scheme", "bad_url") and response.status is None
    d = decide(Feed(id=1, name="f", url=url), response, None, 0, T0, FAST, random.Random(1))
    if response.error_kind == "bad_scheme":
        assert d.event == "disabled"


def test_redirect_to_non_http_scheme_is_an_error(feed_server: FeedServer) -> None:
    feed_server.route("/f", redirect_to="file:///etc/passwd")
    response = fetch(FetchRequest(1, feed_server.url("/f")))
    assert response.error_kind == "bad_scheme" and response.body is None


def test_connection_refused_is_a_connect_error(feed_server: FeedServer) -> None:
    # A port on loopback where nothing listens: the server's port on an unused address.
    response = fetch(FetchRequest(1, f"http://127.0.0.9:{feed_server.port}/f"))
    assert response.error_kind == "connect" and response.status is None


def test_user_agent_and_accept_are_sent(feed_server: FeedServer) -> None:
    feed_server.route("/f", body=RSS)
    fetch(FetchRequest(1, feed_server.url("/f")), FetchSettings(user_agent="test/1 (+x)"))
    sent = feed_server.last("/f")
    assert sent.header("user-agent") == "test/1 (+x)"
    assert "application/rss+xml" in (sent.header("accept") or "")


def test_http_error_is_reported_with_status(feed_server: FeedServer) -> None:
    feed_server.route("/err", status=500, body=b"oops")
    response = fetch(FetchRequest(1, feed_server.url("/err")))
    assert (response.status, response.error_kind, response.body) == (500, "http", None)
    assert response.error == "HTTP 500 Internal Server Error"


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS])  # zlib-wrapped, and raw
def test_deflate_body_is_decoded_either_way(feed_server: FeedServer, wbits: int) -> None:
    packer = zlib.compressobj(wbits=wbits)
    body = packer.compress(RSS * 100) + packer.flush()
    feed_server.route("/d", body=body, headers={"Content-Encoding": "deflate"})
    assert fetch(FetchRequest(1, feed_server.url("/d"))).body == RSS * 100


def test_corrupt_gzip_is_a_decode_error(feed_server: FeedServer) -> None:
    feed_server.route("/bad", body=b"\x1f\x8b\x08\x00garbage" * 10, headers={"Content-Encoding": "gzip"})
    response = fetch(FetchRequest(1, feed_server.url("/bad")))
    assert response.error_kind == "decode" and response.body is None


def test_redirect_without_location_is_an_error(feed_server: FeedServer) -> None:
    feed_server.route("/odd", status=301)
    response = fetch(FetchRequest(1, feed_server.url("/odd")))
    assert (response.status, response.error_kind) == (301, "http")


def test_connections_are_reused_across_304s(feed_server: FeedServer) -> None:
    feed_server.route("/f", body=RSS, etag='"v1"')

    async def go() -> list[int | None]:
        async with Fetcher(FAST) as fetcher:
            return [
                (await fetcher.fetch(FetchRequest(1, feed_server.url("/f"), etag='"v1"'))).status
                for _ in range(5)
            ]

    assert run(go()) == [304] * 5
    assert feed_server.connections == 1


def test_fetch_all_yields_each_as_it_completes(feed_server: FeedServer) -> None:
    feed_server.route("/slow", body=RSS, delay=0.5)
    feed_server.route("/fast", body=RSS)
    requests = [FetchRequest(0, feed_server.url("/slow", "127.0.0.2"))]
    requests += [FetchRequest(n, feed_server.url("/fast", "127.0.0.3")) for n in range(1, 4)]

    async def go() -> list[int]:
        async with Fetcher(FAST) as fetcher:
            return [r.feed_id async for r in fetcher.fetch_all(requests)]

    assert run(go())[-1] == 0


def test_fetch_all_fetches_only_a_window_ahead_of_a_slow_consumer(feed_server: FeedServer) -> None:
    # Bodies wait in memory until taken: a consumer slower than the network (a cold
    # ingest parsing and storing) must not end up holding every body of the pass.
    feed_server.route("/rss", body=RSS)
    requests = [FetchRequest(n, feed_server.url("/rss")) for n in range(40)]
    seen: list[tuple[int, int]] = []  # (responses taken, requests the server has answered)

    async def go() -> None:
        async with Fetcher(FAST) as fetcher:
            taken = 0
            async for _ in fetcher.fetch_all(requests, ahead=5):
                taken += 1
                await asyncio.sleep(0.02)  # the network has all the time it wants to run ahead
                seen.append((taken, feed_server.hits("/rss")))

    run(go())
    assert len(seen) == 40 and feed_server.hits("/rss") == 40
    assert all(hits <= taken + 5 for taken, hits in seen)
    assert any(hits == taken + 5 for taken, hits in seen)  # it does run ahead, up to the window


def test_cookies_a_server_sets_are_never_sent_back(feed_server: FeedServer) -> None:
    # A fetch must not depend on what some server set earlier, in this pass or a redirect.
    feed_server.route("/set", body=RSS, headers={"Set-Cookie": "session=abc; Path=/"})
    feed_server.route("/next", body=RSS)
    requests = [FetchRequest(1, feed_server.url("/set")), FetchRequest(2, feed_server.url("/next"))]

    async def go() -> None:
        async with Fetcher(replace(FAST, concurrency=1)) as fetcher:
            for request in requests:
                assert (await fetcher.fetch(request)).status == 200

    run(go())
    assert feed_server.last("/next").header("cookie") is None


def test_requests_start_in_host_round_robin_order() -> None:
    urls = ["http://a.example/1", "http://a.example/2", "http://a.example/3",
            "http://b.example/1", "http://c.example/1", "http://c.example/2"]
    ordered = by_host([FetchRequest(n, u) for n, u in enumerate(urls)])
    assert [r.url for r in ordered] == [
        "http://a.example/1", "http://b.example/1", "http://c.example/1",
        "http://a.example/2", "http://c.example/2", "http://a.example/3"]


def test_proxy_from_the_environment_is_used(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The loopback server plays the proxy: it gets the absolute URL as the request target.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", feed_server.url(""))
    feed_server.route("http://feeds.example.invalid/rss", body=RSS)
    response = fetch(FetchRequest(1, "http://feeds.example.invalid/rss"))
    assert response.body == RSS and response.final_url == "http://feeds.example.invalid/rss"
