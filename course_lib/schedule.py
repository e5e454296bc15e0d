"""Day 21: the training recipe as data: TrainConfig, the learning-rate schedule and AdamW groups.

:class:`TrainConfig` holds every setting of a run. The learning rate GPT training uses is
a pure function of the step, :func:`lr_at`:

* steps ``0 .. warmup_iters - 1``: linear warm-up, ``lr * (it + 1) / warmup_iters``
  (the first step already moves, at ``lr / warmup_iters``; step ``warmup_iters - 1`` uses ``lr``);
* steps ``warmup_iters .. lr_decay_iters``: half a cosine from ``lr`` down to ``min_lr``;
* after ``lr_decay_iters``: ``min_lr`` (also right after a warm-up longer than ``lr_decay_iters``).

These are the warm-up and cosine formulas Day 9 writes by hand, joined into one function.

>>> cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110)
>>> lr_at(0, cfg), lr_at(9, cfg), lr_at(60, cfg), lr_at(500, cfg)
(0.0001, 0.001, 0.00055, 0.0001)
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

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
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    grad_accum_steps: int = 1  # micro-batches per step: effective batch = batch_size * this
    eval_interval: int = 200  # steps between evaluations
    eval_iters: int = 50  # batches per split in each loss estimate
    early_stopping_patience: int | None = None  # evaluations without improvement tolerated; None: off
    dtype: str = "auto"  # "auto" (bf16 where supported), "float32", "bfloat16" or "float16"
    compile: bool = False  # torch.compile the model (slow start, faster steps on GPUs)
    seed: int = 1337  # seeds the batch draws (plus the rank under DDP)
    log_every: int = 10  # steps between loss updates on the progress bar; 0: never
    progress: bool = True  # show a tqdm progress bar
    checkpoint_dir: str | None = None  # where ckpt-XXXXXX folders go; None: no checkpoints
    checkpoint_every: int = 1  # write a checkpoint every this many evaluations
    keep_best: bool = True  # also write one whenever the validation loss reaches a new best

    def __post_init__(self) -> None:
        positive = ("max_iters", "batch_size", "grad_accum_steps", "eval_interval", "eval_iters", "checkpoint_every")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {getattr(self, name)!r}")
        if self.dtype not in ("auto", *_DTYPES):
            raise ValueError(f"TrainConfig.dtype={self.dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")
        if self.warmup_iters < 0 or (self.lr_decay_iters is not None and self.lr_decay_iters < 1):
            raise ValueError(f"warmup_iters must be >= 0 and lr_decay_iters >= 1 (or None), "
                             f"got {self.warmup_iters} and {self.lr_decay_iters}")
        if self.grad_clip < 0 or (self.early_stopping_patience or 0) < 0:
            raise ValueError("grad_clip and early_stopping_patience must not be negative (0 turns clipping off)")
        self.betas = tuple(self.betas)
        if self.checkpoint_dir is not None:
            self.checkpoint_dir = str(self.checkpoint_dir)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})



def lr_at(it: int, cfg: TrainConfig) -> float:
    """Learning rate for optimisation step ``it`` (counted from 0): warm-up, cosine, floor."""
    decay_iters = cfg.lr_decay_iters if cfg.lr_decay_iters is not None else cfg.max_iters
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / cfg.warmup_iters
    if it >= decay_iters:
        return cfg.min_lr
    progress = (it - cfg.warmup_iters) / (decay_iters - cfg.warmup_iters)  # 0 -> 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return cfg.min_lr + coeff * (cfg.lr - cfg.min_lr)


def configure_optimizer(
    model: nn.Module,
    weight_decay: float,
    lr: float,
    betas: tuple[float, float],
    device: torch.device | str = "cpu",
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only.

    Group 0 holds every trainable parameter with ``dim >= 2`` (linear weights, embeddings)
    and decays with ``weight_decay``; group 1 holds biases and normalisation weights
    (``dim < 2``) with no decay: shrinking a bias or a LayerNorm gain towards zero is not
    regularisation. Tied parameters (an embedding shared with the output head) appear once.
    On CUDA the fused kernel is used: one launch for the whole update.
    """
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
