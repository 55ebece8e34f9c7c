"""The digest use cases: preview one, send what is due. The CLI and the daemon call these.

Exactly once, per recipient and item: the ``deliveries`` ledger (primary key recipient,
item) is written only after the SMTP server accepted a message, so an item goes to a
recipient once, ever, and a failed send leaves nothing marked and is retried next run.

Several processes may run this against one database: a period is first claimed with a
``digest_runs`` row in status 'sending' (one transaction, before any mail), then marked
'sent' together with the ledger (one transaction). A failure deletes the claim; a claim
older than ``STALE_CLAIM`` belongs to a process that died and may be taken over.

The window left open is the one SMTP leaves to everyone: a process killed after the
server accepted the message but before the ledger commit sends that digest again. The
retry carries the same Message-ID (see ``send.message_id``), so clients show it once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.digest.render import UNTAGGED, Digest, group_by_tag, render, subject
from aggregator.digest.select import (
    Period,
    due_period,
    group_recipients,
    next_run,
    pending_period,
    select_items,
    window_since,
)
from aggregator.errors import ConfigError, DeliveryError, UsageError
from aggregator.views import ItemQuery, ItemView

if TYPE_CHECKING:
    from email.message import EmailMessage

    from aggregator.config import Config, DigestSubscription
    from aggregator.instance import Instance
    from aggregator.store.base import Store

# Longer than any SMTP conversation can take (the timeout is per operation, 30 s by default).
STALE_CLAIM = timedelta(minutes=15)
# Candidates read per digest at most: far above any real day, a guard against a runaway query.
CANDIDATE_CAP = 20_000
_LEDGER_CHUNK = 500  # ids per ledger lookup: well under SQLite's variable limit

Sent = tuple[tuple[str, ...], tuple[int, ...], str | None]


@dataclass(frozen=True)
class DigestOutcome:
    """What happened to one subscription in one run.

    status: sent | empty (nothing new, nothing mailed) | not-due | busy (another process
    holds the period) | failed | dry-run (would send this).
    """

    subscription: str
    status: str
    period: Period | None = None
    items: int = 0
    recipients: tuple[str, ...] = ()
    message_ids: tuple[str, ...] = ()
    next_run: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class _Target:
    """A subscription with its query resolved: what to select, which tags lead."""

    sub: DigestSubscription
    query: ItemQuery
    focus: tuple[str, ...]
    min_score: float


# -- saved queries ---------------------------------------------------------------------

def saved_query(instance: Instance, name: str) -> ItemQuery:
    """A query saved in config/queries.toml (``aggregator query --save NAME``) as the
    filters a digest runs. Its since/until, limit and sort are not used: the digest's
    period and ``max_items`` decide those."""
    from aggregator import saved_queries

    path = instance.queries_file
    shown = instance.display(path)
    if not path.exists():
        raise ConfigError(shown, "", f"the file to exist, with the query [{name}] a digest "
                          "names (save one with 'aggregator query --save NAME ...')",
                          "no such file")
    queries = saved_queries.load_all(instance)  # validates keys and types, one-line errors
    if name not in queries:
        known = ", ".join(sorted(queries)) or "none"
        raise ConfigError(shown, name, f"a saved query [{name}] (saved: {known})",
                          "no such table")
    table = queries[name]
    def strings(key: str) -> tuple[str, ...]:
        return tuple(str(v) for v in table.get(key, ()))

    score = table.get("min_score")
    return ItemQuery(tags=strings("tags"), any_tags=strings("any_tags"),
                     not_tags=strings("not_tags"), sources=strings("sources"),
                     feeds=strings("feeds"), min_score=None if score is None else float(score),
                     search=table.get("search"), limit=None)


def resolve(sub: DigestSubscription, saved: ItemQuery | None) -> _Target:
    """The query a subscription runs.

    Without a saved query: items with any of its ``tags`` scored at least ``min_score``
    (with no tags: items with any tag scored that high). With one: the saved query, and
    the subscription's ``tags`` narrow it when the query names no ``any_tags`` of its own.
    The subscription's tags (else the query's) head the sections and show their reasons.
    """
    tags = tuple(sub.tags)
    if saved is None:
        query = ItemQuery(any_tags=tags, min_score=sub.min_score, limit=None)
        return _Target(sub, query, tags, sub.min_score)
    query = saved._replace(limit=None)
    if tags and not saved.any_tags:
        query = query._replace(any_tags=tags,
                               min_score=saved.min_score if saved.min_score is not None else sub.min_score)
    focus = tags or tuple(dict.fromkeys([*saved.tags, *saved.any_tags]))
    return _Target(sub, query, focus, query.min_score or 0.0)


def _targets(config: Config, names: Sequence[str]) -> list[_Target]:
    """The chosen subscriptions with their queries, all resolved before anything is sent, so
    a missing saved query stops the run before any mail goes out."""
    subs = list(config.settings.digest)
    known = [s.name for s in subs]
    for name in names:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else \
                f" (configured: {', '.join(known) or 'none'})"
            raise UsageError(f"no digest subscription {name!r} in "
                             f"{config.instance.display(config.instance.settings_file)}{hint}")
    if names:
        subs = [s for s in subs if s.name in names]
    if not subs:
        raise UsageError("no [[digest]] subscriptions: add one to "
                         f"{config.instance.display(config.instance.settings_file)}")
    return [resolve(s, saved_query(config.instance, s.query) if s.query else None) for s in subs]


# -- building --------------------------------------------------------------------------


def _delivered(store: Store, recipient: str, ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for i in range(0, len(ids), _LEDGER_CHUNK):
        found |= store.delivered(recipient, ids[i:i + _LEDGER_CHUNK])
    return found


def _candidates(store: Store, target: _Target, period: Period, cutoff: datetime) -> list[ItemView]:
    query = target.query._replace(since=None)
    return store.digest_candidates(query, period.seen_since, cutoff, limit=CANDIDATE_CAP)


def _digest(target: _Target, period: Period, cutoff: datetime, items: Sequence[ItemView],
            now: datetime) -> Digest:
    sub = target.sub
    note = (f"This digest covers {period.missed} scheduled digests missed while the "
            "aggregator was not running." if period.missed > 1 else "")
    return Digest(title=f"{sub.name} digest", generated_at=now, period_start=period.start,
                  period_end=cutoff,
                  sections=group_by_tag(items, target.focus or None, target.min_score,
                                        untagged=UNTAGGED),
                  focus_tags=target.focus, subscription=sub.name, timezone=sub.timezone,
                  note=note)


def compose(config: Config, target: _Target, period: Period, cutoff: datetime,
            recipients: Sequence[str], items: Sequence[ItemView], now: datetime) -> EmailMessage:
    """One digest mail: rendered from the (overridable) templates, headers made safe."""
    from aggregator.digest.send import build_message, message_id

    digest = _digest(target, period, cutoff, items, now)
    html, text = render(digest, config.instance.templates_dir)
    sender = config.settings.smtp.from_
    mid = message_id(target.sub.name, period.end, recipients, [i.id for i in items], sender)
    return build_message(subject=subject(digest), html=html, text=text, sender=sender,
                         to=recipients, list_name=target.sub.name, message_id=mid, now=now)


def _plan(store: Store, target: _Target, period: Period,
          cutoff: datetime) -> list[tuple[tuple[str, ...], tuple[ItemView, ...]]]:
    """Who gets which items: each recipient's own ledger excluded, same items, one mail."""
    candidates = _candidates(store, target, period, cutoff)
    ids = [c.id for c in candidates]
    sub = target.sub
    selections = {r: select_items(candidates, _delivered(store, r, ids), target.focus,
                                  target.min_score, sub.max_items)
                  for r in dict.fromkeys(sub.to)}
    return group_recipients(list(selections), selections)


# -- use cases -------------------------------------------------------------------------


def preview_digest(config: Config, store: Store, name: str | None, since: datetime | None,
                   out: Path | None, now: datetime) -> list[Path]:
    """Write each chosen digest as HTML and text; send nothing, record nothing.

    Without ``since``: what the subscription's next digest holds so far (items already
    delivered to every recipient left out). With it: every matching item first seen since
    then, ledger or not, e.g. to try a template.
    """
    written: list[Path] = []
    targets = _targets(config, [name] if name else [])
    for target in targets:
        sub = target.sub
        if since is not None:
            period = window_since(since, now)
        else:
            period = pending_period(sub, now, store.last_digest(sub.name))
        candidates = _candidates(store, target, period, now)
        exclude: set[int] = set()
        if since is None:
            ids = [c.id for c in candidates]
            sets = [_delivered(store, r, ids) for r in sub.to]
            exclude = set.intersection(*sets) if sets else set()
        items = select_items(candidates, exclude, target.focus, target.min_score, sub.max_items)
        html, text = render(_digest(target, period, now, items, now), config.instance.templates_dir)
        if out is None:
            path = config.instance.var_dir / "digest-preview" / f"{sub.name}.html"
        elif len(targets) > 1:
            path = out.with_name(f"{out.stem}-{sub.name}{out.suffix or '.html'}")
        else:
            path = out if out.suffix else out.with_suffix(".html")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        path.with_suffix(".txt").write_text(text, encoding="utf-8")
        written += [path, path.with_suffix(".txt")]
    return written


def send_digests(config: Config, store: Store, names: Sequence[str] = (), dry_run: bool = False,
                 *, now: datetime, grace: timedelta | None = None) -> list[DigestOutcome]:
    """Send every chosen digest that is due at ``now``; one outcome per subscription.

    ``grace`` (the daemon passes ``[daemon] digest_grace``) lets a scheduled time long past
    go: the next digest covers the gap. The CLI passes none: asked to send, it sends.
    A failure of one subscription does not stop the others; it is in its outcome.
    """
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return [_send_one(config, store, t, dry_run=dry_run, now=now, grace=grace, owner=owner)
            for t in _targets(config, names)]


def _send_one(config: Config, store: Store, target: _Target, *, dry_run: bool, now: datetime,
              grace: timedelta | None, owner: str) -> DigestOutcome:
    from aggregator.digest.send import send_message

    sub = target.sub
    period = due_period(sub, now, store.last_digest(sub.name), grace)
    if period is None:
        return DigestOutcome(sub.name, "not-due", next_run=next_run(sub, now))
    if dry_run:
        plan = _plan(store, target, period, now)
        return DigestOutcome(sub.name, "dry-run", period,
                             items=len({i.id for _, items in plan for i in items}),
                             recipients=tuple(r for rs, items in plan
                                              if items or not sub.skip_empty for r in rs))
    if not store.claim_digest(sub.name, period.end, owner, now, now - STALE_CLAIM):
        return DigestOutcome(sub.name, "busy", period,
                             detail="already sent, or being sent by another process")
    sent: list[Sent] = []
    refused: list[tuple[str, str]] = []
    try:
        # The cut-off is taken before reading: items stored from here on go in the next one.
        for recipients, items in _plan(store, target, period, cutoff=now):
            if not items and sub.skip_empty:
                continue
            msg = compose(config, target, period, now, recipients, items, now)
            result = send_message(config.settings.smtp, msg)
            sent.append((result.accepted, tuple(i.id for i in items), result.message_id))
            refused += result.refused
    except DeliveryError as e:
        store.release_digest(sub.name, period.end, owner, sent, now)
        return DigestOutcome(sub.name, "failed", period, detail=str(e),
                             recipients=tuple(r for rs, _, _ in sent for r in rs))
    except BaseException:
        store.release_digest(sub.name, period.end, owner, sent, now)
        raise
    items_sent = len({i for _, ids, _ in sent for i in ids})
    recipients_sent = tuple(r for rs, _, _ in sent for r in rs)
    message_ids = tuple(m for _, _, m in sent if m)
    if refused:
        # The refused recipients get their items on the next run; the others are in the
        # ledger and get nothing twice.
        store.release_digest(sub.name, period.end, owner, sent, now)
        detail = "; ".join(f"{r}: {reply}" for r, reply in refused)
        return DigestOutcome(sub.name, "failed", period, items_sent, recipients_sent,
                             message_ids, detail=f"the server refused {detail}")
    store.complete_digest(sub.name, period.end, owner, sent, now)
    return DigestOutcome(sub.name, "sent" if sent else "empty", period, items_sent,
                         recipients_sent, message_ids, next_run=next_run(sub, now))
