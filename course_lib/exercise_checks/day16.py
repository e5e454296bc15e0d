"""Day 16's exercises: per-token losses per character, scoring in sliding windows, the cheapest stride, a compressed size."""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Wrong, differs, exercise


def _number(got: Any, what: str) -> float:
    """``got`` as a float, or Wrong saying that ``what`` should be a number."""
    try:
        value = None if isinstance(got, (bool, str)) else float(got)
    except (TypeError, ValueError, RuntimeError):
        value = None
    if value is None:
        raise Wrong(f"{what} should be a number, got {type(got).__name__} {got!r}")
    return value


@exercise("day16.ex1", title="per-token losses, per character", kind="code",
          section="section 2, Three units for one number: nats, bits and perplexity")
def check_per_char_scores(fn: Any) -> str:
    rng = random.Random(1601)
    cases = [([math.log(2), math.log(4)], ["ab", "c"]),  # hand-worked: ln 8 / 3 = ln 2 nats, 1 bit, perplexity 2
             ([1.5], ["x"]),
             ([0.0, 0.0], ["the", " end"]),  # certain predictions cost nothing
             ([1.0, 2.0], ["é", "中文"])]  # 3 characters in 8 bytes
    alphabet = list("abcdefgh ,.") + ["é", "ß", "😀", "中"]  # some take 2 to 4 bytes in UTF-8: count characters
    for n, max_len in ((20, 1), (7, 6), (50, 4), (1, 9)):  # (tokens, longest token); max_len 1: a character model
        tokens = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len))) for _ in range(n)]
        cases.append(([rng.uniform(0, 8) for _ in range(n)], tokens))
    for nlls, tokens in cases:
        total, n_chars = math.fsum(nlls), sum(len(t) for t in tokens)  # the reference: total nats / characters
        nats = total / n_chars
        want = {"nats per character": nats, "bits per character": nats / math.log(2), "perplexity": math.exp(nats)}
        where = f"per_char_scores(tensor({[round(x, 4) for x in nlls]}), {tokens})"
        got = _call(fn, where, torch.tensor(nlls, dtype=torch.float64), list(tokens))
        if not (isinstance(got, tuple) and len(got) == 3):
            raise Wrong(f"{where} must return (nats_per_char, bits_per_char, perplexity), got {got!r}")
        for (name, w), g in zip(want.items(), got):
            g = _number(g, f"the {name} of {where}")
            if differs(g, w, rtol=1e-6, atol=1e-9):
                hint = ""
                if name == "nats per character" and math.isclose(g, total / len(tokens), rel_tol=1e-9) and n_chars != len(tokens):
                    hint = " (that is per token: divide the total by the characters the tokens spell)"
                raise Wrong(f"{where}: the {name} is {g:.6f}; the {len(tokens)} tokens cost {total:.6f} nats in "
                            f"all over {n_chars} characters, so it should be {w:.6f}{hint}")
    return f"({len(cases)} token lists, a character model among them, tokens of up to 9 characters, some outside ASCII)"


class _ToyCausalLM(nn.Module):
    """A fixed random causal model: the logits at window position t depend on every token 0..t and on t itself."""

    def __init__(self, vocab_size: int, max_len: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        d = 8
        self.register_buffer("tok", torch.randn(vocab_size, d, generator=gen, dtype=torch.float64))  # (V, d)
        self.register_buffer("pos", torch.randn(max_len, d, generator=gen, dtype=torch.float64))  # (T_max, d)
        self.register_buffer("out", 2 * torch.randn(d, vocab_size, generator=gen, dtype=torch.float64))  # (d, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        if idx.dim() != 2 or idx.shape[1] > self.pos.shape[0]:
            raise ValueError(f"the model takes (B, T) token ids with T <= block_size = {self.pos.shape[0]}, "
                             f"got shape {tuple(idx.shape)}")
        T = idx.shape[1]
        seen = self.tok[idx].cumsum(dim=1) / torch.arange(1, T + 1, dtype=torch.float64)[:, None]  # (B, T, d)
        return torch.tanh(seen + self.pos[:T]) @ self.out, None  # (B, T, V)


def _brute_force_total(model: _ToyCausalLM, ids: torch.Tensor, block_size: int, stride: int) -> float:
    """Token by token: find the one window that scores token i, run it, and add -log p(token i)."""
    N, B, last = len(ids), block_size, len(ids) - 1
    total = 0.0
    for i in range(1, N):
        if last <= B:  # one window holds the whole text: inputs ids[0 : N - 1]
            start, width = 0, last
        elif i <= B:  # the first window scores every prediction it makes
            start, width = 0, B
        else:  # later windows: the k-th scores tokens B + (k-1) stride + 1 .. min(B + k stride, last), ending there
            k = math.ceil((i - B) / stride)
            start, width = min(B + k * stride, last) - B, B
        with torch.no_grad():
            logits, _ = model(ids[start : start + width][None])  # (1, width, V)
        total -= torch.log_softmax(logits[0, i - start - 1], dim=-1)[ids[i]].item()
    return total


@exercise("day16.ex2", title="scoring in sliding windows", kind="code",
          section="section 3.1, The yardstick for neural models: overlapping windows")
def check_score_windows(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1602)
    cases = [(2, 4, 2), (5, 4, 2), (6, 4, 2), (20, 8, 4), (20, 8, 8), (23, 8, 3), (30, 5, 1), (41, 7, 5),
             (40, 16, 16), (37, 6, 4)]  # (tokens, block_size, stride)
    V = 6
    for j, (N, B, s) in enumerate(cases):
        model = _ToyCausalLM(V, B, seed=1610 + j)
        ids = torch.randint(0, V, (N,), generator=gen)  # (N,)
        want = _brute_force_total(model, ids, B, s)
        where = f"my_score_windows(model, ids of {N} tokens, block_size={B}, stride={s})"
        got = _number(_call(fn, where, model, ids.clone(), B, s), f"what {where} returned")
        if differs(got, want, rtol=1e-6, atol=1e-9):
            per_token = want / (N - 1)
            hint = ""
            if math.isclose(got, per_token, rel_tol=1e-6):
                hint = " (that is the mean: return the total over the scored tokens)"
            raise Wrong(f"{where} returned {got:.6f}; scoring each of the {N - 1} tokens after the first once, in the "
                        f"window that window_plan gives it, totals {want:.6f} nats{hint}")
    return f"({len(cases)} random causal models and texts, from a single prediction to stride 1, agree token by token)"


# ---------------------------------------------------------------- the 5-gram read through windows
WINDOW_ORDER = 5  # the course's baseline n-gram
WINDOW_BLOCK = 32  # the window size of the stride experiment


@lru_cache(maxsize=1)
def _kn_log_probs() -> np.ndarray:
    """(order, N) natural-log probabilities of every validation character under the Kneser-Ney models of
    orders 1..WINDOW_ORDER fit on the whole training text (D = 0.75, day 15)."""
    from course_lib.lm_eval import shakespeare_splits
    from course_lib.ngram import NGramModel

    train_text, val_text = shakespeare_splits()
    vocab = sorted(set(train_text) | set(val_text))
    return np.stack([NGramModel(m, smoothing="kneser-ney").fit(train_text, vocab=vocab).token_log_probs(val_text)
                     for m in range(1, WINDOW_ORDER + 1)])


def ngram_full_score() -> float:
    """The Kneser-Ney 5-gram's nats per character on the validation text, each character with its full context."""
    return float(-_kn_log_probs()[-1, 1:].mean())


@lru_cache(maxsize=64)
def ngram_window_score(stride: int, block_size: int = WINDOW_BLOCK) -> float:
    """The same 5-gram scored as a window model (section 3.1's trigram check, two orders up): each validation
    character predicted in the window that ``window_plan(n, block_size, stride)`` gives it, from only the
    characters of that window. A prediction that sees c characters uses the last min(c, 4) of them, which
    for the Kneser-Ney 5-gram is exactly the Kneser-Ney model of order min(c, 4) + 1. Nats per character."""
    from course_lib.lm_eval import window_plan

    lp = _kn_log_probs()  # (5, N)
    N = lp.shape[1]
    seen = np.zeros(N, dtype=np.int64)  # (N,) characters the prediction of character i reads
    for start, first in window_plan(N, block_size, stride):
        end = min(start + block_size, N - 1)  # the last character this window predicts
        seen[first : end + 1] = np.arange(first, end + 1) - start
    order = np.minimum(seen[1:], WINDOW_ORDER - 1) + 1  # (N - 1,) 1..5
    return float(-lp[order - 1, np.arange(1, N)].mean())


@exercise("day16.ex3", title="the cheapest stride", kind="experiment",
          section="section 3.1, The yardstick for neural models: overlapping windows")
def check_cheapest_stride(answer: Any) -> str:
    from course_lib.lm_eval import shakespeare_splits, window_plan

    B = WINDOW_BLOCK
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)) or not 1 <= answer <= B:
        raise Wrong(f"expected a stride, a whole number from 1 to the block size {B}, got {answer!r}")
    s = int(answer)
    full = ngram_full_score()
    gap = ngram_window_score(s) - full
    if not gap <= 0.01:
        raise Wrong(f"with stride {s}, the 5-gram read in windows of {B} scores {gap:.4f} nats per character more "
                    f"than with its full context; the target is at most 0.01 more")
    if s < B and ngram_window_score(s + 1) - full <= 0.01:
        raise Wrong(f"stride {s} stays within 0.01 nats per character ({gap:.4f}), but so does {s + 1} "
                    f"({ngram_window_score(s + 1) - full:.4f}), with fewer windows: find the largest stride")
    n = len(shakespeare_splits()[1])
    return (f"(stride {s}: {len(window_plan(n, B, s)):,} windows, {gap:.4f} nats per character above the full "
            f"context; stride {s + 1}: {ngram_window_score(s + 1) - full:.4f}; the default stride {B // 2}: "
            f"{len(window_plan(n, B, B // 2)):,} windows)" if s < B else f"(stride {s}: {gap:.4f})")


@exercise("day16.ex4", title="a compressed size", kind="value", section="section 5, Bits per character are a file size")
def check_kilobytes(answer: Any) -> str:
    bits = 1.40 / math.log(2)  # bits per character
    expected = bits * 1_000_000 / 8 / 1000  # 8 bits a byte, 1,000 bytes a kilobyte
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or differs(answer, expected, rtol=1e-4):
        side = "" if not isinstance(answer, (int, float)) else (" (too small)" if answer < expected else " (too large)")
        raise Wrong(f"{answer!r}{side} is not the size in kilobytes of 1,000,000 characters coded at 1.40 nats each")
    return f"({bits:.3f} bits per character, {expected:.1f} kB for a million characters, against 1,000 kB of ASCII)"
