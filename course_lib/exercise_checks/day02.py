"""Day 2's exercises: SiLU's derivative, counting an MLP's parameters, collapsing a linear
network, and an activation that lets a narrow network separate two spirals."""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.exercises import call_reported
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise


def _call(fn: Any, name: str, described: str, *args: Any) -> Any:
    """The learner's ``fn(*args)``; an error it raises is reported as wrong, naming the input."""
    return call_reported(fn, f"{name}({described})", *args)


def _autograd_derivative(fn: Any, z: torch.Tensor) -> torch.Tensor:
    z = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(z).sum(), z)  # elementwise fn: d(sum fn(z))/dz_j = fn'(z_j)
    return grad


@exercise("day02.ex1", title="the derivative of SiLU", kind="code", section="section 3, Their derivatives")
def check_silu_grad(fn: Any) -> str:
    gen = torch.Generator().manual_seed(201)
    cases = [torch.tensor([-2.0, 0.0, 1.5]), torch.linspace(-8, 8, 161), torch.tensor([-60.0, -30.0, 30.0, 60.0])]
    for shape in [(7,), (3, 4), (2, 3, 5)]:
        cases.append(3 * torch.randn(*shape, generator=gen))
    cases += [c.double() for c in cases[:2]]
    for z in cases:
        expected = _autograd_derivative(F.silu, z)  # torch's SiLU, differentiated by autograd
        got = _call(fn, "my_silu_grad", f"z of shape {tuple(z.shape)}, {z.dtype}", z.clone())
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"my_silu_grad must return a tensor like z, got {type(got).__name__}")
        if got.dtype != z.dtype:
            raise Wrong(f"for z of dtype {z.dtype}, my_silu_grad returned dtype {got.dtype}")
        why = differs(got, expected, rtol=1e-4, atol=1e-6)
        if why:
            shown = z.flatten()[:6].tolist()
            raise Wrong(f"for z = {[round(v, 3) for v in shown]}{'...' if z.numel() > 6 else ''} (shape "
                        f"{tuple(z.shape)}), autograd's derivative of F.silu differs: {why}")
    return f"({len(cases)} tensors, up to |z| = 60, agree with autograd's derivative of F.silu)"


@exercise("day02.ex2", title="counting an MLP's parameters", kind="code",
          section="section 4, The forward pass of an MLP")
def check_count_parameters(fn: Any) -> str:
    gen = torch.Generator().manual_seed(202)
    cases = [[784, 128, 64, 10], [2, 16, 16, 3], [5, 1], [1, 1, 1], [3, 7]]
    for _ in range(6):
        depth = int(torch.randint(2, 6, (), generator=gen))
        cases.append([int(v) for v in torch.randint(1, 50, (depth,), generator=gen)])
    for sizes in cases:
        layers = [nn.Linear(a, b, device="meta") for a, b in zip(sizes[:-1], sizes[1:])]  # shapes only
        expected = sum(p.numel() for layer in layers for p in layer.parameters())
        got = _call(fn, "count_parameters", repr(sizes), list(sizes))
        try:
            got = operator.index(got)  # an int (or a numpy or torch integer)
        except TypeError:
            raise Wrong(f"count_parameters({sizes}) must return a whole number, got {got!r}") from None
        if got != expected:
            raise Wrong(f"for sizes {sizes} the nn.Linear layers hold {expected} weights and biases; yours says "
                        f"{got}")
    return f"({len(cases)} MLPs, from 2 to 5 layer sizes, counted like nn.Linear)"


def _reference_collapse(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the linear map off the network itself: f(0) = b, and column j of W is f(e_j) - f(0)."""
    d_in = pairs[0][0].shape[1]
    h = torch.cat([torch.zeros(1, d_in, dtype=torch.float64), torch.eye(d_in, dtype=torch.float64)])
    for W, b in pairs:
        h = F.linear(h, W, b)  # torch's layer, one after the other
    return (h[1:] - h[0]).T, h[0]


@exercise("day02.ex3", title="collapse a linear network", kind="code",
          section="section 5, What the non-linearity buys")
def check_collapse(fn: Any) -> str:
    gen = torch.Generator().manual_seed(203)
    shapes = [[5, 8, 4, 2], [3, 3, 3], [4, 6], [2, 5, 5, 5, 1], [6, 2, 7, 3]]
    for sizes in shapes:
        pairs = [(torch.randn(b, a, generator=gen, dtype=torch.float64),
                  torch.randn(b, generator=gen, dtype=torch.float64)) for a, b in zip(sizes[:-1], sizes[1:])]
        W_ref, b_ref = _reference_collapse(pairs)
        described = f"{len(pairs)} layers {' -> '.join(map(str, sizes))}"
        out = _call(fn, "collapse", described, [(W.clone(), b.clone()) for W, b in pairs])
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise Wrong(f"collapse must return (W, b), got {type(out).__name__}")
        for what, got, want in (("W", out[0], W_ref), ("b", out[1], b_ref)):
            why = differs(got, want, rtol=1e-6, atol=1e-8)
            if why:
                raise Wrong(f"for {described} (f(x) read off the network at x = 0 and the unit vectors), "
                            f"{what} (shape {tuple(want.shape)}): {why}")
    return f"({len(shapes)} random linear networks, 1 to 4 layers, collapsed exactly)"


_ACTIVATIONS = {"identity": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}
_MAX_HIDDEN, _STEPS, _TARGET = 6, 150, 0.95


def _spirals(n_per_class: int, gen: torch.Generator, noise: float = 0.15, turns: float = 1.5):
    """Two interleaved arms, as in section 5: (2n, 2) points and their arm, 0 or 1."""
    t = torch.rand(n_per_class, generator=gen).sqrt() * turns * 2 * math.pi  # (n,)
    r = t / (turns * 2 * math.pi) * 3  # (n,)
    arms = [torch.stack([r * (t + k * math.pi).cos(), r * (t + k * math.pi).sin()], dim=1) for k in (0, 1)]
    X = torch.cat(arms) + noise * torch.randn(2 * n_per_class, 2, generator=gen)  # (2n, 2)
    return X, torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)]).long()


def spiral_accuracy(activation: str, hidden: int, lr: float) -> float:
    """Training accuracy of 2 -> hidden -> hidden -> 2 after 150 full-batch Adam steps on 200 spiral points."""
    X, y = _spirals(100, torch.Generator().manual_seed(202))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread, and the same result everywhere
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same initial weights for every answer
            act = _ACTIVATIONS[activation]
            model = nn.Sequential(nn.Linear(2, hidden), act(), nn.Linear(hidden, hidden), act(), nn.Linear(hidden, 2))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(_STEPS):
            loss = F.cross_entropy(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return (model(X).argmax(dim=1) == y).float().mean().item()
    finally:
        torch.set_num_threads(threads)


@exercise("day02.ex4", title="a narrow network for the spirals", kind="experiment",
          section="section 5, What the non-linearity buys")
def check_narrow_spirals(answer: Any) -> str:
    if not isinstance(answer, dict) or set(answer) != {"activation", "hidden", "lr"}:
        raise Wrong(f"expected a dict with the keys 'activation', 'hidden' and 'lr', got {answer!r}")
    activation, hidden, lr = answer["activation"], answer["hidden"], answer["lr"]
    if activation not in _ACTIVATIONS:
        raise Wrong(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    if isinstance(hidden, bool) or not isinstance(hidden, int) or not 1 <= hidden <= _MAX_HIDDEN:
        raise Wrong(f"hidden must be a whole number of neurons from 1 to {_MAX_HIDDEN}, got {hidden!r}")
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise Wrong(f"lr must be a number, got {lr!r}") from None
    if not 0 < lr <= 10:
        raise Wrong(f"lr must be positive (and at most 10), got {lr}")
    acc = spiral_accuracy(activation, hidden, lr)
    setting = f"{activation} with {hidden} neurons per hidden layer and lr={lr:g}"
    if acc < _TARGET:
        raise Wrong(f"{setting} classifies {acc:.1%} of the 200 spiral points after {_STEPS} Adam steps; "
                    f"the target is {_TARGET:.0%}")
    return f"({setting}: {acc:.1%} of the spiral points right after {_STEPS} steps)"
