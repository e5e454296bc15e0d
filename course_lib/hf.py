"""Day 21: Hugging Face interop: our GPT to and from transformers' GPT-2 and Llama.

    from course_lib.hf import to_transformers, from_transformers, from_pretrained
    hf_model = to_transformers(model)        # GPT2LMHeadModel or LlamaForCausalLM
    model = from_transformers(hf_model)      # and back: same logits
    model = from_pretrained("gpt2")          # hub name (online) or a local folder

The classic layout (learned positions, LayerNorm, GELU, multi-head) maps to
``GPT2LMHeadModel``; GPT-2 stores its matrices in ``Conv1D`` modules, (in, out) instead
of Linear's (out, in), and fuses q, k, v into one ``c_attn``, so they are transposed and
split. The modern layout (RoPE, RMSNorm, SwiGLU, any n_kv_head) maps to
``LlamaForCausalLM``, whose module names are ours, so its weights copy one to one.
Needs the ``transformers`` package.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from course_lib.model.config import GPTConfig
from course_lib.model.gpt import GPT

_GPT2_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")  # both are GELU's tanh approximation


def _layout(config: GPTConfig) -> str:
    """'gpt2' or 'llama', or a ValueError saying why neither fits."""
    parts = (config.pos_encoding, config.norm, config.mlp)
    if config.logit_softcap is not None:
        raise ValueError("Neither GPT-2 nor Llama caps logits: use logit_softcap=None to export.")
    if parts == ("learned", "layernorm", "gelu"):
        if config.kv_heads != config.n_head:
            raise ValueError("GPT-2 has no grouped-query attention: use n_kv_head=None to export.")
        return "gpt2"
    if parts == ("rope", "rmsnorm", "swiglu"):
        return "llama"
    raise ValueError(
        f"pos_encoding/norm/mlp = {parts} match neither transformers layout: GPT-2 needs "
        "('learned', 'layernorm', 'gelu') and Llama needs ('rope', 'rmsnorm', 'swiglu')."
    )


def to_transformers(model: GPT) -> nn.Module:
    """A transformers model with ``model``'s weights: GPT2LMHeadModel or LlamaForCausalLM."""
    import transformers

    c = model.config
    if _layout(c) == "gpt2":
        eos = 50256 if c.vocab_size > 50256 else None  # GPT-2's <|endoftext|>, if the vocabulary has it
        hf_config = transformers.GPT2Config(
            vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
            n_head=c.n_head, n_inner=c.intermediate_size, activation_function="gelu_new",
            resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout,
            layer_norm_epsilon=c.norm_eps, initializer_range=c.init_std, tie_word_embeddings=c.tie_weights,
            bos_token_id=eos, eos_token_id=eos,
        )  # fmt: skip
        hf_model = transformers.GPT2LMHeadModel(hf_config)
        hf_model.load_state_dict(_gpt2_state_from_ours(model), strict=True)
    else:
        hf_config = transformers.LlamaConfig(
            vocab_size=c.vocab_size, hidden_size=c.n_embd, intermediate_size=c.ffn_dim,
            num_hidden_layers=c.n_layer, num_attention_heads=c.n_head, num_key_value_heads=c.kv_heads,
            max_position_embeddings=c.block_size, rms_norm_eps=c.norm_eps, initializer_range=c.init_std,
            rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta},
            attention_bias=c.bias, mlp_bias=c.bias, attention_dropout=c.dropout,
            tie_word_embeddings=c.tie_weights, bos_token_id=None, eos_token_id=None,
        )  # fmt: skip
        hf_model = transformers.LlamaForCausalLM(hf_config)
        # Llama's names are ours, under "model." (all but lm_head)
        state = {k if k.startswith("lm_head") else "model." + k: v for k, v in model.state_dict().items()}
        hf_model.load_state_dict(state, strict=True)
    return hf_model.to(next(model.parameters()).device).eval()


def _gpt2_state_from_ours(model: GPT) -> dict[str, torch.Tensor]:
    ours = model.state_dict()
    C = model.config.n_embd
    state = {
        "transformer.wte.weight": ours["embed_tokens.weight"],
        "transformer.wpe.weight": ours["embed_positions.weight"],
        "lm_head.weight": ours["lm_head.weight"],
    }
    state.update(_norm_pair(ours, "norm", "transformer.ln_f", C))
    for i in range(model.config.n_layer):
        p, h = f"layers.{i}.", f"transformer.h.{i}."
        state.update(_norm_pair(ours, p + "input_layernorm", h + "ln_1", C))
        state.update(_norm_pair(ours, p + "post_attention_layernorm", h + "ln_2", C))
        qkv = [ours[p + f"self_attn.{x}_proj.weight"] for x in "qkv"]  # 3 x (C, C), Linear (out, in)
        state[h + "attn.c_attn.weight"] = torch.cat(qkv, dim=0).t()  # (C, 3C): Conv1D is (in, out)
        state[h + "attn.c_attn.bias"] = torch.cat([_bias(ours, p + f"self_attn.{x}_proj", C) for x in "qkv"])
        for ours_name, hf_part in (("self_attn.o_proj", "attn.c_proj"), ("mlp.up_proj", "mlp.c_fc"),
                                   ("mlp.down_proj", "mlp.c_proj")):  # fmt: skip
            weight = ours[p + ours_name + ".weight"]  # (out, in)
            state[h + hf_part + ".weight"] = weight.t()  # (in, out)
            state[h + hf_part + ".bias"] = _bias(ours, p + ours_name, weight.size(0))
    return state


def _bias(state: dict[str, torch.Tensor], prefix: str, size: int) -> torch.Tensor:
    """The bias at prefix, or zeros when the model has none (bias=False): the same function."""
    return state.get(prefix + ".bias", torch.zeros(size))


def _norm_pair(state: dict[str, torch.Tensor], ours: str, hf_name: str, C: int) -> dict[str, torch.Tensor]:
    return {hf_name + ".weight": state[ours + ".weight"], hf_name + ".bias": _bias(state, ours, C)}


def from_transformers(hf_model: nn.Module) -> GPT:
    """A GPT with the weights of a transformers GPT2LMHeadModel or LlamaForCausalLM."""
    kind = getattr(hf_model.config, "model_type", None)
    if kind == "gpt2":
        config = _config_from_gpt2(hf_model.config)
    elif kind == "llama":
        config = _config_from_llama(hf_model.config)
    else:
        raise ValueError(f"Cannot convert a {type(hf_model).__name__} (model_type={kind!r}): only gpt2 and llama.")
    model = GPT(config)
    hf_state = {k: v.detach().float() for k, v in hf_model.state_dict().items()}
    if kind == "gpt2":
        state = _gpt2_state_to_ours(hf_state, config)
    else:
        state = {k: hf_state["lm_head.weight" if k.startswith("lm_head") else "model." + k]
                 for k in model.state_dict()}  # fmt: skip
    model.load_state_dict(state, strict=True)
    device = next(hf_model.parameters()).device
    return model.to(device).eval()


def _config_from_gpt2(h: Any) -> GPTConfig:
    if h.activation_function not in _GPT2_ACTIVATIONS:
        raise ValueError(
            f"GPT-2 activation {h.activation_function!r} is not supported: need one of {_GPT2_ACTIVATIONS}."
        )
    if not h.scale_attn_weights or h.scale_attn_by_inverse_layer_idx or getattr(h, "add_cross_attention", False):
        raise ValueError("Only standard GPT-2 attention (scaled by 1/sqrt(head_dim), no cross-attention) converts.")
    return GPTConfig.classic(
        vocab_size=h.vocab_size, block_size=h.n_positions, n_layer=h.n_layer, n_head=h.n_head,
        n_embd=h.n_embd, dropout=0.0, norm_eps=h.layer_norm_epsilon, intermediate_size=h.n_inner,
        init_std=h.initializer_range, tie_weights=bool(getattr(h, "tie_word_embeddings", True)),
    )  # fmt: skip


def _config_from_llama(h: Any) -> GPTConfig:
    if h.hidden_act != "silu":
        raise ValueError(f"Llama activation {h.hidden_act!r} is not supported: only 'silu' (SwiGLU).")
    rope = getattr(h, "rope_parameters", None) or getattr(h, "rope_scaling", None) or {}  # v5 or v4 name
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ValueError(f"Only plain RoPE converts; this model uses rope settings {rope}.")
    head_dim = getattr(h, "head_dim", None) or h.hidden_size // h.num_attention_heads
    if head_dim != h.hidden_size // h.num_attention_heads:
        raise ValueError(f"head_dim={head_dim} differs from hidden_size // num_attention_heads: not supported.")
    if bool(h.attention_bias) != bool(getattr(h, "mlp_bias", False)):
        raise ValueError("GPTConfig has one bias switch: attention_bias and mlp_bias must agree.")
    theta = float(rope.get("rope_theta", getattr(h, "rope_theta", 10000.0)))
    return GPTConfig.modern(
        vocab_size=h.vocab_size, block_size=h.max_position_embeddings, n_layer=h.num_hidden_layers,
        n_head=h.num_attention_heads, n_kv_head=h.num_key_value_heads, n_embd=h.hidden_size,
        intermediate_size=h.intermediate_size, rope_theta=theta,
        norm_eps=h.rms_norm_eps, bias=bool(h.attention_bias), dropout=0.0, init_std=h.initializer_range,
        tie_weights=bool(getattr(h, "tie_word_embeddings", False)),
    )  # fmt: skip


def _gpt2_state_to_ours(hf: dict[str, torch.Tensor], config: GPTConfig) -> dict[str, torch.Tensor]:
    C = config.n_embd
    state = {
        "embed_tokens.weight": hf["transformer.wte.weight"],
        "embed_positions.weight": hf["transformer.wpe.weight"],
        "lm_head.weight": hf.get("lm_head.weight", hf["transformer.wte.weight"]),
        "norm.weight": hf["transformer.ln_f.weight"],
        "norm.bias": hf["transformer.ln_f.bias"],
    }
    for i in range(config.n_layer):
        p, h = f"layers.{i}.", f"transformer.h.{i}."
        for ours, theirs in (("input_layernorm", "ln_1"), ("post_attention_layernorm", "ln_2")):
            state[p + ours + ".weight"] = hf[h + theirs + ".weight"]
            state[p + ours + ".bias"] = hf[h + theirs + ".bias"]
        w = hf[h + "attn.c_attn.weight"].t()  # (3C, C): Linear layout
        b = hf[h + "attn.c_attn.bias"]  # (3C,)
        for j, x in enumerate("qkv"):
            state[p + f"self_attn.{x}_proj.weight"] = w[j * C : (j + 1) * C]  # (C, C)
            state[p + f"self_attn.{x}_proj.bias"] = b[j * C : (j + 1) * C]  # (C,)
        for ours, theirs in (("self_attn.o_proj", "attn.c_proj"), ("mlp.up_proj", "mlp.c_fc"),
                             ("mlp.down_proj", "mlp.c_proj")):  # fmt: skip
            state[p + ours + ".weight"] = hf[h + theirs + ".weight"].t()  # Conv1D (in, out) -> (out, in)
            state[p + ours + ".bias"] = hf[h + theirs + ".bias"]
    return state


def from_pretrained(name_or_path: str, **kwargs: Any) -> GPT:
    """A GPT from a local Hugging Face folder (config.json + weights) or a hub name like "gpt2".

    A folder is read with ``local_files_only=True``. A hub name needs the internet, or a
    copy in the Hugging Face cache when ``HF_HUB_OFFLINE=1``. Extra keyword arguments go to
    ``AutoModelForCausalLM.from_pretrained`` (e.g. ``cache_dir``, ``revision``).
    """
    import transformers

    if os.path.isdir(name_or_path):
        if not os.path.isfile(os.path.join(name_or_path, "config.json")):
            raise FileNotFoundError(
                f"{name_or_path!r} has no config.json: save a model there with hf_model.save_pretrained(folder)."
            )
        kwargs.setdefault("local_files_only", True)
    elif os.path.exists(name_or_path) or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(
            f"{name_or_path!r} is not a folder: pass a folder holding config.json and model.safetensors "
            "(written by hf_model.save_pretrained(folder)), or a hub name such as 'gpt2'."
        )
    elif os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        kwargs.setdefault("local_files_only", True)
    try:
        hf_model = transformers.AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except OSError as err:
        raise OSError(
            f"Could not load {name_or_path!r} from the Hugging Face hub (offline, or no such model?). "
            "On a machine with internet run `AutoModelForCausalLM.from_pretrained(name).save_pretrained(folder)` "
            "(or `hf download NAME --local-dir folder`), copy the folder over, and pass its path: "
            "GPT.from_pretrained('path/to/folder')."
        ) from err
    return from_transformers(hf_model)
