"""Day 17: exporting our BPE to Hugging Face ``tokenizers`` (and reading it back).

Hugging Face stores byte-level tokens as *strings*: GPT-2's table maps each of the
256 bytes to a printable character (printable ASCII stays itself, space becomes
"Ġ", newline "Ċ"), so a token's bytes become a readable string:

>>> token_to_str(b" the\\n")
'ĠtheĊ'
>>> token_from_str("ĠtheĊ")
b' the\\n'

The exported pipeline mirrors ours step by step: special tokens are cut out first
(added tokens), then ``Split(pattern, "isolated")`` makes the same chunks, then
``ByteLevel(use_regex=False)`` spells each chunk's bytes with the table, then the BPE
model applies the merges by rank, exactly as :meth:`BPETokenizer.encode` does.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tokenizers

    from course_lib.tokenizers.bpe import BPETokenizer


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: byte -> a printable character (the 188 printable bytes map to
    themselves, the other 68 to the characters from U+0100 upwards, in order).

    >>> bytes_to_unicode()[ord("a")], bytes_to_unicode()[ord(" ")], bytes_to_unicode()[0]
    ('a', 'Ġ', 'Ā')
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse table: printable character -> byte."""
    return {ch: b for b, ch in bytes_to_unicode().items()}


def token_to_str(token: bytes) -> str:
    """Bytes -> GPT-2 spelling, e.g. ``b" t"`` -> ``"Ġt"``."""
    table = bytes_to_unicode()
    return "".join(table[x] for x in token)


def token_from_str(text: str) -> bytes:
    """GPT-2 spelling -> bytes, e.g. ``"Ġt"`` -> ``b" t"``."""
    table = unicode_to_bytes()
    try:
        return bytes(table[ch] for ch in text)
    except KeyError as err:
        raise ValueError(f"{text!r} is not a byte-level token: character {err} is not in GPT-2's table") from None


def hf_vocab(tok: BPETokenizer) -> dict[str, int]:
    """The model vocabulary Hugging Face sees: bytes and merged tokens, no special tokens."""
    special = set(tok.special_tokens.values())
    return {token_to_str(t): i for i, t in tok.vocab.items() if i not in special}


def to_hf(tok: BPETokenizer) -> tokenizers.Tokenizer:
    """Build a Hugging Face ``Tokenizer`` that encodes every string to the same ids as ``tok``.

    Decode with ``hf.decode(ids, skip_special_tokens=False)`` to keep special tokens.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    model = models.BPE(
        vocab=hf_vocab(tok),
        merges=[(token_to_str(a), token_to_str(b)) for a, b in tok.merges],
        ignore_merges=False,  # always apply merges, even when a whole chunk is a token
    )
    hf = Tokenizer(model)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if tok.pattern is None:
        hf.pre_tokenizer = byte_level
    else:
        split = pre_tokenizers.Split(Regex(tok.pattern), behavior="isolated", invert=False)
        hf.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    hf.decoder = decoders.ByteLevel()
    ordered = sorted(tok.special_tokens, key=tok.special_tokens.__getitem__)
    hf.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ordered])
    wrong = {s: hf.token_to_id(s) for s, i in tok.special_tokens.items() if hf.token_to_id(s) != i}
    if wrong:  # cannot happen with ids assigned by BPETokenizer; guards against edits
        raise ValueError(f"Hugging Face numbered special tokens {wrong}, expected {tok.special_tokens}")
    return hf


def from_hf_json(data: dict[str, Any]) -> tuple[list[tuple[bytes, bytes]], str | None, dict[str, int]]:
    """Merges, pattern and special tokens from a ``tokenizer.json`` written by :func:`to_hf`."""
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise ValueError("this tokenizer.json has no BPE model: load it with tokenizers.Tokenizer.from_file")
    merges = []
    for merge in model.get("merges", []):
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        merges.append((token_from_str(left), token_from_str(right)))
    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    pattern = None
    if kinds == ["Split", "ByteLevel"] and "Regex" in steps[0].get("pattern", {}):
        pattern = steps[0]["pattern"]["Regex"]
    elif kinds != ["ByteLevel"] or steps[-1].get("use_regex", False):
        raise ValueError(
            f"pre-tokenizer {kinds} is not the Split + ByteLevel pipeline that BPETokenizer.to_hf "
            "writes: load this file with tokenizers.Tokenizer.from_file instead"
        )
    special = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t.get("special")}
    return merges, pattern, special
