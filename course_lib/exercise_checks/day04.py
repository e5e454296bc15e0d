"""Day 4's exercises: a stable binary cross-entropy, label smoothing, where gradient descent
diverges, and a learning rate that converges fast."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from course_lib.exercises import call_reported
from course_lib.exercises import Waiting, Wrong, call_answer, exercise, is_placeholder
from course_lib.exercises import differs as _differs


def _differs_one_line(answer: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """How ``answer`` differs from ``expected``, on one line (numpy prints long arrays on several)."""
    why = _differs(answer, expected, rtol=rtol, atol=atol)
    return None if why is None else " ".join(why.split())


def _call(fn: Any, name: str, what: str, *args: Any) -> Any:
    """The learner's ``fn(*args)``; an error it raises is reported as wrong, naming the input."""
    return call_reported(fn, f"{name}({what})", *args)


def _describe(z: torch.Tensor) -> str:
    return f"logits of shape {tuple(z.shape)}, {str(z.dtype).replace('torch.', '')}, range {z.min():.3g}..{z.max():.3g}"


@exercise("day04.ex1", title="stable binary cross-entropy", kind="code",
          section="section 2, From logits to probabilities: the log-sum-exp trick")
def check_bce_with_logits(fn: Any) -> str:
    gen = torch.Generator().manual_seed(401)
    cases = [
        (torch.tensor([-1000.0, -3.0, -0.5, 0.0, 0.5, 4.0, 1000.0, 1000.0]),
         torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0])),  # both extremes, right and wrong
        (torch.tensor([0.0]), torch.tensor([1.0])),  # one example: log 2
        (torch.tensor([88.8, -88.8, 1e4, -1e4]), torch.tensor([0.0, 1.0, 1.0, 0.0])),  # exp overflows float32
    ]
    for shape, scale, dtype in [((7,), 1.0, torch.float32), ((5, 3), 10.0, torch.float32),
                                ((4, 2, 3), 50.0, torch.float64), ((64,), 3.0, torch.float64)]:
        z = scale * torch.randn(shape, generator=gen, dtype=dtype)
        y = (torch.rand(shape, generator=gen) > 0.5).to(dtype)
        cases.append((z, y))
    z_soft = 4 * torch.randn(6, generator=gen)  # soft labels in [0, 1]: the formula holds for them too
    cases.append((z_soft, torch.rand(6, generator=gen)))
    for z, y in cases:
        expected = F.binary_cross_entropy_with_logits(z, y)  # torch's own, mean over every entry
        got = _call(fn, "my_bce_with_logits", _describe(z), z.clone(), y.clone())
        if isinstance(got, torch.Tensor) and not torch.isfinite(got).all():
            raise Wrong(f"for {_describe(z)} and labels {y.flatten()[:8].tolist()}... the loss is {got}: "
                        f"something overflowed (torch gives {expected.item():.6g})")
        why = _differs_one_line(got, expected, rtol=1e-4, atol=1e-5)
        if why:
            raise Wrong(f"for {_describe(z)} and labels {y.flatten()[:8].tolist()}..., "
                        f"F.binary_cross_entropy_with_logits gives {expected.item():.6g}: {why}")
    return f"({len(cases)} batches, with logits up to ±10,000, agree with F.binary_cross_entropy_with_logits)"


@exercise("day04.ex2", title="label smoothing", kind="code", section="section 3, Cross-entropy")
def check_smoothed_cross_entropy(fn: Any) -> str:
    gen = torch.Generator().manual_seed(402)
    cases = []
    for N, C, scale, alpha in [(5, 7, 3.0, 0.1), (1, 2, 1.0, 0.3), (8, 10, 5.0, 0.0), (6, 4, 2.0, 1.0),
                               (12, 26, 10.0, 0.05), (3, 5, 1.0, 0.5)]:
        cases.append((scale * torch.randn(N, C, generator=gen), torch.randint(0, C, (N,), generator=gen), alpha))
    cases.append((torch.tensor([[1000.0, 999.0, 998.0], [0.0, 1000.0, -1000.0]]), torch.tensor([2, 0]), 0.1))
    for logits, targets, alpha in cases:
        expected = F.cross_entropy(logits, targets, label_smoothing=alpha)  # torch's own label smoothing
        what = f"logits {tuple(logits.shape)}, targets {targets.tolist()}, alpha={alpha}"
        got = _call(fn, "my_smoothed_cross_entropy", what, logits.clone(), targets.clone(), alpha)
        why = _differs_one_line(got, expected, rtol=1e-4, atol=1e-5)
        if why:
            raise Wrong(f"for {what} (logits in {logits.min():.3g}..{logits.max():.3g}), "
                        f"F.cross_entropy(..., label_smoothing={alpha}) gives {expected.item():.6g}: {why}")
    return f"({len(cases)} batches, alpha from 0 to 1, agree with F.cross_entropy(label_smoothing=alpha))"


def _reference_threshold(x: torch.Tensor) -> float:
    """2 / the largest eigenvalue of the Hessian of the line fit's MSE in (w, b), by autograd."""
    y = torch.randn(len(x), dtype=x.dtype)  # the targets shift the minimum, not the curvature

    def loss(wb: torch.Tensor) -> torch.Tensor:
        return ((wb[0] * x + wb[1] - y) ** 2).mean()

    hessian = torch.autograd.functional.hessian(loss, torch.zeros(2, dtype=x.dtype))  # (2, 2)
    return 2 / torch.linalg.eigvalsh(hessian).max().item()


@exercise("day04.ex3", title="where gradient descent diverges", kind="code", section="section 4, Gradient descent")
def check_divergence_threshold(fn: Any) -> str:
    gen = torch.Generator().manual_seed(403)
    cases = [torch.tensor([1.0, 2.0], dtype=torch.float64), torch.linspace(-1, 1, 9, dtype=torch.float64)]
    for n, scale, shift in [(50, 3.0, -1.0), (7, 1.0, 0.0), (200, 10.0, 5.0), (30, 0.1, 2.0)]:
        cases.append(torch.rand(n, generator=gen, dtype=torch.float64) * scale + shift)
    for x in cases:
        expected = _reference_threshold(x)
        what = f"x of {len(x)} points in {x.min():.3g}..{x.max():.3g}"
        got = _call(fn, "my_divergence_threshold", what, x.clone())
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Wrong(f"my_divergence_threshold({what}) returned {got!r}, not a number") from None
        if not math.isclose(got, expected, rel_tol=1e-6):
            raise Wrong(f"for {what}, 2 / (largest eigenvalue of the Hessian, by autograd) is {expected:.6g}; "
                        f"yours is {got:.6g}")
    return f"({len(cases)} sets of inputs agree with 2 / λ_max of autograd's Hessian)"


def _line_data(n: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Section 4's measurements: x uniform in [-1, 2], y = 2x + 1 + noise, from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dtype=torch.float64, generator=gen) * 3 - 1  # (n,)
    y = 2.0 * x + 1.0 + 0.4 * torch.randn(n, dtype=torch.float64, generator=gen)  # (n,)
    return x, y


FAST_STEPS, FAST_TOLERANCE = 20, 1e-4  # the experiment's budget and target


@exercise("day04.ex4", title="a learning rate that converges fast", kind="experiment",
          section="section 4, Gradient descent")
def check_fast_learning_rate(answer: Any) -> str:
    if is_placeholder(answer) or answer is None:
        raise Waiting
    try:
        lr = float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected a learning rate (a number), got {answer!r}") from None
    if not 0 < lr < 10:
        raise Wrong(f"a learning rate between 0 and 10, please, not {lr}")
    x, y = _line_data()
    A = torch.stack([x, torch.ones_like(x)], dim=1)  # (n, 2)
    w_best, b_best = torch.linalg.lstsq(A, y[:, None]).solution.flatten().tolist()
    w, b = -1.0, 3.0
    for _ in range(FAST_STEPS):  # plain gradient descent on the MSE, gradients in closed form
        err = w * x + b - y  # (n,)
        w, b = w - lr * 2 * (err * x).mean().item(), b - lr * 2 * err.mean().item()
    gap = max(abs(w - w_best), abs(b - b_best))
    if not gap < FAST_TOLERANCE:  # also catches nan and inf
        raise Wrong(f"with lr={lr}, {FAST_STEPS} steps from (w, b) = (-1, 3) end at ({w:.6g}, {b:.6g}), "
                    f"{gap:.2g} from the least-squares ({w_best:.6f}, {b_best:.6f}); the target is {FAST_TOLERANCE:g}")
    return f"(lr={lr}: after {FAST_STEPS} steps, {gap:.1e} from the least-squares line)"
