"""Day 18: solutions, and wrong answers the checkers must reject."""

import torch
import torch.nn.functional as F


# day18.ex1 ------------------------------------------------------------------------------
def sgns_grads(v_c, u_o, u_neg):
    """Gradients of -log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c) for one pair: v_c (D,), u_o (D,), u_neg (K, D)."""
    g_pos = torch.sigmoid(u_o @ v_c) - 1  # () d loss / d(u_o·v_c): -(1 - σ), pushes the real pair's score up
    g_neg = torch.sigmoid(u_neg @ v_c)  # (K,) d loss / d(u_k·v_c): +σ, pushes each noise score down
    grad_v_c = g_pos * u_o + g_neg @ u_neg  # (D,) the center word hears from its context and every noise word
    grad_u_o = g_pos * v_c  # (D,)
    grad_u_neg = g_neg[:, None] * v_c  # (K, D) one row per noise word drawn
    return grad_v_c, grad_u_o, grad_u_neg


# day18.ex2 ------------------------------------------------------------------------------
# Measure, one more epoch at a time, until every partner is found. Here synonyms_found(e) for
# e = 1, 2, ..., 10 gave 0.0, 0.06, 0.38, 0.75, 0.88, 0.94, then 1.0 from 7 on: 7 epochs.
from course_lib.exercise_checks.day18 import synonyms_found

SYNONYM_EPOCHS = next(e for e in range(1, 51) if synonyms_found(e) == 1.0)
# end day18.ex2


# day18.ex3 ------------------------------------------------------------------------------
def my_analogy(vectors, itos, a, b, c):
    """3CosAdd: the word d (not a, b or c) whose vector has the highest cosine with b̂ - â + ĉ."""
    unit = F.normalize(vectors, dim=1)  # (V, D) rows of length 1
    ia, ib, ic = (itos.index(w) for w in (a, b, c))
    scores = unit @ F.normalize(unit[ib] - unit[ia] + unit[ic], dim=0)  # (V,) cosine with the target
    scores[[ia, ib, ic]] = -float("inf")  # the question's own words are never the answer
    return itos[int(scores.argmax())]


# day18.ex4 ------------------------------------------------------------------------------
def average_ranks(x):
    """Ranks 1..n (1 for the smallest); tied values share the mean of the ranks they span."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and x[order[end + 1]] == x[order[start]]:
            end += 1  # order[start..end] hold the same value
        for i in order[start : end + 1]:
            ranks[i] = (start + end) / 2 + 1  # the mean of ranks start+1 .. end+1
        start = end + 1
    return ranks


def my_spearman(x, y):
    """Spearman's rank correlation: the Pearson correlation of the tie-averaged ranks."""
    rx, ry = (torch.tensor(average_ranks(v), dtype=torch.float64) for v in (x, y))  # (n,), (n,)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / (rx.square().sum() * ry.square().sum()).sqrt())


SOLUTIONS = {
    "day18.ex1": sgns_grads,
    "day18.ex2": SYNONYM_EPOCHS,
    "day18.ex3": my_analogy,
    "day18.ex4": my_spearman,
}


# ---------------------------------------------------------------- wrong answers
def _grads_ascent(v_c, u_o, u_neg):  # the signs of the whole gradient flipped
    return tuple(-g for g in sgns_grads(v_c, u_o, u_neg))


def _grads_sigma_not_minus_one(v_c, u_o, u_neg):  # σ(u_o·v_c) for the real pair, forgetting the - 1
    g_pos, g_neg = torch.sigmoid(u_o @ v_c), torch.sigmoid(u_neg @ v_c)
    return g_pos * u_o + g_neg @ u_neg, g_pos * v_c, g_neg[:, None] * v_c


def _grads_noise_sigma_minus(v_c, u_o, u_neg):  # σ(-u_k·v_c) for the noise words instead of σ(u_k·v_c)
    g_pos, g_neg = torch.sigmoid(u_o @ v_c) - 1, torch.sigmoid(-(u_neg @ v_c))
    return g_pos * u_o + g_neg @ u_neg, g_pos * v_c, g_neg[:, None] * v_c


def _grads_center_forgets_noise(v_c, u_o, u_neg):  # the center's gradient without the noise words' term
    grad_v_c, grad_u_o, grad_u_neg = sgns_grads(v_c, u_o, u_neg)
    return (torch.sigmoid(u_o @ v_c) - 1) * u_o, grad_u_o, grad_u_neg


def _grads_summed_noise(v_c, u_o, u_neg):  # one (D,) gradient for all the noise words together
    grad_v_c, grad_u_o, grad_u_neg = sgns_grads(v_c, u_o, u_neg)
    return grad_v_c, grad_u_o, grad_u_neg.sum(0)


def _analogy_keeps_query(vectors, itos, a, b, c):  # a, b and c may be the answer
    unit = F.normalize(vectors, dim=1)
    ia, ib, ic = (itos.index(w) for w in (a, b, c))
    return itos[int((unit @ F.normalize(unit[ib] - unit[ia] + unit[ic], dim=0)).argmax())]


def _analogy_raw_vectors(vectors, itos, a, b, c):  # b - a + c and dot products on the raw vectors: long ones win
    ia, ib, ic = (itos.index(w) for w in (a, b, c))
    scores = vectors.double() @ (vectors[ib] - vectors[ia] + vectors[ic]).double()
    scores[[ia, ib, ic]] = -float("inf")
    return itos[int(scores.argmax())]


def _analogy_unnormalised_rows(vectors, itos, a, b, c):  # the target from unit vectors, dotted with raw rows
    unit = F.normalize(vectors, dim=1)
    ia, ib, ic = (itos.index(w) for w in (a, b, c))
    scores = vectors @ (unit[ib] - unit[ia] + unit[ic])
    scores[[ia, ib, ic]] = -float("inf")
    return itos[int(scores.argmax())]


def _analogy_swapped(vectors, itos, a, b, c):  # a - b + c: the relation the wrong way round
    return my_analogy(vectors, itos, b, a, c)


def _spearman_no_ties_formula(x, y):  # 1 - 6 Σ d² / (n (n² - 1)): exact only without ties
    n = len(x)
    d2 = sum((a - b) ** 2 for a, b in zip(average_ranks(x), average_ranks(y)))
    return 1 - 6 * d2 / (n * (n**2 - 1))


def _spearman_ordinal_ranks(x, y):  # argsort of argsort: tied values get different ranks
    rx, ry = (torch.tensor(v, dtype=torch.float64).argsort(stable=True).argsort().double() for v in (x, y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / (rx.square().sum() * ry.square().sum()).sqrt())


def _spearman_pearson(x, y):  # the Pearson correlation of the values, not of their ranks
    vx, vy = (torch.tensor(v, dtype=torch.float64) for v in (x, y))
    vx, vy = vx - vx.mean(), vy - vy.mean()
    return float((vx * vy).sum() / (vx.square().sum() * vy.square().sum()).sqrt())


def _spearman_min_ranks(x, y):  # tied values all get the lowest of their ranks (1, 2, 2, 4)
    rx, ry = ([1.0 + sum(u < xi for u in v) for xi in v] for v in (x, y))
    return _spearman_pearson(rx, ry)


WRONG = {
    "day18.ex1": [_grads_ascent, _grads_sigma_not_minus_one, _grads_noise_sigma_minus, _grads_center_forgets_noise,
                  _grads_summed_noise],
    "day18.ex2": [1,  # one epoch: the partners are not found yet
                  20,  # finds them, but far from the fewest
                  SYNONYM_EPOCHS - 1,  # one short
                  "7"],  # a string
    "day18.ex3": [_analogy_keeps_query, _analogy_raw_vectors, _analogy_unnormalised_rows, _analogy_swapped],
    "day18.ex4": [_spearman_no_ties_formula, _spearman_ordinal_ranks, _spearman_pearson, _spearman_min_ranks],
}
