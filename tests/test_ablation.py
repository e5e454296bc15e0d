"""Part 3's one-change-at-a-time ablation: each change sets what it says, the counts are right, a run reports."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib.ablation import CHANGES, SOFTCAP, change_config, kv_cache_bytes_per_token, run_change
from course_lib.model import GPT, GPTConfig, KVCache
from course_lib.presets import PRESETS

BASE = GPTConfig.classic(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128)


def test_each_change_differs_from_gpt2_in_exactly_its_own_fields():
    fields = ("pos_encoding", "norm", "mlp", "n_kv_head", "bias", "logit_softcap", "tie_weights")
    expected = {"GPT-2": set(), "RoPE": {"pos_encoding"}, "RMSNorm": {"norm"}, "SwiGLU": {"mlp"},
                "GQA": {"n_kv_head"}, "no biases": {"bias"}, "soft-cap": {"logit_softcap"},
                "untied head": {"tie_weights"}, "modern": set(fields) - {"tie_weights"}}  # fmt: skip
    assert set(CHANGES) == set(expected)
    for name, want in expected.items():
        cfg = change_config(name, BASE)
        changed = {f for f in fields if getattr(cfg, f) != getattr(BASE, f)}
        assert changed == want, name
        assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.block_size) == (2, 128, 4, 64), "the shape is kept"
    modern = change_config("modern", BASE)
    reference = GPTConfig.modern(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128, logit_softcap=SOFTCAP)
    assert all(getattr(modern, f) == getattr(reference, f) for f in fields)


def test_kv_cache_bytes_match_a_real_cache_in_float32_and_bfloat16():
    for name in CHANGES:
        cfg = change_config(name, BASE)
        for dtype in (torch.float32, torch.bfloat16):
            model = GPT(cfg).to(dtype)
            cache = KVCache.for_model(model, batch=1)
            measured = (cache.k.nbytes + cache.v.nbytes) // cache.max_len
            assert kv_cache_bytes_per_token(cfg, torch.empty((), dtype=dtype).element_size()) == measured, name
    assert kv_cache_bytes_per_token(BASE) == 2 * 2 * 4 * 32 * 4  # worked by hand: layers, k+v, heads, dims, bytes


def test_parameter_changes_worked_by_hand():
    count = {n: GPT(change_config(n, BASE)).num_parameters(non_embedding=False) for n in CHANGES}
    assert count["RoPE"] - count["GPT-2"] == -64 * 128  # the position table
    assert count["RMSNorm"] - count["GPT-2"] == -5 * 128  # the shifts of 2 norms per block and the final one
    assert count["untied head"] - count["GPT-2"] == 65 * 128
    # GQA: k and v go from 128 to 64 outputs, with their biases, in both blocks
    assert count["GQA"] - count["GPT-2"] == -2 * 2 * (64 * 128 + 64)
    # SwiGLU: hidden 384 (8/3 of 128 rounded up to 64): 3 matrices and biases 384, 384, 128, against 2 of 512
    assert count["SwiGLU"] - count["GPT-2"] == 2 * ((3 * 128 * 384 + 384 + 384 + 128) - (2 * 128 * 512 + 512 + 128))


def test_bad_names_and_odd_heads_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown change"):
        change_config("ReLU", BASE)
    with pytest.raises(ValueError, match="n_head must be even"):
        change_config("GQA", dataclasses.replace(BASE, n_head=1))


def test_run_change_trains_scores_and_reports_a_row():
    from course_lib.lm_eval import shakespeare_splits
    from course_lib.tokenizers import CharTokenizer

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_text, val_text = shakespeare_splits()
        tok = CharTokenizer.from_text(train_text + val_text)
        tr, va = torch.tensor(tok.encode(train_text[:50_000])), torch.tensor(tok.encode(val_text[:3_000]))
        tiny = GPTConfig.classic(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
        recipe = dataclasses.replace(PRESETS["shakespeare-char-cpu"], batch_size=4, block_size=16)
        rows = [run_change(n, tiny, recipe, tok, tr, va, val_text[:2_000], steps=4, seed=3) for n in ("GPT-2", "soft-cap")]
    finally:
        torch.set_num_threads(old)
    for row, name in zip(rows, ("GPT-2", "soft-cap")):
        assert row["change"] == name and row["steps"] == 4 and row["seed"] == 3
        assert 0 < row["nats_per_char"] < 5 and row["tokens_per_s"] > 0 and row["max_abs_logit"] > 0
        assert row["kv_bytes_per_token"] == kv_cache_bytes_per_token(tiny)
    # the cap is a function of the logits: no parameters
    assert rows[0]["parameters"] == rows[1]["parameters"]
