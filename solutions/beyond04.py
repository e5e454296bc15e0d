"""Part 3, quantisation: solutions, and wrong answers the checkers must reject."""

import torch


# beyond04.ex1 ---------------------------------------------------------------------------
def unpack_int4(packed):
    """Each byte holds two codes, each stored as q + 8: the low nibble first, then the high one."""
    low = (packed & 0x0F).to(torch.int8) - 8  # (rows, m): codes 0, 2, 4, ...
    high = (packed >> 4).to(torch.int8) - 8  # (rows, m): codes 1, 3, 5, ...
    return torch.stack([low, high], dim=-1).flatten(-2)  # (rows, 2m): low, high, low, high, ...


# beyond04.ex2 ---------------------------------------------------------------------------
def fake_quantize_affine(w, bits):
    """Per row: the range [min(w, 0), max(w, 0)] in 2^bits - 1 steps, an integer zero point, then back."""
    qmax = 2**bits - 1
    lo = w.amin(dim=1, keepdim=True).clamp(max=0)  # (out, 1): the range holds 0, so 0 stays exact
    hi = w.amax(dim=1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale will do
    zero_point = torch.round(-lo / scale)  # (out, 1): the code that stands for 0.0
    q = torch.clamp(torch.round(w / scale) + zero_point, 0, qmax)  # (out, in) codes in [0, qmax]
    return (q - zero_point) * scale


# beyond04.ex3 ---------------------------------------------------------------------------
# 4 bits per code and one 16-bit scale per 32 weights: 4 + 16 / 32 = 4.5 bits per weight.
# 7e9 weights x 4.5 bits / 8 bits per byte = 3.9375e9 bytes (float16: 14e9 bytes).
GIGABYTES_4BIT_7B = 7e9 * 4.5 / 8 / 1e9
# end beyond04.ex3

# beyond04.ex4 ---------------------------------------------------------------------------
# tiny_quant, nats/char lost (bits per weight): 2 bits: g8 +0.073 (4.0), g16 +0.122 (3.0), g32 +0.179 (2.5);
# 3 bits: g16 +0.014 (4.0), g32 +0.011 (3.5), g64 +0.009 (3.25); 4 bits: g32 +0.001 (4.5), g64 +0.003 (4.25).
# Within 3.5 bits a third bit per code is worth far more than smaller groups for two.
TINY_QUANT_SETTINGS = {"bits": 3, "group_size": 64}
# end beyond04.ex4

SOLUTIONS = {
    "beyond04.ex1": unpack_int4,
    "beyond04.ex2": fake_quantize_affine,
    "beyond04.ex3": GIGABYTES_4BIT_7B,
    "beyond04.ex4": TINY_QUANT_SETTINGS,
}


# ---------------------------------------------------------------- wrong answers
def _unpack_high_first(packed):  # the nibbles in the wrong order
    low, high = (packed & 0x0F).to(torch.int8) - 8, (packed >> 4).to(torch.int8) - 8
    return torch.stack([high, low], dim=-1).flatten(-2)


def _unpack_no_offset(packed):  # the stored nibbles, 0 to 15, not the codes
    return torch.stack([packed & 0x0F, packed >> 4], dim=-1).flatten(-2).to(torch.int8)


def _unpack_twos_complement(packed):  # reads each nibble as a signed 4-bit number: not the q + 8 layout
    nib = torch.stack([packed & 0x0F, packed >> 4], dim=-1).flatten(-2).to(torch.int8)
    return torch.where(nib > 7, nib - 16, nib)


def _unpack_halves(packed):  # all the low nibbles, then all the high ones: not interleaved
    return torch.cat([(packed & 0x0F).to(torch.int8) - 8, (packed >> 4).to(torch.int8) - 8], dim=-1)


def _affine_without_zero(w, bits):  # the range [min(w), max(w)]: on a row of positive weights 0 is not exact
    qmax = 2**bits - 1
    lo, hi = w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True)
    scale = torch.where(hi > lo, (hi - lo) / qmax, torch.ones_like(hi))
    zero_point = torch.round(-lo / scale)
    return (torch.clamp(torch.round(w / scale) + zero_point, 0, qmax) - zero_point) * scale


def _affine_2_to_the_bits(w, bits):  # 2^bits steps instead of 2^bits - 1: the top code is never reached
    qmax = 2**bits - 1
    lo, hi = w.amin(dim=1, keepdim=True).clamp(max=0), w.amax(dim=1, keepdim=True).clamp(min=0)
    scale = torch.where(hi > lo, (hi - lo) / 2**bits, torch.ones_like(hi))
    zero_point = torch.round(-lo / scale)
    return (torch.clamp(torch.round(w / scale) + zero_point, 0, qmax) - zero_point) * scale


def _symmetric_absmax(w, bits):  # no zero point at all: half the codes unused on a row of positive weights
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / qmax
    return torch.round(w / scale).clamp(-qmax, qmax) * scale


def _affine_unrounded_zero(w, bits):  # a fractional zero point: 0.0 no longer comes back as 0.0
    qmax = 2**bits - 1
    lo, hi = w.amin(dim=1, keepdim=True).clamp(max=0), w.amax(dim=1, keepdim=True).clamp(min=0)
    scale = torch.where(hi > lo, (hi - lo) / qmax, torch.ones_like(hi))
    zero_point = -lo / scale
    return (torch.clamp(torch.round(w / scale + zero_point), 0, qmax) - zero_point) * scale


WRONG = {
    "beyond04.ex1": [_unpack_high_first, _unpack_no_offset, _unpack_twos_complement, _unpack_halves],
    "beyond04.ex2": [_affine_without_zero, _affine_2_to_the_bits, _symmetric_absmax, _affine_unrounded_zero],
    "beyond04.ex3": [7e9 * 4 / 8 / 1e9, 7e9 * 5 / 8 / 1e9, 7e9 * 4.5 / 1e9, 14.0],
    "beyond04.ex4": [{}, {"bits": 2, "group_size": 8}, {"bits": 4, "group_size": 64}, {"bits": 2, "group_size": 16}],
}
