"""Do the tags hold on real news? The default model beside two baselines, on real data only.

    .venv/bin/python -m bench.bench_tags                  # every section
    .venv/bin/python -m bench.bench_tags --only dev       # one of dev|agnews|realfeeds|probes|reuters|agacc
    .venv/bin/python -m bench.bench_tags --show 20        # + 20 random tagged real items per theme, to read
    .venv/bin/python -m bench.bench_tags --json out.json
    .venv/bin/python -m bench.bench_tags --only ablation  # what each part of the corpus brings
    .venv/bin/python -m bench.bench_tags --only dev --background 3000   # + ours retrained beside
                                                   # 3,000 real items, as `train --background` does

Contenders, trained on the same data (the starter corpus, negatives included):
- ours: the default model (classifiers.train.STARTER_CONFIG, the taxonomy's cues and evidence rule);
- cues: a theme wherever one of its taxonomy cue terms occurs (the evidence rule alone);
- svm: plain TF-IDF (word 1-2 grams) + one LinearSVC per tag, default threshold.

Sections (each skips, saying so, where ../shared/data is absent):
- dev: the project's own hand-labelled dev set (bench/labels/realfeeds-dev.jsonl: 422 items of
  ../shared/data/realfeeds, labels by id, text read at run time): themes micro P/R/F1, the share
  of no-theme items given a theme, analysis P/R/F1, regions and russia-iran.
- agnews: AG News test, per class, the share of items given any theme or relationship tag.
- realfeeds: each tag's count over all 69k real entries, beside the cue-word count.
- probes: the demo's Russia-Iran probe articles keep their tags.
- reuters / agacc: Reuters-21578 micro-F1 and AG News accuracy when trained on them
  (bench/evaluate_classifier.py's sections, run here so every figure comes from one run).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import realfeeds  # noqa: E402
from classifiers.evaluate import score_labels  # noqa: E402
from classifiers.model import Doc, Example, TagModel  # noqa: E402
from classifiers.taxonomy import Taxonomy, load_taxonomy  # noqa: E402
from classifiers.train import STARTER_CONFIG, starter_examples, train  # noqa: E402

DEV_LABELS = ROOT / "bench" / "labels" / "realfeeds-dev.jsonl"
AGNEWS = ROOT.parent / "shared" / "data" / "agnews"
THEMES = ("nuclear", "sanctions", "arms-transfers", "energy", "space", "cyber", "protests", "diplomacy")


def doc_of(row: dict[str, Any]) -> Doc:
    return Doc(row["id"], row["title"], row["text"], tuple(row.get("categories", ())), (),
               row.get("url") or "")


def dev_set() -> list[tuple[Doc, tuple[str, ...]]]:
    """The labelled dev items with their text from ../shared (labels only in the project)."""
    items = realfeeds.by_id()
    out = []
    with DEV_LABELS.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out.append((doc_of(items[row["id"]]), tuple(row["labels"])))
    return out


# ---------------------------------------------------------------------------- contenders


class CueBaseline:
    """A theme wherever one of its cue terms occurs (the evidence rule alone, no model)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        from classifiers.features import FeatureConfig, Featurizer

        self.tags = tuple(taxonomy.cues)
        self._f = Featurizer(FeatureConfig(), {}, taxonomy.cues)

    def predict(self, docs: Sequence[Doc]) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for start in range(0, len(docs), 2000):
            b = self._f.batch(docs[start:start + 2000])
            for i in range(b.n):
                out.append(tuple(t for k, t in enumerate(self.tags)
                                 if b.cue_counts[i, k] and b.n_tokens[i] >= 5))
        return out


class SvmBaseline:
    """TF-IDF word 1-2 grams + one LinearSVC per tag (scikit-learn defaults)."""

    def __init__(self, examples: Sequence[Example]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import MultiLabelBinarizer
        from sklearn.svm import LinearSVC

        self.vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        X = self.vec.fit_transform([f"{e.title}. {e.text}" for e in examples])
        self.mlb = MultiLabelBinarizer()
        Y = self.mlb.fit_transform([e.labels for e in examples])
        self.clf = OneVsRestClassifier(LinearSVC(C=1.0)).fit(X, Y)

    def predict(self, docs: Sequence[Doc]) -> list[tuple[str, ...]]:
        X = self.vec.transform([f"{d.title}. {d.text}" for d in docs])
        return [tuple(t) for t in self.mlb.inverse_transform(self.clf.predict(X))]


def ours_predict(model: TagModel, docs: Sequence[Doc]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for start in range(0, len(docs), 2000):
        out += [p.labels for p in model.predict(docs[start:start + 2000], explain=False)]
    return out


# ---------------------------------------------------------------------------- measures


def theme_figures(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Themes micro P/R/F1, per theme, and the share of no-theme items given a theme."""
    tp = fp = fn = 0
    per: dict[str, list[int]] = {t: [0, 0, 0] for t in THEMES}
    none = none_tagged = 0
    for g, p in zip(gold, pred, strict=True):
        gs, ps = set(g) & set(THEMES), set(p) & set(THEMES)
        tp += len(gs & ps)
        fp += len(ps - gs)
        fn += len(gs - ps)
        for t in THEMES:
            per[t][0] += t in gs and t in ps
            per[t][1] += t in ps and t not in gs
            per[t][2] += t in gs and t not in ps
        if not gs:
            none += 1
            none_tagged += bool(ps)
    prec = tp / max(tp + fp, 1)
    rec = tp / max(tp + fn, 1)
    return {
        "micro_precision": round(prec, 4), "micro_recall": round(rec, 4),
        "micro_f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
        "no_theme_items": none, "no_theme_given_theme": round(none_tagged / max(none, 1), 4),
        "per_theme": {t: {"tp": a, "fp": b, "fn": c} for t, (a, b, c) in per.items()},
    }


def tag_prf(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], tag: str) -> dict[str, float]:
    tp = sum(tag in g and tag in p for g, p in zip(gold, pred, strict=True))
    fp = sum(tag not in g and tag in p for g, p in zip(gold, pred, strict=True))
    fn = sum(tag in g and tag not in p for g, p in zip(gold, pred, strict=True))
    prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"precision": round(prec, 4), "recall": round(rec, 4),
            "f1": round(2 * prec * rec / max(prec + rec, 1e-12), 4), "support": tp + fn}


# ---------------------------------------------------------------------------- sections


def section_dev(contenders: dict[str, Any], report: dict[str, Any]) -> None:
    data = dev_set()
    docs = [d for d, _ in data]
    gold = [g for _, g in data]
    out: dict[str, Any] = {}
    print(f"\n== dev set: {len(data)} hand-labelled real items ({DEV_LABELS.relative_to(ROOT)})")
    print(f"{'':8} {'themes P':>9} {'R':>6} {'F1':>6} {'no-theme tagged':>16} {'analysis P':>11} {'R':>6} "
          f"{'F1':>6} {'russia-iran F1':>15} {'regions F1':>11}")
    for name, c in contenders.items():
        pred = c.predict(docs) if not isinstance(c, TagModel) else ours_predict(c, docs)
        th = theme_figures(gold, pred)
        an = tag_prf(gold, pred, "analysis")
        ri = tag_prf(gold, pred, "russia-iran")
        regions = ("russia", "iran", "china", "ukraine", "israel", "united-states", "middle-east", "caucasus")
        rg = score_labels([[t for t in g if t in regions] for g in gold],
                          [[t for t in p if t in regions] for p in pred])
        out[name] = {"themes": th, "analysis": an, "russia-iran": ri,
                     "regions_micro_f1": round(rg["micro_f1"], 4)}
        print(f"{name:8} {th['micro_precision']:9.3f} {th['micro_recall']:6.3f} {th['micro_f1']:6.3f} "
              f"{th['no_theme_given_theme']:16.1%} {an['precision']:11.3f} {an['recall']:6.3f} "
              f"{an['f1']:6.3f} "
              f"{ri['f1']:15.3f} {rg['micro_f1']:11.3f}")
    if "ours" in out:
        print("ours per theme (tp/fp/fn): " + ", ".join(
            f"{t} {v['tp']}/{v['fp']}/{v['fn']}" for t, v in out["ours"]["themes"]["per_theme"].items()))
    report["dev"] = out


def section_agnews(contenders: dict[str, Any], report: dict[str, Any]) -> None:
    rows = [json.loads(line) for line in (AGNEWS / "test.jsonl").open(encoding="utf-8")]
    by_class: dict[str, list[Doc]] = {}
    for r in rows:
        by_class.setdefault(r["labels"][0], []).append(Doc(r["id"], r["title"], r["text"]))
    print(f"\n== AG News test: share of items given any theme or relationship tag ({len(rows)} items)")
    precise = set(THEMES) | {"russia-iran"}
    out: dict[str, Any] = {}
    print(f"{'':8} " + " ".join(f"{c:>10}" for c in by_class))
    for name, c in contenders.items():
        shares = {}
        for cls, docs in by_class.items():
            pred = c.predict(docs) if not isinstance(c, TagModel) else ours_predict(c, docs)
            shares[cls] = round(sum(bool(set(p) & precise) for p in pred) / len(docs), 4)
        out[name] = shares
        print(f"{name:8} " + " ".join(f"{v:10.1%}" for v in shares.values()))
    report["agnews_theme_share"] = out


def section_realfeeds(model: TagModel, cues: CueBaseline, report: dict[str, Any], show: int) -> None:
    rows = realfeeds.load()
    docs = [doc_of(r) for r in rows]
    t0 = time.perf_counter()
    pred = ours_predict(model, docs)
    secs = time.perf_counter() - t0
    cue_pred = cues.predict(docs)
    ours_n = Counter(t for p in pred for t in p)
    cue_n = Counter(t for p in cue_pred for t in p)
    print(f"\n== realfeeds: {len(docs)} real entries of 18 outlets; tags per item (ours {secs:.1f} s)")
    print(f"{'tag':16} {'ours':>8} {'cue words':>10}")
    for tag in model.tags:
        print(f"{tag:16} {ours_n[tag]:8} {cue_n.get(tag, 0) if tag in cues.tags else '':>10}")
    report["realfeeds"] = {"items": len(docs), "ours": dict(ours_n), "cues": dict(cue_n)}
    if show:
        rng = random.Random(0)
        for theme in THEMES:
            tagged = [i for i, p in enumerate(pred) if theme in p]
            print(f"\n-- {theme}: {min(show, len(tagged))} of {len(tagged)} tagged items, at random")
            for i in rng.sample(tagged, min(show, len(tagged))):
                print(f"   {rows[i]['id']:24} {rows[i]['title'][:100]}")


def section_probes(model: TagModel, report: dict[str, Any]) -> None:
    from classifiers.probes import PROBES, check

    preds = model.predict([p.doc for p in PROBES])
    failures = check({p.doc.id: pr.labels for p, pr in zip(PROBES, preds, strict=True)})
    print(f"\n== probes: {len(PROBES)} articles written for the project, not in training: "
          f"{failures or 'all keep their tags'}")
    for p, pr in zip(PROBES, preds, strict=True):
        print(f"   {p.doc.id:22} {', '.join(pr.labels)}")
    report["probes"] = {"failures": failures}


def section_ablation(taxonomy: Taxonomy, report: dict[str, Any]) -> None:
    """The default model trained on growing parts of the starter corpus, on the dev set."""
    data = dev_set()
    docs, gold = [d for d, _ in data], [g for _, g in data]
    every = starter_examples()
    parts = [("geopolitics only", ("ng-", "fs-", "gn-")), ("+ off-topic items", ("fs-", "gn-")),
             ("+ feed-style themed items", ("gn-",)), ("+ genre items (shipped)", ())]
    print("\n== ablation: the default model on growing parts of the starter corpus, dev set")
    out = {}
    for name, left_out in parts:
        examples = [e for e in every if not e.id.startswith(left_out)] if left_out else every
        model = train(examples, taxonomy, config=STARTER_CONFIG)
        pred = ours_predict(model, docs)
        th, an = theme_figures(gold, pred), tag_prf(gold, pred, "analysis")
        out[name] = {"examples": len(examples), "themes": th, "analysis": an}
        print(f"{name:28} {len(examples):5} examples  themes P {th['micro_precision']:.3f} "
              f"R {th['micro_recall']:.3f} F1 {th['micro_f1']:.3f}  no-theme tagged "
              f"{th['no_theme_given_theme']:.1%}  analysis F1 {an['f1']:.3f}")
    report["ablation"] = out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["dev", "agnews", "realfeeds", "probes", "reuters", "agacc",
                                       "ablation"])
    ap.add_argument("--show", type=int, default=0, help="print N random tagged real items per theme")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--model", type=Path, help="evaluate this saved model instead of training the default")
    ap.add_argument("--background", type=int, default=0, metavar="N",
                    help="also train 'ours+bg' beside N random realfeeds items outside the dev set")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {}
    def want(section: str) -> bool:
        return args.only in (None, section)

    taxonomy = load_taxonomy()
    needs_model = any(want(s) for s in ("dev", "agnews", "realfeeds", "probes"))
    if needs_model:
        examples = starter_examples()
        t0 = time.perf_counter()
        model = TagModel.load(args.model) if args.model else train(examples, taxonomy, config=STARTER_CONFIG)
        print(f"default model: {len(examples)} starter examples, trained in {time.perf_counter() - t0:.1f} s")
        cues = CueBaseline(taxonomy)
        contenders: dict[str, Any] = {"ours": model, "cues": cues}
        if any(want(s) for s in ("dev", "agnews")):
            contenders["svm"] = SvmBaseline(examples)
        if args.background and realfeeds.available():
            dev_ids = {d.id for d, _ in dev_set()}
            pool = [r for r in realfeeds.load() if r["id"] not in dev_ids]
            bg = [doc_of(r) for r in random.Random(1).sample(pool, args.background)]
            contenders["ours+bg"] = train(examples, taxonomy, config=STARTER_CONFIG, background=bg)
    if want("probes"):
        section_probes(model, report)
    if want("dev"):
        if realfeeds.available():
            section_dev(contenders, report)
        else:
            print(f"\n== dev set: skipped, {realfeeds.ARCHIVE} is absent")
    if want("agnews"):
        if (AGNEWS / "test.jsonl").is_file():
            section_agnews(contenders, report)
        else:
            print(f"\n== AG News: skipped, {AGNEWS} is absent")
    if want("realfeeds"):
        if realfeeds.available():
            section_realfeeds(model, cues, report, args.show)
        else:
            print(f"\n== realfeeds: skipped, {realfeeds.ARCHIVE} is absent")
    if args.only == "ablation" and realfeeds.available():
        section_ablation(taxonomy, report)
    for name, only in (("reuters", "reuters"), ("agacc", "agnews")):
        if want(name) and args.only is not None:
            from bench.evaluate_classifier import run_dataset

            print(f"\n== {only} trained on itself (bench/evaluate_classifier.py --only {only})")
            run_dataset(only, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
