"""Part 3: the CPU speedrun, as a benchmark: train until the yardstick reaches 1.70, then 1.55.

The same run as ``python -m course_lib bench speedrun`` (see :mod:`course_lib.speedrun`):
the day-21 model with Muon, timed to each target, with the share of the CPUs other processes
used meanwhile. Each finished run is appended to ``bench/results/speedrun.json`` with the
date and the commit, and the records table is printed from that file.

    python bench/bench_speedrun.py           # one run (about 2 minutes on 2 cores), recorded
    python bench/bench_speedrun.py --quick   # 30 steps of a tiny model, a smoke test, not recorded
    python bench/bench_speedrun.py --table   # the records table only
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib.cli import main  # noqa: E402
from course_lib.speedrun import load_records, records_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "speedrun.json"

if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--table"]:
        print(records_table(load_records(RESULTS)) if RESULTS.exists() else f"no records yet in {RESULTS}")
        sys.exit(0)
    sys.exit(main(["bench", "speedrun", "--record", str(RESULTS), *args]))
