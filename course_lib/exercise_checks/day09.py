"""Day 9's exercises: warm-up + linear decay, the total gradient norm, a peak learning rate for warm-up + cosine, the initial loss."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler

from course_lib.data import load_digits, train_val_split
from course_lib.exercises import raised as _raised
from course_lib.exercises import Waiting, Wrong, call_answer, differs, exercise



def _torch_lrs(make_scheduler: Any, steps: int, base_lr: float) -> list[float]:
    """The learning rate a torch scheduler sets before each of ``steps`` optimizer steps."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@exercise("day09.ex1", title="warm-up + linear decay", kind="code", section="section 1, Learning-rate schedules")
def check_warmup_linear(fn: Any) -> str:
    cases = [(0.1, 10, 50), (3e-4, 1, 20), (1.0, 7, 8), (0.02, 25, 200)]
    for base_lr, warmup, total in cases:
        want = _torch_lrs(lambda o: lr_scheduler.SequentialLR(  # noqa: B023
            o, [lr_scheduler.LinearLR(o, start_factor=1 / warmup, total_iters=warmup - 1),  # noqa: B023
                lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=total - warmup)],  # noqa: B023
            milestones=[warmup]), total + 5, base_lr)  # noqa: B023
        for t, expected in enumerate(want):
            where = f"t={t} (base_lr={base_lr}, warmup_steps={warmup}, total_steps={total})"
            try:
                got = call_answer(fn, t, base_lr, warmup, total)
            except (Waiting, Wrong):
                raise
            except Exception as err:  # noqa: BLE001 (any other error is the learner's bug, reported)
                raise _raised(f"my_warmup_linear_lr at {where}", err) from None
            why = differs(got, expected, rtol=1e-9, atol=1e-12)
            if why:
                raise Wrong(f"at {where}, torch's SequentialLR(LinearLR warm-up, LinearLR decay to 0) sets "
                            f"{expected:.10g}, yours {got!r}: {why}")
    return f"({len(cases)} schedules, every step up to total_steps + 4, agree with torch's SequentialLR)"


@exercise("day09.ex2", title="the total gradient norm", kind="code", section="section 5, Gradient clipping")
def check_total_norm(fn: Any) -> str:
    gen = torch.Generator().manual_seed(902)
    cases = [([(3, 4), (5,), (2, 2, 2)], 2.0), ([(7,), ()], 2.0), ([(4, 3), (6,)], 1.0),
             ([(2, 5), (3,), (1, 1)], math.inf), ([(9,), (2, 3)], 3.0), ([(1,)], 2.0)]
    for shapes, norm_type in cases:
        grads = [torch.randn(s, generator=gen, dtype=torch.float64) * 2 for s in shapes]
        want = torch.nn.utils.get_total_norm([g.clone() for g in grads], norm_type=norm_type)
        where = f"gradients of shapes {shapes} with norm_type={norm_type}"
        try:
            got = call_answer(fn, [g.clone() for g in grads], norm_type)
        except (Waiting, Wrong):
            raise
        except Exception as err:  # noqa: BLE001
            raise _raised(f"total_norm on {where}", err) from None
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Wrong(f"on {where}, expected one number, got {got!r}") from None
        why = differs(got, want.item(), rtol=1e-9, atol=1e-12)
        if why:
            raise Wrong(f"on {where}, torch.nn.utils.get_total_norm gives {want.item():.10g}, yours {got:.10g}")
    return f"({len(cases)} random gradient lists, norms 1, 2, 3 and inf, agree with torch.nn.utils.get_total_norm)"


def schedule_run(peak_lr: float, warmup_steps: int = 20, steps: int = 200) -> float:
    """Train a 64-64-10 MLP on the day's digits for ``steps`` mini-batches of 64 with SGD (momentum
    0.9) under warm-up + cosine decay to 0 from ``peak_lr`` (seed 0); return the final training loss."""
    images, labels = load_digits()  # (1797, 8, 8), (1797,)
    X = torch.tensor(images, dtype=torch.float32).reshape(-1, 64) / 16.0  # (1797, 64)
    y = torch.from_numpy(labels)  # (1797,)
    train_idx, _ = train_val_split(torch.randperm(len(X), generator=torch.Generator().manual_seed(0)), 0.2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=peak_lr, momentum=0.9)
    sched = lr_scheduler.SequentialLR(
        opt, [lr_scheduler.LinearLR(opt, start_factor=1 / warmup_steps, total_iters=warmup_steps - 1),
              lr_scheduler.CosineAnnealingLR(opt, T_max=steps - warmup_steps)], milestones=[warmup_steps])
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = train_idx[torch.randint(len(train_idx), (64,), generator=gen)]  # (64,) a random mini-batch
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return F.cross_entropy(model(X[train_idx]), y[train_idx]).item()


@exercise("day09.ex3", title="a peak rate for warm-up + cosine", kind="experiment",
          section="section 3, Schedules in practice")
def check_peak_lr(answer: Any) -> str:
    try:
        peak = float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected one number, the peak learning rate, got {answer!r}") from None
    if not (0 < peak < math.inf):
        raise Wrong(f"the peak learning rate must be a positive number, got {peak}")
    loss = schedule_run(peak)
    if not loss < 0.05:  # also catches nan
        raise Wrong(f"with peak_lr={peak:g}, schedule_run ends at a training loss of {loss:.3g} after 200 steps; "
                    f"the target is below 0.05 (too small a peak takes steps too short to get there, too large a one bounces)")
    return f"(training loss {loss:.3g} after 200 steps)"


@exercise("day09.ex4", title="the expected initial loss", kind="value", section="section 6, A debugging checklist")
def check_initial_loss(answer: Any) -> str:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"expected one number, got {answer!r}") from None
    targets = torch.randint(26, (100,), generator=torch.Generator().manual_seed(904))  # (100,) any labels
    expected = F.cross_entropy(torch.zeros(100, 26, dtype=torch.float64), targets).item()  # uniform prediction
    if differs(value, expected, rtol=1e-6, atol=0):
        side = "too small" if value < expected else "too large"
        raise Wrong(f"{value:.6g} is {side}: it is not the cross-entropy of a uniform prediction over 26 classes")
    return f"(ln 26 = {expected:.4f}; a loss far above it at step 0 means overconfident initial logits)"
