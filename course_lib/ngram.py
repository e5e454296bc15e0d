"""Day 15: n-gram language models: counting, smoothing, sampling and scoring.

An order-``n`` model predicts each token from the ``n - 1`` tokens before it, using
counts from training data. Three ways to smooth those counts are offered:

- ``"add-k"``: ``P(w | h) = (c(h w) + k) / (c(h) + k V)``; ``k=0`` is the plain counting
  (maximum-likelihood) estimate. A context never seen in training gets the uniform ``1/V``.
- ``"interpolated"`` (Jelinek-Mercer): ``P(w | h) = sum_m lambdas[m-1] * P_ML(w | last m-1
  tokens of h)`` over orders ``m = 1..n``; the unigram term is add-k smoothed with ``k``.
  The weight of an order whose context was never seen moves down to the lower orders.
- ``"kneser-ney"`` (interpolated, Chen & Goodman 1998): the top order discounts every count
  by ``discount`` and gives the freed mass to the order below, whose counts are
  *continuation counts* ``N1+(. h w)`` (how many different tokens precede ``h w``),
  down to the uniform distribution.

Two shapes of data, told apart by :meth:`NGramModel.fit`:

- **many sequences** (a list of names, each a ``str`` or list of tokens): each one is
  framed by the ``boundary`` token like ``..emma.`` for order 3 (``n - 1`` boundaries in
  front, one behind). Every token of a sequence *and* its closing boundary is predicted,
  so a name of length L contributes L + 1 predictions; the leading padding is context only.
- **one continuous sequence** (a ``str`` of text, or a list/1-D array of ints): no boundary
  is added. Token ``t`` is predicted from the ``min(t, n - 1)`` tokens before it, so the
  first ``n - 1`` tokens use shorter contexts (the first one the unigram distribution).

Scoring (:meth:`~NGramModel.cross_entropy` and friends) frames held-out data the same way,
so every held-out token is scored exactly once. A token missing from the vocabulary raises
a ``ValueError``; pass ``vocab=`` to :meth:`~NGramModel.fit` to include tokens that only
appear in held-out data (add-k, the interpolated unigram with ``k > 0`` and Kneser-Ney then
give them a small probability).

>>> lm = NGramModel(order=3, smoothing="kneser-ney").fit(["emma", "ava", "olivia"])
>>> lm.vocab_size, lm.distribution("em").shape   # '.' and the 7 letters seen
(8, (8,))
>>> lm.sample(seed=0)                            # drawn until the boundary
'le'
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

SMOOTHINGS = ("add-k", "interpolated", "kneser-ney")


@dataclass(frozen=True)
class _Table:
    """Counts of m-grams stored as sorted integer codes ``context_code * V + token``."""

    keys: np.ndarray  # (U,) int64, sorted m-gram codes
    vals: np.ndarray  # (U,) int64, their counts
    ctx_keys: np.ndarray  # (C,) int64, sorted context codes (keys // V)
    ctx_total: np.ndarray  # (C,) int64, sum of counts over the tokens after each context
    ctx_types: np.ndarray  # (C,) int64, how many distinct tokens follow each context

    @classmethod
    def build(cls, codes: np.ndarray, vocab_size: int) -> _Table:
        keys, vals = np.unique(codes, return_counts=True)  # (U,), (U,)
        ctx_keys, start = np.unique(keys // vocab_size, return_index=True)  # keys sorted -> runs
        ctx_total = np.add.reduceat(vals, start) if len(vals) else vals
        ctx_types = np.diff(np.append(start, len(keys)))
        return cls(keys, vals.astype(np.int64), ctx_keys, ctx_total.astype(np.int64), ctx_types)

    def count(self, codes: np.ndarray) -> np.ndarray:
        return _lookup(self.keys, self.vals, codes)

    def context(self, ctx_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = _lookup(self.ctx_keys, self.ctx_total, ctx_codes)  # (N,)
        return total, _lookup(self.ctx_keys, self.ctx_types, ctx_codes)


def _lookup(keys: np.ndarray, vals: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """vals[i] where keys[i] == query, else 0 (keys sorted)."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=np.int64)
    idx = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)  # (N,)
    return np.where(keys[idx] == queries, vals[idx], 0)


def _is_many(data: object) -> bool:
    """True for a list of sequences, False for one sequence (str, array, list of tokens)."""
    if isinstance(data, str):
        return False
    if isinstance(data, np.ndarray):
        if data.ndim != 1:
            raise ValueError(f"expected a 1-D array of tokens, got shape {data.shape}")
        return False
    if not isinstance(data, Sequence) or len(data) == 0:
        raise ValueError("expected a non-empty str, list of tokens, or list of sequences")
    return isinstance(data[0], (str, list, tuple, np.ndarray))


class NGramModel:
    """An order-``order`` n-gram language model over any hashable tokens (chars, ints).

    >>> NGramModel(2, smoothing="add-k", k=1.0).fit(["ab", "b"]).prob("a", "b")
    0.5
    """

    def __init__(
        self,
        order: int,
        smoothing: str = "add-k",
        k: float = 1.0,
        lambdas: Sequence[float] | None = None,
        discount: float = 0.75,
        boundary: Hashable = ".",
    ) -> None:
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be an int >= 1 (1 = unigram, 2 = bigram), got {order!r}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
        if k < 0:
            raise ValueError(f"k must be >= 0 (0 = plain counts), got {k}")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        if lambdas is None:  # every order weighs the same
            lambdas = [1.0 / order] * order
        lambdas = [float(x) for x in lambdas]
        if len(lambdas) != order or min(lambdas) < 0 or lambdas[0] <= 0 or abs(sum(lambdas) - 1) > 1e-9:
            raise ValueError(
                f"lambdas must be {order} weights for orders 1..{order}, >= 0, summing to 1, "
                f"with lambdas[0] (the unigram weight) > 0; got {lambdas}"
            )
        self.order, self.smoothing, self.k = order, smoothing, float(k)
        self.lambdas, self.discount, self.boundary = tuple(lambdas), float(discount), boundary
        self.vocab: list[Hashable] = []
        self.stoi: dict[Hashable, int] = {}
        self.many_sequences = False
        self._raw: list[_Table | None] = []  # [m] counts of m-grams, m = 1..order
        self._cont: list[_Table | None] = []  # [m] continuation counts N1+(. m-gram), m < order

    # ---------------------------------------------------------------- fitting
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def distinct_ngrams(self) -> list[int]:
        """How many distinct m-grams were counted, for m = 1..order (what the model stores)."""
        return [len(t.keys) for t in self._raw[1:] if t is not None]

    @property
    def stored_ngrams(self) -> int:
        """All the distinct m-grams counted, m = 1..order: the model's size, as a parameter count is a network's.

        >>> NGramModel(2).fit("abab").stored_ngrams  # a, b; ab, ba
        4
        """
        return sum(self.distinct_ngrams)

    def fit(self, data: object, vocab: Sequence[Hashable] | None = None) -> NGramModel:
        """Count every m-gram (m = 1..order) of ``data``; returns ``self``.

        ``data``: a list of sequences (each framed by ``boundary``) or one continuous
        sequence (a str, a list or 1-D array of ints). ``vocab``: optional full token set.
        """
        self.many_sequences = _is_many(data)
        seqs = data if self.many_sequences else [data]
        seen: set[Hashable] = set()
        for s in seqs:
            seen.update(s)
        if self.many_sequences and self.boundary in seen:
            raise ValueError(f"the boundary {self.boundary!r} occurs inside the data: pick another boundary=")
        tokens = seen if vocab is None else set(vocab)
        if not seen <= tokens:
            raise ValueError(f"vocab= lacks tokens of the data: {sorted(map(repr, seen - tokens))[:10]}")
        if self.many_sequences:
            tokens.discard(self.boundary)  # it goes first, below
        try:
            ordered = sorted(tokens)
        except TypeError:  # mixed types: a stable order all the same
            ordered = sorted(tokens, key=repr)
        self.vocab = ([self.boundary] if self.many_sequences else []) + ordered
        self.stoi = {t: i for i, t in enumerate(self.vocab)}
        V, n = self.vocab_size, self.order
        if V ** n >= 2**62:
            raise ValueError(f"vocab_size**order = {V}**{n} is too large for int64 codes: lower the order")
        W = self._windows(data)  # (N, n): context ids then the token; -1 = no token there
        self._raw, self._cont = [None] * (n + 1), [None] * (n + 1)
        code, valid = W[:, -1].copy(), np.ones(len(W), dtype=bool)  # (N,), (N,)
        for m in range(1, n + 1):
            if m > 1:
                valid &= W[:, n - m] >= 0
                code = W[:, n - m] * V ** (m - 1) + code  # (N,) code of the m-gram ending here
            self._raw[m] = _Table.build(code[valid], V)
        for m in range(1, n):  # drop the first token of each distinct (m+1)-gram
            self._cont[m] = _Table.build(self._raw[m + 1].keys % V**m, V)
        return self

    def _check_fitted(self) -> None:
        if not self.vocab:
            raise RuntimeError("this model has not been fit yet: call model.fit(training_data) first")

    def _encode(self, seq: Sequence[Hashable]) -> np.ndarray:
        try:
            return np.fromiter((self.stoi[t] for t in seq), dtype=np.int64, count=len(seq))
        except KeyError:
            unknown = sorted({repr(t) for t in seq if t not in self.stoi})
            raise ValueError(
                f"{len(unknown)} token(s) are not in the model's vocabulary of {self.vocab_size}: "
                f"{', '.join(unknown[:10])}. Remove them, or pass vocab= (every token) to fit()."
            ) from None

    def _windows(self, data: object) -> np.ndarray:
        """(N, order) int64 rows: the order-1 context ids then the predicted token id."""
        n, many = self.order, _is_many(data)
        if many and not self.many_sequences:
            raise ValueError("this model was fit on one continuous sequence: score one sequence, not a list")
        seqs = data if many else [data]
        if self.many_sequences:  # frame each sequence: n-1 boundaries in front, one behind
            b = self.stoi[self.boundary]
            rows = [np.concatenate([np.full(n - 1, b), self._encode(s), [b]]) for s in seqs]
        else:  # no token before the start: -1 marks "no context there"
            rows = [np.concatenate([np.full(n - 1, -1), self._encode(seqs[0])])]
        views = [np.lib.stride_tricks.sliding_window_view(r.astype(np.int64), n) for r in rows]
        return np.concatenate(views) if len(views) > 1 else views[0].copy()

    # ---------------------------------------------------------------- probabilities
    def _probs(self, W: np.ndarray) -> np.ndarray:
        """P(W[:, -1] | W[:, :-1]) for each row of W (N, n); shape (N,)."""
        V, n, k = self.vocab_size, self.order, self.k
        top = 1 + (W[:, :-1] >= 0).sum(axis=1)  # (N,) the highest order each row can use
        p = np.full(len(W), 1.0 / V)  # (N,) order 0: uniform
        code = W[:, -1].copy()  # (N,) code of the m-gram ending at the token
        for m in range(1, n + 1):
            if m > 1:
                code = W[:, n - m] * V ** (m - 1) + code
            rows = np.flatnonzero(top >= m)
            if self.smoothing == "add-k":
                rows = np.flatnonzero(top == m)  # only the highest order counts
            if len(rows) == 0:
                continue
            c_ = code[rows]
            if self.smoothing == "kneser-ney" and m < n:  # lower orders use continuation counts
                use_raw = top[rows] == m
                c = np.where(use_raw, self._raw[m].count(c_), self._cont[m].count(c_))
                tot_r, typ_r = self._raw[m].context(c_ // V)
                tot_c, typ_c = self._cont[m].context(c_ // V)
                total, types = np.where(use_raw, tot_r, tot_c), np.where(use_raw, typ_r, typ_c)
            else:
                c = self._raw[m].count(c_)
                total, types = self._raw[m].context(c_ // V)
            seen, safe = total > 0, np.maximum(total, 1)
            if self.smoothing == "add-k" or (self.smoothing == "interpolated" and m == 1):
                denom = total + k * V
                p[rows] = np.where(denom > 0, (c + k) / np.maximum(denom, 1e-300), 1.0 / V)
            elif self.smoothing == "interpolated":
                share = self.lambdas[m - 1] / sum(self.lambdas[:m])  # weight of this order
                p[rows] = np.where(seen, share * c / safe + (1 - share) * p[rows], p[rows])
            else:  # kneser-ney
                D = self.discount
                mixed = np.maximum(c - D, 0) / safe + D * types / safe * p[rows]
                p[rows] = np.where(seen, mixed, p[rows])
        return p

    def _context_ids(self, context: Sequence[Hashable]) -> np.ndarray:
        """The last order-1 context ids, padded on the left (boundary, or -1 = none)."""
        tail = list(context)[max(0, len(context) - (self.order - 1)) :] if self.order > 1 else []
        ids = self._encode(tail)  # (<= n-1,)
        pad = self.stoi[self.boundary] if self.many_sequences else -1
        return np.concatenate([np.full(self.order - 1 - len(ids), pad), ids]).astype(np.int64)

    def distribution(self, context: Sequence[Hashable] = ()) -> np.ndarray:
        """P(token | context) for every token of ``self.vocab``; shape (V,), sums to 1.

        A context shorter than order-1 is the start of a sequence: padded with boundary
        tokens for many-sequence models, or using the lower orders for continuous ones.
        """
        self._check_fitted()
        ctx = self._context_ids(context)  # (n-1,)
        W = np.concatenate([np.tile(ctx, (self.vocab_size, 1)), np.arange(self.vocab_size)[:, None]], axis=1)
        return self._probs(W)  # (V,)

    def prob(self, context: Sequence[Hashable], token: Hashable) -> float:
        """P(token | context); see :meth:`distribution` for short contexts."""
        return float(self.distribution(context)[self._encode([token])[0]])

    def counts(self, context: Sequence[Hashable] = ()) -> np.ndarray:
        """Raw training counts c(context w) for every token w; shape (V,) int64.

        ``len(context)`` picks the order (0 = unigram counts), at most order-1.
        """
        return self._count_row(self._raw, context)

    def continuation_counts(self, context: Sequence[Hashable] = ()) -> np.ndarray:
        """Kneser-Ney continuation counts N1+(. context w): distinct tokens seen before ``context w``."""
        if len(context) > self.order - 2:
            raise ValueError(f"continuation counts exist for contexts of length <= {self.order - 2}")
        return self._count_row(self._cont, context)

    def _count_row(self, tables: list[_Table | None], context: Sequence[Hashable]) -> np.ndarray:
        self._check_fitted()
        if len(context) > self.order - 1:
            raise ValueError(f"an order-{self.order} model has contexts of length <= {self.order - 1}")
        V, ids = self.vocab_size, self._encode(context)
        ctx_code = int(sum(int(t) * V ** (len(ids) - 1 - j) for j, t in enumerate(ids)))
        return tables[len(ids) + 1].count(ctx_code * V + np.arange(V))  # (V,)

    # ---------------------------------------------------------------- sampling
    def sample(
        self,
        n: int | None = None,
        *,
        prompt: Sequence[Hashable] = (),
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> str | list[Hashable]:
        """Draw tokens one at a time; returns ``prompt`` + the new tokens (a str for chars).

        Many-sequence models stop at the boundary (not included) or after ``n`` new tokens
        (default 1000); continuous models draw exactly ``n`` tokens.
        """
        self._check_fitted()
        if n is None and not self.many_sequences:
            raise ValueError("a continuous model needs n= (how many tokens to draw)")
        rng = generator if generator is not None else np.random.default_rng(seed)
        out, limit = list(prompt), 1000 if n is None else n
        end = self.stoi[self.boundary] if self.many_sequences else -1
        for _ in range(limit):
            cdf = np.cumsum(self.distribution(out))  # (V,)
            i = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), self.vocab_size - 1)
            if i == end:
                break
            out.append(self.vocab[i])
        chars = all(isinstance(t, str) for t in self.vocab)
        return "".join(out) if chars and all(isinstance(t, str) for t in out) else out

    # ---------------------------------------------------------------- scoring
    def token_log_probs(self, data: object) -> np.ndarray:
        """Natural-log probability of every held-out token, in order; shape (N,).

        ``data`` is framed like the training data (see the module docstring); a single str
        given to a many-sequence model is one sequence.
        """
        self._check_fitted()
        if self.many_sequences and not _is_many(data):
            data = [data]
        with np.errstate(divide="ignore"):
            return np.log(self._probs(self._windows(data)))

    def log_likelihood(self, data: object) -> float:
        """Sum of the natural-log probabilities of every held-out token."""
        return float(self.token_log_probs(data).sum())

    def cross_entropy(self, data: object) -> float:
        """Average negative log-likelihood, in nats per token (inf if a token has P = 0)."""
        return float(-self.token_log_probs(data).mean())

    def perplexity(self, data: object) -> float:
        """exp(cross_entropy): the size of a uniform choice that is as surprised."""
        return math.exp(self.cross_entropy(data))

    def unseen_context_fraction(self, data: object) -> float:
        """Fraction of held-out tokens whose context (the one the model uses) never occurred in training."""
        self._check_fitted()
        if self.many_sequences and not _is_many(data):
            data = [data]
        W = self._windows(data)  # (N, n)
        V, top = self.vocab_size, 1 + (W[:, :-1] >= 0).sum(axis=1)  # (N,)
        unseen = np.zeros(len(W), dtype=bool)
        for m in range(1, self.order + 1):
            rows = top == m
            ctx = np.zeros(int(rows.sum()), dtype=np.int64)  # (r,) context code of the m-1 tokens
            for j in range(self.order - m + 1, self.order):
                ctx = ctx * V + W[rows, j - 1]
            unseen[rows] = self._raw[m].context(ctx)[0] == 0
        return float(unseen.mean())

    def __repr__(self) -> str:
        extra = {"add-k": f"k={self.k}", "interpolated": f"lambdas={self.lambdas}, k={self.k}"}
        detail = extra.get(self.smoothing, f"discount={self.discount}")
        fitted = f", vocab_size={self.vocab_size}, distinct_ngrams={self.distinct_ngrams}" if self.vocab else ", not fitted"
        return f"NGramModel(order={self.order}, smoothing={self.smoothing!r}, {detail}{fitted})"
