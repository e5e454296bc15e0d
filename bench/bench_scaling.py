"""Part 3 benchmark: day 21's recipe trained by 1 and by 2 processes (DDP, gloo, CPU): tokens per second.

Each layout is a torchrun launch of ``python -m course_lib.scaling`` (see :mod:`course_lib.scaling`):
every rank trains ``shakespeare-char-cpu``'s model on its own 24 windows a step, so two ranks
train twice the tokens per step, and the gradients are all-reduced once a step. The layouts:
one process with 1 thread, one with 2 threads (all of a 2-core machine's cores), two processes
with 1 thread each. The table reports the training tokens per second over the timed steps
(three untimed warm-up steps first), the measured all-reduce of the gradients' size, and the
share of the CPUs other processes used meanwhile: threads that must share a core with another
program slow down many times over, so a rate measured on a busy machine says so.

    python bench/bench_scaling.py            # 400 timed steps a layout (about 2 minutes on 2 cores), saved
    python bench/bench_scaling.py --quick    # 5 steps a layout, a smoke test, not saved

Each full run is written to ``bench/results/scaling.json`` with the date and the commit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib.atomic import atomic_write_text  # noqa: E402
from course_lib.scaling import PRESET, launch  # noqa: E402
from course_lib.speedrun import cpu_busy_seconds, git_commit  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "scaling.json"
LAYOUTS = ((1, 1), (1, 2), (2, 1))  # (processes, torch threads each)


def others_share(busy_before: float | None, own_cpu_s: float, wall: float) -> str:
    """The share of the CPUs other processes used: all busy CPU time, less this run's (children included)."""
    busy_after = cpu_busy_seconds()
    if busy_before is None or busy_after is None or wall <= 0:
        return "unknown"
    return f"{max(0.0, busy_after - busy_before - own_cpu_s) / (wall * (os.cpu_count() or 1)):.0%}"


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_layout(nproc: int, threads: int, steps: int) -> dict:
    busy, own, start = cpu_busy_seconds(), _own_cpu_s(), time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        run = launch(nproc, out, steps=steps, threads=threads)
        identical = run.ranks_identical()
    wall = time.perf_counter() - start
    r = run.reports[0]
    return {"processes": nproc, "threads": threads, "steps": r.steps, "tokens_per_step": r.tokens_per_step,
            "tokens_per_sec": round(r.tokens_per_sec), "train_s": r.train_s, "allreduce_ms": r.allreduce_ms,
            "ranks_identical": identical, "launch_s": round(wall, 1),
            "others": others_share(busy, _own_cpu_s() - own, wall)}  # fmt: skip


def table(rows: list[dict]) -> str:
    base = rows[0]["tokens_per_sec"]
    lines = ["| processes x threads | tokens/step | timed steps | tokens/s | vs first | all-reduce ms | ranks identical "
             "| others' CPU |", "|" + "---|" * 8]
    for r in rows:
        lines.append(f"| {r['processes']} x {r['threads']} | {r['tokens_per_step']:,} | {r['steps']:,} | "
                     f"{r['tokens_per_sec']:,} | {r['tokens_per_sec'] / base:.2f} | {r['allreduce_ms']:.2f} | "
                     f"{r['ranks_identical']} | {r['others']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="timed steps per layout")
    parser.add_argument("--quick", action="store_true", help="5 steps a layout, not saved (a smoke test)")
    args = parser.parse_args()
    steps = 5 if args.quick else args.steps
    rows = []
    for nproc, threads in LAYOUTS:
        rows.append(run_layout(nproc, threads, steps))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if args.quick:
        return
    record = {"preset": PRESET, "date": datetime.date.today().isoformat(), "commit": git_commit(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "layouts": rows}  # fmt: skip
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps([*saved, record], indent=1) + "\n")
    print(f"saved to {RESULTS}")


if __name__ == "__main__":
    main()
