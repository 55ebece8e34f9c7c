"""Feature extraction: hashed word 1-2 grams and char n-grams (TF-IDF), feed metadata, actor features.

Why this is hand-written rather than sklearn's vectorizers:
- Speed. Char n-grams are what make short texts generalise, but sklearn builds them in Python for
  every document. Here they are computed once per distinct word and cached, and a batch is
  assembled with numpy, so one core vectorises tens of thousands of items a second.
- Size and safety. Features are hashed (crc32, stable across processes, unlike `hash()`), so a
  saved model needs no vocabulary: only the sorted list of hashed columns it uses and their idf,
  stored as plain arrays.

Actor features come from the taxonomy's region `names`: which regions are named, where
(title, lead), how dominantly (share of all mentions, so long articles are not favoured) and
which pairs of regions are named close together (`pair` features), which is what separates
"Russia and Iran cooperate" from a Moscow-only story or an Iran-Israel one.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

import numpy as np
import scipy.sparse as sp

_TOKEN_RE = re.compile(r"[^\W_]+")
_DIGITS = str.maketrans("0123456789", "0000000000")
_META_BITS = 12
# Tokens longer than this are URLs or glued junk: their char n-grams are skipped.
_MAX_CHAR_TOKEN = 24
# The cache is cleared past this many distinct tokens so a long-running service stays bounded.
_MAX_CACHE = 2_000_000


class DocLike(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def categories(self) -> tuple[str, ...]: ...
    @property
    def feed_tags(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class FeatureConfig:
    hash_bits: int = 20
    char_min: int = 2
    char_max: int = 5
    # Long articles are cut here: beyond a few thousand words the topic is settled and
    # the cost keeps growing.
    max_tokens: int = 4000
    pair_window: int = 20  # tokens: "named close together" for pair features
    lead_tokens: int = 50  # tokens of body text counted as the lead
    word_weight: float = 1.0
    char_weight: float = 1.0
    meta_weight: float = 0.5
    actor_weight: float = 0.5

    @property
    def word_offset(self) -> int:
        return 0

    @property
    def char_offset(self) -> int:
        return 1 << self.hash_bits

    @property
    def meta_offset(self) -> int:
        return 2 << self.hash_bits

    @property
    def hashed_width(self) -> int:
        return (2 << self.hash_bits) + (1 << _META_BITS)

    def block_of(self, raw_cols: np.ndarray) -> np.ndarray:
        """0 = word, 1 = char, 2 = meta, for raw hashed column numbers."""
        return np.minimum(raw_cols >> self.hash_bits, 2).astype(np.int8)


def normalize_token(token: str) -> str:
    return token.lower().translate(_DIGITS)


def tokenize(text: str) -> list[str]:
    """Raw tokens (case kept: acronym names like US/IRGC are matched case-sensitively)."""
    return _TOKEN_RE.findall(text)


def _crc(s: str) -> int:
    return zlib.crc32(s.encode("utf-8"))


def bigram_cols(first: np.ndarray, second: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Raw word-block columns of bigrams, from the crc32 hashes of their two tokens."""
    mixed = (
        first.astype(np.int64) * np.int64(0x9E3779B1) + second.astype(np.int64) * np.int64(31) + 0x5BD1E995
    ) % (1 << 32)
    return cfg.word_offset + (mixed & ((1 << cfg.hash_bits) - 1))


def meta_col(token: str, cfg: FeatureConfig) -> int:
    return cfg.meta_offset + (_crc(token) & ((1 << _META_BITS) - 1))


def meta_tokens(categories: Sequence[str], feed_tags: Sequence[str]) -> list[str]:
    out = [f"cat={' '.join(c.lower().split())}" for c in categories if c.strip()]
    out += [f"feedtag={' '.join(t.lower().split())}" for t in feed_tags if t.strip()]
    return out


class ActorLexicon:
    """Region names from the taxonomy, tokenised the same way as documents."""

    def __init__(self, regions: Mapping[str, Sequence[str]]) -> None:
        self.regions: tuple[str, ...] = tuple(regions)
        self.unigram_ci: dict[str, int] = {}  # normalised token -> region index
        self.unigram_cs: dict[str, int] = {}  # raw token (acronyms) -> region index
        self.bigram: dict[tuple[str, str], int] = {}  # first two normalised tokens -> region
        for r, (_region, names) in enumerate(regions.items()):
            for name in names:
                toks = tokenize(name)
                if not toks:
                    continue
                if len(toks) == 1:
                    tok = toks[0]
                    # All-caps names (US, IRGC, FSB) would match common words in lowercase.
                    if tok.isupper() and len(tok) <= 5:
                        self.unigram_cs.setdefault(tok, r)
                    else:
                        self.unigram_ci.setdefault(normalize_token(tok), r)
                else:
                    self.bigram.setdefault((normalize_token(toks[0]), normalize_token(toks[1])), r)
        self.bigram_starts = {a for a, _ in self.bigram}
        pairs = list(combinations(range(len(self.regions)), 2))
        self.pair_index = {p: i for i, p in enumerate(pairs)}
        names_out: list[str] = []
        for region in self.regions:
            names_out += [
                f"actor {region}",
                f"actor {region} in title",
                f"actor {region} in lead",
                f"actor {region} share",
                f"actor {region} most named",
                f"actor {region} named 3+ times",
            ]
        self.per_region = 6
        for a, b in pairs:
            x, y = sorted((self.regions[a], self.regions[b]))
            names_out += [f"actor pair {x}+{y}", f"actor pair {x}+{y} share", f"actor pair {x}+{y} in title"]
        self.per_pair = 3
        self.feature_names: tuple[str, ...] = tuple(names_out)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


class _Vocab:
    """Per-token cache: the token's word column, its row of char n-gram columns, its region
    match. Grows with use.

    Rows are kept as one CSR structure over all tokens seen, so the features of a whole batch
    are one sparse product (token counts per document @ token rows): char n-grams are never
    rebuilt per occurrence. When bound to a fitted space, columns are stored already mapped to
    the model's columns (unused ones to a trash column of weight 0)."""

    def __init__(self, cfg: FeatureConfig, lexicon: ActorLexicon, table: np.ndarray | None) -> None:
        self.cfg = cfg
        self.lex = lexicon
        self.table = table
        self.index: dict[str, int] = {}
        self.norm: list[str] = []
        cap = 1024
        self.whash = np.zeros(cap, dtype=np.uint32)
        self.wcol = np.zeros(cap, dtype=np.int64)
        self.region = np.full(cap, -1, dtype=np.int16)
        self.bistart = np.zeros(cap, dtype=bool)
        self.indptr = np.zeros(cap + 1, dtype=np.int64)
        self.cdata = np.zeros(cap * 16, dtype=np.int32)
        self.cused = 0
        self._norm_cache: dict[str, tuple[int, np.ndarray]] = {}

    @property
    def size(self) -> int:
        return len(self.index)

    def _grow(self, need: int) -> None:
        cap = len(self.whash)
        if need <= cap:
            return
        new = max(need, cap * 2)
        for name in ("whash", "wcol", "region", "bistart"):
            old = getattr(self, name)
            arr = np.full(new, -1, dtype=old.dtype) if name == "region" else np.zeros(new, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)
        ptr = np.zeros(new + 1, dtype=np.int64)
        ptr[: cap + 1] = self.indptr
        self.indptr = ptr

    def _row(self, norm: str, h: int) -> tuple[int, np.ndarray]:
        """A token's word column and char n-gram columns."""
        cfg = self.cfg
        mask = (1 << cfg.hash_bits) - 1
        word = cfg.word_offset + (h & mask)
        cols: list[int] = []
        if len(norm) <= _MAX_CHAR_TOKEN:
            padded = f" {norm} "
            grams = [
                padded[i : i + n]
                for n in range(cfg.char_min, cfg.char_max + 1)
                for i in range(len(padded) - n + 1)
            ] or [padded]
            off = cfg.char_offset
            cols += [off + (zlib.crc32(g.encode()) & mask) for g in grams]
        row = np.asarray(cols, dtype=np.int64)
        if self.table is not None:
            row = self.table[row]
            word = int(self.table[word])
        return word, row.astype(np.int32)

    def bind(self, table: np.ndarray) -> None:
        """Map the cached raw columns to a fitted space's columns, in place."""
        self.table = table
        self.cdata[: self.cused] = table[self.cdata[: self.cused]]
        n = self.size
        self.wcol[:n] = table[self.wcol[:n]]
        self._norm_cache = {k: (int(table[w]), table[v]) for k, (w, v) in self._norm_cache.items()}

    def add(self, tokens: set[str]) -> None:
        start = len(self.index)
        self._grow(start + len(tokens))
        lex = self.lex
        for k, raw in enumerate(tokens):
            i = start + k
            norm = normalize_token(raw)
            self.index[raw] = i
            self.norm.append(norm)
            h = _crc(norm)
            hit = self._norm_cache.get(norm)
            if hit is None:
                hit = self._row(norm, h)
                self._norm_cache[norm] = hit
            word, row = hit
            self.whash[i] = h
            self.wcol[i] = word
            reg = lex.unigram_ci.get(norm, -1)
            if reg < 0:
                reg = lex.unigram_cs.get(raw, -1)
            self.region[i] = reg
            self.bistart[i] = norm in lex.bigram_starts
            need = self.cused + len(row)
            if need > len(self.cdata):
                grown = np.zeros(max(need, 2 * len(self.cdata)), dtype=np.int32)
                grown[: self.cused] = self.cdata[: self.cused]
                self.cdata = grown
            self.cdata[self.cused : need] = row
            self.cused = need
            self.indptr[i + 1] = need

    def matrix(self, width: int) -> sp.csr_matrix:
        n = self.size
        nnz = self.cused
        return sp.csr_matrix(
            (np.ones(nnz, dtype=np.float32), self.cdata[:nnz], self.indptr[: n + 1].astype(np.int32)),
            shape=(n, width),
        )


@dataclass
class Batch:
    """Features of a batch before idf and normalisation: term counts in three parts that share
    one column space but not columns (word 1-2 grams, char n-grams, feed metadata), and actor
    values."""

    n: int
    words: sp.csr_matrix
    chars: sp.csr_matrix
    meta: sp.csr_matrix
    actor: sp.csr_matrix
    ids: np.ndarray  # token vocab ids, all docs concatenated (kept to name features)
    starts: np.ndarray  # n+1 offsets into ids


class Featurizer:
    """Turns documents into term counts + actor features; unbound (raw hashed columns) while a
    model is being fitted, bound to the model's FeatureSpace afterwards."""

    def __init__(self, cfg: FeatureConfig, regions: Mapping[str, Sequence[str]]) -> None:
        self.cfg = cfg
        self.lexicon = ActorLexicon(regions)
        self.table: np.ndarray | None = None
        self.width = cfg.hashed_width
        self.vocab = _Vocab(cfg, self.lexicon, None)

    def bind(self, space: FeatureSpace) -> None:
        self.table = space.lookup()
        self.width = space.n_hashed + 1
        self.vocab.bind(self.table)

    def batch(self, docs: Sequence[DocLike]) -> Batch:
        cfg = self.cfg
        n = len(docs)
        all_tokens: list[str] = []
        starts = np.zeros(n + 1, dtype=np.int64)
        title_len = np.zeros(n, dtype=np.int64)
        meta_rows: list[int] = []
        meta_cols: list[int] = []
        for d, doc in enumerate(docs):
            toks = tokenize(doc.title)
            title_len[d] = len(toks)
            # Only enough of the body is tokenised; tokens average well under 8 chars.
            toks += tokenize(doc.text[: cfg.max_tokens * 8])
            del toks[cfg.max_tokens :]
            all_tokens += toks
            starts[d + 1] = len(all_tokens)
            if doc.categories or doc.feed_tags:
                for m in meta_tokens(doc.categories, doc.feed_tags):
                    meta_rows.append(d)
                    meta_cols.append(meta_col(m, cfg))
        vocab = self.vocab
        new = set(all_tokens).difference(vocab.index)
        if vocab.size + len(new) > _MAX_CACHE:
            vocab = self.vocab = _Vocab(cfg, self.lexicon, self.table)
            new = set(all_tokens)
        if new:
            vocab.add(new)
        ids = np.fromiter(map(vocab.index.__getitem__, all_tokens), dtype=np.int32, count=len(all_tokens))
        ntok = len(ids)
        tok_doc = np.repeat(np.arange(n, dtype=np.int64), np.diff(starts))

        # Char n-grams: (token occurrences per doc) @ (token char rows), one sparse product.
        occ = sp.csr_matrix(
            (np.ones(ntok, dtype=np.float32), ids, starts.astype(np.int32)), shape=(n, vocab.size)
        )
        chars = (occ @ vocab.matrix(self.width)).tocsr()

        # Word unigrams and bigrams (within a document).
        if ntok > 1:
            wh = vocab.whash[ids].astype(np.int64)
            same = tok_doc[1:] == tok_doc[:-1]
            big = bigram_cols(wh[:-1], wh[1:], cfg)[same]
            big_doc = tok_doc[:-1][same]
        else:
            big = big_doc = np.zeros(0, dtype=np.int64)
        if self.table is not None:
            big = self.table[big].astype(np.int64)
        words = self._counts(np.concatenate([tok_doc, big_doc]), np.concatenate([vocab.wcol[ids], big]), n)
        meta_c = np.asarray(meta_cols, dtype=np.int64)
        if self.table is not None:
            meta_c = self.table[meta_c].astype(np.int64)
        meta = self._counts(np.asarray(meta_rows, dtype=np.int64), meta_c, n)
        actor = self._actors(ids, tok_doc, title_len, n)
        return Batch(n=n, words=words, chars=chars, meta=meta, actor=actor, ids=ids, starts=starts)

    def _counts(self, rows: np.ndarray, cols: np.ndarray, n: int) -> sp.csr_matrix:
        m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, self.width))
        m.sum_duplicates()
        return m

    def _actors(self, ids: np.ndarray, tok_doc: np.ndarray, title_len: np.ndarray, n: int) -> sp.csr_matrix:
        cfg = self.cfg
        vocab = self.vocab
        lex = self.lexicon
        region = vocab.region[ids].astype(np.int64)
        # Two-word names ("Revolutionary Guard", "White House") win over their single words.
        cand = np.flatnonzero(vocab.bistart[ids[:-1]]) if len(ids) > 1 else np.zeros(0, dtype=np.int64)
        if len(cand):
            norm = vocab.norm
            for p in cand.tolist():
                r = lex.bigram.get((norm[ids[p]], norm[ids[p + 1]]))
                if r is not None and tok_doc[p] == tok_doc[p + 1]:
                    region[p] = r
                    region[p + 1] = -1
        hits = np.flatnonzero(region >= 0)
        if not len(hits):
            return sp.csr_matrix((n, lex.n_features), dtype=np.float32)
        hit_doc = tok_doc[hits]
        starts = np.concatenate([[0], np.cumsum(np.bincount(tok_doc, minlength=n))])
        bounds = np.flatnonzero(np.diff(hit_doc)) + 1
        seg_starts = np.concatenate([[0], bounds]).tolist()
        seg_ends = np.concatenate([bounds, [len(hits)]]).tolist()
        hit_pos = (hits - starts[hit_doc]).tolist()
        hit_reg = region[hits].tolist()
        hit_docs = hit_doc.tolist()
        tl = title_len.tolist()
        per_r = lex.per_region
        per_p = lex.per_pair
        pair_base = per_r * len(lex.regions)
        window = cfg.pair_window
        lead = cfg.lead_tokens
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for s, e in zip(seg_starts, seg_ends, strict=True):
            d = hit_docs[s]
            pos = hit_pos[s:e]
            reg = hit_reg[s:e]
            t_end = tl[d]
            count: dict[int, int] = {}
            in_title: set[int] = set()
            in_lead: set[int] = set()
            for p, r in zip(pos, reg, strict=True):
                count[r] = count.get(r, 0) + 1
                if p < t_end:
                    in_title.add(r)
                elif p < t_end + lead:
                    in_lead.add(r)
            total = len(pos)
            top = max(count.values())
            for r, c in count.items():
                base = r * per_r
                rows += [d, d, d]
                cols += [base, base + 3, base + 4]
                vals += [1.0, c / total, 1.0 if c == top else 0.0]
                if r in in_title:
                    rows.append(d)
                    cols.append(base + 1)
                    vals.append(1.0)
                if r in in_lead:
                    rows.append(d)
                    cols.append(base + 2)
                    vals.append(1.0)
                if c >= 3:
                    rows.append(d)
                    cols.append(base + 5)
                    vals.append(1.0)
            if len(count) < 2:
                continue
            # Mentions that have another region's mention within the window, per pair.
            near: dict[tuple[int, int], set[int]] = {}
            k = len(pos)
            for i in range(k):
                pi, ri = pos[i], reg[i]
                j = i + 1
                while j < k and pos[j] - pi <= window:
                    rj = reg[j]
                    if rj != ri:
                        key = (ri, rj) if ri < rj else (rj, ri)
                        near.setdefault(key, set()).update((i, j))
                    j += 1
            for (a, b), members in near.items():
                col = pair_base + per_p * lex.pair_index[(a, b)]
                rows += [d, d]
                cols += [col, col + 1]
                vals += [1.0, len(members) / (count[a] + count[b])]
                if a in in_title and b in in_title:
                    rows.append(d)
                    cols.append(col + 2)
                    vals.append(1.0)
        return sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(n, lex.n_features), dtype=np.float32
        )


@dataclass(frozen=True)
class FeatureSpace:
    """The fitted part: which hashed columns are used and their idf. Output column j < n_hashed is
    raw hashed column `cols[j]`; column n_hashed is a trash column (idf 0) for unused raw
    columns; then come the actor features."""

    cfg: FeatureConfig
    cols: np.ndarray  # int64, sorted raw hashed columns kept
    idf: np.ndarray  # float32, aligned with cols
    n_actor: int

    @property
    def n_hashed(self) -> int:
        return len(self.cols)

    @property
    def n_features(self) -> int:
        return len(self.cols) + 1 + self.n_actor

    def lookup(self) -> np.ndarray:
        """raw hashed column -> output column (the trash column where unused)."""
        table = np.full(self.cfg.hashed_width, len(self.cols), dtype=np.int32)
        table[self.cols] = np.arange(len(self.cols), dtype=np.int32)
        return table

    def idf_full(self) -> np.ndarray:
        return np.concatenate([self.idf, np.zeros(1, dtype=np.float32)])

    def blocks(self) -> np.ndarray:
        """Block of each hashed output column (trash counted as word): 0 word, 1 char, 2 meta."""
        return np.concatenate([self.cfg.block_of(self.cols), np.zeros(1, dtype=np.int8)]).astype(np.int64)


def fit_space(cfg: FeatureConfig, batch: Batch, min_df: int = 1) -> FeatureSpace:
    """Choose columns (document frequency >= min_df; feed metadata always) and their idf."""
    width = cfg.hashed_width
    df = np.zeros(width, dtype=np.int64)
    for m in (batch.words, batch.chars, batch.meta):
        df += np.bincount(m.indices, minlength=width)
    cols = np.flatnonzero(df >= min_df).astype(np.int64)
    meta = np.flatnonzero(df[cfg.meta_offset :] > 0) + cfg.meta_offset
    cols = np.union1d(cols, meta).astype(np.int64)
    idf = (np.log((1.0 + batch.n) / (1.0 + df[cols])) + 1.0).astype(np.float32)
    return FeatureSpace(cfg=cfg, cols=cols, idf=idf, n_actor=batch.actor.shape[1])


@dataclass(frozen=True)
class Weighted:
    """A batch's model inputs: hashed parts (each n x n_hashed+1, disjoint columns) and actor
    features (n x n_actor), kept apart so prediction needs no stacking."""

    parts: tuple[sp.csr_matrix, ...]
    actor: sp.csr_matrix

    def hashed(self) -> sp.csr_matrix:
        total = self.parts[0]
        for p in self.parts[1:]:
            total = total + p
        return total.tocsr()

    def stacked(self) -> sp.csr_matrix:
        return sp.hstack([self.hashed(), self.actor], format="csr")


def _row_sums(data: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Sum of each CSR row's data (reduceat is far faster than a cumsum; empty rows fixed up)."""
    n = len(indptr) - 1
    if not len(data):
        return np.zeros(n, dtype=data.dtype)
    starts = np.minimum(indptr[:-1], len(data) - 1)
    sums = np.add.reduceat(data, starts)
    sums[indptr[1:] == indptr[:-1]] = 0
    return sums


class Weigher:
    """Sublinear TF-IDF per block, each block L2-normalised then weighted; actor features scaled.

    Per-block normalisation keeps a 3,000-word article and a 60-word item on the same scale,
    and keeps char n-grams (many per word) from drowning the word features."""

    def __init__(self, space: FeatureSpace) -> None:
        self.space = space
        self.idf = space.idf_full()
        cfg = space.cfg
        self.weights = (cfg.word_weight, cfg.char_weight, cfg.meta_weight)
        self.actor_weight = np.float32(cfg.actor_weight)

    def __call__(self, batch: Batch, table: np.ndarray | None = None) -> Weighted:
        """`table` maps raw columns when the batch came from an unbound featurizer."""
        n = batch.n
        width = self.space.n_hashed + 1
        out = []
        for m, weight in zip((batch.words, batch.chars, batch.meta), self.weights, strict=True):
            indices = table[m.indices] if table is not None else m.indices
            data = np.log(m.data)
            data += np.float32(1.0)
            data *= self.idf[indices]
            norms = np.sqrt(_row_sums(data * data, m.indptr)).astype(np.float32)
            norms[norms == 0] = 1.0
            data *= np.repeat(np.float32(weight) / norms, np.diff(m.indptr))
            out.append(sp.csr_matrix((data, indices, m.indptr), shape=(n, width)))
        actor = batch.actor * self.actor_weight
        return Weighted(parts=tuple(out), actor=actor.tocsr())
