"""Part 3: a tokenizer grown by special tokens, keeping every id it had.

A pre-trained model knows its tokenizer's ids; a chat template needs a few more tokens
(who speaks, where a turn ends). :class:`ChatTokenizer` wraps any course tokenizer and
appends the new tokens after its last id, so every old id means what it meant:

>>> from course_lib.tokenizers import CharTokenizer
>>> base = CharTokenizer.from_text("hello")
>>> tok = ChatTokenizer(base, ["<|user|>", "<|end|>"])
>>> tok.vocab_size, tok.special_tokens
(6, {'<|user|>': 4, '<|end|>': 5})
>>> tok.encode("<|user|>hole<|end|>", allowed_special="all")
[4, 1, 3, 2, 0, 5]
>>> tok.decode([4, 1, 0, 5])
'<|user|>he<|end|>'

As with the course's BPE (and tiktoken), a special token's string in ordinary text is
refused unless the caller allows it: text typed by a user should not be able to end a
turn by spelling ``<|end|>``. Chat code builds the ids of a conversation piece by piece
(:meth:`encode_ordinary` for what people wrote, :meth:`special_id` for the markers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from course_lib.tokenizers.base import FORMAT_VERSION, Tokenizer, bad_id
from course_lib.tokenizers.patterns import split_special

if TYPE_CHECKING:
    import tokenizers


class ChatTokenizer(Tokenizer):
    """``base``'s ids unchanged, then one id per special token, in the order given."""

    TYPE = "course_lib.ChatTokenizer"

    def __init__(self, base: Tokenizer, special_tokens: Sequence[str]) -> None:
        if isinstance(base, ChatTokenizer):
            raise ValueError("the base is already a ChatTokenizer: add the tokens to its own base instead")
        names = list(special_tokens)
        if isinstance(special_tokens, str) or not names or not all(isinstance(s, str) and s for s in names):
            raise ValueError(f"special_tokens={special_tokens!r}: pass a list of non-empty strings "
                             "such as ['<|user|>', '<|assistant|>', '<|end|>']")  # fmt: skip
        if len(set(names)) != len(names):
            raise ValueError(f"special_tokens {names} contain a duplicate: list each once")
        own = getattr(base, "special_tokens", {}) or {}
        clash = [s for s in names if s in own]
        if clash:
            raise ValueError(f"{clash} are already special tokens of the base tokenizer: leave them out")
        self.base = base
        self.base_vocab_size = base.vocab_size
        self.special_tokens: dict[str, int] = {s: base.vocab_size + i for i, s in enumerate(names)}
        self._string_of = {i: s for s, i in self.special_tokens.items()}

    def special_id(self, token: str) -> int:
        """The id of one special token; a KeyError naming the known ones otherwise."""
        try:
            return self.special_tokens[token]
        except KeyError:
            raise KeyError(f"{token!r} is not a special token of this tokenizer: use one of "
                           f"{sorted(self.special_tokens)}") from None  # fmt: skip

    # ---- encoding and decoding ----------------------------------------------------
    def encode(self, text: str, *, allowed_special: Literal["all"] | Iterable[str] = ()) -> list[int]:
        """Text -> ids; a special token's string is its id only where ``allowed_special`` allows it."""
        if isinstance(allowed_special, str):
            if allowed_special != "all":
                raise ValueError(f"allowed_special={allowed_special!r}: pass 'all' or a set of special tokens")
            allowed = set(self.special_tokens)
        else:
            allowed = set(allowed_special)
            unknown = allowed - self.special_tokens.keys()
            if unknown:
                raise ValueError(f"{sorted(unknown)} are not special tokens: use {sorted(self.special_tokens)}")
        ids: list[int] = []
        position = 0
        for piece, special_id in split_special(text, self.special_tokens):
            if special_id is None:
                ids.extend(self.encode_ordinary(piece))
            elif piece in allowed:
                ids.append(special_id)
            else:
                raise ValueError(f"the text holds the special token {piece!r} at position {position}: pass "
                                 f"allowed_special={{{piece!r}}} (or 'all') to encode it as its id {special_id}, "
                                 "or leave it out of text that a person wrote")  # fmt: skip
            position += len(piece)
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """The base tokenizer's ids for ``text``; special-token strings (the base's own too) get no special meaning."""
        plain = getattr(self.base, "encode_ordinary", None)  # a BPE base may have special tokens of its own
        return plain(text) if plain is not None else self.base.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        """Base ids through the base tokenizer (in runs, so BPE bytes join up), specials as their strings."""
        out: list[str] = []
        run: list[int] = []
        n = self.vocab_size
        for i in ids:
            if not hasattr(i, "__index__"):
                raise bad_id(i, n)
            j = int(i)
            if not 0 <= j < n:
                raise bad_id(j, n)
            if j < self.base_vocab_size:
                run.append(j)
                continue
            if run:
                out.append(self.base.decode(run))
                run = []
            out.append(self._string_of[j])
        if run:
            out.append(self.base.decode(run))
        return "".join(out)

    @property
    def vocab_size(self) -> int:
        return self.base_vocab_size + len(self.special_tokens)

    # ---- as a dict, a file, and for Hugging Face ---------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"type", "version", "base", "special_tokens"}``; ``base`` is the base tokenizer's dict."""
        return {"type": self.TYPE, "version": FORMAT_VERSION, "base": self.base.to_dict(),
                "special_tokens": list(self.special_tokens)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatTokenizer:
        cls.check_type(data)
        from course_lib.tokenizers.registry import from_dict

        if not isinstance(data.get("base"), dict) or not isinstance(data.get("special_tokens"), list):
            raise ValueError("a ChatTokenizer's dict needs 'base' (a tokenizer dict) and 'special_tokens' (a list)")
        return cls(from_dict(data["base"]), data["special_tokens"])

    def to_hf(self) -> tokenizers.Tokenizer:
        """The base's Hugging Face tokenizer with the special tokens added (they take the next ids)."""
        from tokenizers import AddedToken

        hf = self.base.to_hf()
        hf.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in self.special_tokens])
        got = {s: hf.token_to_id(s) for s in self.special_tokens}
        if got != self.special_tokens:  # a base whose Hugging Face vocabulary has gaps
            raise ValueError(f"Hugging Face gave the special tokens the ids {got}, not {self.special_tokens}")
        return hf

    @classmethod
    def from_hf_dict(cls, data: dict[str, Any]) -> ChatTokenizer:
        raise ValueError("a ChatTokenizer is saved in the course's format (tok.save): its base cannot be "
                         "told apart from its special tokens in a tokenizer.json")  # fmt: skip

    def __repr__(self) -> str:
        return f"ChatTokenizer({self.base!r}, special_tokens={list(self.special_tokens)})"
