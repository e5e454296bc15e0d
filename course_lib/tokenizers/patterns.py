"""Day 17: pre-tokenization — split text into chunks before BPE sees it.

BPE merges only inside a chunk, so a split pattern decides which merges can exist:
with GPT-2's pattern, " dog" and "." are separate chunks and no token spans "g.".

>>> split_text("Hello world!!", resolve_pattern("gpt2"))
['Hello', ' world', '!!']
>>> split_special("hi<|endoftext|>yo", {"<|endoftext|>": 512})
[('hi', None), ('<|endoftext|>', 512), ('yo', None)]

Splitting keeps *every* character: text between two matches becomes a chunk of its
own (Hugging Face calls this the "isolated" behaviour), so decoding is lossless
even with a custom pattern that does not match everything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache

import regex

# The split regex published with GPT-2 (openai/gpt-2, src/encoder.py).
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# The split regex of tiktoken's cl100k_base (GPT-3.5/GPT-4): case-insensitive
# contractions, numbers in groups of at most 3 digits, newlines kept apart.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)

NAMED_PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}


def resolve_pattern(pattern: str | None) -> str | None:
    """``None`` (no split), ``"gpt2"``, ``"gpt4"`` or a custom regex -> the regex string.

    >>> resolve_pattern("gpt2") == GPT2_SPLIT_PATTERN
    True
    """
    if pattern is None:
        return None
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(
            f"pattern={pattern!r} is not usable: pass None, 'gpt2', 'gpt4' or a regex string"
        )
    pattern = NAMED_PATTERNS.get(pattern, pattern)
    try:
        compile_pattern(pattern)
    except regex.error as err:
        raise ValueError(f"pattern {pattern!r} is not a valid regex ({err}): fix it or use 'gpt2'") from err
    return pattern


@lru_cache(maxsize=16)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile a split regex once (the ``regex`` package knows ``\\p{L}`` and ``?+``)."""
    return regex.compile(pattern)


def split_text(text: str, pattern: str | None) -> list[str]:
    """The non-empty chunks of ``text``; ``"".join(split_text(t, p)) == t`` always.

    >>> split_text("I'll go 123456", resolve_pattern("gpt4"))
    ['I', "'ll", ' go', ' ', '123', '456']
    >>> split_text("x = 42;", r"\\w+")         # the gaps " = " and ";" are chunks too
    ['x', ' = ', '42', ';']
    """
    if pattern is None:
        return [text] if text else []
    compiled = compile_pattern(pattern)
    if compiled.groups == 0:  # fast path: the matches alone cover the text (GPT-2's and GPT-4's do)
        chunks = compiled.findall(text)
        if sum(map(len, chunks)) == len(text):
            return [c for c in chunks if c]
    return list(_split_with_gaps(text, compiled))


def _split_with_gaps(text: str, compiled: regex.Pattern[str]) -> Iterator[str]:
    """Yield the matches and the text between them (Hugging Face's "isolated" split)."""
    end = 0
    for m in compiled.finditer(text):
        start, stop = m.span()
        if start > end:
            yield text[end:start]  # a gap the pattern did not match
        if stop > start:
            yield text[start:stop]
        end = max(end, stop)
    if end < len(text):
        yield text[end:]


@lru_cache(maxsize=16)
def _special_regex(specials: tuple[str, ...]) -> regex.Pattern[str]:
    # longest first, so "<|user|>x" prefers "<|user|>x" over a shorter "<|user|>"
    ordered = sorted(specials, key=lambda s: (-len(s), s))
    return regex.compile("(" + "|".join(regex.escape(s) for s in ordered) + ")")


def split_special(text: str, special_tokens: Mapping[str, int]) -> list[tuple[str, int | None]]:
    """Cut ``text`` at special tokens (leftmost, then longest): ``[(piece, id or None)]``.

    Ordinary pieces come with ``None``; special tokens with their id. Empty pieces are
    dropped, so ``"".join(p for p, _ in split_special(t, s)) == t``.
    """
    if not special_tokens:
        return [(text, None)] if text else []
    parts = _special_regex(tuple(sorted(special_tokens))).split(text)
    out: list[tuple[str, int | None]] = []
    for i, part in enumerate(parts):  # odd positions are the captured special tokens
        if i % 2:
            out.append((part, special_tokens[part]))
        elif part:
            out.append((part, None))
    return out
