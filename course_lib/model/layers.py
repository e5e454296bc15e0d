"""Day 21: the small layers a GPT block is built from: norms, MLPs and position encodings.

- Norms: ``nn.LayerNorm`` (GPT-2) and :class:`RMSNorm` (Llama), chosen by :func:`make_norm`.
- MLPs: :class:`MLP` (GELU, GPT-2) and :class:`SwiGLU` (Llama), chosen by :func:`make_mlp`.
- Positions: :func:`sinusoidal_positions` (added to the embeddings) and
  :class:`RotaryEmbedding` with :func:`apply_rotary` (rotates queries and keys).

The GELU uses the tanh approximation (GPT-2's ``gelu_new``) and RoPE uses Llama's
``rotate_half`` layout (first half of the head dims paired with the second half), so
weights from Hugging Face's GPT-2 and Llama copy over unchanged and give the same logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.model.config import GPTConfig


class RMSNorm(nn.Module):
    """Root-mean-square norm: ``x / sqrt(mean(x**2) + eps) * weight``.

    Unlike LayerNorm it subtracts no mean and has no bias. Computed in float32 and cast
    back, as Llama does, so bf16 activations do not lose the small ``eps``.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # (C,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., C) -> (..., C)
        x32 = x.float()
        rms_inv = torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., 1)
        return self.weight * (x32 * rms_inv).to(x.dtype)  # (..., C)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"


def make_norm(config: GPTConfig) -> nn.Module:
    """The norm named by ``config.norm``, over ``config.n_embd`` features."""
    if config.norm == "layernorm":
        return nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
    return RMSNorm(config.n_embd, eps=config.norm_eps)


class MLP(nn.Module):
    """GPT-2's feed-forward net: up_proj -> GELU(tanh) -> down_proj (c_fc / c_proj in GPT-2)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.up_proj = nn.Linear(config.n_embd, config.ffn_dim, bias=config.bias)
        self.act = nn.GELU(approximate="tanh")  # GPT-2's gelu_new
        self.down_proj = nn.Linear(config.ffn_dim, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        h = self.act(self.up_proj(x))  # (B, T, ffn_dim)
        return self.dropout(self.down_proj(h))  # (B, T, C)


class SwiGLU(nn.Module):
    """Llama's gated feed-forward net: down_proj(silu(gate_proj(x)) * up_proj(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.n_embd, config.ffn_dim, bias=config.bias)
        self.up_proj = nn.Linear(config.n_embd, config.ffn_dim, bias=config.bias)
        self.down_proj = nn.Linear(config.ffn_dim, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        h = F.silu(self.gate_proj(x)) * self.up_proj(x)  # (B, T, ffn_dim): the gate scales each unit
        return self.dropout(self.down_proj(h))  # (B, T, C)


def make_mlp(config: GPTConfig) -> nn.Module:
    """The MLP named by ``config.mlp``."""
    return MLP(config) if config.mlp == "gelu" else SwiGLU(config)


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """The fixed position table of "Attention Is All You Need", shape (n_positions, dim).

    ``PE[p, 2i] = sin(p / 10000**(2i/dim))`` and ``PE[p, 2i+1] = cos(p / 10000**(2i/dim))``.

    >>> sinusoidal_positions(2, 4)[1]
    tensor([0.8415, 0.5403, 0.0100, 0.9999])
    """
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]  # (P, 1)
    inv_freq = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim/2,)
    angles = pos * inv_freq  # (P, dim/2)
    table = torch.zeros(n_positions, dim)  # (P, dim)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table


class RotaryEmbedding(nn.Module):
    """Precomputed cos/sin tables for rotary position embeddings (RoPE).

    Head dim ``i`` (for ``i < hd/2``) and dim ``i + hd/2`` form a pair that is rotated by
    the angle ``position * theta**(-2i/hd)``: queries and keys then carry their position
    as a rotation, and their dot product depends only on the distance between them.
    """

    def __init__(self, head_dim: int, max_positions: int, theta: float = 10000.0) -> None:
        super().__init__()
        inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (hd/2,)
        angles = torch.arange(max_positions, dtype=torch.float32)[:, None] * inv_freq  # (P, hd/2)
        angles = torch.cat([angles, angles], dim=-1)  # (P, hd): dim i and i + hd/2 share an angle
        # not persistent: recomputed from the config, so checkpoints hold only learned weights
        self.register_buffer("cos", angles.cos(), persistent=False)  # (P, hd)
        self.register_buffer("sin", angles.sin(), persistent=False)  # (P, hd)

    def forward(self, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin for positions start..start+length-1, each of shape (length, hd)."""
        return self.cos[start : start + length], self.sin[start : start + length]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dim: a 90-degree turn of each pair."""
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (i, i + hd/2) pair of ``x`` (B, nh, T, hd) by the angles in cos/sin (T, hd)."""
    return x * cos + rotate_half(x) * sin  # (B, nh, T, hd)


def init_std_for(name: str, config: GPTConfig) -> float:
    """GPT-2 init: ``init_std``, divided by sqrt(2 * n_layer) for the two residual projections.

    Each block adds two outputs (attention's o_proj, the MLP's down_proj) to the residual
    stream; scaling them keeps its variance from growing with depth.
    """
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        return config.init_std / math.sqrt(2 * config.n_layer)
    return config.init_std
