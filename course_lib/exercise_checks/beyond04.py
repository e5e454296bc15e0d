"""Part 3, quantisation's exercises: unpacking 4-bit codes, affine (zero-point) quantisation, the size of a
4-bit 7B model, bits against group size on a tiny GPT."""

from __future__ import annotations

import copy
import itertools
import math
import numbers
import random
from functools import lru_cache
from typing import Any

import torch

from course_lib.exercise_checks.tiny import heldout_batches, mean_loss, tiny_shakespeare, train_tiny
from course_lib.exercises import Wrong, exercise
from course_lib.exercises import call_reported as _call
from course_lib.model import GPT, GPTConfig


def _int_tensor(got: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"{what} should return a tensor, got {type(got).__name__}")
    if tuple(got.shape) != shape:
        raise Wrong(f"{what} should return shape {shape}, got {tuple(got.shape)}")
    if got.dtype.is_floating_point or got.dtype == torch.bool:
        raise Wrong(f"{what} should return integer codes (e.g. int8), got {got.dtype}")
    return got.long()


# ---------------------------------------------------------------- exercise 1
def unpack_reference(packed: torch.Tensor) -> torch.Tensor:
    """Byte j of a row holds code 2j in its low nibble and code 2j + 1 in its high one, each stored as q + 8."""
    rows = []
    for row in packed.tolist():
        rows.append([c for byte in row for c in ((byte % 16) - 8, (byte // 16) - 8)])
    return torch.tensor(rows, dtype=torch.long).view(packed.size(0), 2 * packed.size(1))


@exercise("beyond04.ex1", title="unpacking 4-bit codes", kind="code", section="section 4, Two codes in a byte")
def check_unpack(fn: Any) -> str:
    every = torch.tensor(list(itertools.product(range(-8, 8), repeat=2)), dtype=torch.int8)  # (256, 2) all pairs
    by_hand = (torch.tensor([[241, 8]], dtype=torch.uint8), [[-7, 7, 0, -8]])  # 1 | 15 << 4, then 8 | 0 << 4
    got = _int_tensor(_call(fn, "unpack_int4(tensor([[241, 8]], dtype=uint8))", by_hand[0].clone()), (1, 4),
                      "unpack_int4 on one row of two bytes")  # fmt: skip
    if got.tolist() != by_hand[1]:
        raise Wrong(f"unpack_int4([[241, 8]]) gave {got.tolist()}, not {by_hand[1]}: 241 = 1 + 15 * 16, the low "
                    "nibble (1) is the first code, 1 - 8 = -7")
    from course_lib.quantize import pack_int4

    rng = random.Random(4401)
    cases = [pack_int4(every)] + [pack_int4(torch.randint(-8, 8, (rng.randint(1, 9), 2 * rng.randint(1, 20)),
                                                          dtype=torch.int8)) for _ in range(10)]  # fmt: skip
    for packed in cases:
        where = f"unpack_int4 on a {tuple(packed.shape)} uint8 tensor"
        given = packed.clone()
        got = _int_tensor(_call(fn, where, given), (packed.size(0), 2 * packed.size(1)), where)
        if not torch.equal(given, packed):
            raise Wrong(f"{where} changed its input: work on new tensors")
        want = unpack_reference(packed)
        if not torch.equal(got, want):
            r, c = (got != want).nonzero()[0].tolist()
            raise Wrong(f"{where}: code [{r}, {c}] is {int(got[r, c])}, should be {int(want[r, c])} (byte "
                        f"{int(packed[r, c // 2])}, its {'high' if c % 2 else 'low'} nibble, minus 8)")
    return f"(all 256 pairs of codes and {len(cases) - 1} random matrices)"


# ---------------------------------------------------------------- exercise 2
def affine_scale(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's min-max scale (out,) and zero point (out,) int32, the range stretched to hold 0."""
    qmax = 2**bits - 1
    lo = w.amin(dim=1).clamp(max=0)  # (out,): the range always holds 0
    hi = w.amax(dim=1).clamp(min=0)
    scale = (hi - lo) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale is exact
    return scale, torch.round(-lo / scale).to(torch.int32)  # zero point (out,) in [0, qmax]


def affine_reference(w: torch.Tensor, bits: int) -> torch.Tensor:
    """torch's own fake quantisation, with the scale and zero point of :func:`affine_scale`."""
    scale, zero_point = affine_scale(w, bits)
    return torch.fake_quantize_per_channel_affine(w, scale, zero_point, 0, 0, 2**bits - 1)


def _symmetric_error(w: torch.Tensor, bits: int) -> float:
    qmax = 2 ** (bits - 1) - 1
    s = (w.abs().amax(dim=1, keepdim=True) / qmax).clamp(min=1e-12)
    return ((torch.round(w / s).clamp(-qmax, qmax) * s) - w).pow(2).mean().item()


@exercise("beyond04.ex2", title="affine quantisation with a zero point", kind="code",
          section="section 3, Why one scale per row")
def check_affine(fn: Any) -> str:
    g = torch.Generator().manual_seed(4402)
    rng = random.Random(4402)
    by_hand = torch.tensor([[0.0, 1.5, 3.0, 0.6], [-1.0, -0.6, 0.0, -0.25], [0.0, 0.0, 0.0, 0.0]])
    cases = [(by_hand, 2)]  # row 0: scale 1, zero point 0; row 1: scale 1/3, zero point 3; row 2: all zero
    for _ in range(16):
        rows, cols, bits = rng.randint(1, 12), rng.randint(1, 40), rng.choice([2, 3, 4, 8])
        w = torch.randn(rows, cols, generator=g) * rng.choice([0.01, 1.0, 30.0])
        if rows > 1:
            w[0] = w[0].abs() + rng.random()  # all positive: symmetric absmax wastes half its codes here
        if rows > 2:
            w[1] = 0.0
        cases.append((w, bits))
    worse = []
    for w, bits in cases:
        where = f"fake_quantize_affine(w, bits={bits}) for a {tuple(w.shape)} w"
        got = _call(fn, where, w.clone(), bits)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(w.shape):
            raise Wrong(f"{where} should return a tensor of w's shape {tuple(w.shape)}, got "
                        f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}")
        got = got.detach().float()
        if not torch.isfinite(got).all():
            raise Wrong(f"{where} returned NaN or inf: an all-zero row has hi - lo = 0, so give it any scale > 0")
        want = affine_reference(w, bits)
        scale = affine_scale(w, bits)[0][:, None]  # (out, 1)
        bad = (got - want).abs() > 1e-5 * (1 + want.abs())
        # torch multiplies by 1 / scale: at a rounding tie it may go one step the other way, which is not wrong
        tie = ((w / scale).abs() % 1 - 0.5).abs() < 1e-3
        bad &= ~(tie & (((got - want).abs() - scale).abs() < 1e-5 * (1 + want.abs())))
        if bad.any():
            r, c = bad.nonzero()[0].tolist()
            raise Wrong(f"{where}: entry [{r}, {c}] = {w[r, c].item():.6g} came back as {got[r, c].item():.6g}, "
                        f"not {want[r, c].item():.6g} (is the range [min(w, 0), max(w, 0)] in {2**bits - 1} steps, "
                        "the zero point round(-lo / scale), and q clamped to [0, 2^bits - 1]?)")
        if w.size(0) > 1 and w.size(1) > 3:
            worse.append(_symmetric_error(w[:1], bits) / max((want[:1] - w[:1]).pow(2).mean().item(), 1e-30))
    worse.sort()
    return f"(on rows of positive weights, symmetric absmax has {worse[len(worse) // 2]:.1f}x the squared error: the median)"


# ---------------------------------------------------------------- exercise 3
SEVEN_B = 7_000_000_000


def gigabytes_4bit_7b() -> float:
    """4 bits per weight and a 16-bit scale per 32 weights: 4.5 bits, 7e9 x 4.5 / 8 bytes, in GB (1e9 bytes)."""
    return SEVEN_B * (4 + 16 / 32) / 8 / 1e9


@exercise("beyond04.ex3", title="the size of a 4-bit 7B model", kind="value",
          section="section 4, Groups of 32 and 4-bit codes")
def check_7b(answer: Any) -> str:
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real) or not math.isfinite(answer):
        raise Wrong(f"the answer is a number of gigabytes, got {type(answer).__name__} {answer!r}")
    want = gigabytes_4bit_7b()
    if not math.isclose(answer, want, rel_tol=5e-3):
        raise Wrong(f"{answer:g} GB is not the size of 7 billion weights at 4 bits with one float16 scale per 32 "
                    "weights (count the scales' bits per weight, then bytes, then units of 10^9 bytes)")
    return f"({want:.4g} GB, against {SEVEN_B * 2 / 1e9:g} GB in float16)"


# ---------------------------------------------------------------- exercise 4
TINY_QUANT_DEFAULTS = {"bits": 2, "group_size": 32}
TINY_QUANT_BUDGET = 3.5  # bits per weight, the float16 scales included
TINY_QUANT_TARGET = 0.03  # nats/char the quantised tiny model may lose


def _settings(answer: Any) -> dict[str, int]:
    if not isinstance(answer, dict):
        raise Wrong(f"the answer is a dict of settings such as {TINY_QUANT_DEFAULTS}, got {type(answer).__name__}")
    unknown = sorted(set(answer) - set(TINY_QUANT_DEFAULTS))
    if unknown:
        raise Wrong(f"unknown settings {unknown}: the settings are {sorted(TINY_QUANT_DEFAULTS)}")
    s = {**TINY_QUANT_DEFAULTS, **answer}
    bits, group = s["bits"], s["group_size"]
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise Wrong(f"bits must be a whole number from 2 to 8, got {bits!r}")
    if isinstance(group, bool) or not isinstance(group, int) or group < 1 or 64 % group:
        raise Wrong(f"group_size must divide 64 (the tiny model's width): 1, 2, 4, 8, 16, 32 or 64, got {group!r}")
    return s


def bits_per_weight(settings: dict[str, int]) -> float:
    """``bits`` for each code and 16 for each group's float16 scale, shared by ``group_size`` weights."""
    s = _settings(settings)
    return s["bits"] + 16 / s["group_size"]


def fake_quantize_groups(w: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Symmetric absmax in groups of ``group_size`` inputs, codes in [-(2^(b-1) - 1), 2^(b-1) - 1], float16
    scales rounded up; returns the dequantised matrix."""
    qmax = 2 ** (bits - 1) - 1
    groups = w.view(w.size(0), -1, group_size)  # (out, n_groups, group_size)
    want = groups.abs().amax(dim=-1) / qmax  # (out, n_groups)
    s = want.half()
    s = torch.where(s.float() < want, torch.nextafter(s, torch.full_like(s, math.inf)), s).float()
    q = torch.round(groups / torch.where(s > 0, s, torch.ones_like(s))[..., None]).clamp(-qmax, qmax)
    return (q * s[..., None]).view_as(w)


@lru_cache(maxsize=1)
def _tiny_model() -> tuple[GPT, tuple[tuple[torch.Tensor, torch.Tensor], ...], float]:
    """A 2-block GPT (width 64, context 32) trained for 400 steps, 16 fixed held-out batches, its loss on them."""
    train, val, vocab = tiny_shakespeare()
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=vocab, block_size=32, n_layer=2, n_head=4, n_embd=64))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1, betas=(0.9, 0.99))
    train_tiny(model, opt, train, 400, 16)
    model.eval()
    batches = tuple(heldout_batches(val, 16, 32))
    return model, batches, mean_loss(model, batches)


def tiny_quant(answer: Any) -> float:
    """The nats/char a tiny trained GPT loses when every block matrix is quantised with these settings
    (the same 16 held-out batches before and after; the embedding stays float32)."""
    from course_lib.quantize import block_linear_names

    s = _settings(answer)
    model, batches, before = _tiny_model()
    quantised = copy.deepcopy(model)
    with torch.no_grad():
        for name in block_linear_names(quantised):
            layer = quantised.get_submodule(name)
            layer.weight.copy_(fake_quantize_groups(layer.weight, s["bits"], s["group_size"]))
    return mean_loss(quantised, batches) - before


@exercise("beyond04.ex4", title="bits against group size", kind="experiment",
          section="section 6, Size and loss, measured")
def check_tiny_quant(answer: Any) -> str:
    s = _settings(answer)
    budget = bits_per_weight(s)
    if budget > TINY_QUANT_BUDGET:
        raise Wrong(f"{s} stores {budget:g} bits per weight ({s['bits']} per code + 16 / {s['group_size']} for the "
                    f"scales): the budget is {TINY_QUANT_BUDGET}")
    cost = tiny_quant(s)
    if cost > TINY_QUANT_TARGET:
        raise Wrong(f"with {s} ({budget:g} bits per weight) the tiny model loses {cost:.3f} nats/char; the target "
                    f"is at most {TINY_QUANT_TARGET}")
    return f"({s}: {budget:g} bits per weight, {cost:+.4f} nats/char)"
