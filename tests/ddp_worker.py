"""A tiny language model for the trainer tests, and the script tests/test_ddp.py launches.

As a module it provides :class:`TinyLM` (a one-block MLP language model that follows the
``forward(idx, targets=None) -> (logits, loss)`` contract), :class:`TinyConfig` and
:func:`markov_tokens`, a learnable token stream. As a script, run under torchrun::

    python -m torch.distributed.run --nproc_per_node=2 --standalone tests/ddp_worker.py OUTDIR

each rank trains the same TinyLM for a few steps with DDP (gloo on CPU) and writes its
final parameters to ``OUTDIR/rank{R}.safetensors`` and its history to ``OUTDIR/rank{R}.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TinyConfig:
    vocab_size: int = 16  # tokens
    block_size: int = 8  # longest context
    n_embd: int = 16  # width of the residual stream
    dropout: float = 0.0  # on the MLP output
    tie_weights: bool = False  # share embed_tokens.weight with lm_head.weight

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TinyConfig:
        return cls(**d)


class TinyLM(nn.Module):
    """Token + position embeddings, one pre-norm MLP block, a linear head."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        C = config.n_embd
        self.embed_tokens = nn.Embedding(config.vocab_size, C)
        self.embed_positions = nn.Embedding(config.block_size, C)
        self.norm = nn.LayerNorm(C)
        self.up_proj = nn.Linear(C, 2 * C)
        self.down_proj = nn.Linear(2 * C, C)
        self.dropout = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.embed_tokens.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        x = self.embed_tokens(idx) + self.embed_positions(torch.arange(T, device=idx.device))  # (B, T, C)
        x = x + self.dropout(self.down_proj(F.gelu(self.up_proj(self.norm(x)))))  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def markov_tokens(n: int, vocab_size: int = 16, step: int = 1, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    """(n,) tokens where the next is ``(prev + step) % vocab_size``, or random with probability ``noise``."""
    g = torch.Generator().manual_seed(seed)
    random_tokens = torch.randint(vocab_size, (n,), generator=g)
    use_random = torch.rand(n, generator=g) < noise
    rand, flip = random_tokens.tolist(), use_random.tolist()
    out = [rand[0]]
    for i in range(1, n):
        out.append(rand[i] if flip[i] else (out[-1] + step) % vocab_size)
    return torch.tensor(out, dtype=torch.long)


# the run the DDP test reproduces in a single process
DDP_TRAIN = dict(max_iters=6, batch_size=4, block_size=8, lr=1e-2, min_lr=1e-3, warmup_iters=2, grad_accum_steps=2,
                 grad_clip=1.0, eval_interval=3, eval_iters=2, seed=0, progress=False)


def main(out_dir: str) -> None:
    import safetensors.torch
    import torch.distributed as dist

    from course_lib.trainer import TrainConfig, Trainer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TinyLM(TinyConfig())
    cfg = TrainConfig(**DDP_TRAIN, checkpoint_dir=str(Path(out_dir) / "ckpt"))
    trainer = Trainer(model, markov_tokens(2000), markov_tokens(500, seed=1), cfg)
    history = trainer.fit()
    rank = trainer.rank
    params = {k: v.detach().contiguous() for k, v in trainer.raw_model.named_parameters()}
    safetensors.torch.save_file(params, str(Path(out_dir) / f"rank{rank}.safetensors"))
    report = {"rank": rank, "world_size": trainer.world_size, "backend": dist.get_backend(),
              "is_main": trainer.is_main, "history": history.to_dict()}
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(report))
    trainer.close()


if __name__ == "__main__":
    main(sys.argv[1])
