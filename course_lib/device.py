"""Day 1: choosing where tensors live (CUDA, Apple Metal via MPS, or CPU) and seeding.

One function, imported everywhere, instead of device logic pasted into cells:

>>> from course_lib.device import get_device, describe
>>> device = get_device()          # cuda, then mps, then cpu
>>> print(describe())              # what was chosen, and why

``COURSE_DEVICE=cpu`` (or ``cuda``, ``cuda:1``, ``mps``) overrides the automatic choice.
A request for a device that is not available falls back to the best available one
with a warning that says so.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass

import numpy as np
import torch

_KINDS = ("cuda", "mps", "cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _available(kind: str, index: int | None = None) -> bool:
    if kind == "cpu":
        return True
    if kind == "cuda":
        if not torch.cuda.is_available():
            return False
        return index is None or index < torch.cuda.device_count()
    if kind == "mps":
        return _mps_available()
    return False


def _best_available() -> torch.device:
    for kind in _KINDS:
        if _available(kind):
            return torch.device(kind)
    return torch.device("cpu")  # pragma: no cover - cpu is always available


def parse_device(request: str | torch.device) -> torch.device:
    """A device name -> ``torch.device``, or a ValueError listing the names this course uses.

    >>> parse_device("cuda:1")
    device(type='cuda', index=1)
    """
    try:
        device = torch.device(request)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"Unknown device {str(request)!r}: use one of 'cuda', 'cuda:N', 'mps' or 'cpu'."
        ) from err
    if device.type not in _KINDS:
        raise ValueError(
            f"Unsupported device type {device.type!r}: use one of 'cuda', 'cuda:N', 'mps' or 'cpu'."
        )
    return device


def unavailable_reason(device: torch.device) -> str | None:
    """Why ``device`` cannot be used on this machine, or None when it can.

    >>> unavailable_reason(torch.device("cpu")) is None
    True
    """
    if _available(device.type, device.index):
        return None
    if device.type == "mps":
        return "Apple Metal (MPS) is not available here"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible here (torch.cuda.is_available() is False)"
    n = torch.cuda.device_count()
    if n == 1:
        return "only 1 CUDA GPU is visible here (cuda:0)"
    return f"only {n} CUDA GPUs are visible here (cuda:0 to cuda:{n - 1})"


def _resolve(prefer: str | torch.device | None) -> tuple[torch.device, str]:
    """Return (device, reason) without warning; used by get_device and describe."""
    env = os.environ.get("COURSE_DEVICE", "").strip()
    if env:
        request, origin = env, "COURSE_DEVICE="
        try:
            wanted = parse_device(env)
        except ValueError:
            raise ValueError(
                f"COURSE_DEVICE={env} is not a device name: set it to cuda, cuda:N, mps or cpu, "
                "or unset it to use the best available device."
            ) from None
    elif prefer is not None:
        request, origin = prefer, "prefer="
        wanted = parse_device(prefer)
    else:
        best = _best_available()
        reasons = {
            "cuda": "a CUDA GPU is available (checked in the order cuda, mps, cpu)",
            "mps": "no CUDA GPU, but Apple Metal (MPS) is available",
            "cpu": "no CUDA GPU and no Apple Metal (MPS) found, so the CPU is used",
        }
        return best, reasons[best.type]
    if unavailable_reason(wanted) is None:
        return wanted, f"{origin}{request!s} asked for it"
    best = _best_available()
    return best, f"{origin}{request!s} asked for {wanted}, which is not available here; fell back to {best}"


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Pick the device to compute on.

    Order: ``COURSE_DEVICE`` if set, else ``prefer`` if given, else the best available
    of cuda, mps, cpu. A requested device that is not available falls back to the best
    available one and emits a ``UserWarning`` saying so; a name that is no device at all
    (``COURSE_DEVICE=gpu``) raises a ValueError saying where it came from.
    """
    device, reason = _resolve(prefer)
    if "not available" in reason:
        warnings.warn(reason, UserWarning, stacklevel=2)
    return device


def recommended_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA GPUs that support it (Ampere and newer), float32 elsewhere.

    MPS and CPU train in float32: bf16 autocast there is slower or less complete.
    """
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


@dataclass(frozen=True)
class DeviceInfo:
    """What :func:`describe` found: printable, and usable from code."""

    device: torch.device
    name: str
    reason: str
    memory_gb: float | None
    dtype: torch.dtype
    torch_version: str

    def __str__(self) -> str:
        memory = f"{self.memory_gb:.1f} GB" if self.memory_gb is not None else "shared with the system"
        dtype = str(self.dtype).replace("torch.", "")
        return (
            f"device: {self.device} ({self.name})\n"
            f"why: {self.reason}\n"
            f"memory: {memory}\n"
            f"recommended dtype: {dtype}\n"
            f"torch: {self.torch_version}"
        )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f", {os.cpu_count()} cores"
    except OSError:
        pass
    import platform

    return (platform.processor() or platform.machine() or "CPU") + f", {os.cpu_count()} cores"


def describe(prefer: str | torch.device | None = None) -> DeviceInfo:
    """Report the device :func:`get_device` would choose, why, its memory and dtype."""
    device, reason = _resolve(prefer)
    memory_gb: float | None = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device.index or 0)
        name = props.name
        memory_gb = props.total_memory / 1024**3
    elif device.type == "mps":
        name = "Apple Metal Performance Shaders"
    else:
        name = _cpu_name()
    return DeviceInfo(device, name, reason, memory_gb, recommended_dtype(device), torch.__version__)


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy, torch and every accelerator, for repeatable runs."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CPU, CUDA and MPS generators
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if _mps_available():
        torch.mps.manual_seed(seed)
