"""Part 3, scaling out's exercises: averaging the workers' gradients, gradient accumulation, sharding a 70B model, the learning rate of a larger batch."""

from __future__ import annotations

import math
import numbers
import random
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.exercise_checks.tiny import heldout_batches, mean_loss, tiny_shakespeare, train_tiny
from course_lib.exercises import Wrong, exercise
from course_lib.exercises import call_reported as _call


# ---------------------------------------------------------------- exercise 1
def _mean_loss_grads(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of the mean squared error of the linear model x @ w + b on (x, y), for w and b (float64)."""
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    loss = ((x @ w + b - y) ** 2).mean()
    return [g.detach() for g in torch.autograd.grad(loss, (w, b))]


def _as_grads(got: Any, like: list[torch.Tensor], what: str) -> list[torch.Tensor]:
    if not isinstance(got, (list, tuple)) or not all(isinstance(g, torch.Tensor) for g in got):
        raise Wrong(f"{what} should return a list of tensors, one per parameter, got {type(got).__name__}")
    if len(got) != len(like):
        raise Wrong(f"{what} should return {len(like)} tensors (one per parameter), got {len(got)}")
    for i, (g, ref) in enumerate(zip(got, like)):
        if tuple(g.shape) != tuple(ref.shape):
            raise Wrong(f"{what}: parameter {i}'s gradient should have shape {tuple(ref.shape)}, got {tuple(g.shape)}")
    return [g.detach().double() for g in got]


@exercise("beyond05.ex1", title="averaging the workers' gradients", kind="code",
          section="section 1, Data parallelism by hand")
def check_average_gradients(fn: Any) -> str:
    rng = random.Random(5101)
    cases = [(2, [4, 4]), (3, [2, 2, 2]), (2, [1, 7]), (4, [5, 1, 3, 3]), (1, [6])]
    cases += [(n, [rng.randint(1, 9) for _ in range(n)]) for n in (rng.randint(2, 6) for _ in range(12))]
    for n_workers, sizes in cases:
        g = torch.Generator().manual_seed(rng.randrange(2**31))
        d_in, d_out = rng.randint(1, 5), rng.randint(1, 4)
        w, b = torch.randn(d_in, d_out, generator=g, dtype=torch.float64), torch.randn(d_out, generator=g,
                                                                                         dtype=torch.float64)
        x = torch.randn(sum(sizes), d_in, generator=g, dtype=torch.float64)
        y = torch.randn(sum(sizes), d_out, generator=g, dtype=torch.float64)
        shards = torch.split(torch.arange(sum(sizes)), sizes)  # worker i's examples
        per_worker = [_mean_loss_grads(w, b, x[idx], y[idx]) for idx in shards]
        given = [[t.clone() for t in grads] for grads in per_worker]
        want = _mean_loss_grads(w, b, x, y)  # the whole batch's gradient, computed directly
        where = f"average_gradients(grads, batch_sizes={sizes}) for {n_workers} worker(s)"
        got = _as_grads(_call(fn, where, given, list(sizes)), want, where)
        if any(not torch.equal(a, b) for ga, gb in zip(given, per_worker) for a, b in zip(ga, gb)):
            raise Wrong(f"{where} changed the workers' gradients: build new tensors (an all-reduce gives every "
                        "worker the result, but here the input lists must be left as they were)")
        for i, (a, e) in enumerate(zip(got, want)):
            if not torch.allclose(a, e, rtol=1e-9, atol=1e-12):
                plain = sum(gr[i] for gr in per_worker) / n_workers
                why = (" (that is the plain mean of the workers' gradients: a worker with more examples should "
                       "count for more)") if torch.allclose(a, plain, rtol=1e-9, atol=1e-12) else ""
                raise Wrong(f"{where}: parameter {i}'s gradient differs from the whole batch's by up to "
                            f"{(a - e).abs().max().item():.3g}{why}")
    return f"({len(cases)} batches split over 1 to 6 workers, equal to the whole batch's gradient)"


# ---------------------------------------------------------------- exercise 2
class _CountingLM(nn.Module):
    """A bigram language model (embedding, linear head) in float64 that records each forward's batch size."""

    def __init__(self, vocab: int, width: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed_tokens = nn.Embedding(vocab, width, dtype=torch.float64)
        self.lm_head = nn.Linear(width, vocab, dtype=torch.float64)
        self.calls: list[int] = []

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        self.calls.append(idx.shape[0])
        logits = self.lm_head(torch.tanh(self.embed_tokens(idx)))  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


@exercise("beyond05.ex2", title="gradient accumulation", kind="code", section="section 2, Gradient accumulation")
def check_accumulated_grads(fn: Any) -> str:
    rng = random.Random(5102)
    cases = [(8, 2), (12, 3), (6, 1), (8, 8)] + [(k * rng.randint(1, 4), k) for k in (rng.randint(2, 6) for _ in range(6))]
    for B, k in cases:
        vocab, width, T = rng.randint(3, 12), rng.randint(2, 6), rng.randint(1, 5)
        seed = rng.randrange(2**31)
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randint(vocab, (B, T), generator=g), torch.randint(vocab, (B, T), generator=g)
        ref = _CountingLM(vocab, width, seed)
        _, loss = ref(x, y)
        loss.backward()  # one batch of B: the gradient accumulation must reproduce
        want = {name: p.grad.detach().clone() for name, p in ref.named_parameters()}
        model = _CountingLM(vocab, width, seed)
        for p in model.parameters():  # left over from an earlier step: must not leak in
            p.grad = torch.full_like(p, 0.5)
        where = f"accumulated_grads(model, x, y, k={k}) for a batch of {B} windows of {T} tokens"
        got = _call(fn, where, model, x.clone(), y.clone(), k)
        if not isinstance(got, dict) or set(got) != set(want):
            raise Wrong(f"{where} should return a dict of gradients by parameter name, {sorted(want)}; got "
                        f"{sorted(got) if isinstance(got, dict) else type(got).__name__}")
        if model.calls != [B // k] * k:
            raise Wrong(f"{where}: the model saw batches of {model.calls}; expected {k} micro-batches of {B // k}")
        for name, e in want.items():
            a = got[name]
            if not isinstance(a, torch.Tensor) or a.shape != e.shape:
                raise Wrong(f"{where}: {name}'s gradient should be a tensor of shape {tuple(e.shape)}")
            if not torch.allclose(a.detach().double(), e, rtol=1e-9, atol=1e-12):
                ratio = (a.detach().double().norm() / e.norm()).item()
                raise Wrong(f"{where}: {name}'s gradient differs from one batch of {B}'s (its norm is {ratio:.3g} "
                            "times the right one's: is each micro-batch's loss divided by k, and are old gradients "
                            "cleared once, before the first micro-batch?)")
    return f"({len(cases)} batches, 1 to 8 micro-batches each, equal to one large batch's gradient)"


# ---------------------------------------------------------------- exercise 3
FSDP_PARAMS = 70e9  # parameters
FSDP_GPU_BYTES = 80e9  # memory of one GPU, 80 GB (GB = 10^9 bytes)
FSDP_RESERVED_BYTES = 20e9  # kept on every GPU for activations, buffers and the all-gathered layer
BYTES_PER_PARAM = 16  # mixed-precision AdamW: bf16 weights and gradients, fp32 master weights, m and v


def _count(got: Any, what: str) -> int:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real) or not math.isfinite(got) or got != int(got):
        raise Wrong(f"{what} should be a whole number of GPUs, got {type(got).__name__} {got!r}")
    return int(got)


@exercise("beyond05.ex3", title="how many GPUs for a 70B model", kind="value",
          section="section 4, A model too large for one GPU")
def check_fsdp_gpus(answer: Any) -> str:
    n = _count(answer, "the number of GPUs")
    fits = lambda gpus: FSDP_PARAMS * BYTES_PER_PARAM / gpus <= FSDP_GPU_BYTES - FSDP_RESERVED_BYTES
    if n < 1 or not fits(n):
        per = FSDP_PARAMS * BYTES_PER_PARAM / max(n, 1) / 1e9
        raise Wrong(f"on {n} GPUs each holds {per:.1f} GB of model state, more than the "
                    f"{(FSDP_GPU_BYTES - FSDP_RESERVED_BYTES) / 1e9:.0f} GB left after the reserve")
    if fits(n - 1):
        raise Wrong(f"{n} GPUs are enough, but so are {n - 1}: the question asks for the fewest")
    return f"({FSDP_PARAMS * BYTES_PER_PARAM / n / 1e9:.1f} GB of model state on each of {n} GPUs)"


# ---------------------------------------------------------------- exercise 4
BIG_BATCH_DEFAULTS = {"lr": 1e-3, "warmup_steps": 0}
WORKERS, WINDOWS_PER_WORKER = 4, 8  # four workers of 8 windows: 32 windows a step
BIG_BATCH_STEPS = 60  # the same tokens as one worker's 240 steps of 8 windows
BIG_BATCH_TARGET = 2.75  # nats/char; one worker (8 windows, 240 steps, lr 1e-3) ends at 2.71


def _big_batch_settings(answer: Any) -> dict[str, float]:
    if not isinstance(answer, dict):
        raise Wrong(f"the answer is a dict of settings such as {BIG_BATCH_DEFAULTS}, got {type(answer).__name__}")
    unknown = sorted(set(answer) - set(BIG_BATCH_DEFAULTS))
    if unknown:
        raise Wrong(f"unknown settings {unknown}: the settings are {sorted(BIG_BATCH_DEFAULTS)}")
    s = {**BIG_BATCH_DEFAULTS, **answer}
    lr, warm = s["lr"], s["warmup_steps"]
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and 0 < lr <= 1):
        raise Wrong(f"lr must be a number in (0, 1], got {lr!r}")
    if isinstance(warm, bool) or not isinstance(warm, int) or not 0 <= warm < BIG_BATCH_STEPS:
        raise Wrong(f"warmup_steps must be a whole number from 0 to {BIG_BATCH_STEPS - 1}, got {warm!r}")
    return s


def big_batch_run(settings: Any, workers: int = WORKERS, steps: int = BIG_BATCH_STEPS) -> float:
    """A 1-block GPT (width 32, context 32) trained by ``workers`` data-parallel workers of 8 windows each
    for ``steps`` AdamW steps at the given ``lr`` (after a linear warm-up of ``warmup_steps``); returns the
    mean loss on 4 fixed held-out batches, in nats/char. The workers' averaged gradient is the gradient
    of their combined batch (section 1), so the run computes it as one batch of ``8 * workers``."""
    from course_lib.model import GPT, GPTConfig

    s = _big_batch_settings(settings)
    train, val, vocab = tiny_shakespeare()
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=vocab, block_size=32, n_layer=1, n_head=2, n_embd=32))
    opt = torch.optim.AdamW(model.parameters(), lr=s["lr"], weight_decay=0.0)

    def warm_up(it: int) -> None:
        for group in opt.param_groups:
            group["lr"] = s["lr"] * min(1.0, (it + 1) / s["warmup_steps"]) if s["warmup_steps"] else s["lr"]

    train_tiny(model, opt, train, steps, WINDOWS_PER_WORKER * workers, before_step=warm_up)
    return mean_loss(model, heldout_batches(val, 4, 64))


@exercise("beyond05.ex4", title="the learning rate of a larger batch", kind="experiment",
          section="section 3, The real thing: torchrun")
def check_big_batch(answer: Any) -> str:
    s = _big_batch_settings(answer)
    changes = {k: v for k, v in s.items() if BIG_BATCH_DEFAULTS[k] != v}
    loss = big_batch_run(answer)
    if not math.isfinite(loss) or loss > BIG_BATCH_TARGET:
        raise Wrong(f"with {changes or 'the defaults'} four workers end at {loss:.3f} nats/char after "
                    f"{BIG_BATCH_STEPS} steps; the target is {BIG_BATCH_TARGET}")
    return f"({changes}: {loss:.3f} nats/char after {BIG_BATCH_STEPS} steps of {WORKERS} x {WINDOWS_PER_WORKER} windows)"
