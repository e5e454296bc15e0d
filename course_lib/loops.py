"""Day 5: the epoch-based training loop for classifiers — fit, evaluate, History, accuracy.

Day 5 writes this loop by hand and then switches to :func:`fit`, which later days
(optimizers, regularization, schedules, CNNs) reuse:

>>> history = fit(model, train_loader, val_loader, epochs=10,
...               optimizer=torch.optim.SGD(model.parameters(), lr=0.1))   # doctest: +SKIP
>>> history.plot()                                                          # doctest: +SKIP
>>> loss, acc = evaluate(model, val_loader)                                 # doctest: +SKIP

One training step: forward, ``loss_fn(logits, y)`` (+ ``regularizer(model)`` if given),
backward, gradient norm recorded (and clipped if ``grad_clip``), ``optimizer.step()``,
``scheduler.step()``. Loaders yield ``(x, y)`` batches; ``loss_fn`` must return the
batch *mean*, as torch's losses do by default.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.device import get_device

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class equals the target: logits (N, C), targets (N,).

    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.2]]), torch.tensor([0, 1, 1, 0]))
    0.75
    """
    if logits.ndim != 2 or targets.ndim != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"accuracy needs logits (N, C) and integer targets (N,), got {tuple(logits.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if targets.numel() == 0:
        raise ValueError("accuracy of an empty batch is undefined: pass at least one example")
    return (logits.argmax(dim=1) == targets).float().mean().item()


def _is_classification(logits: torch.Tensor, targets: torch.Tensor) -> bool:
    """True when accuracy makes sense: class scores (N, C) and integer labels (N,)."""
    return logits.ndim == 2 and targets.ndim == 1 and not targets.is_floating_point()


def _check_loss_fn(loss_fn: Any) -> None:
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction != "mean":
        raise ValueError(
            f"loss_fn has reduction={reduction!r}; fit and evaluate need the batch mean: "
            "construct it with reduction='mean' (the default)."
        )


@dataclass
class History:
    """Per-epoch record of a :func:`fit` run; every list has one entry per epoch.

    ``train_loss`` and ``train_acc`` are averaged over the epoch's batches as they were
    trained (the model changes during the epoch); ``val_*`` are measured after it.
    ``train_loss`` excludes the regularizer, so it compares directly with ``val_loss``.
    """

    epoch: list[int] = field(default_factory=list)  # 1, 2, ...
    train_loss: list[float] = field(default_factory=list)  # mean loss per example
    val_loss: list[float] = field(default_factory=list)  # nan without a val_loader
    train_acc: list[float] = field(default_factory=list)  # in [0, 1]; nan if not classification
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # learning rate at the epoch's end
    grad_norm: list[float] = field(default_factory=list)  # mean total gradient norm, before clipping
    best_epoch: int | None = None  # epoch with the lowest validation loss
    stopped_early: bool = False

    @property
    def best_val_loss(self) -> float | None:
        return None if self.best_epoch is None else self.val_loss[self.best_epoch - 1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def plot(self, ax: Any = None) -> Any:
        """Losses and accuracies against epochs; returns the Figure.

        ``ax``: None (a new figure with two panels), a pair of Axes (losses, accuracies),
        or one Axes (losses, with accuracies dashed on a twin right axis).
        """
        import matplotlib.pyplot as plt

        twin = False
        if ax is None:
            fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
            plt.close(fig)  # returned, not auto-shown: a notebook displays it once
        elif isinstance(ax, (list, tuple)) or getattr(ax, "ndim", 0) == 1:
            ax_loss, ax_acc = ax
        else:
            ax_loss, ax_acc, twin = ax, ax.twinx(), True
        style = "--" if twin else "-"
        ax_loss.plot(self.epoch, self.train_loss, "-", color="C0", label="train loss")
        ax_loss.plot(self.epoch, self.val_loss, "-", color="C1", label="val loss")
        ax_acc.plot(self.epoch, self.train_acc, style, color="C0", label="train acc")
        ax_acc.plot(self.epoch, self.val_acc, style, color="C1", label="val acc")
        if self.best_epoch is not None:
            for a in {ax_loss, ax_acc}:
                a.axvline(self.best_epoch, color="gray", ls=":", lw=1)
            ax_loss.plot([self.best_epoch], [self.best_val_loss], "*", color="C1", ms=11,
                         label=f"best val loss {self.best_val_loss:.3f}")  # fmt: skip
        from matplotlib.ticker import MaxNLocator

        for a in {ax_loss, ax_acc}:
            a.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss (per example)")
        ax_acc.set_ylabel("accuracy")
        if not twin:
            ax_acc.set_xlabel("epoch")
            ax_acc.grid(alpha=0.3)
            ax_acc.legend(fontsize=8)
        ax_loss.grid(alpha=0.3)
        ax_loss.legend(fontsize=8)
        return ax_loss.figure

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(0 epochs)"
        best = "none" if self.best_epoch is None else f"{self.best_val_loss:.4f} at epoch {self.best_epoch}"
        return (
            f"History({len(self.epoch)} epochs, final train loss {self.train_loss[-1]:.4f}, "
            f"best val loss {best}, stopped_early={self.stopped_early})"
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: LossFn | None = None,
    device: torch.device | str | None = None,
) -> tuple[float, float]:
    """Mean loss per example and accuracy in [0, 1] of ``model`` over every batch of ``loader``.

    The model runs in eval mode (dropout off, BatchNorm on running statistics); its
    previous mode is restored afterwards. Accuracy is nan when the targets are not
    integer class labels (N,) for logits (N, C).
    """
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    _check_loss_fn(loss_fn)
    device = get_device() if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    total_loss, correct, n, classification = 0.0, 0, 0, True
    try:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)  # (B, C)
            total_loss += loss_fn(logits, y).item() * len(y)
            if classification and _is_classification(logits, y):
                correct += (logits.argmax(dim=1) == y).sum().item()
            else:
                classification = False
            n += len(y)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate got an empty loader: it must yield at least one (x, y) batch")
    return total_loss / n, (correct / n if classification else math.nan)


def _total_grad_norm(params: list[nn.Parameter]) -> float:
    """The 2-norm of all gradients concatenated (what clip_grad_norm_ compares with max_norm)."""
    norms = [p.grad.detach().norm(2) for p in params if p.grad is not None]
    if not norms:
        return 0.0
    return torch.stack([n.to(norms[0].device) for n in norms]).norm(2).item()


def _train_one_epoch(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    device: torch.device,
    scheduler: Any,
    grad_clip: float | None,
    regularizer: Callable[[nn.Module], torch.Tensor] | None,
) -> tuple[float, float, float]:
    """One pass over ``loader``; returns (mean loss per example, accuracy, mean grad norm)."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total_loss, correct, n, norms, classification = 0.0, 0, 0, [], True
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)  # (B, C)
        data_loss = loss_fn(logits, y)  # scalar, batch mean
        loss = data_loss if regularizer is None else data_loss + regularizer(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norms.append(_total_grad_norm(params))
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += data_loss.item() * len(y)
        if classification and _is_classification(logits, y):
            correct += (logits.argmax(dim=1) == y).sum().item()
        else:
            classification = False
        n += len(y)
    if n == 0:
        raise ValueError("fit got an empty train_loader: it must yield at least one (x, y) batch")
    return total_loss / n, (correct / n if classification else math.nan), sum(norms) / len(norms)


def fit(
    model: nn.Module,
    train_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    val_loader: Iterable[tuple[torch.Tensor, torch.Tensor]] | None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn | None = None,
    device: torch.device | str | None = None,
    scheduler: Any = None,
    grad_clip: float | None = None,
    early_stopping_patience: int | None = None,
    regularizer: Callable[[nn.Module], torch.Tensor] | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``, validating after each.

    - ``loss_fn``: batch-mean loss of ``(logits, targets)``; default ``nn.CrossEntropyLoss()``.
    - ``scheduler``: stepped once per batch, after ``optimizer.step()``.
    - ``grad_clip``: clip the total gradient norm to this value (the recorded norm is pre-clip).
    - ``early_stopping_patience``: stop after this many epochs without a lower validation
      loss, and load the weights of the best epoch back into ``model`` (also when training
      runs to the last epoch).
    - ``regularizer``: ``regularizer(model)`` -> scalar tensor added to the training loss
      (e.g. an L1 penalty); not included in the recorded ``train_loss``.
    - ``progress``: a tqdm bar over epochs showing the latest losses.

    The model is moved to ``device`` (default :func:`~course_lib.device.get_device`).
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer over model.parameters(), got {type(optimizer).__name__}"
        )
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be a positive number or None, got {grad_clip!r}")
    if early_stopping_patience is not None:
        if not isinstance(early_stopping_patience, int) or early_stopping_patience < 1:
            raise ValueError(f"early_stopping_patience must be a positive int or None, got {early_stopping_patience!r}")
        if val_loader is None:
            raise ValueError("early stopping watches the validation loss: pass a val_loader")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    _check_loss_fn(loss_fn)
    device = get_device() if device is None else torch.device(device)
    model.to(device)

    history = History()
    best_loss, best_state, bad_epochs = math.inf, None, 0
    bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress, leave=True)
    for epoch in bar:
        train_loss, train_acc, grad_norm = _train_one_epoch(
            model, train_loader, optimizer, loss_fn, device, scheduler, grad_clip, regularizer
        )
        val_loss, val_acc = math.nan, math.nan
        if val_loader is not None:
            val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)
        history.epoch.append(epoch)
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        history.train_acc.append(train_acc)
        history.val_acc.append(val_acc)
        history.lr.append(float(optimizer.param_groups[0]["lr"]))
        history.grad_norm.append(grad_norm)
        bar.set_postfix(train_loss=f"{train_loss:.4f}", val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")

        if val_loss < best_loss:  # nan never improves
            best_loss, history.best_epoch, bad_epochs = val_loss, epoch, 0
            if early_stopping_patience is not None:
                best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
            if early_stopping_patience is not None and bad_epochs >= early_stopping_patience:
                history.stopped_early = epoch < epochs
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
