"""Day 2: solutions, and wrong answers the checkers must reject."""

import torch


# day02.ex1 ------------------------------------------------------------------------------
def my_silu_grad(z):
    """d/dz [z sigma(z)] = sigma(z) + z sigma(z) (1 - sigma(z)), by the product rule."""
    s = torch.sigmoid(z)  # torch's sigmoid does not overflow for large |z|
    return s + z * s * (1 - s)


# day02.ex2 ------------------------------------------------------------------------------
def count_parameters(sizes):
    """Weights and biases of an MLP with layer sizes [d0, d1, ..., dL]: d_in * d_out + d_out per layer."""
    return sum(d_in * d_out + d_out for d_in, d_out in zip(sizes[:-1], sizes[1:]))


# day02.ex3 ------------------------------------------------------------------------------
def collapse(layers):
    """The single layer (W, b) equal to a stack of linear layers [(W1, b1), (W2, b2), ...]."""
    W, b = layers[0]
    for W_next, b_next in layers[1:]:
        W, b = W_next @ W, W_next @ b + b_next  # W_next (W x + b) + b_next
    return W, b


# day02.ex4 ------------------------------------------------------------------------------
NARROW_SPIRALS = {"activation": "gelu", "hidden": 6, "lr": 0.1}

SOLUTIONS = {
    "day02.ex1": my_silu_grad,
    "day02.ex2": count_parameters,
    "day02.ex3": collapse,
    "day02.ex4": NARROW_SPIRALS,
}


# ---------------------------------------------------------------- wrong answers
def _collapse_last_bias(layers):  # multiplies the weights but keeps only the last bias
    W = layers[0][0]
    for W_next, _ in layers[1:]:
        W = W_next @ W
    return W, layers[-1][1]


def _collapse_summed_biases(layers):  # adds the biases without passing them through later weights
    W, b = layers[0]
    for W_next, b_next in layers[1:]:
        W, b = W_next @ W, b + b_next
    return W, b


def _collapse_wrong_order(layers):  # W1 W2 W3 instead of W3 W2 W1 (square layers only)
    W, b = layers[0]
    for W_next, b_next in layers[1:]:
        W, b = W @ W_next, W_next @ b + b_next
    return W, b


WRONG = {
    "day02.ex1": [lambda z: torch.sigmoid(z),  # the z sigma'(z) term is missing
                  lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z)),  # sigma' alone
                  lambda z: z * torch.sigmoid(z),  # SiLU itself, not its slope
                  lambda z: torch.sigmoid(z) - z * torch.sigmoid(z) * (1 - torch.sigmoid(z))],  # a sign
    "day02.ex2": [lambda sizes: sum(a * b for a, b in zip(sizes[:-1], sizes[1:])),  # no biases
                  lambda sizes: sum(a * b + a for a, b in zip(sizes[:-1], sizes[1:])),  # biases of the input side
                  lambda sizes: sum(a * b + b for a, b in zip(sizes[:-2], sizes[1:-1])),  # the last layer forgotten
                  lambda sizes: sum(sizes)],  # neurons, not parameters
    "day02.ex3": [_collapse_last_bias, _collapse_summed_biases, _collapse_wrong_order,
                  lambda layers: layers[0]],  # the first layer alone
    "day02.ex4": [{"activation": "identity", "hidden": 6, "lr": 0.1},  # no non-linearity: a straight line
                  {"activation": "tanh", "hidden": 3, "lr": 0.1},  # too narrow
                  {"activation": "sigmoid", "hidden": 6, "lr": 0.1},  # saturates, learns too slowly
                  {"activation": "gelu", "hidden": 6, "lr": 0.001}],  # too small a step for 150 steps
}
