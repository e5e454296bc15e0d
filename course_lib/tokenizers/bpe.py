"""Day 17: a byte-level BPE tokenizer, trained from scratch (the GPT-2/GPT-4 recipe).

>>> text = "To be, or not to be, that is the question: whether 'tis nobler in the mind"
>>> tok = BPETokenizer.train(text, vocab_size=260, pattern="gpt2", special_tokens=["<|endoftext|>"])
>>> tok.merges    # (t,h) and (" ",t) both occur 4 times; b"t" > b" ", so (t,h) comes first
[(b't', b'h'), (b'th', b'e'), (b't', b'i'), (b'n', b'o')]
>>> ids = tok.encode("the notion<|endoftext|>")
>>> ids, tok.decode(ids)
([257, 32, 259, 258, 111, 110, 260], 'the notion<|endoftext|>')
>>> tok.to_hf().encode("the notion<|endoftext|>").ids == ids
True

Ids ``0..255`` are the raw bytes, ``256..`` the merged tokens in the order they were
learned, then the special tokens. Encoding cuts the text at special tokens, splits
the rest into chunks with the pattern, and inside each chunk applies the learned
merges by rank: always the earliest-learned pair present, leftmost first.

``encode(text)`` turns every special token's text into its id. Pass
``allowed_special="none"`` to encode such strings as ordinary text (safer for text
from users), or a set of the special tokens to allow.
"""

from __future__ import annotations

import heapq
import operator
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from course_lib.tokenizers.base import Tokenizer, atomic_write_text, read_json, write_json
from course_lib.tokenizers.hf_export import from_hf_json, hf_vocab, to_hf, token_from_str, token_to_str
from course_lib.tokenizers.patterns import NAMED_PATTERNS, resolve_pattern, split_special, split_text
from course_lib.tokenizers.train import merge, train_bpe

if TYPE_CHECKING:
    import tokenizers

_KIND = "course_lib.BPETokenizer"
_CACHE_LIMIT = 200_000  # chunks remembered by encode; cleared when full
_SHORT = 32  # chunks up to this many bytes use the simple merge loop


class BPETokenizer(Tokenizer):
    """Byte-level BPE: ``merges`` (ordered ``(bytes, bytes)`` pairs), a split ``pattern``
    (``None``, ``"gpt2"``, ``"gpt4"`` or a regex) and ``special_tokens``.

    Build one with :meth:`train` or :meth:`load`; the constructor rebuilds the ids
    from the merges (special tokens given as a list get the next ids, in order).
    """

    def __init__(
        self,
        merges: Iterable[tuple[bytes, bytes]] = (),
        pattern: str | None = None,
        special_tokens: Sequence[str] | Mapping[str, int] = (),
    ) -> None:
        self.pattern = resolve_pattern(pattern)
        self.merges: list[tuple[bytes, bytes]] = []
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        id_of = {tok: i for i, tok in self.vocab.items()}
        self._ranks: dict[tuple[int, int], int] = {}  # (a, b) -> rank; it makes id 256 + rank
        self._rules: list[tuple[int, int, int]] = []  # rank -> (a, b, 256 + rank)
        for left, right in merges:
            if left not in id_of or right not in id_of:
                raise ValueError(
                    f"merge {(left, right)!r} uses a token no earlier merge made: list merges in training order"
                )
            a, b = id_of[left], id_of[right]
            if left + right in id_of:
                raise ValueError(
                    f"merge {(left, right)!r} makes a token that already exists: each merge must make a new one"
                )
            c = id_of[left + right] = len(self.vocab)
            self.vocab[c] = left + right
            self._ranks[(a, b)] = len(self._rules)
            self._rules.append((a, b, c))
            self.merges.append((left, right))
        self.special_tokens = self._assign_special(special_tokens, id_of)
        for text, i in self.special_tokens.items():
            self.vocab[i] = text.encode("utf-8")
        self._cache: dict[str, list[int]] = {}

    def _assign_special(
        self, special: Sequence[str] | Mapping[str, int], id_of: dict[bytes, int]
    ) -> dict[str, int]:
        """Special tokens get the ids after the merges, in the order given."""
        names = list(special)
        if isinstance(special, str) or not all(isinstance(s, str) and s for s in names):
            raise ValueError(
                f"special_tokens={special!r}: pass a list of non-empty strings such as ['<|endoftext|>']"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"special_tokens {names} contain a duplicate: list each once")
        clash = [s for s in names if s.encode("utf-8") in id_of]
        if clash:
            raise ValueError(f"special tokens {clash} are also ordinary tokens: pick strings like '<|name|>'")
        wanted = {s: len(self.vocab) + k for k, s in enumerate(names)}
        if isinstance(special, Mapping) and dict(special) != wanted:
            raise ValueError(f"special token ids {dict(special)} should follow the merges: expected {wanted}")
        return wanted

    # ---- training -----------------------------------------------------------------
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        pattern: str | None = None,
        special_tokens: Sequence[str] = (),
        verbose: bool = False,
    ) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if the text runs out of pairs).

        Special tokens are cut out of the text first and get ids after the merges.
        """
        regex = resolve_pattern(pattern)
        specials = {s: -1 for s in cls(special_tokens=special_tokens).special_tokens}  # validates them
        counts: Counter[str] = Counter()
        for piece, special_id in split_special(text, specials):
            if special_id is None:
                counts.update(split_text(piece, regex))
        result = train_bpe({chunk.encode("utf-8"): n for chunk, n in counts.items()}, vocab_size, verbose)
        merges = [(result.vocab[a], result.vocab[b]) for a, b, _ in result.merges]
        return cls(merges, regex, special_tokens)

    # ---- encoding -----------------------------------------------------------------
    def encode(self, text: str, allowed_special: Literal["all", "none"] | Iterable[str] = "all") -> list[int]:
        """Text -> ids. Special tokens in ``allowed_special`` (default: all) become their id."""
        if allowed_special == "all":
            specials = self.special_tokens
        elif allowed_special == "none":
            specials = {}
        else:
            allowed = set(allowed_special)
            unknown = allowed - self.special_tokens.keys()
            if unknown:
                raise ValueError(
                    f"{sorted(unknown)} are not special tokens of this tokenizer: use {sorted(self.special_tokens)}"
                )
            specials = {s: i for s, i in self.special_tokens.items() if s in allowed}
        ids: list[int] = []
        for piece, special_id in split_special(text, specials):
            if special_id is None:
                ids.extend(self.encode_ordinary(piece))
            else:
                ids.append(special_id)
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Text -> ids, treating special-token strings as plain text."""
        ids: list[int] = []
        cache = self._cache
        for chunk in split_text(text, self.pattern):
            cached = cache.get(chunk)
            if cached is None:
                cached = self._bpe(chunk.encode("utf-8"))
                if len(chunk) <= 64:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    cache[chunk] = cached
            ids.extend(cached)
        return ids

    def _bpe(self, data: bytes) -> list[int]:
        """Apply the merges to one chunk by rank: the earliest-learned pair present, all
        its occurrences left to right, then the next. Rule ``r`` makes id ``256 + r``.
        """
        ids = list(data)
        if len(ids) > _SHORT:
            return self._bpe_long(ids)
        ranks, never = self._ranks, len(self._ranks)
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, never))
            if pair not in ranks:
                break  # no pair left that a rule merges
            ids = merge(ids, pair, 256 + ranks[pair])
        return ids

    def _bpe_long(self, tok: list[int]) -> list[int]:
        """Same result as :meth:`_bpe` without rescanning the chunk after each merge.

        ``tok``/``nxt``/``prv`` form a linked list (``-1``: none); ``where[rank]`` lists
        the positions where that rank's pair starts; ranks are visited in increasing
        order, and a merge only makes pairs of higher rank (a rule comes after the
        rules that made its two parts).
        """
        ranks, rules = self._ranks, self._rules
        nxt = list(range(1, len(tok) + 1))
        nxt[-1] = -1
        prv = list(range(-1, len(tok) - 1))
        where: dict[int, list[int]] = {}
        for i, pair in enumerate(zip(tok, tok[1:])):
            if pair in ranks:
                where.setdefault(ranks[pair], []).append(i)
        todo = list(where)
        heapq.heapify(todo)
        while todo:
            rank = heapq.heappop(todo)
            a, b, c = rules[rank]
            positions = where.pop(rank)
            if a == b:  # runs like "aaa" overlap: merge them left to right
                positions.sort()
            for i in positions:
                j = nxt[i]
                if tok[i] != a or j < 0 or tok[j] != b:
                    continue  # stale: this position changed since it was listed
                k = nxt[j]
                tok[i], tok[j], nxt[i] = c, -1, k
                new_pairs = []
                if prv[i] >= 0:
                    new_pairs.append((prv[i], (tok[prv[i]], c)))
                if k >= 0:
                    prv[k] = i
                    new_pairs.append((i, (c, tok[k])))
                for pos, pair in new_pairs:
                    if pair in ranks:
                        r = ranks[pair]
                        if r not in where:
                            where[r] = []
                            heapq.heappush(todo, r)
                        where[r].append(pos)
        out, i = [], 0
        while i >= 0:
            out.append(tok[i])
            i = nxt[i]
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Ids (ints, or numpy/torch integers) -> text; bytes that are not valid UTF-8 become U+FFFD."""
        ids = list(ids)
        try:
            data = b"".join([self.vocab[operator.index(i)] for i in ids])
        except (KeyError, TypeError):
            bad = next(i for i in ids if not hasattr(i, "__index__") or operator.index(i) not in self.vocab)
            raise ValueError(f"id {bad!r} is not in this tokenizer: ids run from 0 to {self.vocab_size - 1}") from None
        return data.decode("utf-8", errors="replace")

    @property
    def vocab_size(self) -> int:
        """Byte tokens + merged tokens + special tokens."""
        return len(self.vocab)

    # ---- files and Hugging Face ----------------------------------------------------
    def to_hf(self) -> tokenizers.Tokenizer:
        """A Hugging Face ``tokenizers.Tokenizer`` that gives exactly the same ids."""
        return to_hf(self)

    def save(self, path: str | os.PathLike[str], format: Literal["auto", "course", "hf"] = "auto") -> Path:
        """Write JSON atomically: the course's format, or Hugging Face's ``tokenizer.json``.

        ``format="auto"`` writes Hugging Face's format when the file name ends with
        ``tokenizer.json`` and the course's format otherwise; :meth:`load` reads both.
        """
        path = Path(path)
        if format not in ("auto", "course", "hf"):
            raise ValueError(f"format={format!r}: use 'auto', 'course' or 'hf'")
        if format == "hf" or (format == "auto" and path.name.endswith("tokenizer.json")):
            return atomic_write_text(path, self.to_hf().to_str(pretty=True))
        return write_json(path, {
            "type": _KIND,
            "version": 1,
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            # token bytes spelled with GPT-2's byte-to-character table (b" t" -> "Ġt")
            "merges": [[token_to_str(a), token_to_str(b)] for a, b in self.merges],
        })  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read a file written by :meth:`save` (either format)."""
        data = read_json(path)
        if "model" in data:  # Hugging Face's tokenizer.json
            tok = cls(*from_hf_json(data))
            if hf_vocab(tok) != data["model"].get("vocab"):
                raise ValueError(
                    f"{path} numbers its tokens differently from BPETokenizer: "
                    "load it with tokenizers.Tokenizer.from_file instead"
                )
            return tok
        if data.get("type") != _KIND:
            raise ValueError(f"{path} holds {data.get('type')!r}, not a {_KIND}: load it with the matching class")
        merges = [(token_from_str(a), token_from_str(b)) for a, b in data["merges"]]
        return cls(merges, data["pattern"], data["special_tokens"])

    def __repr__(self) -> str:
        names = {v: k for k, v in NAMED_PATTERNS.items()}
        pattern = names.get(self.pattern, self.pattern) if self.pattern else None
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"pattern={pattern!r}, special_tokens={list(self.special_tokens)})")  # fmt: skip

