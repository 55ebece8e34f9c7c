"""Documents, predictions and the trained tag model (prediction, explanation, save/load).

A TagModel is one linear model per tag over the features of classifiers.features, with
Platt-calibrated scores and a per-tag threshold chosen by cross-validation at training time.

Saved models are a directory holding `model.json` (metadata, feature config, region names,
reason names) and `arrays.npz` (numbers only). Loading uses json and np.load(allow_pickle=False),
so a model file can never run code.
"""

from __future__ import annotations

import gc
import json
import math
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from classifiers.features import Batch, FeatureConfig, FeatureSpace, Featurizer

# /2: char n-grams hashed with a polynomial hash + murmur mixer (was crc32): /1 files must be
# retrained, since the same columns now mean different n-grams.
FORMAT = "aggregator-tagmodel/2"
MODEL_JSON = "model.json"
ARRAYS = "arrays.npz"


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    text: str
    categories: tuple[str, ...] = ()
    feed_tags: tuple[str, ...] = ()
    url: str = ""  # the item's link: its path often names the section (/opinion/, /sport/)


@dataclass(frozen=True)
class Example(Doc):
    labels: tuple[str, ...] = ()

    @property
    def doc(self) -> Doc:
        return Doc(self.id, self.title, self.text, self.categories, self.feed_tags, self.url)


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
    # Evidence. A tag with cues (a theme) is assigned only when one of its cue terms is in
    # the text, or when its score reaches `evidence_bar`; a region tag only when one of its
    # names is; a relationship only when all its parts are named. Text of fewer than
    # `min_tokens` words (title and text together) gets no theme, relationship or genre:
    # there is nothing to tell them from.
    evidence_bar: float = 0.995
    min_tokens: int = 5
    # Tags of an exclusive group that win it only by clearing their own threshold (one whose
    # threshold was chosen for precision, such as analysis): else another member is chosen.
    strict: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Scored:
    """A batch's decision values, and what reasons need: per block (word, char, meta) the
    sublinear term counts and each row's scale (block weight / norm)."""

    decision: np.ndarray  # n x T
    logs: tuple[sp.csr_matrix, ...]
    scales: np.ndarray  # 3 x n


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No automatic garbage collection while a batch's results are built.

    A batch creates a few objects per document (dicts, tuples, Predictions) that cannot form
    cycles; each burst of allocations otherwise sets off collections that walk every live
    object of the process (in a service: the token cache, feeds, items), which measured up
    to a third of the time of predicting 20k short items."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def evidence(batch: Batch, tags: Sequence[str], cue_tags: Sequence[str], lexicon_regions: Sequence[str],
             relationships: dict[str, tuple[str, ...]]) -> np.ndarray:
    """n x T: whether document i holds evidence for tag t: one of its cue terms for a theme
    with cues (`cue_tags`, in the batch's cue order), one of its names for a region, every
    part named for a relationship; True for tags that need none."""
    index = {t: i for i, t in enumerate(tags)}
    ev = np.ones((batch.n, len(tags)), dtype=bool)
    for k, tag in enumerate(cue_tags):
        if tag in index:
            ev[:, index[tag]] = batch.cue_counts[:, k] > 0
    named = {r: batch.region_counts[:, j] > 0 for j, r in enumerate(lexicon_regions)}
    for region, col in named.items():
        if region in index:
            ev[:, index[region]] = col
    for rel, parts in relationships.items():
        if rel in index and all(p in named for p in parts):
            ev[:, index[rel]] = np.logical_and.reduce([named[p] for p in parts])
    return ev


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
        cues: dict[str, tuple[str, ...]] | None = None,
        forms: dict[str, tuple[str, ...]] | None = None,
        rules: Rules,
        named_cols: np.ndarray,
        named: tuple[str, ...],
    ) -> None:
        self.version = version
        self.tags = tags
        self.meta = meta
        self.space = space
        self.regions = regions
        self.cues = cues or {}
        self.forms = forms or {}
        self.heads = heads
        self.rules = rules
        self.named_cols = named_cols.astype(np.int64)
        self.named = named
        nh = space.n_hashed + 1
        cfg = space.cfg
        # Prediction numbers the hashed columns by falling document frequency (rising idf):
        # the columns most documents use then share a few MB at the top of the weight
        # matrices and stay in cache during the sparse products (measured ~1.5x faster than
        # the hash order on 20k items). `order[j]` is the space's column behind column j.
        order = np.argsort(space.idf, kind="stable")
        self._order = np.concatenate([order, [space.n_hashed]])
        self._featurizer = Featurizer(space.cfg, regions, self.cues, self.forms)
        self._featurizer.bind(space, order)
        # idf is folded into the heads: a document's block is then scored from its sublinear
        # term counts alone (L = 1 + log tf), and one extra column (idf^2) gives the block's
        # norm in the same product. Per block b with scale_b = weight_b / ||L_b * idf||:
        #   s  = sum_b scale_b   * (L_b   @ coef*idf)     + actor @ coef_a
        #   n2 = sum_b scale_b^2 * (L_b^2 @ rnorm*idf^2)  + actor^2 @ rnorm_a
        idf = space.idf_full().astype(np.float32)[self._order]
        idf2 = idf * idf
        # Built in place, in float32 whatever the heads' dtype (a loaded model's are float16):
        # a temporary per step here made loading peak ~20 MiB above what it keeps.
        self._coef_h = heads.coef[:nh][self._order].astype(np.float32)
        self._coef_h *= idf[:, None]
        width = heads.rnorm.shape[1]
        self._rn_h = np.empty((nh, width + 1), dtype=np.float32)
        self._rn_h[:, :width] = heads.rnorm[:nh][self._order]
        self._rn_h[:, :width] *= idf2[:, None]
        self._rn_h[:, width] = idf2
        aw = np.float32(cfg.actor_weight)
        self._coef_a = heads.coef[nh:].astype(np.float32) * aw
        self._rn_a = heads.rnorm[nh:].astype(np.float32) * (aw * aw)
        self._block_weights = (cfg.word_weight, cfg.char_weight, cfg.meta_weight)
        # column -> index into `named`, for reasons; char n-grams have no readable name
        name_of = np.full(space.n_features, -1, dtype=np.int32)
        name_of[self.named_cols] = np.arange(len(self.named_cols), dtype=np.int32)
        name_of[:nh] = name_of[:nh][self._order]  # in prediction's column order
        self._name_of = name_of
        self._tag_index = {t: i for i, t in enumerate(tags)}
        lex = self._featurizer.lexicon
        self._region_tag = np.array(
            [self._tag_index.get(r, -1) for r in lex.regions], dtype=np.int64
        ).reshape(-1)
        self._kind_cols = {
            kind: np.array([i for i, t in enumerate(tags) if t in group], dtype=np.int64)
            for kind, group in (
                ("cued", set(self.cues)),
                ("relationship", set(rules.relationships)),
                ("genre", {t for g in rules.exclusive for t in g}),
            )
        }
        self._label_sets: dict[bytes, tuple[str, ...]] = {}
        self._source: Path | None = None  # the directory it was loaded from

    # ------------------------------------------------------------------ scoring

    def _score(self, batch: Batch) -> _Scored:
        """Decision values of a featurised batch (see __init__ for the algebra)."""
        n = batch.n
        T = len(self.tags)
        s = np.asarray(batch.actor @ self._coef_a, dtype=np.float32)
        sq = batch.actor.copy()
        sq.data **= 2
        n2 = np.asarray(sq @ self._rn_a, dtype=np.float32)
        logs = []
        scales = np.zeros((3, n), dtype=np.float32)
        blocks = (batch.words, batch.chars, batch.meta)
        for b, (m, weight) in enumerate(zip(blocks, self._block_weights, strict=True)):
            data = np.log(m.data)
            data += np.float32(1.0)
            lm = sp.csr_matrix((data, m.indices, m.indptr), shape=m.shape)
            logs.append(lm)
            if not m.nnz:
                continue
            q = sp.csr_matrix((data * data, m.indices, m.indptr), shape=m.shape) @ self._rn_h
            norm = np.sqrt(q[:, T])
            norm[norm == 0] = 1.0
            scale = (np.float32(weight) / norm).astype(np.float32)
            scales[b] = scale
            s += (lm @ self._coef_h) * scale[:, None]
            n2 += q[:, :T] * (scale * scale)[:, None]
        decision = s / np.sqrt(np.maximum(n2, 1e-12)) + self.heads.bias
        return _Scored(decision=decision.astype(np.float64), logs=tuple(logs), scales=scales)

    def decision_function(self, docs: Sequence[Doc]) -> np.ndarray:
        """Uncalibrated scores, n x len(tags)."""
        return self._score(self._featurizer.batch(docs)).decision

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
                    pieces.append(Doc(f"{d.id}#{k}", d.title, part, d.categories, d.feed_tags, d.url))
                    owners.append(i)
        if not pieces:
            return
        pp = self._calibrate(self.decision_function(pieces))
        cols = np.array([self._tag_index[t] for t in self.rules.passage_tags if t in self._tag_index])
        own = np.asarray(owners)
        for i in np.unique(own):
            best = pp[own == i][:, cols].max(axis=0)
            probs[i, cols] = np.maximum(probs[i, cols], best)

    def predict_proba(self, docs: Sequence[Doc]) -> np.ndarray:
        """Calibrated scores in [0, 1], n x len(tags)."""
        probs = self._calibrate(self.decision_function(docs))
        self._passage_probs(docs, probs)
        return probs

    # ------------------------------------------------------------------ labels

    def _evidence(self, batch: Batch) -> np.ndarray:
        return evidence(batch, self.tags, tuple(self.cues), self._featurizer.lexicon.regions,
                        self.rules.relationships)

    def _forced(self, batch: Batch) -> np.ndarray:
        """n x T: the doc's category, URL section or title label settles genre t."""
        forced = np.zeros((batch.n, len(self.tags)), dtype=bool)
        for k, tag in enumerate(self.forms):
            if tag in self._tag_index:
                forced[:, self._tag_index[tag]] = batch.form_hits[:, k]
        return forced

    def _assign(self, probs: np.ndarray, named: np.ndarray, evidence: np.ndarray | None = None,
                n_tokens: np.ndarray | None = None, forced: np.ndarray | None = None) -> np.ndarray:
        """Boolean n x T label matrix from calibrated scores; `named[i, t]` says whether region
        tag t's names occur in document i (used to complete relationships); `evidence` and
        `n_tokens` gate tags as Rules says; `forced` genres win their group."""
        n, t = probs.shape
        if self.rules.single_label:
            out = np.zeros((n, t), dtype=bool)
            out[np.arange(n), probs.argmax(axis=1)] = True
            return out
        out = probs >= self.heads.threshold
        if evidence is not None:
            out &= evidence | (probs >= self.rules.evidence_bar)
        too_short = (n_tokens < self.rules.min_tokens) if n_tokens is not None else np.zeros(n, dtype=bool)
        for group in self.rules.exclusive:
            idx = np.array([self._tag_index[g] for g in group if g in self._tag_index], dtype=np.int64)
            if len(idx) > 1:
                # The best-scoring tag that clears its threshold; if none does, the best
                # score among the tags that are not strict. So analysis (strict: its threshold
                # is chosen for precision) must clear its threshold, and news is what is left.
                p = probs[:, idx]
                passing = out[:, idx]
                lenient = np.array([self.tags[i] not in self.rules.strict for i in idx])
                fallback = np.where(lenient if lenient.any() else True, p, -1.0).argmax(axis=1)
                best = np.where(passing.any(axis=1), np.where(passing, p, -1.0).argmax(axis=1), fallback)
                if forced is not None:
                    f = forced[:, idx]
                    best = np.where(f.any(axis=1), f.argmax(axis=1), best)
                out[:, idx] = False
                out[np.arange(n), idx[best]] = True
        if too_short.any():
            for kind in ("cued", "relationship", "genre"):
                # (a genre that the item's section or title label settles is told all the same)
                rows = too_short
                if forced is not None and kind == "genre":
                    rows = too_short & ~forced.any(axis=1)
                out[np.ix_(rows, self._kind_cols[kind])] = False
                # and their scores say so: an empty text is not 0.99 about anything
                probs[np.ix_(rows, self._kind_cols[kind])] = 0.0
        # A relationship implies its parts. When the relationship passes its threshold but a part
        # does not, the part is added if the document names that region at all (the relationship
        # head is the better judge of a two-sided story than a one-region head), and the
        # relationship is dropped otherwise (a relation with an absent party is a false alarm).
        for rel, parts in self.rules.relationships.items():
            r = self._tag_index.get(rel)
            if r is None:
                continue
            pidx = np.array([self._tag_index[p] for p in parts if p in self._tag_index], dtype=np.int64)
            on = out[:, r].copy()
            complete = named[:, pidx].all(axis=1)
            out[np.ix_(on & complete, pidx)] = True
            out[on & ~complete, r] = False
        return out

    def _named_regions(self, batch: Batch) -> np.ndarray:
        """n x T: whether region tag t's names occur in document i."""
        named = np.zeros((batch.n, len(self.tags)), dtype=bool)
        have = self._region_tag >= 0
        named[:, self._region_tag[have]] = batch.region_counts[:, have] > 0
        return named

    def predict(self, docs: Sequence[Doc], explain: bool = True) -> list[Prediction]:
        """Tag a batch of documents (vectorised once; pass many at a time).

        With explain=False the reasons are left empty, which is faster for bulk scoring."""
        if not docs:
            return []
        batch = self._featurizer.batch(docs)
        scored = self._score(batch)
        probs = self._calibrate(scored.decision)
        self._passage_probs(docs, probs)
        forced = self._forced(batch)
        labels = self._assign(probs, self._named_regions(batch), self._evidence(batch), batch.n_tokens,
                              forced)
        tags = self.tags
        # Label sets repeat: each distinct one is built once, keyed by its packed bits.
        packed = np.packbits(labels, axis=1)
        keys = [bytes(k) for k in packed]
        sets = self._label_sets
        if len(sets) > 4096:  # bounded in a long-running service
            sets.clear()
        picked = []
        for i, key in enumerate(keys):
            lab = sets.get(key)
            if lab is None:
                lab = sets[key] = tuple(tags[j] for j in np.flatnonzero(labels[i]).tolist())
            picked.append(lab)
        rows = probs.tolist()
        with _gc_paused():
            reasons = self._reasons(batch, scored, labels) if explain else [{} for _ in picked]
            if explain:
                for i, t in zip(*np.nonzero(forced & labels), strict=True):
                    why = reasons[i].get(self.tags[t], ())
                    reasons[i][self.tags[t]] = ("the item's section or title label says so", *why)[:5]
            return [
                Prediction(lab, dict(zip(tags, row, strict=True)), why)
                for lab, row, why in zip(picked, rows, reasons, strict=True)
            ]

    # ------------------------------------------------------------------ reasons

    def _reasons(
        self, batch: Batch, scored: _Scored, labels: np.ndarray, k: int = 4
    ) -> list[dict[str, tuple[str, ...]]]:
        """Per assigned tag, the named features (words, phrases, actor features, categories)
        that added most to its score in this document. Only (document, assigned tag) pairs
        are looked at, so the cost follows the number of labels, not of tags."""
        n, T = labels.shape
        nh = self.space.n_hashed + 1
        words, _, meta = scored.logs
        # Named entries of each document, row by row: (column, value) with value = the
        # feature's weighted value without idf (idf is folded into the heads).
        scale = np.ones(n, dtype=np.float32)
        parts = [
            sp.csr_matrix(
                (m.data * s[np.repeat(np.arange(n), np.diff(m.indptr))], m.indices + off, m.indptr),
                shape=(n, self.space.n_features),
            )
            for m, s, off in (
                (words, scored.scales[0], 0),
                (meta, scored.scales[2], 0),
                (batch.actor, scale, nh),
            )
        ]
        allm = (parts[0] + parts[1] + parts[2]).tocsr()
        keep = self._name_of[allm.indices] >= 0
        # (reduceat would misread empty rows: count by row instead)
        per_row = np.bincount(np.repeat(np.arange(n), np.diff(allm.indptr))[keep], minlength=n)
        cols = allm.indices[keep].astype(np.int64)
        vals = allm.data[keep]
        row_start = np.concatenate([[0], np.cumsum(per_row)])
        # Groups = assigned (document, tag) pairs, row-major; each holds its document's entries.
        g_row, g_tag = np.nonzero(labels)
        sizes = per_row[g_row]
        g_of = np.repeat(np.arange(len(g_row)), sizes)
        at = (
            np.arange(len(g_of))
            - np.repeat(np.cumsum(sizes) - sizes, sizes)
            + np.repeat(row_start[g_row], sizes)
        )
        c = cols[at]
        t = g_tag[g_of]
        hashed = c < nh
        coef = np.empty(len(c), dtype=np.float32)
        coef[hashed] = self._coef_h[c[hashed], t[hashed]]
        coef[~hashed] = self._coef_a[c[~hashed] - nh, t[~hashed]]
        contrib = vals[at] * coef
        pos = contrib > 0
        g_of, c, contrib = g_of[pos], c[pos], contrib[pos].astype(np.float64)
        # Groups are contiguous: sort within them by one key, group + something in (0, 1)
        # that falls as the contribution grows.
        order = np.argsort(g_of + 1.0 / (2.0 + contrib / (contrib.max(initial=0.0) + 1e-30)), kind="stable")
        g_of, c = g_of[order], c[order]
        first = np.searchsorted(g_of, g_of, side="left")
        top = np.arange(len(g_of)) - first < k
        group_idx, c = g_of[top], c[top]
        group = g_row[group_idx] * T + g_tag[group_idx]
        named = self.named
        names = [named[i] for i in self._name_of[c].tolist()]
        out: list[dict[str, tuple[str, ...]]] = [{} for _ in range(n)]
        tags = self.tags
        bounds = np.flatnonzero(np.diff(group)) + 1
        starts = np.concatenate([[0], bounds]).tolist() if len(group) else []
        ends = [*bounds.tolist(), len(group)] if len(group) else []
        for g, s0, e0 in zip(group[starts].tolist(), starts, ends, strict=True):
            out[g // T][tags[g % T]] = tuple(names[s0:e0])
        # Tags with no positive named feature (or added by a relationship) still get a reason.
        assigned = np.flatnonzero(labels.ravel())
        for g in np.setdiff1d(assigned, group[starts] if len(group) else []).tolist():
            i, tag = g // T, tags[g % T]
            implied = [
                rel
                for rel, parts in self.rules.relationships.items()
                if tag in parts and labels[i, self._tag_index.get(rel, g % T)]
            ]
            out[i][tag] = (f"implied by {implied[0]}",) if implied else ("overall wording (char n-grams)",)
        self._evidence_reasons(batch, labels, out)
        return out

    def _evidence_reasons(self, batch: Batch, labels: np.ndarray,
                          out: list[dict[str, tuple[str, ...]]]) -> None:
        """Each assigned theme's reasons start with the cue terms found in the text (or say it was
        assigned on its score alone)."""
        if not self.cues:
            return
        cols = [(k, self._tag_index[tag]) for k, tag in enumerate(self.cues) if tag in self._tag_index]
        wanted = np.zeros(batch.n, dtype=bool)
        for _, t in cols:
            wanted |= labels[:, t]
        if not wanted.any():
            return
        # The cue hits of the documents that need reasons, in order: (doc, position).
        hits = np.flatnonzero(batch.cue_tok)
        docs = np.searchsorted(batch.starts, hits, side="right") - 1
        keep = wanted[docs]
        hits, docs = hits[keep], docs[keep]
        masks = batch.cue_tok[hits]
        norm = self._featurizer.vocab.norm
        found: dict[tuple[int, int], list[str]] = {}  # (doc, cue index) -> terms
        for k, t in cols:
            # Only this tag's hits in the documents it was assigned to (few, for a theme).
            sel = np.flatnonzero((masks & (1 << k)).astype(bool) & labels[docs, t])
            prev_doc, prev_pos = -1, -1
            for d, p, w in zip(docs[sel].tolist(), hits[sel].tolist(),
                               batch.ids[hits[sel]].tolist(), strict=True):
                terms = found.setdefault((d, k), [])
                word = norm[w]
                if d == prev_doc and p == prev_pos + 1 and terms:  # a two-word cue: one term
                    terms[-1] = f"{terms[-1]} {word}"
                elif len(terms) < 3 and word not in terms:
                    terms.append(word)
                prev_doc, prev_pos = d, p
        for k, t in cols:
            tag = self.tags[t]
            for i in np.flatnonzero(labels[:, t]).tolist():
                terms = found.get((i, k), [])
                first = ((f"evidence: {', '.join(dict.fromkeys(terms[:3]))}",) if terms
                         else ("no cue term: score above the evidence bar",))
                out[i][tag] = first + out[i].get(tag, ())

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write the model into directory `path` (created): model.json + arrays.npz."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self._source is not None:  # loaded: the files it came from, byte for byte
            for name in (ARRAYS, MODEL_JSON):
                shutil.copyfile(self._source / name, path / name)
            return path
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
            "cues": {k: list(v) for k, v in self.cues.items()},
            "forms": {k: list(v) for k, v in self.forms.items()},
            "rules": {
                "single_label": self.rules.single_label,
                "relationships": {k: list(v) for k, v in self.rules.relationships.items()},
                "exclusive": [list(g) for g in self.rules.exclusive],
                "passage_chars": self.rules.passage_chars,
                "long_chars": self.rules.long_chars,
                "passage_tags": list(self.rules.passage_tags),
                "evidence_bar": self.rules.evidence_bar,
                "min_tokens": self.rules.min_tokens,
                "strict": list(self.rules.strict),
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
            # As saved (float16): prediction's own matrices are float32, built from these.
            coef=a["coef"],
            rnorm=a["rnorm"],
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
            # Files saved before evidence rules existed: no gating (they hold no cues either).
            evidence_bar=float(r.get("evidence_bar", 1.0)),
            min_tokens=int(r.get("min_tokens", 0)),
            strict=tuple(r.get("strict", ())),
        )
        model = cls(
            version=doc["version"],
            tags=tuple(doc["tags"]),
            meta=doc["meta"],
            space=space,
            regions={k: tuple(v) for k, v in doc["regions"].items()},
            heads=heads,
            cues={k: tuple(v) for k, v in doc.get("cues", {}).items()},
            forms={k: tuple(v) for k, v in doc.get("forms", {}).items()},
            rules=rules,
            named_cols=a["named_cols"],
            named=tuple(doc["named"]),
        )
        # The heads in file order are needed only to save the model, and a loaded model is
        # saved by copying its files: drop them (15 MiB for the default model; the daemon
        # keeps a model loaded for its whole life).
        empty = np.empty((0, len(model.tags)), dtype=np.float32)  # not a slice: that keeps the base
        model.heads = replace(heads, coef=empty, rnorm=empty)
        model._source = path
        return model


def disk_size(path: str | Path) -> int:
    """Bytes used by a saved model directory."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def finite(x: float) -> float:
    """JSON has no NaN/inf: metadata numbers go through this."""
    return x if math.isfinite(x) else 0.0
