"""The classifier's commands through the real CLI: train, evaluate, classify, label,
reclassify, models."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.demo import demo_feed_files, feed_name
from aggregator.demo.server import FeedFileServer


def run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aggregator", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600, input=stdin,
                          env={**os.environ, "NO_COLOR": "1"})


def corpus(path: Path, n: int, seed: int) -> Path:
    """A small two-topic corpus with labels outside the taxonomy, written here."""
    rand = random.Random(seed)
    harvest = ["wheat", "harvest", "farmers", "grain", "rainfall", "tractors", "barley", "yield"]
    chess = ["grandmaster", "opening", "endgame", "bishop", "tournament", "checkmate", "rook"]
    rows = []
    for i in range(n):
        label, words = ("harvest", harvest) if i % 2 else ("chess", chess)
        text = " ".join(rand.choice(words) for _ in range(12))
        rows.append({"id": f"{label}-{i}", "title": f"{rand.choice(words)} report", "text": text,
                     "labels": [label]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_on_any_labelled_corpus_then_evaluate_and_classify(instance_with_model: Path,
                                                                  tmp_path: Path) -> None:
    home = instance_with_model
    train_file = corpus(tmp_path / "train.jsonl", 80, 1)
    test_file = corpus(tmp_path / "test.jsonl", 40, 2)
    out = tmp_path / "farm-model"
    trained = run(home, "train", "--no-starter", "--no-labels", "--data", str(train_file),
                  "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    assert "on 80 examples" in trained.stdout
    evaluated = run(home, "evaluate", "--data", str(test_file), "--model", str(out),
                    "--format", "json")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert set(result) == {"n", "accuracy", "micro_precision", "micro_recall", "micro_f1",
                           "macro_f1", "per_label"}
    assert result["n"] == 40 and result["accuracy"] >= 0.9
    assert set(result["per_label"]) == {"harvest", "chess"}
    assert set(result["per_label"]["chess"]) == {"precision", "recall", "f1", "support"}
    # Single-label data: exactly one label per text.
    classified = run(home, "classify", "--model", str(out), "--text",
                     "The grandmaster found a checkmate in the endgame with a rook",
                     "--text", "Farmers expect a record wheat harvest after rainfall")
    lines = [json.loads(line) for line in classified.stdout.splitlines()]
    assert [line["labels"] for line in lines] == [["chess"], ["harvest"]]
    assert set(lines[0]) == {"id", "labels", "scores", "reasons"}
    assert lines[0]["reasons"]["chess"]
    # --out did not change the current model.
    models = run(home, "models", "list")
    assert models.returncode == 0 and models.stdout.count("*") == 1


def test_classify_with_the_default_model(instance_with_model: Path) -> None:
    proc = run(instance_with_model, "classify", "--text",
               "Iran delivered more Shahed drones to Russia as Moscow and Tehran expanded "
               "their military cooperation, Ukrainian intelligence said.")
    assert proc.returncode == 0, proc.stderr
    (line,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert {"russia-iran", "russia", "iran", "arms-transfers"} <= set(line["labels"])
    assert all(0.0 <= s <= 1.0 for s in line["scores"].values())


@pytest.fixture
def fetched(instance_with_model: Path):
    with FeedFileServer(demo_feed_files()) as server:
        feeds = "".join(f'[[feed]]\nname = "{feed_name(p)}"\nurl = "{server.url(p.name)}"\n'
                        for p in demo_feed_files())
        (instance_with_model / "config" / "feeds.toml").write_text(feeds)
        assert run(instance_with_model, "fetch").returncode == 0
    return instance_with_model


def item_tags(home: Path, item_id: int) -> dict[str, str]:
    shown = json.loads(run(home, "show", str(item_id), "--format", "json").stdout)
    return {t["tag"]: t["source"] for t in shown["tags"]}


def test_labels_outrank_the_model_and_survive_reclassification(fetched: Path) -> None:
    home = fetched
    items = [json.loads(line) for line in
             run(home, "query", "--tag", "russia-iran", "--limit", "1").stdout.splitlines()]
    item_id = items[0]["id"]
    labelled = run(home, "label", str(item_id), "--add", "cyber", "--remove", "russia-iran")
    assert labelled.returncode == 0, labelled.stderr
    tags = item_tags(home, item_id)
    assert tags.get("cyber") == "user" and "russia-iran" not in tags
    again = run(home, "reclassify")
    assert again.returncode == 0, again.stderr
    tags = item_tags(home, item_id)
    assert tags.get("cyber") == "user" and "russia-iran" not in tags
    assert run(home, "query", "--tag", "cyber", "--source", "user").returncode == 0
    bad = run(home, "label", str(item_id), "--add", "cyberr")
    assert bad.returncode == 2 and "did you mean 'cyber'" in bad.stderr


def test_suggest_shows_the_least_certain_items(fetched: Path) -> None:
    proc = run(fetched, "label", "--suggest", "3", "--tag", "russia-iran", stdin="")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("russia-iran? (model: ") == 3


def test_models_use_switches_back(fetched: Path, tmp_path: Path) -> None:
    home = fetched
    before = run(home, "models", "list").stdout
    (current,) = [line.split()[1] for line in before.splitlines() if line.startswith("*")]
    assert run(home, "train", "--no-labels").returncode == 0
    after = run(home, "models", "list").stdout
    assert len(after.splitlines()) == len(before.splitlines()) + 1
    assert not any(line.startswith("*") and current in line for line in after.splitlines())
    assert run(home, "models", "use", current).returncode == 0
    assert any(line.startswith("*") and current in line
               for line in run(home, "models", "list").stdout.splitlines())
    unknown = run(home, "models", "use", "nope")
    assert unknown.returncode == 2


def test_train_can_learn_beside_the_instances_own_stored_items(fetched: Path, tmp_path: Path) -> None:
    out = tmp_path / "with-background"
    trained = run(fetched, "train", "--background", "25", "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    meta = json.loads((out / "model.json").read_text())["meta"]
    assert meta["background_items"] == 25  # the demo instance stores 39 items
    plain = json.loads(run(fetched, "classify", "--model", str(out), "--text",
                           "Moscow and Tehran signed a deal on drone parts and Iranian oil swaps.").stdout)
    assert {"russia", "iran"} <= set(plain["labels"])
    refused = run(fetched, "train", "--background", "-1")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
