"""Day 17: solutions, and wrong answers the checkers must reject."""

import math
from collections import Counter


def _merge(tokens, pair):
    """Every occurrence of pair, left to right, made one token (section 1's my_merge, on byte strings)."""
    out, i = [], 0
    while i < len(tokens):
        if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


# day17.ex1 ------------------------------------------------------------------------------
def my_train_bpe_counts(chunk_counts, vocab_size):
    """BPE on {chunk bytes: count}: each distinct chunk is stored and merged once, its pairs counted count times."""
    chunks = [([bytes([b]) for b in chunk], n) for chunk, n in chunk_counts.items()]  # (tokens, count)
    vocab = {bytes([b]) for b in range(256)}
    merges = []
    while len(vocab) < vocab_size:
        counts = Counter()
        for tokens, n in chunks:
            for pair in zip(tokens, tokens[1:]):
                counts[pair] += n  # the chunk occurs n times, so does each of its pairs
        if not counts:
            break  # every chunk is a single token
        pair = max(counts, key=lambda p: (counts[p], p))  # most frequent; ties -> greatest pair
        chunks = [(_merge(tokens, pair), n) for tokens, n in chunks]
        if pair[0] + pair[1] not in vocab:
            vocab.add(pair[0] + pair[1])
            merges.append(pair)
    return merges


# day17.ex2 ------------------------------------------------------------------------------
def my_encode_chunk(data, merges):
    """One chunk's bytes -> its tokens (byte strings): merge the lowest-ranked pair present, until none has a rank."""
    rank = {pair: i for i, pair in enumerate(merges)}
    tokens = [bytes([b]) for b in data]
    while len(tokens) > 1:
        pair = min(zip(tokens, tokens[1:]), key=lambda p: rank.get(p, math.inf))
        if pair not in rank:
            break  # no adjacent pair was ever merged
        tokens = _merge(tokens, pair)
    return tokens


# day17.ex3 ------------------------------------------------------------------------------
def my_decode(ids, merges):
    """Ids -> text: ids 0..255 are the bytes, id 256 + k is merge k's two tokens joined."""
    vocab = {i: bytes([i]) for i in range(256)}
    for k, (left, right) in enumerate(merges):
        vocab[256 + k] = left + right
    data = b"".join(vocab[i] for i in ids)  # join first: a token may hold part of a character
    return data.decode("utf-8", errors="replace")


# day17.ex4 ------------------------------------------------------------------------------
# bytes_per_token(V) never falls as V grows (one more merge can only join tokens), so a
# bisection over 256..2048 finds the smallest V with 2.0 or more: 1.9994 at 717, 2.0001 at 718.
HALVING_VOCAB = 718
# end day17.ex4

# day17.ex5 ------------------------------------------------------------------------------
# ln 60 nats per token / 2.5 characters per token = nats per character; perplexity = exp of that.
PPL_PER_CHAR = math.exp(math.log(60) / 2.5)  # = 60 ** (1 / 2.5), about 5.14
# end day17.ex5

SOLUTIONS = {
    "day17.ex1": my_train_bpe_counts,
    "day17.ex2": my_encode_chunk,
    "day17.ex3": my_decode,
    "day17.ex4": HALVING_VOCAB,
    "day17.ex5": PPL_PER_CHAR,
}


# ---------------------------------------------------------------- wrong answers
def _train_ignores_counts(chunk_counts, vocab_size):  # each distinct chunk counted once
    return my_train_bpe_counts({c: 1 for c in chunk_counts}, vocab_size)


def _train_ties_smallest(chunk_counts, vocab_size):  # ties go to the smallest pair
    chunks = [([bytes([b]) for b in chunk], n) for chunk, n in chunk_counts.items()]
    merges = []
    while len(merges) < vocab_size - 256:
        counts = Counter()
        for tokens, n in chunks:
            for pair in zip(tokens, tokens[1:]):
                counts[pair] += n
        if not counts:
            break
        top = max(counts.values())
        pair = min(p for p in counts if counts[p] == top)
        chunks = [(_merge(tokens, pair), n) for tokens, n in chunks]
        merges.append(pair)
    return merges


def _train_across_chunks(chunk_counts, vocab_size):  # the chunks glued into one text: pairs span chunk ends
    return my_train_bpe_counts({b"".join(c * n for c, n in chunk_counts.items()): 1}, vocab_size)


def _train_one_extra(chunk_counts, vocab_size):  # vocab_size - 255 merges: off by one
    return my_train_bpe_counts(chunk_counts, vocab_size + 1)


def _encode_highest_rank_first(data, merges):  # the latest merge first
    rank = {pair: i for i, pair in enumerate(merges)}
    tokens = [bytes([b]) for b in data]
    while len(tokens) > 1:
        ranked = [p for p in zip(tokens, tokens[1:]) if p in rank]
        if not ranked:
            break
        tokens = _merge(tokens, max(ranked, key=rank.get))
    return tokens


def _encode_longest_match(data, merges):  # greedy longest token from the left, as WordPiece does
    vocab = {bytes([b]) for b in range(256)} | {a + b for a, b in merges}
    tokens, i = [], 0
    while i < len(data):
        j = max(j for j in range(i + 1, len(data) + 1) if data[i:j] in vocab)
        tokens.append(data[i:j])
        i = j
    return tokens


def _merge_from_right(tokens, pair):  # the pairs taken from the right: aaa -> a, aa
    out, i = [], len(tokens) - 1
    while i >= 0:
        if i >= 1 and (tokens[i - 1], tokens[i]) == pair:
            out.append(pair[0] + pair[1])
            i -= 2
        else:
            out.append(tokens[i])
            i -= 1
    return out[::-1]


def _encode_right_to_left(data, merges):  # merges by rank, but each pair scanning from the right
    rank = {pair: i for i, pair in enumerate(merges)}
    tokens = [bytes([b]) for b in data]
    while len(tokens) > 1:
        pair = min(zip(tokens, tokens[1:]), key=lambda p: rank.get(p, math.inf))
        if pair not in rank:
            break
        tokens = _merge_from_right(tokens, pair)
    return tokens


def _encode_most_frequent(data, merges):  # merges the pair most frequent in the chunk, as training would
    rank = {pair: i for i, pair in enumerate(merges)}
    tokens = [bytes([b]) for b in data]
    while len(tokens) > 1:
        counts = Counter(p for p in zip(tokens, tokens[1:]) if p in rank)
        if not counts:
            break
        tokens = _merge(tokens, max(counts, key=lambda p: (counts[p], -rank[p])))
    return tokens


def _decode_each_token(ids, merges):  # decodes token by token: a split character becomes U+FFFD twice
    vocab = {i: bytes([i]) for i in range(256)} | {256 + k: a + b for k, (a, b) in enumerate(merges)}
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def _decode_off_by_one(ids, merges):  # merge k given id 255 + k
    vocab = {i: bytes([i]) for i in range(256)} | {255 + k: a + b for k, (a, b) in enumerate(merges)}
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def _decode_latin1(ids, merges):  # one character per byte
    vocab = {i: bytes([i]) for i in range(256)} | {256 + k: a + b for k, (a, b) in enumerate(merges)}
    return b"".join(vocab[i] for i in ids).decode("latin-1")


def _decode_bytes(ids, merges):  # returns the bytes, not the text
    vocab = {i: bytes([i]) for i in range(256)} | {256 + k: a + b for k, (a, b) in enumerate(merges)}
    return b"".join(vocab[i] for i in ids)


WRONG = {
    "day17.ex1": [_train_ignores_counts, _train_ties_smallest, _train_across_chunks, _train_one_extra],
    "day17.ex2": [_encode_highest_rank_first, _encode_longest_match, _encode_right_to_left, _encode_most_frequent,
                  lambda data, merges: [bytes([b]) for b in data]],
    "day17.ex3": [_decode_each_token, _decode_off_by_one, _decode_latin1, _decode_bytes],
    "day17.ex4": [256,  # bytes only: 1 byte per token
                  2048,  # the largest: far past the smallest
                  HALVING_VOCAB - 1,  # one short
                  512],  # the notebook's first doubling: not yet 2 bytes per token
    "day17.ex5": [60 / 2.5,  # the perplexity divided instead of its logarithm
                  60**2.5,  # multiplied by the characters per token
                  math.log(60) / 2.5,  # nats per character, not a perplexity
                  "5.14"],  # a string
}
