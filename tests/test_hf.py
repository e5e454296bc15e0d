"""Tests for course_lib.hf: our GPT against transformers' GPT-2 and Llama, both ways."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from course_lib.hf import from_pretrained, from_transformers, to_transformers  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402


def randomize(model: torch.nn.Module, std: float = 0.2) -> None:
    """Every weight, bias and norm scale random, so a misplaced tensor changes the logits."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)


def small_gpt2(tie: bool = True) -> torch.nn.Module:
    config = transformers.GPT2Config(
        vocab_size=61, n_positions=24, n_embd=32, n_layer=2, n_head=4, tie_word_embeddings=tie,
        bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    model = transformers.GPT2LMHeadModel(config)
    randomize(model)
    return model.eval()


def small_llama(tie: bool = False) -> torch.nn.Module:
    config = transformers.LlamaConfig(
        vocab_size=61, hidden_size=32, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=24, rms_norm_eps=1e-6, tie_word_embeddings=tie,
        rope_parameters={"rope_type": "default", "rope_theta": 500.0}, bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(config)
    randomize(model)
    return model.eval()


IDX = torch.randint(0, 61, (2, 20), generator=torch.Generator().manual_seed(0))


def assert_same_logits(ours: GPT, hf_model: torch.nn.Module) -> None:
    with torch.no_grad():
        torch.testing.assert_close(ours(IDX)[0], hf_model(IDX).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tie", [True, False])
def test_gpt2_to_ours(tie):
    hf_model = small_gpt2(tie)
    ours = GPT.from_transformers(hf_model)
    c = ours.config
    assert (c.pos_encoding, c.norm, c.mlp, c.bias, c.tie_weights) == ("learned", "layernorm", "gelu", True, tie)
    assert_same_logits(ours, hf_model)


@pytest.mark.parametrize("tie", [True, False])
def test_llama_with_gqa_to_ours(tie):
    hf_model = small_llama(tie)
    ours = from_transformers(hf_model)
    c = ours.config
    assert (c.pos_encoding, c.norm, c.mlp, c.kv_heads, c.rope_theta, c.norm_eps) == (
        "rope", "rmsnorm", "swiglu", 2, 500.0, 1e-6,
    )  # fmt: skip
    assert_same_logits(ours, hf_model)


@pytest.mark.parametrize(
    "config, hf_class",
    [
        (GPTConfig.classic(vocab_size=61, block_size=24, n_layer=2, n_embd=32), "GPT2LMHeadModel"),
        (GPTConfig.classic(vocab_size=61, block_size=24, n_layer=2, n_embd=32, bias=False, tie_weights=False),
         "GPT2LMHeadModel"),  # fmt: skip
        (GPTConfig.modern(vocab_size=61, block_size=24, n_layer=2, n_embd=32), "LlamaForCausalLM"),
        (GPTConfig.modern(vocab_size=61, block_size=24, n_layer=2, n_embd=32, bias=True, tie_weights=False),
         "LlamaForCausalLM"),  # fmt: skip
    ],
    ids=["classic", "classic-nobias-untied", "modern-gqa", "modern-bias-untied"],
)
def test_ours_to_transformers_and_back(config, hf_class):
    ours = GPT(config).eval()
    randomize(ours)
    hf_model = to_transformers(ours)
    assert type(hf_model).__name__ == hf_class
    assert_same_logits(ours, hf_model)
    again = from_transformers(hf_model)
    assert_same_logits(again, hf_model)


@pytest.mark.parametrize("make", [small_gpt2, small_llama], ids=["gpt2", "llama"])
def test_greedy_generation_matches_transformers(make):
    hf_model = make()
    ours = from_transformers(hf_model)
    prompt = IDX[:1, :4]
    mask = torch.ones_like(prompt)  # explicit: transformers would otherwise guess padding from the ids
    expected = hf_model.generate(prompt, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert torch.equal(ours.generate(prompt, 12, temperature=0), expected)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(pos_encoding="rope"), "match neither"),
        (dict(norm="rmsnorm"), "match neither"),
        (dict(pos_encoding="sinusoidal"), "match neither"),
        (dict(n_kv_head=2), "grouped-query"),
        (dict(logit_softcap=30.0), "caps logits"),
    ],
)
def test_mixed_layouts_are_refused_clearly(overrides, message):
    ours = GPT(GPTConfig.classic(vocab_size=61, block_size=24, n_layer=1, n_embd=32, **overrides))
    with pytest.raises(ValueError, match=message):
        to_transformers(ours)


@pytest.mark.parametrize("make", [small_gpt2, small_llama], ids=["gpt2", "llama"])
def test_from_pretrained_local_folder(tmp_path, make):
    hf_model = make()
    hf_model.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "model.safetensors").exists()
    assert_same_logits(GPT.from_pretrained(str(tmp_path)), hf_model)
    assert_same_logits(from_pretrained(tmp_path.as_posix()), hf_model)


def test_from_pretrained_explains_how_to_work_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="save_pretrained"):
        GPT.from_pretrained("gpt2", cache_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="config.json"):
        GPT.from_pretrained(str(tmp_path))  # a folder without a model in it
    with pytest.raises(FileNotFoundError, match="not a folder"):
        GPT.from_pretrained(str(tmp_path / "missing"))
