"""Day 5's exercises: counting parameters, batches per epoch, recall per class, top-k accuracy,
and settings that train the digits MLP fast."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.exercises import call_reported
from course_lib.exercises import Waiting, Wrong, call_answer, exercise, is_placeholder
from course_lib.exercises import differs as _differs


def _differs_one_line(answer: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """How ``answer`` differs from ``expected``, on one line (numpy prints long arrays on several)."""
    why = _differs(answer, expected, rtol=rtol, atol=atol)
    return None if why is None else " ".join(why.split())


def _call(fn: Any, name: str, what: str, *args: Any) -> Any:
    """The learner's ``fn(*args)``; an error it raises is reported as wrong, naming the input."""
    return call_reported(fn, f"{name}({what})", *args)


def _as_int(value: Any, call: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not float(value).is_integer():
        raise Wrong(f"{call} returned {value!r}, not a whole number")
    return int(value)


@exercise("day05.ex1", title="counting parameters", kind="code", section="section 3, A network as an nn.Module")
def check_count_parameters(fn: Any) -> str:
    gen = torch.Generator().manual_seed(501)
    cases = [[64, 32, 32, 10], [64, 128, 10], [1, 1], [3, 1, 4, 1, 5], [784, 10]]
    for _ in range(6):
        depth = int(torch.randint(2, 6, (), generator=gen))
        cases.append([int(v) for v in torch.randint(1, 300, (depth,), generator=gen)])
    for sizes in cases:
        layers = [nn.Linear(a, b, device="meta") for a, b in zip(sizes, sizes[1:])]  # shapes only, no memory
        net = nn.Sequential(nn.Flatten(), *[m for layer in layers for m in (layer, nn.ReLU())][:-1])
        expected = sum(p.numel() for p in net.parameters())  # torch's own count
        call = f"count_parameters({sizes})"
        got = _as_int(_call(fn, "count_parameters", str(sizes), list(sizes)), call)
        if got != expected:
            raise Wrong(f"the MLP with layer sizes {sizes} (an nn.Linear between each pair) has {expected} "
                        f"parameters by sum(p.numel() for p in net.parameters()); {call} gives {got}")
    return f"({len(cases)} MLPs agree with sum(p.numel() for p in net.parameters()))"


@exercise("day05.ex2", title="batches per epoch", kind="code", section="section 2, Dataset and DataLoader")
def check_batches_per_epoch(fn: Any) -> str:
    gen = torch.Generator().manual_seed(502)
    cases = [(1438, 50, False), (1438, 50, True), (1438, 64, False), (100, 10, False), (100, 10, True),
             (5, 8, False), (5, 8, True), (1, 1, True), (0, 4, False)]
    for _ in range(20):
        n, bs = int(torch.randint(0, 500, (), generator=gen)), int(torch.randint(1, 70, (), generator=gen))
        cases.append((n, bs, bool(torch.rand((), generator=gen) > 0.5)))
    for n, bs, drop_last in cases:
        expected = len(DataLoader(range(n), batch_size=bs, drop_last=drop_last))  # torch's own count
        call = f"batches_per_epoch({n}, {bs}, drop_last={drop_last})"
        got = _as_int(_call(fn, "batches_per_epoch", f"{n}, {bs}, {drop_last}", n, bs, drop_last), call)
        if got != expected:
            raise Wrong(f"len(DataLoader(range({n}), batch_size={bs}, drop_last={drop_last})) is {expected}; "
                        f"{call} gives {got}")
    return f"({len(cases)} cases agree with len(DataLoader(...)))"


def _recall_by_loop(pred: torch.Tensor, target: torch.Tensor, C: int) -> torch.Tensor:
    """Recall of each class straight from the predictions: of the examples of class c, the share called c."""
    return torch.tensor([(pred[target == c] == c).float().mean().item() for c in range(C)])


@exercise("day05.ex3", title="recall per class", kind="code",
          section="section 7, Which digits get confused? The confusion matrix")
def check_recall_per_class(fn: Any) -> str:
    gen = torch.Generator().manual_seed(503)
    for N, C, skill in [(359, 10, 0.9), (40, 3, 0.5), (12, 2, 0.0), (200, 7, 0.7), (500, 10, 1.0)]:
        target = torch.cat([torch.arange(C), torch.randint(0, C, (N - C,), generator=gen)])  # every class present
        guess = torch.randint(0, C, (N,), generator=gen)
        pred = torch.where(torch.rand(N, generator=gen) < skill, target, guess)  # right with probability ~skill
        cm = torch.zeros(C, C, dtype=torch.long)  # the checker's own confusion matrix: rows true, columns predicted
        for t, p in zip(target.tolist(), pred.tolist()):
            cm[t, p] += 1
        expected = _recall_by_loop(pred, target, C)
        got = _call(fn, "recall_per_class", f"a {C}x{C} confusion matrix", cm.clone())
        why = _differs_one_line(got, expected, rtol=1e-5, atol=1e-6)
        if why:
            raise Wrong(f"for a {C}x{C} confusion matrix of {N} predictions (rows: true class, columns: "
                        f"predicted; row sums {cm.sum(dim=1).tolist()}), the recalls are "
                        f"{[round(v, 4) for v in expected.tolist()]}: {why}")
    return "(5 confusion matrices agree with the recalls counted from the predictions)"


@exercise("day05.ex4", title="top-k accuracy", kind="code", section="section 5, Accuracy and why we validate")
def check_top_k_accuracy(fn: Any) -> str:
    gen = torch.Generator().manual_seed(504)
    cases = [(359, 10, 2), (50, 10, 1), (20, 5, 5), (64, 26, 3), (7, 4, 3), (1, 3, 2)]
    for N, C, k in cases:
        logits = torch.randn(N, C, generator=gen)  # continuous: no ties
        targets = torch.randint(0, C, (N,), generator=gen)
        true_score = logits[torch.arange(N), targets]  # (N,)
        rank = (logits > true_score[:, None]).sum(dim=1)  # (N,) classes scored above the true one
        expected = (rank < k).float().mean().item()
        what = f"logits ({N}, {C}), k={k}"
        got = _call(fn, "top_k_accuracy", what, logits.clone(), targets.clone(), k)
        why = _differs_one_line(got, expected, rtol=1e-6, atol=1e-6)
        if why:
            raise Wrong(f"for random {what}, the true class is among the {k} highest scores in "
                        f"{int((rank < k).sum())} of {N} rows, a fraction of {expected:.4f}: {why}")
    return f"({len(cases)} random batches agree with counting the classes ranked above the true one)"


TARGET_ACC, EPOCHS, HIDDEN = 0.93, 3, 128  # the experiment: 93% validation accuracy in three epochs


@lru_cache(maxsize=1)
def _digits_split() -> tuple[TensorDataset, TensorDataset]:
    """Section 1's split: the digits in [0, 1], a permutation seeded 0, the last 20% for validation."""
    from course_lib.data import load_digits, train_val_split

    images, labels = load_digits()
    X = torch.tensor(images, dtype=torch.float32) / 16.0  # (1797, 8, 8)
    y = torch.from_numpy(labels)  # (1797,)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train_idx, val_idx = train_val_split(perm, 0.2)
    return TensorDataset(X[train_idx], y[train_idx]), TensorDataset(X[val_idx], y[val_idx])


@exercise("day05.ex5", title="train the digits in three epochs", kind="experiment",
          section="section 4, The training loop, by hand")
def check_fast_settings(answer: Any) -> str:
    if is_placeholder(answer) or answer is None:
        raise Waiting
    if not isinstance(answer, dict) or set(answer) != {"lr", "batch_size"}:
        raise Wrong(f'expected a dict {{"lr": float, "batch_size": int}}, got {answer!r}')
    try:
        lr, batch_size = float(answer["lr"]), answer["batch_size"]
    except (TypeError, ValueError):
        raise Wrong(f"lr must be a number, got {answer['lr']!r}") from None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 16 <= batch_size <= 512:
        raise Wrong(f"batch_size must be an int from 16 to 512 (smaller makes the check slow), got {batch_size!r}")
    if not (math.isfinite(lr) and 0 < lr <= 10):
        raise Wrong(f"lr must be between 0 and 10, got {lr}")
    from course_lib.loops import evaluate, fit

    train_ds, val_ds = _digits_split()
    torch.manual_seed(0)  # section 3's MLP, as `MLP(hidden_size=128)` builds it
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    fit(model, train_loader, None, epochs=EPOCHS, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        device="cpu", progress=False)
    val_loss, val_acc = evaluate(model, DataLoader(val_ds, batch_size=512), device="cpu")
    if not val_acc >= TARGET_ACC:
        raise Wrong(f"SGD with lr={lr} and batch_size={batch_size} reaches {val_acc:.1%} validation accuracy "
                    f"(loss {val_loss:.3f}) after {EPOCHS} epochs; the target is {TARGET_ACC:.0%}")
    return f"(lr={lr}, batch_size={batch_size}: {val_acc:.1%} after {EPOCHS} epochs)"
