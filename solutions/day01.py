"""Day 1: solutions, and wrong answers the checkers must reject."""

import torch


# day01.ex1 ------------------------------------------------------------------------------
def my_broadcast_shape(p, q):
    """The shape of P + Q for shapes p and q (tuples); ValueError if they do not broadcast."""
    n = max(len(p), len(q))
    p, q = (1,) * (n - len(p)) + tuple(p), (1,) * (n - len(q)) + tuple(q)  # aligned on the right
    out = []
    for a, b in zip(p, q):
        if a != b and 1 not in (a, b):
            raise ValueError(f"sizes {a} and {b} cannot be broadcast")
        out.append(b if a == 1 else a)  # a size-1 axis is repeated (even to 0)
    return tuple(out)


# day01.ex2 ------------------------------------------------------------------------------
def my_neuron_layer(X, W, b):
    """k sigmoid neurons at once: X (N, d), W (k, d) one row per neuron, b (k,) -> (N, k)."""
    return 1 / (1 + torch.exp(-(X @ W.T + b)))


# day01.ex3 ------------------------------------------------------------------------------
def my_perceptron_epoch(w, b, X, y, lr):
    """One pass of the perceptron rule over (X, y) in order; returns (w, b, mistakes)."""
    w, mistakes = w.clone(), 0
    for x_i, y_i in zip(X, y):
        y_hat = float(x_i @ w + b > 0)
        if y_hat != y_i:
            w = w + lr * (y_i - y_hat) * x_i
            b = b + lr * (y_i - y_hat)
            mistakes += 1
    return w, float(b), mistakes


# day01.ex4 ------------------------------------------------------------------------------
def hard_data():
    """Points on both sides of a line through the origin, all very close to it: a margin of 0.001."""
    g = torch.Generator().manual_seed(0)
    t = torch.rand(100, generator=g) * 2 - 1  # positions along the line x2 = x1
    side = torch.where(torch.arange(100) % 2 == 0, 1.0, -1.0)  # alternate sides
    X = torch.stack([t + 0.001 * side, t - 0.001 * side], dim=1)  # (100, 2), 0.0014 from the line
    y = (side > 0).float()
    return X, y


# day01.ex5 ------------------------------------------------------------------------------
GATES = {"and": (1.0, 1.0, -1.5), "or": (1.0, 1.0, -0.5), "nand": (-1.0, -1.0, 1.5)}

SOLUTIONS = {
    "day01.ex1": my_broadcast_shape,
    "day01.ex2": my_neuron_layer,
    "day01.ex3": my_perceptron_epoch,
    "day01.ex4": hard_data(),
    "day01.ex5": GATES,
}


# ---------------------------------------------------------------- wrong answers
def _left_aligned(p, q):  # lines the shapes up from the left
    p, q = tuple(p) + (1,) * (len(q) - len(p)), tuple(q) + (1,) * (len(p) - len(q))
    return tuple(max(a, b) for a, b in zip(p, q))


def _no_check(p, q):  # never raises: takes the larger size even when neither is 1
    n = max(len(p), len(q))
    p, q = (1,) * (n - len(p)) + tuple(p), (1,) * (n - len(q)) + tuple(q)
    return tuple(max(a, b) for a, b in zip(p, q))


def _zero_as_one(p, q):  # treats a 0-size axis like a 1
    n = max(len(p), len(q))
    p, q = (1,) * (n - len(p)) + tuple(p), (1,) * (n - len(q)) + tuple(q)
    out = []
    for a, b in zip(p, q):
        if a != b and 1 not in (a, b):
            raise ValueError
        out.append(max(a, b))
    return tuple(out)


def _perceptron_always_updates(w, b, X, y, lr):  # updates on every example, right or wrong
    w, mistakes = w.clone(), 0
    for x_i, y_i in zip(X, y):
        y_hat = float(x_i @ w + b > 0)
        w = w + lr * (2 * y_i - 1) * x_i
        b = b + lr * (2 * y_i - 1)
        mistakes += int(y_hat != y_i)
    return w, float(b), mistakes


def _perceptron_no_bias(w, b, X, y, lr):  # forgets to update the bias
    w, mistakes = w.clone(), 0
    for x_i, y_i in zip(X, y):
        y_hat = float(x_i @ w + b > 0)
        if y_hat != y_i:
            w = w + lr * (y_i - y_hat) * x_i
            mistakes += 1
    return w, float(b), mistakes


def _perceptron_sign_flipped(w, b, X, y, lr):  # moves away from the mistake
    w, mistakes = w.clone(), 0
    for x_i, y_i in zip(X, y):
        y_hat = float(x_i @ w + b > 0)
        if y_hat != y_i:
            w = w - lr * (y_i - y_hat) * x_i
            b = b - lr * (y_i - y_hat)
            mistakes += 1
    return w, float(b), mistakes


def _easy_data():  # well separated: a handful of mistakes
    X = torch.tensor([[-0.9, -0.9], [0.9, 0.9], [-0.8, -0.7], [0.7, 0.8]])
    return X, torch.tensor([0.0, 1.0, 0.0, 1.0])


def _xor_data():  # not separable: the rule never converges
    return torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), torch.tensor([0.0, 1.0, 1.0, 0.0])


WRONG = {
    "day01.ex1": [_left_aligned, _no_check, _zero_as_one, lambda p, q: tuple(p)],
    "day01.ex2": [lambda X, W, b: 1 / (1 + torch.exp(-(X @ W.T))),  # no bias
                  lambda X, W, b: X @ W.T + b,  # no sigmoid
                  lambda X, W, b: torch.tanh(X @ W.T + b),  # the wrong squashing function
                  lambda X, W, b: 1 / (1 + torch.exp(-(X @ W.T + b))).T],  # the wrong orientation
    "day01.ex3": [_perceptron_always_updates, _perceptron_no_bias, _perceptron_sign_flipped,
                  lambda w, b, X, y, lr: (w, b, 0)],  # the input returned unchanged
    "day01.ex4": [_easy_data(), _xor_data(), (torch.rand(300, 2) * 2 - 1, torch.zeros(300)), (hard_data()[0] * 3, hard_data()[1])],
    "day01.ex5": [{"and": GATES["or"], "or": GATES["and"], "nand": GATES["nand"]},  # and/or swapped
                  {"and": (1.0, 1.0, -1.5), "or": (1.0, 1.0, -1.5), "nand": (1.0, 1.0, -1.5)},  # a constant
                  {"and": (1.0, 1.0, -1.5), "or": (1.0, 1.0, -0.5), "nand": (1.0, 1.0, -1.5)}],  # nand = and
}
