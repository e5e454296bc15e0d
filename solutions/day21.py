"""Day 21: solutions, and wrong answers the checkers must reject."""

import torch
import torch.nn.functional as F

from course_lib.model import filter_logits


# day21.ex1 ------------------------------------------------------------------------------
def count_parameters(config):
    """The parameters of course_lib's GPT(config), counted from the config alone (a tied lm_head once)."""
    C, V, F_ = config.n_embd, config.vocab_size, config.ffn_dim
    kv = config.kv_heads * config.head_dim  # width of k_proj's and v_proj's outputs
    b = int(config.bias)  # 1: every Linear (and LayerNorm) has a bias
    norm = C + C * b if config.norm == "layernorm" else C  # gain (and bias); RMSNorm has no bias
    attention = C * C + 2 * C * kv + C * C + b * (C + 2 * kv + C)  # q_proj, k_proj, v_proj, o_proj
    n_mats = 2 if config.mlp == "gelu" else 3  # up, down (+ gate for SwiGLU)
    mlp = n_mats * C * F_ + b * ((n_mats - 1) * F_ + C)  # biases: F per widening matrix, C for down_proj
    block = 2 * norm + attention + mlp
    embeddings = V * C + (config.block_size * C if config.pos_encoding == "learned" else 0)  # RoPE, sinusoidal: none
    head = 0 if config.tie_weights else V * C
    return embeddings + config.n_layer * block + norm + head  # + the final norm


# day21.ex2 ------------------------------------------------------------------------------
def top_p_filter(logits, top_p):
    """Logits (B, V) with every token outside the nucleus set to -inf; ties with the last kept token are kept."""
    if top_p >= 1.0:
        return logits.clone()
    probs = F.softmax(logits, dim=-1)  # (B, V)
    ranked = probs.sort(dim=-1, descending=True).values  # (B, V), largest first
    mass_before = ranked.cumsum(dim=-1) - ranked  # (B, V): probability of the tokens ranked ahead
    n_keep = (mass_before < top_p).sum(dim=-1, keepdim=True)  # (B, 1): the first n_keep reach top_p
    smallest_kept = ranked.gather(-1, n_keep - 1)  # (B, 1): the probability of the last one kept
    return logits.masked_fill(probs < smallest_kept, float("-inf"))  # a tie with it stays


# day21.ex3 ------------------------------------------------------------------------------
def kv_cache_bytes(config, batch, n_tokens, dtype):
    """Bytes of the keys and values a KV-cache holds for batch sequences of n_tokens tokens."""
    bytes_per_number = torch.tensor([], dtype=dtype).element_size()  # 4 for float32, 2 for float16 and bfloat16
    per_token = 2 * config.n_layer * config.kv_heads * config.head_dim  # a key and a value per layer and kv head
    return batch * n_tokens * per_token * bytes_per_number


# day21.ex4 ------------------------------------------------------------------------------
# tiny_run({}) = 2.714: after 300 steps the defaults are worse than the bigram model (2.598; target 2.398).
# Learning rates 1e-3 ... 6e-3 at each shape (300 steps; parameters from GPT.num_parameters):
#   n_embd=32, 2 layers (32,960):  2.714, 2.532, 2.461, 2.436, 2.425 at 1, 2, 3, 4, 6e-3: a rate is not enough;
#   n_embd=32, 4 layers (63,808):  best 2.395 at 4e-3, just;    n_embd=48, 2 layers (54,048): best 2.400 at 6e-3;
#   n_embd=64, 1 layer (53,504):   best 2.352 at 4e-3;          n_embd=80, 1 layer (86,080): best 2.340 at 3e-3;
#   n_embd=64, 2 layers (102,784): 2.436, 2.350, 2.318, 2.364, 2.491: the best, with room on both sides of 3e-3.
# Width pays more than depth at this size. A warm-up of 10 or 30 steps made it worse (2.377, 2.365).
TINY_SETTINGS = {"n_embd": 64, "lr": 3e-3}
# end day21.ex4

SOLUTIONS = {
    "day21.ex1": count_parameters,
    "day21.ex2": top_p_filter,
    "day21.ex3": kv_cache_bytes,
    "day21.ex4": TINY_SETTINGS,
}


# ---------------------------------------------------------------- wrong answers
def _count_untied(config):  # counts the tied lm_head a second time
    return count_parameters(config) + (config.vocab_size * config.n_embd if config.tie_weights else 0)


def _count_no_gqa(config):  # k_proj and v_proj as wide as q_proj: multi-head attention only
    return count_parameters(config.__class__(**{**config.to_dict(), "n_kv_head": None}))


def _count_no_positions(config):  # forgets the learned position table
    extra = config.block_size * config.n_embd if config.pos_encoding == "learned" else 0
    return count_parameters(config) - extra


def _count_no_biases(config):  # leaves out every bias
    return count_parameters(config.__class__(**{**config.to_dict(), "bias": False}))


def _count_12_d_squared(config):  # the rule of thumb: 12 d^2 per block, plus the embedding
    return 12 * config.n_layer * config.n_embd**2 + config.vocab_size * config.n_embd


def _top_p_library(logits, top_p):  # course_lib's filter_logits: a sort decides which tied token goes
    return filter_logits(logits, top_p=top_p)


def _top_p_inclusive(logits, top_p):  # keeps while the running sum, this token included, stays below p
    probs = F.softmax(logits, dim=-1)
    ranked, order = probs.sort(dim=-1, descending=True)
    remove = ranked.cumsum(-1) >= top_p
    remove[:, 0] = False  # at least the most likely
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def _top_p_ascending(logits, top_p):  # sorted the wrong way: keeps the least likely tokens
    probs = F.softmax(logits, dim=-1)
    ranked, order = probs.sort(dim=-1)
    remove = (ranked.cumsum(-1) - ranked) >= top_p
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def _top_p_wrong_axis(logits, top_p):  # softmax over the batch axis, not over the vocabulary
    probs = F.softmax(logits, dim=0)
    ranked, order = probs.sort(dim=-1, descending=True)
    remove = (ranked.cumsum(-1) - ranked) >= top_p
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def _top_p_probabilities(logits, top_p):  # returns the renormalised probabilities, not logits
    return F.softmax(top_p_filter(logits, top_p), dim=-1)


def _kv_query_heads(config, batch, n_tokens, dtype):  # stores n_head heads: ignores grouped-query attention
    return kv_cache_bytes(config.__class__(**{**config.to_dict(), "n_kv_head": None}), batch, n_tokens, dtype)


def _kv_keys_only(config, batch, n_tokens, dtype):  # forgets the values
    return kv_cache_bytes(config, batch, n_tokens, dtype) // 2


def _kv_float32(config, batch, n_tokens, dtype):  # 4 bytes a number whatever the dtype
    return kv_cache_bytes(config, batch, n_tokens, torch.float32)


def _kv_one_layer(config, batch, n_tokens, dtype):  # one layer's cache only
    return kv_cache_bytes(config, batch, n_tokens, dtype) // config.n_layer


WRONG = {
    "day21.ex1": [_count_untied, _count_no_gqa, _count_no_positions, _count_no_biases, _count_12_d_squared],
    "day21.ex2": [_top_p_library, _top_p_inclusive, _top_p_ascending, _top_p_wrong_axis, _top_p_probabilities,
                  lambda logits, top_p: logits],
    "day21.ex3": [_kv_query_heads, _kv_keys_only, _kv_float32, _kv_one_layer],
    "day21.ex4": [{},  # the defaults: worse than the bigram after 300 steps
                  {"lr": 3e-3},  # the right rate, too narrow a model
                  {"n_embd": 64, "lr": 6e-3},  # wide enough, the rate too high
                  {"n_embd": 128, "lr": 3e-3},  # over the parameter budget
                  {"lr": 3e-3, "max_iters": 1000}],  # over the step budget
}
