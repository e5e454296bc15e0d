"""Day 5: solutions, and wrong answers the checkers must reject."""

import math

import torch


# day05.ex1 ------------------------------------------------------------------------------
def count_parameters(sizes):
    """Parameters of an MLP with an nn.Linear between each pair of sizes: n_in * n_out weights + n_out biases."""
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))


# day05.ex2 ------------------------------------------------------------------------------
def batches_per_epoch(n, batch_size, drop_last):
    """Full batches, plus one for the remainder unless it is dropped."""
    return n // batch_size if drop_last else math.ceil(n / batch_size)


# day05.ex3 ------------------------------------------------------------------------------
def recall_per_class(cm):
    """The diagonal (images of c called c) over the row sums (images of c): (C, C) -> (C,)."""
    return cm.diag().float() / cm.sum(dim=1).float()


# day05.ex4 ------------------------------------------------------------------------------
def top_k_accuracy(logits, targets, k):
    """The fraction of rows whose true class is among the k highest scores: (N, C), (N,) -> float."""
    top = logits.topk(k, dim=1).indices  # (N, k)
    return (top == targets[:, None]).any(dim=1).float().mean().item()


# day05.ex5 ------------------------------------------------------------------------------
FAST_SETTINGS = {"lr": 0.5, "batch_size": 32}  # 5x the notebook's lr, half its batch: 135 larger steps
# day05.ex5 end

SOLUTIONS = {
    "day05.ex1": count_parameters,
    "day05.ex2": batches_per_epoch,
    "day05.ex3": recall_per_class,
    "day05.ex4": top_k_accuracy,
    "day05.ex5": FAST_SETTINGS,
}


# ---------------------------------------------------------------- wrong answers
WRONG = {
    "day05.ex1": [lambda sizes: sum(a * b for a, b in zip(sizes, sizes[1:])),  # no biases
                  lambda sizes: sum(a * b + a for a, b in zip(sizes, sizes[1:])),  # a bias per input
                  lambda sizes: sum(a * b + b for a, b in zip(sizes[:-1], sizes[2:])),  # a layer off
                  lambda sizes: math.prod(sizes)],
    "day05.ex2": [lambda n, bs, drop_last: n // bs,  # always drops the last batch
                  lambda n, bs, drop_last: math.ceil(n / bs),  # never drops it
                  lambda n, bs, drop_last: n // bs if drop_last else n // bs + 1],  # one too many when bs divides n
    "day05.ex3": [lambda cm: cm.diag().float() / cm.sum(dim=0).float(),  # precision: the column sums
                  lambda cm: cm.diag().float() / cm.sum().float(),  # over every example
                  lambda cm: cm.diag().float(),  # counts, not fractions
                  lambda cm: (cm.float() / cm.sum(dim=1, keepdim=True)).mean(dim=1)],  # a row mean
    "day05.ex4": [lambda logits, targets, k: (logits.argmax(dim=1) == targets).float().mean().item(),  # k ignored
                  lambda logits, targets, k: top_k_accuracy(logits, targets, min(k + 1, logits.shape[1])),  # k + 1
                  lambda logits, targets, k: (logits.topk(k, dim=1, largest=False).indices
                                              == targets[:, None]).any(dim=1).float().mean().item(),  # the k lowest
                  lambda logits, targets, k: float((logits.topk(k, dim=1).indices == targets[:, None]).sum())],  # count
    "day05.ex5": [{"lr": 0.1, "batch_size": 64},  # the notebook's: about 80% after three epochs
                  {"lr": 4.0, "batch_size": 32},  # diverges
                  {"lr": 0.03, "batch_size": 32},  # crawls
                  {"lr": 0.5, "batch_size": 4},  # too small a batch for the checker
                  {"lr": 0.5}],
}
