"""Day 17: training byte-level BPE — repeatedly merge the most frequent adjacent pair.

Two small helpers show the idea on a list of ids:

>>> get_stats([1, 2, 3, 1, 2])
{(1, 2): 2, (2, 3): 1, (3, 1): 1}
>>> merge([1, 2, 3, 1, 2], (1, 2), 4)
[4, 3, 4]

Recounting every pair after every merge, as those helpers would, costs a full pass
over the text per merge. :func:`train_bpe` gives the same merges much faster:

* identical chunks are stored once, with a weight (how often the chunk occurs);
* all chunks live in flat arrays ``tok``, ``nxt``, ``prv`` (a linked list per chunk,
  ``-1`` marks a chunk's end), so a merge only relinks two cells;
* ``where[pair]`` lists the positions where ``pair`` starts, so a merge visits only
  those, and pair counts change by small deltas around each of them;
* a heap holds ``(-count, key(a), key(b), a, b)``; entries are checked when popped
  (lazy deletion), so a count that went down is simply pushed again, lower.

Ties between equally frequent pairs go to the lexicographically greatest
``(bytes, bytes)`` pair. :func:`inverted_key` turns "greatest first" into "smallest
first" for Python's min-heap:

>>> sorted([b"a", b"ab", b"b"], key=inverted_key)
[b'b', b'ab', b'a']
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field


def get_stats(ids: list[int], counts: dict[tuple[int, int], int] | None = None) -> dict[tuple[int, int], int]:
    """Count adjacent pairs (adding to ``counts`` if given).

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Replace every occurrence of ``pair``, scanning left to right, by ``idx``.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([7, 7, 7], (7, 7), 8)   # overlapping: the leftmost pair wins
    [8, 7]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def inverted_key(token: bytes) -> tuple[int, ...]:
    """A key whose ascending order is the *descending* lexicographic order of bytes.

    Each byte ``x`` becomes ``255 - x``; the terminator ``256`` makes a prefix sort
    after its extensions (``b"a" < b"ab"``, so ``b"a"`` must come later).
    """
    return (*(255 - x for x in token), 256)


@dataclass
class BPETrainResult:
    """What :func:`train_bpe` learned, in order.

    ``merges[k] = (a, b, c)``: the k-th merge joins ids ``a`` and ``b`` into ``c``.
    ``vocab[i]`` are the bytes of id ``i``; ``counts[k]`` is how often merge k occurred.
    """

    merges: list[tuple[int, int, int]] = field(default_factory=list)
    vocab: list[bytes] = field(default_factory=lambda: [bytes([i]) for i in range(256)])
    counts: list[int] = field(default_factory=list)


def train_bpe(chunks: Mapping[bytes, int], vocab_size: int, verbose: bool = False) -> BPETrainResult:
    """Learn merges until the vocabulary holds ``vocab_size`` tokens (256 bytes + merges).

    ``chunks`` maps each distinct chunk (bytes) to how often it occurs; pairs never
    span two chunks. Training stops early when no pair is left to merge.

    A merge whose bytes already have an id (``(b"a", b"bc")`` after ``(b"ab", b"c")``
    made ``b"abc"``) rewrites the data with that id but adds no rule: every rule makes
    a new id, ``256 + rank``, so ``len(merges) == len(vocab) - 256`` and any rule that
    uses a token comes after the rule that made it (which encoding by rank relies on).

    >>> r = train_bpe({b"aaabdaaabac": 1}, 259)
    >>> [(r.vocab[a], r.vocab[b]) for a, b, _ in r.merges]
    [(b'a', b'a'), (b'aa', b'a'), (b'aaa', b'b')]
    """
    if vocab_size < 256:
        raise ValueError(f"vocab_size={vocab_size} is below the 256 byte tokens: ask for 256 or more")
    result = BPETrainResult()
    vocab = result.vocab
    id_of = {tok: i for i, tok in enumerate(vocab)}
    key = [inverted_key(tok) for tok in vocab]

    # flat linked lists: one cell per byte of each distinct chunk
    tok: list[int] = []
    nxt: list[int] = []
    prv: list[int] = []
    weight: list[int] = []
    counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], list[int]] = defaultdict(list)
    for chunk, w in chunks.items():
        n, start = len(chunk), len(tok)
        if n == 0 or w <= 0:
            continue
        tok.extend(chunk)
        weight.extend([w] * n)
        nxt.extend(range(start + 1, start + n + 1))
        nxt[-1] = -1
        prv.extend(range(start - 1, start + n - 1))
        prv[start] = -1
        for i, pair in enumerate(zip(chunk, chunk[1:]), start):
            counts[pair] += w
            where[pair].append(i)

    heap = [(-c, key[a], key[b], a, b) for (a, b), c in counts.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        neg, _, _, a, b = heapq.heappop(heap)
        pair = (a, b)
        count = counts.get(pair, 0)
        if count != -neg:  # stale entry: push the lower count again, or drop it
            if 0 < count < -neg:
                heapq.heappush(heap, (-count, key[a], key[b], a, b))
            continue
        c = id_of.get(vocab[a] + vocab[b])
        if c is None:  # a new token and a new rule
            c = len(vocab)
            vocab.append(vocab[a] + vocab[b])
            id_of[vocab[c]] = c
            key.append(inverted_key(vocab[c]))
            result.merges.append((a, b, c))
            result.counts.append(count)
            if verbose:
                print(f"merge {len(result.merges)}: {vocab[a]!r} + {vocab[b]!r} -> {c} ({count} times)")

        positions = where.pop(pair)
        if a == b:  # runs like "aaa" overlap: merge them left to right
            positions.sort()
        grown: set[tuple[int, int]] = set()
        for i in positions:
            if tok[i] != a:
                continue
            j = nxt[i]
            if j < 0 or tok[j] != b:
                continue  # stale position: this pair is no longer here
            w = weight[i]
            counts[pair] -= w
            p, k = prv[i], nxt[j]
            if p >= 0:  # (left, a) becomes (left, c)
                left = tok[p]
                counts[(left, a)] -= w
                q = (left, c)
                counts[q] += w
                where[q].append(p)
                grown.add(q)
            if k >= 0:  # (b, right) becomes (c, right)
                right = tok[k]
                counts[(b, right)] -= w
                q = (c, right)
                counts[q] += w
                where[q].append(i)
                grown.add(q)
                prv[k] = i
            tok[i], tok[j], nxt[i] = c, -1, k
        del counts[pair]
        for q in grown:  # only pairs holding c can have grown
            if counts[q] > 0:
                heapq.heappush(heap, (-counts[q], key[q[0]], key[q[1]], q[0], q[1]))
    return result
