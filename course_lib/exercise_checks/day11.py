"""Day 11's exercises: LeNet's feature size, a convolution's multiply-adds, per-class recall, a CNN on a budget."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_lib.exercises import call_reported as _call
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise



def _as_int(got: Any, what: str) -> int:
    try:
        value = int(got)
        if float(got) != value:
            raise ValueError
    except (TypeError, ValueError):
        raise Wrong(f"{what} returned {got!r}, not a whole number") from None
    return value


def _lenet_features() -> nn.Sequential:
    """LeNet's convolutional part, as in section 3 (conv1, pool, conv2, pool)."""
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))  # fmt: skip


@exercise("day11.ex1", title="LeNet's feature size", kind="code",
          section="section 3, A LeNet-style network, and day 10's output size formula")
def check_flat_size(fn: Any) -> str:
    features = _lenet_features()
    sides = [28, 32, 29, 30, 31, 17, 12, 45, 64, 100]
    for side in sides:
        what = f"lenet_flat_size({side})"
        got = _as_int(_call(fn, what, side), what)
        with torch.no_grad():
            want = features(torch.zeros(1, 1, side, side)).numel()  # ask the network itself
        if got != want:
            raise Wrong(f"{what} returned {got}, but LeNet's features turn a {side}x{side} image into "
                        f"{want} numbers (16 channels of {int((want // 16) ** 0.5)}x{int((want // 16) ** 0.5)})")
    return f"({len(sides)} image sizes, odd ones included, agree with the network's own output)"


def _torch_macs(c_in: int, c_out: int, k: int, side: int, stride: int, padding: int) -> int:
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        conv(torch.zeros(1, c_in, side, side))
    return counter.get_total_flops() // 2  # torch counts a multiply-add as 2 floating-point operations


@exercise("day11.ex2", title="the cost of a convolution", kind="code",
          section="section 4, Training both (multiply-adds per image)")
def check_conv_macs(fn: Any) -> str:
    cases = [(1, 6, 5, 28, 1, 2), (6, 16, 5, 14, 1, 0), (3, 8, 3, 32, 1, 1), (4, 4, 3, 15, 2, 0),
             (2, 5, 4, 21, 3, 2), (8, 1, 1, 9, 1, 0), (3, 7, 5, 30, 2, 1)]  # (c_in, c_out, k, side, stride, padding)
    for c_in, c_out, k, side, s, p in cases:
        what = f"conv_macs(c_in={c_in}, c_out={c_out}, k={k}, side={side}, stride={s}, padding={p})"
        got = _as_int(_call(fn, what, c_in, c_out, k, side, stride=s, padding=p), what)
        want = _torch_macs(c_in, c_out, k, side, s, p)
        if got != want:
            raise Wrong(f"{what} returned {got:,}, but torch's FlopCounterMode counts {want:,} multiply-adds "
                        f"for nn.Conv2d({c_in}, {c_out}, {k}, stride={s}, padding={p}, bias=False) "
                        f"on one {side}x{side} image")
    return f"({len(cases)} layers agree with torch's FlopCounterMode; LeNet's conv1 does {_torch_macs(1, 6, 5, 28, 1, 2):,})"


@exercise("day11.ex3", title="per-class recall", kind="code", section="section 7, Mistakes and the confusion matrix")
def check_recall(fn: Any) -> str:
    gen = torch.Generator().manual_seed(1111)
    for num_classes, n in [(3, 12), (10, 500), (5, 40), (2, 7), (10, 60)]:
        targets = torch.cat([torch.arange(num_classes), torch.randint(0, num_classes, (n - num_classes,), generator=gen)])
        keep = torch.rand(n, generator=gen) < 0.6  # most predictions right, the others random
        preds = torch.where(keep, targets, torch.randint(0, num_classes, (n,), generator=gen))
        cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
        cm.index_put_((targets, preds), torch.ones(n, dtype=torch.long), accumulate=True)  # rows true, columns predicted
        want = torch.tensor([(preds[targets == c] == c).double().mean().item() for c in range(num_classes)])
        what = f"per_class_recall(cm) for a {num_classes}x{num_classes} confusion matrix of {n} predictions"
        got = _call(fn, what, cm.clone())
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"{what} returned a {type(got).__name__}, not a tensor")
        if not got.is_floating_point():
            raise Wrong(f"{what} returned a {got.dtype} tensor: recalls are fractions, convert to float first")
        why = differs(got.double(), want)
        if why:
            raise Wrong(f"{what} differs from the fraction of each true class predicted as itself "
                        f"(cm = {cm.tolist()}): {why}")
    return "(5 confusion matrices agree with recall counted from the predictions)"


BUDGET = 3000  # parameters
TARGET = 0.85  # accuracy on 500 held-out digits


@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from course_lib.data import load_mnist

    images, labels = load_mnist()  # (5000, 28, 28) uint8, sorted by label
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(11))
    x = torch.from_numpy(images).float()[order, None] / 255  # (5000, 1, 28, 28)
    x = (x - x[:1000].mean()) / x[:1000].std()  # standardised with the training digits' statistics
    y = torch.from_numpy(labels)[order]
    return x[:1000], y[:1000], x[1000:1500], y[1000:1500]


def train_on_budget(make_model: Any, epochs: int = 3, lr: float = 3e-3, batch_size: int = 32) -> tuple[float, int]:
    """Train ``make_model()`` on 1,000 digits (Adam, seeded) and return (held-out accuracy, parameter count)."""
    x_train, y_train, x_val, y_val = _digits()
    torch.manual_seed(0)
    model = _call(make_model, "make_model()")
    if not isinstance(model, nn.Module):
        raise Wrong(f"make_model() returned a {type(model).__name__}, not an nn.Module")
    count = sum(p.numel() for p in model.parameters())
    if count > BUDGET:
        return float("nan"), count
    try:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(0)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(y_train), generator=gen)
            for i in range(0, len(y_train), batch_size):
                idx = perm[i : i + batch_size]
                optimizer.zero_grad()
                F.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)  # (500, 10)
    except Exception as err:  # noqa: BLE001
        raise Wrong(f"training the model of make_model() raised {type(err).__name__}: {err}") from None
    if tuple(logits.shape) != (len(y_val), 10):
        raise Wrong(f"the model maps a batch (500, 1, 28, 28) to {tuple(logits.shape)}, not (500, 10) logits")
    return float((logits.argmax(1) == y_val).float().mean()), count


@exercise("day11.ex4", title="a CNN on a budget", kind="experiment", section="section 3, A LeNet-style network")
def check_budget(make_model: Any) -> str:
    acc, count = train_on_budget(make_model)
    if count > BUDGET:
        raise Wrong(f"the model has {count:,} parameters, over the budget of {BUDGET:,}")
    if not acc >= TARGET:
        raise Wrong(f"with {count:,} parameters, 3 epochs on 1,000 digits reach {acc:.3f} on the 500 held-out digits; "
                    f"the target is {TARGET}")
    return f"({count:,} parameters, {acc:.3f} on the held-out digits)"
