"""Part 3, Muon's exercises: the cubic Newton-Schulz iteration, which matrices Muon moves, the size of an orthogonal step, a tiny Muon run."""

from __future__ import annotations

import math
import numbers
import random
from typing import Any

import torch

from course_lib.exercises import call_reported as _call
from course_lib.exercise_checks.tiny import heldout_batches, mean_loss, tiny_shakespeare, train_tiny
from course_lib.exercises import Wrong, exercise
from course_lib.model import GPT, GPTConfig


def _matrix(rng: random.Random, rows: int, cols: int, cond: float, scale: float) -> torch.Tensor:
    """A float64 matrix with known singular values, spread from ``scale`` down to ``scale / cond``."""
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    k = min(rows, cols)
    u, _ = torch.linalg.qr(torch.randn(rows, k, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, k, generator=g, dtype=torch.float64))
    s = scale * torch.logspace(0, -math.log10(cond), k, dtype=torch.float64)
    return u @ torch.diag(s) @ v.T


def _polar(g: torch.Tensor) -> torch.Tensor:
    """U V^T from the SVD: the orthogonal matrix nearest to g (the closed form the iteration approaches)."""
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    return u @ vh


def _as_tensor(got: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"{what} should return a tensor, got {type(got).__name__}")
    if tuple(got.shape) != shape:
        raise Wrong(f"{what} should return a tensor of shape {shape} (the input's), got {tuple(got.shape)}")
    return got.detach().double()


# ---------------------------------------------------------------- exercise 1
def cubic_reference(g: torch.Tensor, steps: int) -> torch.Tensor:
    """X_0 = G / ||G||_F, then X <- 1.5 X - 0.5 X X^T X, ``steps`` times (float64)."""
    x = g.double() / g.double().norm()
    for _ in range(steps):
        x = 1.5 * x - 0.5 * (x @ x.T) @ x
    return x


@exercise("beyond02.ex1", title="the cubic Newton-Schulz iteration", kind="code",
          section="section 2, Newton-Schulz: orthogonalising without an SVD")
def check_cubic(fn: Any) -> str:
    rng = random.Random(4201)
    cases = [(4, 4, 3.0, 1.0, 1), (3, 5, 2.0, 10.0, 2)]  # small by hand; a matrix far larger than norm 1
    cases += [(rng.randint(2, 24), rng.randint(2, 24), rng.choice([1.5, 4.0, 20.0]), rng.choice([0.01, 1.0, 50.0]),
               rng.randint(0, 12)) for _ in range(20)]  # fmt: skip
    for rows, cols, cond, scale, steps in cases:
        g = _matrix(rng, rows, cols, cond, scale)
        where = f"cubic_newton_schulz(G, steps={steps}) for a {rows}x{cols} G with singular values {scale:g} to " \
                f"{scale / cond:.3g}"
        given = g.clone()
        got = _as_tensor(_call(fn, where, given, steps), (rows, cols), where)
        if not torch.equal(given, g):
            raise Wrong(f"{where} changed G: compute on a copy (x = g / norm makes one)")
        want = cubic_reference(g, steps)
        if not torch.allclose(got, want, rtol=1e-6, atol=1e-9):
            err = (got - want).abs().max().item()
            raise Wrong(f"{where}: entries differ from the iteration by up to {err:.3g} (is X_0 = G / ||G||_F, "
                        f"and is the update 1.5 X - 0.5 X X^T X, applied exactly {steps} times?)")
    # and it converges to U V^T, the closed form, when run long enough on a well-conditioned matrix
    g = _matrix(rng, 12, 20, 3.0, 5.0)
    got = _as_tensor(_call(fn, "cubic_newton_schulz(G, steps=40)", g.clone(), 40), (12, 20), "steps=40")
    gap = (got - _polar(g)).abs().max().item()
    if gap > 1e-8:
        raise Wrong(f"after 40 steps on a 12x20 matrix of condition number 3 the result is {gap:.3g} from U V^T")
    return f"({len(cases)} matrices, and 40 steps reach U V^T to {gap:.1e})"


# ---------------------------------------------------------------- exercise 2
def muon_names_reference(model: GPT) -> set[str]:
    """The names Muon moves: every 2-D parameter inside model.layers (the blocks' weight matrices)."""
    return {f"layers.{name}" for name, p in model.layers.named_parameters() if p.dim() == 2}


def _configs(seed: int) -> list[GPTConfig]:
    rng = random.Random(seed)
    out = [GPTConfig.classic(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=16),
           GPTConfig.modern(vocab_size=65, block_size=16, n_layer=2, n_head=4, n_kv_head=2, n_embd=16)]
    for _ in range(6):
        make = rng.choice([GPTConfig.classic, GPTConfig.modern])
        out.append(make(vocab_size=rng.randint(5, 90), block_size=rng.randint(4, 32), n_layer=rng.randint(1, 3),
                        n_head=2, n_embd=8 * rng.randint(1, 3), bias=rng.random() < 0.5,
                        tie_weights=rng.random() < 0.5))  # fmt: skip
    return out


@exercise("beyond02.ex2", title="which parameters Muon moves", kind="code",
          section="section 4, Muon for the blocks, AdamW for the rest")
def check_muon_names(fn: Any) -> str:
    n_muon = n_all = 0
    for cfg in _configs(4202):
        with torch.device("meta"):
            model = GPT(cfg)
        layout = (f"a {'classic' if cfg.pos_encoding == 'learned' else 'modern'} GPT with {cfg.n_layer} blocks, "
                  f"bias={cfg.bias}, tie_weights={cfg.tie_weights}")
        got = _call(fn, f"muon_names(model) for {layout}", model)
        if not isinstance(got, (set, frozenset, list, tuple)) or not all(isinstance(n, str) for n in got):
            raise Wrong(f"muon_names(model) should return a set of parameter names, got {type(got).__name__}")
        got, want = set(got), muon_names_reference(model)
        extra, missing = sorted(got - want), sorted(want - got)
        if extra or missing:
            shapes = dict(model.named_parameters())
            say = "; ".join(
                [f"{n} {tuple(shapes[n].shape) if n in shapes else '(no such parameter)'} should keep AdamW"
                 for n in extra[:3]] + [f"{n} {tuple(shapes[n].shape)} is a block's matrix: Muon" for n in missing[:3]])
            raise Wrong(f"for {layout}: {say}")
        n_muon, n_all = n_muon + len(want), n_all + len(dict(model.named_parameters()))
    return f"({n_muon} of {n_all} parameter tensors in 8 GPTs are Muon's)"


# ---------------------------------------------------------------- exercise 3
def _number(got: Any, what: str) -> float:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real) or not math.isfinite(got):
        raise Wrong(f"{what} should be a number, got {type(got).__name__} {got!r}")
    return float(got)


@exercise("beyond02.ex3", title="the size of an orthogonal step", kind="value",
          section="section 3, One Muon step")
def check_rms(answer: Any) -> str:
    got = _number(answer, "the RMS")
    g = torch.randn(128, 512, generator=torch.Generator().manual_seed(4203), dtype=torch.float64)
    want = _polar(g).pow(2).mean().sqrt().item()  # measured on an exact U V^T, not from the formula
    if not math.isclose(got, want, rel_tol=2e-3):
        raise Wrong(f"{got:.6g} is not the RMS of the entries of U V^T for a full-rank 128x512 matrix (its squared "
                    "entries add up to the sum of its squared singular values)")
    return f"(sqrt(128 / (128 x 512)) = {want:.5f})"


# ---------------------------------------------------------------- exercise 4
TINY_MUON_DEFAULTS = {"muon_lr": 0.0005, "momentum": 0.0, "ns_steps": 5}
TINY_MUON_STEPS = 150
TINY_MUON_TARGET = 2.46  # nats/char on the tiny run's held-out batches; the defaults end at 3.10


def _tiny_muon_settings(answer: Any) -> dict[str, float]:
    if not isinstance(answer, dict):
        raise Wrong(f"the answer is a dict of settings such as {TINY_MUON_DEFAULTS}, got {type(answer).__name__}")
    unknown = sorted(set(answer) - set(TINY_MUON_DEFAULTS))
    if unknown:
        raise Wrong(f"unknown settings {unknown}: the settings are {sorted(TINY_MUON_DEFAULTS)}")
    s = {**TINY_MUON_DEFAULTS, **answer}
    lr, beta, steps = s["muon_lr"], s["momentum"], s["ns_steps"]
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and 0 < lr <= 1):
        raise Wrong(f"muon_lr must be a number in (0, 1], got {lr!r}")
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
        raise Wrong(f"momentum must be a number in [0, 1), got {beta!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 10:
        raise Wrong(f"ns_steps must be a whole number from 1 to 10, got {steps!r}")
    return s


def tiny_muon(answer: Any) -> float:
    """A 1-block GPT (width 32, context 32), 150 steps of 16 windows: Muon on the block's matrices with the
    given settings, AdamW (lr 3e-3) on the rest; the mean loss on 8 fixed held-out batches, in nats/char."""
    from course_lib.muon import Muon, muon_param_groups

    s = _tiny_muon_settings(answer)
    train, val, vocab = tiny_shakespeare()
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=vocab, block_size=32, n_layer=1, n_head=2, n_embd=32))
    opt = Muon(muon_param_groups(model, 0.0), lr=3e-3, muon_lr=float(s["muon_lr"]), momentum=float(s["momentum"]),
               ns_steps=s["ns_steps"])  # fmt: skip
    train_tiny(model, opt, train, TINY_MUON_STEPS, 16)
    return mean_loss(model, heldout_batches(val, 8, 16))


@exercise("beyond02.ex4", title="a tiny Muon run", kind="experiment", section="section 5, AdamW against Muon")
def check_tiny_muon(answer: Any) -> str:
    s = _tiny_muon_settings(answer)
    changes = {k: v for k, v in s.items() if TINY_MUON_DEFAULTS[k] != v}
    loss = tiny_muon(answer)
    if not math.isfinite(loss) or loss > TINY_MUON_TARGET:
        raise Wrong(f"with {changes or 'the defaults'} the tiny model ends at {loss:.3f} nats/char after "
                    f"{TINY_MUON_STEPS} steps; the target is {TINY_MUON_TARGET}")
    return f"({changes}: {loss:.3f} nats/char after {TINY_MUON_STEPS} steps)"


