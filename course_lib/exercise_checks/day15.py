"""Day 15's exercises: an add-k bigram table, the loss of a name under any order, continuation counts, add-k tuned to a target."""

from __future__ import annotations

import math
import random
from collections import Counter
from functools import lru_cache
from typing import Any

import numpy as np

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Wrong, differs, exercise


def _random_names(rng: random.Random, letters: str, n: int, max_len: int = 8) -> list[str]:
    return ["".join(rng.choice(letters) for _ in range(rng.randint(1, max_len))) for _ in range(n)]


def _as_matrix(got: Any, V: int, where: str) -> np.ndarray:
    try:
        a = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Wrong(f"add_k_bigram on {where} should return a (V, V) table of numbers, got {type(got).__name__}") from None
    if a.shape != (V, V):
        raise Wrong(f"add_k_bigram on {where} returned shape {a.shape}; expected ({V}, {V}): one row per previous "
                    f"character, one column per next one")
    return a


@exercise("day15.ex1", title="an add-k bigram table", kind="code",
          section="section 1, A language model is a chain of next-token predictions")
def check_add_k_bigram(fn: Any) -> str:
    rng = random.Random(1501)
    cases = [(["abb", "ba"], ".ab", 1.0),  # hand-worked: P(b | a) = (1 + 1) / (2 + 3) = 2/5
             (["a"], ".a", 0.5),
             (["emma", "ava", "olivia"], ".aeilmov", 0.1)]
    for letters, k in (("abc", 2.5), ("abcdef", 0.01), ("xyz", 1.0)):
        vocab = "." + letters + "q"  # q never occurs: its row must be uniform
        cases.append((_random_names(rng, letters, rng.randint(3, 12)), vocab, k))
    for names, vocab, k in cases:
        V = len(vocab)
        counts = Counter()  # the reference: count every framed bigram with a plain loop
        for name in names:
            framed = "." + name + "."
            for a, b in zip(framed, framed[1:]):
                counts[a, b] += 1
        want = np.array([[(counts[a, b] + k) / (sum(counts[a, c] for c in vocab) + k * V) for b in vocab]
                         for a in vocab])  # (V, V)
        where = f"names={names}, vocab={list(vocab)}, k={k}"
        got = _as_matrix(_call(fn, f"add_k_bigram({names}, {list(vocab)}, {k})", list(names), list(vocab), k), V, where)
        if not np.allclose(got, want, rtol=1e-5, atol=1e-8):  # float32 tables pass too
            i, j = np.unravel_index(np.abs(got - want).argmax(), want.shape)
            extra = ""
            if np.allclose(got.T, want, rtol=1e-5, atol=1e-8):
                extra = " (the table is transposed: rows are the previous character)"
            elif not np.allclose(got.sum(axis=1), 1):
                extra = f" (row {vocab[i]!r} sums to {got[i].sum():.4g}, not 1)"
            raise Wrong(f"on {where}, P({vocab[j]!r} | {vocab[i]!r}) = table[{i}, {j}] is {got[i, j]:.6g}; "
                        f"counting the framed bigrams gives {want[i, j]:.6g}{extra}")
    return (f"({len(cases)} sets of names, abb and ba among them, 3 with a letter that never occurs; "
            f"k from 0.01 to 2.5)")


def _strict_prob(lm: Any):
    """lm.prob, but only for a context of exactly order - 1 characters (the framed history)."""
    L = lm.order - 1

    def prob(context: str, char: str) -> float:
        if not isinstance(context, str) or len(context) != L:
            raise ValueError(f"the context must be the last {L} characters of the framed name, got {context!r}")
        return lm.prob(context, char)

    return prob


@exercise("day15.ex2", title="the loss of a name, any order", kind="code",
          section="section 3, Longer contexts: trigrams and beyond on names")
def check_name_nll(fn: Any) -> str:
    from course_lib.ngram import NGramModel

    rng = random.Random(1502)
    train = _random_names(rng, "abcde", 60) + ["emma", "anna"]
    held_out = ["emma", "a", "ed", "cabbed", "deed", "zz"]  # 'z' was never seen: a smoothed model still scores it
    vocab = sorted(set("".join(train)) | {"z"})
    for order in (1, 2, 3, 5):
        for smoothing in ("add-k", "kneser-ney"):
            lm = NGramModel(order, smoothing=smoothing, k=0.5).fit(train, vocab=vocab)
            for name in held_out:
                want = lm.cross_entropy([name])  # the library scores the framed name as a whole
                where = f"name_nll(prob, {order}, {name!r}) with an order-{order} {smoothing} model"
                got = _call(fn, where, _strict_prob(lm), order, name)
                try:
                    value = None if isinstance(got, (bool, str)) else float(got)
                except (TypeError, ValueError, RuntimeError):
                    value = None
                if value is None:
                    raise Wrong(f"{where} should return a number (nats per prediction), got {type(got).__name__}")
                got = value
                if differs(got, want, rtol=1e-6, atol=1e-9):
                    hint = ""
                    if math.isclose(got, want / math.log(2), rel_tol=1e-6):
                        hint = " (that is bits: use the natural log)"
                    elif math.isclose(got, want * (len(name) + 1), rel_tol=1e-6):
                        hint = " (that is the sum: divide by the number of predictions)"
                    raise Wrong(f"{where} returned {got:.6f}; the mean over its {len(name) + 1} predictions (the "
                                f"letters and the closing '.') is {want:.6f} nats{hint}")
    return f"(orders 1, 2, 3 and 5, add-k and Kneser-Ney, {len(held_out)} names each, one with an unseen letter)"


@exercise("day15.ex3", title="continuation counts", kind="code",
          section="section 5, Smoothing: sharing probability with what was not seen")
def check_continuation_counts(fn: Any) -> str:
    rng = random.Random(1503)
    cases = [("abababcb", "", "abc"),  # hand-worked: a <- {b}; b <- {a, c}; c <- {b}
             ("abababcb", "b", "abc"),
             ("aaaa", "", "ab"),
             ("ab", "a", "ab"),  # 'a' at the very start has nothing before it
             ("the cat sat on the mat", "", "".join(sorted(set("the cat sat on the mat"))))]
    for letters, L in (("ab", 1), ("abcd", 0), ("abcd", 1), ("abc", 2), ("abcdefgh", 1)):
        text = "".join(rng.choice(letters) for _ in range(rng.randint(20, 200)))
        context = text[5 : 5 + L]
        cases.append((text, context, letters + "z"))  # 'z' never occurs: count 0
    for text, context, vocab in cases:
        L = len(context)
        want = [len({text[i - 1] for i in range(1, len(text) - L) if text[i : i + L + 1] == context + w})
                for w in vocab]  # brute force: the set of characters right before each occurrence of context + w
        where = f"continuation_counts({text!r}, {context!r}, {list(vocab)})"
        got = _call(fn, where, text, context, list(vocab))
        why = differs(got, want)
        if why:
            raw = [sum(text[i : i + L + 1] == context + w for i in range(len(text) - L)) for w in vocab]
            extra = " (those are the raw counts c(h w): count *different* characters before h w)" \
                if not differs(got, raw) else ""
            raise Wrong(f"{where} returned {got}; expected {want}{extra}: {why}")
    return (f"({len(cases)} texts and contexts, of 0 to 2 characters; occurrences at the very start, and "
            f"characters never seen)")


@lru_cache(maxsize=1)
def _names_split() -> tuple[list[str], list[str]]:
    """Section 3's split: the names shuffled with seed 0, the last 10% kept aside."""
    import torch

    from course_lib.data import load_names, train_val_split

    names = load_names()
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(0)).tolist()
    return train_val_split([names[i] for i in order])


@lru_cache(maxsize=64)
def names_val_ce(order: int, smoothing: str = "add-k", k: float = 1.0) -> float:
    """Validation cross-entropy (nats per character) of an n-gram fit on section 3's training names."""
    from course_lib.ngram import NGramModel

    names_train, names_val = _names_split()
    return NGramModel(order, smoothing=smoothing, k=k).fit(names_train).cross_entropy(names_val)


@exercise("day15.ex4", title="add-k tuned to a target", kind="experiment",
          section="section 3, Longer contexts: trigrams and beyond on names")
def check_add_k_setting(answer: Any) -> str:
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise Wrong(f"expected a tuple (order, k), got {answer!r}")
    order, k = answer
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= 8:
        raise Wrong(f"the order must be a whole number from 1 to 8, got {order!r}")
    if isinstance(k, bool) or not isinstance(k, (int, float, np.floating)) or not (math.isfinite(k) and k > 0):
        raise Wrong(f"k must be a positive number, got {k!r}")
    order, k = int(order), float(k)
    ce = names_val_ce(order, "add-k", k)
    if not ce < 2.06:
        other = "" if k == 1 else f"; with k = 1 it scores {names_val_ce(order, 'add-k', 1.0):.4f}"
        raise Wrong(f"an order-{order} add-k model with k = {k:g} scores {ce:.4f} nats per character on the validation "
                    f"names; the target is below 2.06{other}")
    return (f"({ce:.4f} nats per character on the {len(_names_split()[1])} validation names; with k = 1 it was "
            f"{names_val_ce(order, 'add-k', 1.0):.4f}, and Kneser-Ney scores {names_val_ce(order, 'kneser-ney'):.4f} "
            f"at this order, untuned)")
