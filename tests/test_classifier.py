"""Behaviour of the classifiers package: taxonomy, data reading, model, persistence, store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers import (
    DataError,
    Doc,
    Example,
    TagModel,
    TaxonomyError,
    TrainConfig,
    evaluate,
    list_versions,
    load_current,
    load_taxonomy,
    read_jsonl,
    save_version,
    starter_examples,
    train,
    use_version,
)
from classifiers.model_store import ModelStoreError
from classifiers.probes import PROBES, check
from classifiers.train import STARTER_CONFIG

TAGS = [
    "russia",
    "iran",
    "russia-iran",
    "china",
    "ukraine",
    "israel",
    "united-states",
    "middle-east",
    "caucasus",
    "nuclear",
    "sanctions",
    "arms-transfers",
    "energy",
    "space",
    "cyber",
    "protests",
    "diplomacy",
    "analysis",
    "news",
]


# ----------------------------------------------------------------------------- taxonomy


def test_shipped_taxonomy_has_exactly_the_agreed_tags() -> None:
    tax = load_taxonomy()
    assert sorted(tax.names) == sorted(TAGS)
    assert tax["russia-iran"].kind == "relationship"
    assert tax["russia-iran"].parts == ("russia", "iran")
    assert "Khamenei" in tax["iran"].names and "Kremlin" in tax["russia"].names
    assert {t.kind for t in tax.tags} == {"region", "relationship", "theme", "genre"}


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "taxonomy.toml"
    path.write_text(body, encoding="utf-8")
    return path


_GOOD = """
[[tag]]
name = "russia"
kind = "region"
description = "Russia."
names = ["Russia", "Moscow"]

[[tag]]
name = "iran"
kind = "region"
description = "Iran."
names = ["Iran"]

[[tag]]
name = "energy"
kind = "theme"
description = "Energy."
"""


@pytest.mark.parametrize(
    ("extra", "key", "expected", "found"),
    [
        (
            '[[tag]]\nname = "x"\nkind = "place"\ndescription = "d"\n',
            "tag[3].kind",
            "one of region|relationship|theme|genre",
            "'place'",
        ),
        ('[[tag]]\nname = "x"\nkind = "theme"\ndescription = "d"\ncolour = 1\n', "tag[3].colour", None, None),
        (
            '[[tag]]\nname = "x"\nkind = "theme"\ndescription = 5\n',
            "tag[3].description",
            "a string",
            "integer 5",
        ),
        ('[[tag]]\nname = "iran"\nkind = "theme"\ndescription = "d"\n', "tag[3].name", None, "'iran'"),
        (
            '[[tag]]\nname = "ri"\nkind = "relationship"\ndescription = "d"\nparts = ["russia", "persia"]\n',
            "tag[3].parts[1]",
            "the name of a tag",
            "'persia'",
        ),
        (
            '[[tag]]\nname = "ri"\nkind = "relationship"\ndescription = "d"\nparts = ["russia", "energy"]\n',
            "tag[3].parts[1]",
            "a region tag",
            None,
        ),
        (
            '[[tag]]\nname = "x"\nkind = "region"\ndescription = "d"\nnames = "X"\n',
            "tag[3].names",
            None,
            None,
        ),
    ],
)
def test_taxonomy_errors_name_file_key_expected_found(
    tmp_path: Path, extra: str, key: str, expected: str | None, found: str | None
) -> None:
    path = _write(tmp_path, _GOOD + "\n" + extra)
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.file == str(path) and err.key == key
    if expected is not None:
        assert err.expected == expected
    if found is not None:
        assert err.found == found
    text = str(err)
    assert "\n" not in text
    assert text == f"{path}: {key}: expected {err.expected}, found {err.found}"


def test_taxonomy_error_message_format_matches_the_spec(tmp_path: Path) -> None:
    path = _write(tmp_path, _GOOD + '\n[[tag]]\nname = "x"\nkind = "place"\ndescription = "d"\n')
    with pytest.raises(
        TaxonomyError,
        match=r"tag\[3\]\.kind: expected one of region\|relationship\|theme\|genre, found 'place'$",
    ):
        load_taxonomy(path)


def test_taxonomy_syntax_error_is_a_taxonomy_error(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(_write(tmp_path, "[[tag]\nname="))
    assert info.value.key == "(syntax)"


# ----------------------------------------------------------------------------- data


def test_read_jsonl_reads_rows_and_names_file_and_line_of_a_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    good = {"id": "1", "title": "T", "text": "x", "labels": ["a"], "categories": ["Analysis"]}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({"id": "2", "title": "T", "text": "x"}) + "\n")
    with pytest.raises(DataError, match=rf"^{path}:3: labels: expected"):
        read_jsonl(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataError, match=rf"^{path}:2: invalid JSON"):
        read_jsonl(path)
    path.write_text(json.dumps(good) + "\n")
    (ex,) = read_jsonl(path)
    assert ex.labels == ("a",) and ex.categories == ("Analysis",) and ex.doc.id == "1"


# ----------------------------------------------------------------------------- features and fitting


def test_batch_tokenizer_matches_the_regex_and_keeps_documents_apart() -> None:
    import re

    from classifiers.features import FeatureConfig, Featurizer

    docs = [
        Doc("a", "Iran’s deal—signed", "Moscow\x01Tehran café_bar x² 𝐀b ok"),
        Doc("b", "", ""),
        Doc("c", "Only a title", ""),
        Doc("d", "", "only text " + "word " * 50),
    ]
    fz = Featurizer(FeatureConfig(max_tokens=40), {"iran": ["Iran"], "russia": ["Moscow"]})
    batch = fz.batch(docs)
    regex = re.compile(r"[^\W_]+")
    for i, d in enumerate(docs):
        got = [fz.vocab.norm[t] for t in batch.ids[batch.starts[i] : batch.starts[i + 1]]]
        want = [t.lower() for t in regex.findall(d.title) + regex.findall(d.text.replace("\x01", " "))]
        assert got == want[:40]
    assert batch.region_counts[0].tolist() == [1, 1]  # "Iran" (title) and "Moscow" (text)


def test_many_tags_keep_their_own_label_sets() -> None:
    # 70 tags: label sets are keyed by packed bits, not a 64-bit mask (1 << 69 would wrap).
    rng = np.random.default_rng(3)
    vocab = ["".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 7)) for _ in range(70)]
    rows = [
        Example(f"{i}-{k}", f"{vocab[i]} report", f"{vocab[i]} {vocab[i]} item {k}", labels=(f"t{i}",))
        for i in range(70)
        for k in range(4)
    ]
    model = train(rows, None, config=TrainConfig(folds=2))
    preds = model.predict([Doc("a", vocab[69], vocab[69]), Doc("b", vocab[5], vocab[5])])
    assert [p.labels for p in preds] == [("t69",), ("t5",)]


def test_fit_sample_keeps_positives_and_weights_the_thinned_class() -> None:
    from classifiers.train import fit_sample

    y = np.zeros(10_000, dtype=bool)
    y[::50] = True  # 200 positives
    rows, weights = fit_sample(y, 1_000, seed=0)
    assert len(rows) == 1_000 and np.all(np.diff(rows) > 0)
    assert y[rows].sum() == 200  # every positive kept
    assert weights == {True: 1.0, False: pytest.approx(9_800 / 800)}
    rows, weights = fit_sample(y, 20_000, seed=0)
    assert weights is None and len(rows) == 10_000


# ----------------------------------------------------------------------------- small synthetic models

_TOPICS = {
    "sport": ["match", "goal", "league", "coach", "striker", "season", "cup", "referee"],
    "money": ["shares", "profit", "bank", "market", "investors", "earnings", "bond", "rates"],
    "tech": ["software", "chip", "startup", "app", "cloud", "processor", "code", "devices"],
}


def _synthetic(n_per: int, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for topic, words in _TOPICS.items():
        for i in range(n_per):
            picked = rng.choice(words, size=6).tolist()
            filler = rng.choice(["the", "a", "on", "said", "new", "week", "after"], size=6).tolist()
            text = " ".join(w for pair in zip(picked, filler, strict=True) for w in pair)
            out.append(Example(f"{topic}-{i}", f"{picked[0]} {picked[1]} news", text, labels=(topic,)))
    return out


@pytest.fixture(scope="module")
def single_model() -> TagModel:
    return train(_synthetic(30), None)


def test_fast_scores_equal_the_weighted_features_times_the_heads(single_model: TagModel) -> None:
    from classifiers.features import Featurizer, Weigher

    docs = [Doc("x", "cup final", "striker goal and the coach"), Doc("y", "bank", "shares bond rates")]
    plain = Featurizer(single_model.space.cfg, single_model.regions)
    plain.bind(single_model.space)  # the space's own column order, no idf folding
    X = Weigher(single_model.space)(plain.batch(docs)).stacked()
    heads = single_model.heads
    want = (X @ heads.coef) / np.sqrt(X.multiply(X) @ heads.rnorm) + heads.bias
    assert single_model.decision_function(docs) == pytest.approx(want, abs=1e-4)


def test_single_label_data_gives_exactly_one_label(single_model: TagModel) -> None:
    assert single_model.meta["single_label"] is True
    assert set(single_model.tags) == {"sport", "money", "tech"}  # labels from data without taxonomy
    docs = [Doc("a", "", ""), Doc("b", "cup final", "striker goal"), Doc("c", "x", "shares and software")]
    preds = single_model.predict(docs)
    assert [len(p.labels) for p in preds] == [1, 1, 1]
    assert preds[1].labels == ("sport",)
    assert all(0.0 <= s <= 1.0 for p in preds for s in p.scores.values())
    result = evaluate(single_model, _synthetic(10, seed=1))
    assert set(result) == {
        "n",
        "accuracy",
        "micro_precision",
        "micro_recall",
        "micro_f1",
        "macro_f1",
        "per_label",
    }
    assert result["n"] == 30 and result["accuracy"] > 0.9
    assert set(result["per_label"]["sport"]) == {"precision", "recall", "f1", "support"}


def test_save_load_round_trip_is_identical_and_pickle_free(single_model: TagModel, tmp_path: Path) -> None:
    path = single_model.save(tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "model.json"]
    with np.load(path / "arrays.npz", allow_pickle=False) as z:
        for key in z.files:
            assert z[key].dtype != object
    loaded = TagModel.load(path)
    docs = [
        Doc("x", "goal in the cup", "the coach said"),
        Doc("y", "bank rates", "investors and bond market"),
    ]
    a, b = single_model.predict(docs), loaded.predict(docs)
    assert [p.labels for p in a] == [p.labels for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa.scores == pytest.approx(pb.scores, abs=1e-3)  # weights are stored as float16
    assert loaded.version == single_model.version and loaded.meta == json.loads(json.dumps(single_model.meta))


def test_metadata_records_provenance(single_model: TagModel) -> None:
    meta = single_model.meta
    assert meta["train_size"] == 90 and len(meta["train_sha256"]) == 64
    assert set(meta["libraries"]) >= {"python", "numpy", "sklearn"}
    assert set(meta["cv"]["per_tag"]["sport"]) >= {"precision", "recall", "f1", "threshold"}
    version = single_model.version
    assert len(version.split("-")) == 3 and len(version.split("-")[2]) == 8


def test_model_store_versions_and_current(single_model: TagModel, tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert load_current(models) is None and list_versions(models) == []
    save_version(single_model, models)
    assert list_versions(models) == [single_model.version]
    current = load_current(models)
    assert current is not None and current.version == single_model.version
    with pytest.raises(ModelStoreError):
        use_version(models, "20000101-000000-deadbeef")
    with pytest.raises(ModelStoreError):
        save_version(single_model, models)  # same version twice


# ----------------------------------------------------------------------------- the starter corpus


@pytest.fixture(scope="module")
def starter_model() -> TagModel:
    examples = starter_examples()
    if len(examples) < 200:
        pytest.skip("starter corpus (classifiers/data/*.jsonl) not there yet")
    return train(examples, load_taxonomy(), config=STARTER_CONFIG)  # as the service trains it


# Written for this test, not taken from the corpus.
RUSSIA_IRAN = Doc(
    "t-ri",
    "Tehran and Moscow sign deal on drone parts and grain",
    "Iran's foreign minister Abbas Araghchi and Russian counterpart Sergei Lavrov met in Moscow on "
    "Tuesday and signed an agreement to expand cooperation on drone components, wheat deliveries and "
    "payments in national currencies. The Kremlin said Russia and Iran would coordinate to blunt Western "
    "sanctions, while Iranian officials said joint production at a plant in Tatarstan would continue.",
)
TEHRAN_ONLY = Doc(
    "t-teh",
    "Tehran metro fares rise as city council approves budget",
    "Tehran's city council voted on Monday to raise metro and bus fares by 30 percent, citing inflation "
    "and the falling rial. The mayor said the extra revenue would pay for new carriages, while Iranian "
    "lawmakers in the Majlis criticised the timing ahead of the Nowruz holiday.",
)
IRAN_ISRAEL = Doc(
    "t-ii",
    "Israel says it struck Iranian weapons shipment bound for Hezbollah",
    "The Israeli military said its jets hit a convoy carrying Iranian-made rockets near the Syrian "
    "border overnight. Prime Minister Netanyahu warned Tehran that Israel would act against any attempt "
    "by the IRGC to rearm its allies, and Iran's foreign ministry condemned the strike as aggression.",
)


def test_starter_model_tags_a_fresh_russia_iran_paragraph(starter_model: TagModel) -> None:
    ri, teh, ii = starter_model.predict([RUSSIA_IRAN, TEHRAN_ONLY, IRAN_ISRAEL])
    assert {"russia-iran", "russia", "iran"} <= set(ri.labels)
    assert "russia-iran" not in teh.labels and "iran" in teh.labels
    assert "russia-iran" not in ii.labels and {"iran", "israel"} <= set(ii.labels)
    assert ri.scores["russia-iran"] > 2 * max(teh.scores["russia-iran"], ii.scores["russia-iran"])


def test_long_analysis_probe_gets_its_tags(starter_model: TagModel) -> None:
    preds = starter_model.predict([p.doc for p in PROBES])
    assert check({p.doc.id: pr.labels for p, pr in zip(PROBES, preds, strict=True)}) == []


def test_relationships_imply_their_parts_and_reasons_explain_every_tag(starter_model: TagModel) -> None:
    docs = [ex.doc for ex in starter_examples()[::3]] + [RUSSIA_IRAN, TEHRAN_ONLY, IRAN_ISRAEL]
    preds = starter_model.predict(docs)
    with_relation = [p for p in preds if "russia-iran" in p.labels]
    assert with_relation  # the check below is not vacuous
    for p in with_relation:
        assert {"russia", "iran"} <= set(p.labels)
    for p in preds:
        assert set(p.reasons) == set(p.labels)
        for reasons in p.reasons.values():
            assert 1 <= len(reasons) <= 5 and all(isinstance(r, str) and r for r in reasons)
    (ri,) = starter_model.predict([RUSSIA_IRAN])
    assert any("iran+russia" in r for r in ri.reasons["russia-iran"])


def test_relationship_without_a_named_part_is_dropped(starter_model: TagModel) -> None:
    probs = np.zeros((1, len(starter_model.tags)))
    tags = starter_model.tags
    probs[0, tags.index("russia-iran")] = 0.99
    probs[0, tags.index("russia")] = 0.99
    named = np.zeros_like(probs, dtype=bool)
    named[0, tags.index("russia")] = True
    out = starter_model._assign(probs, named)  # iran not named at all: the relation goes
    assert not out[0, tags.index("russia-iran")]
    named[0, tags.index("iran")] = True  # iran named but below threshold: the part is added
    out = starter_model._assign(probs, named)
    assert out[0, tags.index("russia-iran")] and out[0, tags.index("iran")]


def test_default_model_is_small(starter_model: TagModel, tmp_path: Path) -> None:
    # Its load time is measured by bench/evaluate_classifier.py --only default, not here.
    path = starter_model.save(tmp_path / "default")
    size = sum(p.stat().st_size for p in path.iterdir())
    assert size <= 10_000_000


def test_a_loaded_model_keeps_no_training_layout_and_saves_byte_for_byte(
        single_model: TagModel, tmp_path: Path) -> None:
    # A daemon keeps its model loaded for its whole life: the heads in file order (only
    # needed to write the files) are dropped at load, and saving copies the files instead.
    first = single_model.save(tmp_path / "a")
    loaded = TagModel.load(first)
    assert loaded.heads.coef.size == 0 and loaded.heads.rnorm.size == 0
    again = loaded.save(tmp_path / "b")
    for name in ("arrays.npz", "model.json"):
        assert (again / name).read_bytes() == (first / name).read_bytes()
    docs = [Doc("x", "goal in the cup", "the coach said")]
    assert TagModel.load(again).predict(docs) == loaded.predict(docs)


@pytest.mark.parametrize(
    "options",
    [{"nb_beta": 1.0}, {"nb_renorm": False}, {"nb_renorm": False, "plain_mix": 1.0}, {"loss": "hinge"}],
)
def test_training_variants_score_like_the_model(options: dict) -> None:
    # Out-of-fold scores (calibration, thresholds) come from train._decide: it must be the
    # model's own decision function whatever the head variant.
    from classifiers.features import Featurizer, Weigher
    from classifiers.train import _decide

    model = train(_synthetic(30), None, config=TrainConfig(**options))
    docs = [Doc("x", "cup final", "striker goal and the coach"), Doc("y", "bank", "shares bond rates")]
    plain = Featurizer(model.space.cfg, model.regions)
    plain.bind(model.space)
    X = Weigher(model.space)(plain.batch(docs)).stacked()
    h = model.heads
    for t in range(len(model.tags)):
        got = _decide(X, h.rnorm[:, t].astype(np.float64), h.coef[:, t].astype(np.float64), h.bias[t])
        assert model.decision_function(docs)[:, t] == pytest.approx(got, abs=1e-4)
    assert [p.labels for p in model.predict(docs)] == [("sport",), ("money",)]


def test_plain_mix_needs_a_shared_norm() -> None:
    with pytest.raises(ValueError, match="nb_renorm"):
        train(_synthetic(5), None, config=TrainConfig(plain_mix=0.5))


# ----------------------------------------------------------------------------- evidence and precision


def test_cue_lexicon_matches_words_prefixes_phrases_and_capitals() -> None:
    from classifiers.features import FeatureConfig, Featurizer

    cues = {"sanctions": ("sanction*", "export control*", "OFAC"), "energy": ("oil", "power grid")}
    f = Featurizer(FeatureConfig(), {}, cues)
    docs = [
        Doc("a", "EU sanctioned three banks", "and tightened export controls"),
        Doc("b", "Ofac is not OFAC", "the grid went down; no power"),
        Doc("c", "Oil and the power grid", "oilfield"),
        Doc("d", "A sanctuary for birds", ""),
    ]
    b = f.batch(docs)
    assert b.cue_counts.tolist() == [[3, 0], [1, 0], [0, 3], [0, 0]]
    assert b.n_tokens.tolist() == [8, 10, 6, 4]


def test_taxonomy_cues_only_on_themes_and_min_precision_in_range(tmp_path: Path) -> None:
    from classifiers.taxonomy import parse_taxonomy

    region = {"name": "iran", "kind": "region", "description": "d", "names": ["Iran"]}
    with pytest.raises(TaxonomyError, match=r"tag\[0\]\.cues: expected cues only on a theme tag"):
        parse_taxonomy({"tag": [dict(region, cues=["x"])]})
    theme = {"name": "energy", "kind": "theme", "description": "d"}
    with pytest.raises(TaxonomyError, match=r"cues\[0\]: expected a term, optionally ending in \*"):
        parse_taxonomy({"tag": [dict(theme, cues=["o*l"])]})
    with pytest.raises(TaxonomyError, match=r"min_precision: expected a number in \(0, 1\], found float 1.5"):
        parse_taxonomy({"tag": [dict(theme, min_precision=1.5)]})
    tax = parse_taxonomy({"tag": [dict(theme, cues=["oil", "gas*"], min_precision=0.8)]})
    assert tax.cues == {"energy": ("oil", "gas*")} and tax["energy"].min_precision == 0.8
    assert all(load_taxonomy()[t].cues for t in
               ("nuclear", "sanctions", "arms-transfers", "energy", "space", "cyber", "protests", "diplomacy"))


# Written for these tests: text unlike anything in training, and off-topic items.
OFF_TOPIC = [
    Doc("o1", "Hawks edge Magpies in a thriller at the MCG", "A late goal sealed a four-point win before 60,000 fans."),
    Doc("o2", "Sourdough starter tips for beginners", "Feed it flour and water daily and keep it warm."),
    Doc("o3", "", ""),
    Doc("o4", "Heute im Test: das neue Notebook", "Schnell, leise und mit langer Akkulaufzeit."),
]


def test_no_theme_without_evidence_and_none_for_empty_text(starter_model: TagModel) -> None:
    themes = set(load_taxonomy().cues) | {"russia-iran"}
    for p in starter_model.predict(OFF_TOPIC):
        assert not themes & set(p.labels), p
    empty = starter_model.predict([Doc("e", "", "")])[0]
    assert empty.labels == ()  # no theme, no genre: nothing to tell them from
    assert max(empty.scores[t] for t in themes) == 0.0


def test_a_theme_needs_a_cue_or_a_score_above_the_evidence_bar(starter_model: TagModel) -> None:
    tags = starter_model.tags
    e = tags.index("energy")
    probs = np.zeros((2, len(tags)))
    probs[:, e] = [0.95, 0.999]
    named = np.zeros_like(probs, dtype=bool)
    evidence = np.ones_like(named)
    evidence[:, e] = False
    out = starter_model._assign(probs.copy(), named, evidence, np.array([50, 50]))
    assert out[:, e].tolist() == [False, True]  # 0.999 clears the 0.995 bar without a cue
    evidence[:, e] = True
    out = starter_model._assign(probs.copy(), named, evidence, np.array([50, 3]))
    assert out[:, e].tolist() == [True, False]  # three words are too few to tell


def test_reasons_name_the_evidence_found(starter_model: TagModel) -> None:
    doc = Doc("s", "Treasury sanctions tanker owners over Iranian oil shipments",
              "The designations target six companies accused of helping ship crude to China.")
    p = starter_model.predict([doc])[0]
    assert {"sanctions", "energy"} <= set(p.labels)
    assert p.reasons["sanctions"][0].startswith("evidence: sanctions")
    assert "oil" in p.reasons["energy"][0] and "crude" in p.reasons["energy"][0]


def test_theme_thresholds_are_chosen_for_precision_on_a_realistic_mix(starter_model: TagModel) -> None:
    per_tag = starter_model.meta["cv"]["per_tag"]
    for theme in ("nuclear", "sanctions", "energy", "diplomacy"):
        assert per_tag[theme]["min_precision"] == 0.85
        assert per_tag[theme]["precision"] >= 0.85 or per_tag[theme]["recall"] < 0.5
    assert per_tag["analysis"]["min_precision"] == 0.98


@pytest.mark.parametrize(
    ("p", "y", "w", "target", "expected"),
    [
        # F1 alone: keep all three positives and one negative
        ([0.9, 0.8, 0.7, 0.6, 0.1], [1, 1, 0, 1, 0], None, None, (0.35, 0.75, 1.0)),
        # precision 0.9 wanted: stop before the first negative
        ([0.9, 0.8, 0.7, 0.6, 0.1], [1, 1, 0, 1, 0], None, 0.9, (0.75, 1.0, 2 / 3)),
        # the negative weighs 4 (a realistic mix): precision 0.6 then stops before it too
        ([0.9, 0.8, 0.7, 0.6, 0.1], [1, 1, 0, 1, 0], [1, 1, 4, 1, 1], 0.6, (0.75, 1.0, 2 / 3)),
    ],
)
def test_best_threshold_for_f1_or_for_precision(p, y, w, target, expected) -> None:
    from classifiers.train import best_threshold

    thr, prec, rec, _ = best_threshold(np.array(p), np.array(y, dtype=bool),
                                       None if w is None else np.array(w, dtype=float), target)
    assert (thr, prec, rec) == pytest.approx(expected)


def test_genre_form_features_read_title_forms_url_sections_and_length() -> None:
    from classifiers.features import form_tokens

    assert form_tokens("Analysis: Why the rial keeps falling", "x" * 700, "https://example.org/opinion/2020/rial") == [
        "titleform=analysis", "title1=analysis", "path=opinion", "len=medium"]
    assert form_tokens("Opinion | A fragile truce", "", "") == ["titleform=opinion", "title1=opinion", "len=empty"]
    assert form_tokens("Is the deal dead?", "short", "http://x.org/news/world-123") == [
        "title1=is", "title=question", "path=news", "len=brief"]


def test_genre_form_features_read_bylines_and_programme_names() -> None:
    from classifiers.features import form_tokens

    assert form_tokens("JAN MOIR: The summer we lost", "JAN MOIR: It began", "") == [
        "titleform=byline", "text=byline", "title1=jan", "len=brief"]
    assert form_tokens("Can the truce hold? | Inside Story", "A debate.", "")[:1] == ["titlesuffix=inside story"]


def test_a_sites_section_or_title_label_settles_the_genre(starter_model: TagModel) -> None:
    report = "Police said the bridge would reopen on Monday after repairs to its deck were finished."
    plain, labelled, section, category = starter_model.predict([
        Doc("a", "Bridge to reopen on Monday", report),
        Doc("b", "Analysis: Bridge to reopen on Monday", report),
        Doc("c", "Bridge to reopen on Monday", report, url="https://x.example/opinion/bridge-reopens"),
        Doc("d", "Bridge to reopen on Monday", report, categories=("Commentary",)),
    ])
    assert "news" in plain.labels
    for p in (labelled, section, category):
        assert "analysis" in p.labels
        assert p.reasons["analysis"][0] == "the item's section or title label says so"
