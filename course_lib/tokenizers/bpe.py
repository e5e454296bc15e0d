"""Day 17: a byte-level BPE tokenizer, trained from scratch (the GPT-2/GPT-4 recipe).

>>> text = "To be, or not to be, that is the question: whether 'tis nobler in the mind"
>>> tok = BPETokenizer.train(text, vocab_size=260, pattern="gpt2", special_tokens=["<|endoftext|>"])
>>> tok.merges    # (t,h) and (" ",t) both occur 4 times; b"t" > b" ", so (t,h) comes first
[(b't', b'h'), (b'th', b'e'), (b't', b'i'), (b'n', b'o')]
>>> ids = tok.encode("the notion<|endoftext|>", allowed_special="all")
>>> ids, tok.decode(ids)
([257, 32, 259, 258, 111, 110, 260], 'the notion<|endoftext|>')
>>> tok.to_hf().encode("the notion<|endoftext|>").ids == ids
True
>>> tok.encode("the notion", max_merges=1)   # only the first merge, (t, h)
[256, 101, 32, 110, 111, 116, 105, 111, 110]

Ids ``0..255`` are the raw bytes, ``256..`` the merged tokens in the order they were
learned, then the special tokens. Encoding cuts the text at special tokens, splits
the rest into chunks with the pattern, and inside each chunk applies the learned
merges by rank: always the earliest-learned pair present, leftmost first.

Special tokens in ordinary text are refused, as tiktoken does: ``encode`` raises a
``ValueError`` when the text holds a special token's string, unless the caller allows
it with ``allowed_special="all"`` (or a set of them); ``encode_ordinary`` encodes such
strings as plain text. Neither choice is right for every text, so the caller makes it:
a document separator that silently became plain bytes would corrupt training data, and
a ``<|endoftext|>`` typed by a user that silently became the real token would let them
end the model's context.
"""

from __future__ import annotations

import heapq
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from course_lib.tokenizers.base import FORMAT_VERSION, Tokenizer, bad_id
from course_lib.tokenizers.hf_export import bpe_from_hf_dict, bpe_to_hf, hf_vocab, token_from_str, token_to_str
from course_lib.tokenizers.patterns import NAMED_PATTERNS, resolve_pattern, split_special, split_text
from course_lib.tokenizers.train import merge, train_bpe

if TYPE_CHECKING:
    import tokenizers

_CACHE_LIMIT = 200_000  # chunks remembered by encode; cleared when full
_SHORT = 32  # chunks up to this many bytes use the simple merge loop


class BPETokenizer(Tokenizer):
    """Byte-level BPE: ``merges`` (ordered ``(bytes, bytes)`` pairs), a split ``pattern``
    (``None``, ``"gpt2"``, ``"gpt4"`` or a regex) and ``special_tokens``.

    Build one with :meth:`train` or :meth:`load`; the constructor rebuilds the ids
    from the merges (special tokens given as a list get the next ids, in order).
    """

    TYPE = "course_lib.BPETokenizer"

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
    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | Iterable[str] = (),
        max_merges: int | None = None,
    ) -> list[int]:
        """Text -> ids. A special token's string in ``text`` raises a ``ValueError`` unless it
        is in ``allowed_special`` (``"all"``, or a set of them), which makes it its id.

        Refusing by default follows tiktoken: the caller decides whether such a string is the
        real token (``allowed_special``) or plain text (:meth:`encode_ordinary`), since
        guessing wrong either way goes unnoticed. ``max_merges=k`` applies only the first
        ``k`` merges (by rank), as if training had stopped there; ``None``: all of them.
        """
        limit = self._merge_limit(max_merges)
        if isinstance(allowed_special, str):
            if allowed_special != "all":
                raise ValueError(f"allowed_special={allowed_special!r}: pass 'all', a set of special tokens, "
                                 "or call encode_ordinary(text) to encode special-token strings as plain text")
            allowed = set(self.special_tokens)
        else:
            allowed = set(allowed_special)
            unknown = allowed - self.special_tokens.keys()
            if unknown:
                raise ValueError(
                    f"{sorted(unknown)} are not special tokens of this tokenizer: use {sorted(self.special_tokens)}"
                )
        ids: list[int] = []
        position = 0
        for piece, special_id in split_special(text, self.special_tokens):
            if special_id is None:
                ids.extend(self._encode_chunks(piece, limit))
            elif piece in allowed:
                ids.append(special_id)
            else:
                raise ValueError(
                    f"the text holds the special token {piece!r} at position {position}: pass "
                    f"allowed_special={{{piece!r}}} (or 'all') to encode it as its id {special_id}, or call "
                    "encode_ordinary(text) to encode it as plain text"
                )
            position += len(piece)
        return ids

    def encode_ordinary(self, text: str, *, max_merges: int | None = None) -> list[int]:
        """Text -> ids, treating special-token strings as plain text (``max_merges`` as in :meth:`encode`)."""
        return self._encode_chunks(text, self._merge_limit(max_merges))

    def _merge_limit(self, max_merges: int | None) -> int:
        n = len(self._rules)
        if max_merges is None:
            return n
        if isinstance(max_merges, bool) or not isinstance(max_merges, int) or not 0 <= max_merges <= n:
            raise ValueError(f"max_merges={max_merges!r}: this tokenizer has {n} merges, so pass 0..{n} or None")
        return max_merges

    def _encode_chunks(self, text: str, limit: int) -> list[int]:
        """Split ``text`` with the pattern and apply the merges of rank < ``limit`` to each chunk."""
        ids: list[int] = []
        if limit < len(self._rules):  # a partial encoding: not what the cache holds
            for chunk in split_text(text, self.pattern):
                ids.extend(self._bpe(chunk.encode("utf-8"), limit))
            return ids
        cache = self._cache
        for chunk in split_text(text, self.pattern):
            cached = cache.get(chunk)
            if cached is None:
                cached = self._bpe(chunk.encode("utf-8"), limit)
                if len(chunk) <= 64:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    cache[chunk] = cached
            ids.extend(cached)
        return ids

    def _bpe(self, data: bytes, limit: int) -> list[int]:
        """Apply the merges of rank < ``limit`` to one chunk by rank: the earliest-learned pair
        present, all its occurrences left to right, then the next. Rule ``r`` makes id ``256 + r``.
        """
        ids = list(data)
        if len(ids) > _SHORT:
            return self._bpe_long(ids, limit)
        ranks = self._ranks
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, limit))
            rank = ranks.get(pair, limit)
            if rank >= limit:
                break  # no pair left that an allowed rule merges
            ids = merge(ids, pair, 256 + rank)
        return ids

    def _bpe_long(self, tok: list[int], limit: int) -> list[int]:
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
            r = ranks.get(pair, limit)
            if r < limit:
                where.setdefault(r, []).append(i)
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
                    r = ranks.get(pair, limit)
                    if r < limit:
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
        vocab, pieces = self.vocab, []
        for i in ids:
            try:
                pieces.append(vocab[operator.index(i)])
            except (KeyError, TypeError):
                raise bad_id(i, len(vocab)) from None
        return b"".join(pieces).decode("utf-8", errors="replace")

    @property
    def vocab_size(self) -> int:
        """Byte tokens + merged tokens + special tokens."""
        return len(self.vocab)

    # ---- as a dict, a file, and for Hugging Face ---------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"type", "version", "pattern", "special_tokens", "merges"}``: what :meth:`save` writes.

        Token bytes are spelled with GPT-2's byte-to-character table (``b" t"`` -> ``"Ġt"``).
        """
        return {
            "type": self.TYPE,
            "version": FORMAT_VERSION,
            "pattern": self.pattern,
            "special_tokens": dict(self.special_tokens),
            "merges": [[token_to_str(a), token_to_str(b)] for a, b in self.merges],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        """Inverse of :meth:`to_dict`. Compiles the stored pattern: read only dicts you trust
        (:func:`course_lib.manifest.tokenizer_from_manifest` checks a checkpoint's first)."""
        cls.check_type(data)
        merges, special = data.get("merges"), data.get("special_tokens", {})
        if not isinstance(merges, list) or not all(isinstance(m, list) and len(m) == 2 for m in merges):
            raise ValueError("the tokenizer's 'merges' are missing or not a list of [left, right] pairs")
        if not isinstance(special, dict):
            raise ValueError("the tokenizer's 'special_tokens' are not a {token: id} table")
        return cls([(token_from_str(a), token_from_str(b)) for a, b in merges], data.get("pattern"), special)

    def to_hf(self) -> tokenizers.Tokenizer:
        """A Hugging Face ``tokenizers.Tokenizer`` that gives exactly the same ids as
        ``encode(text, allowed_special="all")`` (Hugging Face always reads special tokens)."""
        return bpe_to_hf(self)

    @classmethod
    def from_hf_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        """Rebuild from the parsed ``tokenizer.json`` that :meth:`save_hf` writes."""
        tok = cls(*bpe_from_hf_dict(data))
        if hf_vocab(tok) != data["model"].get("vocab"):
            raise ValueError("the tokenizer.json numbers its tokens differently from BPETokenizer: "
                             "load it with tokenizers.Tokenizer.from_file instead")
        return tok

    def __repr__(self) -> str:
        names = {v: k for k, v in NAMED_PATTERNS.items()}
        pattern = names.get(self.pattern, self.pattern) if self.pattern else None
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"pattern={pattern!r}, special_tokens={list(self.special_tokens)})")  # fmt: skip

