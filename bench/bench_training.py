"""Day 21 benchmark: training speed and time-to-loss of the course's CPU recipes, side by side.

Both recipes come from ``course_lib.presets`` and go through the same steps as
``python -m course_lib train`` (tokenizer, GPTConfig, TrainConfig, Trainer), in one process:

- ``shakespeare-char-nanogpt``: nanoGPT's CPU recipe (4 layers, 4 heads, width 128,
  block 64, batch 12, 2,000 steps), to compare per-iteration speed with nanoGPT itself;
- ``shakespeare-char-cpu``: the course's own CPU recipe.

Every ``--eval-interval`` steps (100, finer than the recipes' own eval_interval, so that
the time a loss is first reached is pinned down) the Trainer estimates the validation loss
with the recipe's ``eval_iters`` batches; that cost is part of the wall time. A milestone
(1.886, where nanoGPT's recipe ends, and 1.70) is the first of these evaluations at which
the loss on *every* token of the validation split
(:func:`course_lib.batches.evaluate_perplexity`) is at or below the target: an exact
measure, taken outside the timings once the estimate comes near the target. Times are
given as ``wall`` (training steps and the Trainer's evaluations) and ``steps`` (training
steps only); the evaluation overhead is listed on its own.

    python bench/bench_training.py            # the full runs (several minutes on 2 cores)
    python bench/bench_training.py --quick    # a few steps of each, as a smoke test

Goals on a 2-core CPU: the nanoGPT recipe no slower per step than nanoGPT (42.5 ms/iter
with its evaluations); shakespeare-char-cpu at val 1.886 within 42.5 s wall and at 1.70
within 5 minutes. Timings on a shared machine are noisy: the load average is printed, and
so is the share of the CPUs that other processes used during each run (a few percent: the
figures hold; much more: they do not, as torch threads slow down badly when they must
share a core with another program).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from course_lib.batches import evaluate_perplexity  # noqa: E402
from course_lib.data import load_text, train_val_split  # noqa: E402
from course_lib.device import seed_everything  # noqa: E402
from course_lib.model import GPT  # noqa: E402
from course_lib.presets import PRESETS, Recipe  # noqa: E402
from course_lib.speedrun import cpu_busy_seconds, others_share  # noqa: E402
from course_lib.trainer import EvalRecord, Trainer  # noqa: E402

TARGETS = (1.886, 1.70)  # nanoGPT's CPU recipe ends at 1.886; 1.70 is the 5-minute goal
NEAR = 0.05  # measure the whole validation split once the estimate is this close to a target
REFERENCE = "nanoGPT (reference measurement on this machine): 42.5 ms/iter, 1.886 in 85 s"


@dataclass
class Milestone:
    """The first evaluation at or below a target loss."""

    step: int
    steps_s: float  # seconds spent in training steps up to this evaluation
    wall_s: float  # the same plus every evaluation so far
    val_estimate: float  # the Trainer's estimate at that evaluation
    val_full: float  # the whole validation split: at or below the target


@dataclass
class RunLog:
    """What the callback collects during one run."""

    tokens_per_step: int
    records: list[EvalRecord] = field(default_factory=list)
    steps_s: list[float] = field(default_factory=list)  # cumulative step time at each evaluation
    wall_s: list[float] = field(default_factory=list)  # cumulative wall time, the callback's own work excluded
    milestones: dict[float, Milestone] = field(default_factory=dict)
    excluded_s: float = 0.0  # time spent in this callback (full-split losses), taken out of wall_s
    n_full: int = 0  # full-split measurements made along the way


def full_val_loss(model: torch.nn.Module, val_ids: torch.Tensor, block_size: int, limit: int | None) -> float:
    """Mean loss over every token of the validation split (or its first ``limit`` tokens)."""
    data = val_ids if limit is None else val_ids[:limit]
    return evaluate_perplexity(model, data, block_size, batch_size=32).loss


def make_callback(log: RunLog, val_ids: torch.Tensor, block_size: int, limit: int | None):
    """After each of the Trainer's evaluations: add up step and wall time, check the milestones.

    A milestone counts when the loss on the whole validation split is at or below the target;
    it is measured (outside the timings) only once the Trainer's estimate comes within
    ``NEAR`` of a target, so that few of these slower, exact measurements are needed.
    """

    def callback(trainer: Trainer, r: EvalRecord) -> None:
        start = time.perf_counter()
        prev_step = log.records[-1].step if log.records else 0
        prev_steps_s = log.steps_s[-1] if log.steps_s else 0.0
        interval = (r.step - prev_step) * log.tokens_per_step / r.tokens_per_sec if r.tokens_per_sec > 0 else 0.0
        log.records.append(r)
        log.steps_s.append(prev_steps_s + interval)
        log.wall_s.append(r.elapsed_s - log.excluded_s)
        pending = [t for t in TARGETS if t not in log.milestones and r.val_loss <= t + NEAR]
        if pending and r.step > 0:
            full = full_val_loss(trainer.raw_model, val_ids, block_size, limit)
            log.n_full += 1
            for target in pending:
                if full <= target:
                    log.milestones[target] = Milestone(r.step, log.steps_s[-1], log.wall_s[-1], r.val_loss, full)
        log.excluded_s += time.perf_counter() - start

    return callback


def run_recipe(name: str, recipe: Recipe, text: str, train_text: str, val_text: str, args: argparse.Namespace):
    tok = recipe.build_tokenizer(text, train_text)
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)  # (N,)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)  # (M,)
    config = recipe.model_config(tok.vocab_size)
    recipe = dataclasses.replace(recipe, eval_interval=args.eval_interval)
    if args.quick:
        recipe = dataclasses.replace(recipe, max_iters=args.quick_iters, eval_iters=min(recipe.eval_iters, 4))
    cfg = recipe.train_config(progress=False)  # no checkpoint_dir: no checkpoints
    seed_everything(recipe.seed)
    model = GPT(config)
    limit = 20_000 if args.quick else None
    trainer = Trainer(model, train_ids, val_ids, cfg, device="cpu")
    log = RunLog(tokens_per_step=trainer.tokens_per_step)
    trainer.callbacks.append(make_callback(log, val_ids, recipe.block_size, limit))
    trainer.fit()
    start = time.perf_counter()
    final_full = full_val_loss(model, val_ids, recipe.block_size, limit)
    full_s = time.perf_counter() - start
    return model, cfg, log, final_full, full_s


def fmt_milestone(m: Milestone | None, best: float) -> str:
    if m is None:
        return f"not reached (best estimate {best:.3f})"
    return f"step {m.step}: {m.wall_s:.1f} s wall ({m.steps_s:.1f} s steps)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps of each recipe (smoke test)")
    parser.add_argument("--quick-iters", type=int, default=20, help="steps per recipe with --quick")
    parser.add_argument("--presets", nargs="+", default=["shakespeare-char-nanogpt", "shakespeare-char-cpu"],
                        choices=sorted(PRESETS))
    parser.add_argument("--eval-interval", type=int, default=None,
                        help="steps between evaluations (default 100; 10 with --quick)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    args = parser.parse_args()
    if args.eval_interval is None:
        args.eval_interval = 10 if args.quick else 100
    torch.set_num_threads(args.threads)

    text = load_text("tinyshakespeare")
    train_text, val_text = train_val_split(text, 0.1)
    load_before = os.getloadavg()[0]
    print(f"CPU ({platform.processor() or platform.machine()}), {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads; evaluations every {args.eval_interval} steps"
          f"{' (--quick: ' + str(args.quick_iters) + ' steps per recipe)' if args.quick else ''}")
    print(f"load average (1 min) before: {load_before:.2f}\n", flush=True)

    rows, curves, overheads = [], [], []
    for name in args.presets:
        recipe = PRESETS[name]
        busy, own, start = cpu_busy_seconds(), time.process_time(), time.perf_counter()
        model, cfg, log, final_full, full_s = run_recipe(name, recipe, text, train_text, val_text, args)
        others = others_share(busy, own, time.perf_counter() - start)
        last = log.records[-1]
        n_params = sum(p.numel() for p in model.parameters())
        steps, steps_s, wall_s = last.step, log.steps_s[-1], log.wall_s[-1]
        n_evals = len(log.records)
        eval_s = wall_s - steps_s
        per_eval = eval_s / n_evals
        # the recipe's own schedule evaluates every recipe.eval_interval steps (and at the end)
        recipe_evals = 1 + math.ceil(steps / recipe.eval_interval)
        ms_with_recipe_evals = (steps_s + recipe_evals * per_eval) / steps * 1e3
        best = min(r.val_loss for r in log.records)
        rows.append(
            f"| {name} | {n_params / 1e6:.2f}M | {steps} x {log.tokens_per_step:,} | {steps_s / steps * 1e3:.1f} | "
            f"{ms_with_recipe_evals:.1f} | {steps * log.tokens_per_step / steps_s:,.0f} | "
            f"{fmt_milestone(log.milestones.get(TARGETS[0]), best)} | "
            f"{fmt_milestone(log.milestones.get(TARGETS[1]), best)} | "
            f"{last.val_loss:.4f} / {final_full:.4f} | {wall_s:.1f} s |"
        )
        overheads.append(
            f"| {name} | {n_evals} x {cfg.eval_iters} batches x 2 splits | {per_eval:.2f} | {eval_s:.1f} | "
            f"{100 * eval_s / wall_s:.1f}% | {log.n_full} + 1 at the end, {log.excluded_s + full_s:.1f} s |"
        )
        marks = "; ".join(f"{t}: full split {m.val_full:.4f} (the Trainer's estimate {m.val_estimate:.4f})"
                          for t, m in sorted(log.milestones.items(), reverse=True))
        curve = " ".join(f"{r.step}:{r.val_loss:.3f}" for r in log.records)
        curves.append(f"- {name}: val loss by step {curve}" + (f"\n  at the milestones, {marks}" if marks else ""))
        print(f"finished {name}: {wall_s:.1f} s; other processes used {others} of the CPUs meanwhile "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)

    print("\n| recipe | params | steps x tokens | ms/iter (steps) | ms/iter (with the recipe's evals) | tokens/s "
          "| val <= 1.886 | val <= 1.70 | final val (estimate / full split) | wall |")
    print("|---|---:|---:|---:|---:|---:|---|---|---:|---:|")
    print(f"| {REFERENCE.split(':')[0]} | 0.80M | 2000 x 768 | - | 42.5 | - | step 2000: 85 s wall | - | 1.886 | 85 s |")
    print("\n".join(rows))
    print(f"\n{REFERENCE}")
    print("\nEvaluation overhead (included in wall; 'with the recipe's evals' counts the evaluations the recipe "
          "itself makes, every eval_interval steps, at the measured cost each):\n")
    print("| recipe | Trainer evaluations | s each | s in all | share of wall | full-split measurements (not in wall) |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(overheads))
    print("\nLoss curves (the Trainer's validation estimate):")
    print("\n".join(curves))
    print(f"\nload average (1 min) after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
