"""Day 17: reading any course tokenizer back: the stored ``"type"`` picks the class.

>>> from course_lib.tokenizers import CharTokenizer
>>> data = CharTokenizer.from_text("hello").to_dict()
>>> data
{'type': 'course_lib.CharTokenizer', 'version': 1, 'chars': ['e', 'h', 'l', 'o'], 'unknown': None}
>>> from_dict(data).encode("hole")
[1, 3, 2, 0]

:func:`load` does the same for a file: the course's own format (``tok.save``) by its
``"type"``, Hugging Face's ``tokenizer.json`` (``tok.save_hf``) by its model.
"""

from __future__ import annotations

import os
from typing import Any

from course_lib.tokenizers.base import Tokenizer, read_json
from course_lib.tokenizers.bpe import BPETokenizer
from course_lib.tokenizers.char import CharTokenizer
from course_lib.tokenizers.chat import ChatTokenizer

TOKENIZER_TYPES: dict[str, type[Tokenizer]] = {cls.TYPE: cls for cls in (CharTokenizer, BPETokenizer, ChatTokenizer)}
HF_MODELS: dict[str, type[Tokenizer]] = {"WordLevel": CharTokenizer, "BPE": BPETokenizer}  # what save_hf writes


def from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild the tokenizer that ``tok.to_dict()`` described, whatever its class."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in TOKENIZER_TYPES:
        what = f"type {kind!r}" if isinstance(data, dict) else f"a {type(data).__name__}, not a dict"
        if isinstance(data, dict) and "type" not in data:
            what = "no 'type'" + (" (it looks like Hugging Face's tokenizer.json: use load(path))" if "model" in data
                                  else "")
        raise ValueError(f"the tokenizer has {what}; the known types are {', '.join(TOKENIZER_TYPES)}: "
                         "pass a dict made by tok.to_dict()")
    return TOKENIZER_TYPES[kind].from_dict(data)


def load(path: str | os.PathLike[str]) -> Tokenizer:
    """Read a tokenizer file written by ``tok.save(path)`` or ``tok.save_hf(path)``, whatever its class."""
    data = read_json(path)
    if "model" not in data:
        try:
            return from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    model = data["model"].get("type") if isinstance(data["model"], dict) else None
    if model not in HF_MODELS:
        raise ValueError(f"{path} is a Hugging Face tokenizer with a {model} model; the course reads the "
                         f"{' and '.join(HF_MODELS)} models its tokenizers write: load it with "
                         "tokenizers.Tokenizer.from_file")
    return HF_MODELS[model].load(path)
