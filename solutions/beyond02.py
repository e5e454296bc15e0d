"""Part 3, Muon: solutions, and wrong answers the checkers must reject."""

import math

import torch


# beyond02.ex1 ---------------------------------------------------------------------------
def cubic_newton_schulz(g, steps):
    """X_0 = G / ||G||_F (every singular value at most 1), then X <- 1.5 X - 0.5 X X^T X, steps times."""
    x = g / g.norm()  # a new tensor: G itself is left alone
    for _ in range(steps):
        x = 1.5 * x - 0.5 * (x @ x.T) @ x  # each singular value s becomes 1.5 s - 0.5 s^3
    return x


# beyond02.ex2 ---------------------------------------------------------------------------
def muon_names(model):
    """The blocks' weight matrices: the 2-D parameters under model.layers."""
    return {name for name, p in model.named_parameters() if name.startswith("layers.") and p.dim() == 2}


# beyond02.ex3 ---------------------------------------------------------------------------
# The squared entries of U V^T add up to the sum of its squared singular values: 128 ones.
# Spread over 128 x 512 entries, the mean square is 1 / 512, and the RMS its root.
RMS_128_BY_512 = math.sqrt(128 / (128 * 512))
# end beyond02.ex3

# beyond02.ex4 ---------------------------------------------------------------------------
# tiny_muon(defaults) = 3.097: at muon_lr 0.0005 the block barely moves in 150 steps. Measured with momentum 0.95:
# muon_lr 0.0001: 3.110, 0.005: 2.636, 0.01: 2.498, 0.02: 2.444, 0.05: 2.494, 1.0: 3.089 (too far each step);
# muon_lr 0.02 without momentum: 2.468. The target, 2.46, needs about the right rate and the momentum.
TINY_MUON_SETTINGS = {"muon_lr": 0.02, "momentum": 0.95}
# end beyond02.ex4

SOLUTIONS = {
    "beyond02.ex1": cubic_newton_schulz,
    "beyond02.ex2": muon_names,
    "beyond02.ex3": RMS_128_BY_512,
    "beyond02.ex4": TINY_MUON_SETTINGS,
}


# ---------------------------------------------------------------- wrong answers
def _cubic_unnormalised(g, steps):  # no X_0 = G / ||G||_F: singular values above sqrt(3) blow up
    x = g.clone()
    for _ in range(steps):
        x = 1.5 * x - 0.5 * (x @ x.T) @ x
    return x


def _cubic_by_max_entry(g, steps):  # divided by the largest entry: the singular values can still exceed 1
    x = g / g.abs().max()
    for _ in range(steps):
        x = 1.5 * x - 0.5 * (x @ x.T) @ x
    return x


def _cubic_one_step_short(g, steps):  # range(steps - 1): off by one
    x = g / g.norm()
    for _ in range(steps - 1):
        x = 1.5 * x - 0.5 * (x @ x.T) @ x
    return x


def _cubic_wrong_sign(g, steps):  # + 0.5 X X^T X: pushes the singular values away from 1
    x = g / g.norm()
    for _ in range(steps):
        x = 1.5 * x + 0.5 * (x @ x.T) @ x
    return x


def _names_all_matrices(model):  # every 2-D parameter: the embedding (and tied head) too
    return {name for name, p in model.named_parameters() if p.dim() == 2}


def _names_all_in_blocks(model):  # everything in the blocks: the norm gains and biases too
    return {name for name, _ in model.named_parameters() if name.startswith("layers.")}


def _names_attention_only(model):  # the attention's projections, not the MLP's
    return {name for name, p in model.named_parameters() if name.startswith("layers.") and p.dim() == 2
            and "attn" in name}


WRONG = {
    "beyond02.ex1": [_cubic_unnormalised, _cubic_by_max_entry, _cubic_one_step_short, _cubic_wrong_sign],
    "beyond02.ex2": [_names_all_matrices, _names_all_in_blocks, _names_attention_only],
    "beyond02.ex3": [math.sqrt(128), 1 / 128, 1.0, math.sqrt(1 / 128)],
    "beyond02.ex4": [{}, {"muon_lr": 1.0, "momentum": 0.95}, {"muon_lr": 0.0001, "momentum": 0.95}],
}
