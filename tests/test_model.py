"""Tests for course_lib.model: config, layers, attention, the GPT and its summary."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.model import (
    GPT,
    GPTConfig,
    KVCache,
    RMSNorm,
    RotaryEmbedding,
    apply_rotary,
    sinusoidal_positions,
    summary,
)
from course_lib.model.attention import CausalSelfAttention


TINY = dict(vocab_size=37, block_size=16, n_layer=2, n_head=4, n_embd=32)


def presets(**extra) -> list[GPTConfig]:
    return [
        GPTConfig.classic(**TINY, **extra),
        GPTConfig.modern(**TINY, **extra),
        GPTConfig(**TINY, pos_encoding="sinusoidal", norm="rmsnorm", **extra),
    ]


PRESET_IDS = ["classic", "modern", "sinusoidal"]


# --- config ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_embd=130, n_head=4), "not divisible by n_head"),
        (dict(n_head=4, n_kv_head=3), "not a multiple of n_kv_head"),
        (dict(pos_encoding="alibi"), "'learned', 'sinusoidal', 'rope'"),
        (dict(norm="batchnorm"), "'layernorm', 'rmsnorm'"),
        (dict(mlp="relu"), "'gelu', 'swiglu'"),
        (dict(vocab_size=0), "vocab_size must be a positive int"),
        (dict(n_layer=-1), "n_layer must be a positive int"),
        (dict(block_size=2.5), "block_size must be a positive int"),
        (dict(n_embd=12, n_head=4, pos_encoding="rope"), "odd"),
        (dict(dropout=1.0), "dropout"),
        (dict(logit_softcap=0.0), "logit_softcap"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**kwargs)


def test_presets_and_derived_sizes():
    classic = GPTConfig.classic(n_head=8, n_embd=256)
    assert (classic.pos_encoding, classic.norm, classic.mlp, classic.bias) == ("learned", "layernorm", "gelu", True)
    assert classic.kv_heads == 8 and classic.ffn_dim == 4 * 256
    modern = GPTConfig.modern(n_head=8, n_embd=256)
    assert (modern.pos_encoding, modern.norm, modern.mlp, modern.bias) == ("rope", "rmsnorm", "swiglu", False)
    assert modern.kv_heads == 4 and modern.head_dim == 32
    assert GPTConfig.modern(n_head=3, n_embd=96).kv_heads == 3  # odd head count: plain multi-head
    assert GPTConfig.modern(n_kv_head=1).kv_heads == 1  # an explicit choice wins (multi-query)
    # SwiGLU width: 2/3 of 4*C (same parameter count as GELU's two matrices) rounded up to 64
    for C in (128, 768, 4096):
        ffn = GPTConfig.modern(n_embd=C, n_head=4).ffn_dim
        assert ffn % 64 == 0 and 8 * C / 3 <= ffn < 8 * C / 3 + 64
    assert abs(3 * GPTConfig.modern(n_embd=768).ffn_dim - 2 * 4 * 768) / (8 * 768) < 0.05


def test_config_dict_round_trip_and_unknown_keys():
    cfg = GPTConfig.modern(vocab_size=100, logit_softcap=30.0)
    again = GPTConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="valid fields are"):
        GPTConfig.from_dict({**cfg.to_dict(), "hidden_size": 3})


# --- layers -----------------------------------------------------------------------------
def test_rmsnorm_matches_formula_and_torch():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16) * 3 + 1
    norm = RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    if hasattr(torch.nn, "RMSNorm"):
        ref = torch.nn.RMSNorm(16, eps=1e-6)
        with torch.no_grad():
            ref.weight.copy_(norm.weight)
        torch.testing.assert_close(norm(x), ref(x))


def test_rope_matches_complex_multiplication():
    """Pair dim i with dim i + hd/2 as a complex number and multiply by e^{i * pos * freq_i}."""
    torch.manual_seed(0)
    B, nh, T, hd, theta = 2, 3, 7, 8, 500.0
    x = torch.randn(B, nh, T, hd, dtype=torch.float64)
    rope = RotaryEmbedding(hd, max_positions=20, theta=theta)
    cos, sin = rope(start=4, length=T)  # positions 4..10
    ours = apply_rotary(x, cos.double(), sin.double())
    z = torch.complex(x[..., : hd // 2], x[..., hd // 2 :])  # (B, nh, T, hd/2)
    freqs = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # (hd/2,)
    pos = torch.arange(4, 4 + T, dtype=torch.float64)[:, None]  # (T, 1)
    rotated = z * torch.polar(torch.ones_like(pos * freqs), pos * freqs)  # (B, nh, T, hd/2)
    expected = torch.cat([rotated.real, rotated.imag], dim=-1)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-6)


def test_rope_dot_product_depends_only_on_distance():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    rope = RotaryEmbedding(16, 64)

    def score(pq: int, pk: int) -> float:
        return float((apply_rotary(q, *rope(pq, 1)) * apply_rotary(k, *rope(pk, 1))).sum())

    assert score(5, 2) == pytest.approx(score(40, 37), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)


def test_sinusoidal_table_matches_formula():
    table = sinusoidal_positions(50, 8)
    p, i = 17, 2  # dims 2i and 2i+1
    angle = p / 10000 ** (2 * i / 8)
    assert table[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert table[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


# --- attention -----------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", presets(), ids=PRESET_IDS)
def test_explicit_attention_matches_sdpa(cfg):
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (3, 11))
    fast, _ = model(idx)
    slow, _, att = model(idx, return_attention=True)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    assert att.shape == (cfg.n_layer, 3, cfg.n_head, 11, 11)
    torch.testing.assert_close(att.sum(-1), torch.ones(cfg.n_layer, 3, cfg.n_head, 11))
    assert torch.all(att.triu(diagonal=1) == 0)  # no weight on future positions


@pytest.mark.parametrize("cfg", [GPTConfig.modern(**TINY, n_kv_head=2), GPTConfig.classic(**TINY)],
                         ids=["modern-gqa", "classic"])  # fmt: skip
def test_return_attention_is_keyword_only_with_one_shape_also_with_a_cache(cfg):
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (2, 10))
    with pytest.raises(TypeError):
        model(idx, None, True)  # type: ignore[misc]
    with pytest.raises(TypeError):
        model.layers[0].self_attn(torch.randn(2, 10, 32), None, None, True)  # type: ignore[misc]
    _, _, full = model(idx, return_attention=True)  # (L, B, nh, 10, 10)
    cache = KVCache.for_model(model, batch=2)
    model(idx[:, :6], kv_cache=cache)
    logits, loss, att = model(idx[:, 6:], kv_cache=cache, return_attention=True)  # 4 queries, 10 keys
    assert logits.shape == (2, 4, cfg.vocab_size) and loss is None
    assert att.shape == (cfg.n_layer, 2, cfg.n_head, 4, 10)  # GQA's 2 key/value heads expanded to 4
    torch.testing.assert_close(att, full[:, :, :, 6:], atol=1e-5, rtol=1e-5)  # the last 4 query rows
    y, weights = model.layers[0].self_attn(torch.randn(2, 10, 32))
    assert y.shape == (2, 10, 32) and weights is None  # the fast path: still a pair


def test_token_ids_outside_the_vocabulary_are_a_value_error():
    model = GPT(GPTConfig.classic(**TINY)).eval()
    with pytest.raises(ValueError, match=r"token id 37, outside this model's vocabulary of vocab_size=37"):
        model(torch.tensor([[1, 37, 2]]))
    with pytest.raises(ValueError, match=r"token id -3"):
        model(torch.tensor([[-3, 36]]))
    assert model(torch.tensor([[0, 36]]))[0].shape == (1, 2, 37)  # both ends of the range are fine


def test_attention_module_matches_written_out_formula():
    torch.manual_seed(0)
    cfg = GPTConfig.classic(**TINY)
    attn = CausalSelfAttention(cfg).eval()
    x = torch.randn(2, 9, 32)
    y, _ = attn(x)
    split = lambda t: t.view(2, 9, 4, 8).transpose(1, 2)  # noqa: E731  (B, nh, T, hd)
    q, k, v = split(attn.q_proj(x)), split(attn.k_proj(x)), split(attn.v_proj(x))
    scores = q @ k.transpose(-1, -2) / math.sqrt(8) + torch.full((9, 9), float("-inf")).triu(1)
    expected = attn.o_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 9, 32))
    torch.testing.assert_close(y, expected, atol=1e-6, rtol=1e-5)


def test_gqa_equals_mha_with_repeated_kv_weights():
    torch.manual_seed(0)
    gqa = GPT(GPTConfig.modern(**TINY, n_kv_head=2)).eval()
    mha = GPT(GPTConfig.modern(**TINY, n_kv_head=4)).eval()
    state = gqa.state_dict()
    hd = 8
    for key, value in list(state.items()):
        if key.endswith(("k_proj.weight", "v_proj.weight")):  # (2 * hd, C) -> (4 * hd, C)
            state[key] = value.view(2, hd, -1).repeat_interleave(2, dim=0).reshape(4 * hd, -1)
    mha.load_state_dict(state)
    idx = torch.randint(0, 37, (2, 12))
    torch.testing.assert_close(gqa(idx)[0], mha(idx)[0], atol=1e-5, rtol=1e-5)
    assert gqa.num_parameters() < mha.num_parameters()


# --- the GPT ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", presets(), ids=PRESET_IDS)
def test_future_tokens_do_not_change_earlier_logits(cfg):
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    a = torch.randint(0, cfg.vocab_size, (2, 12))
    b = a.clone()
    b[:, 7:] = torch.randint(0, cfg.vocab_size, (2, 5))
    la, lb = model(a)[0], model(b)[0]
    torch.testing.assert_close(la[:, :7], lb[:, :7])
    assert not torch.allclose(la[:, 7:], lb[:, 7:])


@pytest.mark.parametrize("cfg", presets(), ids=PRESET_IDS)
def test_loss_at_init_is_log_vocab(cfg):
    torch.manual_seed(0)
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (16, 16))
    targets = torch.randint(0, cfg.vocab_size, (16, 16))
    _, loss = model(idx, targets)
    assert loss.item() == pytest.approx(math.log(cfg.vocab_size), abs=0.1)


def test_loss_ignores_minus_one_targets():
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(**TINY))
    idx = torch.randint(0, 37, (2, 8))
    targets = torch.randint(0, 37, (2, 8))
    targets[0, :3] = -1
    logits, loss = model(idx, targets)
    keep = targets != -1
    expected = -F.log_softmax(logits[keep], dim=-1).gather(1, targets[keep][:, None]).mean()
    torch.testing.assert_close(loss, expected)


def test_logit_softcap_bounds_logits():
    torch.manual_seed(0)
    capped = GPT(GPTConfig.modern(**TINY, logit_softcap=2.0, init_std=0.5)).eval()
    plain = GPT(GPTConfig.modern(**TINY, init_std=0.5)).eval()
    plain.load_state_dict(capped.state_dict())
    idx = torch.randint(0, 37, (2, 10))
    raw, out = plain(idx)[0], capped(idx)[0]
    assert raw.abs().max() > 2.0  # the test would be empty otherwise
    assert out.abs().max() < 2.0
    torch.testing.assert_close(out, 2.0 * torch.tanh(raw / 2.0))


def test_weight_tying_shares_storage():
    tied = GPT(GPTConfig.classic(**TINY))
    assert tied.lm_head.weight is tied.embed_tokens.weight
    assert tied.lm_head.weight.data_ptr() == tied.embed_tokens.weight.data_ptr()
    untied = GPT(GPTConfig.classic(**TINY, tie_weights=False))
    assert untied.lm_head.weight.data_ptr() != untied.embed_tokens.weight.data_ptr()
    assert untied.num_parameters(False) - tied.num_parameters(False) == 37 * 32


def test_num_parameters_and_gpt2_init():
    cfg = GPTConfig.classic(vocab_size=37, block_size=16, n_layer=8, n_head=4, n_embd=256)
    model = GPT(cfg)
    total = sum(p.numel() for p in model.parameters())
    assert model.num_parameters(non_embedding=False) == total
    assert model.num_parameters() == total - 37 * 256 - 16 * 256
    assert model.layers[0].self_attn.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.layers[0].mlp.down_proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
    assert torch.all(model.layers[0].mlp.up_proj.bias == 0)


@pytest.mark.parametrize("preset", [GPTConfig.classic, GPTConfig.modern], ids=["classic", "modern"])
def test_tiny_model_overfits_two_sequences(preset):
    torch.manual_seed(0)
    cfg = preset(vocab_size=16, block_size=16, n_layer=2, n_head=2, n_embd=32)
    model = GPT(cfg)
    data = torch.randint(0, 16, (2, 17))
    x, y = data[:, :-1], data[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(300):
        _, loss = model(x, y)
        losses.append(loss.item())
        if losses[-1] < 0.1:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[0] > 2.0 and losses[-1] < 0.1


def test_summary_counts_parameters_and_shapes():
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(**TINY))
    idx = torch.randint(0, 37, (3, 10))
    s = summary(model, idx)
    total = sum(p.numel() for p in model.parameters())
    assert s.total_params == total
    rows = {r.name: r for r in s.rows}
    assert rows["lm_head"].output_shape == (3, 10, 37)
    assert rows["lm_head"].shared_with == "embed_tokens" and rows["lm_head"].params == 0
    assert rows["layers.1.mlp.gate_proj"].output_shape == (3, 10, model.config.ffn_dim)
    assert sum(r.params for r in s.rows if r.depth == 0) == total
    assert rows["layers.0"].params == sum(p.numel() for p in model.layers[0].parameters())
    assert s.param_bytes + s.grad_bytes + s.optimizer_bytes == 16 * total  # 4 bytes x (w, grad, m, v)
    assert s.activation_bytes >= 4 * 3 * 10 * 37  # at least the logits
    assert "lm_head" in str(s) and "<table>" in s._repr_html_()
