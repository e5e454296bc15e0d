"""Day 20: solutions, and wrong answers the checkers must reject."""

import math

import torch
import torch.nn.functional as F


# day20.ex1 ------------------------------------------------------------------------------
def sliding_window_attention(q, k, v, window):
    """Causal attention in which query t sees only keys t - window + 1 .. t: (..., T, d_k), (..., T, d_v)."""
    T = q.size(-2)
    i = torch.arange(T)[:, None]  # (T, 1) query positions
    j = torch.arange(T)[None, :]  # (1, T) key positions
    allowed = (j <= i) & (j > i - window)  # (T, T): the past, but no further back than the window
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., T, T)
    weights = F.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)  # (..., T, T)
    return weights @ v  # (..., T, d_v)


# day20.ex2 ------------------------------------------------------------------------------
def multi_head_attention(x, w_qkv, b_qkv, w_o, b_o, n_head):
    """Causal multi-head self-attention with nn.MultiheadAttention's packed weights: x (B, T, C) -> (B, T, C)."""
    B, T, C = x.shape
    hd = C // n_head
    q, k, v = (x @ w_qkv.T + b_qkv).split(C, dim=-1)  # 3 x (B, T, C): the rows of w_qkv are W_q, W_k, W_v
    q, k, v = (t.view(B, T, n_head, hd).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hd)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)  # (B, nh, T, T): scaled by each head's size
    y = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v  # (B, nh, T, hd)
    y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): the heads side by side again
    return y @ w_o.T + b_o  # (B, T, C)


# day20.ex3 ------------------------------------------------------------------------------
def rope_interleaved(x, positions, theta=10000.0):
    """RoPE with dims (2i, 2i+1) as a pair: x (..., T, hd), positions (T,) -> x rotated, (..., T, hd)."""
    hd = x.size(-1)
    freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # (hd/2,): theta_i = theta^(-2i/hd)
    angle = positions.double()[:, None] * freq  # (T, hd/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)  # (T, hd/2) each
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, hd/2): the two coordinates of each pair
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)  # (..., T, hd/2, 2)
    return rotated.flatten(-2)  # (..., T, hd): back to x_0, x_1, x_2, ...


# day20.ex4 ------------------------------------------------------------------------------
# attention_entropy(t) for t = 0.05, 0.1, ..., 1: 0.16 nats at 0.05, 0.42 at 0.125 (the unscaled
# scores at d_k = 64), 0.69 at 0.2, 0.88 at 0.25, 2.35 at 1; a bisection gives ln 2 at t = 0.1998.
TEMPERATURE = 0.2
# end day20.ex4

# day20.ex5 ------------------------------------------------------------------------------
# head_dim = 128 / 8 = 16. q_proj and o_proj: 128 x (8 x 16) each; k_proj and v_proj: 128 x (2 x 16) each.
N_PARAMS = 2 * 128 * 8 * 16 + 2 * 128 * 2 * 16  # 40,960
# end day20.ex5

SOLUTIONS = {
    "day20.ex1": sliding_window_attention,
    "day20.ex2": multi_head_attention,
    "day20.ex3": rope_interleaved,
    "day20.ex4": TEMPERATURE,
    "day20.ex5": N_PARAMS,
}


# ---------------------------------------------------------------- wrong answers
def _window_variant(lower: str = "strict", causal: bool = True, scale: bool = True):
    def sliding_wrong(q, k, v, window):
        T = q.size(-2)
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        far = (j > i - window) if lower == "strict" else (j >= i - window)  # "loose": one key too many
        allowed = far & ((j <= i) if causal else (j >= i - T))
        scores = q @ k.transpose(-2, -1) / (math.sqrt(q.size(-1)) if scale else 1.0)
        return F.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v

    return sliding_wrong


def _window_zeroed_after_softmax(q, k, v, window):  # masks the weights after the softmax: rows no longer sum to 1
    T = q.size(-2)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    weights = F.softmax((q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(~causal, float("-inf")), dim=-1)
    return (weights * (j > i - window)) @ v


def _mha_variant(split: str = "right", scale_by: str = "head", mask: bool = True, out_proj: bool = True,
                 merge: str = "right"):
    def mha_wrong(x, w_qkv, b_qkv, w_o, b_o, n_head):
        B, T, C = x.shape
        hd = C // n_head
        q, k, v = (x @ w_qkv.T + b_qkv).split(C, dim=-1)
        if split == "right":
            q, k, v = (t.view(B, T, n_head, hd).transpose(1, 2) for t in (q, k, v))
        else:  # view(B, nh, T, hd): a classic slip, it mixes positions into the heads
            q, k, v = (t.reshape(B, n_head, T, hd) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(hd if scale_by == "head" else C)
        if mask:
            scores = scores.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
        y = F.softmax(scores, dim=-1) @ v  # (B, nh, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C) if merge == "right" else y.reshape(B, T, C)
        return y @ w_o.T + b_o if out_proj else y

    return mha_wrong


def _rope_variant(layout: str = "pairs", two: bool = True, sign: float = 1.0, own_positions: bool = True,
                  use_theta: bool = True):
    def rope_wrong(x, positions, theta=10000.0):
        hd = x.size(-1)
        base = theta if use_theta else 10000.0
        freq = base ** (-torch.arange(hd // 2, dtype=torch.float64) * (2 if two else 1) / hd)
        pos = positions if own_positions else torch.arange(x.size(-2))
        angle = sign * pos.double()[:, None] * freq
        cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
        if layout == "pairs":
            a, b = x[..., 0::2], x[..., 1::2]
            return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
        a, b = x[..., : hd // 2], x[..., hd // 2 :]  # section 6's layout: dim i with dim i + hd/2
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)

    return rope_wrong


WRONG = {
    "day20.ex1": [_window_variant(lower="loose"),  # window + 1 keys: t - window .. t
                  _window_variant(causal=False),  # the band reaches into the future too
                  _window_variant(scale=False),  # forgets 1 / sqrt(d_k)
                  _window_zeroed_after_softmax,
                  lambda q, k, v, window: F.scaled_dot_product_attention(q, k, v, is_causal=True)],  # ignores the window
    "day20.ex2": [_mha_variant(split="wrong"),  # view(B, nh, T, hd) without the transpose
                  _mha_variant(scale_by="width"),  # scaled by sqrt(C), not by sqrt(head_dim)
                  _mha_variant(mask=False),  # no causal mask
                  _mha_variant(out_proj=False),  # forgets the output projection
                  _mha_variant(merge="wrong")],  # merges (B, nh, T, hd) without transposing back
    "day20.ex3": [_rope_variant(layout="halves"),  # section 6's layout, dim i with dim i + hd/2
                  _rope_variant(two=False),  # theta^(-i/hd): the frequencies fall too slowly
                  _rope_variant(sign=-1.0),  # rotates the other way
                  _rope_variant(own_positions=False),  # positions 0..T-1 whatever is passed
                  _rope_variant(use_theta=False)],  # always base 10000
    "day20.ex4": [1.0,  # section 3's scaled scores as they are: spread over about 10 keys
                  1 / 8,  # the unscaled scores at d_k = 64: too peaked
                  0.25,  # close, but 0.88 nats
                  math.log(2)],  # the target entropy, not a temperature
    "day20.ex5": [4 * 128 * 128,  # plain multi-head attention: 8 key/value heads
                  4 * (128 * 128 + 128),  # with biases
                  128 * 128 + 2 * 128 * 2 * 16,  # q_proj, k_proj and v_proj, but no o_proj
                  "40960"],  # a string
}
