"""Day 21: ``python -m course_lib bench``: run the repository's benchmark scripts one by one.

Each ``bench/bench_*.py`` runs in its own process with this Python (``--quick`` passed on
when given), its table printed as it comes; the command fails if any script fails. The
scripts live in the source repository, not in an installed package.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from course_lib.cli import UsageError


def bench_dir() -> Path:
    """The repository's bench/ folder (it exists in a source checkout only)."""
    return Path(__file__).resolve().parents[2] / "bench"


def run(args: argparse.Namespace) -> int:
    if getattr(args, "what", None) == "speedrun":
        return run_speedrun_command(args)
    folder = bench_dir()
    scripts = sorted(folder.glob("bench_*.py"))
    if not scripts:
        raise UsageError(f"no benchmark scripts: {folder} does not exist or holds no bench_*.py. The "
                         "benchmarks ship with the source repository, not with the installed package: "
                         "run this command from a clone of the course repository (pip install -e .).")
    extra = ["--quick"] if args.quick else []
    results = []
    for script in scripts:
        print(f"== {script.name} {' '.join(extra)}".rstrip(), flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(script), *extra], cwd=folder.parent).returncode
        results.append((script.name, code, time.perf_counter() - start))
    print("\n| script | result | seconds |\n|---|---|---|")
    for name, code, seconds in results:
        print(f"| {name} | {'ok' if code == 0 else f'FAILED (exit {code})'} | {seconds:.1f} |")
    failed = [name for name, code, _ in results if code != 0]
    if failed:
        print(f"{len(failed)} of {len(results)} benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def run_speedrun_command(args: argparse.Namespace) -> int:
    """``python -m course_lib bench speedrun``: the run, its splits, and the records table."""
    import dataclasses

    from course_lib.speedrun import GOALS_S, SPEEDRUN, TARGETS, append_record, load_records, records_table
    from course_lib.speedrun import run_speedrun

    recipe = SPEEDRUN
    if args.quick:
        recipe = dataclasses.replace(SPEEDRUN, n_layer=1, n_embd=32, n_head=2, n_kv_head=None, block_size=32,
                                     max_iters=30, warmup_iters=5, eval_interval=10, eval_iters=2)
    record = None if args.quick or args.no_record else Path(args.record) if args.record else (
        bench_dir() / "results" / "speedrun.json")
    if record is not None and not record.parent.parent.exists() and not args.record:
        raise UsageError(f"{record.parent.parent} does not exist (the benchmarks ship with the source repository): "
                         "pass --record FILE to keep the result elsewhere, or --no-record")
    print(f"speedrun: {recipe.description}; targets {', '.join(f'{t:.2f}' for t in TARGETS)} nats/char on the "
          "yardstick", flush=True)
    result = run_speedrun(recipe, TARGETS, log=lambda line: print(line, flush=True))
    print(f"\n| target | reached | step | training s | goal s |\n|---|---|---|---|---|")
    for s in result.splits:
        goal = f"{GOALS_S[s.target]:.0f}" if s.target in GOALS_S else "-"
        if s.reached:
            print(f"| {s.target:.2f} | {s.nats_per_char:.4f} | {s.step:,} | {s.train_s:.1f} | {goal} |")
        else:
            print(f"| {s.target:.2f} | not reached | - | - | {goal} |")
    print(f"{result.steps:,} steps, {result.train_s:.1f} s of training (+{result.scoring_s:.1f} s of exact scoring, "
          f"not counted); other processes used {result.others} of the CPUs; {result.threads} torch threads")
    if record is not None:
        append_record(record, result)
        print(f"\nrecords ({record}):\n" + records_table(load_records(record)))
    return 0
