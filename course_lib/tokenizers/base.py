"""Day 17: the interface every course tokenizer shares, and atomic JSON writes.

A tokenizer turns text into a list of integer ids and back. Each one in the course
(characters, then byte-level BPE) offers the same five things::

    tok.encode("hi")        # str -> list[int]
    tok.decode([7, 8])      # list[int] -> str
    tok.vocab_size          # how many ids exist
    tok.save("tok.json")    # JSON, written atomically
    type(tok).load("tok.json")
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from course_lib.atomic import atomic_write_text


class Tokenizer(ABC):
    """Base class: ``encode``, ``decode``, ``vocab_size``, ``save`` and ``load``."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Text -> token ids."""

    @abstractmethod
    def decode(self, ids: list[int]) -> str:
        """Token ids -> text."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of distinct ids, special tokens included."""

    @abstractmethod
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer to ``path`` (atomically) and return the path."""

    @classmethod
    @abstractmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`."""


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
