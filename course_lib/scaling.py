"""Part 3: scaling out: one training run spread over several processes, and what it costs to talk.

Run under ``torchrun``, this module is one worker of a data-parallel run::

    torchrun --standalone --nproc_per_node=2 -m course_lib.scaling OUT_DIR --steps 50 --threads 1

Each process (a *rank*) trains day 21's model (``PRESETS["shakespeare-char-cpu"]``) with
:class:`course_lib.trainer.Trainer`, which sees the variables torchrun sets and wraps the
model in DistributedDataParallel (the gloo backend on a CPU): every rank draws its own
batches, backward all-reduces the gradients, and every rank takes the same step. At the end
each rank times an all-reduce of a tensor the size of the gradients and writes
``OUT_DIR/rank{R}.json`` (a :class:`RankReport`) and ``OUT_DIR/rank{R}.safetensors`` (its
final weights, so that the ranks can be compared).

:func:`torchrun_command` and :func:`worker_env` say how to start such a run,
:func:`launch` starts one and waits, :func:`read_run` reads what the ranks wrote; the
notebook, ``tests/test_scaling.py`` and ``bench/bench_scaling.py`` use them.
:func:`ring_allreduce_bytes` is the traffic of the ring all-reduce that NCCL uses on GPUs:

>>> ring_allreduce_bytes(1_000_000, world_size=4, bytes_per_value=4)  # 2 (N - 1) / N x 4 MB
6000000.0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRESET = "shakespeare-char-cpu"  # day 21's recipe: the model every rank trains
WARMUP_STEPS = 3  # steps trained before the clock starts: the first ones allocate memory
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                  "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")  # fmt: skip


def ring_allreduce_bytes(n_values: int, world_size: int, bytes_per_value: int = 4) -> float:
    """Bytes each rank sends (and as many it receives) to all-reduce ``n_values`` numbers in a ring.

    The tensor is cut into ``world_size`` chunks. A reduce-scatter passes chunks around the ring
    ``N - 1`` times, adding as it goes, until each rank holds one fully summed chunk; an all-gather
    passes the summed chunks around ``N - 1`` more times. Each pass sends one chunk of
    ``n_values / N`` numbers: ``2 (N - 1) / N`` times the tensor's bytes in all, almost twice the
    tensor whatever ``N`` is. One rank alone sends nothing.

    >>> ring_allreduce_bytes(10, world_size=2, bytes_per_value=2)  # 2 x 1/2 x 20 bytes
    20.0
    >>> ring_allreduce_bytes(10, world_size=1)
    0.0
    """
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    return 2 * (world_size - 1) / world_size * n_values * bytes_per_value


@dataclass(frozen=True)
class RankReport:
    """What one rank of a run measured and wrote."""

    rank: int
    world_size: int
    backend: str  # "gloo" on a CPU, "nccl" on NVIDIA GPUs; "none" for a single process
    threads: int  # torch threads of this process
    steps: int  # optimisation steps timed (after WARMUP_STEPS untimed ones)
    tokens_per_step: int  # batch x context x grad_accum_steps x world_size: the whole run's tokens per step
    n_params: int
    train_s: float  # wall time of the timed steps (one loss estimate included)
    tokens_per_sec: float  # the whole run's training tokens per second over the timed steps, estimates left out
    allreduce_ms: float  # the fastest of a few all-reduces of a float32 tensor of n_params numbers
    val_loss: float  # the last estimate (the mean over the ranks)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ScalingRun:
    """The reports of every rank of one run, read back from its folder."""

    out_dir: Path
    reports: list[RankReport]

    @property
    def world_size(self) -> int:
        return self.reports[0].world_size

    @property
    def tokens_per_sec(self) -> float:
        return self.reports[0].tokens_per_sec  # every rank holds the same (all-reduced) figure

    def weights(self, rank: int) -> dict[str, Any]:
        from safetensors.torch import load_file

        return load_file(str(self.out_dir / f"rank{rank}.safetensors"))

    def ranks_identical(self) -> bool:
        """True when every rank ended with exactly the same weights (bit for bit)."""
        import torch

        first = self.weights(0)
        for rank in range(1, self.world_size):
            other = self.weights(rank)
            if other.keys() != first.keys() or not all(torch.equal(first[k], other[k]) for k in first):
                return False
        return True


def default_threads(nproc: int) -> int:
    """Torch threads per process: the cores shared out, at least one (2 cores, 2 processes: 1 each)."""
    return max(1, (os.cpu_count() or 1) // nproc)


def worker_env(threads: int) -> dict[str, str]:
    """This process's environment for the workers: ``threads`` OpenMP threads each, the CPU,
    and no torchrun variables left over from an enclosing run."""
    env = {k: v for k, v in os.environ.items() if k not in _TORCHRUN_VARS}
    root = str(Path(__file__).resolve().parents[1])  # course_lib importable from any folder
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), COURSE_DEVICE="cpu")
    return env


def torchrun_command(nproc: int, out_dir: str | os.PathLike, steps: int, threads: int | None = None,
                     **overrides: int) -> list[str]:
    """The command line of a run of ``nproc`` ranks: ``torchrun`` is ``python -m torch.distributed.run``.

    ``overrides`` change the recipe's shape for a smaller run: ``batch_size``, ``block_size``,
    ``n_layer``, ``n_embd``, ``n_head``.
    """
    threads = default_threads(nproc) if threads is None else threads
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "course_lib.scaling", str(out_dir), f"--steps={steps}", f"--threads={threads}"]  # fmt: skip
    for name, value in overrides.items():
        if name not in _SHAPE:
            raise TypeError(f"unknown override {name!r}: choose from {', '.join(_SHAPE)}")
        cmd.append(f"--{name.replace('_', '-')}={int(value)}")
    return cmd


def launch(nproc: int, out_dir: str | os.PathLike, steps: int, threads: int | None = None, timeout: float = 600,
           **overrides: int) -> ScalingRun:
    """Start a run of ``nproc`` ranks, wait for it, and read what they wrote (see :func:`read_run`)."""
    threads = default_threads(nproc) if threads is None else threads
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(torchrun_command(nproc, out_dir, steps, threads, **overrides), env=worker_env(threads),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited with {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return read_run(out_dir)


def read_run(out_dir: str | os.PathLike) -> ScalingRun:
    """The :class:`RankReport` of every rank in ``out_dir``, in rank order."""
    out_dir = Path(out_dir)
    files = sorted(out_dir.glob("rank*.json"), key=lambda p: int(p.stem[4:]))
    if not files:
        raise FileNotFoundError(f"no rank*.json in {out_dir}: did the run finish?")
    reports = [RankReport(**json.loads(p.read_text())) for p in files]
    if [r.rank for r in reports] != list(range(reports[0].world_size)):
        raise ValueError(f"{out_dir}: reports from ranks {[r.rank for r in reports]}, "
                         f"expected 0 to {reports[0].world_size - 1}")
    return ScalingRun(out_dir, reports)


# ---------------------------------------------------------------- the worker
_SHAPE = ("batch_size", "block_size", "n_layer", "n_embd", "n_head")


def _allreduce_ms(n_values: int, repeats: int = 5) -> float:
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return 0.0
    t = torch.ones(n_values)
    times = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def main(argv: list[str] | None = None) -> None:
    """One rank: train ``--steps`` steps of the recipe, write the report and the weights."""
    parser = argparse.ArgumentParser(description="one rank of a data-parallel run (start it with torchrun)")
    parser.add_argument("out_dir")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup-steps", type=int, default=WARMUP_STEPS)
    for name in _SHAPE:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    args = parser.parse_args(argv)

    import safetensors.torch
    import torch
    import torch.distributed as dist

    from course_lib.device import seed_everything
    from course_lib.lm_eval import shakespeare_splits
    from course_lib.model import GPT
    from course_lib.presets import PRESETS
    from course_lib.trainer import Trainer

    torch.set_num_threads(args.threads)
    shape = {name: getattr(args, name) for name in _SHAPE if getattr(args, name) is not None}
    total = args.warmup_steps + args.steps
    recipe = dataclasses.replace(PRESETS[PRESET], **shape, max_iters=args.warmup_steps,
                                 warmup_iters=max(1, total // 10), eval_interval=total, eval_iters=2)
    train_text, val_text = shakespeare_splits()
    tok = recipe.build_tokenizer(train_text + val_text, train_text)
    train_ids, val_ids = torch.tensor(tok.encode(train_text)), torch.tensor(tok.encode(val_text))
    seed_everything(recipe.seed)  # the same initial weights on every rank
    model = GPT(recipe.model_config(tok.vocab_size))
    cfg = recipe.train_config(progress=False, dtype="float32", lr_decay_iters=total)
    trainer = Trainer(model, train_ids, val_ids, cfg, device="cpu")
    trainer.fit()  # the untimed warm-up steps: the first steps allocate buffers (and DDP its buckets)
    trainer.cfg = dataclasses.replace(cfg, max_iters=total)  # then carry on, the schedule unchanged
    t0 = time.perf_counter()
    history = trainer.fit()
    train_s = time.perf_counter() - t0
    n_params = model.num_parameters(non_embedding=False)
    report = RankReport(
        rank=trainer.rank, world_size=trainer.world_size, backend=dist.get_backend() if trainer.ddp else "none",
        threads=torch.get_num_threads(), steps=trainer.step - args.warmup_steps,
        tokens_per_step=trainer.tokens_per_step, n_params=n_params, train_s=round(train_s, 3),
        tokens_per_sec=round(history.tokens_per_sec[-1], 1),  # the timed steps only, the estimates left out
        allreduce_ms=round(_allreduce_ms(n_params), 3), val_loss=history.val_loss[-1],
    )  # fmt: skip
    out = Path(args.out_dir)
    params = {k: v.detach().contiguous() for k, v in trainer.raw_model.named_parameters()}
    safetensors.torch.save_file(params, str(out / f"rank{trainer.rank}.safetensors"))
    (out / f"rank{trainer.rank}.json").write_text(json.dumps(report.to_dict()))
    trainer.close()


if __name__ == "__main__":
    main()
