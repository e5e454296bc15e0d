"""Day 21: the GPT: embeddings, a stack of pre-norm transformer blocks, a final norm, lm_head.

One forward contract: ``model(idx, targets=None) -> (logits, loss)``. Read it top to
bottom: ``Block`` is attention + MLP with residual connections, ``GPT`` stacks them.

    config = GPTConfig.modern(vocab_size=65)
    model = GPT(config)
    logits, loss = model(idx, targets)          # idx, targets: (B, T) token ids
    logits, loss, attention = model(idx, return_attention=True)  # attention: (n_layer, B, n_head, T, T)
    out = model.generate(idx, 100, temperature=0.8, top_k=40)   # (B, T + 100)

Module names follow Hugging Face's Llama (embed_tokens, layers.N.self_attn.q_proj, ...,
norm, lm_head), so its checkpoints map one to one (see ``course_lib.hf``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, overload

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.model import generation
from course_lib.model.attention import CausalSelfAttention
from course_lib.model.config import GPTConfig
from course_lib.model.generation import SamplingSettings
from course_lib.model.kv_cache import KVCache
from course_lib.model.layers import RotaryEmbedding, init_std_for, make_mlp, make_norm, sinusoidal_positions


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = make_norm(config)
        self.self_attn = CausalSelfAttention(config, layer_idx)
        self.post_attention_layernorm = make_norm(config)
        self.mlp = make_mlp(config)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: KVCache | None = None,
        *,
        return_attention: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, C) -> (x (B, T, C), attention weights (B, nh, T, S), or None unless return_attention)."""
        a, att = self.self_attn(self.input_layernorm(x), rope, kv_cache, return_attention=return_attention)
        x = x + a  # (B, T, C): attention writes into the residual stream
        x = x + self.mlp(self.post_attention_layernorm(x))  # (B, T, C): so does the MLP
        return x, att


class GPT(nn.Module):
    """A decoder-only transformer language model configured by :class:`GPTConfig`."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        if config.pos_encoding == "learned":
            self.embed_positions = nn.Embedding(config.block_size, config.n_embd)
        elif config.pos_encoding == "sinusoidal":  # a fixed table, not learned, not saved
            table = sinusoidal_positions(config.block_size, config.n_embd)  # (block_size, C)
            self.register_buffer("sinusoidal", table, persistent=False)
        else:  # RoPE: one cos/sin table, shared by every layer's attention
            self.rotary = RotaryEmbedding(config.head_dim, config.block_size, config.rope_theta)
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        self.norm = make_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:  # one matrix both reads tokens in and scores them out
            self.lm_head.weight = self.embed_tokens.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 init: normal(0, init_std) for matrices, /sqrt(2*n_layer) on residual projections."""
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, mean=0.0, std=init_std_for(name, self.config))
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:  # norm weights
                nn.init.ones_(p)

    def check_token_ids(self, idx: torch.Tensor, what: str = "idx") -> None:
        """A ValueError naming a bad id (the smallest, or else the largest) unless all of idx is in [0, vocab_size).

        One min/max over idx; without it the embedding lookup fails with a bare IndexError
        on the CPU and a device-side assert on a GPU.
        """
        if idx.numel() == 0 or torch.compiler.is_compiling():  # compiled: no graph break for a check
            return
        low, high = (int(v) for v in torch.aminmax(idx))
        V = self.config.vocab_size
        if low < 0 or high >= V:
            bad = low if low < 0 else high
            raise ValueError(
                f"{what} holds token id {bad}, outside this model's vocabulary of vocab_size={V} ids "
                f"(0 to {V - 1}): encode the text with the tokenizer the model was trained with."
            )

    @overload
    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, return_attention: Literal[False] = False,
        kv_cache: KVCache | None = None, last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...  # fmt: skip

    @overload
    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, return_attention: Literal[True],
        kv_cache: KVCache | None = None, last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]: ...  # fmt: skip

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        return_attention: bool = False,
        kv_cache: KVCache | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None] | tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Token ids (B, T) -> (logits (B, T, V), loss or None).

        - ``targets`` (B, T): next-token ids; the loss is the mean cross-entropy over all
          positions, ignoring positions whose target is -1.
        - ``return_attention=True`` (keyword only): return (logits, loss, attention) instead,
          attention of shape (n_layer, B, n_head, T, S): for each layer, batch row, head and
          query position the weights over the S keys (S = T without a cache, cache length + T
          with one; each row sums to 1). GQA heads are expanded to n_head. The weights come
          from the written-out attention (slower than SDPA), so ask for them only to look.
        - ``kv_cache``: the tokens continue the ``kv_cache.length`` positions stored there.
        - ``last_only=True``: logits only for the last position, (B, 1, V); generation
          uses it to skip the vocabulary projection of the prompt.

        A token id outside [0, vocab_size) is a ValueError naming it.
        """
        B, T = idx.shape
        self.check_token_ids(idx)
        start = 0 if kv_cache is None else kv_cache.length
        if start + T > self.config.block_size:
            raise ValueError(
                f"{start + T} positions exceed block_size={self.config.block_size}: crop the input to "
                f"its last {self.config.block_size - start} tokens (generate() does this for you)."
            )
        x = self.embed_tokens(idx)  # (B, T, C)
        if self.config.pos_encoding == "learned":
            pos = torch.arange(start, start + T, device=idx.device)  # (T,)
            x = x + self.embed_positions(pos)  # (B, T, C)
        elif self.config.pos_encoding == "sinusoidal":
            x = x + self.sinusoidal[start : start + T].to(x.dtype)  # (B, T, C)
        x = self.drop(x)
        # with RoPE nothing is added to x: attention rotates its queries and keys instead
        rope = self.rotary(start, T) if self.config.pos_encoding == "rope" else None  # 2 x (T, hd)

        attentions = []
        for block in self.layers:
            x, att = block(x, rope, kv_cache, return_attention=return_attention)  # (B, T, C)
            attentions.append(att)
        if kv_cache is not None:
            kv_cache.advance(T)
        x = self.norm(x)  # (B, T, C)

        if last_only:
            x = x[:, -1:, :]  # (B, 1, C)
        logits = self.lm_head(x)  # (B, T, V)
        if self.config.logit_softcap is not None:
            cap = self.config.logit_softcap
            logits = cap * torch.tanh(logits / cap)  # (B, T, V), every entry in (-cap, cap)

        loss = None
        if targets is not None:
            if last_only:
                raise ValueError("targets need logits at every position: call with last_only=False.")
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1)
        if return_attention:
            return logits, loss, torch.stack(attentions)  # attention: (n_layer, B, nh, T, S)
        return logits, loss

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count (a tied lm_head counted once).

        ``non_embedding=True`` leaves out the token and position lookup tables, the count
        used in scaling-law plots; an untied lm_head is a real matmul and stays in.
        """
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.embed_tokens.weight.numel()
            if self.config.pos_encoding == "learned":
                total -= self.embed_positions.weight.numel()
        return total

    # --- text generation (see course_lib.model.generation) ------------------------
    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int | None = None,
        *,
        settings: SamplingSettings | None = None,
        generator: torch.Generator | None = None,
        **overrides: Any,
    ) -> torch.Tensor:
        """Extend idx (B, T) by up to max_new_tokens sampled tokens -> (B, T + n_new).

        How tokens are chosen is a :class:`SamplingSettings` (default: its defaults): pass
        one as ``settings``, or name its fields as keywords, which replace its values:

            model.generate(idx, 100, temperature=0.8, top_k=40)
            model.generate(idx, settings=SamplingSettings(max_new_tokens=100, temperature=0.8, top_k=40))

        temperature=0 is greedy. Rows that emit ``eos_id`` are padded with it; generation
        stops early once every row has. ``generator`` makes sampling repeatable. Bad
        settings and token ids outside the vocabulary are ValueErrors that name them.
        """
        new = list(self.generate_stream(idx, max_new_tokens, settings=settings, generator=generator, **overrides))
        if not new:  # each (B,)
            return idx
        return torch.cat([idx, torch.stack(new, dim=1)], dim=1)  # (B, T + n_new)

    def generate_stream(
        self,
        idx: torch.Tensor,
        max_new_tokens: int | None = None,
        *,
        settings: SamplingSettings | None = None,
        generator: torch.Generator | None = None,
        **overrides: Any,
    ) -> Iterator[torch.Tensor]:
        """Like :meth:`generate`, but yield each new token, shape (B,), as soon as it is chosen.

            for token in model.generate_stream(idx, 200):
                print(decode([int(token[0])]), end="", flush=True)
        """
        if max_new_tokens is not None:
            overrides["max_new_tokens"] = max_new_tokens
        return generation.generate_stream(self, idx, generation.make_settings(settings, **overrides), generator)

    @torch.no_grad()
    def beam_search(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        num_beams: int = 4,
        length_penalty: float = 1.0,
        eos_id: int | None = None,
    ) -> torch.Tensor:
        """The most likely continuation found with ``num_beams`` beams -> (B, T + n_new)."""
        return generation.beam_search(self, idx, max_new_tokens, num_beams, length_penalty, eos_id)

    # --- Hugging Face interop (see course_lib.hf) ---------------------------------
    @classmethod
    def from_transformers(cls, hf_model: nn.Module) -> GPT:
        """Copy a transformers GPT2LMHeadModel or LlamaForCausalLM into a GPT."""
        from course_lib import hf

        return hf.from_transformers(hf_model)

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> GPT:
        """Load a local Hugging Face folder (config.json + weights) or a hub name such as "gpt2"."""
        from course_lib import hf

        return hf.from_pretrained(name_or_path, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.num_parameters(non_embedding=False) / 1e6:.2f}M parameters"

