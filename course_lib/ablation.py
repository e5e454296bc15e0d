"""Part 3: from GPT-2's layout to a modern one, one change at a time, measured.

GPT-2 (``GPTConfig.classic``) learns a position table, normalises with LayerNorm, uses a
GELU MLP, biases everywhere, one key and value head per query head, and raw logits.
Modern small models (``GPTConfig.modern``) rotate queries and keys instead (RoPE), use
RMSNorm, a gated SwiGLU MLP, no biases, grouped-query attention, and some cap their
logits. :data:`CHANGES` lists each change by itself, applied to the classic layout, plus
untying the output head from the embedding (GPT-2 ties them) and all the modern changes
together. :func:`run_change` trains one of them at the shape, batch and schedule of a
recipe (the same steps of the same number of tokens for every change: equal training
compute, give or take the few matrices a change adds or removes), scores it on the
course's yardstick and reports its parameters, training tokens per second and KV-cache
bytes per token.

>>> cfg = GPTConfig.classic(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128)
>>> kv_cache_bytes_per_token(cfg)  # 2 layers x (key + value) x 4 heads x 32 dims x 4 bytes
2048
>>> kv_cache_bytes_per_token(change_config("GQA", cfg))  # two query heads share each key/value head
1024
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from course_lib.model import GPT, GPTConfig

SOFTCAP = 30.0  # Gemma 2's final-logit cap

# name -> (what changes, the GPTConfig fields it sets on the classic layout)
CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "GPT-2": ("the classic layout: learned positions, LayerNorm, GELU, biases, multi-head, tied head", {}),
    "RoPE": ("rotary positions instead of a learned position table", {"pos_encoding": "rope"}),
    "RMSNorm": ("RMSNorm instead of LayerNorm (no mean, no shift)", {"norm": "rmsnorm"}),
    "SwiGLU": ("a gated SwiGLU MLP, hidden width 8/3 of the residual instead of 4", {"mlp": "swiglu"}),
    "GQA": ("grouped-query attention: two query heads share each key/value head", {"n_kv_head": "half"}),
    "no biases": ("no biases in the linear layers and norms", {"bias": False}),
    "soft-cap": (f"logits capped smoothly, {SOFTCAP:g} tanh(logits / {SOFTCAP:g})", {"logit_softcap": SOFTCAP}),
    "untied head": ("the output head its own matrix, not the embedding's transpose", {"tie_weights": False}),
    "modern": ("RoPE, RMSNorm, SwiGLU, GQA, no biases and the soft-cap together, tied head",
               {"pos_encoding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "n_kv_head": "half", "bias": False,
                "logit_softcap": SOFTCAP}),
}  # fmt: skip


def change_config(name: str, base: GPTConfig) -> GPTConfig:
    """``base`` (a classic layout: the shape to keep) with the change ``name`` of :data:`CHANGES` applied."""
    if name not in CHANGES:
        raise ValueError(f"unknown change {name!r}; the changes are {list(CHANGES)}")
    fields = dict(CHANGES[name][1])
    if fields.get("n_kv_head") == "half":
        if base.n_head % 2:
            raise ValueError(f"GQA here halves the key/value heads: n_head must be even, got {base.n_head}")
        fields["n_kv_head"] = base.n_head // 2
    return dataclasses.replace(base, **fields)


def kv_cache_bytes_per_token(cfg: GPTConfig, bytes_per_number: int = 4) -> int:
    """Bytes the KV-cache stores per generated token: every layer keeps a key and a value vector
    for each key/value head (``n_kv_head``, fewer than ``n_head`` with GQA)."""
    return cfg.n_layer * 2 * cfg.kv_heads * cfg.head_dim * bytes_per_number


def run_change(name: str, base: GPTConfig, recipe: Any, tok: Any, train_ids: torch.Tensor, val_ids: torch.Tensor,
               val_text: str, *, steps: int, seed: int, device: Any = "cpu") -> dict[str, Any]:
    """Train change ``name`` for ``steps`` steps of ``recipe``'s batch and schedule (sized to the
    steps) from ``seed``; return its row: parameters, tokens/s, KV-cache bytes, nats/char, and the
    largest raw logit (before any cap) on the first validation window."""
    from course_lib.device import seed_everything
    from course_lib.lm_eval import score_text
    from course_lib.trainer import Trainer

    cfg = change_config(name, base)
    r = dataclasses.replace(recipe, max_iters=steps, warmup_iters=max(steps // 20, 1), eval_interval=steps,
                            eval_iters=1, seed=seed)  # one estimate at the end: the yardstick scores the model
    seed_everything(seed)
    model = GPT(cfg)
    trainer = Trainer(model, train_ids, val_ids, r.train_config(progress=False, dtype="float32"), device=device)
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    val = score_text(model, tok, val_text, cfg.block_size, batch_size=64).nats_per_char
    with torch.no_grad():  # how large the logits grew: a soft-cap only acts near its cap
        window = val_ids[: cfg.block_size].view(1, -1).to(trainer.device)
        model.config.logit_softcap, cap = None, model.config.logit_softcap
        max_logit = model(window)[0].abs().max().item()
        model.config.logit_softcap = cap
    return {"change": name, "seed": seed, "steps": steps, "parameters": model.num_parameters(non_embedding=False),
            "tokens_per_s": round(steps * trainer.tokens_per_step / seconds), "train_s": round(seconds, 1),
            "kv_bytes_per_token": kv_cache_bytes_per_token(cfg), "nats_per_char": round(val, 4),
            "max_abs_logit": round(max_logit, 2)}  # fmt: skip
