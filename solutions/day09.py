"""Day 9: solutions, and wrong answers the checkers must reject."""

import math

import torch


# day09.ex1 ------------------------------------------------------------------------------
def my_warmup_linear_lr(t, base_lr, warmup_steps, total_steps):
    """Linear warm-up over warmup_steps, then a straight line down to 0 at total_steps (and 0 after)."""
    if t < warmup_steps:
        return base_lr * (t + 1) / warmup_steps  # day 9's warm-up: base_lr / W at t = 0
    return base_lr * max(0.0, (total_steps - t) / (total_steps - warmup_steps))


# day09.ex2 ------------------------------------------------------------------------------
def total_norm(grads, norm_type=2.0):
    """The norm of all the gradients together, as one long vector."""
    flat = torch.cat([g.detach().flatten() for g in grads])  # (total entries,)
    if norm_type == math.inf:
        return flat.abs().max().item()  # the largest entry
    return (flat.abs() ** norm_type).sum().item() ** (1 / norm_type)


# day09.ex3 ------------------------------------------------------------------------------
# Three times the usual 0.1: the cosine's long, slow end lets a large peak settle.
PEAK_LR = 0.3
# end day09.ex3

# day09.ex4 ------------------------------------------------------------------------------
INITIAL_LOSS = math.log(26)  # -ln(1/26): the uniform prediction gives every class 1/26
# end day09.ex4

SOLUTIONS = {
    "day09.ex1": my_warmup_linear_lr,
    "day09.ex2": total_norm,
    "day09.ex3": PEAK_LR,
    "day09.ex4": INITIAL_LOSS,
}


# ---------------------------------------------------------------- wrong answers
def _warmup_from_zero(t, base_lr, warmup_steps, total_steps):  # t / W: the first step has rate 0
    if t < warmup_steps:
        return base_lr * t / warmup_steps
    return base_lr * max(0.0, (total_steps - t) / (total_steps - warmup_steps))


def _decay_never_stops(t, base_lr, warmup_steps, total_steps):  # goes negative after total_steps
    if t < warmup_steps:
        return base_lr * (t + 1) / warmup_steps
    return base_lr * (total_steps - t) / (total_steps - warmup_steps)


def _decay_over_all_steps(t, base_lr, warmup_steps, total_steps):  # the line counts from t = 0, not W
    if t < warmup_steps:
        return base_lr * (t + 1) / warmup_steps
    return base_lr * max(0.0, (total_steps - t) / total_steps)


def _sum_of_norms(grads, norm_type=2.0):
    return sum(torch.linalg.vector_norm(g, ord=norm_type).item() for g in grads)


def _always_two(grads, norm_type=2.0):
    return torch.cat([g.flatten() for g in grads]).norm().item()


def _no_abs(grads, norm_type=2.0):  # forgets |.|: wrong for odd norms and for inf
    flat = torch.cat([g.flatten() for g in grads])
    if norm_type == math.inf:
        return flat.max().item()
    return (flat**norm_type).sum().item() ** (1 / norm_type)


WRONG = {
    "day09.ex1": [_warmup_from_zero, _decay_never_stops, _decay_over_all_steps,
                  lambda t, base_lr, warmup_steps, total_steps: base_lr],  # a constant
    "day09.ex2": [_sum_of_norms, _always_two, _no_abs,
                  lambda grads, norm_type=2.0: grads[0].norm().item()],  # the first tensor only
    "day09.ex3": [0.03,  # too small
                  0.1,  # the usual rate: not enough in 200 steps
                  1.0,  # too large
                  3.0],  # diverges
    "day09.ex4": [math.log(10),  # ten classes
                  math.log10(26),  # the wrong logarithm
                  1 / 26,  # the probability, not the loss
                  26.0],
}
