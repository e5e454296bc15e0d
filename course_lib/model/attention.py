"""Day 20: causal self-attention with multi-head, grouped-query (GQA) and RoPE options.

Two paths compute the same thing:

- the fast one calls ``torch.nn.functional.scaled_dot_product_attention`` (SDPA), which
  never stores the (T, T) attention matrix;
- the explicit one writes out ``softmax(q @ k.T / sqrt(hd) + mask) @ v`` and returns the
  weights, used when they are asked for (``return_attention=True``) to look inside.

Either way the module returns a pair, ``(y, weights)``: weights (B, n_head, T, S) from the
explicit path, None from the fast one. With a KV-cache (see
:class:`course_lib.model.kv_cache.KVCache`) the new tokens' keys and values are written into
the cache and the queries attend to everything stored so far.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.model.config import GPTConfig
from course_lib.model.kv_cache import KVCache
from course_lib.model.layers import apply_rotary


def causal_mask(t_query: int, t_key: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean mask (t_query, t_key), True where attention is allowed.

    The queries are the last ``t_query`` of ``t_key`` positions, so query ``i`` sits at
    position ``t_key - t_query + i`` and may see keys up to and including that position.

    >>> causal_mask(2, 3).int()
    tensor([[1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    offset = t_key - t_query
    rows = torch.arange(t_query, device=device)[:, None]  # (Tq, 1)
    cols = torch.arange(t_key, device=device)[None, :]  # (1, Tk)
    return cols <= rows + offset  # (Tq, Tk)


class CausalSelfAttention(nn.Module):
    """Each position attends to itself and the positions before it.

    q_proj makes n_head query heads; k_proj and v_proj make n_kv_head key/value heads
    (fewer with GQA). Each key/value head is shared by n_head // n_kv_head query heads.
    """

    def __init__(self, config: GPTConfig, layer_idx: int = 0) -> None:
        super().__init__()
        self.layer_idx = layer_idx  # which slot of a KV-cache this layer writes to
        self.n_head = config.n_head
        self.n_kv_head = config.kv_heads
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        C, hd = config.n_embd, config.head_dim
        self.q_proj = nn.Linear(C, config.n_head * hd, bias=config.bias)
        self.k_proj = nn.Linear(C, self.n_kv_head * hd, bias=config.bias)
        self.v_proj = nn.Linear(C, self.n_kv_head * hd, bias=config.bias)
        self.o_proj = nn.Linear(config.n_head * hd, C, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: KVCache | None = None,
        *,
        return_attention: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, C) -> (y (B, T, C), weights (B, nh, T, S) if return_attention else None).

        ``rope``: (cos, sin), each (T, hd), for the positions of x (RoPE models only).
        S is the number of keys: those already in ``kv_cache`` plus the T new ones. GQA
        key/value heads are expanded, so the weights always have n_head heads.
        """
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        if rope is not None:
            cos, sin = rope  # (T, hd) each
            q = apply_rotary(q, cos, sin)  # (B, nh, T, hd)
            k = apply_rotary(k, cos, sin)  # (B, nkv, T, hd)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, nkv, S, hd): past and new keys/values
        if self.n_kv_head != self.n_head:  # GQA: query head h uses key/value head h // group
            group = self.n_head // self.n_kv_head
            k = k.repeat_interleave(group, dim=1)  # (B, nh, S, hd)
            v = v.repeat_interleave(group, dim=1)  # (B, nh, S, hd)
        S = k.size(2)
        dropout_p = self.dropout if self.training else 0.0

        if return_attention:
            y, att = self._explicit_attention(q, k, v, dropout_p)  # (B, nh, T, hd), (B, nh, T, S)
        else:
            att = None
            if S == T:  # no cache: the usual square causal mask
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            elif T == 1:  # one new token: it may see every cached key
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            else:  # several new tokens after a cache: a shifted causal mask
                mask = causal_mask(T, S, device=x.device)  # (T, S)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_head * self.head_dim)  # (B, T, C)
        return self.resid_dropout(self.o_proj(y)), att

    def _explicit_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """softmax(q k^T / sqrt(hd), causal) v, written out; returns (y, weights before dropout)."""
        T, S = q.size(2), k.size(2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, nh, T, S)
        scores = scores.masked_fill(~causal_mask(T, S, device=q.device), float("-inf"))  # (B, nh, T, S)
        att = F.softmax(scores.float(), dim=-1).to(q.dtype)  # (B, nh, T, S): each row sums to 1
        y = F.dropout(att, p=dropout_p) @ v  # (B, nh, T, hd)
        return y, att
