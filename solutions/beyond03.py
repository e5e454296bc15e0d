"""Part 3, GPT-2 to modern: solutions, and wrong answers the checkers must reject."""

import torch


# beyond03.ex1 ---------------------------------------------------------------------------
def kv_bytes_per_token(cfg, bytes_per_number):
    """Every layer stores a key and a value vector (head_dim numbers) for each key/value head."""
    kv_heads = cfg.n_head if cfg.n_kv_head is None else cfg.n_kv_head
    return cfg.n_layer * 2 * kv_heads * (cfg.n_embd // cfg.n_head) * bytes_per_number


# beyond03.ex2 ---------------------------------------------------------------------------
def softcap(logits, cap):
    """cap * tanh(logits / cap): about the logits themselves while small, never beyond +-cap."""
    return cap * torch.tanh(logits / cap)


# beyond03.ex3 ---------------------------------------------------------------------------
# Per token: 32 layers x (key + value) x heads x 128 dims x 2 bytes (bf16). With 32 heads that is
# 524,288 bytes (0.5 MiB); with 8, 131,072. Over 8,192 tokens GQA saves 393,216 x 8,192 bytes.
GQA_SAVING_BYTES = (32 * 2 * 32 * 128 * 2 - 32 * 2 * 8 * 128 * 2) * 8192
# end beyond03.ex3

# beyond03.ex4 ---------------------------------------------------------------------------
# tiny_layout, one change at a time (120 steps, nats/char): GPT-2 layout 2.647, RoPE 2.561,
# RMSNorm 2.677, SwiGLU 2.792, no biases 2.682. Only rotary positions pass 2.60: the tiny model
# need not learn a table of 32 positions from 120 steps of data.
TINY_LAYOUT_SETTINGS = {"pos_encoding": "rope"}
# end beyond03.ex4

SOLUTIONS = {
    "beyond03.ex1": kv_bytes_per_token,
    "beyond03.ex2": softcap,
    "beyond03.ex3": GQA_SAVING_BYTES,
    "beyond03.ex4": TINY_LAYOUT_SETTINGS,
}


# ---------------------------------------------------------------- wrong answers
def _kv_query_heads(cfg, bytes_per_number):  # n_head, not the key/value heads: GQA saves nothing
    return cfg.n_layer * 2 * cfg.n_head * (cfg.n_embd // cfg.n_head) * bytes_per_number


def _kv_keys_only(cfg, bytes_per_number):  # forgets the values
    kv_heads = cfg.n_head if cfg.n_kv_head is None else cfg.n_kv_head
    return cfg.n_layer * kv_heads * (cfg.n_embd // cfg.n_head) * bytes_per_number


def _kv_one_layer(cfg, bytes_per_number):  # one layer's cache
    kv_heads = cfg.n_head if cfg.n_kv_head is None else cfg.n_kv_head
    return 2 * kv_heads * (cfg.n_embd // cfg.n_head) * bytes_per_number


def _softcap_clamp(logits, cap):  # a hard clamp: no gradient beyond the cap
    return logits.clamp(-cap, cap)


def _softcap_no_rescale(logits, cap):  # tanh(logits / cap): every logit squeezed into (-1, 1)
    return torch.tanh(logits / cap)


def _softcap_in_place(logits, cap):  # changes the caller's tensor
    return logits.data.div_(cap).tanh_().mul_(cap)


WRONG = {
    "beyond03.ex1": [_kv_query_heads, _kv_keys_only, _kv_one_layer],
    "beyond03.ex2": [_softcap_clamp, _softcap_no_rescale, _softcap_in_place],
    "beyond03.ex3": [393_216, 131_072 * 8192, 524_288 * 8192, 393_216 * 8192 / 2**30],
    "beyond03.ex4": [{}, {"norm": "rmsnorm"}, {"mlp": "swiglu"}, {"pos_encoding": "rope", "norm": "rmsnorm"}],
}
