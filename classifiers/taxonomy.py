"""The tag taxonomy: which tags exist, what kind they are, and which names signal a region.

Loaded from a commented TOML file (config/taxonomy.toml). Validation is strict and every
error names the file, the key, what was expected and what was found, on one line, because
the file is edited by hand and a silent typo would quietly change what the model learns.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("region", "relationship", "theme", "genre")
DEFAULT_TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "config" / "taxonomy.toml"

_TAG_KEYS = {"name", "kind", "description", "names", "parts", "cues", "forms", "min_precision"}


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be used; `str()` is one line: file: key: expected ..., found ..."""

    def __init__(self, file: str, key: str, expected: str, found: str) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        self.found = found
        super().__init__(f"{file}: {key}: expected {expected}, found {found}")


@dataclass(frozen=True)
class TagDef:
    name: str
    kind: str
    description: str
    names: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    cues: tuple[str, ...] = ()
    forms: tuple[str, ...] = ()
    min_precision: float | None = None


@dataclass(frozen=True)
class Taxonomy:
    tags: tuple[TagDef, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tags)

    def get(self, name: str) -> TagDef | None:
        for tag in self.tags:
            if tag.name == name:
                return tag
        return None

    def __getitem__(self, name: str) -> TagDef:
        tag = self.get(name)
        if tag is None:
            raise KeyError(name)
        return tag

    def __contains__(self, name: object) -> bool:
        return any(t.name == name for t in self.tags)

    def of_kind(self, kind: str) -> tuple[TagDef, ...]:
        return tuple(t for t in self.tags if t.kind == kind)

    @property
    def regions(self) -> tuple[TagDef, ...]:
        return self.of_kind("region")

    @property
    def relationships(self) -> tuple[TagDef, ...]:
        return self.of_kind("relationship")

    @property
    def cues(self) -> dict[str, tuple[str, ...]]:
        """Theme -> the terms that count as evidence for it (themes without cues are left out)."""
        return {t.name: t.cues for t in self.tags if t.cues}

    @property
    def forms(self) -> dict[str, tuple[str, ...]]:
        """Genre -> the feed categories, URL sections and title labels that settle it."""
        return {t.name: t.forms for t in self.tags if t.forms}


def _describe(value: Any) -> str:
    """How a wrong value is shown in an error: its repr, shortened, and its TOML-ish type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = {str: "string", int: "integer", float: "float", bool: "boolean", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )
    return text if isinstance(value, str) else f"{kind} {text}"


def _str_list(file: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TaxonomyError(file, key, "an array of strings", _describe(value))
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise TaxonomyError(file, f"{key}[{i}]", "a non-empty string", _describe(item))
    return tuple(value)


def parse_taxonomy(data: dict[str, Any], file: str = "<taxonomy>") -> Taxonomy:
    """Validate already-parsed TOML data; `file` is only used in error messages."""
    extra = sorted(set(data) - {"tag"})
    if extra:
        raise TaxonomyError(file, extra[0], "only [[tag]] tables", repr(extra[0]))
    raw_tags = data.get("tag")
    if not isinstance(raw_tags, list) or not raw_tags:
        raise TaxonomyError(file, "tag", "at least one [[tag]] table", _describe(raw_tags))

    tags: list[TagDef] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_tags):
        where = f"tag[{i}]"
        if not isinstance(raw, dict):
            raise TaxonomyError(file, where, "a table", _describe(raw))
        unknown = sorted(set(raw) - _TAG_KEYS)
        if unknown:
            raise TaxonomyError(
                file, f"{where}.{unknown[0]}", "one of " + "|".join(sorted(_TAG_KEYS)), "unknown key"
            )
        for key in ("name", "kind", "description"):
            if key not in raw:
                raise TaxonomyError(file, f"{where}.{key}", "a string", "nothing")
            if not isinstance(raw[key], str):
                raise TaxonomyError(file, f"{where}.{key}", "a string", _describe(raw[key]))
        name, kind, description = raw["name"], raw["kind"], raw["description"]
        if not name or name != name.strip().lower() or any(c.isspace() for c in name):
            raise TaxonomyError(file, f"{where}.name", "a lowercase name without spaces", repr(name))
        if name in seen:
            raise TaxonomyError(
                file, f"{where}.name", f"a name not already used by tag[{seen[name]}]", repr(name)
            )
        seen[name] = i
        if kind not in KINDS:
            raise TaxonomyError(file, f"{where}.kind", "one of " + "|".join(KINDS), repr(kind))
        if "\n" in description:
            raise TaxonomyError(file, f"{where}.description", "one line", "a line break")

        names: tuple[str, ...] = ()
        parts: tuple[str, ...] = ()
        if "names" in raw:
            if kind != "region":
                raise TaxonomyError(file, f"{where}.names", "names only on a region tag", f"kind {kind!r}")
            names = _str_list(file, f"{where}.names", raw["names"])
        if "parts" in raw:
            if kind != "relationship":
                raise TaxonomyError(
                    file, f"{where}.parts", "parts only on a relationship tag", f"kind {kind!r}"
                )
            parts = _str_list(file, f"{where}.parts", raw["parts"])
        cues: tuple[str, ...] = ()
        if "cues" in raw:
            if kind != "theme":
                raise TaxonomyError(file, f"{where}.cues", "cues only on a theme tag", f"kind {kind!r}")
            cues = _str_list(file, f"{where}.cues", raw["cues"])
            for j, cue in enumerate(cues):
                if "*" in cue.rstrip("*") or cue.strip() == "*":
                    raise TaxonomyError(file, f"{where}.cues[{j}]", "a term, optionally ending in *",
                                        repr(cue))
        forms: tuple[str, ...] = ()
        if "forms" in raw:
            if kind != "genre":
                raise TaxonomyError(file, f"{where}.forms", "forms only on a genre tag", f"kind {kind!r}")
            forms = _str_list(file, f"{where}.forms", raw["forms"])
        min_precision = raw.get("min_precision")
        if min_precision is not None and (
            isinstance(min_precision, bool) or not isinstance(min_precision, int | float)
            or not 0.0 < min_precision <= 1.0
        ):
            raise TaxonomyError(file, f"{where}.min_precision", "a number in (0, 1]",
                                _describe(min_precision))
        if kind == "region" and not names:
            raise TaxonomyError(
                file, f"{where}.names", "a non-empty array of strings on a region tag", "nothing"
            )
        if kind == "relationship" and len(parts) < 2:
            raise TaxonomyError(file, f"{where}.parts", "at least two region tags", _describe(list(parts)))
        tags.append(TagDef(name=name, kind=kind, description=description, names=names, parts=parts,
                          cues=cues, forms=forms,
                          min_precision=None if min_precision is None else float(min_precision)))

    # Parts are checked once every tag is known, so a relationship may precede its regions.
    by_name = {t.name: t for t in tags}
    for i, tag in enumerate(tags):
        for j, part in enumerate(tag.parts):
            target = by_name.get(part)
            if target is None:
                raise TaxonomyError(file, f"tag[{i}].parts[{j}]", "the name of a tag", repr(part))
            if target.kind != "region":
                raise TaxonomyError(
                    file, f"tag[{i}].parts[{j}]", "a region tag", f"{part!r} of kind {target.kind!r}"
                )
    return Taxonomy(tags=tuple(tags))


def load_taxonomy(path: str | Path = DEFAULT_TAXONOMY_PATH) -> Taxonomy:
    """Read and validate a taxonomy TOML file; raises TaxonomyError (a ValueError) on any problem."""
    path = Path(path)
    file = str(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise TaxonomyError(file, "(file)", "a readable TOML file", "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(file, "(syntax)", "valid TOML", str(exc).splitlines()[0]) from None
    return parse_taxonomy(data, file)
