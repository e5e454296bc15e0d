"""Part 3 (Beyond the course 4): weight-only quantisation of a GPT, int8 per channel and 4-bit groups.

A weight matrix ``w`` (out, in) is stored as small integers ``q`` and a few float scales,
and turned back into floats (dequantised) when it is used: ``w ~ q * scale``.

- **int8, per output channel** (one scale per row), symmetric absmax:
  ``scale_r = max_j |w_rj| / 127``, ``q = round(w / scale)`` in [-127, 127], int8.
- **int4, per group** of ``group_size`` inputs (default 32) along each row, symmetric absmax:
  ``scale_g = max_{j in g} |w_rj| / 7``, ``q`` in [-7, 7], two 4-bit values packed in a byte;
  the scales are float16 (2 bytes per 32 weights: 4.5 bits per weight in all).

Both leave ``|w - q * scale| <= scale / 2`` for every entry: rounding moves ``w / scale``
by at most one half, and the absmax scale makes every ``w / scale`` land inside the range,
so nothing is clipped. Both ranges are symmetric and leave out one code (-128, -8): zero is
exact and ``-q`` is always representable, at the cost of one level of 256 (or 16).

>>> w = torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]])
>>> q, scale = quantize_int8(w)
>>> q.tolist(), scale.tolist()            # row 0: scale 1/127; an all-zero row: scale 0
([[64, -127, 32], [0, 0, 0]], [0.007874015718698502, 0.0])
>>> pack_int4(torch.tensor([[-7, 7, 0, -8]], dtype=torch.int8)).tolist()   # low nibble first, q + 8
[[241, 8]]

:class:`QuantLinear` holds a quantised weight and dequantises it in ``forward`` (a float32
matmul, the bias kept as it was); :func:`quantize_model` returns a copy of a GPT whose
blocks' ``nn.Linear`` layers are QuantLinear. The token embedding, and the output head
tied to it, stay float32: the embedding is a lookup table, and the tied head is the same
tensor. :func:`save_quantized` writes a model to one safetensors file (no pickle),
:func:`load_quantized` reads it back, and :func:`file_size` is the size on disk.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from typing import Literal

import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.model import GPT, GPTConfig

Scheme = Literal["int8", "int4"]
SCHEMES = ("int8", "int4")  # per output channel; groups of group_size inputs
INT8_MAX = 127  # symmetric: -128 is never used
INT4_MAX = 7  # symmetric: -8 is never produced (it still packs and unpacks)
DEFAULT_GROUP_SIZE = 32  # one float16 scale per 32 weights: +0.5 bit per weight
FORMAT = "course_lib.quantize/1"  # the "format" entry of a saved file's metadata
TORCH_DYNAMIC = "torch-dynamic-int8"  # what save_quantized calls torch's quantize_dynamic model


def _check_weight(w: torch.Tensor, what: str = "w") -> None:
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"{what} must be a 2-D weight matrix (out_features, in_features), got {shape}")
    if not w.dtype.is_floating_point:
        raise TypeError(f"{what} must be a floating-point matrix, got {w.dtype}: is it already quantised? "
                        "Quantise the float weights (dequantise first if you only have q and scales).")
    if not torch.isfinite(w).all():
        raise ValueError(f"{what} holds NaN or inf, which no scale can represent: fix the weights first")


def _check_codes(q: torch.Tensor, dtype: torch.dtype, what: str, made_by: str) -> None:
    if not isinstance(q, torch.Tensor) or q.dtype != dtype:
        got = q.dtype if isinstance(q, torch.Tensor) else type(q).__name__
        raise TypeError(f"{what} must be a {dtype} tensor as {made_by} returns it, got {got}")


# ---------------------------------------------------------------- int8, one scale per output channel
def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w (out, in) float -> (q (out, in) int8 in [-127, 127], scale (out,) float32).

    ``scale[r] = max |w[r]| / 127``; an all-zero row gets scale 0 and q 0 (exact).
    """
    _check_weight(w)
    w = w.float()
    scale = w.abs().amax(dim=1) / INT8_MAX  # (out,)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row divides by 1
    q = torch.round(w / safe[:, None]).clamp(-INT8_MAX, INT8_MAX)  # (out, in), round half to even
    return q.to(torch.int8), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(q (out, in) int8, scale (out,)) -> w (out, in) float32 = q * scale per row."""
    _check_codes(q, torch.int8, "q", "quantize_int8")
    if scale.shape != (q.size(0),):
        raise ValueError(f"scale must have one entry per row of q, shape ({q.size(0)},), got {tuple(scale.shape)}")
    return q.float() * scale.float()[:, None]  # (out, in)


# ---------------------------------------------------------------- int4, one scale per group of inputs
def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """q (..., n) int8 in [-8, 7], n even -> (..., n / 2) uint8: byte j = (q[2j] + 8) | (q[2j+1] + 8) << 4."""
    _check_codes(q, torch.int8, "q", "quantize_int4 (before packing)")
    if q.size(-1) % 2:
        raise ValueError(f"pack_int4 packs pairs of values: the last dimension must be even, got {q.size(-1)}")
    if q.numel() and (q.min() < -8 or q.max() > 7):
        raise ValueError(f"4-bit values must be in [-8, 7], got [{int(q.min())}, {int(q.max())}]")
    u = (q.to(torch.int16) + 8).to(torch.uint8)  # (..., n) offset binary in [0, 15]
    return u[..., 0::2] | (u[..., 1::2] << 4)  # (..., n / 2): the even column in the low nibble


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """packed (..., m) uint8 -> (..., 2m) int8 in [-8, 7], the inverse of :func:`pack_int4`."""
    _check_codes(packed, torch.uint8, "packed", "pack_int4")
    low = (packed & 0x0F).to(torch.int8) - 8  # (..., m): the even columns
    high = (packed >> 4).to(torch.int8) - 8  # (..., m): the odd columns
    return torch.stack([low, high], dim=-1).flatten(-2)  # (..., 2m), interleaved back


def check_group_size(in_features: int, group_size: int) -> None:
    """A ValueError saying what to choose unless ``group_size`` is even and divides ``in_features``."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2 or group_size % 2:
        raise ValueError(f"group_size must be an even whole number >= 2 (two 4-bit values per byte), "
                         f"got {group_size!r}; 32 is the usual choice")
    if in_features % group_size:
        fits = [g for g in range(2, min(in_features, 256) + 1, 2) if in_features % g == 0]
        advice = f"choose one that divides it, e.g. {fits[-4:]}" if fits else "it is odd: use int8 for this layer"
        raise ValueError(f"in_features={in_features} is not a multiple of group_size={group_size}: {advice}")


def int4_scales(w: torch.Tensor, group_size: int = DEFAULT_GROUP_SIZE) -> torch.Tensor:
    """w (out, in) -> the float16 scales (out, in / group_size): max |w| of each group / 7, rounded *up*
    to a float16, so that every ``|w| / scale <= 7`` and nothing is clipped."""
    _check_weight(w)
    check_group_size(w.size(1), group_size)
    absmax = w.float().abs().view(w.size(0), -1, group_size).amax(dim=-1)  # (out, groups)
    if absmax.max() / INT4_MAX > torch.finfo(torch.float16).max:
        raise ValueError(f"a weight of magnitude {absmax.max():.3g} needs a scale beyond float16's "
                         f"{torch.finfo(torch.float16).max:g}: use int8 (float32 scales) for this layer")
    want = absmax / INT4_MAX  # (out, groups) float32
    scale = want.half()
    low = scale.float() < want  # rounded down (or flushed to 0): one float16 step up
    return torch.where(low, torch.nextafter(scale, torch.full_like(scale, float("inf"))), scale)


def quantize_int4(w: torch.Tensor, group_size: int = DEFAULT_GROUP_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """w (out, in) -> (packed (out, in / 2) uint8, scale (out, in / group_size) float16).

    Each group of ``group_size`` consecutive inputs of a row has its own scale (see
    :func:`int4_scales`); ``q = round(w / scale)`` in [-7, 7], packed by :func:`pack_int4`.
    """
    scale = int4_scales(w, group_size)  # (out, groups)
    s = scale.float().repeat_interleave(group_size, dim=1)  # (out, in)
    safe = torch.where(s > 0, s, torch.ones_like(s))  # an all-zero group divides by 1
    q = torch.round(w.float() / safe).clamp(-INT4_MAX, INT4_MAX).to(torch.int8)  # (out, in)
    return pack_int4(q), scale


def dequantize_int4(packed: torch.Tensor, scale: torch.Tensor, group_size: int = DEFAULT_GROUP_SIZE) -> torch.Tensor:
    """(packed (out, in / 2) uint8, scale (out, in / group_size)) -> w (out, in) float32."""
    q = unpack_int4(packed)  # (out, in) int8
    out, n_in = q.shape
    check_group_size(n_in, group_size)
    if scale.shape != (out, n_in // group_size):
        raise ValueError(f"scale must be ({out}, {n_in // group_size}) for {n_in} inputs in groups of "
                         f"{group_size}, got {tuple(scale.shape)}: was it quantised with another group size?")
    return (q.float().view(out, -1, group_size) * scale.float()[..., None]).view(out, n_in)  # (out, in)


# ---------------------------------------------------------------- the layer and the model
def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}: choose 'int8' (one scale per output channel) or "
                         f"'int4' (4-bit, one scale per group of group_size inputs)")


class QuantLinear(nn.Module):
    """A weight-only quantised ``nn.Linear``: y = x @ dequantise(q, scale).T + bias, in float32.

    Buffers: ``qweight`` (out, in) int8 for "int8", or (out, in / 2) uint8 for "int4";
    ``scale`` (out,) float32 or (out, in / group_size) float16. ``bias`` stays a float Parameter.
    """

    def __init__(self, in_features: int, out_features: int, scheme: Scheme, group_size: int = DEFAULT_GROUP_SIZE,
                 bias: bool = True) -> None:  # fmt: skip
        super().__init__()
        _check_scheme(scheme)
        self.in_features, self.out_features, self.scheme = in_features, out_features, scheme
        self.group_size = group_size if scheme == "int4" else None
        if scheme == "int4":
            check_group_size(in_features, group_size)
            self.register_buffer("qweight", torch.zeros(out_features, in_features // 2, dtype=torch.uint8))
            self.register_buffer("scale", torch.zeros(out_features, in_features // group_size, dtype=torch.float16))
        else:
            self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8))
            self.register_buffer("scale", torch.zeros(out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, scheme: Scheme, group_size: int = DEFAULT_GROUP_SIZE) -> QuantLinear:
        """A QuantLinear holding ``linear``'s weight quantised and a copy of its bias."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"from_linear takes an nn.Linear, got {type(linear).__name__}")
        layer = cls(linear.in_features, linear.out_features, scheme, group_size, bias=linear.bias is not None)
        with torch.no_grad():
            w = linear.weight.detach()
            q, scale = quantize_int8(w) if scheme == "int8" else quantize_int4(w, group_size)
            layer.qweight.copy_(q)
            layer.scale.copy_(scale)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        return layer.to(linear.weight.device)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight (out, in) the layer computes with."""
        if self.scheme == "int8":
            return dequantize_int8(self.qweight, self.scale)
        return dequantize_int4(self.qweight, self.scale, self.group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        w = self.dequantized_weight()  # (out, in): rebuilt at every call, only q and scale are kept
        return F.linear(x, w.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}" if self.scheme == "int4" else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.scheme}{group}, "
                f"bias={self.bias is not None}")


def block_linear_names(model: GPT) -> list[str]:
    """The names of the ``nn.Linear`` layers inside ``model.layers``, e.g. ``layers.0.self_attn.q_proj``."""
    if not isinstance(model, GPT):
        raise TypeError(f"expected a course GPT (course_lib.model.GPT), got {type(model).__name__}")
    return [f"layers.{name}" for name, m in model.layers.named_modules() if isinstance(m, nn.Linear)]


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)


def quantize_model(model: GPT, scheme: Scheme, *, group_size: int = DEFAULT_GROUP_SIZE) -> GPT:
    """A copy of ``model`` with every ``nn.Linear`` of its blocks a :class:`QuantLinear`; ``model`` is untouched.

    The embedding and the (tied) lm_head stay float32, as do the norms: the embedding is
    a lookup, and the tied head is the same tensor (quantising it would untie it).
    """
    _check_scheme(scheme)
    names = block_linear_names(model)
    if scheme == "int4":  # every layer's error before any is built: the message names the layer
        for name in names:
            try:
                check_group_size(model.get_submodule(name).in_features, group_size)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
    out = copy.deepcopy(model)  # deepcopy keeps the tie: lm_head.weight is embed_tokens.weight
    for name in names:
        _replace(out, name, QuantLinear.from_linear(out.get_submodule(name), scheme, group_size))
    return out


def torch_dynamic_int8(model: GPT) -> nn.Module:
    """torch's own reference: ``torch.ao.quantization.quantize_dynamic`` on the same layers as quantize_model.

    int8 weights with one scale per matrix, and the activations quantised too, at run time,
    for an int8 matmul. Returns a copy; raises RuntimeError saying why when this torch
    lacks it. torch's warnings (it marks ``torch.ao.quantization`` deprecated) pass through.
    """
    names = block_linear_names(model)
    try:
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic
    except ImportError as err:
        raise RuntimeError(f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic ({err}); "
                           "torchao's quantize_ replaces it") from None
    return quantize_dynamic(model, {name: default_dynamic_qconfig for name in names}, dtype=torch.qint8)


# ---------------------------------------------------------------- saving and loading
def _torch_dynamic_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers torch's quantize_dynamic made (torch.ao.nn.quantized.dynamic.Linear), by name."""
    try:
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    except ImportError:
        return {}
    return {n: m for n, m in model.named_modules() if isinstance(m, DynamicLinear)}


def _scheme_of(model: nn.Module) -> tuple[str, int | None]:
    kinds = {(m.scheme, m.group_size) for m in model.modules() if isinstance(m, QuantLinear)}
    if _torch_dynamic_layers(model):
        kinds.add((TORCH_DYNAMIC, None))
    if len(kinds) > 1:
        raise ValueError(f"the model mixes schemes {sorted(kinds, key=str)}: save_quantized stores one scheme")
    return kinds.pop() if kinds else ("float32", None)


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor of the state dict, torch's packed int8 layers unpacked to plain tensors."""
    dynamic = _torch_dynamic_layers(model)
    out = {k: v for k, v in model.state_dict().items() if not any(k.startswith(n + ".") for n in dynamic)}
    for name, m in dynamic.items():
        w = m.weight()  # a qint8 tensor, one scale for the matrix
        out[f"{name}.weight_int8"] = w.int_repr()
        out[f"{name}.weight_scale"] = torch.tensor([w.q_scale()], dtype=torch.float32)
        out[f"{name}.weight_zero_point"] = torch.tensor([w.q_zero_point()], dtype=torch.int32)
        if m.bias() is not None:
            out[f"{name}.bias"] = m.bias()
    return out


def save_quantized(model: GPT, path: str | os.PathLike) -> int:
    """Write ``model`` (float, quantised by :func:`quantize_model`, or torch's dynamic int8) to one
    safetensors file; returns its size in bytes. A tied head is stored once, as the embedding."""
    if not isinstance(model, GPT):
        raise TypeError(f"save_quantized takes a course GPT, got {type(model).__name__}")
    scheme, group_size = _scheme_of(model)
    tensors = _tensors(model)
    tied = model.lm_head.weight is model.embed_tokens.weight
    if tied:
        del tensors["lm_head.weight"]  # the same tensor as embed_tokens.weight
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"format": FORMAT, "scheme": scheme, "group_size": json.dumps(group_size), "tied": json.dumps(tied),
            "model_config": json.dumps(model.config.to_dict())}  # fmt: skip
    safetensors.torch.save_file(tensors, os.fspath(path), metadata=meta)
    return file_size(path)


def load_quantized(path: str | os.PathLike) -> GPT:
    """The GPT saved by :func:`save_quantized` (float32 or a course scheme), bit for bit."""
    with safetensors.safe_open(os.fspath(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} was not written by course_lib.quantize.save_quantized (format "
                             f"{meta.get('format')!r}); load a checkpoint folder with course_lib.checkpoint")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    scheme, group_size = meta["scheme"], json.loads(meta["group_size"])
    if scheme == TORCH_DYNAMIC:
        raise ValueError(f"{path} holds torch's quantize_dynamic layers, whose packed form only torch builds: "
                         "load the float model and call torch_dynamic_int8(model) again")
    model = GPT(GPTConfig.from_dict(json.loads(meta["model_config"])))
    if scheme != "float32":
        for name in block_linear_names(model):
            old = model.get_submodule(name)
            _replace(model, name, QuantLinear(old.in_features, old.out_features, scheme, group_size or DEFAULT_GROUP_SIZE,
                                              bias=old.bias is not None))  # fmt: skip
    if json.loads(meta["tied"]):
        tensors["lm_head.weight"] = tensors["embed_tokens.weight"]
    own = model.state_dict()
    wrong = [f"{k}: file {tensors[k].dtype} {tuple(tensors[k].shape)}, model {v.dtype} {tuple(v.shape)}"
             for k, v in own.items() if k in tensors and (tensors[k].dtype != v.dtype or tensors[k].shape != v.shape)]
    if wrong or set(own) != set(tensors):
        missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        raise ValueError(f"{path} does not fit a {scheme} GPT of its own config: missing {missing[:3]}, "
                         f"unexpected {extra[:3]}, {'; '.join(wrong[:3])}. Save it again with save_quantized.")
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def file_size(path: str | os.PathLike) -> int:
    """The size of the file on disk in bytes (``os.path.getsize``)."""
    return os.path.getsize(path)


def tokens_per_second(model: nn.Module, idx: torch.Tensor, new_tokens: int, repeats: int = 3,
                      threads: int | None = None) -> float:  # fmt: skip
    """Greedy generation speed: ``new_tokens`` after the prompt ``idx`` (1, T), the best of ``repeats`` timed runs
    (after one short untimed warm-up), in new tokens per second; on ``threads`` torch threads (None: as set)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model.generate(idx, min(new_tokens, 8), temperature=0)  # warm-up: first-call allocations are not timed
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            model.generate(idx, new_tokens, temperature=0)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return new_tokens / best


def weight_bits(scheme: str, group_size: int = DEFAULT_GROUP_SIZE) -> float:
    """Bits stored per weight of a block matrix, the scales included (their rows aside).

    >>> weight_bits("float32"), weight_bits("int4"), weight_bits("int4", 128)
    (32.0, 4.5, 4.125)
    """
    if scheme == "float32":
        return 32.0
    _check_scheme(scheme)
    return 8.0 if scheme == "int8" else 4 + 16 / group_size  # int8's one float32 per row is left out


__all__ = [
    "DEFAULT_GROUP_SIZE", "QuantLinear", "SCHEMES", "block_linear_names", "dequantize_int4", "dequantize_int8",
    "file_size", "int4_scales", "load_quantized", "pack_int4", "quantize_int4", "quantize_int8", "quantize_model",
    "save_quantized", "tokens_per_second", "torch_dynamic_int8", "unpack_int4", "weight_bits",
]  # fmt: skip
