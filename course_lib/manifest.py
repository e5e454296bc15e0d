"""Day 21: checking a checkpoint's manifest before anything is allocated or compiled from it.

``meta.json`` is data read from a file, and it decides how large a model is built and
which regex the tokenizer compiles. :func:`course_lib.checkpoint.load_checkpoint` checks it
first, with the functions here:

- every size in the model config is capped (:data:`LIMITS`), and the parameter count
  computed from a GPT config (:func:`parameter_count`, plus its position tables) must stay
  under :data:`MAX_PARAMETERS`, before a single tensor exists;
- a stored course tokenizer may only use a split pattern the course knows (``"gpt2"``,
  ``"gpt4"`` or none): a regex from a file is never compiled, since one such as
  ``(a|aa)+c`` takes exponential time on a prompt of 40 ``a``;
- the tokenizer's vocabulary size must equal the model's ``vocab_size``;
- a weights file that safetensors cannot read, or weights that are NaN or infinite,
  are refused with a :class:`CheckpointError` that names the file and says what to do.

>>> from course_lib.model import GPTConfig   # by hand: tokens 65*128 + positions 256*128
>>> cfg = GPTConfig.classic(vocab_size=65, n_layer=4, n_head=4, n_embd=128, block_size=256)
>>> parameter_count(cfg)                      # + 4 * (66,048 + 131,712 + 512) + 256 (final norm)
834432
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError

from course_lib.tokenizers.registry import TOKENIZER_TYPES, from_dict

if TYPE_CHECKING:
    from course_lib.model import GPTConfig
    from course_lib.tokenizers import Tokenizer

MAX_MANIFEST_BYTES = 64 << 20  # 64 MiB; GPT-2's 50k-merge tokenizer is about 1 MB of JSON
MAX_PARAMETERS = 2_000_000_000  # GPT-2 XL has 1.5e9, Llama 3.2 1B 1.24e9: 8 GB of float32 weights
LIMITS = {  # the largest value of each config field that the course loads
    "vocab_size": 1 << 20,  # 1,048,576; the largest published vocabularies are ~262k (Gemma 3)
    "n_embd": 1 << 14,  # 16,384, the width of Llama 3.1 405B
    "n_layer": 256,  # Llama 3.1 405B has 126 blocks
    "n_head": 256,  # Llama 3.1 405B has 128 heads
    "n_kv_head": 256,
    "block_size": 1 << 17,  # 131,072 positions: Llama 3.1/3.2's context
    "intermediate_size": 1 << 17,  # Llama 3.1 405B's MLP is 53,248 wide
}
TOKENIZER_KINDS = tuple(TOKENIZER_TYPES)  # "course_lib.CharTokenizer", "course_lib.BPETokenizer"
_WHAT_TO_DO = "Re-train the model, re-download the checkpoint, or pick another one (list_checkpoints(OUT))."


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete, corrupt, or does not fit the model it is loaded into."""


# ---------------------------------------------------------------- the manifest itself
def check_structure(meta: Any, manifest: Path) -> dict[str, Any]:
    """``meta`` must be a dict with an int ``step`` and a ``files`` table of ``{bytes, sha256}``."""
    if not isinstance(meta, dict) or "step" not in meta or "files" not in meta:
        raise CheckpointError(f"{manifest} is not a course_lib checkpoint manifest (no 'step' or 'files').")
    files, aliases = meta["files"], meta.get("aliases", {})
    well_formed = (
        isinstance(meta["step"], int) and not isinstance(meta["step"], bool)
        and isinstance(files, dict) and "model.safetensors" in files
        and all(isinstance(e, dict) and isinstance(e.get("bytes"), int) and isinstance(e.get("sha256"), str)
                for e in files.values())
        and isinstance(aliases, dict) and all(isinstance(v, str) for v in aliases.values())
    )  # fmt: skip
    if not well_formed:
        raise CheckpointError(f"{manifest} is malformed: it needs an integer 'step', a 'files' table listing "
                              "model.safetensors with its 'bytes' and 'sha256', and string 'aliases'. " + _WHAT_TO_DO)
    return meta


# ---------------------------------------------------------------- sizes
def parameter_count(cfg: GPTConfig) -> int:
    """Parameters of ``GPT(cfg)`` computed from the config alone (a tied lm_head counted once).

    Per block: attention ``C*(H + 2*KV + H)*hd`` (q, k, v, o), the MLP ``2*C*F`` (GELU) or
    ``3*C*F`` (SwiGLU), two norms of ``C``; plus biases when ``cfg.bias``.
    """
    C, F, hd = cfg.n_embd, cfg.ffn_dim, cfg.head_dim
    H, KV, bias = cfg.n_head, cfg.kv_heads, int(cfg.bias)
    attn = C * (2 * H + 2 * KV) * hd + bias * ((H + 2 * KV) * hd + C)
    mlp = (2 * C * F + bias * (F + C)) if cfg.mlp == "gelu" else (3 * C * F + bias * (2 * F + C))
    norm = C * (2 if cfg.norm == "layernorm" and cfg.bias else 1)  # LayerNorm's bias; RMSNorm has none
    positions = cfg.block_size * C if cfg.pos_encoding == "learned" else 0
    lm_head = 0 if cfg.tie_weights else cfg.vocab_size * C
    return cfg.vocab_size * C + positions + cfg.n_layer * (attn + mlp + 2 * norm) + norm + lm_head


def _position_tables(cfg: GPTConfig) -> int:
    """Entries of the fixed tables GPT(cfg) also allocates: sinusoidal (T, C) or RoPE cos/sin (T, hd) each."""
    if cfg.pos_encoding == "sinusoidal":
        return cfg.block_size * cfg.n_embd
    return 2 * cfg.block_size * cfg.head_dim if cfg.pos_encoding == "rope" else 0


def check_model_config(cfg: Any, where: Path, *, gpt: bool) -> None:
    """Refuse a stored model config whose sizes exceed :data:`LIMITS` or :data:`MAX_PARAMETERS`.

    ``gpt=True`` (the model will be rebuilt as ``GPT(GPTConfig.from_dict(cfg))``) also
    requires ``cfg`` to be a valid GPTConfig.
    """
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{where}: 'model_config' is a {type(cfg).__name__}, not a JSON object. " + _WHAT_TO_DO)
    for key, cap in LIMITS.items():
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= cap):
            raise CheckpointError(
                f"{where}: model_config {key}={value!r} is outside 1..{cap:,}, the largest the course loads, so "
                f"nothing was built from it. The manifest is damaged or not from the course. {_WHAT_TO_DO}")
    from course_lib.model import GPTConfig

    try:
        config = GPTConfig.from_dict(cfg)
    except (ValueError, TypeError) as err:
        if gpt:
            raise CheckpointError(f"{where}: model_config is not a valid GPTConfig ({err}). Pass "
                                  "model_factory=... to rebuild another kind of model. " + _WHAT_TO_DO) from None
        return
    total = parameter_count(config) + _position_tables(config)
    if total > MAX_PARAMETERS:
        raise CheckpointError(
            f"{where}: model_config describes a model of {total:,} parameters (position tables included), "
            f"more than the course loads ({MAX_PARAMETERS:,}: 8 GB of float32 weights), so nothing was "
            f"allocated. The manifest is damaged or not from the course. {_WHAT_TO_DO}")


# ---------------------------------------------------------------- the tokenizer
def known_pattern(pattern: Any, where: Path) -> str | None:
    """A stored split pattern -> the regex to use; only ``None``, the names and the exact known regexes pass.

    >>> known_pattern("gpt2", Path("meta.json"))[:12]
    "'s|'t|'re|'v"
    """
    from course_lib.tokenizers.patterns import NAMED_PATTERNS

    if pattern is None or pattern in NAMED_PATTERNS.values():
        return pattern
    if isinstance(pattern, str) and pattern in NAMED_PATTERNS:
        return NAMED_PATTERNS[pattern]
    shown = repr(pattern) if len(repr(pattern)) <= 80 else repr(pattern)[:77] + "..."
    names = ", ".join(repr(n) for n in NAMED_PATTERNS)
    raise CheckpointError(
        f"{where}: the tokenizer's split pattern {shown} is not one the course knows, and a regex read from "
        f"a file is never compiled (a crafted one can make encoding hang). Known patterns: {names} (or the exact "
        "regexes in course_lib.tokenizers.patterns), or None for no split. Re-train the tokenizer with one of "
        "them, or pick another checkpoint.")


def is_course_tokenizer(data: Any) -> bool:
    """True for a tokenizer stored by the course (``tok.to_dict()``, with its ``type``)."""
    return isinstance(data, dict) and data.get("type") in TOKENIZER_KINDS


def tokenizer_from_manifest(data: Any, where: Path, vocab_size: int | None = None) -> Tokenizer:
    """Rebuild the course tokenizer stored in a manifest, after checking it.

    Refuses another kind of tokenizer, a split pattern outside the known ones, more
    entries than ``LIMITS["vocab_size"]``, a malformed entry, and (when ``vocab_size`` is
    given) a vocabulary size other than the model's.
    """
    if not is_course_tokenizer(data):
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{where}: the stored tokenizer has type {kind!r}; the course reads "
                              f"{', '.join(TOKENIZER_KINDS)}. Re-train with python -m course_lib train.")
    if data["type"] == "course_lib.ChatTokenizer":  # a base tokenizer, checked the same way, and special tokens
        specials = data.get("special_tokens")
        if not isinstance(specials, list) or not 0 < len(specials) <= 64 or not all(
                isinstance(s, str) and 0 < len(s) <= 64 for s in specials):  # fmt: skip
            raise CheckpointError(f"{where}: the stored chat tokenizer's special tokens are not a list of at most "
                                  "64 short strings. " + _WHAT_TO_DO)  # fmt: skip
        base = tokenizer_from_manifest(data.get("base"), where)
        checked = {**data, "base": base.to_dict()}
        return _rebuilt(checked, where, vocab_size)
    is_bpe = data["type"] == "course_lib.BPETokenizer"
    field = "merges" if is_bpe else "chars"
    entries = data.get(field)
    if not isinstance(entries, list) or len(entries) > LIMITS["vocab_size"]:
        raise CheckpointError(f"{where}: the stored tokenizer's {field} are "
                              f"not a list of at most {LIMITS['vocab_size']:,} entries. " + _WHAT_TO_DO)
    checked = dict(data)
    if is_bpe:
        checked["pattern"] = known_pattern(data.get("pattern"), where)
    return _rebuilt(checked, where, vocab_size)


def _rebuilt(checked: dict[str, Any], where: Path, vocab_size: int | None) -> Tokenizer:
    """The tokenizer of a checked dict; malformed or of the wrong size: a CheckpointError."""
    try:
        tok = from_dict(checked)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{where}: the stored tokenizer is malformed ({err}). " + _WHAT_TO_DO) from None
    if vocab_size is not None and tok.vocab_size != vocab_size:
        raise CheckpointError(
            f"{where}: the stored tokenizer has {tok.vocab_size:,} tokens but the model's vocab_size is "
            f"{vocab_size:,}, so ids would decode to the wrong text or not at all. The checkpoint mixes a "
            f"model and a tokenizer from different runs. {_WHAT_TO_DO}")
    return tok


# ---------------------------------------------------------------- the weights
def read_safetensors(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    """``safetensors.torch.load(data)``; a file it cannot read becomes a :class:`CheckpointError`."""
    import safetensors.torch

    try:
        return safetensors.torch.load(data)
    except SafetensorError as err:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({err}): it is truncated, damaged, or was written by "
            "another program (pickle and torch.save files are refused, never unpickled). " + _WHAT_TO_DO) from None


def check_finite(weights: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse weights holding NaN or infinity (a run that diverged), naming the first tensors."""
    bad = [name for name, t in weights.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CheckpointError(
            f"{path} holds weights that are NaN or infinite ({', '.join(bad[:3])}{more}): the run that saved it "
            "diverged, and sampling from it would fail. Load an earlier checkpoint (list_checkpoints(OUT)), or "
            "re-train with a lower learning rate or gradient clipping.")
