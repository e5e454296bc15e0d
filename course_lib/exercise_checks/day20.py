"""Day 20's exercises: sliding-window attention, multi-head attention from packed weights, RoPE on neighbouring pairs, a temperature that reads two keys, counting a grouped-query layer's parameters."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Wrong, differs, exercise


def _diff(got: Any, want: torch.Tensor, what: str, where: str, ref: str, rtol: float, atol: float) -> None:
    """Raise Wrong when ``got`` is not ``want``, saying where the worst entry is."""
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"{what} on {where} should be a tensor, got {type(got).__name__}")
    why = differs(got, want, rtol=rtol, atol=atol)
    if why is None:
        return
    if not why.startswith("expected shape"):
        gap = (got.detach().to(want.dtype) - want).abs()
        i = int(gap.flatten().argmax())
        index = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), want.shape))
        why = (f"the largest difference is {gap.max().item():.3g}, at index {index}: expected "
               f"{want.flatten()[i].item():.8g}, got {got.detach().flatten()[i].item():.8g}")
    raise Wrong(f"{what} on {where} differs from {ref}: {why}")


@exercise("day20.ex1", title="sliding-window attention", kind="code", section="section 4, The causal mask")
def check_sliding_window(fn: Any) -> str:
    gen = torch.Generator().manual_seed(2001)
    cases = [((1, 1, 4), 1), ((5, 4, 4), 1), ((7, 3, 2), 3), ((6, 5, 5), 6), ((6, 2, 3), 100),  # (T, d_k, d_v), window
             ((2, 3, 9, 8, 8), 4), ((2, 12, 4, 6), 5), ((1, 2, 16, 8, 4), 2)]
    for shape, window in cases:
        *lead, T, d_k, d_v = shape
        q, k = (torch.randn(*lead, T, d_k, generator=gen, dtype=torch.float64) for _ in range(2))
        v = torch.randn(*lead, T, d_v, generator=gen, dtype=torch.float64)
        allowed = torch.zeros(T, T, dtype=torch.bool)  # (T, T): query i may see key j
        for i in range(T):
            for j in range(T):
                allowed[i, j] = 0 <= i - j < window  # itself and the window - 1 keys before it
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (..., T, d_v)
        where = f"q {tuple(q.shape)}, v {tuple(v.shape)}, window={window}"
        got = _call(fn, f"sliding_window_attention on {where}", q.clone(), k.clone(), v.clone(), window)
        _diff(got, want, "the output", where, "F.scaled_dot_product_attention with the window's mask", 1e-6, 1e-9)
    return (f"({len(cases)} random shapes, windows of 1 (only itself), in between and past T (plain causal), "
            f"agree with F.scaled_dot_product_attention)")


@exercise("day20.ex2", title="multi-head attention from packed weights", kind="code",
          section="section 5, Multi-head attention")
def check_mha(fn: Any) -> str:
    gen = torch.Generator().manual_seed(2002)
    cases = [(1, 1, 4, 1), (2, 5, 8, 2), (3, 7, 12, 4), (2, 6, 8, 8), (1, 9, 16, 1), (2, 4, 6, 3)]  # (B, T, C, n_head)
    for B, T, C, n_head in cases:
        with torch.random.fork_rng(devices=[]):  # its init is overwritten below: leave the caller's state alone
            ref = nn.MultiheadAttention(C, n_head, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            for p in ref.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) / math.sqrt(C))
        x = torch.randn(B, T, C, generator=gen, dtype=torch.float64)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)  # (T, T): True = may NOT attend (torch's convention here)
        with torch.no_grad():
            want, _ = ref(x, x, x, attn_mask=future, need_weights=False)  # (B, T, C)
        weights = [t.detach().clone() for t in (ref.in_proj_weight, ref.in_proj_bias, ref.out_proj.weight,
                                                ref.out_proj.bias)]
        where = f"B={B}, T={T}, C={C}, n_head={n_head}"
        got = _call(fn, f"multi_head_attention on {where}", x.clone(), *weights, n_head)
        _diff(got, want, "the output", where, "nn.MultiheadAttention's (causal)", 1e-6, 1e-9)
    return f"({len(cases)} random layers, one head to one dim per head, agree with nn.MultiheadAttention)"


@exercise("day20.ex3", title="RoPE on neighbouring pairs", kind="code",
          section="section 6, Where is each token? Position encodings")
def check_rope_interleaved(fn: Any) -> str:
    gen = torch.Generator().manual_seed(2003)
    cases = [  # (shape (..., T, hd), positions, theta)
        ((1, 2), [0], 10000.0),
        ((3, 2), [0, 1, 2], 10000.0),
        ((2, 4, 6, 8), list(range(6)), 10000.0),
        ((5, 16), [7, 3, 3, 150, 0], 10000.0),  # any positions, in any order, repeated
        ((2, 3, 4, 64), [1, 50, 99, 200], 500000.0),  # Llama 3's base
        ((4, 6), [10, 11, 12, 13], 100.0),
    ]
    for shape, positions, theta in cases:
        x = torch.randn(*shape, generator=gen)  # float32, as in a model
        pos = torch.tensor(positions)
        hd = shape[-1]
        xd = x.double()
        z = torch.view_as_complex(xd.reshape(*shape[:-1], hd // 2, 2).contiguous())  # (..., T, hd/2): x_2i + j x_2i+1
        freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # (hd/2,) theta_i = theta^(-2i/hd)
        angle = pos.double()[:, None] * freq  # (T, hd/2)
        want = torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle)).reshape(shape)  # (..., T, hd)
        where = f"x {tuple(shape)}, positions {positions}, theta={theta:g}"
        got = _call(fn, f"rope_interleaved on {where}", x.clone(), pos.clone(), theta)
        _diff(got, want, "the rotated x", where, "multiplying x_2i + j x_2i+1 by e^(j p theta_i)", 1e-4, 1e-4)
    return f"({len(cases)} random inputs, positions in any order and three bases, agree with the complex-number rotation)"


# ---------------------------------------------------------------- the experiment
@lru_cache(maxsize=1)
def _probe_scores() -> torch.Tensor:
    gen = torch.Generator().manual_seed(2004)
    q = torch.randn(2000, 1, 64, generator=gen, dtype=torch.float64)  # (N, 1, d_k)
    k = torch.randn(2000, 16, 64, generator=gen, dtype=torch.float64)  # (N, S, d_k)
    return (q * k).sum(-1) / math.sqrt(64)  # (N, S): section 3's scaled scores, d_k = 64, 16 keys


def attention_entropy(temperature: float) -> float:
    """Mean entropy (nats) of softmax(q . k / (sqrt(d_k) * temperature)) over 16 keys, for 2,000 random
    queries, each with its own 16 random keys (entries standard normal, d_k = 64, a fixed seed)."""
    log_w = F.log_softmax(_probe_scores() / temperature, dim=-1)  # (N, S)
    return -(log_w.exp() * log_w).sum(-1).mean().item()


TARGET_ENTROPY = math.log(2)  # the weights of two keys, evenly shared


@exercise("day20.ex4", title="a temperature that reads two keys", kind="experiment",
          section="section 3, Why divide by √d_k?")
def check_temperature(answer: Any) -> str:
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer):
        raise Wrong(f"expected a temperature (a positive number), got {answer!r}")
    if not answer > 0:
        raise Wrong(f"a temperature divides the scores: it must be positive, got {answer!r}")
    h = attention_entropy(float(answer))
    if not abs(h - TARGET_ENTROPY) <= 0.02:
        side = "spread over too many keys" if h > TARGET_ENTROPY else "too peaked"
        raise Wrong(f"at temperature {answer}, the weights have a mean entropy of {h:.3f} nats ({side}); the target "
                    f"is ln 2 = {TARGET_ENTROPY:.3f}, to within 0.02")
    return (f"(entropy {h:.3f} nats, e^H = {math.exp(h):.2f} keys; at temperature 1, {attention_entropy(1.0):.3f} "
            f"nats out of ln 16 = {math.log(16):.3f})")


@exercise("day20.ex5", title="counting a grouped-query layer's parameters", kind="value",
          section="section 7, The attention of a modern GPT: causal, grouped-query, rotary")
def check_gqa_params(answer: Any) -> str:
    from course_lib.model import CausalSelfAttention, GPTConfig

    def count(n_kv_head: int) -> int:
        with torch.random.fork_rng(devices=[]):  # building the layer draws its init: leave the caller's state alone
            layer = CausalSelfAttention(GPTConfig.modern(n_embd=128, n_head=8, n_kv_head=n_kv_head))
        return sum(p.numel() for p in layer.parameters())

    expected = count(2)
    if isinstance(answer, bool) or not isinstance(answer, int) or answer != expected:
        side = "" if not isinstance(answer, (int, float)) else (" (too few)" if answer < expected else " (too many)")
        raise Wrong(f"{answer!r}{side} is not the number of parameters of a causal self-attention layer with "
                    f"n_embd=128, 8 query heads, 2 key/value heads and no biases")
    return f"({expected:,}, against {count(8):,} with 8 key/value heads: k_proj and v_proj are 4 times smaller)"
