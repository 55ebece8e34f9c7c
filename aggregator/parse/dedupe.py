"""Near-duplicate detection: a 64-bit SimHash over word shingles of title and text.

Pure functions, no I/O. Two texts are the same story when their fingerprints differ in
at most ``MAX_DISTANCE`` bits. Candidates are found through ``BANDS`` bands of the
fingerprint: by the pigeonhole principle, two fingerprints at most ``BANDS - 1`` bits
apart agree exactly on at least one band, so an exact lookup per band (an index in the
store) finds every pair within ``MAX_DISTANCE`` without comparing against everything.

The parameters were measured with bench/bench_dedupe.py (wire copies with light edits vs
distinct stories from the Reuters-21578 and AG News corpora): see that script's report.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

import numpy as np

SHINGLE = 3  # words per shingle
MAX_DISTANCE = 3  # Hamming distance (bits of 64) still counted as the same story
BANDS = MAX_DISTANCE + 1  # pigeonhole: fingerprints within MAX_DISTANCE share a band
BAND_BITS = 64 // BANDS
# Fewer words than this carry too little evidence: two two-line briefs that share a
# headline template are not the same story. Such items get no fingerprint.
MIN_WORDS = 12
# Copies keep the lead and cut or extend the end ("Reporting by ...", a paragraph
# dropped to fit): the first words are the evidence that survives, and bound the cost.
MAX_WORDS = 40

_WORD = re.compile(r"\w+")
# A wire dateline or credit that outlets add, drop or rewrite: "LONDON, March 3 (Reuters) - ",
# "AP - ", "BAGHDAD, Iraq -- ". Up to two at the very start, each a few capitalized words
# (or a domain, or a parenthesized credit); left out of the fingerprint only.
_DL_WORD = r"(?:[A-Z0-9(][^\s]*|[^\s]+\.[a-z]{2,4}\)?)"
_DATELINE = re.compile(rf"^(?:{_DL_WORD}(?:,?\s+{_DL_WORD}){{0,5}}\s+(?:--|-|—|–)\s+){{1,2}}")
_MASK64 = (1 << 64) - 1
# Word hashes, cached: news vocabulary is bounded, and clearing it keeps memory bounded.
_cache: dict[str, int] = {}
_CACHE_LIMIT = 200_000
_BIT = np.uint64(1) << np.arange(64, dtype=np.uint64)
# Per-position multipliers that mix word hashes into a shingle hash (odd 64-bit constants).
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD], dtype=np.uint64)


def words(title: str, text: str, lead: int = MAX_WORDS) -> list[str]:
    """The words a fingerprint is made of: title and the text's lead, lowercased,
    punctuation and any leading dateline dropped."""
    text = _DATELINE.sub("", text[:lead * 12], count=1)  # 12 chars a word is plenty
    # Most leads hold the words in their first 7 chars a word: when that prefix has more
    # than enough, its first `lead` words are whole, the same as the full text's.
    found = _WORD.findall(f"{title} {text[:lead * 7]}".lower())
    if len(found) > lead:
        return found[:lead]
    return _WORD.findall(f"{title} {text}".lower())[:lead]


def _word_hashes_of(tokens: Sequence[str]) -> list[int]:
    """Each word's 64-bit hash (blake2b: stable across processes, unlike hash())."""
    get = _cache.get
    out = [get(w) for w in tokens]
    if None in out:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        for i, h in enumerate(out):
            if h is None:
                w = tokens[i]
                h = _cache[w] = int.from_bytes(
                    hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                out[i] = h
    return out  # type: ignore[return-value]


def _fmix(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads every input bit over every output bit."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def _shingles(hashes: np.ndarray, size: int) -> np.ndarray:
    """Shingle hashes at every position of a run of word hashes (the last ``size - 1``
    positions wrap around: callers drop them)."""
    with np.errstate(over="ignore"):
        mixed = hashes * _MIX[0]
        for k in range(1, size):
            mixed = mixed + np.roll(hashes, -k) * _MIX[k % len(_MIX)]
        return _fmix(mixed)


def shingle_hashes(tokens: Sequence[str], size: int = SHINGLE) -> np.ndarray:
    """The 64-bit hashes of the ``size``-word shingles of ``tokens``, in order (a text
    shorter than ``size`` is one shingle)."""
    size = max(min(size, len(tokens)), 1)
    if not tokens:
        return np.zeros(0, dtype=np.uint64)
    h = np.array(_word_hashes_of(tokens), dtype=np.uint64)
    return _shingles(h, size)[:len(tokens) - size + 1]


def fingerprints(docs: Sequence[tuple[str, str]], size: int = SHINGLE,
                 lead: int = MAX_WORDS) -> list[int | None]:
    """The 64-bit SimHash of each (title, text), or None for a text too short to tell one
    story from another. Bit i is set when most of the shingles' hashes have it (a shingle
    repeated counts as often as it occurs). Batched: numpy's cost is per call, not per
    shingle, so a feed's entries go through together."""
    out: list[int | None] = [None] * len(docs)
    tokens: list[str] = []
    owners: list[int] = []
    lengths: list[int] = []
    for i, (title, text) in enumerate(docs):
        found = words(title, text, lead)
        if len(found) >= MIN_WORDS:  # >= size too, so every text has whole shingles
            tokens += found
            owners.append(i)
            lengths.append(len(found))
    if not owners:
        return out
    shingles = _shingles(np.array(_word_hashes_of(tokens), dtype=np.uint64), size)
    # Keep the shingles that start and end inside one text.
    ends = np.cumsum(np.asarray(lengths, dtype=np.intp))
    starts = ends - lengths
    keep = np.ones(len(tokens), dtype=bool)
    for k in range(1, size):
        keep[ends - k] = False
    bits = np.unpackbits(shingles[keep].astype("<u8").view(np.uint8).reshape(-1, 8), axis=1,
                         bitorder="little")
    counts = ends - starts - (size - 1)
    ones = np.add.reduceat(bits, starts - np.arange(len(owners), dtype=np.intp) * (size - 1), axis=0,
                           dtype=np.int32)
    values = ((ones * 2 > counts[:, None]) * _BIT).sum(axis=1, dtype=np.uint64)
    for i, v in zip(owners, values.tolist(), strict=True):
        out[i] = int(v)
    return out


def fingerprint(title: str, text: str, size: int = SHINGLE, lead: int = MAX_WORDS) -> int | None:
    """One text's fingerprint (see ``fingerprints``)."""
    return fingerprints([(title, text)], size, lead)[0]


def distance(a: int, b: int) -> int:
    """Hamming distance between two fingerprints."""
    return ((a ^ b) & _MASK64).bit_count()


def same_story(a: int, b: int, max_distance: int = MAX_DISTANCE) -> bool:
    return distance(a, b) <= max_distance


def bands(fp: int) -> tuple[int, ...]:
    """The fingerprint cut into ``BANDS`` bands of ``BAND_BITS`` bits (the last takes
    any remainder): the keys a store indexes to find candidates."""
    out = []
    for i in range(BANDS):
        width = BAND_BITS if i < BANDS - 1 else 64 - BAND_BITS * (BANDS - 1)
        out.append((fp >> (i * BAND_BITS)) & ((1 << width) - 1))
    return tuple(out)


def to_signed(fp: int) -> int:
    """As a signed 64-bit integer: SQLite and PostgreSQL integers are signed."""
    return fp - (1 << 64) if fp >= 1 << 63 else fp


def from_signed(value: int) -> int:
    return value & _MASK64


def story_choices(items: Sequence[tuple[int, int]],
                  candidates: Mapping[int, Sequence[tuple[int, int | None, int]]],
                  ) -> list[tuple[int, int]]:
    """Which story each new item joins. ``items``: the new items' (id, fingerprint), in
    the order they were stored; ``candidates[id]``: the older items sharing a band with it
    in the time window, as (id, story id or None, signed fingerprint). Returns (item id,
    story id) for each item that joins a story: its nearest candidate's within
    ``MAX_DISTANCE`` bits, ties to the lower story id. A story's id is its first item's;
    an item that joined one earlier in the same batch counts as a member of it."""
    story_now: dict[int, int] = {}
    updates: list[tuple[int, int]] = []
    for item_id, fp in items:
        best: tuple[int, int] | None = None  # (distance, story id)
        for other, story, simhash in candidates.get(item_id, ()):
            story = story_now.get(other, story)
            d = distance(fp, from_signed(simhash))
            key = (d, story if story is not None else other)
            if d <= MAX_DISTANCE and (best is None or key < best):
                best = key
        if best is None:
            continue
        head = best[1]
        story_now.setdefault(head, head)
        story_now[item_id] = head
        updates.append((item_id, head))
    return updates
