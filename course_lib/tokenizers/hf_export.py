"""Day 17: exporting our tokenizers to Hugging Face ``tokenizers`` (and reading them back).

Hugging Face stores byte-level tokens as *strings*: GPT-2's table maps each of the
256 bytes to a printable character (printable ASCII stays itself, space becomes
"Ġ", newline "Ċ"), so a token's bytes become a readable string:

>>> token_to_str(b" the\\n")
'ĠtheĊ'
>>> token_from_str("ĠtheĊ")
b' the\\n'

The BPE export mirrors our pipeline step by step: special tokens are cut out first
(added tokens), then ``Split(pattern, "isolated")`` makes the same chunks, then
``ByteLevel(use_regex=False)`` spells each chunk's bytes with the table, then the BPE
model applies the merges by rank, exactly as :meth:`BPETokenizer.encode` does.

The character tokenizer needs no merges: ``Split`` cuts the text into single characters
(the regex ``[\\s\\S]`` matches any one, newlines included), a ``WordLevel`` model looks
each one up in the vocabulary (its ``unk_token`` is the course's ``unknown``), and the
``Fuse`` decoder joins the pieces with nothing between them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tokenizers

    from course_lib.tokenizers.bpe import BPETokenizer
    from course_lib.tokenizers.char import CharTokenizer

CHAR_SPLIT = r"[\s\S]"  # any single character, newlines included (Oniguruma's "." skips them)
_NO_UNKNOWN = "<unk>"  # WordLevel needs an unk_token; absent from the vocabulary, unseen characters fail


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


def bpe_to_hf(tok: BPETokenizer) -> tokenizers.Tokenizer:
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


def bpe_from_hf_dict(data: dict[str, Any]) -> tuple[list[tuple[bytes, bytes]], str | None, dict[str, int]]:
    """Merges, pattern and special tokens from a ``tokenizer.json`` written by :func:`bpe_to_hf`."""
    _check_no_normalizer(data)
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


def char_to_hf(tok: CharTokenizer) -> tokenizers.Tokenizer:
    """A Hugging Face ``Tokenizer`` that encodes every string to the same ids as ``tok``.

    A character outside the vocabulary becomes ``tok.unknown``'s id when there is one;
    without it, Hugging Face raises (as ``tok.encode`` does).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    unk = _NO_UNKNOWN if tok.unknown is None else tok.unknown
    hf = Tokenizer(models.WordLevel(vocab=dict(tok.stoi), unk_token=unk))
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(CHAR_SPLIT), behavior="isolated", invert=False)
    hf.decoder = decoders.Fuse()  # join the characters as they are, no spaces between them
    return hf


def char_from_hf_dict(data: dict[str, Any]) -> tuple[list[str], str | None]:
    """Characters (by id) and the unknown token from a ``tokenizer.json`` written by :func:`char_to_hf`."""
    _check_no_normalizer(data)
    model = data.get("model") or {}
    vocab = model.get("vocab")
    if model.get("type") != "WordLevel" or not isinstance(vocab, dict):
        raise ValueError("this tokenizer.json has no WordLevel model, so it is not a CharTokenizer's: "
                         "load it with tokenizers.Tokenizer.from_file")
    pre = data.get("pre_tokenizer") or {}
    if pre.get("type") != "Split" or pre.get("pattern") != {"Regex": CHAR_SPLIT} or pre.get("invert"):
        raise ValueError("this tokenizer.json does not split the text into single characters as "
                         "CharTokenizer.to_hf does: load it with tokenizers.Tokenizer.from_file")
    itos = sorted(vocab, key=vocab.__getitem__)
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError("this tokenizer.json's ids are not 0..n-1: load it with tokenizers.Tokenizer.from_file")
    unknown = model.get("unk_token")
    if unknown not in vocab:
        return itos, None
    if len(unknown) != 1:  # CharTokenizer gives a multi-character unknown token the last id
        if itos[-1] != unknown:
            raise ValueError(f"the unknown token {unknown!r} should have the last id: "
                             "load this file with tokenizers.Tokenizer.from_file")
        itos = itos[:-1]
    return itos, unknown


def _check_no_normalizer(data: dict[str, Any]) -> None:
    if data.get("normalizer") is not None:
        raise ValueError("this tokenizer.json normalizes the text first, which course tokenizers never do: "
                         "load it with tokenizers.Tokenizer.from_file")
