"""Quality bars on public corpora (../shared/data); skipped where that folder is absent.

AG News trains in ~7 s. Reuters (90 tags) trains in ~100-150 s on 2 cores, so it is marked
slow and only runs with CLASSIFIER_SLOW_TESTS=1 (bench/evaluate_classifier.py measures it too).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from classifiers import evaluate, load_taxonomy, read_jsonl, train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _corpus(name: str) -> tuple[list, list]:
    folder = DATA / name
    if not (folder / "train.jsonl").is_file():
        pytest.skip(f"{folder} absent")
    return read_jsonl(folder / "train.jsonl"), read_jsonl(folder / "test.jsonl")


@pytest.fixture(scope="module")
def agnews_result() -> dict:
    tr, te = _corpus("agnews")
    model = train(tr, load_taxonomy())
    assert model.meta["single_label"] is True
    return evaluate(model, te)


def test_agnews_beats_the_sklearn_baseline(agnews_result: dict) -> None:
    # TF-IDF word+char + LinearSVC measures 0.874-0.877 on this split; ours 0.8938 with
    # hyperparameters (nb_alpha 0.25, nb_beta 0.5) chosen by cross-validation on the train
    # split only (outer 2x5-fold CV 0.8926, against 0.8900 for the previous 0.5 / 1.0).
    assert agnews_result["n"] == 1600
    assert agnews_result["accuracy"] >= 0.885


def test_agnews_accuracy_bar(agnews_result: dict) -> None:
    # 0.8938 (1430/1600) with hyperparameters picked by CV on train only, not tuned on test.
    assert agnews_result["accuracy"] >= 0.89


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CLASSIFIER_SLOW_TESTS"), reason="set CLASSIFIER_SLOW_TESTS=1 (~2.5 min)"
)
def test_reuters_micro_f1_bar() -> None:
    tr, te = _corpus("reuters21578")
    result = evaluate(train(tr, load_taxonomy()), te)
    assert result["micro_f1"] >= 0.87
    assert result["macro_f1"] > 0.4
