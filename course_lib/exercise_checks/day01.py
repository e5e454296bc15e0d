"""Day 1's exercises: broadcasting, a layer of neurons, the perceptron rule, a hard data set, logic gates."""

from __future__ import annotations

from typing import Any

import torch

from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise, is_placeholder


def _shape_of(fn: Any, p: tuple, q: tuple) -> tuple | type[ValueError]:
    """The learner's broadcast shape for (p, q), or ValueError if their function raised it."""
    try:
        out = call_answer(fn, p, q)
    except ValueError:
        return ValueError
    except (Waiting, Wrong):
        raise
    except Exception as err:  # noqa: BLE001 (any other error is the learner's bug, reported)
        raise Wrong(f"my_broadcast_shape{(p, q)} raised {type(err).__name__}: {err}") from None
    try:
        return tuple(int(v) for v in out)
    except TypeError:
        raise Wrong(f"my_broadcast_shape{(p, q)} returned {out!r}, not a tuple of ints") from None


@exercise("day01.ex1", title="broadcast shapes", kind="code", section="section 1, Broadcasting")
def check_broadcast_shape(fn: Any) -> str:
    gen = torch.Generator().manual_seed(101)
    cases = [((3, 1, 4), (2, 1)), ((4, 3), (3,)), ((5,), (5,)), ((), (2, 3)), ((2, 1), (1, 7)), ((4, 3), (4,)),
             ((2, 3), (3, 2)), ((1,), (0,)), ((8, 1, 6, 1), (7, 1, 5))]
    for _ in range(40):  # random shapes, compatible or not
        nd_p, nd_q = (int(v) for v in torch.randint(0, 5, (2,), generator=gen))
        p = tuple(int(v) for v in torch.randint(1, 4, (nd_p,), generator=gen))
        q = tuple(int(v) for v in torch.randint(1, 4, (nd_q,), generator=gen))
        cases.append((p, q))
    for p, q in cases:
        try:
            expected: tuple | type[ValueError] = tuple(torch.broadcast_shapes(p, q))
        except RuntimeError:
            expected = ValueError
        got = _shape_of(fn, p, q)
        if got != expected:
            want = "a ValueError (the shapes cannot be lined up)" if expected is ValueError else str(expected)
            have = "a ValueError" if got is ValueError else str(got)
            raise Wrong(f"for shapes {p} and {q} torch.broadcast_shapes gives {want}; yours gives {have}")
    return f"({len(cases)} pairs of shapes, compatible or not, agree with torch.broadcast_shapes)"


@exercise("day01.ex2", title="a layer of neurons", kind="code", section="section 2, The artificial neuron")
def check_neuron_layer(fn: Any) -> str:
    gen = torch.Generator().manual_seed(102)
    for N, d, k in [(1, 1, 1), (5, 3, 2), (7, 4, 1), (3, 6, 5), (16, 2, 8)]:
        X, W, b = (torch.randn(*s, generator=gen) for s in ((N, d), (k, d), (k,)))
        expected = torch.sigmoid(torch.nn.functional.linear(X, W, b))  # torch's own layer: X W^T + b
        try:
            got = call_answer(fn, X.clone(), W.clone(), b.clone())
        except (Waiting, Wrong):
            raise
        except Exception as err:  # noqa: BLE001
            raise Wrong(f"my_neuron_layer(X {tuple(X.shape)}, W {tuple(W.shape)}, b {tuple(b.shape)}) raised "
                        f"{type(err).__name__}: {err}") from None
        why = differs(got, expected, rtol=1e-4, atol=1e-6)
        if why:
            raise Wrong(f"for X {tuple(X.shape)}, W {tuple(W.shape)}, b {tuple(b.shape)} (expected shape "
                        f"{tuple(expected.shape)} = sigmoid(X @ W.T + b)): {why}")
    return "(5 random layers agree with torch.sigmoid(F.linear(X, W, b)))"


def _reference_epoch(w: torch.Tensor, b: float, X: torch.Tensor, y: torch.Tensor, lr: float):
    w, mistakes = w.clone(), 0
    for x_i, y_i in zip(X.tolist(), y.tolist()):
        y_hat = 1.0 if sum(a * c for a, c in zip(w.tolist(), x_i)) + b > 0 else 0.0
        if y_hat != y_i:
            w += lr * (y_i - y_hat) * torch.tensor(x_i)
            b += lr * (y_i - y_hat)
            mistakes += 1
    return w, b, mistakes


@exercise("day01.ex3", title="one epoch of the perceptron rule", kind="code",
          section="section 3, The perceptron learning rule")
def check_perceptron_epoch(fn: Any) -> str:
    gen = torch.Generator().manual_seed(103)
    for n, d, lr in [(1, 1, 1.0), (6, 2, 1.0), (20, 3, 0.5), (40, 2, 0.1), (15, 5, 2.0)]:
        X = torch.randn(n, d, generator=gen).double()
        y = (torch.rand(n, generator=gen) > 0.5).double()
        w0 = torch.randn(d, generator=gen).double()
        b0 = float(torch.randn((), generator=gen))
        ew, eb, em = _reference_epoch(w0, b0, X, y, lr)
        try:
            out = call_answer(fn, w0.clone(), b0, X.clone(), y.clone(), lr)
        except (Waiting, Wrong):
            raise
        except Exception as err:  # noqa: BLE001
            raise Wrong(f"my_perceptron_epoch raised {type(err).__name__} on {n} points in {d} dims: {err}") from None
        if not (isinstance(out, tuple) and len(out) == 3):
            raise Wrong(f"my_perceptron_epoch must return (w, b, mistakes), got {out!r}")
        w, b, m = out
        for what, got, want in (("mistakes", m, em), ("w", w, ew), ("b", b, eb)):
            why = differs(got, want, rtol=1e-6, atol=1e-9)
            if why:
                raise Wrong(f"after one epoch over {n} random points in {d} dims with lr={lr} (starting from "
                            f"w={[round(v, 3) for v in w0.tolist()]}, b={b0:.3f}), {what}: {why}")
    return "(5 random data sets: the same weights, bias and mistakes as a reference loop)"


def _perceptron_mistakes(X: torch.Tensor, y: torch.Tensor, max_epochs: int) -> tuple[int, bool]:
    w, b, total = torch.zeros(X.shape[1], dtype=torch.float64), 0.0, 0
    for _ in range(max_epochs):
        w, b, m = _reference_epoch(w, b, X, y, 1.0)
        total += m
        if m == 0:
            return total, True
    return total, False


@exercise("day01.ex4", title="a data set that is hard to learn", kind="experiment",
          section="section 3, Why it must converge")
def check_hard_data(answer: Any) -> str:
    if is_placeholder(answer) or answer is None:
        raise Waiting
    try:
        X, y = answer
        X = torch.as_tensor(X, dtype=torch.float64)
        y = torch.as_tensor(y, dtype=torch.float64)
    except (TypeError, ValueError) as err:
        raise Wrong(f"expected (X, y): X of shape (n, 2), y of n labels 0/1; {err}") from None
    if X.dim() != 2 or X.shape[1] != 2 or y.shape != (X.shape[0],):
        raise Wrong(f"expected X of shape (n, 2) and y of shape (n,), got {tuple(X.shape)} and {tuple(y.shape)}")
    if not 2 <= len(X) <= 200:
        raise Wrong(f"use between 2 and 200 points, not {len(X)}")
    if X.abs().max() > 1:
        raise Wrong("keep every point inside the square [-1, 1] x [-1, 1]")
    if not torch.all((y == 0) | (y == 1)):
        raise Wrong("labels must be 0 or 1")
    total, converged = _perceptron_mistakes(X, y, max_epochs=2000)
    if not converged:
        raise Wrong("the perceptron rule did not converge in 2,000 epochs: is your data separable by a line?")
    if total < 50:
        raise Wrong(f"the perceptron learnt your data after only {total} mistakes; the goal is at least 50")
    return f"(the perceptron needed {total} mistakes to separate your {len(X)} points)"


_GATES = {"and": [0.0, 0.0, 0.0, 1.0], "or": [0.0, 1.0, 1.0, 1.0], "nand": [1.0, 1.0, 1.0, 0.0]}


@exercise("day01.ex5", title="logic gates", kind="value", section="section 2, The artificial neuron")
def check_gates(answer: Any) -> str:
    if not isinstance(answer, dict) or set(answer) != set(_GATES):
        raise Wrong(f"expected a dict with the keys {sorted(_GATES)}, got {answer!r}")
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    for gate, truth in _GATES.items():
        try:
            w1, w2, b = (float(v) for v in answer[gate])
        except (TypeError, ValueError):
            raise Wrong(f"{gate}: expected three numbers (w1, w2, b), got {answer[gate]!r}") from None
        out = ((X @ torch.tensor([w1, w2]) + b) > 0).float().tolist()
        if out != truth:
            raise Wrong(f"{gate} with (w1, w2, b) = {(w1, w2, b)} gives {out} on the inputs 00, 01, 10, 11; "
                        f"{gate.upper()} is {truth}")
    return "(all three gates right on the four inputs)"
