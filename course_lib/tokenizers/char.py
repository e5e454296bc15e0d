"""Day 17: the character tokenizer — one id per distinct character.

The simplest tokenizer: the vocabulary is the sorted set of characters in a text.

>>> tok = CharTokenizer.from_text("hello world")
>>> tok.itos
[' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']
>>> tok.encode("hello")
[3, 2, 4, 4, 5]
>>> tok.decode([7, 5, 6, 4, 1])
'world'

A character the text never showed has no id: ``encode`` raises a ``ValueError``
naming it, unless the tokenizer was built with an ``unknown`` token, which then
stands for every unseen character (and is decoded as itself):

>>> CharTokenizer.from_text("hello", unknown="?").encode("help")
[1, 0, 2, 4]
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from course_lib.tokenizers.base import FORMAT_VERSION, Tokenizer, bad_id
from course_lib.tokenizers.hf_export import char_from_hf_dict, char_to_hf

if TYPE_CHECKING:
    import tokenizers


class UnknownCharacterError(ValueError):
    """:meth:`CharTokenizer.encode` met characters outside the vocabulary.

    ``characters``: the distinct unknown characters, in the order they first appear;
    ``position``: where the first one stands. The message names the first one.
    """

    def __init__(self, text: str, stoi: dict[str, int], n_chars: int) -> None:
        self.characters = list(dict.fromkeys(c for c in text if c not in stoi))
        self.position = next(i for i, c in enumerate(text) if c not in stoi)
        ch = self.characters[0]
        super().__init__(
            f"character {ch!r} (U+{ord(ch):04X}) at position {self.position} is not in the vocabulary "
            f"of {n_chars} characters: build the tokenizer from text that contains it, "
            "or pass unknown='<unk>' to CharTokenizer.from_text to map unseen characters to one token"
        )


class CharTokenizer(Tokenizer):
    """Characters <-> ids. ``itos[i]`` is the string of id ``i``; ``stoi`` the reverse.

    ``unknown`` (optional) is the token used for characters outside the vocabulary;
    if it is not one of ``chars`` it gets the last id.
    """

    TYPE = "course_lib.CharTokenizer"

    def __init__(self, chars: Sequence[str], unknown: str | None = None) -> None:
        chars = list(chars)
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"vocabulary entries {bad[:5]!r} are not single characters: pass one character each")
        if len(set(chars)) != len(chars):
            raise ValueError("the vocabulary lists a character twice: pass each character once")
        if unknown is not None and (not isinstance(unknown, str) or not unknown):
            raise ValueError(f"unknown={unknown!r}: pass a non-empty string such as '<unk>', or None")
        self.itos: list[str] = chars + ([unknown] if unknown is not None and unknown not in chars else [])
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        self.unknown = unknown
        self.unknown_id: int | None = None if unknown is None else self.stoi[unknown]

    @classmethod
    def from_text(cls, text: str, unknown: str | None = None) -> CharTokenizer:
        """Vocabulary = the sorted distinct characters of ``text`` (plus ``unknown`` if given)."""
        if not text and unknown is None:
            raise ValueError("cannot build a vocabulary from empty text: pass the training text")
        return cls(sorted(set(text)), unknown=unknown)

    def encode(self, text: str) -> list[int]:
        """One id per character of ``text``."""
        stoi = self.stoi
        try:
            return [stoi[ch] for ch in text]
        except KeyError:
            pass
        if self.unknown_id is not None:
            return [stoi.get(ch, self.unknown_id) for ch in text]
        raise UnknownCharacterError(text, stoi, len(self.itos))

    def decode(self, ids: Iterable[int]) -> str:
        """Join the strings of ``ids`` (ints, or numpy/torch integers)."""
        itos, n = self.itos, len(self.itos)
        out = []
        for i in ids:
            try:
                j = operator.index(i)
            except TypeError:
                raise bad_id(i, n) from None
            if not 0 <= j < n:
                raise bad_id(j, n)
            out.append(itos[j])
        return "".join(out)

    @property
    def vocab_size(self) -> int:
        """Number of ids (the characters, plus the unknown token if it was added)."""
        return len(self.itos)

    # ---- as a dict, a file, and for Hugging Face ---------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"type", "version", "chars", "unknown"}``: what :meth:`save` writes."""
        # a multi-character unknown token is always the last id; the constructor adds it back
        multi = self.unknown is not None and len(self.unknown) != 1
        chars = self.itos[:-1] if multi else self.itos
        return {"type": self.TYPE, "version": FORMAT_VERSION, "chars": list(chars), "unknown": self.unknown}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        """Inverse of :meth:`to_dict`."""
        cls.check_type(data)
        if not isinstance(data.get("chars"), list):
            raise ValueError("the tokenizer's 'chars' are missing or not a list of characters")
        return cls(data["chars"], unknown=data.get("unknown"))

    def to_hf(self) -> tokenizers.Tokenizer:
        """A Hugging Face tokenizer with the same ids: each character is a piece, looked up in a
        ``WordLevel`` vocabulary (:func:`course_lib.tokenizers.hf_export.char_to_hf`)."""
        return char_to_hf(self)

    @classmethod
    def from_hf_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        """Rebuild from the parsed ``tokenizer.json`` that :meth:`save_hf` writes."""
        return cls(*char_from_hf_dict(data))

    def __repr__(self) -> str:
        shown = "".join(self.itos[:40]).encode("unicode_escape").decode("ascii")
        more = "..." if len(self.itos) > 40 else ""
        return f"CharTokenizer(vocab_size={self.vocab_size}, chars='{shown}{more}', unknown={self.unknown!r})"
