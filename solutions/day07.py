"""Day 7: solutions, and wrong answers the checkers must reject."""

import math

import torch
from torch import nn


# day07.ex1 ------------------------------------------------------------------------------
def my_kaiming_uniform_(weight, generator=None):
    """Kaiming (fan-in, ReLU) as a uniform U(-a, a): variance a^2 / 3 = 2 / fan_in, so a = sqrt(6 / fan_in)."""
    fan_in = math.prod(weight.shape[1:])  # n_in times the kernel's size for a convolution's (out, in, k, k)
    a = (6 / fan_in) ** 0.5
    with torch.no_grad():
        return weight.uniform_(-a, a, generator=generator)


# day07.ex2 ------------------------------------------------------------------------------
def my_batchnorm_eval(x, running_mean, running_var, weight, bias, eps=1e-5):
    """BatchNorm1d in evaluation mode, x (B, C) -> (B, C): the running statistics replace the batch's."""
    return weight * (x - running_mean) / torch.sqrt(running_var + eps) + bias


# day07.ex3 ------------------------------------------------------------------------------
class MyRMSNorm(nn.Module):
    """RMSNorm: y = weight * x / sqrt(mean(x^2) + eps) over the last axis; no mean subtracted, no bias."""

    def __init__(self, normalized_shape, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(normalized_shape))  # gamma (C,)

    def forward(self, x):  # x: (..., C)
        rms = torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return self.weight * x / rms  # (..., C)


# day07.ex4 ------------------------------------------------------------------------------
def steady_init(weight):
    """Kaiming normal: N(0, 2 / n_in) makes up for ReLU halving the signal's second moment."""
    return nn.init.normal_(weight, 0.0, (2 / weight.shape[1]) ** 0.5)


# day07.ex5 ------------------------------------------------------------------------------
RELU_SECOND_MOMENT = 4 / 2  # by symmetry, half of E[z^2] = Var(z) = 4
# end day07.ex5

SOLUTIONS = {
    "day07.ex1": my_kaiming_uniform_,
    "day07.ex2": my_batchnorm_eval,
    "day07.ex3": MyRMSNorm,
    "day07.ex4": steady_init,
    "day07.ex5": RELU_SECOND_MOMENT,
}


# ---------------------------------------------------------------- wrong answers
def _kaiming_fan_out(weight, generator=None):  # the fan-out: right only for square layers
    a = (6 / weight.shape[0]) ** 0.5
    with torch.no_grad():
        return weight.uniform_(-a, a, generator=generator)


def _kaiming_no_gain(weight, generator=None):  # forgets ReLU's factor 2: variance 1 / fan_in
    a = (3 / math.prod(weight.shape[1:])) ** 0.5
    with torch.no_grad():
        return weight.uniform_(-a, a, generator=generator)


def _kaiming_no_kernel(weight, generator=None):  # fan_in = shape[1], ignoring a convolution's kernel
    a = (6 / weight.shape[1]) ** 0.5
    with torch.no_grad():
        return weight.uniform_(-a, a, generator=generator)


def _kaiming_bound_is_std(weight, generator=None):  # U(-std, std): the bound taken for the std
    a = (2 / math.prod(weight.shape[1:])) ** 0.5
    with torch.no_grad():
        return weight.uniform_(-a, a, generator=generator)


class _RMSNormMinusMean(MyRMSNorm):  # LayerNorm without the bias: subtracts the mean
    def forward(self, x):
        x = x - x.mean(dim=-1, keepdim=True)
        return self.weight * x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)


class _RMSNormEpsOutside(MyRMSNorm):  # eps added after the square root
    def forward(self, x):
        return self.weight * x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + self.eps)


class _RMSNormNoWeight(MyRMSNorm):  # forgets gamma
    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)


class _RMSNormFirstAxis(MyRMSNorm):  # normalises over the batch axis instead of the features
    def forward(self, x):
        return self.weight * x / torch.sqrt(x.pow(2).mean(dim=0, keepdim=True) + self.eps)


WRONG = {
    "day07.ex1": [_kaiming_fan_out, _kaiming_no_gain, _kaiming_no_kernel, _kaiming_bound_is_std,
                  lambda weight, generator=None: nn.init.kaiming_normal_(weight, generator=generator)],  # normal
    "day07.ex2": [lambda x, m, v, w, b, eps=1e-5: w * (x - x.mean(0)) / torch.sqrt(x.var(0, correction=0) + eps) + b,
                  lambda x, m, v, w, b, eps=1e-5: w * (x - m) / (torch.sqrt(v) + eps) + b,  # eps outside the root
                  lambda x, m, v, w, b, eps=1e-5: (x - m) / torch.sqrt(v + eps),  # no gamma, no beta
                  lambda x, m, v, w, b, eps=1e-5: w * (x - m) / (v + eps) + b],  # the variance taken for the std
    "day07.ex3": [_RMSNormMinusMean, _RMSNormEpsOutside, _RMSNormNoWeight, _RMSNormFirstAxis],
    "day07.ex4": [nn.init.xavier_uniform_,  # suits tanh: ReLU still halves the variance per layer
                  lambda w: w,  # keeps torch's default, which shrinks a deep ReLU stack
                  lambda w: nn.init.normal_(w, 0.0, 1.0),  # too large: explodes
                  lambda w: nn.init.normal_(w, 0.0, (1 / w.shape[1]) ** 0.5)],  # LeCun: 1 / n_in, no factor 2
    "day07.ex5": [4.0,  # E[z^2], forgetting the half ReLU removes
                  1.0,  # Var(z) / 4: the std squared halved twice
                  2 ** 0.5],  # the std of z, not its second moment
}
