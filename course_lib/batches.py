"""Day 15: training windows, loss estimates and held-out perplexity for language models.

A language model learns from windows of ``block_size`` tokens: the input ``x`` is a
window and the target ``y`` is the same window shifted one token to the right, so
position ``t`` of ``y`` is the token that follows ``x[:t+1]``.

>>> data = torch.arange(10)
>>> x, y = get_batch(data, block_size=4, batch_size=1, generator=torch.Generator().manual_seed(0))
>>> bool((y[:, :-1] == x[:, 1:]).all())   # y is x shifted by one
True

Three functions, used by every training loop from Day 15 to Day 21:

* :func:`get_batch` draws random windows (training, and the noisy estimates below).
* :func:`estimate_loss` averages the loss over a few random batches per split.
* :func:`evaluate_perplexity` scores every token of a held-out split exactly once, so
  its number can be compared across models in the course's perplexity table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _check_tokens(data: torch.Tensor, block_size: int, name: str = "data") -> None:
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        raise ValueError(f"{name} must be a 1-D tensor of token ids, got {type(data).__name__} "
                         f"with shape {tuple(getattr(data, 'shape', ()))}: flatten it with .view(-1).")
    if data.dtype.is_floating_point or data.dtype == torch.bool:
        raise ValueError(f"{name} holds {data.dtype}, not token ids: encode the text with a "
                         "tokenizer and pass torch.tensor(ids, dtype=torch.long).")
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    if data.numel() <= block_size:
        raise ValueError(f"{name} has {data.numel()} tokens, but a window needs block_size + 1 = "
                         f"{block_size + 1}: use more text or a smaller block_size.")


def device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def get_batch(
    data: torch.Tensor,
    block_size: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``batch_size`` random windows from ``data`` (N,), a 1-D tensor of token ids on the CPU.

    Returns ``x`` and ``y``, both LongTensors of shape (batch_size, block_size) on ``device``,
    with ``y[b, t] == data[i_b + t + 1]`` for the window starting at ``i_b``. Every start
    ``0 <= i_b <= N - block_size - 1`` is equally likely; ``generator`` makes the draw repeatable.
    """
    _check_tokens(data, block_size)
    starts = torch.randint(data.numel() - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = starts[:, None] + torch.arange(block_size)  # (B, T)
    x = data[offsets].long()  # (B, T)
    y = data[offsets + 1].long()  # (B, T)
    device = torch.device(device)
    if device.type == "cuda":  # pinned memory lets the copy overlap with compute
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    splits: dict[str, torch.Tensor],
    block_size: int,
    batch_size: int,
    eval_iters: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """Mean loss of ``model`` over ``eval_iters`` random batches of each split.

    ``splits`` maps a name to a 1-D token tensor, e.g. ``{"train": train, "val": val}``;
    the result maps the same names to floats. The model is put in eval mode (no dropout)
    for the estimate and back in its previous mode afterwards. Wrap the call in
    ``torch.autocast`` to estimate in mixed precision.
    """
    if eval_iters < 1:
        raise ValueError(f"eval_iters must be at least 1, got {eval_iters}")
    was_training = model.training
    model.eval()
    device = device_of(model)
    out: dict[str, float] = {}
    try:
        for name, data in splits.items():
            _check_tokens(data, block_size, name)
            losses = torch.zeros(eval_iters, dtype=torch.float64)
            for k in range(eval_iters):
                x, y = get_batch(data, block_size, batch_size, generator, device)  # (B, T) each
                _, loss = model(x, y)
                losses[k] = loss.item()
            out[name] = losses.mean().item()
    finally:
        model.train(was_training)
    return out


@dataclass(frozen=True)
class Perplexity:
    """Result of :func:`evaluate_perplexity`: mean loss in nats per token, its exp, and the count."""

    loss: float
    perplexity: float
    n_tokens: int

    def __repr__(self) -> str:
        return f"Perplexity({self.perplexity:.3f}, loss={self.loss:.4f} nats/token over {self.n_tokens:,} tokens)"


@torch.no_grad()
def evaluate_perplexity(
    model: nn.Module,
    data: torch.Tensor,
    block_size: int,
    batch_size: int = 16,
) -> Perplexity:
    """Score every token of a held-out split ``data`` (N,) exactly once.

    Which tokens are scored: all N - 1 tokens ``data[1:]``, i.e. every token except the
    very first, which has no context to be predicted from. The split is cut into
    non-overlapping windows ``x = data[s : s + T]`` with targets ``y = data[s + 1 : s + T + 1]``
    for ``s = 0, T, 2T, ...``; the last window is shorter when ``N - 1`` is not a multiple of
    ``T = block_size``. So a token at window position ``t`` sees ``t + 1`` tokens of context.

    The loss is the total cross-entropy (natural log) over those N - 1 predictions divided
    by N - 1, computed from the logits in float64; the perplexity is its ``exp``. A model
    with uniform logits over V tokens therefore scores exactly ``ln V`` and perplexity ``V``.
    """
    _check_tokens(data, 1)
    if block_size < 1 or batch_size < 1:
        raise ValueError(f"block_size and batch_size must be positive, got {block_size} and {batch_size}")
    was_training = model.training
    model.eval()
    device = device_of(model)
    n_pred = data.numel() - 1  # every token except the first is a target
    n_full = n_pred // block_size  # number of full-length windows
    starts = torch.arange(n_full) * block_size  # (n_full,)
    total = torch.zeros((), dtype=torch.float64)
    try:
        for i in range(0, n_full, batch_size):
            offsets = starts[i : i + batch_size, None] + torch.arange(block_size)  # (b, T)
            total += _sum_nll(model, data[offsets], data[offsets + 1], device)
        tail = n_pred - n_full * block_size  # tokens in the last, shorter window
        if tail > 0:
            s = n_full * block_size
            total += _sum_nll(model, data[None, s : s + tail], data[None, s + 1 : s + tail + 1], device)
    finally:
        model.train(was_training)
    loss = (total / n_pred).item()
    return Perplexity(loss=loss, perplexity=math.exp(loss), n_tokens=n_pred)


def _sum_nll(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Summed cross-entropy (nats) of targets ``y`` (b, t) given inputs ``x`` (b, t), in float64."""
    logits, _ = model(x.long().to(device), None)  # (b, t, V)
    logits = logits.double().flatten(0, 1)  # (b*t, V)
    return F.cross_entropy(logits, y.long().to(device).flatten(), reduction="sum").cpu()
