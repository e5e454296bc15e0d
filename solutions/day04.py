"""Day 4: solutions, and wrong answers the checkers must reject."""

import torch
import torch.nn.functional as F


# day04.ex1 ------------------------------------------------------------------------------
def my_bce_with_logits(z, y):
    """Mean of max(z, 0) - y z + log(1 + e^{-|z|}): e is only ever raised to a power <= 0."""
    return (torch.clamp(z, min=0) - y * z + torch.log1p(torch.exp(-z.abs()))).mean()


# day04.ex2 ------------------------------------------------------------------------------
def my_smoothed_cross_entropy(logits, targets, alpha):
    """Cross-entropy against q = (1 - alpha) onehot + alpha / C, from a stable log-softmax."""
    C = logits.shape[-1]
    q = (1 - alpha) * F.one_hot(targets, C).to(logits.dtype) + alpha / C  # (N, C) soft targets
    shifted = logits - logits.max(dim=-1, keepdim=True).values  # (N, C) the largest is 0
    logp = shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))  # (N, C) log-softmax
    return -(q * logp).sum(dim=-1).mean()


# day04.ex3 ------------------------------------------------------------------------------
def my_divergence_threshold(x):
    """2 / the largest eigenvalue of H = (2/N) A^T A, the line fit's Hessian in (w, b)."""
    A = torch.stack([x, torch.ones_like(x)], dim=1)  # (N, 2) design matrix
    H = 2 / len(x) * A.T @ A  # (2, 2)
    return 2 / torch.linalg.eigvalsh(H).max().item()


# day04.ex4 ------------------------------------------------------------------------------
FAST_LR = 0.53  # about 2 / (λ_min + λ_max): both directions shrink equally fast
# day04.ex4 end

SOLUTIONS = {
    "day04.ex1": my_bce_with_logits,
    "day04.ex2": my_smoothed_cross_entropy,
    "day04.ex3": my_divergence_threshold,
    "day04.ex4": FAST_LR,
}


# ---------------------------------------------------------------- wrong answers
def _bce_naive(z, y):  # the textbook formula: sigmoid then log, -inf/nan at |z| = 1000
    p = torch.sigmoid(z)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def _bce_overflows(z, y):  # simplified but not stabilised: e^1000 overflows
    return (torch.log(1 + torch.exp(z)) - y * z).mean()


def _smoothing_over_the_others(logits, targets, alpha):  # spreads alpha over the C - 1 wrong classes only
    C = logits.shape[-1]
    onehot = F.one_hot(targets, C).to(logits.dtype)
    q = (1 - alpha) * onehot + alpha / (C - 1) * (1 - onehot)
    return -(q * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def _smoothing_without_one_minus_alpha(logits, targets, alpha):  # the true class keeps weight 1
    C = logits.shape[-1]
    q = F.one_hot(targets, C).to(logits.dtype) + alpha / C
    return -(q * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def _threshold_no_bias(x):  # forgets the bias: only d²L/dw² = 2 mean(x²)
    return 2 / (2 * (x**2).mean()).item()


def _threshold_no_two_over_n(x):  # the Hessian of the sum of squares, not of the mean
    A = torch.stack([x, torch.ones_like(x)], dim=1)
    return 2 / torch.linalg.eigvalsh(A.T @ A).max().item()


def _threshold_smallest_eigenvalue(x):  # the wrong end of the spectrum
    A = torch.stack([x, torch.ones_like(x)], dim=1)
    return 2 / torch.linalg.eigvalsh(2 / len(x) * A.T @ A).min().item()


WRONG = {
    "day04.ex1": [_bce_naive, _bce_overflows,
                  lambda z, y: (torch.clamp(z, min=0) - y * z).mean(),  # the log1p term missing
                  lambda z, y: (torch.clamp(z, min=0) - y * z + torch.log1p(torch.exp(-z.abs()))).sum(),  # a sum
                  lambda z, y: (torch.clamp(z, min=0) + y * z + torch.log1p(torch.exp(-z.abs()))).mean()],  # sign
    "day04.ex2": [_smoothing_over_the_others, _smoothing_without_one_minus_alpha,
                  lambda logits, targets, alpha: F.cross_entropy(logits, targets),  # alpha ignored
                  lambda logits, targets, alpha: F.cross_entropy(logits, targets, label_smoothing=alpha,
                                                                 reduction="sum")],  # a sum over the batch
    "day04.ex3": [_threshold_no_bias, _threshold_no_two_over_n, _threshold_smallest_eigenvalue,
                  lambda x: my_divergence_threshold(x) / 2],  # 1 / λ_max
    "day04.ex4": [0.3,  # the notebook's: converges, but too slowly
                  0.9,  # diverges
                  0.675,  # just at the threshold: the steep direction never settles
                  0.1],
}
