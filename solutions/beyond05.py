"""Part 3, scaling out: solutions, and wrong answers the checkers must reject."""

import math


# beyond05.ex1 ---------------------------------------------------------------------------
def average_gradients(grads_per_worker, batch_sizes):
    """The whole batch's gradient: each worker's mean-loss gradient weighted by its share of the examples."""
    total = sum(batch_sizes)
    n_params = len(grads_per_worker[0])
    return [sum(grads[i] * (n / total) for grads, n in zip(grads_per_worker, batch_sizes)) for i in range(n_params)]


# beyond05.ex2 ---------------------------------------------------------------------------
def accumulated_grads(model, x, y, k):
    """k micro-batches of B / k windows, each loss divided by k, their gradients summed by backward."""
    model.zero_grad(set_to_none=True)  # once, before the first micro-batch
    for xb, yb in zip(x.chunk(k), y.chunk(k)):  # (B / k, T) each
        _, loss = model(xb, yb)
        (loss / k).backward()  # adds into .grad
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


# beyond05.ex3 ---------------------------------------------------------------------------
# 70e9 parameters x 16 bytes = 1,120 GB of model state, sharded over N GPUs that each have
# 80 - 20 = 60 GB to spare: N >= 1120 / 60 = 18.67, so 19 GPUs (18 would need 62.2 GB each).
GPUS_FOR_70B = math.ceil(70e9 * 16 / (80e9 - 20e9))
# end beyond05.ex3

# beyond05.ex4 ---------------------------------------------------------------------------
# big_batch_run(defaults) = 3.246: at the small batch's rate four times fewer steps are not enough.
# Measured (no warm-up): lr 2e-3: 3.059, 4e-3: 2.734, 8e-3: 2.658, 1.6e-2: 2.801, 3.2e-2: 2.957.
# The 4 x larger batch wants a rate about 4 to 8 times larger (the linear scaling rule says 4).
BIG_BATCH_SETTINGS = {"lr": 8e-3}
# end beyond05.ex4

SOLUTIONS = {
    "beyond05.ex1": average_gradients,
    "beyond05.ex2": accumulated_grads,
    "beyond05.ex3": GPUS_FOR_70B,
    "beyond05.ex4": BIG_BATCH_SETTINGS,
}


# ---------------------------------------------------------------- wrong answers
def _plain_mean(grads_per_worker, batch_sizes):  # right only when every worker has as many examples
    n = len(grads_per_worker)
    return [sum(grads[i] for grads in grads_per_worker) / n for i in range(len(grads_per_worker[0]))]


def _summed(grads_per_worker, batch_sizes):  # the sum: what all_reduce returns before dividing
    return [sum(grads[i] for grads in grads_per_worker) for i in range(len(grads_per_worker[0]))]


def _weighted_sum(grads_per_worker, batch_sizes):  # weighted by the batch sizes, never divided by their total
    return [sum(grads[i] * n for grads, n in zip(grads_per_worker, batch_sizes))
            for i in range(len(grads_per_worker[0]))]


def _in_place(grads_per_worker, batch_sizes):  # right values, but written into worker 0's tensors
    total = sum(batch_sizes)
    out = grads_per_worker[0]
    for i, g in enumerate(out):
        g.mul_(batch_sizes[0] / total)
        for grads, n in zip(grads_per_worker[1:], batch_sizes[1:]):
            g.add_(grads[i] * (n / total))
    return out


def _not_scaled(model, x, y, k):  # the k losses summed, not averaged: k times too large
    model.zero_grad(set_to_none=True)
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        model(xb, yb)[1].backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def _not_cleared(model, x, y, k):  # the old gradients are still in .grad
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        (model(xb, yb)[1] / k).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def _cleared_each_time(model, x, y, k):  # zero_grad inside the loop: only the last micro-batch is left
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        model.zero_grad(set_to_none=True)
        (model(xb, yb)[1] / k).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def _one_batch(model, x, y, k):  # the right gradient, but the whole batch in one forward: no memory saved
    model.zero_grad(set_to_none=True)
    model(x, y)[1].backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


WRONG = {
    "beyond05.ex1": [_plain_mean, _summed, _weighted_sum, _in_place],
    "beyond05.ex2": [_not_scaled, _not_cleared, _cleared_each_time, _one_batch],
    "beyond05.ex3": [14, 18, 8, 20],
    "beyond05.ex4": [{}, {"lr": 2e-3}, {"lr": 0.1}],
}
