"""Day 3's exercises: a numerical gradient, the chain rule by hand, backpropagation over
``Value``'s graph, and a learning rate that trains a ``Value`` network on XOR."""

from __future__ import annotations

import math
import random
from typing import Any

import torch

from course_lib.autograd import MLP, Value
from course_lib.exercises import call_reported
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise


def _call(fn: Any, name: str, described: str, *args: Any) -> Any:
    """The learner's ``fn(*args)``; an error it raises is reported as wrong, naming the input."""
    return call_reported(fn, f"{name}({described})", *args)


# Each test function is written once, for a module of maths: `math` for the learner's numbers,
# `torch` for the reference, whose autograd gives the exact partial derivatives.
_FUNCTIONS = [
    ("3 x0^2 - 4 x0 + 5", lambda v, m: 3 * v[0] ** 2 - 4 * v[0] + 5, [3.0]),
    ("x0 x1^3 + x1", lambda v, m: v[0] * v[1] ** 3 + v[1], [1.5, -2.0]),
    ("exp(x0) sin(x1) + x2^2 / x0", lambda v, m: m.exp(v[0]) * m.sin(v[1]) + v[2] ** 2 / v[0], [0.7, 2.0, -1.3]),
    ("tanh(x0 x1 + x2) + x3^3", lambda v, m: m.tanh(v[0] * v[1] + v[2]) + v[3] ** 3, [0.4, -1.1, 0.3, 2.0]),
]


@exercise("day03.ex1", title="a numerical gradient", kind="code",
          section="section 2, Several inputs, and the chain rule")
def check_numerical_grad(fn: Any) -> str:
    rng = random.Random(301)
    cases = [(name, f, list(x)) for name, f, x in _FUNCTIONS]
    cases += [(name, f, [rng.uniform(0.5, 2.0) * rng.choice((-1, 1)) for _ in x]) for name, f, x in _FUNCTIONS]
    h = 1e-3  # central differences are accurate to about h^2 here; one-sided ones only to about h
    for name, f, x in cases:
        if "/ x0" in name:
            x[0] = abs(x[0])  # keep away from x0 = 0
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (expected,) = torch.autograd.grad(f(t, torch), t)
        x_given = list(x)
        got = _call(fn, "numerical_grad", f"f = {name}, x = {x_given}, h = {h}", lambda v: f(v, math), x_given, h)
        if x_given != x:
            raise Wrong(f"numerical_grad changed the list x it was given (for f = {name}, x = {x}): "
                        "nudge a copy, one coordinate at a time")
        try:
            got = torch.tensor([float(g) for g in got], dtype=torch.float64)
        except (TypeError, ValueError):
            raise Wrong(f"numerical_grad must return a list of {len(x)} numbers, got {got!r}") from None
        why = differs(got, expected, rtol=1e-5, atol=1e-5)
        if why:
            xs = [round(v, 4) for v in x]
            raise Wrong(f"for f = {name} at x = {xs} with h = {h}, the exact partial derivatives (torch.autograd) "
                        f"differ: {why}")
    return f"({len(cases)} functions of 1 to 4 inputs agree with torch.autograd to 1e-5)"


@exercise("day03.ex2", title="the chain rule by hand", kind="value",
          section="section 2, Several inputs, and the chain rule")
def check_chain_rule(answer: Any) -> str:
    try:
        dg_da, dg_db = (float(v) for v in answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected a pair of numbers (dg/da, dg/db), got {answer!r}") from None
    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    ((a * b + b) ** 2).backward()  # torch.autograd's answer
    for what, got, want in (("dg/da", dg_da, a.grad.item()), ("dg/db", dg_db, b.grad.item())):
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            raise Wrong(f"{what} at a = 2, b = -1 is not {got:g}: with u = ab + b, multiply dg/du = 2u by "
                        f"du/d{what[-1]}")
    return "(both partial derivatives agree with torch.autograd)"


def _random_expression(rng: random.Random, n_leaves: int, n_ops: int):
    """The same random expression built twice, from Values and from float64 torch leaves.

    Nodes are reused, so many values are used several times and their gradients must add up."""
    data = [rng.uniform(-1.5, 1.5) for _ in range(n_leaves)]
    leaves = [Value(d) for d in data]
    tleaves = [torch.tensor(d, dtype=torch.float64, requires_grad=True) for d in data]
    nodes, tnodes = list(leaves), list(tleaves)
    for _ in range(n_ops):
        op = rng.choice(["+", "*", "*", "tanh", "sigmoid", "-", "square"])
        i, j = rng.randrange(len(nodes)), rng.randrange(len(nodes))
        a, b, ta, tb = nodes[i], nodes[j], tnodes[i], tnodes[j]
        if op == "+":
            new, tnew = a + b, ta + tb
        elif op == "-":
            new, tnew = a - b, ta - tb
        elif op == "*":
            new, tnew = (a * b).tanh() * 2, torch.tanh(ta * tb) * 2  # bounded, so products never blow up
        elif op == "tanh":
            new, tnew = a.tanh(), torch.tanh(ta)
        elif op == "sigmoid":
            new, tnew = a.sigmoid(), torch.sigmoid(ta)
        else:
            new, tnew = a * a, ta * ta
        nodes.append(new)
        tnodes.append(tnew)
    root = sum(nodes[n_leaves:][-3:], Value(0.0))  # the last few nodes, so every path ends at root
    troot = sum(tnodes[n_leaves:][-3:], torch.tensor(0.0, dtype=torch.float64))
    tgrads = torch.autograd.grad(troot, tleaves, allow_unused=True)  # a leaf left out gets None
    expected = [0.0 if g is None else g.item() for g in tgrads]
    return root, leaves, expected


@exercise("day03.ex3", title="backpropagation over Value's graph", kind="code",
          section="section 4, The course's engine: course_lib.autograd.Value")
def check_backward(fn: Any) -> str:
    rng = random.Random(303)
    checks, largest = [(2, 1), (2, 3), (3, 6), (4, 12), (5, 25), (3, 40), (6, 60)], 0
    for n_leaves, n_ops in checks:
        root, leaves, expected = _random_expression(rng, n_leaves, n_ops)
        n_nodes = len(root.topological_order())
        largest = max(largest, n_nodes)
        _call(fn, "value_backward", f"a graph of {n_nodes} values", root)
        got = [leaf.grad for leaf in leaves]
        why = differs(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                      rtol=1e-9, atol=1e-12)
        if why:
            raise Wrong(f"on a random graph of {n_nodes} values over {n_leaves} leaves (some values used several "
                        f"times), the leaves' gradients differ from torch.autograd's: {why}")
    return f"({len(checks)} random graphs, up to {largest} values, agree with torch.autograd)"


_XOR = ([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], [-1.0, 1.0, 1.0, -1.0])
_XOR_STEPS, _XOR_TARGET = 40, 0.01


def xor_loss_after_training(lr: float) -> float:
    """Mean squared error on XOR's four points of a Value MLP 2 -> 4 -> 1 (seed 0) after 40 steps."""
    X, y = _XOR
    model = MLP(2, [4, 1], seed=0)
    for _ in range(_XOR_STEPS):
        loss = sum((model(x) - t) ** 2 for x, t in zip(X, y)) / len(X)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        if not math.isfinite(loss.data) or loss.data > 1e6:
            return math.inf  # diverged
    return sum((model(x).data - t) ** 2 for x, t in zip(X, y)) / len(X)


@exercise("day03.ex4", title="a learning rate that learns XOR", kind="experiment",
          section="section 5, A tiny neural network made of Values")
def check_xor_learning_rate(answer: Any) -> str:
    if isinstance(answer, bool) or not isinstance(answer, int | float):
        raise Wrong(f"expected a learning rate (a number), got {answer!r}")
    lr = float(answer)
    loss = xor_loss_after_training(lr)
    if math.isinf(loss):
        raise Wrong(f"with lr={lr:g} gradient descent diverged: the loss grew past a million within "
                    f"{_XOR_STEPS} steps")
    if loss >= _XOR_TARGET:
        raise Wrong(f"with lr={lr:g} the mean squared error on XOR is {loss:.3g} after {_XOR_STEPS} steps; "
                    f"the target is below {_XOR_TARGET}")
    return f"(lr={lr:g}: mean squared error {loss:.2g} on XOR after {_XOR_STEPS} steps)"
