"""Day 17's exercises: BPE training on counted chunks, encoding by merge rank, decoding ids to text, the smallest vocabulary that halves the text, perplexity per character."""

from __future__ import annotations

import math
import numbers
import random
from functools import lru_cache
from typing import Any

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Wrong, differs, exercise

Merges = list[tuple[bytes, bytes]]


def _merge_all(tokens: list[bytes], pair: tuple[bytes, bytes]) -> list[bytes]:
    """Every occurrence of ``pair`` in ``tokens``, left to right, made one token."""
    out, i = [], 0
    while i < len(tokens):
        if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def _brute_force_train(chunks: list[bytes], vocab_size: int) -> Merges:
    """BPE over a list of chunks, a chunk seen n times listed n times: recount everything for every merge."""
    seqs = [[bytes([b]) for b in c] for c in chunks]
    vocab = {bytes([b]) for b in range(256)}
    merges: Merges = []
    while len(vocab) < vocab_size:
        counts: dict[tuple[bytes, bytes], int] = {}
        for s in seqs:
            for pair in zip(s, s[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], p))  # most frequent; ties: the greatest pair
        seqs = [_merge_all(s, best) for s in seqs]
        if best[0] + best[1] not in vocab:  # a token that exists already adds no rule
            vocab.add(best[0] + best[1])
            merges.append(best)
    return merges


def _sequential_encode(data: bytes, merges: Merges) -> list[bytes]:
    """Apply the merges one after the other, each everywhere: the same tokens as merging by lowest rank."""
    tokens = [bytes([b]) for b in data]
    for pair in merges:
        if len(tokens) < 2:
            break
        tokens = _merge_all(tokens, pair)
    return tokens


@lru_cache(maxsize=1)
def _splits() -> tuple[str, str]:
    from course_lib.lm_eval import shakespeare_splits

    return shakespeare_splits()


def _shakespeare_chunks(n_chars: int) -> dict[bytes, int]:
    from collections import Counter

    from course_lib.tokenizers import GPT2_SPLIT_PATTERN, split_text

    counts = Counter(split_text(_splits()[0][:n_chars], GPT2_SPLIT_PATTERN))
    return {chunk.encode("utf-8"): n for chunk, n in counts.items()}


def _show(chunks: dict[bytes, int]) -> str:
    return repr(chunks) if len(chunks) <= 6 else f"the {len(chunks)} distinct chunks of a slice of Shakespeare"


@exercise("day17.ex1", title="training on counted chunks", kind="code", section="section 2, A naive BPE trainer")
def check_train_counts(fn: Any) -> str:
    rng = random.Random(1701)
    cases: list[tuple[dict[bytes, int], int]] = [
        ({}, 260),  # nothing to merge
        ({b"a": 5, b"b": 3}, 260),  # single bytes: no pairs
        ({b"ab": 1, b"ba": 1}, 258),  # a tie: the greatest pair goes first
        ({b"ab": 3, b"bc": 1, b"bcd": 1}, 258),  # counted: (a, b) occurs 3 times, (b, c) twice
        ({b"ba": 2, b"ab": 2, b"b": 6}, 260),  # pairs never span two chunks: (b, b) never occurs
        ({"naïve".encode(): 2, "café".encode(): 3}, 270),  # multi-byte characters: pairs of bytes
    ]
    for _ in range(6):  # random chunks from a small alphabet: many ties, repeats and overlaps (aaa)
        alphabet = rng.choice([b"ab", b"abc", b"ab c"])
        chunks = {bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 7))): rng.randint(1, 6)
                  for _ in range(rng.randint(2, 8))}
        cases.append((chunks, 256 + rng.randint(1, 12)))
    cases.append((_shakespeare_chunks(3000), 256 + 40))
    for chunks, vocab_size in cases:
        want = _brute_force_train([c for c, n in chunks.items() for _ in range(n)], vocab_size)
        where = f"{_show(chunks)} with vocab_size={vocab_size}"
        got = _call(fn, f"my_train_bpe_counts({where})", dict(chunks), vocab_size)
        if not isinstance(got, (list, tuple)):
            raise Wrong(f"my_train_bpe_counts({where}) should return a list of merges, got {type(got).__name__}")
        got = list(got)
        for rank, (g, w) in enumerate(zip(got, want)):
            if tuple(g) != w:
                before = f" (after {want[:rank]!r})" if rank else ""
                raise Wrong(f"on {where}, merge {rank} is {g!r}; training on every chunk as often as it occurs "
                            f"gives {w!r}{before}")
        if len(got) != len(want):
            raise Wrong(f"on {where}, my_train_bpe_counts returned {len(got)} merges; expected {len(want)} "
                        f"(256 bytes + merges = vocab_size, fewer only when no pair is left)")
    return (f"({len(cases)} sets of counted chunks, with ties, runs and a slice of Shakespeare: the merges of training "
            f"on every chunk as often as it occurs)")


@lru_cache(maxsize=1)
def _shakespeare_merges() -> Merges:
    from course_lib.tokenizers import BPETokenizer

    return BPETokenizer.train(_splits()[0][:20_000], 256 + 120, pattern="gpt2").merges


@exercise("day17.ex2", title="encoding by merge rank", kind="code", section="section 3, What the merges learn")
def check_encode_chunk(fn: Any) -> str:
    rng = random.Random(1702)
    cases: list[tuple[bytes, Merges, str]] = []
    shakespeare = _shakespeare_merges()
    for w in ["", " ", " thee", " Romeo", " nevertheless", "\n\n", " Gloucester's", " naïve", " 👋"]:
        cases.append((w.encode("utf-8"), shakespeare, "the merges of 20,000 characters of Shakespeare"))
    for k in range(8):  # merges learnt from random text over a small alphabet; chunks with runs such as aaaa
        alphabet = "ab" if k % 2 == 0 else "abc"
        text = "".join(rng.choice(alphabet) for _ in range(60)).encode()
        merges = _brute_force_train([text], 256 + rng.randint(3, 10))
        for _ in range(3):
            data = "".join(rng.choice(alphabet + "d") for _ in range(rng.randint(1, 14))).encode()
            cases.append((data, merges, f"the merges {merges!r}"))
    cases.append((b"aaaaa", [(b"a", b"a"), (b"aa", b"a")], "the merges [(b'a', b'a'), (b'aa', b'a')]"))
    cases.append((b"abcd", [(b"c", b"d"), (b"b", b"c"), (b"a", b"b")], "the merges [(b'c', b'd'), (b'b', b'c'), "
                                                                        "(b'a', b'b')]"))
    for data, merges, which in cases:
        want = _sequential_encode(data, merges)
        got = _call(fn, f"my_encode_chunk({data!r}, merges)", data, list(merges))
        if not isinstance(got, (list, tuple)) or not all(isinstance(t, bytes) for t in got):
            raise Wrong(f"my_encode_chunk({data!r}, merges) should return a list of byte strings, got {got!r}")
        if list(got) != want:
            raise Wrong(f"my_encode_chunk({data!r}, merges) with {which} returned {list(got)!r}; applying the "
                        f"merges in the order they were learnt gives {want!r}")
    return f"({len(cases)} chunks, runs such as aaaaa and pairs that compete: the tokens of merging by rank)"


@lru_cache(maxsize=1)
def _multilingual_tokenizer():
    from course_lib.tokenizers import BPETokenizer

    text = "日本語のテキスト、日本の本。 naïve café, crème brûlée! 👋🏽 hello 👋 again 🇫🇷 " * 3
    return BPETokenizer.train(text, 256 + 60)  # no split pattern: its first merges join pieces of characters


@exercise("day17.ex3", title="decoding ids to text", kind="code", section="section 1, Bytes, not characters")
def check_decode(fn: Any) -> str:
    from course_lib.tokenizers import BPETokenizer

    tok = _multilingual_tokenizer()
    texts = ["", "a", "日本語のテキスト", "naïve café 👋🏽", "日本の本 🇫🇷 и русский текст", "crème brûlée!\n\tok"]
    cases = [(tok.encode(s), tok.merges, s, "a tokenizer trained on Japanese, accents and emoji") for s in texts]
    bytes_only = BPETokenizer()
    cases += [(bytes_only.encode(s), [], s, "no merges") for s in ("naïve 👋", "abc")]
    shakespeare = BPETokenizer(_shakespeare_merges())
    line = "To be, or not to be: that is the question.\n"
    cases.append((shakespeare.encode(line), shakespeare.merges, line, "the merges of Shakespeare"))
    cut = tok.encode("日本")  # the ids of a valid text, then a lone lead byte: replaced by U+FFFD
    cases.append((cut + [0xE6], tok.merges, b"".join(tok.vocab[i] for i in cut).decode() + "\ufffd",
                  "a tokenizer trained on Japanese, accents and emoji (the last id is a lone lead byte)"))
    for ids, merges, want, which in cases:
        got = _call(fn, f"my_decode({ids}, merges)", list(ids), list(merges))
        if got != want:
            raise Wrong(f"my_decode({ids}, merges) with {which} returned {got!r}; the text is {want!r}")
    return f"({len(cases)} id lists, with tokens that hold part of a character: every text comes back exactly)"


@lru_cache(maxsize=1)
def _compression_tokenizer():
    from course_lib.tokenizers import BPETokenizer

    return BPETokenizer.train(_splits()[0][:200_000], 2048, pattern="gpt2")


def bytes_per_token(vocab_size: int) -> float:
    """Bytes of the validation text per token, for BPE with ``vocab_size`` tokens (256 bytes + merges)
    trained with GPT-2's pattern on the first 200,000 characters of the training split (up to 2,048)."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral) or not 256 <= vocab_size <= 2048:
        raise ValueError(f"vocab_size={vocab_size!r}: pass a whole number from 256 to 2048")
    val = _splits()[1]
    return len(val.encode("utf-8")) / len(_compression_tokenizer().encode(val, max_merges=int(vocab_size) - 256))


@exercise("day17.ex4", title="the smallest vocabulary that halves the text", kind="experiment",
          section="section 4, Compression against vocabulary size")
def check_halving_vocab(answer: Any) -> str:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Integral) or not 256 <= answer <= 2048:
        raise Wrong(f"expected a vocabulary size, a whole number from 256 to 2048, got {answer!r}")
    answer = int(answer)
    rate = bytes_per_token(answer)
    if not rate >= 2.0:
        raise Wrong(f"with {answer} tokens the validation text has {rate:.4f} bytes per token; the target is 2 or more")
    if bytes_per_token(answer - 1) >= 2.0:
        raise Wrong(f"{answer} tokens reach {rate:.4f} bytes per token, but {answer - 1} already reach "
                    f"{bytes_per_token(answer - 1):.4f}: find the smallest vocabulary size")
    return (f"({answer} tokens: {rate:.4f} bytes per token, {bytes_per_token(answer - 1):.4f} with one fewer; "
            f"{bytes_per_token(2048):.2f} with 2,048)")


@exercise("day17.ex5", title="perplexity per token and per character", kind="value",
          section="section 7, Tokens change the yardstick")
def check_perplexity_per_char(answer: Any) -> str:
    expected = math.exp(math.log(60) / 2.5)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or differs(answer, expected, rtol=1e-4):
        side = "" if not isinstance(answer, (int, float)) else (" (too low)" if answer < expected else " (too high)")
        raise Wrong(f"{answer!r}{side} is not the perplexity per character of a model with perplexity 60 per token, "
                    f"2.5 characters a token")
    return f"(ln 60 = {math.log(60):.3f} nats a token, {math.log(60) / 2.5:.3f} a character: perplexity {expected:.3f})"
