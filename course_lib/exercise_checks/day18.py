"""Day 18's exercises: the gradients of the skip-gram loss, synonyms that never meet, 3CosAdd, Spearman's correlation with ties."""

from __future__ import annotations

import math
import numbers
import random
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Wrong, differs, exercise


def _diff(got: Any, want: torch.Tensor, what: str, where: str) -> None:
    """Raise Wrong when ``got`` is not ``want`` (float64, tight tolerance), saying where the worst entry is."""
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"{what} on {where} should be a tensor, got {type(got).__name__}")
    why = differs(got, want, rtol=1e-6, atol=1e-9)
    if why is None:
        return
    if not why.startswith("expected shape"):
        gap = (got.detach().to(want.dtype) - want).abs()
        i = int(gap.flatten().argmax())
        index = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), want.shape))
        why = (f"the largest difference is {gap.max().item():.3g}, at index {index}: expected "
               f"{want.flatten()[i].item():.8g}, got {got.detach().flatten()[i].item():.8g}")
    raise Wrong(f"{what} on {where} differs from autograd's: {why}")


@exercise("day18.ex1", title="the gradients of the skip-gram loss", kind="code",
          section="section 3, Skip-gram with negative sampling")
def check_sgns_grads(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1801)
    cases = [(1, 1, 1.0), (3, 1, 1.0), (5, 4, 0.5), (16, 5, 0.3), (8, 10, 1.5), (4, 3, 3.0)]  # (D, K, scale)
    for D, K, scale in cases:
        v_c, u_o = (torch.randn(D, generator=gen, dtype=torch.float64) * scale for _ in range(2))  # (D,), (D,)
        u_neg = torch.randn(K, D, generator=gen, dtype=torch.float64) * scale  # (K, D)
        if K >= 3:
            u_neg[2] = u_neg[0]  # the same noise word drawn twice: two rows, one gradient each
        leaves = [t.clone().requires_grad_(True) for t in (v_c, u_o, u_neg)]
        loss = -(F.logsigmoid(leaves[1] @ leaves[0]) + F.logsigmoid(-(leaves[2] @ leaves[0])).sum())
        loss.backward()
        where = f"D={D}, K={K}"
        out = _call(fn, f"sgns_grads on {where}", v_c.clone(), u_o.clone(), u_neg.clone())
        if not (isinstance(out, tuple) and len(out) == 3):
            raise Wrong(f"sgns_grads must return (grad_v_c, grad_u_o, grad_u_neg), got {type(out).__name__}")
        for name, got, leaf in zip(("grad_u_o", "grad_u_neg", "grad_v_c"), (out[1], out[2], out[0]),
                                   (leaves[1], leaves[2], leaves[0])):
            _diff(got, leaf.grad, name, where)
    return f"({len(cases)} random pairs with 1 to 10 noise words, one drawn twice: the same gradients as autograd)"


# ---------------------------------------------------------------- synonyms that never meet
N_GROUPS = 8  # groups of words; in each, two partners and three context words


def synonym_corpus(n_sentences: int = 300, seed: int = 1802) -> list[str]:
    """A planted text of three-word sentences ``c s c'``: a group ``i`` is drawn, ``s`` is one of the
    partners ``a{i}``, ``b{i}`` and ``c``, ``c'`` are context words ``c{i}_0 .. c{i}_2`` of the same group.
    The two partners never occur in the same sentence; they only share their contexts."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n_sentences):
        i = rng.randrange(N_GROUPS)
        out += [f"c{i}_{rng.randrange(3)}", rng.choice([f"a{i}", f"b{i}"]), f"c{i}_{rng.randrange(3)}"]
    return out


def synonyms_found(epochs: int) -> float:
    """Share of the 16 partner words whose nearest neighbour (cosine of the trained ``in_embed`` rows)
    is their partner, after ``train_skipgram`` on :func:`synonym_corpus` for ``epochs`` passes:
    16 dimensions, a window of 1, 5 negatives, no subsampling, batches of 64, Adam at 0.01, seed 0."""
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs={epochs!r}: pass a whole number of passes, 1 or more")
    return _synonyms_found(int(epochs))


@lru_cache(maxsize=64)
def _synonyms_found(epochs: int) -> float:
    from course_lib.embeddings import SkipGramConfig, WordVectors, build_vocab, encode_words, train_skipgram

    text = synonym_corpus()
    vocab = build_vocab(text, min_count=1)
    cfg = SkipGramConfig(embedding_dim=16, window=1, negatives=5, subsample_t=None, epochs=epochs,
                         batch_size=64, lr=1e-2, seed=0)
    with torch.random.fork_rng(devices=[]):  # train_skipgram seeds torch's global generator: leave it as it was
        model, _ = train_skipgram(encode_words(text, vocab), vocab, cfg, progress=False)
    wv = WordVectors.from_model(model, vocab)
    partners = [(f"{x}{i}", f"{y}{i}") for i in range(N_GROUPS) for x, y in (("a", "b"), ("b", "a"))]
    return sum(wv.nearest(w, k=1)[0][0] == p for w, p in partners) / len(partners)


@exercise("day18.ex2", title="synonyms that never meet", kind="experiment",
          section="section 4, Training on TinyShakespeare")
def check_synonym_epochs(answer: Any) -> str:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Integral) or not 1 <= answer <= 50:
        raise Wrong(f"expected a number of epochs, a whole number from 1 to 50, got {answer!r}")
    e = int(answer)
    found = synonyms_found(e)
    if found < 1:
        raise Wrong(f"after {e} epoch{'s' * (e > 1)} {found:.0%} of the partner words have their partner as "
                    f"nearest neighbour; the target is all of them")
    for fewer in range(1, e):
        if synonyms_found(fewer) == 1:
            raise Wrong(f"{e} epochs find every partner, but so do {fewer}: find the smallest number of epochs")
    return (f"({e} epochs find all 16 partners, {synonyms_found(e - 1):.0%} with {e - 1}"
            if e > 1 else f"({e} epoch finds all 16 partners") + "; no two partners ever share a sentence)"


# ---------------------------------------------------------------- 3CosAdd
def _brute_force_analogy(rows: list[list[float]], itos: list[str], a: str, b: str, c: str) -> tuple[str, float]:
    """The word (not a, b or c) whose row has the highest cosine with unit(b) - unit(a) + unit(c), and the gap
    to the runner-up, with plain Python floats."""
    def unit(r: list[float]) -> list[float]:
        n = math.sqrt(sum(x * x for x in r))
        return [x / n for x in r]

    ia, ib, ic = itos.index(a), itos.index(b), itos.index(c)
    ua, ub, uc = unit(rows[ia]), unit(rows[ib]), unit(rows[ic])
    target = [y - x + z for x, y, z in zip(ua, ub, uc)]
    tn = math.sqrt(sum(t * t for t in target))
    scores = sorted(((sum(p * t for p, t in zip(unit(r), target)) / tn, w) for r, w in zip(rows, itos)
                     if w not in (a, b, c)), reverse=True)
    gap = scores[0][0] - scores[1][0] if len(scores) > 1 else math.inf
    return scores[0][1], gap


@exercise("day18.ex3", title="3CosAdd by hand", kind="code", section="section 6, Analogies")
def check_analogy(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1803)
    rng = random.Random(1803)
    words = ["king", "queen", "man", "woman", "prince", "duke", "lady", "lord", "thou", "thee", "art", "love", "hate",
             "night", "day", "sword", "crown", "father", "mother", "son"]
    n_questions = 0
    for V, D, dtype in [(4, 2, torch.float64), (6, 3, torch.float64), (12, 8, torch.float32), (20, 5, torch.float64),
                        (20, 16, torch.float32), (60, 4, torch.float64)]:
        itos = words[:V] if V <= len(words) else words + [f"w{i}" for i in range(V - len(words))]
        lengths = torch.exp(torch.randn(V, 1, generator=gen, dtype=torch.float64))  # (V, 1) lengths, mostly 0.1 to 10
        vectors = (F.normalize(torch.randn(V, D, generator=gen, dtype=torch.float64), dim=1) * lengths).to(dtype)
        rows = vectors.double().tolist()
        asked = 0
        while asked < 4:
            a, b, c = rng.sample(itos, 3)
            want, gap = _brute_force_analogy(rows, itos, a, b, c)
            if gap < 1e-4:
                continue  # too close to call in float32: draw another question
            got = _call(fn, f"my_analogy(vectors, itos, {a!r}, {b!r}, {c!r})", vectors.clone(), list(itos), a, b, c)
            if got != want:
                raise Wrong(f"my_analogy(vectors, itos, {a!r}, {b!r}, {c!r}) on random {V}x{D} vectors of many "
                            f"lengths returned {got!r}; the word (not {a!r}, {b!r} or {c!r}) whose vector has the "
                            f"highest cosine with unit({b}) - unit({a}) + unit({c}) is {want!r}")
            asked += 1
            n_questions += 1
    return f"({n_questions} questions on random vectors of many lengths, float32 and float64: the 3CosAdd answers)"


# ---------------------------------------------------------------- Spearman
def _average_ranks(x: list[float]) -> list[float]:
    """Rank 1 for the smallest value; tied values share the mean of the ranks they span."""
    return [1 + sum(v < xi for v in x) + (sum(v == xi for v in x) - 1) / 2 for xi in x]


def _pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return sxy / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


@exercise("day18.ex4", title="Spearman's correlation, with ties", kind="code",
          section="section 7, Similarity judged by people: WordSim-353")
def check_spearman(fn: Any) -> str:
    rng = random.Random(1804)
    cases = [
        ([1, 2, 3, 4], [1, 3, 2, 4]),  # no ties: 1 - 6 * 2 / 60 = 0.8
        ([10.0, 20.0], [3.0, 1.0]),  # two values: -1
        ([7.35, 0.23, 7.35, 5.0, 1.5], [0.61, -0.02, 0.44, 0.44, 0.1]),  # ties in both, like human scores
        ([1, 1, 1, 2], [4, 3, 2, 1]),  # three tied
        ([0.5, 2.0, 8.0, 32.0, 128.0], [1, 2, 3, 4, 5]),  # monotone, not linear: exactly 1
    ]
    for _ in range(6):  # scores on a coarse scale (many ties) and cosines
        n = rng.randint(5, 30)
        cases.append(([rng.randint(0, 5) / 2 for _ in range(n)], [round(rng.uniform(-1, 1), 2) for _ in range(n)]))
    for _ in range(2):  # ties in both
        n = rng.randint(6, 20)
        cases.append(([rng.randint(1, 4) for _ in range(n)], [rng.randint(1, 3) for _ in range(n)]))
    cases = [(x, y) for x, y in cases if len(set(x)) > 1 and len(set(y)) > 1]  # a constant has no rank correlation
    n_ties = 0
    for x, y in cases:
        want = _pearson(_average_ranks(x), _average_ranks(y))
        got = _call(fn, f"my_spearman({x}, {y})", list(x), list(y))
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            raise Wrong(f"my_spearman({x}, {y}) should return a number, got {type(got).__name__}")
        if differs(float(got), want, rtol=1e-9, atol=1e-12):
            has_ties = len(set(x)) < len(x) or len(set(y)) < len(y)
            tied = " (tied values share the mean of their ranks)" if has_ties else ""
            raise Wrong(f"my_spearman({x}, {y}) returned {float(got):.10g}; the Pearson correlation of the ranks "
                        f"is {want:.10g}{tied}")
        n_ties += len(set(x)) < len(x) or len(set(y)) < len(y)
    return f"({len(cases)} pairs of sequences, {n_ties} with ties: the Pearson correlation of the tie-averaged ranks)"
