"""Day 21: the training recipe as data: TrainConfig, the learning-rate schedule and AdamW groups.

:class:`TrainConfig` holds every setting of a run. The learning rate GPT training uses is
a pure function of the step, :func:`lr_at`:

* steps ``0 .. warmup_iters - 1``: linear warm-up, ``lr * (it + 1) / warmup_iters``
  (the first step already moves, at ``lr / warmup_iters``; step ``warmup_iters - 1`` uses ``lr``);
* steps ``warmup_iters .. lr_decay_iters``: half a cosine from ``lr`` down to ``min_lr``;
* after ``lr_decay_iters``: ``min_lr`` (also right after a warm-up longer than ``lr_decay_iters``).

These are the warm-up and cosine formulas Day 9 writes by hand, joined into one function
of plain numbers; ``cfg.lr_at(it)`` applies it with a config's own settings.

>>> [lr_at(it, lr=1e-3, min_lr=1e-4, warmup_iters=10, decay_iters=110) for it in (0, 9, 60, 500)]
[0.0001, 0.001, 0.00055, 0.0001]
>>> TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110).lr_at(60)
0.00055

A setting that cannot work raises :class:`~course_lib.config.ConfigError` naming its field
(``TrainConfig(lr=float("inf"))``: ``err.fields == ("lr",)``), so ``python -m course_lib
train`` can name the flag.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from course_lib.config import ConfigError, check_int, from_dict_strict, is_finite_number
from course_lib.presets import OPTIMIZERS

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class TrainConfig:
    """Everything a training run needs besides the model and the data."""

    max_iters: int = 2000  # optimisation steps
    batch_size: int = 32  # windows per micro-batch (per process under DDP)
    block_size: int | None = None  # window length; None: the model's config.block_size
    lr: float = 1e-3  # peak learning rate, reached at the end of warm-up
    min_lr: float = 1e-4  # floor of the cosine decay, lr / 10 as in Chinchilla
    warmup_iters: int = 100  # linear warm-up steps
    lr_decay_iters: int | None = None  # step where the cosine reaches min_lr; None: max_iters
    weight_decay: float = 0.1  # AdamW decay on matrices and embeddings only
    betas: tuple[float, float] = (0.9, 0.95)  # beta2 0.95 is steadier than 0.999 for GPTs
    optimizer: str = "adamw"  # "adamw", or "muon": Muon on the blocks' matrices, AdamW on the rest
    muon_lr: float = 0.02  # Muon's peak rate; its groups follow the schedule scaled by muon_lr / lr
    muon_momentum: float = 0.95  # Muon's momentum (Nesterov)
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    grad_accum_steps: int = 1  # micro-batches per step: effective batch = batch_size * this
    eval_interval: int = 200  # steps between evaluations
    eval_iters: int = 50  # batches per split in each loss estimate
    early_stopping_patience: int | None = None  # evaluations without improvement tolerated; None: off
    dtype: str = "auto"  # "auto" (bf16 where supported), "float32", "bfloat16" or "float16"
    compile: bool = False  # torch.compile the training steps (seconds to compile, then faster); uncompiled if it fails
    seed: int = 1337  # seeds the batch draws (plus the rank under DDP)
    log_every: int = 10  # steps between loss updates on the progress bar; 0: never
    progress: bool = True  # show a tqdm progress bar
    checkpoint_dir: str | None = None  # where ckpt-XXXXXX folders go; None: no checkpoints
    checkpoint_every: int = 1  # write a checkpoint every this many evaluations
    keep_best: bool = True  # also write one whenever the validation loss reaches a new best

    def __post_init__(self) -> None:
        for name in ("max_iters", "batch_size", "grad_accum_steps", "eval_interval", "eval_iters",
                     "checkpoint_every"):  # fmt: skip
            check_int(name, getattr(self, name), low=1)
        for name in ("block_size", "lr_decay_iters"):  # None: the model's / max_iters
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), low=1)
        for name in ("warmup_iters", "log_every"):
            check_int(name, getattr(self, name), low=0)
        if self.early_stopping_patience is not None:
            check_int("early_stopping_patience", self.early_stopping_patience, low=0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError("seed", f"seed must be an int from 0 to 2**63 - 1, got {self.seed!r}")
        if not is_finite_number(self.lr) or self.lr <= 0:
            raise ConfigError("lr", f"lr must be a positive finite number, got {self.lr!r}")
        if not is_finite_number(self.min_lr) or not 0 <= self.min_lr <= self.lr:
            raise ConfigError(("lr", "min_lr"), f"need 0 <= min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")
        if not is_finite_number(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError("weight_decay", f"weight_decay must be a finite number >= 0 (0: no decay), "
                                              f"got {self.weight_decay!r}")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        if len(betas) != 2:
            raise ConfigError("betas", f"betas must be two numbers (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(betas, start=1):
            if not is_finite_number(beta) or not 0 <= beta < 1:
                raise ConfigError("betas", f"beta{i} must be in [0, 1), got {beta!r}: Adam's betas are the decay "
                                           "rates of its running averages (e.g. 0.9 and 0.95)")
        self.betas = betas
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"optimizer={self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if not is_finite_number(self.muon_lr) or self.muon_lr <= 0:
            raise ConfigError("muon_lr", f"muon_lr must be a positive finite number (e.g. 0.02), got {self.muon_lr!r}")
        if not is_finite_number(self.muon_momentum) or not 0 <= self.muon_momentum < 1:
            raise ConfigError("muon_momentum", f"muon_momentum must be in [0, 1) (e.g. 0.95), "
                                               f"got {self.muon_momentum!r}")
        if not is_finite_number(self.grad_clip) or self.grad_clip < 0:
            raise ConfigError("grad_clip", f"grad_clip must be a finite number >= 0 (0 turns clipping off), "
                                           f"got {self.grad_clip!r}")
        if self.dtype not in ("auto", *_DTYPES):
            raise ConfigError("dtype", f"dtype={self.dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'")
        if self.checkpoint_dir is not None:
            self.checkpoint_dir = str(self.checkpoint_dir)

    @property
    def decay_iters(self) -> int:
        """The step where the cosine reaches ``min_lr``: ``lr_decay_iters``, else ``max_iters``."""
        return self.lr_decay_iters if self.lr_decay_iters is not None else self.max_iters

    def lr_at(self, it: int) -> float:
        """The learning rate of step ``it`` under this config's schedule (see :func:`lr_at`)."""
        return lr_at(it, self.lr, self.min_lr, self.warmup_iters, self.decay_iters)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise a ValueError naming the valid ones."""
        return from_dict_strict(cls, d, "TrainConfig")


def lr_at(it: int, lr: float, min_lr: float, warmup_iters: int, decay_iters: int) -> float:
    """Learning rate for optimisation step ``it`` (counted from 0): warm-up, cosine, floor.

    >>> lr_at(4, lr=1e-3, min_lr=1e-4, warmup_iters=10, decay_iters=110)  # warm-up: 5/10 of lr
    0.0005
    """
    if it < warmup_iters:
        return lr * (it + 1) / warmup_iters
    if it >= decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (decay_iters - warmup_iters)  # 0 -> 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return min_lr + coeff * (lr - min_lr)


def configure_optimizer(
    model: nn.Module,
    weight_decay: float,
    lr: float,
    betas: tuple[float, float],
    device: torch.device | str = "cpu",
    optimizer: str = "adamw",
    muon_lr: float = 0.02,
    muon_momentum: float = 0.95,
) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices and embeddings only (or Muon, see below).

    Group 0 holds every trainable parameter with ``dim >= 2`` (linear weights, embeddings)
    and decays with ``weight_decay``; group 1 holds biases and normalisation weights
    (``dim < 2``) with no decay: shrinking a bias or a LayerNorm gain towards zero is not
    regularisation. Tied parameters (an embedding shared with the output head) appear once.
    On CUDA the fused kernel is used: one launch for the whole update.

    ``optimizer="muon"``: :class:`course_lib.muon.Muon`, which moves the weight matrices of
    the transformer blocks by orthogonalised momentum at ``muon_lr`` and everything else by
    AdamW as above (same decay rule).
    """
    if optimizer == "muon":
        from course_lib.muon import Muon, muon_param_groups

        return Muon(muon_param_groups(model, weight_decay), lr=lr, muon_lr=muon_lr, momentum=muon_momentum,
                    betas=tuple(betas))  # fmt: skip
    if optimizer != "adamw":
        raise ValueError(f"unknown optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    params = [p for p in model.parameters() if p.requires_grad]  # parameters() de-duplicates ties
    if not params:
        raise ValueError("the model has no trainable parameters: check requires_grad")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = torch.device(device).type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
    extra = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), **extra)
