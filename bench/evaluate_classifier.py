"""Quality and speed bench for classifiers/: our TagModel beside a plain scikit-learn baseline.

    .venv/bin/python bench/evaluate_classifier.py                 # AG News + Reuters, ours vs baseline
    .venv/bin/python bench/evaluate_classifier.py --speed         # + 100k training, items/s, size, load
    .venv/bin/python bench/evaluate_classifier.py --only speed    # speed and default model only
    .venv/bin/python bench/evaluate_classifier.py --json out.json

Data comes from ../shared/data (AG News, Reuters-21578 ModApte); when it is absent the
dataset sections are skipped and the script still exits 0.

Bars: AG News accuracy >= 0.89; Reuters micro-F1 >= 0.87; 100k items train in <= 120 s;
prediction >= 20k items/s on one core; default model <= 10 MB and loads in <= 150 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from classifiers.evaluate import evaluate, score_labels  # noqa: E402
from classifiers.model import Example, TagModel, disk_size  # noqa: E402
from classifiers.probes import PROBES, check  # noqa: E402
from classifiers.taxonomy import load_taxonomy  # noqa: E402
from classifiers.train import STARTER_CONFIG, read_jsonl, starter_examples, train  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def _text(ex: Example) -> str:
    return f"{ex.title}. {ex.text}"


def baseline(train_ex: Sequence[Example], test_ex: Sequence[Example], chars: bool) -> dict[str, Any]:
    """The plain scikit-learn reference: TF-IDF + one-vs-rest LinearSVC (C=1).

    Single-label data: word 1-2 grams + char_wb 2-5 grams (SOURCE.md: 0.877 on AG News).
    Multi-label data: word unigrams, the classic Joachims setup (SOURCE.md: 0.858 on Reuters)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC

    t0 = time.perf_counter()
    vecs = [TfidfVectorizer(ngram_range=(1, 2) if chars else (1, 1), sublinear_tf=True)]
    if chars:
        vecs.append(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
    X = hstack([v.fit_transform([_text(e) for e in train_ex]) for v in vecs]).tocsr()
    T = hstack([v.transform([_text(e) for e in test_ex]) for v in vecs]).tocsr()
    single = all(len(e.labels) == 1 for e in train_ex)
    if single:
        clf = LinearSVC(C=1.0).fit(X, [e.labels[0] for e in train_ex])
        pred: list[tuple[str, ...]] = [(str(p),) for p in clf.predict(T)]
    else:
        mlb = MultiLabelBinarizer()
        Y = mlb.fit_transform([e.labels for e in train_ex])
        ovr = OneVsRestClassifier(LinearSVC(C=1.0)).fit(X, Y)
        P = ovr.predict(T)
        pred = [tuple(mlb.classes_[np.flatnonzero(row)]) for row in P]
    res = score_labels([e.labels for e in test_ex], pred)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def ours(train_ex: Sequence[Example], test_ex: Sequence[Example]) -> tuple[dict[str, Any], TagModel]:
    t0 = time.perf_counter()
    model = train(train_ex, load_taxonomy())
    train_s = time.perf_counter() - t0
    res = evaluate(model, test_ex)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["train_seconds"] = round(train_s, 1)
    return res, model


def _summary(res: dict[str, Any]) -> str:
    return (
        f"acc {res['accuracy']:.4f}  micro-F1 {res['micro_f1']:.4f}  macro-F1 {res['macro_f1']:.4f}"
        f"  ({res['seconds']}s)"
    )


def run_dataset(name: str, report: dict[str, Any]) -> None:
    folder = DATA / name
    if not (folder / "train.jsonl").is_file():
        print(f"{name}: skipped ({folder} absent)")
        return
    tr = read_jsonl(folder / "train.jsonl")
    te = read_jsonl(folder / "test.jsonl")
    single = all(len(e.labels) == 1 for e in tr)
    base = baseline(tr, te, chars=single)
    mine, _ = ours(tr, te)
    print(f"{name} ({len(tr)} train / {len(te)} test)")
    print(f"  baseline  {_summary(base)}")
    print(f"  ours      {_summary(mine)}")
    report[name] = {
        "baseline": {k: v for k, v in base.items() if k != "per_label"},
        "ours": {k: v for k, v in mine.items() if k != "per_label"},
    }


def _replicate(examples: Sequence[Example], n: int, seed: int = 0) -> list[Example]:
    """n examples cycled from `examples`, each copy with one word dropped so no two rows are
    identical (a fair timing: nothing can be deduplicated)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        e = examples[i % len(examples)]
        words = e.text.split()
        if len(words) > 4:
            del words[rng.randrange(len(words))]
        out.append(Example(f"{e.id}~{i}", e.title, " ".join(words), e.categories, e.feed_tags,
                           labels=e.labels))
    return out


def _items_per_second(model: TagModel, docs: Sequence[Any], explain: bool) -> float:
    model.predict(docs[:500], explain=explain)  # warm the token cache like a running service
    t0 = time.perf_counter()
    model.predict(docs, explain=explain)
    return len(docs) / (time.perf_counter() - t0)


def run_speed(report: dict[str, Any]) -> None:
    speed: dict[str, Any] = {}
    sources = []
    ag = DATA / "agnews" / "train.jsonl"
    if ag.is_file():
        sources.append(("agnews", read_jsonl(ag)))
    starter = starter_examples()
    if starter:
        sources.append(("starter", starter))
    tax = load_taxonomy()
    for name, exs in sources:
        big = _replicate(exs, 100_000)
        t0 = time.perf_counter()
        model = train(big, tax, config=STARTER_CONFIG if name == "starter" else None)
        secs = time.perf_counter() - t0
        docs = [e.doc for e in big[:20_000]]
        # Prediction is measured on one core.
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})
        try:
            plain = _items_per_second(model, docs, explain=False)
            explained = _items_per_second(model, docs, explain=True)
        finally:
            if affinity:
                os.sched_setaffinity(0, affinity)
        print(
            f"speed {name}: train 100k in {secs:.1f}s ({len(model.tags)} tags); predict "
            f"{plain:,.0f} items/s, {explained:,.0f} with reasons (one core)"
        )
        speed[name] = {
            "train_100k_seconds": round(secs, 1),
            "tags": len(model.tags),
            "items_per_second": round(plain),
            "items_per_second_with_reasons": round(explained),
        }
    report["speed"] = speed


def run_default_model(report: dict[str, Any]) -> None:
    examples = starter_examples()
    if not examples:
        print("default model: skipped (no classifiers/data/*.jsonl)")
        return
    t0 = time.perf_counter()
    model = train(examples, load_taxonomy(), config=STARTER_CONFIG)  # as the service trains it
    secs = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp) / model.version)
        size = disk_size(path)
        loads = []
        for _ in range(5):
            t1 = time.perf_counter()
            TagModel.load(path)
            loads.append(time.perf_counter() - t1)
    preds = model.predict([p.doc for p in PROBES])
    problems = check({p.doc.id: pr.labels for p, pr in zip(PROBES, preds, strict=True)})
    cv = model.meta["cv"]
    print(
        f"default model: {len(examples)} starter rows, trained in {secs:.1f}s, {size / 1e6:.2f} MB on disk, "
        f"loads in {min(loads) * 1000:.0f} ms; CV micro-F1 {cv.get('micro_f1')} macro-F1 {cv.get('macro_f1')}"
    )
    for probe, pred in zip(PROBES, preds, strict=True):
        print(f"  probe {probe.doc.id}: {', '.join(pred.labels)}")
    print("  probes: " + ("all pass" if not problems else "; ".join(problems)))
    report["default_model"] = {
        "rows": len(examples),
        "train_seconds": round(secs, 1),
        "bytes": size,
        "load_ms": round(min(loads) * 1000, 1),
        "cv": {k: v for k, v in cv.items() if k != "per_tag"},
        "probe_problems": problems,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", action="store_true", help="also time 100k training and prediction")
    ap.add_argument("--only", choices=["agnews", "reuters", "speed", "default"], help="run one section")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {}
    sections = (
        [args.only] if args.only else ["agnews", "reuters", "default"] + (["speed"] if args.speed else [])
    )
    for section in sections:
        if section == "agnews":
            run_dataset("agnews", report)
        elif section == "reuters":
            run_dataset("reuters21578", report)
        elif section == "default":
            run_default_model(report)
        elif section == "speed":
            run_speed(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
