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
