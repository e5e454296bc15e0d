"""Day 21: the course's GPT, configurable from GPT-2 (classic) to Llama (modern).

    from course_lib.model import GPT, GPTConfig
    model = GPT(GPTConfig.modern(vocab_size=65, block_size=256))
    logits, loss = model(idx, targets)              # (B, T) ids -> (B, T, V), scalar
    model.generate(idx, 200, temperature=0.8, top_p=0.9)

Modules: config (GPTConfig), layers (norms, MLPs, positions), attention (day 20),
kv_cache (KVCache), gpt (Block, GPT), generation (SamplingSettings, sampling, beam search),
summary.
"""

from course_lib.model.attention import CausalSelfAttention
from course_lib.model.config import GPTConfig
from course_lib.model.generation import SamplingError, SamplingSettings, filter_logits, next_token_probs, sample_next
from course_lib.model.gpt import GPT, Block
from course_lib.model.kv_cache import KVCache
from course_lib.model.layers import MLP, RMSNorm, RotaryEmbedding, SwiGLU, apply_rotary, sinusoidal_positions
from course_lib.model.summary import ModelSummary, summary

__all__ = [
    "GPT",
    "MLP",
    "Block",
    "CausalSelfAttention",
    "GPTConfig",
    "KVCache",
    "ModelSummary",
    "RMSNorm",
    "RotaryEmbedding",
    "SamplingError",
    "SamplingSettings",
    "SwiGLU",
    "apply_rotary",
    "filter_logits",
    "next_token_probs",
    "sample_next",
    "sinusoidal_positions",
    "summary",
]
