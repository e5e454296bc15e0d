"""Day 10's exercises: a dilated convolution, the receptive field of a stack, learning the Sobel kernel, counting weights."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F

from course_lib.exercises import raised as _raised
from course_lib.exercises import call_reported as _call
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise




@exercise("day10.ex1", title="a dilated convolution", kind="code",
          section="section 2, Channels and batches, and section 3, Padding, stride and the output size")
def check_dilated_conv(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1010)
    cases = [  # (N, C, H, W, O, Kh, Kw, stride, padding, dilation)
        (1, 1, 7, 7, 1, 3, 3, 1, 0, 1),  # dilation 1: an ordinary convolution
        (2, 3, 9, 8, 4, 3, 3, 1, 0, 2),
        (1, 2, 11, 10, 3, 3, 2, 2, 1, 2),
        (2, 1, 12, 12, 2, 2, 3, 1, 2, 3),
        (1, 3, 10, 13, 2, 3, 3, 3, 2, 2),
    ]
    for N, C, H, W, O, kh, kw, s, p, d in cases:
        x = torch.randn(N, C, H, W, generator=gen, dtype=torch.float64)
        w = torch.randn(O, C, kh, kw, generator=gen, dtype=torch.float64)
        b = torch.randn(O, generator=gen, dtype=torch.float64)
        what = f"my_conv2d_dilated(x {tuple(x.shape)}, weight {tuple(w.shape)}, bias, stride={s}, padding={p}, dilation={d})"
        out = _call(fn, what, x.clone(), w.clone(), b.clone(), stride=s, padding=p, dilation=d)
        want = F.conv2d(x, w, b, stride=s, padding=p, dilation=d)
        why = differs(torch.as_tensor(out, dtype=torch.float64) if isinstance(out, torch.Tensor) else out, want,
                      rtol=1e-6, atol=1e-8)
        if why:
            raise Wrong(f"{what} differs from F.conv2d's: {why}")
    return "(5 random shapes agree with F.conv2d, stride, padding and dilation included)"


def _measured_receptive_field(kernels: list[int], strides: list[int]) -> int:
    """Width of the input square that one output pixel sees, measured with autograd (all-ones kernels)."""
    probe = torch.zeros(1, 1, 1, 96, dtype=torch.float64, requires_grad=True)  # one row is enough: it is square
    out = probe
    for k, s in zip(kernels, strides):
        out = F.conv2d(out, torch.ones(1, 1, 1, k, dtype=torch.float64), stride=(1, s))
    out[0, 0, 0, 0].backward()
    seen = probe.grad[0, 0, 0].nonzero()[:, 0]
    return int(seen.max() - seen.min() + 1)


@exercise("day10.ex2", title="the receptive field of a stack", kind="code",
          section="section 3, Padding, stride and the output size")
def check_receptive_field(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1011)
    stacks = [([3, 3, 3], [1, 1, 1]), ([5], [1]), ([1, 1], [1, 1]), ([2, 3], [2, 1]), ([3, 3, 3], [2, 2, 1])]
    for _ in range(12):  # random stacks; a kernel never smaller than its stride, so no input pixel is skipped
        n = int(torch.randint(1, 5, (1,), generator=gen))
        strides = [int(v) for v in torch.randint(1, 3, (n,), generator=gen)]
        kernels = [s + int(v) for s, v in zip(strides, torch.randint(0, 4, (n,), generator=gen))]
        stacks.append((kernels, strides))
    for kernels, strides in stacks:
        got = _call(fn, f"receptive_field({kernels}, {strides})", list(kernels), list(strides))
        want = _measured_receptive_field(kernels, strides)
        try:
            ok = int(got) == want and float(got) == want
        except (TypeError, ValueError):
            raise Wrong(f"receptive_field({kernels}, {strides}) returned {got!r}, not an int") from None
        if not ok:
            raise Wrong(f"receptive_field(kernels={kernels}, strides={strides}) returned {got!r}, but backpropagating "
                        f"from one output pixel reaches {want} input pixels across")
    return f"({len(stacks)} stacks agree with autograd's measurement)"


def _sobel_x() -> torch.Tensor:
    return torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0])).double()  # (3, 3)


@lru_cache(maxsize=1)
def _ten_digits() -> torch.Tensor:
    from course_lib.data import load_mnist

    images, _ = load_mnist()  # (5000, 28, 28) uint8, sorted by label, 500 of each
    return torch.from_numpy(images[[500 * d for d in range(10)]]).double()[:, None] / 255  # (10, 1, 28, 28)


def learn_sobel(lr: float, momentum: float, steps: int = 100) -> torch.Tensor:
    """The (3, 3) kernel that SGD learns in ``steps`` steps from zeros, matching G_x's response on ten digits."""
    x = _ten_digits()
    target = F.conv2d(x, _sobel_x()[None, None], padding=1)  # (10, 1, 28, 28)
    w = torch.zeros(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum)
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(F.conv2d(x, w, padding=1), target).backward()
        optimizer.step()
    return w.detach()[0, 0]


@exercise("day10.ex3", title="learn the Sobel kernel", kind="experiment", section="section 5, Edge filters on real digits")
def check_learn_sobel(answer: Any) -> str:
    if not isinstance(answer, dict) or set(answer) != {"lr", "momentum"}:
        raise Wrong(f"expected a dict with the keys 'lr' and 'momentum', got {answer!r}")
    try:
        lr, mu = float(answer["lr"]), float(answer["momentum"])
    except (TypeError, ValueError):
        raise Wrong(f"lr and momentum must be numbers, got {answer!r}") from None
    if not (lr > 0 and 0 <= mu < 1):
        raise Wrong(f"need lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={mu}")
    kernel = learn_sobel(lr, mu)
    gap = float((kernel - _sobel_x()).abs().max())
    if not gap < 0.01:  # also catches nan and inf
        raise Wrong(f"with lr={lr} and momentum={mu}, the kernel learnt in 100 SGD steps from zeros is {gap:.3g} away "
                    f"from G_x (largest difference); the target is below 0.01")
    return f"(the learnt kernel is within {gap:.1g} of G_x)"


@exercise("day10.ex4", title="counting weights", kind="value", section="section 2, Channels and batches")
def check_count_weights(answer: Any) -> str:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected one number, got {answer!r}") from None
    expected = sum(p.numel() for p in torch.nn.Conv2d(3, 16, kernel_size=5).parameters())
    if value != expected:
        side = "too small" if value < expected else "too large"
        raise Wrong(f"{value:g} is {side}: it is not the number of weights and biases of torch.nn.Conv2d(3, 16, kernel_size=5)")
    dense = (3 * 32 * 32) * (16 * 28 * 28) + 16 * 28 * 28
    return f"(a fully connected layer with the same input and output sizes would need {dense:,}, {dense / expected:,.0f} times more)"
