"""Day 17: the interface every course tokenizer shares, as a dict, as a file, and for Hugging Face.

A tokenizer turns text into a list of integer ids and back. Each one in the course
(characters, then byte-level BPE) offers the same things::

    tok.encode("hi")           # str -> list[int]
    tok.decode([7, 8])         # list[int] -> str
    tok.vocab_size             # how many ids exist
    tok.to_dict()              # the course's own format: a JSON-able dict with a "type"
    type(tok).from_dict(d)     # ... and back (course_lib.tokenizers.from_dict picks the class)
    tok.save("tok.json")       # to_dict() as a JSON file, written atomically
    type(tok).load("tok.json") # reads save()'s files and save_hf()'s
    tok.to_hf()                # a Hugging Face tokenizers.Tokenizer giving the same ids
    tok.save_hf("tokenizer.json")  # its tokenizer.json, for tokenizers.Tokenizer.from_file

``save`` always writes the course's format, whatever the file is called; Hugging Face's
format is written only by ``save_hf``.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from course_lib.atomic import atomic_write_text

if TYPE_CHECKING:
    import tokenizers

T = TypeVar("T", bound="Tokenizer")
FORMAT_VERSION = 1  # the "version" field of to_dict(); a file with a higher one needs a newer course_lib


class Tokenizer(ABC):
    """Base class: ``encode``, ``decode``, ``vocab_size``, ``to_dict``/``from_dict`` and ``to_hf``;
    ``save``, ``load`` and ``save_hf`` are built on them."""

    TYPE: ClassVar[str]  # the "type" field of to_dict(), e.g. "course_lib.CharTokenizer"

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Text -> token ids."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of distinct ids, special tokens included."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The course's own format: a JSON-able dict whose ``"type"`` names the class."""

    @classmethod
    @abstractmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Rebuild a tokenizer from :meth:`to_dict`'s dict."""
        raise NotImplementedError("call it on a tokenizer class, or use course_lib.tokenizers.from_dict(data)")

    @abstractmethod
    def to_hf(self) -> tokenizers.Tokenizer:
        """A Hugging Face ``tokenizers.Tokenizer`` whose ``encode(text).ids`` are ours."""

    @classmethod
    @abstractmethod
    def from_hf_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Rebuild a tokenizer from the parsed ``tokenizer.json`` that :meth:`save_hf` writes."""
        raise NotImplementedError("call it on a tokenizer class, or use course_lib.tokenizers.load(path)")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON (atomically) and return the path: always the course's format."""
        return write_json(path, self.to_dict())

    def save_hf(self, path: str | os.PathLike[str]) -> Path:
        """Write Hugging Face's ``tokenizer.json`` (atomically); ``tokenizers.Tokenizer.from_file`` reads it."""
        return atomic_write_text(path, self.to_hf().to_str(pretty=True) + "\n")

    @classmethod
    def load(cls: type[T], path: str | os.PathLike[str]) -> T:
        """Read a file written by :meth:`save` (the course's format) or by :meth:`save_hf`.

        ``Tokenizer.load(path)`` itself picks the class (:func:`course_lib.tokenizers.load`).
        """
        if cls is Tokenizer:
            from course_lib.tokenizers.registry import load

            return load(path)
        data = read_json(path)
        try:
            return cls.from_hf_dict(data) if "model" in data else cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    @classmethod
    def check_type(cls, data: Any) -> dict[str, Any]:
        """``data`` must be a dict of this class's ``type`` and a version this code reads."""
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        if kind != cls.TYPE:
            raise ValueError(f"the tokenizer holds {kind!r}, not a {cls.TYPE}: read it with "
                             "course_lib.tokenizers.from_dict(data) or .load(path), which pick the class")
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"the tokenizer's format version is {version!r}; this course_lib reads version "
                             f"{FORMAT_VERSION}: update course_lib, or save the tokenizer again with this one")
        return data


def bad_id(i: Any, vocab_size: int) -> ValueError:
    """The error for an id that ``decode`` cannot turn into text."""
    if not hasattr(i, "__index__"):
        return ValueError(f"id {i!r} is not an integer: pass a list of ints")
    return ValueError(f"id {int(i)} is outside this tokenizer's vocabulary of {vocab_size} tokens: "
                      f"ids run from 0 to {vocab_size - 1}")


def write_json(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Atomically write ``data`` as indented UTF-8 JSON (:func:`course_lib.atomic.atomic_write_text`)."""
    return atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a tokenizer's JSON object, with a clear error when there is none."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path}: save one first with tok.save(path)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a JSON tokenizer file ({err}): save one with tok.save(path)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, not a tokenizer: save one with tok.save(path)")
    return data
