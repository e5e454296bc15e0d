"""Day 12: words and word vocabularies — split text into words, count them, give them ids.

A word vocabulary keeps the ``max_size`` most frequent words of a training text and maps
every other word to one unknown token. The fraction of held-out words that fall outside
it (the out-of-vocabulary rate) is what day 12 measures and day 17's subword tokenizers
bring to zero.

>>> words("Don't stop, O'er the hills!")
["don't", 'stop', "o'er", 'the', 'hills']
>>> vocab = Vocab.build(["to", "be", "or", "not", "to", "be"], max_size=2)
>>> vocab.itos
['<unk>', 'be', 'to']
>>> vocab.encode(["to", "sleep"])
[2, 0]
>>> vocab.oov_rate(["to", "sleep"])
0.5
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# A word is a run of letters or digits, with apostrophes allowed inside ("don't", "o'er").
# [^\W_] is "a word character other than the underscore", so accented letters count.
WORD_PATTERN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def words(text: str, lowercase: bool = True) -> list[str]:
    """Split ``text`` into words (letters and digits, inner apostrophes kept), dropping punctuation.

    >>> words("Café, CAFÉ and 3 cafés")
    ['café', 'café', 'and', '3', 'cafés']
    """
    if not isinstance(text, str):
        raise TypeError(f"words() takes a str, got {type(text).__name__}: decode bytes first")
    return WORD_PATTERN.findall(text.lower() if lowercase else text)


@dataclass
class Vocab:
    """Tokens <-> ids, most frequent first. ``itos[i]`` is the token of id ``i``.

    ``counts[i]`` is how often ``itos[i]`` occurred in the data the vocabulary was built
    from; the unknown token's count is the number of occurrences it stands for there.
    Build one with :meth:`build` rather than by hand.
    """

    itos: list[str]
    counts: list[int]
    unk_token: str | None = "<unk>"
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.itos) != len(self.counts):
            raise ValueError(
                f"itos has {len(self.itos)} tokens but counts has {len(self.counts)}: give one count per token"
            )
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("a token appears twice in itos: list each token once")
        if self.unk_token is not None and self.unk_token not in self.itos:
            raise ValueError(f"unk_token {self.unk_token!r} is not in itos: add it, or pass unk_token=None")
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        max_size: int | None = None,
        min_count: int = 1,
        unk_token: str | None = "<unk>",
    ) -> Vocab:
        """Count ``tokens`` and keep the most frequent (ties broken alphabetically).

        ``max_size`` counts the kept tokens only (the unknown token comes on top, as id 0);
        ``min_count`` drops tokens seen fewer times. With ``unk_token=None`` every token is
        kept and :meth:`encode` raises on unseen ones.
        """
        if max_size is not None and max_size < 1:
            raise ValueError(f"max_size={max_size}: pass a positive number of tokens, or None to keep them all")
        if min_count < 1:
            raise ValueError(f"min_count={min_count}: pass 1 or more")
        counter = Counter(tokens)
        if unk_token is not None and unk_token in counter:
            raise ValueError(f"the data contains the unknown token {unk_token!r} itself: choose another unk_token")
        if unk_token is None and (max_size is not None or min_count > 1):
            raise ValueError(
                "without an unk_token every token must be kept: pass unk_token='<unk>' to cut the vocabulary"
            )
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))  # most frequent first
        kept = [(w, c) for w, c in ranked if c >= min_count][:max_size]
        itos = [w for w, _ in kept]
        counts = [c for _, c in kept]
        if unk_token is not None:
            itos.insert(0, unk_token)
            counts.insert(0, sum(counter.values()) - sum(counts))  # occurrences the unknown token stands for
        return cls(itos=itos, counts=counts, unk_token=unk_token)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi and token != self.unk_token

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown token (None when the vocabulary has none)."""
        return None if self.unk_token is None else self.stoi[self.unk_token]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """One id per token; tokens outside the vocabulary get :attr:`unk_id`."""
        if isinstance(tokens, str):
            raise TypeError("encode() takes a list of tokens, not a str: split it first, e.g. with words(text)")
        if self.unk_token is not None:
            unk = self.stoi[self.unk_token]
            return [self.stoi.get(t, unk) for t in tokens]
        missing = [t for t in tokens if t not in self.stoi]
        if missing:
            raise ValueError(
                f"token {missing[0]!r} is not in the vocabulary: build it with an unk_token to map unseen tokens"
            )
        return [self.stoi[t] for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` (unknown words come back as the unknown token)."""
        n = len(self.itos)
        out = []
        for i in ids:
            if not 0 <= int(i) < n:
                raise ValueError(f"id {i} is outside the vocabulary: ids run from 0 to {n - 1}")
            out.append(self.itos[int(i)])
        return out

    def oov_rate(self, tokens: Sequence[str]) -> float:
        """Fraction of ``tokens`` (occurrences, not distinct words) outside the vocabulary."""
        if len(tokens) == 0:
            raise ValueError("oov_rate() needs at least one token")
        return sum(t not in self for t in tokens) / len(tokens)

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.itos[:6])
        more = ", ..." if len(self.itos) > 6 else ""
        return f"Vocab(size={len(self)}, itos=[{head}{more}], unk_token={self.unk_token!r})"
