"""Day 10: solutions, and wrong answers the checkers must reject."""

import torch
import torch.nn.functional as F


# day10.ex1 ------------------------------------------------------------------------------
def my_conv2d_dilated(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """x (N, C, H, W), weight (O, C, Kh, Kw), bias (O,) -> (N, O, H_out, W_out), kernel taps `dilation` apart."""
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    xp = F.pad(x, (padding, padding, padding, padding))  # (N, C, H + 2P, W + 2P)
    span_h, span_w = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1  # the dilated kernel's extent
    h_out = (H + 2 * padding - span_h) // stride + 1
    w_out = (W + 2 * padding - span_w) // stride + 1
    out = torch.zeros(N, O, h_out, w_out, dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            r, c = i * stride, j * stride
            patch = xp[:, :, r : r + span_h : dilation, c : c + span_w : dilation]  # (N, C, Kh, Kw)
            out[:, :, i, j] = torch.einsum("nckl,ockl->no", patch, weight)  # (N, O)
    if bias is not None:
        out = out + bias[:, None, None]
    return out


# day10.ex2 ------------------------------------------------------------------------------
def receptive_field(kernels, strides):
    """Width of the input square one output pixel sees: r = 1 + sum_l (k_l - 1) * (product of earlier strides)."""
    r, jump = 1, 1  # jump: input pixels between neighbouring positions of the current layer
    for k, s in zip(kernels, strides):
        r += (k - 1) * jump
        jump *= s
    return r


# day10.ex3 ------------------------------------------------------------------------------
# The loss is a quadratic in the 9 weights whose curvatures range over a factor of about 260
# (neighbouring pixels are alike): plain SGD crawls along the flat directions, momentum does not.
LEARN_SOBEL = {"lr": 2.0, "momentum": 0.9}
# end day10.ex3

# day10.ex4 ------------------------------------------------------------------------------
N_WEIGHTS = 16 * (3 * 5 * 5) + 16  # 16 kernels of 3 x 5 x 5, and one bias each: 1,216
# end day10.ex4

SOLUTIONS = {
    "day10.ex1": my_conv2d_dilated,
    "day10.ex2": receptive_field,
    "day10.ex3": LEARN_SOBEL,
    "day10.ex4": N_WEIGHTS,
}


# ---------------------------------------------------------------- wrong answers
def _conv_no_dilation(x, weight, bias=None, stride=1, padding=0, dilation=1):  # ignores dilation
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def _conv_dilation_plus_one(x, weight, bias=None, stride=1, padding=0, dilation=1):  # one gap too many
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation + 1)


def _conv_no_bias(x, weight, bias=None, stride=1, padding=0, dilation=1):
    return my_conv2d_dilated(x, weight, None, stride, padding, dilation)


def _conv_flipped(x, weight, bias=None, stride=1, padding=0, dilation=1):  # true convolution: flips the kernel
    return my_conv2d_dilated(x, weight.flip(-1, -2), bias, stride, padding, dilation)


def _conv_stride_ignored(x, weight, bias=None, stride=1, padding=0, dilation=1):
    return my_conv2d_dilated(x, weight, bias, 1, padding, dilation)


def _rf_ignores_strides(kernels, strides):
    return 1 + sum(k - 1 for k in kernels)


def _rf_own_stride(kernels, strides):  # multiplies by the layer's own stride as well: one layer too early
    r, jump = 1, 1
    for k, s in zip(kernels, strides):
        jump *= s
        r += (k - 1) * jump
    return r


def _rf_sum_of_kernels(kernels, strides):
    return sum(kernels)


WRONG = {
    "day10.ex1": [_conv_no_dilation, _conv_dilation_plus_one, _conv_no_bias, _conv_flipped, _conv_stride_ignored],
    "day10.ex2": [_rf_ignores_strides, _rf_own_stride, _rf_sum_of_kernels, lambda kernels, strides: kernels[-1]],
    "day10.ex3": [{"lr": 1.0, "momentum": 0.0},  # plain SGD near its best lr: too slow
                  {"lr": 3.0, "momentum": 0.9},  # past the stability limit: diverges
                  {"lr": 0.1, "momentum": 0.9},  # too small a step
                  {"lr": 1.0, "momentum": 0.5},  # too little momentum
                  {"lr": 2.0, "momentum": 0.95}],  # too much: spirals for longer than 100 steps
    "day10.ex4": [16 * 3 * 5 * 5,  # forgets the biases
                  16 * 5 * 5 + 16,  # forgets the input channels
                  (3 * 5 * 5 + 1) * 3,  # one kernel per input channel
                  16 * 3 * 5 * 5 + 3],  # a bias per input channel
}
