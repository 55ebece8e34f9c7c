"""Documents, predictions and the trained tag model (prediction, explanation, save/load).

A TagModel is one linear model per tag over the features of classifiers.features, with
Platt-calibrated scores and a per-tag threshold chosen by cross-validation at training time.

Saved models are a directory holding `model.json` (metadata, feature config, region names,
reason names) and `arrays.npz` (numbers only). Loading uses json and np.load(allow_pickle=False),
so a model file can never run code.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from classifiers.features import Batch, FeatureConfig, FeatureSpace, Featurizer, Weigher, Weighted

FORMAT = "aggregator-tagmodel/1"
MODEL_JSON = "model.json"
ARRAYS = "arrays.npz"


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    text: str
    categories: tuple[str, ...] = ()
    feed_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Example(Doc):
    labels: tuple[str, ...] = ()

    @property
    def doc(self) -> Doc:
        return Doc(self.id, self.title, self.text, self.categories, self.feed_tags)


@dataclass(frozen=True)
class Prediction:
    labels: tuple[str, ...]
    scores: dict[str, float]
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Heads:
    """The per-tag linear heads. Columns follow the FeatureSpace: hashed (incl. trash), then actor.

    score_t(x) = x @ coef[:, t] / ||x * r_t|| + bias_t, where r_t is the tag's naive-Bayes
    feature scaling (its square is `rnorm`); prob = sigmoid(platt_a * score + platt_b)."""

    coef: np.ndarray  # F x T float32
    rnorm: np.ndarray  # F x T float32 (r_t squared)
    bias: np.ndarray  # T
    platt_a: np.ndarray  # T
    platt_b: np.ndarray  # T
    threshold: np.ndarray  # T, on calibrated probability


@dataclass(frozen=True)
class Rules:
    """What ties tags together beyond the linear heads."""

    single_label: bool = False
    # relationship tag -> its region parts
    relationships: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # groups of tags of which exactly one is assigned (e.g. genre: news | analysis)
    exclusive: tuple[tuple[str, ...], ...] = ()
    # documents longer than `long_chars` are also scored passage by passage (passages of about
    # `passage_chars`, the size of a training item), for the tags in `passage_tags`
    passage_chars: int = 800
    long_chars: int = 3000
    passage_tags: tuple[str, ...] = ()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


_PARA_RE = re.compile(r"\n\s*\n|(?<=[.!?])\s+(?=[A-Z\"'])")


def split_passages(text: str, size: int) -> list[str]:
    """Split a long text into passages of about `size` chars on paragraph/sentence boundaries."""
    pieces = [p for p in _PARA_RE.split(text) if p.strip()]
    out: list[str] = []
    cur: list[str] = []
    length = 0
    for p in pieces:
        if length and length + len(p) > size:
            out.append(" ".join(cur))
            cur, length = [], 0
        cur.append(p)
        length += len(p) + 1
    if cur:
        out.append(" ".join(cur))
    return out


class TagModel:
    """A trained multi-label (or single-label) tagger. Use `predict` on batches of documents."""

    def __init__(
        self,
        *,
        version: str,
        tags: tuple[str, ...],
        meta: dict[str, Any],
        space: FeatureSpace,
        regions: dict[str, tuple[str, ...]],
        heads: Heads,
        rules: Rules,
        named_cols: np.ndarray,
        named: tuple[str, ...],
    ) -> None:
        self.version = version
        self.tags = tags
        self.meta = meta
        self.space = space
        self.regions = regions
        self.heads = heads
        self.rules = rules
        self.named_cols = named_cols.astype(np.int64)
        self.named = named
        self._featurizer = Featurizer(space.cfg, regions)
        self._featurizer.bind(space)
        self._weigher = Weigher(space)
        nh = space.n_hashed + 1
        self._coef_h = np.ascontiguousarray(heads.coef[:nh], dtype=np.float32)
        self._coef_a = np.ascontiguousarray(heads.coef[nh:], dtype=np.float32)
        self._rn_h = np.ascontiguousarray(heads.rnorm[:nh], dtype=np.float32)
        self._rn_a = np.ascontiguousarray(heads.rnorm[nh:], dtype=np.float32)
        # column -> index into `named`, for reasons; char n-grams have no readable name
        self._name_of = np.full(space.n_features, -1, dtype=np.int32)
        self._name_of[self.named_cols] = np.arange(len(self.named_cols), dtype=np.int32)
        self._tag_index = {t: i for i, t in enumerate(tags)}
        actor_names = self._featurizer.lexicon.feature_names
        self._actor_named_col = {
            r: nh + actor_names.index(f"actor {r}") for r in regions if f"actor {r}" in actor_names
        }

    # ------------------------------------------------------------------ scoring

    def _featurize(self, docs: Sequence[Doc]) -> tuple[Batch, Weighted]:
        batch = self._featurizer.batch(docs)
        return batch, self._weigher(batch)

    def _decision(self, w: Weighted) -> np.ndarray:
        s = w.actor @ self._coef_a
        n2 = (w.actor.multiply(w.actor)) @ self._rn_a
        for p in w.parts:
            s += p @ self._coef_h
            sq = sp.csr_matrix((p.data * p.data, p.indices, p.indptr), shape=p.shape)
            n2 += sq @ self._rn_h
        return np.asarray(s / np.sqrt(np.maximum(n2, 1e-12)) + self.heads.bias, dtype=np.float64)

    def decision_function(self, docs: Sequence[Doc]) -> np.ndarray:
        """Uncalibrated scores, n x len(tags)."""
        return self._decision(self._featurize(docs)[1])

    def _calibrate(self, s: np.ndarray) -> np.ndarray:
        return _sigmoid(s * self.heads.platt_a + self.heads.platt_b)

    def _passage_probs(self, docs: Sequence[Doc], probs: np.ndarray) -> None:
        """Long articles: a tag also counts when one passage is about it.

        Training items are short; a 3,000-word analysis touches many themes, each in a few
        paragraphs, and its whole-document vector dilutes every one of them (measured: the
        themes of a long Russia-Iran analysis score 0.1-0.4 whole, 0.8-1.0 in their own
        passage). Each passage is scored like a training item, and the document keeps per tag
        the larger of its own score and its best passage's. Genre tags are judged on the
        whole document only: a passage out of an analysis reads like news."""
        size = self.rules.passage_chars
        if size <= 0 or not self.rules.passage_tags:
            return
        owners: list[int] = []
        pieces: list[Doc] = []
        for i, d in enumerate(docs):
            if len(d.text) > self.rules.long_chars:
                for k, part in enumerate(split_passages(d.text, size)):
                    pieces.append(Doc(f"{d.id}#{k}", d.title, part, d.categories, d.feed_tags))
                    owners.append(i)
        if not pieces:
            return
        pp = self._calibrate(self._decision(self._featurize(pieces)[1]))
        cols = np.array([self._tag_index[t] for t in self.rules.passage_tags if t in self._tag_index])
        own = np.asarray(owners)
        for i in np.unique(own):
            best = pp[own == i][:, cols].max(axis=0)
            probs[i, cols] = np.maximum(probs[i, cols], best)

    def predict_proba(self, docs: Sequence[Doc]) -> np.ndarray:
        """Calibrated scores in [0, 1], n x len(tags)."""
        probs = self._calibrate(self._decision(self._featurize(docs)[1]))
        self._passage_probs(docs, probs)
        return probs

    # ------------------------------------------------------------------ labels

    def _assign(self, probs: np.ndarray, named: np.ndarray) -> np.ndarray:
        """Boolean n x T label matrix from calibrated scores; `named[i, t]` says whether region
        tag t's names occur in document i (used to complete relationships)."""
        n, t = probs.shape
        if self.rules.single_label:
            out = np.zeros((n, t), dtype=bool)
            out[np.arange(n), probs.argmax(axis=1)] = True
            return out
        out = probs >= self.heads.threshold
        for group in self.rules.exclusive:
            idx = [self._tag_index[g] for g in group if g in self._tag_index]
            if len(idx) > 1:
                best = np.asarray(idx)[probs[:, idx].argmax(axis=1)]
                out[:, idx] = False
                out[np.arange(n), best] = True
        # A relationship implies its parts. When the relationship passes its threshold but a part
        # does not, the part is added if the document names that region at all (the relationship
        # head is the better judge of a two-sided story than a one-region head), and the
        # relationship is dropped otherwise (a relation with an absent party is a false alarm).
        for rel, parts in self.rules.relationships.items():
            r = self._tag_index.get(rel)
            if r is None:
                continue
            pidx = [self._tag_index[p] for p in parts if p in self._tag_index]
            for i in np.flatnonzero(out[:, r]):
                if all(named[i, p] for p in pidx):
                    out[i, pidx] = True
                else:
                    out[i, r] = False
        return out

    def _named_regions(self, w: Weighted) -> np.ndarray:
        named = np.zeros((w.actor.shape[0], len(self.tags)), dtype=bool)
        nh = self.space.n_hashed + 1
        actor = w.actor.tocsc()
        for region, col in self._actor_named_col.items():
            t = self._tag_index.get(region)
            if t is not None:
                c = actor[:, col - nh]
                named[c.nonzero()[0], t] = True
        return named

    def predict(self, docs: Sequence[Doc], explain: bool = True) -> list[Prediction]:
        """Tag a batch of documents (vectorised once; pass many at a time).

        With explain=False the reasons are left empty, which is faster for bulk scoring."""
        if not docs:
            return []
        _, w = self._featurize(docs)
        probs = self._calibrate(self._decision(w))
        self._passage_probs(docs, probs)
        labels = self._assign(probs, self._named_regions(w))
        reasons = self._reasons(w, labels) if explain else [{} for _ in docs]
        tags = self.tags
        rows = probs.tolist()
        picked = [tuple(t for t, on in zip(tags, row, strict=True) if on) for row in labels.tolist()]
        return [
            Prediction(labels=lab, scores=dict(zip(tags, row, strict=True)), reasons=why)
            for lab, row, why in zip(picked, rows, reasons, strict=True)
        ]

    # ------------------------------------------------------------------ reasons

    def _reasons(self, w: Weighted, labels: np.ndarray, k: int = 4) -> list[dict[str, tuple[str, ...]]]:
        """Per assigned tag, the named features (words, phrases, actor features, categories)
        that added most to its score in this document."""
        n = labels.shape[0]
        nh = self.space.n_hashed + 1
        rows_l, cols_l, vals_l = [], [], []
        for m, offset in ((w.parts[0], 0), (w.parts[2], 0), (w.actor, nh)):
            m = m.tocsr()
            r = np.repeat(np.arange(n, dtype=np.int64), np.diff(m.indptr))
            c = m.indices.astype(np.int64) + offset
            keep = self._name_of[c] >= 0
            rows_l.append(r[keep])
            cols_l.append(c[keep])
            vals_l.append(m.data[keep])
        rows = np.concatenate(rows_l)
        cols = np.concatenate(cols_l)
        vals = np.concatenate(vals_l).astype(np.float64)
        out: list[dict[str, tuple[str, ...]]] = [{} for _ in range(n)]
        coef = self.heads.coef
        for t in np.flatnonzero(labels.any(axis=0)):
            sel = labels[rows, t]
            rr, cc = rows[sel], cols[sel]
            contrib = vals[sel] * coef[cc, t]
            pos = contrib > 0
            rr, cc, contrib = rr[pos], cc[pos], contrib[pos]
            order = np.lexsort((-contrib, rr))
            rr, cc = rr[order], cc[order]
            first = np.searchsorted(rr, rr, side="left")
            rank = np.arange(len(rr)) - first
            top = rank < k
            tag = self.tags[t]
            for i, c in zip(rr[top].tolist(), cc[top].tolist(), strict=True):
                out[i].setdefault(tag, ())
                out[i][tag] += (self.named[self._name_of[c]],)
        # Tags with no positive named feature (or added by a relationship) still get a reason.
        for i in range(n):
            for t in np.flatnonzero(labels[i]):
                tag = self.tags[t]
                if tag not in out[i]:
                    implied = [rel for rel, parts in self.rules.relationships.items() if tag in parts]
                    implied = [rel for rel in implied if labels[i, self._tag_index.get(rel, t)]]
                    out[i][tag] = (
                        (f"implied by {implied[0]}",) if implied else ("overall wording (char n-grams)",)
                    )
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write the model into directory `path` (created): model.json + arrays.npz."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        h = self.heads
        arrays = {
            "cols": self.space.cols.astype(np.int32),
            "idf": self.space.idf.astype(np.float32),
            "coef": h.coef.astype(np.float16),
            "rnorm": h.rnorm.astype(np.float16),
            "bias": h.bias.astype(np.float64),
            "platt_a": h.platt_a.astype(np.float64),
            "platt_b": h.platt_b.astype(np.float64),
            "threshold": h.threshold.astype(np.float64),
            "named_cols": self.named_cols.astype(np.int32),
        }
        np.savez_compressed(path / ARRAYS, **arrays)  # type: ignore[arg-type]
        doc = {
            "format": FORMAT,
            "version": self.version,
            "tags": list(self.tags),
            "meta": self.meta,
            "feature_config": asdict(self.space.cfg),
            "n_actor": self.space.n_actor,
            "regions": {k: list(v) for k, v in self.regions.items()},
            "rules": {
                "single_label": self.rules.single_label,
                "relationships": {k: list(v) for k, v in self.rules.relationships.items()},
                "exclusive": [list(g) for g in self.rules.exclusive],
                "passage_chars": self.rules.passage_chars,
                "long_chars": self.rules.long_chars,
                "passage_tags": list(self.rules.passage_tags),
            },
            "named": list(self.named),
        }
        (path / MODEL_JSON).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TagModel:
        """Load a model saved by `save`. Reads JSON and plain arrays only (no pickle)."""
        path = Path(path)
        doc = json.loads((path / MODEL_JSON).read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"{path / MODEL_JSON}: format: expected {FORMAT!r}, found {doc.get('format')!r}")
        with np.load(path / ARRAYS, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        cfg_raw = doc["feature_config"]
        cfg = FeatureConfig(**cfg_raw)
        space = FeatureSpace(
            cfg=cfg, cols=a["cols"].astype(np.int64), idf=a["idf"], n_actor=int(doc["n_actor"])
        )
        heads = Heads(
            coef=a["coef"].astype(np.float32),
            rnorm=a["rnorm"].astype(np.float32),
            bias=a["bias"],
            platt_a=a["platt_a"],
            platt_b=a["platt_b"],
            threshold=a["threshold"],
        )
        r = doc["rules"]
        rules = Rules(
            single_label=bool(r["single_label"]),
            relationships={k: tuple(v) for k, v in r["relationships"].items()},
            exclusive=tuple(tuple(g) for g in r["exclusive"]),
            passage_chars=int(r["passage_chars"]),
            long_chars=int(r["long_chars"]),
            passage_tags=tuple(r["passage_tags"]),
        )
        return cls(
            version=doc["version"],
            tags=tuple(doc["tags"]),
            meta=doc["meta"],
            space=space,
            regions={k: tuple(v) for k, v in doc["regions"].items()},
            heads=heads,
            rules=rules,
            named_cols=a["named_cols"],
            named=tuple(doc["named"]),
        )


def disk_size(path: str | Path) -> int:
    """Bytes used by a saved model directory."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def finite(x: float) -> float:
    """JSON has no NaN/inf: metadata numbers go through this."""
    return x if math.isfinite(x) else 0.0
