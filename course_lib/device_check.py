"""Setup: can the accelerator be trusted? The same tiny training run on the CPU and on it.

A GPU backend can ship a kernel that computes the wrong thing without failing: MPS has
had releases whose losses came out several times too large. Nothing crashes, the model
just learns badly. :func:`check_device` trains one tiny GPT twice from the same weights
on the same batches, once on the CPU and once on the device, in float32, and compares
the losses step by step:

>>> report = check_device("cpu", steps=3)  # the CPU against itself: nothing differs
>>> report.max_difference
0.0

Float32 on two devices is not bit-identical (another order of additions, fused kernels,
TF32 matmuls on recent NVIDIA GPUs), and the differences grow a little as training goes
on, so the check allows :data:`TOLERANCE` nats; a broken kernel differs by far more.
``python -m course_lib info --check-device`` prints the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course_lib.device import get_device, parse_device, unavailable_reason

TOLERANCE = 0.02  # nats: float32 on two devices drifts by ~1e-4 to 1e-3 over 40 steps; a broken kernel by > 0.1
VOCAB, BLOCK, BATCH = 32, 32, 8


@dataclass(frozen=True)
class DeviceReport:
    """The losses of the two runs and what they say."""

    device: torch.device
    cpu_losses: tuple[float, ...]
    device_losses: tuple[float, ...]
    tolerance: float

    @property
    def max_difference(self) -> float:
        return max(abs(a - b) for a, b in zip(self.cpu_losses, self.device_losses))

    @property
    def worst_step(self) -> int:
        diffs = [abs(a - b) for a, b in zip(self.cpu_losses, self.device_losses)]
        return diffs.index(max(diffs))

    @property
    def ok(self) -> bool:
        return self.max_difference <= self.tolerance

    def __str__(self) -> str:
        n = len(self.cpu_losses)
        step = self.worst_step
        lines = [f"the same {n} training steps of a tiny GPT (same weights, same batches, float32) on cpu and "
                 f"on {self.device}:",
                 f"  loss at step 1: cpu {self.cpu_losses[0]:.5f}, {self.device} {self.device_losses[0]:.5f}",
                 f"  loss at step {n}: cpu {self.cpu_losses[-1]:.5f}, {self.device} {self.device_losses[-1]:.5f}",
                 f"  largest difference: {self.max_difference:.2e} nats (step {step + 1}); tolerance "
                 f"{self.tolerance:g}"]  # fmt: skip
        if self.ok:
            lines.append(f"OK: {self.device} trains like the CPU.")
        else:
            lines.append(f"WARNING: {self.device} gives different losses from the CPU (by {self.max_difference:.3g} "
                         "nats, more than float32 rounding explains). Its kernels may be wrong in this PyTorch "
                         f"version: update PyTorch, or train on the CPU (--device cpu, or COURSE_DEVICE=cpu) "
                         "until it passes.")  # fmt: skip
        return "\n".join(lines)


def _batches(steps: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Windows of a text with structure (a repeated phrase with noise), drawn on the CPU."""
    g = torch.Generator().manual_seed(seed)
    phrase = torch.randint(0, VOCAB, (13,), generator=g)
    text = phrase.repeat(200)  # (2600,): learnable, so the loss falls and the optimiser state matters
    noise = torch.rand(text.shape, generator=g) < 0.1
    text = torch.where(noise, torch.randint(0, VOCAB, text.shape, generator=g), text)
    out = []
    for _ in range(steps):
        starts = torch.randint(0, len(text) - BLOCK - 1, (BATCH,), generator=g)
        x = torch.stack([text[s : s + BLOCK] for s in starts])  # (B, T)
        y = torch.stack([text[s + 1 : s + BLOCK + 1] for s in starts])  # (B, T)
        out.append((x, y))
    return out


def _train(device: torch.device, steps: int, seed: int) -> tuple[float, ...]:
    from course_lib.model import GPT, GPTConfig
    from course_lib.schedule import configure_optimizer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT(GPTConfig.modern(vocab_size=VOCAB, block_size=BLOCK, n_layer=2, n_head=4, n_embd=64))
    model.to(device)
    opt = configure_optimizer(model, 0.1, 3e-3, (0.9, 0.99), device)
    losses = []
    for x, y in _batches(steps, seed):
        _, loss = model(x.to(device), y.to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach().cpu()))
    return tuple(losses)


def check_device(device: str | torch.device | None = None, *, steps: int = 40, seed: int = 0,
                 tolerance: float = TOLERANCE) -> DeviceReport:  # fmt: skip
    """Train the same tiny GPT on the CPU and on ``device`` (default: the one the course would pick).

    TF32 matmuls are turned off for the run, so the comparison is float32 against float32.
    """
    device = get_device() if device is None else parse_device(device)
    reason = unavailable_reason(device)
    if reason is not None:
        raise ValueError(f"cannot check {device}: {reason}")
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        cpu = _train(torch.device("cpu"), steps, seed)
        other = _train(device, steps, seed)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return DeviceReport(device, cpu, other, tolerance)
