"""A digest as HTML and plain text, from Jinja2 templates the user can override.

Everything from feeds is escaped (autoescape) and excerpts are plain text, so no markup
from a feed reaches the mail. Templates in ``config/templates/`` win over the shipped ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aggregator.types import ItemView

SHIPPED_TEMPLATES = Path(__file__).parent / "templates"


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

    @property
    def item_count(self) -> int:
        return len({i.id for s in self.sections for i in s.items})


def group_by_tag(items: Sequence[ItemView], tags: Sequence[str] | None = None,
                 min_score: float = 0.0) -> tuple[Section, ...]:
    """Sections by tag, most items first; an item sits in the section of its best tag only,
    so a reader sees it once."""
    sections: dict[str, list[ItemView]] = {}
    for item in items:
        candidates = [t for t in item.tags if t.score >= min_score and (not tags or t.tag in tags)]
        if not candidates:
            continue
        best = max(candidates, key=lambda t: (t.score, t.tag))
        sections.setdefault(best.tag, []).append(item)
    ordered = sorted(sections.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return tuple(Section(tag, tuple(items)) for tag, items in ordered)


def excerpt(text: str, limit: int = 240) -> str:
    """About two lines of text, cut at a word."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:") + "…"


def _environment(override_dir: Path | None):  # type: ignore[no-untyped-def]
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None and override_dir.is_dir():
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders.append(jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES)))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders),
                             autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["excerpt"] = excerpt
    env.filters["date"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC")
    return env


def render(digest: Digest, override_dir: Path | None = None) -> tuple[str, str]:
    """(html, text) of a digest."""
    env = _environment(override_dir)
    context = {"digest": digest}
    return (env.get_template("digest.html").render(context),
            env.get_template("digest.txt").render(context))
