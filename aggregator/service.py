"""The use cases. The CLI and the daemon call these and nothing below them.

Each function wires the pieces: config -> fetch -> parse -> store -> classify -> query.
Heavy libraries (httpx, feedparser, scikit-learn) are imported inside the functions that
need them, so a query never pays for them.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aggregator.errors import ModelError, UsageError, suggest
from aggregator.timeutil import utcnow
from aggregator.types import ItemToClassify, PassSummary
from aggregator.views import ItemQuery, ItemView, TagScore

if TYPE_CHECKING:
    from aggregator.config import Config
    from aggregator.store.base import Store
    from aggregator.types import Feed

Progress = Callable[[str, int, int], None]  # (what, done, total)
# The fetch pass stores feeds in groups, one commit each: a group is stored once it holds
# this many entries, or once its first feed has waited this long (seconds). Bigger groups
# write each touched index page out less often; their entries wait in memory (~6 MiB).
GROUP_ENTRIES = 2000
GROUP_SECONDS = 0.25
# Items tagged per commit when classifying (in batches of [classifier] batch_size).
CLASSIFY_COMMIT_ITEMS = 2500
EventSink = Callable[[str, dict[str, Any]], None]  # (event, fields): the daemon logs them


# -- classification --------------------------------------------------------------------


@dataclass
class Classifier:
    """The current model, loaded (or trained from the starter corpus at first use)."""

    model: Any  # classifiers.model.TagModel

    @property
    def version(self) -> str:
        return str(self.model.version)

    def predict_raw(self, items: Sequence[ItemToClassify]) -> list[Any]:
        from classifiers.model import Doc

        return list(self.model.predict([
            Doc(id=str(i.id), title=i.title, text=i.text, categories=i.categories,
                feed_tags=i.feed_tags, url=i.url) for i in items]))

    def thresholds(self) -> dict[str, float]:
        return {t: float(s.get("threshold", 0.5)) for t, s in cv_per_tag(self.model.meta).items()}

    def tag(self, items: Sequence[ItemToClassify]) -> list[tuple[int, list[TagScore]]]:
        out = []
        version = self.version
        for item, p in zip(items, self.predict_raw(items), strict=True):
            scores, reasons = p.scores, p.reasons
            out.append((item.id, [
                TagScore(tag, float(scores[tag]), "model", version, tuple(reasons.get(tag, ())))
                for tag in p.labels]))
        return out


def cv_per_tag(meta: dict[str, Any]) -> dict[str, dict[str, float]]:
    """A model's cross-validated scores per tag, from its metadata."""
    cv = meta.get("cv") if isinstance(meta, dict) else None
    per_tag = cv.get("per_tag") if isinstance(cv, dict) else None
    return {t: s for t, s in (per_tag or {}).items() if isinstance(s, dict)}


def models_dir(config: Config) -> Any:
    return config.instance.resolve(config.settings.classifier.models_dir)


FIRST_TRAINING = "training the default model from the starter corpus (first use, about 10 s)..."


def load_classifier(config: Config, *, train_if_missing: bool = True,
                    progress: Progress | None = None,
                    notice: Callable[[str], None] | None = None) -> Classifier:
    """The current model; trained from the starter corpus at first use, which takes a while:
    ``notice`` (the CLI prints it on stderr) is told before."""
    from classifiers.model_store import load_current

    directory = models_dir(config)
    try:
        model = load_current(directory)
    except Exception as e:  # a corrupt or incompatible model file
        raise ModelError(f"cannot load the model in {directory}: {e}; retrain it with "
                         "'aggregator train' or pick another with 'aggregator models use'") from None
    if model is None:
        if not train_if_missing:
            raise ModelError(f"no model in {directory}: train one with 'aggregator train'")
        if notice is not None:
            notice(FIRST_TRAINING)
        model = train_default(config, progress=progress).model
    return Classifier(model)


@dataclass(frozen=True)
class TrainResult:
    model: Any
    path: Any
    examples: int


def train_default(config: Config, *, extra: Sequence[Any] = (), use_starter: bool = True,
                  use_labels: bool = True, out: Any = None,
                  progress: Progress | None = None, store: Store | None = None,
                  background: int = 0) -> TrainResult:
    """Train from the starter corpus, extra JSONL files and the users' labels; save it.

    `background`: up to that many of the instance's stored items (the last 90 days) join the
    fits as sure negatives of every tag whose evidence they lack (classifiers.train.train)."""
    from pathlib import Path

    from classifiers.model_store import save_version
    from classifiers.train import STARTER_CONFIG, read_jsonl, starter_examples, train

    examples: list[Any] = list(starter_examples()) if use_starter else []
    for path in [*config.settings.classifier.extra_data, *extra]:
        try:
            examples += read_jsonl(config.instance.resolve(str(path)))
        except UnicodeDecodeError as e:
            raise UsageError(f"training data: {path}: not UTF-8 text (byte {e.start})") from None
        except OSError as e:
            raise UsageError(f"training data: {path}: {e.strerror or e}") from None
        except ValueError as e:  # classifiers.train.DataError names the file and line
            raise UsageError(f"training data: {e}") from None
    if use_labels and store is not None:
        examples += user_label_examples(store)
    if not examples:
        raise UsageError("no training data: give --data FILE.jsonl or drop --no-starter")
    # With the starter corpus, its own CV-chosen settings; any other corpus, the general ones.
    model = train(examples, config.taxonomy if use_starter else None, progress=progress,
                  config=STARTER_CONFIG if use_starter else None,
                  background=background_docs(store, background) if store is not None else ())
    if out is not None:
        model.save(Path(out))
        return TrainResult(model, Path(out), len(examples))
    path = save_version(model, models_dir(config), make_current=True)
    return TrainResult(model, path, len(examples))


def background_docs(store: Store, limit: int, days: int = 90) -> list[Any]:
    """Up to `limit` stored items of the last `days`, as documents to train beside."""
    from classifiers.model import Doc

    docs: list[Any] = []
    if limit <= 0:
        return docs
    for batch in store.items_for_reclassify(utcnow() - timedelta(days=days), 1000):
        docs += [Doc(id=f"item-{i.id}", title=i.title, text=i.text, categories=i.categories,
                     feed_tags=i.feed_tags, url=i.url) for i in batch]
        if len(docs) >= limit:
            break
    return docs[:limit]


def user_label_examples(store: Store) -> list[Any]:
    """Users' labels as training rows: the labels they set, plus the model's tags they kept."""
    from classifiers.model import Example

    rows = []
    for item, labels in store.labelled_examples():
        view = store.get_item(item.id)
        current = {t.tag for t in view.tags} if view else set()
        tags = (current | {t for t, v in labels.items() if v}) - {t for t, v in labels.items()
                                                                   if not v}
        rows.append(Example(id=f"item-{item.id}", title=item.title, text=item.text,
                            categories=item.categories, feed_tags=item.feed_tags, url=item.url,
                            labels=tuple(sorted(tags))))
    return rows


def classify_pending(store: Store, classifier: Classifier, *, batch_size: int = 300,
                     now: datetime | None = None, progress: Progress | None = None,
                     stop: threading.Event | None = None, owner: str | None = None,
                     lease: timedelta = timedelta(minutes=2)) -> int:
    """Tag every item that is new or changed since it was last tagged. Returns tags written.
    ``stop`` (the daemon's SIGTERM) ends it between batches; the rest stay pending.
    ``owner`` (a daemon) claims each batch under ``lease``, so daemons sharing a database
    classify each item once."""
    written = 0
    done = 0
    after = 0
    while not (stop and stop.is_set()):
        # Several batches a commit: a commit writes out every page of the (tag, score)
        # index that its tags touched, which for a batch of a few hundred items is most of
        # that index; committing every 2,500 items instead of every 500 wrote 203k tags
        # in 0.77 s instead of 1.07.
        # A kill loses only uncommitted tags: those items are still pending, and the next
        # run tags them.
        with store.transaction():
            pending = 0
            while pending < CLASSIFY_COMMIT_ITEMS and not (stop and stop.is_set()):
                batch = (store.items_to_classify(batch_size, after) if owner is None else
                         store.claim_items_to_classify(batch_size, owner, now or utcnow(), lease))
                if not batch:
                    return written
                after = batch[-1].id
                written += store.write_model_tags(classifier.tag(batch), now or utcnow())
                done += len(batch)
                pending += len(batch)
                if progress:
                    progress("classify", done, 0)
    return written


def reclassify(store: Store, classifier: Classifier, *, since: datetime | None = None,
               batch_size: int = 300, progress: Progress | None = None) -> int:
    written = 0
    for batch in store.items_for_reclassify(since, batch_size):
        written += store.write_model_tags(classifier.tag(batch), utcnow())
        if progress:
            progress("reclassify", written, 0)
    return written


# -- fetching --------------------------------------------------------------------------


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
    the defaults (claims of ``[daemon] claim_size`` 10, 60 s) that is 2 minutes: a dead
    daemon's feeds are due again within that, and a live one stores its claim well inside."""
    import math

    fetch = config.settings.fetch
    waves = math.ceil((feeds or len(config.feeds) or 1) / fetch.concurrency) + 1
    return waves * fetch.total_timeout


def fetch_pass(config: Config, store: Store, *, names: Sequence[str] = (),
               all_feeds: bool = False, now: Callable[[], datetime] = utcnow,
               classifier: Classifier | None = None, classify: bool = True,
               progress: Progress | None = None, rand: random.Random | None = None,
               limit: int | None = None, stop: threading.Event | None = None,
               events: EventSink | None = None, claim_owner: str | None = None,
               notice: Callable[[str], None] | None = None) -> PassSummary:
    """One pass: fetch due (or named, or all) feeds, store what is new, tag it.

    ``stop`` (set by the daemon on SIGTERM) ends the pass early: fetches under way get
    ``[daemon] stop_timeout`` to finish, then are abandoned; an abandoned feed keeps its old
    state and stays due, so the next run fetches it again.

    ``claim_owner`` (the daemon passes hostname:pid) claims the due feeds under a lease
    instead of just reading them: several daemons on one PostgreSQL database then never
    fetch the same feed at once, and a dead daemon's feeds are due again when it runs out.
    """
    import asyncio

    store.sync_feeds(config.feeds, now())
    feeds = select_feeds(store, config, names, all_feeds, now(), claim_owner=claim_owner,
                         limit=limit)
    if limit is not None:
        feeds = feeds[:limit]
    first = any(f.last_success_at is None for f in feeds)
    if feeds:
        from aggregator.fetch import start_loading

        # A feed never fetched brings a body to parse: its parsers load in the same thread.
        start_loading(config.settings.fetch.transport, parse=first,
                      tls=any(f.url.startswith("https:") for f in feeds))
    # A first fetch: the model loads as soon as there is something new to classify.
    preloaded = _Preload(config) if first and classify and classifier is None else None
    started = now()
    bound = config.settings.daemon.stop_timeout.total_seconds()
    summary = asyncio.run(_fetch_feeds(config, store, feeds, now, progress,
                                       rand or random.Random(), stop, bound, events,
                                       preloaded.start if preloaded else None))
    tags = 0
    if classify and not (stop and stop.is_set()) and store.items_to_classify(1):
        classifier = classifier or (preloaded and preloaded.result()) \
            or load_classifier(config, progress=progress, notice=notice)
        tags = classify_pending(store, classifier, batch_size=config.settings.classifier.batch_size,
                                progress=progress)
    from aggregator.timeutil import to_iso

    # Any pass counts for `status`, the CLI's as the daemon's.
    store.set_meta("last_pass", to_iso(now()))
    return replace(summary, tags_assigned=summary.tags_assigned + tags, started_at=started,
                   finished_at=now())


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


async def _fetch_feeds(config: Config, store: Store, feeds: Sequence[Feed],
                       now: Callable[[], datetime], progress: Progress | None,
                       rand: random.Random, stop: threading.Event | None, bound: float,
                       events: EventSink | None,
                       on_new: Callable[[], None] | None = None) -> PassSummary:
    if not feeds:  # nothing due: no HTTP client to load
        return PassSummary()
    import asyncio
    from contextlib import aclosing

    from aggregator.fetch.decide import decide, needs_parse, plan
    from aggregator.fetch.http import Fetcher

    settings = config.settings.fetch.to_settings()
    budget = config.settings.fetch.parse_cpu_budget.total_seconds()
    by_id = {f.id: f for f in feeds}
    requests = [plan(f, now(), settings) for f in feeds]
    counts = {"ok": 0, "not_modified": 0, "failed": 0, "new": 0, "updated": 0, "tags": 0}
    failures: list[tuple[str, str]] = []

    # Responses parsed but not stored yet: (feed, response, parsed, time it came), stored
    # together by flush().
    pending: list[tuple[Feed, Any, Any, datetime]] = []
    pending_since = 0.0  # loop time when the first pending response came
    done = 0
    loop = asyncio.get_running_loop()

    def flush() -> None:
        """Store the pending feeds: their items, rule tags and new states, in one commit.
        A commit per feed cost a third of a cold ingest's storing (bench_ingest), mostly
        the same index pages written to the WAL again each time. Synchronous, so a
        cancellation can never land inside the transaction."""
        nonlocal done
        if not pending:
            return
        batch = pending[:]
        pending.clear()
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
                decision = decide(feed, response, parsed, new_items, at, settings, rand)
                store.update_feed(decision.feed, decision.attempt, settings.attempts_kept)
                outcomes.append((feed, response, decision, new_items, updated, tags))
        if on_new is not None and any(o[3] for o in outcomes):
            on_new()
        for feed, response, decision, new_items, updated, tags in outcomes:
            counts["new"] += new_items
            counts["updated"] += updated
            counts["tags"] += tags
            if decision.event == "ok":
                counts["ok"] += 1
            elif decision.event in ("not_modified", "unchanged"):
                counts["not_modified"] += 1
            else:
                counts["failed"] += 1
                failures.append((feed.name, decision.feed.last_error or decision.event))
            if events:
                events(f"feed {decision.event}", {
                    "feed": feed.name, "status": response.status, "new": new_items,
                    "updated": updated, "error": decision.feed.last_error
                    if decision.event not in ("ok", "not_modified", "unchanged") else None,
                    "next": decision.feed.next_fetch_at.isoformat()
                    if decision.feed.next_fetch_at else None})
            done += 1
            if progress:
                progress("fetch", done, len(feeds))

    def stale() -> bool:
        return bool(pending) and loop.time() - pending_since >= GROUP_SECONDS

    async def consume() -> None:
        nonlocal pending_since
        async with Fetcher(settings) as fetcher, aclosing(fetcher.fetch_all(requests)) as responses:
            async for response in responses:
                feed = by_id[response.feed_id]
                at = now()
                parsed = None
                if needs_parse(feed, response) and response.body is not None:
                    # Here, not above: a pass of 304s never loads the parsers (~35 ms).
                    from aggregator.parse.feeds import parse_feed

                    # A feed seen before: its stored entries are not normalized again.
                    known = store.raw_hashes(feed.id) if feed.last_success_at else ()
                    # In a worker thread: the loop keeps reading other responses (lxml and
                    # nh3 release the GIL in places), so a feed that is slow to parse never
                    # makes another's server look slow; the budget bounds it.
                    parsed = await asyncio.to_thread(
                        parse_feed, response.body, at, url=response.final_url,
                        headers=response.headers, cpu_budget=budget, known=known)
                if not pending:
                    pending_since = loop.time()
                pending.append((feed, response, parsed, at))
                entries = sum(len(p.entries) for _, _, p, _ in pending if p is not None)
                if entries >= GROUP_ENTRIES or stale():
                    flush()
        flush()

    task = asyncio.create_task(consume())
    deadline: float | None = None
    failed: BaseException | None = None
    while not task.done():
        await asyncio.wait({task}, timeout=0.1)
        if stop is not None and stop.is_set() and deadline is None:
            deadline = loop.time() + bound
        if not task.done() and stale():
            # Responses coming slowly: what came is stored within GROUP_SECONDS all the same.
            try:
                flush()
            except BaseException as e:  # the store failed: the pass ends, as in consume()
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
    flush()
    return PassSummary(
        feeds_ok=counts["ok"], feeds_not_modified=counts["not_modified"],
        feeds_failed=counts["failed"], new_items=counts["new"], updated_items=counts["updated"],
        tags_assigned=counts["tags"], failures=tuple(failures))


def rule_tags(feed: Feed) -> list[TagScore]:
    """The tags a feed's declaration implies, for each of its new items."""
    return [TagScore(t, 1.0, "rule", None, (f"feed {feed.name} is tagged {t}",)) for t in feed.tags]


# -- reading ---------------------------------------------------------------------------


def check_tags(names: Sequence[str], known: Sequence[str]) -> None:
    for name in names:
        if name not in known:
            raise UsageError(f"unknown tag {name!r}{suggest(name, known)}")


def query(store: Store, q: ItemQuery) -> list[ItemView]:
    return store.query_items(q)


def demo_listing(store: Store, focus: str = "russia-iran", limit: int = 60) -> list[ItemView]:
    """The demo's table: pieces on the focus relationship first (by score), then the rest."""
    top = store.query_items(ItemQuery(tags=(focus,), sort="score", limit=None))
    rest = store.query_items(ItemQuery(not_tags=(focus,), limit=None))
    return [*top, *rest][:limit]


# -- labels ----------------------------------------------------------------------------


def label_item(store: Store, item_id: int, add: Sequence[str], remove: Sequence[str],
               known: Sequence[str], now: datetime) -> None:
    check_tags([*add, *remove], known)
    if store.get_item(item_id) is None:
        raise UsageError(f"no item with id {item_id}")
    store.set_labels(item_id, add, remove, now)


def uncertain_items(store: Store, classifier: Classifier, n: int, tag: str | None = None, *,
                    pool: int = 5000,
                    now: datetime | None = None) -> list[tuple[ItemView, str, float]]:
    """The (item, tag) pairs the model is least sure of: scores nearest each tag's threshold,
    among recent items nobody labelled yet (uncertainty sampling)."""
    from datetime import timedelta

    labelled = {item.id for item, _ in store.labelled_examples()}
    since = (now or utcnow()) - timedelta(days=30)
    candidates: list[ItemToClassify] = []
    for batch in store.items_for_reclassify(since, 2000):
        candidates += [i for i in batch if i.id not in labelled]
        if len(candidates) >= pool:
            break
    if not candidates:
        return []
    thresholds = classifier.thresholds()
    scored: list[tuple[float, int, str, float]] = []
    docs = classifier.predict_raw(candidates)
    for item, p in zip(candidates, docs, strict=True):
        for t, score in p.scores.items():
            if tag and t != tag:
                continue
            scored.append((abs(score - thresholds.get(t, 0.5)), item.id, t, score))
    scored.sort()
    picked: list[tuple[int, str, float]] = []
    seen: set[int] = set()
    for _, item_id, t, score in scored:
        if item_id in seen:
            continue
        seen.add(item_id)
        picked.append((item_id, t, score))
        if len(picked) == n:
            break
    views = {v.id: v for v in (store.get_item(i) for i, _, _ in picked) if v}
    return [(views[i], t, s) for i, t, s in picked if i in views]


# -- status ----------------------------------------------------------------------------


def status(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """What `aggregator status` shows: daemon, feeds, items and tags today, model, digests."""
    from datetime import timedelta

    from aggregator.digest.select import next_run
    from aggregator.lockfile import lock_path, running_daemon
    from aggregator.timeutil import from_iso, to_iso

    path = lock_path(config.database_url)
    holder = running_daemon(path) if path else None
    daemon: dict[str, Any] = {"running": holder is not None}
    if holder is not None:
        daemon["pid"] = holder.pid
        daemon["uptime_s"] = int((now - from_iso(holder.started)).total_seconds())
    # Every daemon (several on PostgreSQL) leaves a heartbeat at each poll.
    fresh = now - 3 * config.settings.daemon.poll_interval - timedelta(minutes=5)
    daemons = []
    for key, value in store.meta_with_prefix("daemon:").items():
        seen, _, since = value.partition(" ")
        if from_iso(seen) >= fresh:
            daemons.append({"owner": key[len("daemon:"):], "last_seen": seen, "started": since})
    if daemons and holder is None and path is None:
        daemon["running"] = True
    daemon["daemons"] = sorted(daemons, key=lambda d: d["owner"])
    daemon["last_pass"] = store.get_meta("last_pass")
    feeds = store.feeds()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    counts = store.tag_counts(midnight, now)
    model: dict[str, Any] = {"version": None}
    try:
        from classifiers.model_store import load_current

        current = load_current(models_dir(config))
        if current is not None:
            cv = current.meta.get("cv", {})
            model = {"version": current.version,
                     "cv_micro_f1": cv.get("micro_f1"), "cv_macro_f1": cv.get("macro_f1"),
                     "cv_f1": {t: round(s.get("f1", 0.0), 3)
                               for t, s in cv_per_tag(current.meta).items()}}
    except Exception as e:  # a broken model file is a status to show, not a crash
        model = {"version": None, "error": str(e)}
    digests = {}
    for sub in config.settings.digest:
        last = store.last_digest(sub.name)
        upcoming = next_run(sub, now)
        digests[sub.name] = {"last_sent_period_end": to_iso(last) if last else None,
                             "next": to_iso(upcoming) if upcoming else None}
    return {
        "daemon": daemon,
        "feeds": {
            "active": len(feeds),
            "due": sum(1 for f in feeds if f.enabled and (f.next_fetch_at is None
                                                           or f.next_fetch_at <= now)),
            "failing": sum(1 for f in feeds if f.enabled and f.consecutive_failures),
            "disabled": sum(1 for f in feeds if not f.enabled),
        },
        "items": {"total": store.count_items(),
                  "today": store.count_items_since(midnight)},
        "tags_today": {c.tag: c.count for c in counts},
        "model": model,
        "digests": digests,
    }
