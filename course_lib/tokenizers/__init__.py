"""Day 17: tokenizers — characters, and byte-level BPE trained from scratch.

>>> from course_lib.tokenizers import BPETokenizer, CharTokenizer
>>> text = "To be, or not to be, that is the question."
>>> CharTokenizer.from_text(text).vocab_size         # distinct characters
16
>>> bpe = BPETokenizer.train(text, vocab_size=270, pattern="gpt2", special_tokens=["<|endoftext|>"])
>>> bpe.decode(bpe.encode("To be, or not to be")) == "To be, or not to be"
True
>>> bpe.to_hf().encode("To be<|endoftext|>").ids == bpe.encode("To be<|endoftext|>", allowed_special="all")
True
>>> from_dict(bpe.to_dict()).merges == bpe.merges    # the dict's "type" picks the class
True
"""

from course_lib.tokenizers.base import Tokenizer
from course_lib.tokenizers.bpe import BPETokenizer
from course_lib.tokenizers.char import CharTokenizer, UnknownCharacterError
from course_lib.tokenizers.chat import ChatTokenizer
from course_lib.tokenizers.hf_export import bpe_to_hf, bytes_to_unicode, char_to_hf, token_from_str, token_to_str
from course_lib.tokenizers.patterns import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    resolve_pattern,
    split_special,
    split_text,
)
from course_lib.tokenizers.registry import TOKENIZER_TYPES, from_dict, load
from course_lib.tokenizers.train import BPETrainResult, get_stats, merge, train_bpe

__all__ = [
    "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN", "TOKENIZER_TYPES", "BPETokenizer", "BPETrainResult",
    "CharTokenizer", "ChatTokenizer", "Tokenizer", "bpe_to_hf", "bytes_to_unicode", "char_to_hf", "from_dict", "get_stats",
    "load", "merge", "resolve_pattern", "split_special", "split_text", "token_from_str", "token_to_str",
    "train_bpe", "UnknownCharacterError",
]  # fmt: skip
