"""Scoring a model against labelled examples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from classifiers.model import Doc, Example, Prediction


class Predictor(Protocol):
    def predict(self, docs: Sequence[Doc], explain: bool = ...) -> list[Prediction]: ...


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_labels(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Metrics of predicted label sets against gold ones (same order).

    accuracy is exact match of the label set; macro_f1 averages over every label that occurs
    in gold or predictions."""
    if len(gold) != len(pred):
        raise ValueError(f"score_labels: {len(gold)} gold rows but {len(pred)} predictions")
    labels = sorted({lab for row in gold for lab in row} | {lab for row in pred for lab in row})
    tp = dict.fromkeys(labels, 0)
    fp = dict.fromkeys(labels, 0)
    fn = dict.fromkeys(labels, 0)
    exact = 0
    for g_row, p_row in zip(gold, pred, strict=True):
        g, p = set(g_row), set(p_row)
        exact += g == p
        for lab in g & p:
            tp[lab] += 1
        for lab in p - g:
            fp[lab] += 1
        for lab in g - p:
            fn[lab] += 1
    per_label: dict[str, dict[str, float]] = {}
    for lab in labels:
        prec = tp[lab] / (tp[lab] + fp[lab]) if tp[lab] + fp[lab] else 0.0
        rec = tp[lab] / (tp[lab] + fn[lab]) if tp[lab] + fn[lab] else 0.0
        per_label[lab] = {
            "precision": prec,
            "recall": rec,
            "f1": _f1(prec, rec),
            "support": tp[lab] + fn[lab],
        }
    TP, FP, FN = sum(tp.values()), sum(fp.values()), sum(fn.values())
    micro_p = TP / (TP + FP) if TP + FP else 0.0
    micro_r = TP / (TP + FN) if TP + FN else 0.0
    n = len(gold)
    return {
        "n": n,
        "accuracy": exact / n if n else 0.0,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": _f1(micro_p, micro_r),
        "macro_f1": sum(v["f1"] for v in per_label.values()) / len(per_label) if per_label else 0.0,
        "per_label": per_label,
    }


def evaluate(model: Predictor, examples: Sequence[Example]) -> dict[str, Any]:
    """`{"n", "accuracy", "micro_precision", "micro_recall", "micro_f1", "macro_f1", "per_label"}`;
    accuracy is exact match, per_label maps tag -> precision, recall, f1, support."""
    preds = model.predict([ex.doc for ex in examples], explain=False) if examples else []
    return score_labels([ex.labels for ex in examples], [p.labels for p in preds])
