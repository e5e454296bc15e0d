"""Day 16: solutions, and wrong answers the checkers must reject."""

import math

import torch
import torch.nn.functional as F


# day16.ex1 ------------------------------------------------------------------------------
def per_char_scores(token_nlls, tokens):
    """Nats per token (N,) and the N strings those tokens spell -> (nats/char, bits/char, perplexity per char)."""
    total = token_nlls.double().sum().item()  # the text's total surprise, whatever the tokens
    nats = total / sum(len(t) for t in tokens)  # characters, not tokens (and not bytes)
    return nats, nats / math.log(2), math.exp(nats)


# day16.ex2 ------------------------------------------------------------------------------
def my_score_windows(model, ids, block_size, stride):
    """Total nats of ids[1:], each token scored once: the first window scores all its predictions, each later one
    moves on by stride (the last ends at the last token) and scores only the predictions no window scored yet."""
    last = len(ids) - 1  # the last token to predict
    windows = [(0, 1)]  # (start, first token it scores)
    scored_to = min(block_size, last)  # the first window predicts tokens 1 .. block_size
    while scored_to < last:
        end = min(scored_to + stride, last)
        windows.append((end - block_size, scored_to + 1))
        scored_to = end
    total = 0.0
    with torch.no_grad():
        for start, first in windows:
            x = ids[start : start + min(block_size, last)]  # (T,) inputs; they predict ids[start + 1 : start + T + 1]
            logits, _ = model(x[None])  # (1, T, V)
            nll = F.cross_entropy(logits[0], ids[start + 1 : start + len(x) + 1], reduction="none")  # (T,)
            total += nll[first - start - 1 :].sum().item()  # position t predicts token start + t + 1
    return total


# day16.ex3 ------------------------------------------------------------------------------
# ngram_window_score(s) - ngram_full_score() for s = 16, 17, ..., 32: exactly 0 up to s = 29, where every
# prediction after the first window still reads block_size - s + 1 = 4 characters (all the 5-gram uses);
# 0.005 at s = 30 (one prediction in 30 reads only 3), 0.021 at 31, 0.047 at 32 (non-overlapping).
CHEAPEST_STRIDE = 30
# end day16.ex3

# day16.ex4 ------------------------------------------------------------------------------
# 1.40 nats = 1.40 / ln 2 = 2.02 bits per character; a million characters: 2.02 million bits,
# 8 bits a byte, 1,000 bytes a kilobyte.
KILOBYTES = 1.40 / math.log(2) * 1_000_000 / 8 / 1000  # 252.5
# end day16.ex4

SOLUTIONS = {
    "day16.ex1": per_char_scores,
    "day16.ex2": my_score_windows,
    "day16.ex3": CHEAPEST_STRIDE,
    "day16.ex4": KILOBYTES,
}


# ---------------------------------------------------------------- wrong answers
def _per_token(token_nlls, tokens):  # per token: forgets the characters
    nats = token_nlls.double().mean().item()
    return nats, nats / math.log(2), math.exp(nats)


def _mean_of_ratios(token_nlls, tokens):  # each token's nats / its length, averaged: short tokens weigh too much
    nats = sum(x / len(t) for x, t in zip(token_nlls.tolist(), tokens)) / len(tokens)
    return nats, nats / math.log(2), math.exp(nats)


def _per_byte(token_nlls, tokens):  # counts UTF-8 bytes, not characters
    nats = token_nlls.double().sum().item() / sum(len(t.encode("utf-8")) for t in tokens)
    return nats, nats / math.log(2), math.exp(nats)


def _bits_times_ln2(token_nlls, tokens):  # converts the wrong way: nats x ln 2
    nats, _, ppl = per_char_scores(token_nlls, tokens)
    return nats, nats * math.log(2), ppl


def _perplexity_base2(token_nlls, tokens):  # 2 ** nats: mixes the units
    nats, bits, _ = per_char_scores(token_nlls, tokens)
    return nats, bits, 2**nats


def _windows_non_overlapping(model, ids, block_size, stride):  # ignores the stride
    return my_score_windows(model, ids, block_size, block_size)


def _windows_score_everything(model, ids, block_size, stride):  # every window scores all its predictions
    last, total, start = len(ids) - 1, 0.0, 0
    with torch.no_grad():
        while True:
            start = min(start, max(last - block_size, 0))
            x = ids[start : start + min(block_size, last)]
            logits, _ = model(x[None])
            total += F.cross_entropy(logits[0], ids[start + 1 : start + len(x) + 1], reduction="sum").item()
            if start + len(x) >= last:
                return total
            start += stride


def _windows_short_last(model, ids, block_size, stride):  # the last window starts on the stride grid, shorter
    last, total = len(ids) - 1, 0.0
    with torch.no_grad():
        logits, _ = model(ids[None, : min(block_size, last)])
        total += F.cross_entropy(logits[0], ids[1 : min(block_size, last) + 1], reduction="sum").item()
        scored_to = min(block_size, last)
        while scored_to < last:
            end = min(scored_to + stride, last)
            start = scored_to + stride - block_size  # where a full stride would have put it
            logits, _ = model(ids[None, start:end])
            nll = F.cross_entropy(logits[0], ids[start + 1 : end + 1], reduction="none")
            total += nll[scored_to - start :].sum().item()
            scored_to = end
    return total


def _windows_mean(model, ids, block_size, stride):  # the mean, not the total
    return my_score_windows(model, ids, block_size, stride) / (len(ids) - 1)


WRONG = {
    "day16.ex1": [_per_token, _mean_of_ratios, _per_byte, _bits_times_ln2, _perplexity_base2],
    "day16.ex2": [_windows_non_overlapping, _windows_score_everything, _windows_short_last, _windows_mean],
    "day16.ex3": [32,  # non-overlapping windows: 0.047 nats per character lost
                  16,  # the default block_size // 2: exact, but twice the windows needed
                  29,  # the largest exact stride: a larger one still stays within 0.01
                  31,  # just over
                  30.0],  # not a whole number of tokens
    "day16.ex4": [1.40 * 1_000_000 / 8 / 1000,  # nats taken for bits
                  1.40 / math.log(2) * 1_000_000 / 1000,  # forgot 8 bits a byte
                  1.40 / math.log(2) * 1_000_000 / 8 / 1024,  # kibibytes
                  "252.5"],  # a string
}
