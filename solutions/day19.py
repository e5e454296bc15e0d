"""Day 19: solutions, and wrong answers the checkers must reject."""

import math

import torch

from course_lib.mlp_lm import MLPLMConfig


# day19.ex1 ------------------------------------------------------------------------------
def mlp_lm_num_params(vocab_size, context_size, n_embd, hidden_size, direct=False):
    """Parameters of MLPLM: the embedding table with its padding row, the tanh layer, the output layer."""
    V, n, d, H = vocab_size, context_size, n_embd, hidden_size
    embeddings = (V + 1) * d  # one row per token, plus the padding token
    hidden = n * d * H + H  # W_h reads the n concatenated embeddings; b_h
    output = H * V + V  # W_o and b_o
    direct_connections = n * d * V if direct else 0  # W_d, no bias
    return embeddings + hidden + output + direct_connections


# day19.ex2 ------------------------------------------------------------------------------
def bag_mean(table, flat_ids, offsets):
    """The mean embedding of each bag: bag i is flat_ids[offsets[i]:offsets[i + 1]]; an empty bag gives zeros."""
    ends = torch.cat([offsets[1:], torch.tensor([len(flat_ids)])])  # (B,) where each bag stops
    out = table.new_zeros(len(offsets), table.shape[1])  # (B, d)
    for i, (start, end) in enumerate(zip(offsets.tolist(), ends.tolist())):
        if end > start:
            out[i] = table[flat_ids[start:end]].mean(dim=0)  # (d,) a repeated id counts as often as it appears
    return out


# day19.ex3 ------------------------------------------------------------------------------
def mixture_nats(lp_a, lp_b, lam):
    """Mean -log(lam p_a + (1 - lam) p_b) per token, from natural-log probabilities (N,), in logs throughout."""
    with torch.no_grad():
        logs = torch.stack([lp_a + math.log(lam) if lam > 0 else torch.full_like(lp_a, -math.inf),
                            lp_b + math.log(1 - lam) if lam < 1 else torch.full_like(lp_b, -math.inf)])  # (2, N)
        return -torch.logsumexp(logs, dim=0).mean().item()  # log(e^a + e^b) without leaving the logs


# day19.ex4 ------------------------------------------------------------------------------
# A grid over context_size 1-6 and 8, n_embd 4-64 and hidden_size 8-128, keeping the 277 shapes
# within 10,000 parameters (mlp_lm_num_params), each measured with tiny_mlp_loss (about 90 s in all):
# the best three are (4, 16, 64) 2.288 nats/char, (3, 32, 48) 2.296, (4, 32, 32) 2.312; the day's
# proportions squeezed into the budget (context 6, n_embd 64, hidden 12) reach only 2.580.
BUDGET_CONFIG = MLPLMConfig(vocab_size=65, context_size=4, n_embd=16, hidden_size=64)  # 9,441 parameters
# end day19.ex4

SOLUTIONS = {
    "day19.ex1": mlp_lm_num_params,
    "day19.ex2": bag_mean,
    "day19.ex3": mixture_nats,
    "day19.ex4": BUDGET_CONFIG,
}


# ---------------------------------------------------------------- wrong answers
def _params_no_padding(vocab_size, context_size, n_embd, hidden_size, direct=False):  # forgets the padding row
    return mlp_lm_num_params(vocab_size, context_size, n_embd, hidden_size, direct) - n_embd


def _params_one_position(vocab_size, context_size, n_embd, hidden_size, direct=False):  # W_h as if it read one embedding
    return mlp_lm_num_params(vocab_size, 1, n_embd, hidden_size, direct)


def _params_no_biases(vocab_size, context_size, n_embd, hidden_size, direct=False):  # leaves out b_h and b_o
    return mlp_lm_num_params(vocab_size, context_size, n_embd, hidden_size, direct) - hidden_size - vocab_size


def _params_ignores_direct(vocab_size, context_size, n_embd, hidden_size, direct=False):  # never counts W_d
    return mlp_lm_num_params(vocab_size, context_size, n_embd, hidden_size, False)


def _bag_sum(table, flat_ids, offsets):  # adds the rows up instead of averaging them
    ends = torch.cat([offsets[1:], torch.tensor([len(flat_ids)])])
    return torch.stack([table[flat_ids[s:e]].sum(0) for s, e in zip(offsets.tolist(), ends.tolist())])


def _bag_empty_nan(table, flat_ids, offsets):  # an empty bag divides 0 by 0
    ends = torch.cat([offsets[1:], torch.tensor([len(flat_ids)])])
    return torch.stack([table[flat_ids[s:e]].sum(0) / (e - s) if e > s else table[0] * math.nan
                        for s, e in zip(offsets.tolist(), ends.tolist())])


def _bag_unique_ids(table, flat_ids, offsets):  # counts a repeated id once
    ends = torch.cat([offsets[1:], torch.tensor([len(flat_ids)])])
    return torch.stack([table[flat_ids[s:e].unique()].mean(0) if e > s else table.new_zeros(table.shape[1])
                        for s, e in zip(offsets.tolist(), ends.tolist())])


def _bag_last_dropped(table, flat_ids, offsets):  # stops each bag at the next offset, and forgets the last bag
    return torch.stack([table[flat_ids[s:e]].mean(0) if e > s else table.new_zeros(table.shape[1])
                        for s, e in zip(offsets[:-1].tolist(), offsets[1:].tolist())]) if len(offsets) > 1 \
        else table.new_zeros(0, table.shape[1])


def _mix_log_probs(lp_a, lp_b, lam):  # mixes the log-probabilities, not the probabilities
    return -(lam * lp_a + (1 - lam) * lp_b).mean().item()


def _mix_naive(lp_a, lp_b, lam):  # leaves the logs: exp(-800) is 0, and log 0 is -inf
    return -torch.log(lam * lp_a.float().exp() + (1 - lam) * lp_b.float().exp()).mean().item()


def _mix_swapped(lp_a, lp_b, lam):  # lambda on the wrong model
    return mixture_nats(lp_b, lp_a, lam)


def _mix_total(lp_a, lp_b, lam):  # the sum over tokens, not the mean
    return mixture_nats(lp_a, lp_b, lam) * len(lp_a)


WRONG = {
    "day19.ex1": [_params_no_padding, _params_one_position, _params_no_biases, _params_ignores_direct],
    "day19.ex2": [_bag_sum, _bag_empty_nan, _bag_unique_ids, _bag_last_dropped,
                  lambda table, flat_ids, offsets: table[flat_ids].mean(0, keepdim=True).expand(len(offsets), -1)],
    "day19.ex3": [_mix_log_probs, _mix_naive, _mix_swapped, _mix_total],
    "day19.ex4": [MLPLMConfig(vocab_size=65),  # the library's defaults: far over the budget
                  MLPLMConfig(vocab_size=65, context_size=6, n_embd=64, hidden_size=12),  # within it, but 2.58
                  MLPLMConfig(vocab_size=65, context_size=6, n_embd=16, hidden_size=40),  # within it, 2.36
                  MLPLMConfig(vocab_size=65, context_size=2, n_embd=16, hidden_size=128),  # 13,665: over it
                  MLPLMConfig(vocab_size=66, context_size=4, n_embd=16, hidden_size=64),  # the padding counted as a character
                  {"context_size": 4, "n_embd": 16, "hidden_size": 64}],  # a dict, not a config
}
