"""Part 3, GPT-2 to modern: the KV-cache's size, the logit soft-cap, what GQA saves at scale."""

from __future__ import annotations

import math
import numbers
import random
from typing import Any

import torch

from course_lib.exercises import call_reported as _call
from course_lib.exercise_checks.tiny import heldout_batches, mean_loss, tiny_shakespeare, train_tiny
from course_lib.exercises import Wrong, exercise
from course_lib.model import GPT, GPTConfig, KVCache


# ---------------------------------------------------------------- exercise 1
def _cache_bytes(cfg: GPTConfig, dtype: torch.dtype) -> int:
    """Bytes per position of a real KVCache for a GPT of this config: measured on its tensors."""
    with torch.device("meta"):
        model = GPT(cfg).to(dtype)
    cache = KVCache.for_model(model, batch=1, max_len=2)
    per_two = cache.k.numel() * cache.k.element_size() + cache.v.numel() * cache.v.element_size()
    return per_two // 2


@exercise("beyond03.ex1", title="the KV-cache's bytes per token", kind="code",
          section="section 2, What a change costs before any training")
def check_kv_bytes(fn: Any) -> str:
    rng = random.Random(4301)
    cases = [(GPTConfig.classic(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128), torch.float32),
             (GPTConfig.modern(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128), torch.float32)]
    for _ in range(10):
        n_head = rng.choice([2, 4, 6, 8])
        kv = rng.choice([h for h in range(1, n_head + 1) if n_head % h == 0])
        make = rng.choice([GPTConfig.classic, GPTConfig.modern])
        cfg = make(vocab_size=rng.randint(5, 300), block_size=rng.randint(4, 64), n_layer=rng.randint(1, 6),
                   n_head=n_head, n_kv_head=kv, n_embd=n_head * rng.choice([4, 8, 16]))  # fmt: skip
        cases.append((cfg, rng.choice([torch.float32, torch.bfloat16])))
    for cfg, dtype in cases:
        size = torch.empty((), dtype=dtype).element_size()
        where = (f"kv_bytes_per_token(cfg, {size}) for {cfg.n_layer} layers, {cfg.n_head} query heads, "
                 f"{cfg.kv_heads} key/value heads, width {cfg.n_embd}")
        got = _call(fn, where, cfg, size)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, numbers.Integral):
            raise Wrong(f"{where} should return a whole number of bytes, got {type(got).__name__} {got!r}")
        want = _cache_bytes(cfg, dtype)
        if got != want:
            raise Wrong(f"{where}: {got:,} bytes, but a real KVCache stores {want:,} per token (every layer "
                        "keeps a key and a value per key/value head, head_dim numbers each)")
    return f"({len(cases)} configurations, each measured on a real KVCache)"


# ---------------------------------------------------------------- exercise 2
@exercise("beyond03.ex2", title="the logit soft-cap", kind="code",
          section="section 3, Soft-capping the logits")
def check_softcap(fn: Any) -> str:
    gen = torch.Generator().manual_seed(4302)
    for cap in (30.0, 5.0, 50.0, 1.0):
        for scale in (0.1, 10.0, 1000.0):
            logits = torch.randn(3, 7, 11, generator=gen, dtype=torch.float64) * scale
            logits[0, 0, 0] = 1e6  # one huge logit
            where = f"softcap(logits, {cap:g}) on logits of size up to {logits.abs().max().item():.3g}"
            given = logits.clone().requires_grad_(True)
            got = _call(fn, where, given, cap)
            if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
                raise Wrong(f"{where} should return a tensor of the logits' shape {tuple(logits.shape)}")
            if not torch.equal(given.detach(), logits):
                raise Wrong(f"{where} changed the logits in place: return a new tensor")
            want = cap * torch.tanh(logits / cap)
            if not torch.allclose(got.detach().double(), want, rtol=1e-6, atol=1e-9):
                err = (got.detach().double() - want).abs().max().item()
                raise Wrong(f"{where}: differs from cap * tanh(logits / cap) by up to {err:.3g}; the cap bounds every "
                            "logit in (-cap, cap) and leaves small ones almost unchanged")
            if not got.requires_grad:
                raise Wrong(f"{where}: the result has no gradient: use torch operations (torch.tanh), not numbers")
    model_cfg = GPTConfig.modern(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16, logit_softcap=2.0)
    torch.manual_seed(0)
    model = GPT(model_cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(100.0)  # logits far beyond the cap
        x = torch.randint(0, 20, (2, 8))
        capped = model(x)[0]
        model.config.logit_softcap = None
        raw = model(x)[0]
    got = _call(fn, "softcap(raw logits of a GPT, 2.0)", raw, 2.0)
    if not torch.allclose(got, capped, rtol=1e-5, atol=1e-6):
        raise Wrong("softcap(raw logits, 2.0) does not match what course_lib's GPT gives with logit_softcap=2.0")
    return "(12 caps and scales, and a GPT's own capped logits)"


# ---------------------------------------------------------------- exercise 3
LLAMA_LIKE = {"n_layer": 32, "n_head": 32, "n_kv_head": 8, "n_embd": 4096, "bytes_per_number": 2}
CONTEXT = 8192


@exercise("beyond03.ex3", title="what GQA saves at scale", kind="value",
          section="section 2, What a change costs before any training")
def check_gqa_saving(answer: Any) -> str:
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real) or not math.isfinite(answer):
        raise Wrong(f"the answer is a number of bytes, got {type(answer).__name__} {answer!r}")
    c = LLAMA_LIKE
    head_dim = c["n_embd"] // c["n_head"]
    per_token = lambda kv: c["n_layer"] * 2 * kv * head_dim * c["bytes_per_number"]  # noqa: E731
    want = (per_token(c["n_head"]) - per_token(c["n_kv_head"])) * CONTEXT
    if not math.isclose(answer, want, rel_tol=1e-9):
        hint = ""
        if math.isclose(answer, want / CONTEXT, rel_tol=1e-9):
            hint = " (that is per token: the question is about a full context)"
        elif math.isclose(answer, per_token(c["n_kv_head"]) * CONTEXT, rel_tol=1e-9):
            hint = " (that is what GQA's cache holds, not what it saves)"
        raise Wrong(f"{answer:,.0f} bytes is not what 8 key/value heads save over 32 for a full context of "
                    f"{CONTEXT:,} tokens{hint}")
    return f"({want / 2**30:.1f} GiB saved per sequence)"


# ---------------------------------------------------------------- exercise 4
TINY_LAYOUT_DEFAULTS = {"pos_encoding": "learned", "norm": "layernorm", "mlp": "gelu", "bias": True}
TINY_LAYOUT_CHOICES = {"pos_encoding": ("learned", "rope"), "norm": ("layernorm", "rmsnorm"),
                       "mlp": ("gelu", "swiglu"), "bias": (True, False)}
TINY_LAYOUT_STEPS = 120
TINY_LAYOUT_TARGET = 2.60  # nats/char on the tiny run's held-out batches


def _tiny_layout_settings(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise Wrong(f"the answer is a dict of changes such as {{'norm': 'rmsnorm'}}, got {type(answer).__name__}")
    unknown = sorted(set(answer) - set(TINY_LAYOUT_DEFAULTS))
    if unknown:
        raise Wrong(f"unknown settings {unknown}: the settings are {sorted(TINY_LAYOUT_DEFAULTS)}")
    s = {**TINY_LAYOUT_DEFAULTS, **answer}
    for k, v in s.items():
        if v not in TINY_LAYOUT_CHOICES[k] or type(v) is not type(TINY_LAYOUT_CHOICES[k][0]):
            raise Wrong(f"{k} must be one of {TINY_LAYOUT_CHOICES[k]}, got {v!r}")
    return s


def tiny_layout(answer: Any) -> float:
    """A 1-block GPT (width 32, context 32, a classic layout with the given changes), 120 AdamW steps of
    16 windows at lr 3e-3; the mean loss on 8 fixed held-out batches, in nats/char."""
    s = _tiny_layout_settings(answer)
    train, val, vocab = tiny_shakespeare()
    torch.manual_seed(0)
    model = GPT(GPTConfig.classic(vocab_size=vocab, block_size=32, n_layer=1, n_head=2, n_embd=32, **s))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    train_tiny(model, opt, train, TINY_LAYOUT_STEPS, 16)
    return mean_loss(model, heldout_batches(val, 8, 16))


@exercise("beyond03.ex4", title="a tiny layout race", kind="experiment",
          section="section 4, Every change at equal compute")
def check_tiny_layout(answer: Any) -> str:
    s = _tiny_layout_settings(answer)
    changes = {k: v for k, v in s.items() if TINY_LAYOUT_DEFAULTS[k] != v}
    if len(changes) > 1:
        raise Wrong(f"change one setting only (you changed {sorted(changes)}): the question is which single change")
    loss = tiny_layout(answer)
    if not math.isfinite(loss) or loss > TINY_LAYOUT_TARGET:
        raise Wrong(f"with {changes or 'the GPT-2 layout'} the tiny model ends at {loss:.3f} nats/char after "
                    f"{TINY_LAYOUT_STEPS} steps; the target is {TINY_LAYOUT_TARGET}")
    return f"({changes}: {loss:.3f} nats/char after {TINY_LAYOUT_STEPS} steps)"
