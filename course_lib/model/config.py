"""Day 21: GPTConfig, every choice that shapes a GPT, in one validated dataclass.

Two presets cover the two families the course compares:

    GPTConfig.classic(vocab_size=65)   # GPT-2: learned positions, LayerNorm, GELU, biases
    GPTConfig.modern(vocab_size=65)    # Llama: RoPE, RMSNorm, SwiGLU, no biases, GQA

``n_kv_head`` and ``intermediate_size`` may stay ``None``; the properties ``kv_heads``
and ``ffn_dim`` give the values actually used, so ``dataclasses.replace(cfg, n_embd=256)``
recomputes them instead of keeping stale numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from course_lib.config import from_dict_strict

POS_ENCODINGS = ("learned", "sinusoidal", "rope")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")


@dataclass
class GPTConfig:
    vocab_size: int = 65  # 65 characters in tiny Shakespeare; GPT-2's BPE has 50257
    block_size: int = 256  # longest context the model sees (positions 0..block_size-1)
    n_layer: int = 4  # transformer blocks stacked; GPT-2 small has 12
    n_head: int = 4  # attention heads per block; each sees n_embd // n_head dims
    n_kv_head: int | None = None  # key/value heads (GQA); None = n_head, i.e. plain multi-head
    n_embd: int = 128  # width of the residual stream; GPT-2 small has 768
    dropout: float = 0.0  # 0 for short runs on small data; try 0.1-0.2 when overfitting
    bias: bool = True  # GPT-2 has biases in Linear and LayerNorm; Llama drops them
    pos_encoding: str = "learned"  # "learned" (GPT-2), "sinusoidal" (2017 paper) or "rope" (Llama)
    rope_theta: float = 10000.0  # RoPE base: larger spreads frequencies for long contexts
    norm: str = "layernorm"  # "layernorm" (GPT-2) or "rmsnorm" (Llama: no mean, no bias)
    norm_eps: float = 1e-5  # added inside the square root; 1e-5 for GPT-2 and Llama 2
    mlp: str = "gelu"  # "gelu" (GPT-2) or "swiglu" (Llama: gated, three matrices)
    intermediate_size: int | None = None  # MLP hidden width; None = 4*n_embd (gelu) or ~8/3*n_embd (swiglu)
    logit_softcap: float | None = None  # None, or cap*tanh(logits/cap) as in Gemma 2 (keeps logits bounded)
    tie_weights: bool = True  # lm_head shares embed_tokens' matrix: fewer parameters, as GPT-2
    init_std: float = 0.02  # std of the normal init (GPT-2); residual outputs get /sqrt(2*n_layer)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            _check_positive_int(name, getattr(self, name))
        for name in ("n_kv_head", "intermediate_size"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        _check_choice("pos_encoding", self.pos_encoding, POS_ENCODINGS)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("mlp", self.mlp, MLPS)
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}: every head gets "
                f"n_embd // n_head dims, so pick n_embd as a multiple of n_head (e.g. {self.n_head * 32})."
            )
        if self.n_head % self.kv_heads != 0:
            raise ValueError(
                f"n_head={self.n_head} is not a multiple of n_kv_head={self.n_kv_head}: in grouped-query "
                "attention each key/value head serves the same number of query heads."
            )
        if self.pos_encoding == "rope" and self.head_dim % 2 != 0:
            raise ValueError(
                f"RoPE rotates pairs of dims, but head_dim = n_embd // n_head = {self.head_dim} is odd: "
                "choose n_embd and n_head so the head dim is even."
            )
        if self.pos_encoding == "sinusoidal" and self.n_embd % 2 != 0:
            raise ValueError(f"sinusoidal positions pair sin and cos dims: n_embd={self.n_embd} must be even.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        for name in ("rope_theta", "norm_eps", "init_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.logit_softcap is not None and not self.logit_softcap > 0:
            raise ValueError(f"logit_softcap must be None or a positive number, got {self.logit_softcap}.")

    # --- values derived from the fields -------------------------------------------
    @property
    def head_dim(self) -> int:
        """Dims per attention head: n_embd // n_head."""
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        """Key/value heads actually used: n_kv_head, or n_head when it is None."""
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def ffn_dim(self) -> int:
        """MLP hidden width actually used.

        GELU: 4 * n_embd. SwiGLU has three matrices instead of two, so Llama shrinks the
        width to 2/3 of 4 * n_embd (same parameter count) and rounds it up to a multiple
        of 64 so the matrices tile well on GPUs (Llama rounds to 256 at width 4096).
        """
        if self.intermediate_size is not None:
            return self.intermediate_size
        if self.mlp == "gelu":
            return 4 * self.n_embd
        hidden = int(8 * self.n_embd / 3)
        return 64 * ((hidden + 63) // 64)

    # --- presets ------------------------------------------------------------------
    @classmethod
    def classic(cls, **overrides: Any) -> GPTConfig:
        """GPT-2 layout: learned positions, LayerNorm, GELU MLP, biases, multi-head, tied lm_head."""
        settings: dict[str, Any] = dict(
            pos_encoding="learned", norm="layernorm", mlp="gelu", bias=True, n_kv_head=None, tie_weights=True
        )
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def modern(cls, **overrides: Any) -> GPTConfig:
        """Llama layout: RoPE, RMSNorm, SwiGLU, no biases, grouped-query attention.

        n_kv_head defaults to n_head // 2 when n_head is even (two query heads share each
        key/value head), else to n_head. The lm_head stays tied to embed_tokens, as in
        Llama 3.2 1B/3B and Gemma: in a small model the vocabulary matrix is a large share
        of all parameters. Pass ``tie_weights=False`` for the Llama 2 layout.
        """
        settings: dict[str, Any] = dict(
            pos_encoding="rope", norm="rmsnorm", mlp="swiglu", bias=False, tie_weights=True
        )
        settings.update(overrides)
        if "n_kv_head" not in overrides:
            n_head = settings.get("n_head", cls.n_head)
            settings["n_kv_head"] = n_head // 2 if n_head >= 2 and n_head % 2 == 0 else None
        return cls(**settings)

    # --- JSON metadata ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise a ValueError naming the valid ones."""
        return from_dict_strict(cls, data, "GPTConfig")


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"Unknown {name} {value!r}: choose one of {', '.join(repr(v) for v in valid)}.")
