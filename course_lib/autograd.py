"""Day 3: a scalar automatic-differentiation engine, its graph drawing and a tiny MLP.

Every :class:`Value` holds one number (``data``), the derivative of the final output
with respect to it (``grad``), the values it was computed from and, saved by the forward
pass, its local derivative with respect to each of them. ``backward()`` sorts the graph
topologically and applies the chain rule from the output back to the leaves:

>>> a, b = Value(2.0), Value(-3.0)
>>> c = a * b + a          # a is used twice: its gradients add up
>>> c.backward()
>>> a.grad, b.grad         # dc/da = b + 1, dc/db = a
(-2.0, 2.0)

Like PyTorch, gradients of leaves accumulate over ``backward()`` calls until they are
reset (``p.grad = 0.0``, or ``model.zero_grad()``); gradients of intermediate values are
recomputed on each call. ``Neuron``, ``Layer`` and ``MLP`` mirror ``torch.nn``'s
``parameters()`` and ``zero_grad()``.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Sequence
from typing import Literal

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

Number = int | float  # any real number (numpy scalars included) is accepted


class Value:
    """One scalar in a computation graph, with its gradient."""

    __slots__ = ("data", "grad", "label", "_prev", "_local", "_op")  # many small objects: keep them lean

    def __init__(self, data: Number, label: str = ""):
        if type(data) is not float and (isinstance(data, bool) or not isinstance(data, numbers.Real)):
            raise TypeError(f"Value wraps a single int or float, got {type(data).__name__}; "
                            "use float(x) to convert a one-element tensor or array first.")
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self._prev: tuple[Value, ...] = ()  # the values this one was computed from, in order
        self._local: tuple[float, ...] = ()  # d(self)/d(each of them), saved by the forward pass
        self._op = ""  # the operation that produced it ('' for a leaf)

    @classmethod
    def _node(cls, data: float, op: str, children: tuple[Value, ...], local: tuple[float, ...]) -> Value:
        """A computed value: its inputs and the local derivative with respect to each."""
        out = cls.__new__(cls)
        out.data, out.grad, out.label = data, 0.0, ""
        out._prev, out._local, out._op = children, local, op
        return out

    def __repr__(self) -> str:
        text = f"data={self.data:.4f}, grad={self.grad:.4f}"
        if self._op:
            text += f", op={self._op!r}"
        if self.label:
            text += f", label={self.label!r}"
        return f"Value({text})"

    # -- arithmetic ------------------------------------------------------------------
    @staticmethod
    def _wrap(other: Value | Number) -> Value:
        return other if isinstance(other, Value) else Value(other)  # a number becomes a leaf

    def __add__(self, other: Value | Number) -> Value:
        other = self._wrap(other)
        return Value._node(self.data + other.data, "+", (self, other), (1.0, 1.0))  # d(a+b)/da = d(a+b)/db = 1

    def __mul__(self, other: Value | Number) -> Value:
        other = self._wrap(other)
        return Value._node(self.data * other.data, "*", (self, other), (other.data, self.data))  # d(ab)/da = b

    def __pow__(self, exponent: Number) -> Value:
        if not isinstance(exponent, numbers.Real):
            raise TypeError("Value ** p needs a plain int or float p; for a Value exponent "
                            "write (p * x.log()).exp().")
        if self.data < 0 and float(exponent) != int(exponent):
            raise ValueError(f"({self.data}) ** {exponent} is not a real number: a negative base "
                             "needs a whole-number exponent.")
        local = exponent * self.data ** (exponent - 1)  # d(x^p)/dx = p x^(p-1)
        return Value._node(float(self.data**exponent), f"**{exponent:g}", (self,), (local,))

    def __neg__(self) -> Value:
        return self * -1

    def __sub__(self, other: Value | Number) -> Value:
        return self + (-other)

    def __truediv__(self, other: Value | Number) -> Value:
        return self * self._wrap(other) ** -1

    def __radd__(self, other: Number) -> Value:
        return self + other

    def __rmul__(self, other: Number) -> Value:
        return self * other

    def __rsub__(self, other: Number) -> Value:
        return self._wrap(other) - self

    def __rtruediv__(self, other: Number) -> Value:
        return self._wrap(other) / self

    # -- functions -------------------------------------------------------------------
    def exp(self) -> Value:
        e = math.exp(self.data)
        return Value._node(e, "exp", (self,), (e,))  # d e^x / dx = e^x

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log needs a positive input, got {self.data}; "
                             "add a small epsilon or check the value feeding it.")
        return Value._node(math.log(self.data), "log", (self,), (1.0 / self.data,))

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return Value._node(t, "tanh", (self,), (1.0 - t * t,))

    def relu(self) -> Value:
        return Value._node(max(self.data, 0.0), "relu", (self,), (float(self.data > 0),))  # 0 at x=0, as torch

    def sigmoid(self) -> Value:
        x = self.data
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))  # no overflow
        return Value._node(s, "sigmoid", (self,), (s * (1.0 - s),))

    # -- backpropagation -------------------------------------------------------------
    def topological_order(self) -> list[Value]:
        """Every value this one depends on (itself included), each after its inputs."""
        order: list[Value] = []
        seen: set[int] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:  # iterative depth-first search: deep graphs need no recursion limit
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node._prev) if id(child) not in seen)
        return order

    def backward(self) -> None:
        """Fill ``grad`` of every value in the graph with d(self)/d(value)."""
        order = self.topological_order()
        for node in order:
            if node._prev:  # intermediate values start from zero; leaves accumulate
                node.grad = 0.0
        self.grad += 1.0  # d(self)/d(self)
        for node in reversed(order):  # each node is done once every user has added its share
            for child, local in zip(node._prev, node._local):
                child.grad += local * node.grad  # chain rule: upstream gradient x local derivative


def draw_graph(root: Value, ax: plt.Axes | None = None) -> Figure:
    """Draw the graph that computed ``root``: a box per value (label, data and grad), a
    circle per operation, inputs on the left and ``root`` on the right.

    Each computed value sits in the column of its longest path from a leaf, each leaf
    just left of its first user. Made for small graphs (a few dozen values).
    """
    order = root.topological_order()
    depth: dict[int, int] = {}
    users: dict[int, list[Value]] = {}
    for node in order:  # inputs come first, so their depth is known
        depth[id(node)] = 1 + max((depth[id(c)] for c in node._prev), default=-1)
        for child in node._prev:
            users.setdefault(id(child), []).append(node)
    for node in order:
        if not node._prev and id(node) in users:
            depth[id(node)] = min(depth[id(u)] for u in users[id(node)]) - 1
    columns: dict[int, list[Value]] = {}
    for node in order:
        columns.setdefault(depth[id(node)], []).append(node)
    height = max(len(c) for c in columns.values())
    if ax is None:
        _, ax = plt.subplots(figsize=(2.0 * len(columns) + 0.3, 0.75 * height + 0.6))
    fig = ax.figure
    boxes: dict[int, plt.Text] = {}
    arrow = dict(arrowstyle="-|>", color="#555555", shrinkA=2, shrinkB=2)
    for col, nodes in sorted(columns.items()):
        for row, node in enumerate(nodes):
            x, y = 2.0 * col, (len(nodes) - 1) / 2 - row
            name = f"{node.label} =" if node.label else "data"
            boxes[id(node)] = ax.text(x, y, f"{name} {node.data:.4f}\ngrad {node.grad:.4f}",
                                      ha="center", va="center", fontsize=8,
                                      bbox=dict(boxstyle="round,pad=0.3", fc="#eef4fb", ec="#4a78a8"))
            if not node._prev:
                continue
            op = ax.text(x - 1.0, y, node._op, ha="center", va="center", fontsize=8,  # the operation
                         bbox=dict(boxstyle="circle,pad=0.25", fc="#fff3e0", ec="#c77c02"))
            ax.annotate("", xy=(0, 0.5), xycoords=boxes[id(node)], xytext=(1, 0.5), textcoords=op,
                        arrowprops=arrow)
            for child in dict.fromkeys(node._prev):  # a value used twice gets one arrow
                skips = depth[id(node)] - depth[id(child)] > 1  # bend around the columns between
                ax.annotate("", xy=(0, 0.5), xycoords=op, xytext=(1, 0.5), textcoords=boxes[id(child)],
                            arrowprops={**arrow, "connectionstyle": f"arc3,rad={-0.3 if skips else 0}"})
    cols = sorted(columns)
    ax.set_xlim(2.0 * cols[0] - 1.0, 2.0 * cols[-1] + 1.0)
    ax.set_ylim(-(height - 1) / 2 - 0.6, (height - 1) / 2 + 0.6)
    ax.axis("off")
    return fig


# -- a tiny neural-network library on top of Value -------------------------------------
Activation = Literal["tanh", "relu", "linear"]


class Module:
    """What every model offers, as in ``torch.nn.Module``."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """``activation(w · x + b)`` with ``nin`` weights drawn uniformly from [-1/sqrt(nin), 1/sqrt(nin)]
    (the range ``torch.nn.Linear`` uses) and a bias starting at 0."""

    def __init__(self, nin: int, activation: Activation = "tanh", rng: random.Random | None = None):
        if activation not in ("tanh", "relu", "linear"):
            raise ValueError(f"activation must be 'tanh', 'relu' or 'linear', got {activation!r}")
        if nin < 1:
            raise ValueError(f"a neuron needs at least one input, got nin={nin}")
        rng = rng or random.Random(random.random())  # follows random.seed (seed_everything) when not given
        bound = 1.0 / math.sqrt(nin)
        self.w = [Value(rng.uniform(-bound, bound)) for _ in range(nin)]
        self.b = Value(0.0)
        self.activation = activation

    def __call__(self, x: Sequence[Value | Number]) -> Value:
        if len(x) != len(self.w):
            raise ValueError(f"this neuron takes {len(self.w)} inputs, got {len(x)}")
        z = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return z.tanh() if self.activation == "tanh" else z.relu() if self.activation == "relu" else z

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"Neuron(nin={len(self.w)}, activation={self.activation!r})"


class Layer(Module):
    """``nout`` neurons that all read the same ``nin`` inputs."""

    def __init__(self, nin: int, nout: int, activation: Activation = "tanh", rng: random.Random | None = None):
        self.neurons = [Neuron(nin, activation, rng) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | Number]) -> list[Value]:
        return [n(x) for n in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        n = self.neurons[0]
        return f"Layer(nin={len(n.w)}, nout={len(self.neurons)}, activation={n.activation!r})"


class MLP(Module):
    """Layers of sizes ``nin -> nouts[0] -> ... -> nouts[-1]``; the last layer is linear.

    ``MLP(2, [8, 8, 1])(x)`` returns one Value when the last size is 1, else a list.
    Parameters are ordered layer by layer, neuron by neuron, weights then bias.
    """

    def __init__(self, nin: int, nouts: Sequence[int], activation: Activation = "tanh", seed: int | None = None):
        if not nouts or min(nouts) < 1 or nin < 1:
            raise ValueError(f"sizes must be positive, got nin={nin}, nouts={list(nouts)}")
        rng = random.Random(seed) if seed is not None else random.Random(random.random())  # as Neuron
        sizes = [nin, *nouts]
        self.layers = [Layer(sizes[i], sizes[i + 1], activation if i < len(nouts) - 1 else "linear", rng)
                       for i in range(len(nouts))]

    def __call__(self, x: Sequence[Value | Number]) -> Value | list[Value]:
        out: list[Value] = list(x)  # type: ignore[arg-type]
        for layer in self.layers:
            out = layer(out)
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP({', '.join(map(repr, self.layers))})"


def weight_matrices(model: MLP) -> list[tuple[list[list[float]], list[float]]]:
    """Each layer's weights (nout, nin) and biases (nout,) as nested lists, the layout of
    ``torch.nn.Linear.weight`` and ``.bias``, so the same network can be rebuilt in torch."""
    return [([[w.data for w in n.w] for n in layer.neurons], [n.b.data for n in layer.neurons])
            for layer in model.layers]

