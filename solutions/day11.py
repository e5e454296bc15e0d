"""Day 11: solutions, and wrong answers the checkers must reject."""

import torch
from torch import nn


# day11.ex1 ------------------------------------------------------------------------------
def lenet_flat_size(side):
    """Numbers out of LeNet's features for a (1, side, side) image: the inputs fc1 would need."""
    for k, s, p in [(5, 1, 2), (2, 2, 0), (5, 1, 0), (2, 2, 0)]:  # conv1, pool, conv2, pool
        side = (side + 2 * p - k) // s + 1  # day 10's formula; the floor drops an odd last row
    return 16 * side * side  # 16 channels of side x side


# day11.ex2 ------------------------------------------------------------------------------
def conv_macs(c_in, c_out, k, side, stride=1, padding=0):
    """Multiply-adds of a Conv2d (no bias) on one (c_in, side, side) image."""
    out_side = (side + 2 * padding - k) // stride + 1
    return (c_out * out_side * out_side) * (c_in * k * k)  # outputs x the length of each dot product


# day11.ex3 ------------------------------------------------------------------------------
def per_class_recall(cm):
    """cm (C, C), rows true, columns predicted -> (C,) the fraction of each true class predicted as itself."""
    return cm.diag().float() / cm.sum(dim=1).float()


# day11.ex4 ------------------------------------------------------------------------------
def make_small_cnn():
    """LeNet's plan, thinner: 4 and 8 filters, then one linear layer. 2,922 parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (N, 4, 14, 14)
        nn.Conv2d(4, 8, 5), nn.ReLU(), nn.MaxPool2d(2),  # (N, 8, 5, 5)
        nn.Flatten(), nn.Linear(8 * 5 * 5, 10),  # (N, 10) logits
    )


SOLUTIONS = {
    "day11.ex1": lenet_flat_size,
    "day11.ex2": conv_macs,
    "day11.ex3": per_class_recall,
    "day11.ex4": make_small_cnn,
}


# ---------------------------------------------------------------- wrong answers
def _flat_no_channels(side):  # forgets the 16 channels
    return lenet_flat_size(side) // 16


def _flat_no_padding(side):  # conv1 without its padding of 2
    for k, s, p in [(5, 1, 0), (2, 2, 0), (5, 1, 0), (2, 2, 0)]:
        side = (side + 2 * p - k) // s + 1
    return 16 * side * side


def _flat_rounds(side):  # pools by true division and rounding: wrong for odd sides
    side = round(side / 2)
    side = round((side - 4) / 2)
    return 16 * side * side


def _flat_scaled(side):  # scales 400 by the area: right only at 28
    return round(400 * side * side / 28**2)


def _macs_input_side(c_in, c_out, k, side, stride=1, padding=0):  # as if the output were as large as the input
    return c_out * side * side * c_in * k * k


def _macs_no_c_in(c_in, c_out, k, side, stride=1, padding=0):  # a dot product of k*k only
    return conv_macs(1, c_out, k, side, stride, padding)


def _macs_ignores_stride(c_in, c_out, k, side, stride=1, padding=0):
    return conv_macs(c_in, c_out, k, side, 1, padding)


def _macs_weights(c_in, c_out, k, side, stride=1, padding=0):  # counts the weights, not their uses
    return c_out * c_in * k * k


def _precision(cm):  # divides by the column sums: precision, not recall
    return cm.diag().float() / cm.sum(dim=0).float()


def _over_total(cm):  # divides by all predictions
    return cm.diag().float() / cm.sum().float()


def _integer_division(cm):  # integer division: 0 for every class short of perfect
    return cm.diag() // cm.sum(dim=1)


def _mlp_tiny():  # an MLP within budget has only 3 hidden units
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 3), nn.ReLU(), nn.Linear(3, 10))


def _linear_bottleneck():  # no nonlinearity at all
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 3), nn.Linear(3, 10))


def _strided_cnn():  # within budget, but one coarse strided layer throws most of the image away
    return nn.Sequential(nn.Conv2d(1, 2, 5, stride=4), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 10))


def _full_lenet():  # good, but 61,706 parameters
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


WRONG = {
    "day11.ex1": [_flat_no_channels, _flat_no_padding, _flat_rounds, _flat_scaled],
    "day11.ex2": [_macs_input_side, _macs_no_c_in, _macs_ignores_stride, _macs_weights],
    "day11.ex3": [_precision, _over_total, _integer_division, lambda cm: cm.diag()],
    "day11.ex4": [_mlp_tiny, _linear_bottleneck, _strided_cnn, _full_lenet],
}
