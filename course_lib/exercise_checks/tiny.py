"""Part 3's tiny experiments: the data, the training loop and the held-out loss they share.

Each experiment exercise (Muon's settings, a layout change, a quantisation budget, a
larger batch's learning rate) trains a one- or two-block GPT for a few hundred steps on
the first 300,000 characters of TinyShakespeare and scores it on fixed held-out batches.
The batches come from fixed seeds (1 for training, 2 for the held-out loss), so a setting
always gives the same number and a checker can hold its target.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch
from torch import nn

from course_lib.batches import get_batch

CONTEXT = 32  # characters per window in every tiny run


@lru_cache(maxsize=1)
def tiny_shakespeare() -> tuple[torch.Tensor, torch.Tensor, int]:
    """The first 300,000 characters as ids: 270,000 to train on, 30,000 held out, and the vocabulary size."""
    from course_lib.data import load_text
    from course_lib.tokenizers import CharTokenizer

    text = load_text("tinyshakespeare")
    tok = CharTokenizer.from_text(text)
    ids = torch.tensor(tok.encode(text[:300_000]))
    return ids[:270_000], ids[270_000:], tok.vocab_size


def train_tiny(model: nn.Module, opt: torch.optim.Optimizer, train: torch.Tensor, steps: int, batch_size: int,
               before_step: Callable[[int], None] | None = None) -> None:
    """``steps`` optimiser steps on batches of ``batch_size`` windows drawn with seed 1; ``before_step(i)``
    runs before step ``i`` (a schedule sets the learning rate there)."""
    gen = torch.Generator().manual_seed(1)
    for i in range(steps):
        if before_step is not None:
            before_step(i)
        _, loss = model(*get_batch(train, CONTEXT, batch_size, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def heldout_batches(val: torch.Tensor, n_batches: int, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_batches`` held-out batches drawn with seed 2: the same ones for every run."""
    gen = torch.Generator().manual_seed(2)
    return [get_batch(val, CONTEXT, batch_size, gen) for _ in range(n_batches)]


@torch.no_grad()
def mean_loss(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]] | tuple) -> float:
    """The mean loss over ``batches``, in nats per character."""
    return sum(model(x, y)[1].item() for x, y in batches) / len(batches)
