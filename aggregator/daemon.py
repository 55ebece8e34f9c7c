"""``aggregator daemon``: APScheduler jobs over the same service functions as the CLI.

The fetch state in the database is the schedule: a poll job claims the feeds that are due
and fetches them in batches. Each job opens its own store connection, so jobs in different
threads never share a transaction. Classification runs as its own job, off the fetch
loop, so a large batch or a training run never stalls fetching.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.errors import AggregatorError
from aggregator.instance import Instance
from aggregator.lockfile import DaemonLock, lock_path
from aggregator.logs import event
from aggregator.timeutil import to_iso, utcnow

log = logging.getLogger("aggregator")
# A job failing the same way again is logged at most this often (with the count between),
# so a fault lasting days does not rotate every useful line out of the log.
REPEAT_LOG_EVERY = timedelta(minutes=10)
# How long a batch of pending items stays claimed: classifying one takes well under a second.
CLASSIFY_LEASE = timedelta(minutes=2)


@dataclass
class _Failing:
    """A job failing the same way since ``since``: ``count`` runs, last logged at ``logged``."""

    error: str
    since: datetime
    count: int = 0
    logged: datetime | None = None


# -- the daemon ----------------------------------------------------------------------------------


class Daemon:
    def __init__(self, instance: Instance, *, clock: Callable[[], datetime] = utcnow) -> None:
        from aggregator.config import load_config

        self.instance = instance
        self.clock = clock
        self.config = load_config(instance)
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        # The model in use and the `current` pointer it was loaded for: reloaded only when
        # the pointer moves (a retrain, 'aggregator models use'), never per poll.
        self._model: tuple[str | None, Any] | None = None  # (pointer, Classifier): one swap
        self._failures: dict[str, _Failing] = {}
        # This daemon's feed leases a failed pass left behind: given back by the next poll.
        self._leases_left = False
        self._lock: DaemonLock | None = None
        self.scheduler: Any = None
        # Who holds a feed's lease (and the retraining lease): unique across machines.
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.started = to_iso(clock())

    @contextlib.contextmanager
    def _store(self) -> Iterator[Any]:
        from aggregator.store import open_store

        store = open_store(self.config.database_url,
                           busy_timeout=self.config.settings.database.busy_timeout.total_seconds())
        try:
            yield store
        finally:
            store.close()

    def _guard(self, name: str, job: Callable[[], None]) -> Callable[[], None]:
        """A failing job is logged and retried at its next run; it never stops the daemon."""

        def run() -> None:
            if self.stop_event.is_set():
                return
            try:
                job()
            except AggregatorError as e:
                self._failed(name, str(e), traceback=False)
            except Exception as e:  # the daemon outlives any one job
                self._failed(name, f"{type(e).__name__}: {e}", traceback=True)
            else:
                failing = self._failures.pop(name, None)
                if failing is not None:
                    event(log, f"{name} recovered", {"failures": failing.count,
                                                     "since": to_iso(failing.since)})

        return run

    def _failed(self, name: str, error: str, *, traceback: bool) -> None:
        now = self.clock()
        failing = self._failures.get(name)
        if failing is None or failing.error != error:
            failing = self._failures[name] = _Failing(error, now)
        failing.count += 1
        if failing.logged is not None and now - failing.logged < REPEAT_LOG_EVERY:
            return
        fields: dict[str, Any] = {"error": error}
        if failing.count > 1:
            fields.update(failures=failing.count, since=to_iso(failing.since))
        # A traceback the first time says where; repeating it says nothing more.
        log.error(f"{name} failed", exc_info=traceback and failing.count == 1,
                  extra={"fields": fields})
        failing.logged = now

    # jobs ---------------------------------------------------------------------------------

    def poll(self) -> None:
        from aggregator.service import fetch_pass

        # claim_size feeds in flight, one more claimed as each finishes: daemons sharing a
        # database take the due feeds at the pace they fetch them, instead of the first to
        # poll taking them all. A pass takes what was due when it began; the next takes
        # what came due meanwhile.
        batch = self.config.settings.daemon.claim_size
        with self._store() as store:
            if self._leases_left:
                # A pass that failed half-way (database locked, disk full) left the feeds it
                # claimed leased to us: they are due again now, not when the lease runs out.
                store.release_leases(self.owner)
                self._leases_left = False
            while not self.stop_event.is_set():
                self._leases_left = True
                # Claimed, not just read: daemons sharing a PostgreSQL database split the feeds.
                summary = fetch_pass(self.config, store, classify=False, limit=batch,
                                     now=self.clock, stop=self.stop_event, claim_owner=self.owner,
                                     events=lambda name, fields: event(
                                         log, name, fields,
                                         logging.WARNING if fields.get("error") else logging.INFO))
                self._leases_left = False
                fetched = summary.feeds_ok + summary.feeds_not_modified + summary.feeds_failed
                store.set_meta("last_pass", to_iso(self.clock()))
                # A heartbeat per daemon: `status` finds the daemons sharing a database by it.
                store.set_meta(f"daemon:{self.owner}", f"{to_iso(self.clock())} {self.started}")
                if fetched:
                    event(log, "pass", {"feeds": fetched, "ok": summary.feeds_ok,
                                        "not_modified": summary.feeds_not_modified,
                                        "failed": summary.feeds_failed, "new": summary.new_items,
                                        "updated": summary.updated_items})
                if fetched < batch:
                    return

    def classify(self) -> None:
        from aggregator.service import classify_pending

        with self._store() as store:
            if not store.items_to_classify(1):
                return
            classifier = self._current_classifier()
            items = 0

            def count(_: str, done: int, total: int) -> None:
                nonlocal items
                items = done

            # Claimed batch by batch: daemons sharing a database classify each item once.
            tags = classify_pending(store, classifier, stop=self.stop_event, progress=count,
                                    batch_size=self.config.settings.daemon.batch_size,
                                    owner=self.owner, lease=CLASSIFY_LEASE)
            event(log, "classified", {"items": items, "tags": tags, "model": classifier.version})

    def _current_classifier(self) -> Any:
        """The loaded model while `current` still names it; the new one once it moves."""
        from aggregator.service import load_classifier, models_dir
        from classifiers.model_store import current_version

        pointer = current_version(models_dir(self.config))
        if self._model is None or pointer is None or pointer != self._model[0]:
            classifier = load_classifier(self.config)
            # None: there was no model and load_classifier just trained and saved one.
            self._model = (pointer or current_version(models_dir(self.config)), classifier)
            event(log, "model loaded", {"version": classifier.version})
        return self._model[1]

    def digest(self, names: list[str]) -> None:
        from aggregator.digest.deliver import send_digests

        with self._store() as store:
            # A scheduled time further back than the grace window is left to the next
            # digest, which then covers the gap.
            for outcome in send_digests(self.config, store, names=names, now=self.clock(),
                                        grace=self.config.settings.daemon.digest_grace):
                event(log, "digest", {k: v for k, v in vars(outcome).items()
                                      if isinstance(v, (str, int, float, bool, type(None)))})

    def retrain(self) -> None:
        from aggregator.service import reclassify, train_default

        with self._store() as store:
            labels = len(store.labelled_examples())
            trained_with = int(store.get_meta("labels_at_training") or 0)
            if labels == trained_with:
                return
            # Several daemons on one database: one retrains (the lease outlasts any training
            # run; the others then find labels_at_training up to date).
            if not store.claim_lease("retrain", self.owner, self.clock(), timedelta(hours=2)):
                event(log, "retrain left to another daemon", {})
                return
            result = train_default(self.config, store=store)
            store.set_meta("labels_at_training", str(labels))
            event(log, "retrained", {"version": result.model.version, "examples": result.examples})
            from aggregator.service import Classifier, models_dir
            from classifiers.model_store import current_version

            classifier = Classifier(result.model)
            # The classify job takes the new model as it is, without reading it back.
            self._model = (current_version(models_dir(self.config)), classifier)
            reclassify(store, classifier, batch_size=self.config.settings.daemon.batch_size)

    def maintenance(self) -> None:
        with self._store() as store:
            prune = getattr(store, "prune", None)
            if prune is not None:
                removed = prune(self.clock() - self.config.settings.retention.keep)
                event(log, "pruned", {"items": removed})

    # lifecycle ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        s = self.config.settings
        sched = self.scheduler
        previous = {job.id: getattr(job, "next_run_time", None) for job in sched.get_jobs()}
        for job in sched.get_jobs():
            job.remove()
        every = s.daemon.poll_interval.total_seconds()
        sched.add_job(self._guard("poll", self.poll), IntervalTrigger(seconds=every), id="poll",
                      next_run_time=datetime.now(UTC))
        sched.add_job(self._guard("classify", self.classify), IntervalTrigger(seconds=every),
                      id="classify", next_run_time=datetime.now(UTC) + timedelta(seconds=1))
        for sub in s.digest:
            hour, minute = sub.at.split(":")
            sched.add_job(self._guard(f"digest {sub.name}", self._digest_job(sub.name)),
                          CronTrigger(hour=int(hour), minute=int(minute),
                                      day_of_week=",".join(sub.days), timezone=sub.timezone),
                          id=f"digest:{sub.name}", executor="digests",
                          misfire_grace_time=int(s.daemon.digest_grace.total_seconds()))
        for name, job, interval in (("retrain", self.retrain, s.daemon.retrain_every),
                                    ("maintenance", self.maintenance, timedelta(days=1))):
            # A reload keeps their next run: counted afresh from every SIGHUP, a daily job
            # would never run while reloads come more often than that.
            when: dict[str, Any] = {}
            kept = previous.get(name)
            if kept is not None:
                when["next_run_time"] = min(kept, datetime.now(UTC) + interval)
            sched.add_job(self._guard(name, job),
                          IntervalTrigger(seconds=interval.total_seconds()), id=name, **when)

    def _digest_job(self, name: str) -> Callable[[], None]:
        return lambda: self.digest([name])

    def _catch_up_digests(self) -> None:
        """A digest missed while the daemon was down goes out once now, within the grace
        window; send_digests decides what is due."""
        if self.config.settings.digest:
            self._guard("digest", lambda: self.digest([]))()

    def reload(self) -> None:
        from aggregator.config import load_config

        try:
            config = load_config(self.instance)
        except AggregatorError as e:
            event(log, "reload failed, keeping the old config", {"error": str(e)}, logging.ERROR)
            return
        self.config = config
        self._schedule()
        event(log, "config reloaded", {"feeds": len(config.feeds),
                                       "subscriptions": len(config.settings.digest)})

    def run(self) -> int:
        from apscheduler.events import EVENT_JOB_MISSED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        path = lock_path(self.config.database_url)
        if path is not None:
            self._lock = DaemonLock(path)
            self._lock.acquire(self.clock())
        started = self.clock()
        self.started = to_iso(started)
        with self._store() as store:
            if path is not None:
                # SQLite: this daemon holds the only lock, so leases left are a dead one's.
                store.release_leases()
            store.set_meta("daemon_started", to_iso(started))
            store.set_meta("daemon_pid", str(os.getpid()))
            store.set_meta(f"daemon:{self.owner}", f"{self.started} {self.started}")
        self.scheduler = BackgroundScheduler(
            # Digests get their own thread: a long poll, retraining and maintenance all at
            # once must never push a digest past its time.
            timezone=UTC, executors={"default": ThreadPoolExecutor(4),
                                     "digests": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
        # APScheduler warns each time a poll is still running when its next run comes (by
        # design: a poll works until nothing is due), as bare text on stderr; a run really
        # missed is logged as our own event instead.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self._schedule()
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload_event.set())
        event(log, "daemon started", {"pid": os.getpid(), "feeds": len(self.config.feeds),
                                      "database": self.config.database_url})
        self.scheduler.start()
        self._catch_up_digests()
        try:
            while not self.stop_event.wait(0.2):
                if self.reload_event.is_set():
                    self.reload_event.clear()
                    self.reload()
        finally:
            self._shutdown()
        return 0

    def _on_missed(self, missed: Any) -> None:
        event(log, "job missed", {"job": missed.job_id,
                                  "scheduled": to_iso(missed.scheduled_run_time)},
              logging.WARNING)

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stop_event.set()

    def _shutdown(self) -> None:
        bound = self.config.settings.daemon.stop_timeout.total_seconds()
        event(log, "stopping", {"bound_s": bound})
        self.scheduler.shutdown(wait=False)
        # Jobs see stop_event: a fetch pass finishes or abandons its fetches within the bound.
        deadline = time.monotonic() + bound + 2
        threads = []
        for name in ("default", "digests"):
            pool = getattr(self.scheduler._lookup_executor(name), "_pool", None)
            threads += list(getattr(pool, "_threads", ()))
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in threads if t.is_alive()]
        if not alive:
            # Feeds claimed but not fetched go back now rather than when their lease ends.
            with contextlib.suppress(AggregatorError), self._store() as store:
                store.release_leases(self.owner)
                store.delete_meta(f"daemon:{self.owner}")
        if self._lock is not None:
            self._lock.release()
        event(log, "stopped", {"abandoned_jobs": len(alive)})
        logging.shutdown()
        if alive:
            # Every write is its own transaction: leaving now loses nothing committed.
            os._exit(0)
