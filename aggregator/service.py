"""The use cases. The CLI and the daemon call these and nothing below them.

Each function wires the pieces: config -> fetch -> parse -> store -> classify -> query; the
ingest pipeline itself is ``aggregator.ingest``, classification ``aggregator.classify``.
Heavy libraries (httpx, feedparser, scikit-learn) are imported inside the functions that
need them, so a query never pays for them.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

# The classification use cases and the pipeline's own names, here as ever for the
# callers of the service layer.
from aggregator.classify import (
    CLASSIFY_COMMIT_ITEMS,
    FIRST_TRAINING,
    Classifier,
    Progress,
    TrainResult,
    classify_pending,
    cv_per_tag,
    load_classifier,
    models_dir,
    reclassify,
    train_default,
    user_label_examples,
)
from aggregator.errors import UsageError, suggest
from aggregator.ingest import (
    GROUP_ENTRIES,
    GROUP_SECONDS,
    EventSink,
    Ingest,
    lease_for,
    rule_tags,
    select_feeds,
)
from aggregator.timeutil import utcnow
from aggregator.types import ItemToClassify, PassSummary
from aggregator.views import ItemQuery, ItemView

if TYPE_CHECKING:
    from aggregator.config import Config
    from aggregator.store.base import Store

__all__ = [
    "CLASSIFY_COMMIT_ITEMS", "FIRST_TRAINING", "GROUP_ENTRIES", "GROUP_SECONDS", "Classifier",
    "EventSink", "Progress", "TrainResult", "check_tags", "classify_pending", "cv_per_tag",
    "demo_listing", "fetch_pass", "label_item", "lease_for", "load_classifier",
    "migrate_to_postgres", "models_dir",
    "query", "reclassify", "rule_tags", "select_feeds", "status", "train_default",
    "uncertain_items", "user_label_examples",
]


# -- fetching --------------------------------------------------------------------------


def fetch_pass(config: Config, store: Store, *, names: Sequence[str] = (),
               all_feeds: bool = False, now: Callable[[], datetime] = utcnow,
               classifier: Classifier | None = None, classify: bool = True,
               progress: Progress | None = None, rand: random.Random | None = None,
               limit: int | None = None, stop: threading.Event | None = None,
               events: EventSink | None = None, claim_owner: str | None = None,
               notice: Callable[[str], None] | None = None) -> PassSummary:
    """One pass: fetch due (or named, or all) feeds, store what is new, tag it
    (``aggregator.ingest.Ingest``: its stages and state).

    ``stop`` (set by the daemon on SIGTERM) ends the pass early: fetches under way get
    ``[daemon] stop_timeout`` to finish, then are abandoned; an abandoned feed keeps its old
    state and stays due, so the next run fetches it again.

    ``claim_owner`` (the daemon passes hostname:pid) claims the due feeds under a lease
    instead of just reading them: several daemons on one PostgreSQL database then never
    fetch the same feed at once, and a dead daemon's feeds are due again when it runs out.
    """
    pipeline = Ingest(config, store, now=now, rand=rand, progress=progress, stop=stop,
                      events=events)
    return pipeline.run(names=names, all_feeds=all_feeds, limit=limit, claim_owner=claim_owner,
                        classifier=classifier, classify=classify, notice=notice)


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


# -- the database ------------------------------------------------------------------------


def migrate_to_postgres(instance: Any, to_url: str, from_url: str | None = None, *,
                        batch: int = 5000, progress: Progress | None = None) -> tuple[Any, list[Any]]:
    """Copy the instance's SQLite database (or ``from_url``) into the empty PostgreSQL
    database at ``to_url``, in one transaction: (the SQLite path, rows copied per table)."""
    from aggregator.store import POSTGRESQL, SQLITE, display_url

    source_url = instance.absolute_database_url(from_url or instance.database_url())
    if not SQLITE.matches(source_url):
        raise UsageError(f"the database to copy must be SQLite (sqlite:///PATH), not "
                         f"{display_url(source_url)}; pass --from sqlite:///PATH")
    if not POSTGRESQL.matches(to_url):
        raise UsageError(f"--to must be a postgresql:// URL, not {to_url!r}")
    path = SQLITE.path(source_url)
    if not SQLITE.exists(source_url):
        raise UsageError(f"no SQLite database at {path} to copy")
    from aggregator.store.postgres import PostgresStore
    from aggregator.store.sqlite import SQLiteStore
    from aggregator.store.transfer import copy_sqlite

    with SQLiteStore(str(path)) as source, PostgresStore(to_url) as target:
        return path, copy_sqlite(source, target, batch=batch, progress=progress)


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
