"""The ingest pipeline: select -> fetch -> parse (and normalize) -> store -> classify.

``Ingest`` is one pass over a set of feeds. It holds the pass's state (the group of
responses parsed but not stored yet, the counts) and runs each stage as a method:

- ``select``: sync the feeds from the config, pick the named, all, or due (claimed) ones;
- ``fetch``: conditional GETs, concurrently, each response handed on as it comes; a
  daemon's pass (claim mode) keeps ``[daemon] claim_size`` feeds in flight and claims more
  as each one finishes;
- ``parse``: under the CPU budget (a large document in a worker thread), skipping the
  entries already stored;
- ``store``: the responses in groups (``group_due``), one commit each, with rule tags and
  each feed's new fetch state (``fetch.decide``);
- ``classify``: tag what is new, with the model preloaded while the network works.

Heavy libraries (httpx, the parsers, scikit-learn) are imported inside the stages that need
them: a pass with nothing due imports none of them.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from aggregator.classify import Classifier, Progress, classify_pending, load_classifier
from aggregator.errors import UsageError, suggest
from aggregator.timeutil import utcnow
from aggregator.types import PassSummary
from aggregator.views import TagScore

if TYPE_CHECKING:
    from aggregator.config import Config
    from aggregator.fetch.messages import FetchResponse
    from aggregator.store.base import Store
    from aggregator.types import Feed, ParsedFeed

# The pass stores feeds in groups, one commit each: a group is stored once it holds this
# many entries, or once its first feed has waited this long (seconds). Bigger groups write
# each touched index page out less often; their entries wait in memory (~6 MiB).
GROUP_ENTRIES = 2000
GROUP_SECONDS = 0.25
# How often the pass looks at the stop event and at a group waiting for slow responses.
WATCH_SECONDS = 0.1
# Documents up to this size are parsed on the loop: a few milliseconds each (~0.07 ms a KiB
# on the development machine), which no server's timeout notices, without a worker
# thread's hand-offs (they cost a cold 1,000-feed fetch of 50 KB documents ~2 s: the thread
# and the loop trading the GIL). Larger ones are parsed in a worker thread.
PARSE_ON_LOOP_BYTES = 256 * 1024
EventSink = Callable[[str, dict[str, Any]], None]  # (event, fields): the daemon logs them


def group_due(feeds: int, entries: int, since: float, now: float, *,
              max_entries: int = GROUP_ENTRIES, max_seconds: float = GROUP_SECONDS) -> bool:
    """Whether the group waiting (``feeds`` responses holding ``entries`` entries, the first
    come at loop time ``since``) is stored at loop time ``now``."""
    return feeds > 0 and (entries >= max_entries or now - since >= max_seconds)


def select_feeds(store: Store, config: Config, names: Sequence[str], all_feeds: bool,
                 now: datetime, *, claim_owner: str | None = None, limit: int | None = None,
                 lease: timedelta | None = None) -> list[Feed]:
    """Named feeds, all enabled feeds, or the due ones. With ``claim_owner`` (the daemon),
    the due ones are claimed under a lease, so daemons sharing a database split them."""
    if claim_owner is not None and not names and not all_feeds:
        return store.claim_due_feeds(now, limit, claim_owner, lease or lease_for(config, limit))
    if names:
        known = {f.name: f for f in store.feeds()}
        for name in names:
            if name not in known:
                raise UsageError(f"no feed named {name!r}{suggest(name, list(known))}")
        return [known[n] for n in names]
    if all_feeds:
        return [f for f in store.feeds() if f.enabled]
    return store.due_feeds(now)


def lease_for(config: Config, feeds: int | None) -> timedelta:
    """How long a daemon may hold the feeds it claimed: one ``total_timeout`` per wave of
    ``concurrency`` feeds, and one more for waiting on per-host limits and storing. With
    the defaults (``[daemon] claim_size`` 10 in flight, 60 s) that is 2 minutes: a dead
    daemon's feeds are due again within that, and a live one stores each well inside (it
    claims a feed only when a fetch has made room for it)."""
    import math

    fetch = config.settings.fetch
    waves = math.ceil((feeds or len(config.feeds) or 1) / fetch.concurrency) + 1
    return waves * fetch.total_timeout


def rule_tags(feed: Feed) -> list[TagScore]:
    """The tags a feed's declaration implies, for each of its new items."""
    return [TagScore(t, 1.0, "rule", None, (f"feed {feed.name} is tagged {t}",)) for t in feed.tags]


class Refill(NamedTuple):
    """Claim mode: ``window`` fetches kept in flight, ``claim(n)`` claiming n more."""

    window: int
    claim: Callable[[int], list[Feed]]


class Received(NamedTuple):
    """A response parsed (``parsed`` None: nothing to read, as a 304 or a failure) and
    waiting to be stored, with the time it came."""

    feed: Feed
    response: FetchResponse
    parsed: ParsedFeed | None
    at: datetime


class Ingest:
    """One pass of the pipeline, with its own state. ``run`` chains the stages.

    ``stop`` (set by the daemon on SIGTERM) ends the pass early: fetches under way get
    ``[daemon] stop_timeout`` to finish, then are abandoned; an abandoned feed keeps its
    old state and stays due, so the next run fetches it again.
    """

    def __init__(self, config: Config, store: Store, *, now: Callable[[], datetime] = utcnow,
                 rand: random.Random | None = None, progress: Progress | None = None,
                 stop: threading.Event | None = None, events: EventSink | None = None) -> None:
        self.config = config
        self.db = store
        self.now = now
        self.rand = rand or random.Random()
        self.progress = progress
        self.stop = stop
        self.events = events
        # Told (once per group) when a group stored something new: the model preload starts.
        self.on_new: Callable[[], None] | None = None
        self._settings: Any = None  # fetch.settings.FetchSettings, once there is a feed to fetch
        self.total = 0
        # The group: responses parsed but not stored yet, stored together by store().
        self.group: list[Received] = []
        self.group_entries = 0
        self.group_since = 0.0  # loop time when the group's first response came
        self.done = 0
        self.counts = {"ok": 0, "not_modified": 0, "failed": 0, "new": 0, "updated": 0, "tags": 0}
        self.failures: list[tuple[str, str]] = []

    # -- the whole pass -----------------------------------------------------------------

    def run(self, *, names: Sequence[str] = (), all_feeds: bool = False,
            limit: int | None = None, claim_owner: str | None = None,
            classifier: Classifier | None = None, classify: bool = True,
            notice: Callable[[str], None] | None = None) -> PassSummary:
        begun = self.now()  # a claiming pass takes what was due by now, no more
        feeds = self.select(names, all_feeds, limit=limit, claim_owner=claim_owner, now=begun)
        first = any(f.last_success_at is None for f in feeds)
        # A first fetch: the model loads as soon as there is something new to classify.
        preloaded = _Preload(self.config) if first and classify and classifier is None else None
        self.on_new = preloaded.start if preloaded else None
        started = self.now()
        refill = None
        if claim_owner is not None and not names and not all_feeds:
            refill = self._refill(claim_owner, limit or self.config.settings.daemon.claim_size,
                                  begun)
        summary = self.fetch_all(feeds, refill=refill)
        tags = 0
        if classify and not self.stopped():
            tags = self.classify(classifier, notice, preloaded.result if preloaded else None)
        from aggregator.timeutil import to_iso

        # Any pass counts for `status`, the CLI's as the daemon's.
        self.db.set_meta("last_pass", to_iso(self.now()))
        return replace(summary, tags_assigned=summary.tags_assigned + tags, started_at=started,
                       finished_at=self.now())

    @property
    def settings(self) -> Any:
        """The fetch settings as the fetcher and the decider take them (loaded at first use:
        a pass with nothing due never imports them)."""
        if self._settings is None:
            self._settings = self.config.settings.fetch.to_settings()
        return self._settings

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    # -- select -------------------------------------------------------------------------

    def select(self, names: Sequence[str] = (), all_feeds: bool = False, *,
               limit: int | None = None, claim_owner: str | None = None,
               now: datetime | None = None) -> list[Feed]:
        """The feeds this pass fetches (due by ``now``); the HTTP client (and the parsers,
        when a feed was never fetched) start loading in a thread meanwhile."""
        now = now or self.now()
        self.db.sync_feeds(self.config.feeds, now)
        feeds = select_feeds(self.db, self.config, names, all_feeds, now,
                             claim_owner=claim_owner,
                             limit=limit if claim_owner is None or names or all_feeds
                             else limit or self.config.settings.daemon.claim_size)
        if limit is not None:
            feeds = feeds[:limit]
        if feeds:
            from aggregator.fetch import start_loading

            # A feed never fetched brings a body to parse: its parsers load in the same thread.
            start_loading(self.config.settings.fetch.transport,
                          parse=any(f.last_success_at is None for f in feeds),
                          tls=any(f.url.startswith("https:") for f in feeds))
        return feeds

    # -- fetch --------------------------------------------------------------------------

    def _refill(self, owner: str, window: int, started: datetime) -> Refill:
        """Claims ``n`` more due feeds for ``owner``: only those due when the pass
        ``started``, so a pass ends (and the daemon's next one beats its heartbeat) even
        while feeds keep coming due; each leased from now, as the first claim."""
        lease = lease_for(self.config, window)

        def claim(n: int) -> list[Feed]:
            # The lease runs from `started` in the query: lengthened by the time since.
            return self.db.claim_due_feeds(started, n, owner, lease + (self.now() - started))

        return Refill(window, claim)

    def fetch_all(self, feeds: Sequence[Feed], *, refill: Refill | None = None) -> PassSummary:
        """Fetch, parse and store ``feeds``; the pass's counts. With ``refill`` (claim
        mode), ``refill.window`` stay in flight: each that finishes makes room for one
        more claimed through ``refill.claim(n)``, until nothing more is due."""
        if not feeds:  # nothing due: no event loop, no HTTP client to load
            return PassSummary()
        import asyncio

        asyncio.run(self.fetch(feeds, refill=refill))
        return self.summary()

    async def fetch(self, feeds: Sequence[Feed], *, refill: Refill | None = None) -> None:
        """The fetch stage, watched: a group waiting for slow responses is stored within
        ``GROUP_SECONDS`` all the same, and a stop abandons what is left at its deadline."""
        import asyncio

        loop = asyncio.get_running_loop()
        receive = self._receive_all(feeds) if refill is None else self._receive_claimed(feeds, refill)
        task = asyncio.create_task(receive)
        bound = self.config.settings.daemon.stop_timeout.total_seconds()
        deadline: float | None = None
        failed: BaseException | None = None
        while not task.done():
            await asyncio.wait({task}, timeout=WATCH_SECONDS)
            if self.stopped() and deadline is None:
                deadline = loop.time() + bound
            if not task.done() and self._group_due(loop.time()):
                try:
                    self.store()
                except BaseException as e:  # the store failed: the pass ends, as in _receive_all
                    failed = e
            if failed is not None or (deadline is not None and loop.time() >= deadline
                                      and not task.done()):
                # Cancellation lands on an await, never inside a store transaction.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if failed is not None:
            raise failed
        if not task.cancelled():
            task.result()
        # Abandoned at the deadline: what had come in whole is stored.
        self.store()

    async def _receive_all(self, feeds: Sequence[Feed]) -> None:
        import asyncio
        from contextlib import aclosing

        from aggregator.fetch.decide import plan
        from aggregator.fetch.http import Fetcher

        loop = asyncio.get_running_loop()
        self.total = len(feeds)
        by_id = {f.id: f for f in feeds}
        requests = [plan(f, self.now(), self.settings) for f in feeds]
        async with Fetcher(self.settings) as fetcher, \
                aclosing(fetcher.fetch_all(requests)) as responses:
            async for response in responses:
                feed = by_id[response.feed_id]
                at = self.now()
                parsed = await self.parse(feed, response, at)
                self.add(Received(feed, response, parsed, at), loop.time())
                if self._group_due(loop.time()):
                    self.store()
        self.store()

    async def _receive_claimed(self, feeds: Sequence[Feed], refill: Refill) -> None:
        """Claim mode: ``refill.window`` fetches in flight, refilled as each finishes, so
        daemons sharing a database take the due feeds at the pace they fetch them, and
        a slow daemon (or a slow host) holds only what it is fetching. The claims run on
        the loop thread between group commits (both synchronous), never inside one.
        The fetcher's own limits still hold (``per_host``, ``concurrency``)."""
        import asyncio

        from aggregator.fetch.decide import plan
        from aggregator.fetch.http import Fetcher

        loop = asyncio.get_running_loop()
        window = refill.window
        flying: dict[asyncio.Task[FetchResponse], Feed] = {}
        async with Fetcher(self.settings) as fetcher:

            def launch(batch: Sequence[Feed]) -> None:
                self.total += len(batch)
                for feed in batch:
                    request = plan(feed, self.now(), self.settings)
                    flying[asyncio.ensure_future(fetcher.fetch(request))] = feed

            launch(feeds)
            more = len(feeds) >= window  # fewer: nothing more was due when the pass began
            try:
                while flying:
                    done, _ = await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        feed = flying.pop(task)
                        response = task.result()  # a feed's failure is a response; a bug raises
                        at = self.now()
                        parsed = await self.parse(feed, response, at)
                        self.add(Received(feed, response, parsed, at), loop.time())
                        if self._group_due(loop.time()):
                            self.store()
                    wanted = window - len(flying)
                    if more and wanted > 0 and not self.stopped():
                        claimed = refill.claim(wanted)
                        more = len(claimed) == wanted
                        launch(claimed)
            finally:
                for task in flying:
                    task.cancel()
                if flying:
                    await asyncio.wait(flying)
        self.store()

    # -- parse --------------------------------------------------------------------------

    async def parse(self, feed: Feed, response: FetchResponse, at: datetime) -> ParsedFeed | None:
        """The response's entries, normalized; None when there is nothing to read (a 304,
        a failure, an unchanged body)."""
        from aggregator.fetch.decide import needs_parse

        if not needs_parse(feed, response) or response.body is None:
            return None
        import asyncio

        # Here, not above: a pass of 304s never loads the parsers (~35 ms).
        from aggregator.parse.feeds import parse_feed

        # A feed seen before: its stored entries are not normalized again.
        known = self.db.raw_hashes(feed.id) if feed.last_success_at else ()
        budget = self.config.settings.fetch.parse_cpu_budget.total_seconds()
        if len(response.body) <= PARSE_ON_LOOP_BYTES:
            return parse_feed(response.body, at, url=response.final_url,
                              headers=response.headers, cpu_budget=budget, known=known)
        # A large document in a worker thread: the loop keeps reading other responses (lxml
        # and nh3 release the GIL in places), so a feed that is slow to parse never makes
        # another's server look slow; the budget bounds it.
        return await asyncio.to_thread(
            parse_feed, response.body, at, url=response.final_url, headers=response.headers,
            cpu_budget=budget, known=known)

    # -- store --------------------------------------------------------------------------

    def add(self, received: Received, loop_time: float) -> None:
        """A response joins the group waiting to be stored."""
        if not self.group:
            self.group_since = loop_time
        self.group.append(received)
        if received.parsed is not None:
            self.group_entries += len(received.parsed.entries)

    def _group_due(self, loop_time: float) -> bool:
        return group_due(len(self.group), self.group_entries, self.group_since, loop_time)

    def store(self) -> None:
        """Store the group: its items, rule tags and new feed states, in one commit.
        A commit per feed cost a third of a cold ingest's storing (bench_ingest), mostly
        the same index pages written to the WAL again each time. Synchronous, so a
        cancellation can never land inside the transaction."""
        if not self.group:
            return
        from aggregator.fetch.decide import decide

        batch = self.group[:]
        self.group.clear()
        self.group_entries = 0
        store, settings = self.db, self.settings
        outcomes = []
        with store.transaction():
            for feed, response, parsed, at in batch:
                new_items = updated = tags = 0
                if parsed is not None and parsed.entries:
                    result = store.save_entries(feed, parsed.entries, at)
                    if parsed.raw_hashes:
                        store.remember_raw_hashes(feed.id, list(zip(
                            (e.key for e in parsed.entries), parsed.raw_hashes, strict=True)))
                    new_items, updated = len(result.new_item_ids), len(result.updated_item_ids)
                    if feed.tags and result.new_item_ids:
                        tags = store.write_rule_tags(
                            [(i, rule_tags(feed)) for i in result.new_item_ids], at)
                decision = decide(feed, response, parsed, new_items, at, settings, self.rand)
                store.update_feed(decision.feed, decision.attempt, settings.attempts_kept)
                outcomes.append((feed, response, decision, new_items, updated, tags))
        if self.on_new is not None and any(o[3] for o in outcomes):
            self.on_new()
        for feed, response, decision, new_items, updated, tags in outcomes:
            self._count(feed, response, decision, new_items, updated, tags)

    def _count(self, feed: Feed, response: FetchResponse, decision: Any, new_items: int,
               updated: int, tags: int) -> None:
        counts = self.counts
        counts["new"] += new_items
        counts["updated"] += updated
        counts["tags"] += tags
        failed = decision.event not in ("ok", "not_modified", "unchanged")
        if decision.event == "ok":
            counts["ok"] += 1
        elif not failed:
            counts["not_modified"] += 1
        else:
            counts["failed"] += 1
            self.failures.append((feed.name, decision.feed.last_error or decision.event))
        if self.events:
            self.events(f"feed {decision.event}", {
                "feed": feed.name, "status": response.status, "new": new_items,
                "updated": updated, "error": decision.feed.last_error if failed else None,
                "next": decision.feed.next_fetch_at.isoformat()
                if decision.feed.next_fetch_at else None})
        self.done += 1
        if self.progress:
            self.progress("fetch", self.done, self.total)

    def summary(self) -> PassSummary:
        c = self.counts
        return PassSummary(
            feeds_ok=c["ok"], feeds_not_modified=c["not_modified"], feeds_failed=c["failed"],
            new_items=c["new"], updated_items=c["updated"], tags_assigned=c["tags"],
            failures=tuple(self.failures))

    # -- classify -----------------------------------------------------------------------

    def classify(self, classifier: Classifier | None = None,
                 notice: Callable[[str], None] | None = None,
                 preloaded: Callable[[], Classifier | None] | None = None) -> int:
        """Tag every pending item. Without ``classifier``, the model is the one
        ``preloaded`` (if it could be), else loaded (or trained at first use), and only
        when something is pending. Returns tags written."""
        if not self.db.items_to_classify(1):
            return 0
        classifier = classifier or (preloaded and preloaded()) \
            or load_classifier(self.config, progress=self.progress, notice=notice)
        return classify_pending(self.db, classifier,
                                batch_size=self.config.settings.classifier.batch_size,
                                progress=self.progress)


class _Preload:
    """The saved model, loaded in a thread while a first fetch is on the network (numpy,
    scipy and the model: ~0.3 s that would otherwise follow the fetch). None from
    ``result()`` when there is no saved model (or it cannot be read): the caller then loads
    or trains it as ever, and reports what went wrong."""

    def __init__(self, config: Config) -> None:
        self.model: Classifier | None = None
        self.thread = threading.Thread(target=self._load, args=(config,), name="aggregator-model")

    def start(self) -> None:
        if self.thread.ident is None:
            self.thread.start()

    def _load(self, config: Config) -> None:
        with contextlib.suppress(Exception):
            self.model = load_classifier(config, train_if_missing=False)

    def result(self) -> Classifier | None:
        if self.thread.ident is None:
            return None
        self.thread.join()
        return self.model
