"""Day 21: the KV-cache: the keys and values a GPT has already computed, kept for the next step.

Generating token n+1 needs attention over tokens 1..n. Without a cache the model
recomputes every key and value at every step; with a :class:`KVCache` each layer keeps
the keys and values it has already computed, so a step only processes the one new token::

    cache = KVCache.for_model(model, batch=1)
    logits, _ = model(prompt, kv_cache=cache)          # prefill: every prompt position stored
    logits, _ = model(next_token, kv_cache=cache)      # one new position, attends to all stored

Each attention layer writes its new keys and values with :meth:`KVCache.update` and
reads back everything stored so far; the model calls :meth:`KVCache.advance` once all
its layers have written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # for type hints only: gpt.py imports attention.py, which imports this module
    from course_lib.model.gpt import GPT


class KVCache:
    """Keys and values of every layer for the positions processed so far, preallocated.

    ``k`` and ``v`` have shape (n_layer, B, n_kv_head, max_len, hd); the first
    ``length`` positions are filled. With GQA only the n_kv_head heads are stored.

    >>> cache = KVCache(n_layer=2, batch=1, n_kv_head=4, max_len=16, head_dim=8)
    >>> cache
    KVCache(n_layer=2, batch=1, n_kv_head=4, length=0 of max_len=16, head_dim=8)
    """

    def __init__(
        self, n_layer: int, batch: int, n_kv_head: int, max_len: int, head_dim: int,
        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
    ) -> None:  # fmt: skip
        shape = (n_layer, batch, n_kv_head, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, nkv, max_len, hd)
        self.v = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, nkv, max_len, hd)
        self.length = 0  # positions filled, the same for every layer

    @classmethod
    def for_model(cls, model: GPT, batch: int, max_len: int | None = None) -> KVCache:
        """An empty cache for ``model`` with ``batch`` rows and max_len (default block_size) positions."""
        c, p = model.config, next(model.parameters())
        max_len = c.block_size if max_len is None else min(max_len, c.block_size)
        return cls(c.n_layer, batch, c.kv_heads, max_len, c.head_dim, p.device, p.dtype)

    @property
    def max_len(self) -> int:
        """How many positions fit."""
        return self.k.size(3)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new k, v (B, nkv, T, hd) after the filled positions; return all (B, nkv, length+T, hd)."""
        end = self.length + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KVCache holds {self.max_len} positions; {end} were asked for.")
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        """Mark n more positions as filled (the model calls this after its last layer)."""
        self.length += n

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep (and copy) the batch rows listed in ``rows`` (n,): beam search follows its beams."""
        self.k = self.k[:, rows]  # (L, n, nkv, max_len, hd)
        self.v = self.v[:, rows]  # (L, n, nkv, max_len, hd)

    def __repr__(self) -> str:
        L, B, nkv, max_len, hd = self.k.shape
        return f"KVCache(n_layer={L}, batch={B}, n_kv_head={nkv}, length={self.length} of max_len={max_len}, head_dim={hd})"
