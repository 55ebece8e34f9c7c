"""A digest as HTML and plain text, from Jinja2 templates the user can override.

Everything from feeds is escaped (autoescape) and cleaned of control characters and
terminal escape sequences (every printed value, in both parts), excerpts are plain text (any markup a feed
slipped into a summary is stripped with nh3 first), and only http(s) links are made
clickable, so no markup or script from a feed reaches the mail. The HTML is a table layout
with inline CSS and no remote images, which is what mail clients render alike. Templates in
``config/templates/`` win over the shipped ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aggregator.safe_text import clean
from aggregator.views import ItemView

SHIPPED_TEMPLATES = Path(__file__).parent / "templates"
UNTAGGED = "other"  # the section for items with no qualifying tag
_MARKUP = re.compile(r"<[a-zA-Z/!?]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Section:
    tag: str
    items: tuple[ItemView, ...]


@dataclass(frozen=True)
class Digest:
    title: str
    generated_at: datetime
    period_start: datetime | None
    period_end: datetime
    sections: tuple[Section, ...]
    focus_tags: tuple[str, ...] = ()  # the subscription's tags: their reasons are shown
    subscription: str = ""  # the [[digest]] name, empty for ad-hoc digests (the demo)
    timezone: str = "UTC"  # dates are shown in the subscription's zone
    note: str = ""  # e.g. that this digest covers several missed ones

    @property
    def item_count(self) -> int:
        return len({i.id for s in self.sections for i in s.items})

    @property
    def items(self) -> tuple[ItemView, ...]:
        return tuple(i for s in self.sections for i in s.items)


def group_by_tag(items: Sequence[ItemView], tags: Sequence[str] | None = None,
                 min_score: float = 0.0, untagged: str | None = None) -> tuple[Section, ...]:
    """Sections by tag, most items first; an item sits in one section only, so a reader sees
    it once: the first of ``tags`` (in the order the subscription lists them, so the most
    specific can come first: ``["russia-iran", "iran"]``) that it carries at ``min_score``,
    or its best-scored tag when no order is given. Items without a qualifying tag are
    dropped, or gathered under ``untagged`` when it is given (a saved query can select by
    feed or text alone)."""
    rank = {t: n for n, t in enumerate(tags or ())}
    sections: dict[str, list[ItemView]] = {}
    seen: set[int] = set()
    for item in items:
        if item.id in seen:
            continue
        seen.add(item.id)
        candidates = [t for t in item.tags if t.score >= min_score and (not tags or t.tag in tags)]
        if not candidates:
            if untagged is not None:
                sections.setdefault(untagged, []).append(item)
            continue
        best = (min(candidates, key=lambda t: rank[t.tag]) if rank
                else max(candidates, key=lambda t: (t.score, t.tag)))
        sections.setdefault(best.tag, []).append(item)
    ordered = sorted(sections.items(), key=lambda kv: (kv[0] == untagged, -len(kv[1]), kv[0]))
    return tuple(Section(tag, tuple(items)) for tag, items in ordered)


def one_line(text: str) -> str:
    """Whitespace folded to single spaces: no CR/LF survives (titles, header values), nor
    any other control character or escape sequence."""
    return _SPACE.sub(" ", clean(text)).strip()


def _printable(value: Any) -> Any:
    """Every value a template prints, cleaned of control characters and escape sequences
    (items stored before normalization stripped them); markup the template built is left."""
    return clean(value) if type(value) is str else value


def excerpt(text: str, limit: int = 240) -> str:
    """About two lines of text, cut at a word."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:") + "…"


def item_text(item: ItemView) -> str:
    """An item's text for the excerpt: its summary, else its content, as plain text.

    Summaries are plain text already; one that still looks like markup is stripped (nh3)
    rather than shown as tags.
    """
    from aggregator.parse.normalize import plain_text

    text = item.summary
    if not text.strip():
        return plain_text(item.content_html)
    return plain_text(text) if _MARKUP.search(text) else text


def safe_url(url: str | None) -> str | None:
    """Only http(s) URLs become links: a feed's javascript: or data: URL is dropped."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if any(c in url for c in "\r\n\t\"'<> "):
        return None
    return url


def format_date(value: datetime, zone: str = "UTC", fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    local = value.astimezone(ZoneInfo(zone)) if zone != "UTC" else value.astimezone(UTC)
    return local.strftime(fmt)


def subject(digest: Digest, limit: int = 140) -> str:
    """'[desk] Fri 20 Nov 2026: 12 items, 3 tags – Lead title…': one line, whatever the feeds
    put in the lead title."""
    n, k = digest.item_count, len(digest.sections)
    day = format_date(digest.period_end, digest.timezone, "%a %d %b %Y")
    name = digest.subscription or digest.title
    head = (f"[{name}] {day}: {n} item{'' if n == 1 else 's'}"
            f"{f', {k} tag' + ('' if k == 1 else 's') if k else ''}")
    if not digest.sections:
        return one_line(head)
    lead = one_line(digest.sections[0].items[0].title)
    room = limit - len(head) - 3
    if room < 10:
        return one_line(head)
    if len(lead) > room:
        lead = lead[:room - 1].rstrip() + "…"
    return one_line(f"{head} – {lead}")


def _environment(override_dir: Path | None) -> Any:
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None and override_dir.is_dir():
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders.append(jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES)))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders),
                             autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True, finalize=_printable)
    env.filters["excerpt"] = excerpt
    env.filters["date"] = format_date
    env.filters["one_line"] = one_line
    env.filters["safe_url"] = safe_url
    env.filters["item_text"] = item_text
    return env


def render(digest: Digest, override_dir: Path | None = None) -> tuple[str, str]:
    """(html, text) of a digest."""
    env = _environment(override_dir)
    context = {"digest": digest, "subject": subject(digest)}
    return (env.get_template("digest.html").render(context),
            env.get_template("digest.txt").render(context))
