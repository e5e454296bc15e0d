"""course_lib.quantize against independent references: matrices worked by hand, torch's own
fake quantisation (torch.fake_quantize_per_channel_affine) for the rounding, the error bound
|w - deq| <= scale / 2 on random matrices with all-zero rows, outliers and tiny values, every
4-bit code through the packing, F.linear on the dequantised weight, a byte count of each file
worked out from the shapes, and a save/load round trip."""

from __future__ import annotations

import copy
import itertools
import warnings

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.model import GPT, GPTConfig
from course_lib.quantize import (
    QuantLinear,
    block_linear_names,
    dequantize_int4,
    dequantize_int8,
    file_size,
    int4_scales,
    load_quantized,
    pack_int4,
    quantize_int4,
    quantize_int8,
    quantize_model,
    save_quantized,
    torch_dynamic_int8,
    unpack_int4,
    weight_bits,
)


def _matrices(seed: int) -> list[torch.Tensor]:
    """Random matrices with the awkward cases: an all-zero row, an outlier, tiny and large scales."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for rows, cols, scale in [(8, 64, 1.0), (33, 96, 0.02), (5, 128, 300.0)]:
        w = torch.randn(rows, cols, generator=g) * scale
        w[1] = 0.0  # an all-zero row (and so all-zero groups)
        w[2, 7] = 1000.0 * scale  # an outlier: its row's (and group's) scale grows with it
        w[3] *= 1e-6  # tiny weights: a float16 scale this small is subnormal
        out.append(w)
    return out


# ---------------------------------------------------------------- int8, by hand and against torch
def test_int8_by_hand():
    w = torch.tensor([[127.0, -0.5, 63.5, 1.0], [0.0, 0.0, 0.0, 0.0], [-2.0, 1.0, 0.5, 0.25]])
    q, scale = quantize_int8(w)
    # row 0: scale 127 / 127 = 1; -0.5 and 63.5 are ties, rounded to the even integer (0, 64)
    # row 1: all zero, scale 0; row 2: scale 2 / 127, w / scale = -127, 63.5 -> 64, 31.75 -> 32, 15.875 -> 16
    assert q.dtype == torch.int8 and scale.dtype == torch.float32
    assert q.tolist() == [[127, 0, 64, 1], [0, 0, 0, 0], [-127, 64, 32, 16]]
    assert scale.tolist() == pytest.approx([1.0, 0.0, 2 / 127])
    deq = dequantize_int8(q, scale)
    assert deq[0].tolist() == [127.0, 0.0, 64.0, 1.0] and deq[1].tolist() == [0.0] * 4
    assert (w - deq).abs().max().item() == 0.5  # the bound scale / 2 is reached on row 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_matches_torch_fake_quantize_per_channel(seed):
    for w in _matrices(seed):
        w = w[torch.arange(w.size(0)) != 1]  # torch divides by the scale: no all-zero row here
        q, scale = quantize_int8(w)
        want = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(w.size(0), dtype=torch.int32), 0,
                                                      -127, 127)  # fmt: skip
        got = dequantize_int8(q, scale)
        differ = got != want
        # torch multiplies by 1 / scale where we divide: the two may round differently only at a tie
        frac = (w / scale[:, None]).abs() % 1
        assert ((frac[differ] - 0.5).abs() < 1e-4).all(), "a disagreement away from a rounding tie"
        assert differ.sum() <= 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_int8_error_bound(seed):
    for w in _matrices(seed):
        q, scale = quantize_int8(w)
        assert q.abs().max() <= 127 and (q.abs().amax(dim=1)[scale > 0] == 127).all()  # each row uses the range
        err = (w - dequantize_int8(q, scale)).abs()  # (out, in)
        assert (err <= scale[:, None] / 2 * (1 + 1e-6)).all()
        assert (err[1] == 0).all() and scale[1] == 0  # the all-zero row is exact


# ---------------------------------------------------------------- int4: packing, by hand, the bound
def test_every_pair_of_nibbles_packs_and_unpacks():
    codes = torch.tensor(list(itertools.product(range(-8, 8), repeat=2)), dtype=torch.int8)  # (256, 2)
    packed = pack_int4(codes)  # (256, 1)
    assert packed.dtype == torch.uint8 and packed.shape == (256, 1)
    want = [(a + 8) + 16 * (b + 8) for a, b in codes.tolist()]  # low nibble: the first of the pair
    assert packed[:, 0].tolist() == want
    assert sorted(want) == list(range(256))  # every byte is used exactly once
    assert torch.equal(unpack_int4(packed), codes)
    every_byte = torch.arange(256, dtype=torch.uint8).view(4, 64)
    assert torch.equal(pack_int4(unpack_int4(every_byte)), every_byte)


def test_int4_by_hand():
    # group 1: max 7 -> scale 1; -3.5 and 2.5 are ties (to even: -4, 2). group 2: max 0.875 -> scale 0.125
    w = torch.tensor([[7.0, -3.5, 2.5, 0.0, 0.875, -0.4375, 0.125, 0.0]])
    packed, scale = quantize_int4(w, group_size=4)
    assert scale.dtype == torch.float16 and scale.tolist() == [[1.0, 0.125]]
    # codes [7, -4, 2, 0 | 7, -4, 1, 0], + 8 = [15, 4, 10, 8 | 15, 4, 9, 8], two per byte, low nibble first
    assert packed.tolist() == [[15 + 16 * 4, 10 + 16 * 8, 15 + 16 * 4, 9 + 16 * 8]]
    deq = dequantize_int4(packed, scale, group_size=4)
    assert deq.tolist() == [[7.0, -4.0, 2.0, 0.0, 0.875, -0.5, 0.125, 0.0]]


@pytest.mark.parametrize("group_size", [2, 16, 32])
def test_int4_scales_are_the_smallest_float16_that_clips_nothing(group_size):
    for w in _matrices(group_size):
        scale = int4_scales(w, group_size)  # (out, groups) float16
        want = w.abs().view(w.size(0), -1, group_size).amax(-1) / 7  # (out, groups) float32
        assert (scale.float() >= want).all()
        below = torch.nextafter(scale, torch.zeros_like(scale))  # one float16 step down
        assert (below.float() < want)[want > 0].all() and (scale[want == 0] == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("group_size", [16, 32])
def test_int4_matches_torch_fake_quantize_per_group_and_keeps_the_bound(seed, group_size):
    for w in _matrices(seed):
        packed, scale = quantize_int4(w, group_size)
        deq = dequantize_int4(packed, scale, group_size)
        s = scale.float().repeat_interleave(group_size, dim=1)  # (out, in)
        assert (unpack_int4(packed).abs() <= 7).all()
        assert ((w - deq).abs() <= s / 2 * (1 + 1e-6)).all()
        # each group as one of torch's channels, with our scales: the same rounding and range
        groups = w.reshape(-1, group_size)
        nonzero = scale.flatten() > 0
        want = torch.fake_quantize_per_channel_affine(groups[nonzero], scale.flatten()[nonzero].float(),
                                                      torch.zeros(int(nonzero.sum()), dtype=torch.int32), 0, -7, 7)
        differ = deq.reshape(-1, group_size)[nonzero] != want
        frac = (groups[nonzero] / scale.flatten()[nonzero].float()[:, None]).abs() % 1
        assert ((frac[differ] - 0.5).abs() < 1e-3).all() and differ.sum() <= 2
        assert (deq.reshape(-1, group_size)[~nonzero] == 0).all()


# ---------------------------------------------------------------- the layer
@pytest.mark.parametrize("scheme", ["int8", "int4"])
@pytest.mark.parametrize("bias", [True, False])
def test_quant_linear_is_f_linear_on_the_dequantised_weight(scheme, bias):
    torch.manual_seed(0)
    linear = nn.Linear(64, 24, bias=bias)
    layer = QuantLinear.from_linear(linear, scheme)
    x = torch.randn(3, 5, 64)
    w = dequantize_int8(*quantize_int8(linear.weight.detach())) if scheme == "int8" else \
        dequantize_int4(*quantize_int4(linear.weight.detach()))  # fmt: skip
    assert torch.equal(layer(x), F.linear(x, w, linear.bias))
    # and within the bound of the float layer: |y - y_float| <= sum_j |x_j| scale_j / 2
    scale = layer.scale.float()[:, None].expand(24, 64) if scheme == "int8" else layer.scale.float().repeat_interleave(32, dim=1)
    slack = x.abs() @ (scale / 2).T  # (3, 5, 24)
    assert ((layer(x) - linear(x)).abs() <= slack + 1e-5).all()
    assert (layer.bias is None) == (not bias) and "scheme=" + scheme in repr(layer)
    assert layer.qweight.dtype == (torch.int8 if scheme == "int8" else torch.uint8)


def _gpt(**changes) -> GPT:
    torch.manual_seed(0)
    cfg = dict(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=64)
    return GPT(GPTConfig.modern(**{**cfg, **changes})).eval()


@pytest.mark.parametrize("scheme", ["int8", "int4"])
@pytest.mark.parametrize("classic", [False, True])
def test_quantize_model_replaces_the_blocks_linears_and_leaves_the_original(scheme, classic):
    model = GPT(GPTConfig.classic(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)).eval() \
        if classic else _gpt()  # fmt: skip
    before = copy.deepcopy(model.state_dict())
    x = torch.randint(0, model.config.vocab_size, (2, 12))
    logits = model(x)[0]
    qm = quantize_model(model, scheme)
    names = block_linear_names(model)
    assert len(names) == 2 * (7 if not classic else 6)  # q, k, v, o + gate, up, down (classic: up, down)
    assert all(isinstance(model.get_submodule(n), nn.Linear) for n in names)  # the original keeps its layers
    assert all(isinstance(qm.get_submodule(n), QuantLinear) for n in names)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model(x)[0], logits)
    assert qm.lm_head.weight is qm.embed_tokens.weight and qm.embed_tokens.weight.dtype == torch.float32
    assert torch.equal(qm.embed_tokens.weight, model.embed_tokens.weight)
    assert not torch.equal(qm(x)[0], logits) and (qm(x)[0] - logits).abs().max() < 0.5


# ---------------------------------------------------------------- saving, loading, sizes
@pytest.mark.parametrize("scheme", ["float32", "int8", "int4"])
def test_save_load_round_trip_is_bit_identical(scheme, tmp_path):
    model = _gpt()
    qm = model if scheme == "float32" else quantize_model(model, scheme)
    path = tmp_path / "model.safetensors"
    size = save_quantized(qm, path)
    assert size == file_size(path) == path.stat().st_size
    back = load_quantized(path)
    assert back.lm_head.weight is back.embed_tokens.weight  # tied again
    assert set(back.state_dict()) == set(qm.state_dict())
    for k, v in qm.state_dict().items():
        assert back.state_dict()[k].dtype == v.dtype and torch.equal(back.state_dict()[k], v), k
    x = torch.randint(0, 65, (2, 20))
    assert torch.equal(back(x)[0], qm(x)[0])
    stored = safetensors.torch.load_file(path)
    assert "lm_head.weight" not in stored  # the tied head is stored once, as the embedding


def test_file_sizes_are_the_bytes_the_shapes_say(tmp_path):
    model = _gpt()
    cfg = model.config
    shapes = [(cfg.n_embd, cfg.n_embd), (cfg.n_embd // 2, cfg.n_embd), (cfg.n_embd // 2, cfg.n_embd),
              (cfg.n_embd, cfg.n_embd), (cfg.ffn_dim, cfg.n_embd), (cfg.ffn_dim, cfg.n_embd),
              (cfg.n_embd, cfg.ffn_dim)] * cfg.n_layer  # (out, in): q, k, v (2 of 4 heads), o, gate, up, down
    rest = 4 * (cfg.vocab_size * cfg.n_embd + (2 * cfg.n_layer + 1) * cfg.n_embd)  # embedding and norms, float32
    blocks = {"float32": sum(4 * o * i for o, i in shapes),
              "int8": sum(o * i + 4 * o for o, i in shapes),  # a byte a weight, a float32 scale a row
              "int4": sum(o * i // 2 + 2 * o * i // 32 for o, i in shapes)}  # half a byte, a float16 per 32
    for scheme, want in blocks.items():
        path = tmp_path / f"{scheme}.safetensors"
        size = save_quantized(model if scheme == "float32" else quantize_model(model, scheme), path)
        header = size - want - rest
        assert 0 < header < 6000, (scheme, header)  # safetensors' JSON header: names, shapes, offsets
    assert weight_bits("int4") == 4.5 and weight_bits("int8") == 8 and weight_bits("int4", 64) == 4.25


def test_torch_dynamic_int8_is_a_copy_that_saves(tmp_path):
    model = _gpt()
    before = copy.deepcopy(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks torch.ao.quantization deprecated
        try:
            dq = torch_dynamic_int8(model)
        except RuntimeError as err:
            pytest.skip(str(err))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randint(0, 65, (1, 16))
    assert (dq(x)[0] - model(x)[0]).abs().max() < 0.5
    path = tmp_path / "dyn.safetensors"
    size = save_quantized(dq, path)
    assert size < save_quantized(model, tmp_path / "f32.safetensors") / 3
    assert safetensors.torch.load_file(path)["layers.0.self_attn.q_proj.weight_int8"].dtype == torch.int8
    with pytest.raises(ValueError, match="call torch_dynamic_int8"):
        load_quantized(path)


# ---------------------------------------------------------------- bad input, and what to do
def test_errors_say_what_to_do(tmp_path):
    w = torch.randn(4, 96)
    with pytest.raises(TypeError, match="floating-point .* already quantised"):
        quantize_int8(w.to(torch.int8))
    with pytest.raises(ValueError, match="2-D weight matrix"):
        quantize_int4(torch.randn(96))
    with pytest.raises(ValueError, match=r"not a multiple of group_size=64: choose one that divides it"):
        quantize_int4(w, group_size=64)
    with pytest.raises(ValueError, match="even whole number"):
        quantize_int4(w, group_size=3)
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize_int8(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(TypeError, match="int8 tensor as quantize_int8 returns"):
        dequantize_int8(torch.zeros(2, 2), torch.ones(2))
    with pytest.raises(TypeError, match="uint8 tensor as pack_int4 returns"):
        unpack_int4(torch.zeros(2, 2, dtype=torch.int8))
    with pytest.raises(ValueError, match=r"in \[-8, 7\]"):
        pack_int4(torch.tensor([[9, 0]], dtype=torch.int8))
    with pytest.raises(ValueError, match="group size"):
        dequantize_int4(*quantize_int4(w, 32), group_size=16)
    model = _gpt()
    with pytest.raises(ValueError, match="unknown scheme 'int3': choose 'int8'"):
        quantize_model(model, "int3")
    with pytest.raises(ValueError, match=r"layers\.0\.self_attn\.q_proj: in_features=64 is not a multiple"):
        quantize_model(model, "int4", group_size=48)
    with pytest.raises(TypeError, match="course GPT"):
        quantize_model(nn.Linear(4, 4), "int8")
    other = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"x": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not written by course_lib.quantize"):
        load_quantized(other)
