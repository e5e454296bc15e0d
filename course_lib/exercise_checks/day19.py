"""Day 19's exercises: counting an MLP language model's parameters, the mean of each bag of embeddings, mixing two language models, the best small MLP for a parameter budget."""

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


@exercise("day19.ex1", title="counting an MLP language model's parameters", kind="code",
          section="section 1, The model")
def check_num_params(fn: Any) -> str:
    from course_lib.mlp_lm import MLPLM, MLPLMConfig

    rng = random.Random(1901)
    cases = [(65, 6, 64, 1024, False), (65, 8, 24, 512, False), (1, 1, 1, 1, False), (65, 3, 10, 100, True)]
    cases += [(rng.randint(2, 300), rng.randint(1, 12), rng.randint(1, 80), rng.randint(1, 600), rng.random() < 0.5)
              for _ in range(6)]
    for V, n, d, H, direct in cases:
        with torch.random.fork_rng(devices=[]):  # building the model draws its init: leave the caller's state alone
            want = sum(p.numel() for p in MLPLM(MLPLMConfig(V, n, d, H, direct=direct)).parameters())
        what = f"mlp_lm_num_params({V}, {n}, {d}, {H}, direct={direct})"
        got = _call(fn, what, V, n, d, H, direct=direct)
        if isinstance(got, bool) or not isinstance(got, numbers.Integral):
            raise Wrong(f"{what} should return an int, got {type(got).__name__} {got!r}")
        if got != want:
            side = "too few" if got < want else "too many"
            raise Wrong(f"{what} returned {got:,} ({side}); MLPLM(MLPLMConfig(...)) has {want:,} parameters")
    return f"({len(cases)} shapes, with and without direct connections, agree with sum(p.numel()) of MLPLM)"


@exercise("day19.ex2", title="the mean of each bag", kind="code",
          section="section 6, A classifier over averaged embeddings")
def check_bag_mean(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1902)
    cases = [  # (number of rows, dim, bag sizes): one bag, repeated ids, empty bags first, inside and last
        (3, 2, [3]),
        (5, 4, [1, 1, 1, 1, 1]),
        (6, 3, [0, 2, 4]),
        (4, 2, [2, 0, 3]),
        (7, 5, [3, 2, 0]),
        (2, 1, [0]),
    ]
    cases += [(int(torch.randint(1, 40, (1,), generator=gen)), int(torch.randint(1, 17, (1,), generator=gen)),
               torch.randint(0, 9, (int(torch.randint(1, 12, (1,), generator=gen)),), generator=gen).tolist())
              for _ in range(5)]
    for rows, dim, sizes in cases:
        table = torch.randn(rows, dim, generator=gen, dtype=torch.float64)
        flat = torch.randint(0, rows, (sum(sizes),), generator=gen)  # ids may repeat inside a bag
        offsets = torch.tensor([0] + sizes[:-1], dtype=torch.long).cumsum(0)  # where each bag starts
        want = F.embedding_bag(flat, table, offsets, mode="mean")  # (B, dim): torch's EmbeddingBag; empty -> 0
        where = f"bag sizes {sizes} (flat_ids {flat.tolist()}, offsets {offsets.tolist()}, table {rows} x {dim})"
        got = _call(fn, f"bag_mean on {where}", table.clone(), flat.clone(), offsets.clone())
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"bag_mean should return a tensor, got {type(got).__name__}")
        why = differs(got, want, rtol=1e-6, atol=1e-9)
        if why:
            if got.shape == want.shape:
                bad = [i for i in range(len(sizes)) if differs(got[i], want[i], rtol=1e-6, atol=1e-9)]
                why = f"bag {bad[0]} (of size {sizes[bad[0]]}) is {got[bad[0]].tolist()}, expected {want[bad[0]].tolist()}"
            raise Wrong(f"on {where}: {why} (the reference is F.embedding_bag(..., mode='mean'))")
    return f"({len(cases)} tables and bags, empty bags and repeated ids included, agree with F.embedding_bag(mode='mean'))"


@exercise("day19.ex3", title="two models are better than one", kind="code",
          section="section 5, What did it learn?")
def check_mixture(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1903)
    cases = [  # (log-probs of model a, of model b, lambda)
        ([math.log(0.5), math.log(0.25)], [math.log(0.25), math.log(0.5)], 0.5),
        ([-1.0, -2.0, -3.0], [-3.0, -2.0, -1.0], 1.0),  # lambda 1: model a alone
        ([-1.0, -2.0, -3.0], [-3.0, -2.0, -1.0], 0.0),  # lambda 0: model b alone
        ([-800.0, -2.0], [-1.0, -900.0], 0.3),  # probabilities far below 1e-300 ...
        ([-800.0, -3.0], [-760.0, -4.0], 0.5),  # ... under both models at once
    ]
    cases = [(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64), lam) for a, b, lam in cases]
    for _ in range(4):
        N = int(torch.randint(1, 200, (1,), generator=gen))
        a = -torch.rand(N, generator=gen, dtype=torch.float64) * 12  # log p in (-12, 0]
        b = -torch.rand(N, generator=gen, dtype=torch.float64) * 12
        cases.append((a, b, float(torch.rand(1, generator=gen))))
    for a, b, lam in cases:
        with torch.no_grad():  # log(lam p_a + (1 - lam) p_b) per token, computed in logs
            weights = torch.tensor([lam, 1 - lam], dtype=torch.float64)[:, None]  # (2, 1)
            logs = torch.stack([a, b]) + weights.log()  # (2, N); log 0 = -inf drops a model with weight 0
            want = -torch.logsumexp(logs, dim=0).mean().item()
        where = f"lam={lam:.4g} on {len(a)} tokens" + (f" (lp_a={a.tolist()}, lp_b={b.tolist()})" if len(a) <= 3 else "")
        got = _call(fn, f"mixture_nats with {where}", a.clone(), b.clone(), lam)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise Wrong(f"mixture_nats should return a number (nats per token), got {type(got).__name__}")
        if not math.isfinite(got) or differs(got, want, rtol=1e-7, atol=1e-9):
            raise Wrong(f"mixture_nats with {where} returned {got!r}, expected {want:.10g} nats per token")
    return f"({len(cases)} pairs of models, lambda 0 and 1 and probabilities below 1e-300 included)"


# ---------------------------------------------------------------- the experiment
BUDGET = 10_000  # parameters
TARGET = 2.32  # nats per character on the validation sample


@lru_cache(maxsize=1)
def _tiny_data() -> tuple[torch.Tensor, torch.Tensor]:
    from course_lib.lm_eval import shakespeare_splits
    from course_lib.tokenizers import CharTokenizer

    train_text, val_text = shakespeare_splits()
    tok = CharTokenizer.from_text(train_text + val_text)  # the day's 65 characters
    return torch.tensor(tok.encode(train_text[:200_000])), torch.tensor(tok.encode(val_text[:20_000]))


def tiny_mlp_loss(config: Any, steps: int = 200) -> float:
    """Validation loss (nats per character) of an ``MLPLM(config)`` after a short, fixed run.

    The run: ``steps`` AdamW steps (learning rate 0.01, no weight decay) on batches of 32 random
    windows of 32 characters from the first 200,000 training characters, from a fixed seed, on one
    thread; then every character of the first 20,000 validation characters is scored with its full
    context (``score_tokens``). The same config always gives the same number.
    """
    from course_lib.mlp_lm import MLPLM, score_tokens

    train_ids, val_ids = _tiny_data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
            torch.manual_seed(1904)
            model = MLPLM(config)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
            gen = torch.Generator().manual_seed(1905)
            for _ in range(steps):
                starts = torch.randint(len(train_ids) - 32, (32,), generator=gen)  # (B,)
                offsets = starts[:, None] + torch.arange(32)  # (B, T)
                _, loss = model(train_ids[offsets], train_ids[offsets + 1])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            return -score_tokens(model, val_ids).mean().item()
    finally:
        torch.set_num_threads(threads)


@exercise("day19.ex4", title="the best small MLP for a budget", kind="experiment", section="section 2, Training")
def check_budget(answer: Any) -> str:
    from course_lib.mlp_lm import MLPLM, MLPLMConfig

    if not isinstance(answer, MLPLMConfig):
        raise Wrong(f"expected an MLPLMConfig(vocab_size=65, context_size=..., n_embd=..., hidden_size=...), "
                    f"got {type(answer).__name__} {answer!r}")
    if answer.vocab_size != 65:
        raise Wrong(f"the model reads the day's 65 characters: vocab_size must be 65, got {answer.vocab_size}")
    with torch.random.fork_rng(devices=[]):  # building the model draws its init: leave the caller's state alone
        n_params = MLPLM(answer).num_params()
    shape = f"context_size={answer.context_size}, n_embd={answer.n_embd}, hidden_size={answer.hidden_size}"
    if n_params > BUDGET:
        raise Wrong(f"{shape} has {n_params:,} parameters, more than the budget of {BUDGET:,}")
    loss = tiny_mlp_loss(answer)
    if not loss < TARGET:
        raise Wrong(f"{shape} ({n_params:,} parameters) reaches {loss:.4f} nats/char on the validation sample; "
                    f"the target is below {TARGET}")
    return f"({shape}: {n_params:,} parameters, {loss:.4f} nats/char after 200 steps)"
