"""Day 8's exercises: an L1 + L2 weight penalty, early stopping's bookkeeping, tuning L1 for sparsity, decay without data."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import load_digits, train_val_split
from course_lib.exercises import raised as _raised
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise



def _random_mlp(gen: torch.Generator, sizes: list[int], bias: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(n_in, n_out, bias=bias or k == 0), nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return model


@exercise("day08.ex1", title="an L1 + L2 weight penalty", kind="code", section="section 3, L1 regularisation: sparse weights")
def check_weight_penalty(fn: Any) -> str:
    gen = torch.Generator().manual_seed(801)
    cases = [([5, 3], True, 0.1, 0.0), ([4, 6, 2], True, 0.0, 0.3), ([7, 5, 5, 3], False, 0.02, 0.5),
             ([3, 8, 1], True, 1e-3, 2.0)]
    for sizes, bias, l1, l2 in cases:
        model = _random_mlp(gen, sizes, bias)
        where = f"an MLP of sizes {sizes} ({'with' if bias else 'first layer only with'} biases), l1={l1}, l2={l2}"
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        want = (l1 * sum(torch.linalg.vector_norm(w, ord=1) for w in weights)
                + 0.5 * l2 * sum(torch.linalg.vector_norm(w) ** 2 for w in weights))
        try:
            got = call_answer(fn, model, l1, l2)
        except (Waiting, Wrong):
            raise
        except Exception as err:  # noqa: BLE001 (any other error is the learner's bug, reported)
            raise _raised(f"weight_penalty on {where}", err) from None
        why = differs(got, want, rtol=1e-9, atol=1e-12)
        if why:
            raise Wrong(f"on {where}, the penalty differs: {why}")
        if not (isinstance(got, torch.Tensor) and got.requires_grad):
            raise Wrong(f"on {where}, the penalty is a {type(got).__name__} without a gradient: return a tensor "
                        "built from the parameters (no .item()), so that backward() reaches them")
        model.zero_grad()
        got.backward()
        for name, p in model.named_parameters():
            grad = torch.zeros_like(p) if p.grad is None else p.grad
            expected = l1 * torch.sign(p) + l2 * p if name.endswith("weight") else torch.zeros_like(p)  # closed form
            why = differs(grad, expected.detach(), rtol=1e-9, atol=1e-12)
            if why:
                raise Wrong(f"on {where}, the gradient of the penalty with respect to {name} is not "
                            f"l1 sign(w) + l2 w{' (weights only)' if name.endswith('bias') else ''}: {why}")
    return f"({len(cases)} random MLPs: the penalty and its gradient, l1 sign(w) + l2 w on the weights, agree)"


def _early_stopping_reference(losses: list[float], patience: int) -> tuple[int, int]:
    best, best_epoch, waited = math.inf, 0, 0
    for epoch, loss in enumerate(losses, start=1):
        if loss < best:  # strictly lower; nan is never lower
            best, best_epoch, waited = loss, epoch, 0
            continue
        waited += 1
        if waited == patience:
            return best_epoch, epoch
    return best_epoch, len(losses)


@exercise("day08.ex2", title="early stopping's bookkeeping", kind="code", section="section 5, Early stopping")
def check_early_stopping(fn: Any) -> str:
    gen = torch.Generator().manual_seed(802)
    noisy = [round(float(v), 2) for v in (torch.linspace(2, 0.5, 30) + 0.3 * torch.rand(30, generator=gen)
                                          + torch.linspace(0, 1, 30) ** 4)]  # fmt: skip
    cases = [([1.0, 0.8, 0.7, 0.75, 0.9, 0.72, 0.95, 1.1], 3),
             ([1.0, 0.9, 0.8, 0.7, 0.6], 2),  # always improving: runs every epoch
             ([0.5, 0.6, 0.7, 0.8], 1),  # best at the first epoch
             ([1.0, 0.8, 0.8, 0.8, 0.9, 0.7], 3),  # a tie is not an improvement
             ([1.0, 0.9, float("nan"), 0.95, 0.85, 0.99, 1.2], 2),  # nan never improves
             ([0.9, 1.0, 0.95], 10),  # patience longer than the run
             (noisy, 4), (noisy, 8)]
    for losses, patience in cases:
        want = _early_stopping_reference(losses, patience)
        try:
            got = call_answer(fn, list(losses), patience)
        except (Waiting, Wrong):
            raise
        except Exception as err:  # noqa: BLE001
            raise _raised(f"early_stopping({losses}, patience={patience})", err) from None
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Wrong(f"expected a tuple (best_epoch, epochs_run), got {got!r}")
        if tuple(got) != want:
            raise Wrong(f"on validation losses {losses} with patience={patience}: expected (best_epoch, epochs_run) "
                        f"= {want}, got {tuple(got)} (epochs count from 1; a tie or a nan is not an improvement)")
    return f"({len(cases)} loss curves, ties and nan included, agree with fit's rule)"


def _digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels = load_digits()  # (1797, 8, 8), (1797,)
    X = torch.tensor(images, dtype=torch.float32).reshape(-1, 64) / 16.0  # (1797, 64)
    y = torch.from_numpy(labels)  # (1797,)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train_idx, val_idx = train_val_split(perm, 0.2)
    train_idx = train_idx[:100]  # the day's 100 training digits
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx]


def l1_run(l1_strength: float, steps: int = 300) -> tuple[float, float]:
    """Train a 64-64-10 MLP on the day's 100 digits with an L1 penalty on its weight matrices
    (full-batch SGD, lr 0.1, momentum 0.9, seed 0); return (validation accuracy, share of the
    first layer's weights with |w| < 0.01)."""
    x_train, y_train, x_val, y_val = _digits_split()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        penalty = sum(p.abs().sum() for name, p in model.named_parameters() if name.endswith("weight"))
        loss = F.cross_entropy(model(x_train), y_train) + l1_strength * penalty
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        acc = (model(x_val).argmax(1) == y_val).float().mean().item()
        sparsity = (model[0].weight.abs() < 1e-2).float().mean().item()
    return acc, sparsity


@exercise("day08.ex3", title="L1 strength for a sparse, accurate network", kind="experiment",
          section="section 3, L1 regularisation: sparse weights")
def check_l1_strength(answer: Any) -> str:
    try:
        strength = float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected one number, the L1 strength, got {answer!r}") from None
    if not (strength >= 0 and math.isfinite(strength)):
        raise Wrong(f"the L1 strength must be a finite number >= 0, got {strength}")
    acc, sparsity = l1_run(strength)
    if sparsity < 0.8 or not acc >= 0.88:
        raise Wrong(f"with l1_strength={strength:g}, l1_run gives validation accuracy {acc:.1%} and {sparsity:.0%} of "
                    f"the first layer's weights below 0.01; the target is at least 80% of them, at an accuracy of "
                    f"at least 88% ({'too weak: more weights must reach zero' if sparsity < 0.8 else 'too strong: the data lost'})")
    base_acc, base_sparsity = l1_run(0.0)
    return (f"(accuracy {acc:.1%}, {sparsity:.0%} of the weights switched off; without the penalty "
            f"{base_acc:.1%} and {base_sparsity:.0%})")


@exercise("day08.ex4", title="decay without data", kind="value", section="section 2, L2 regularisation and weight decay")
def check_decay_without_data(answer: Any) -> str:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected one number, got {answer!r}") from None
    w = torch.ones(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.1, weight_decay=0.01)
    for _ in range(100):
        optimizer.zero_grad()
        (0.0 * w).sum().backward()  # a zero data gradient: only the decay acts
        optimizer.step()
    expected = w.item()
    if differs(value, expected, rtol=1e-7, atol=0):
        side = "too small" if value < expected else "too large"
        raise Wrong(f"{value:.8g} is {side}: it is not the weight torch.optim.SGD(lr=0.1, weight_decay=0.01) "
                    f"leaves after 100 steps from 1 with a zero data gradient")
    return f"(each step multiplies by 1 - 0.1 x 0.01; {1 - expected:.1%} of the weight is gone)"
