"""Near-duplicate benchmark: where to put the SimHash threshold, measured on real news.

Corpus: Reuters-21578 and AG News from shared/data (title + text per story).

Positives: each story against a copy as an outlet would run a wire story, with one or
more light edits: the headline's casing changed, a dateline added ("LONDON, March 3
(Reuters) - "), the trailing sentence removed; and all three at once.

Negatives: every pair of distinct stories in the corpus (N(N-1)/2 pairs, tens of
millions), counted by Hamming distance. Pairs whose texts really are near-identical
(Jaccard of word 3-shingles >= 0.8: the corpora hold some re-filed stories) are not
false positives and are counted apart as "natural duplicates".

For each shingle size and Hamming threshold it prints recall per edit, the false pairs,
precision with one copy per story (N true pairs among all pairs: a window of N items where
every story was copied once; harsher than real feeds, where most stories have no copy),
and the cost of a fingerprint.

    .venv/bin/python -m bench.bench_dedupe [--configs 2:400,3:60] [--max-docs 8000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aggregator.parse import dedupe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
THRESHOLDS = range(0, 13)
DATELINES = ["LONDON, March 3 (Reuters) - ", "WASHINGTON (AP) -- ", "MOSCOW, Nov 20 (AFP) - ",
             "TEHRAN, 20 November (IRNA) - ", "BEIRUT — "]


def load(max_docs: int, rand: random.Random) -> tuple[list[tuple[str, str]], set[int]]:
    """Stories, and the indexes of the Reuters ones (long texts; AG News' are 1-2 sentences)."""
    docs: dict[tuple[str, str], tuple[str, str, bool]] = {}
    for path in sorted(DATA.glob("reuters21578/*.jsonl")) + sorted(DATA.glob("agnews/*.jsonl")):
        for line in path.read_text().splitlines():
            d = json.loads(line)
            text = re.sub(r"\s+", " ", d.get("text") or "").strip()
            if d.get("title") and text:
                # Exact repeats would be both positives and negatives: keep one of each.
                docs[(d["title"].lower(), text)] = (d["title"], text, "reuters" in path.parts[-2])
    rows = list(docs.values())
    rand.shuffle(rows)
    rows = rows[:max_docs]
    return [(t, x) for t, x, _ in rows], {i for i, row in enumerate(rows) if row[2]}


def recase(title: str, rand: random.Random) -> str:
    return rand.choice([title.title(), title.upper(), title.lower(), title.capitalize()])


def drop_last_sentence(text: str) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", text)
    return " ".join(sentences[:-1]) if len(sentences) > 1 else text


EDITS: dict[str, Callable[[str, str, random.Random], tuple[str, str]]] = {
    "casing": lambda t, x, r: (recase(t, r), x),
    "dateline": lambda t, x, r: (t, r.choice(DATELINES) + x),
    "trailing": lambda t, x, r: (t, drop_last_sentence(x)),
    "all three": lambda t, x, r: (recase(t, r), r.choice(DATELINES) + drop_last_sentence(x)),
}


def jaccard(a: tuple[str, str], b: tuple[str, str]) -> float:
    sa = set(dedupe.shingle_hashes(dedupe.words(*a, 400), 3).tolist())
    sb = set(dedupe.shingle_hashes(dedupe.words(*b, 400), 3).tolist())
    return len(sa & sb) / max(len(sa | sb), 1)


def evaluate(docs: list[tuple[str, str]], reuters: set[int], size: int, lead: int,
             rand: random.Random) -> None:
    fps: list[int] = []
    kept: list[tuple[str, str]] = []
    long: list[bool] = []
    started = time.perf_counter()
    for i, (title, text) in enumerate(docs):
        fp = dedupe.fingerprint(title, text, size, lead)
        if fp is not None:
            fps.append(fp)
            kept.append((title, text))
            long.append(i in reuters)
    per_doc_us = (time.perf_counter() - started) / len(docs) * 1e6
    n = len(kept)
    arr = np.array(fps, dtype=np.uint64)
    # Positives: each story against its edited copy, per edit.
    recall: dict[str, np.ndarray] = {}
    mask = np.array(long)
    for name, edit in EDITS.items():
        dist = []
        for (title, text), fp in zip(kept, fps, strict=True):
            copy = dedupe.fingerprint(*edit(title, text, rand), size, lead)
            dist.append(64 if copy is None else dedupe.distance(fp, copy))
        d = np.array(dist)
        recall[name] = np.cumsum(np.bincount(d, minlength=65)) / n
        if name == "all three":
            recall["3: reuters"] = np.cumsum(np.bincount(d[mask], minlength=65)) / max(mask.sum(), 1)
            recall["3: agnews"] = np.cumsum(np.bincount(d[~mask], minlength=65)) / max((~mask).sum(), 1)
    # Negatives: every pair, by distance; near pairs checked for natural duplicates.
    hist = np.zeros(65, dtype=np.int64)
    natural = np.zeros(65, dtype=np.int64)
    for i in range(n - 1):
        d = np.bitwise_count(arr[i] ^ arr[i + 1:])
        hist += np.bincount(d, minlength=65)
        for j in np.nonzero(d <= max(THRESHOLDS))[0]:
            if jaccard(kept[i], kept[i + 1 + int(j)]) >= 0.8:
                natural[d[j]] += 1
    false = np.cumsum(hist - natural)
    pairs = n * (n - 1) // 2
    print(f"\n{size}-word shingles, first {lead} words: {n} stories fingerprinted of {len(docs)} "
          f"({len(docs) - n} under {dedupe.MIN_WORDS} words), {per_doc_us:.0f} us per fingerprint, "
          f"{pairs:,} distinct pairs, {int(natural.sum())} natural duplicates within "
          f"{max(THRESHOLDS)} bits")
    head = " ".join(f"{name:>10}" for name in recall)
    print(f"{'bits':>4} {head} {'false pairs':>12} {'per 10k items':>13} {'precision':>9}")
    for t in THRESHOLDS:
        tp = recall["all three"][t] * n
        fp_pairs = int(false[t])
        # One copy per story: n true pairs; each story meets n-1 others in the window.
        precision = tp / (tp + fp_pairs) if tp + fp_pairs else 1.0
        per_item = fp_pairs / pairs * 10_000
        cells = " ".join(f"{recall[name][t]:10.3f}" for name in recall)
        print(f"{t:4} {cells} {fp_pairs:12,} {per_item:13.4f} {precision:9.4f}")


def timing(docs: list[tuple[str, str]]) -> None:
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        for title, text in docs:
            dedupe.fingerprint(title, text)
        runs.append((time.perf_counter() - started) / len(docs) * 1e6)
    words = statistics.mean(len(dedupe.words(*d)) for d in docs)
    print(f"\nfingerprint (default {dedupe.SHINGLE}-word shingles): {statistics.median(runs):.0f} us "
          f"per story, mean {words:.0f} words")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--configs", default="2:400,3:400,3:60,2:40,3:40",
                        help="shingle size:lead words, comma-separated")
    parser.add_argument("--max-docs", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rand = random.Random(args.seed)
    docs, reuters = load(args.max_docs, rand)
    print(f"corpus: {len(docs)} distinct stories ({len(reuters)} Reuters-21578, the rest AG News), "
          f"seed {args.seed}")
    print("recall: share of copies within the threshold; false pairs: distinct stories within it")
    for config in args.configs.split(","):
        size, lead = (int(v) for v in config.split(":"))
        evaluate(docs, reuters, size, lead, random.Random(args.seed))
    timing(docs)
    print(f"\nin use: {dedupe.SHINGLE}-word shingles of the first {dedupe.MAX_WORDS} words, "
          f"same story at <= {dedupe.MAX_DISTANCE} bits, "
          f"{dedupe.BANDS} bands of {dedupe.BAND_BITS} bits")


if __name__ == "__main__":
    main()
