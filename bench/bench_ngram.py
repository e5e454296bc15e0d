"""Day 15 benchmark: how long n-gram counting and scoring take on TinyShakespeare characters.

Fits NGramModel on the 1,003,855 training characters for orders 1..6 and each smoothing,
scores the 111,539 validation characters, and prints a table of seconds and nats/char.

    python bench/bench_ngram.py

Goal: an order-5 model fits on the million training characters in a few seconds.
Timings on a shared machine are noisy: the load average is printed with the table.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib.data import load_text, train_val_split  # noqa: E402
from course_lib.ngram import SMOOTHINGS, NGramModel  # noqa: E402


def main() -> None:
    train, val = train_val_split(load_text("tinyshakespeare"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"train {len(train):,} chars, validation {len(val):,} chars; load average {load}")
    print(f"{'smoothing':>13} {'order':>5} {'fit s':>7} {'score s':>8} {'nats/char':>10}")
    for smoothing in SMOOTHINGS:
        for order in range(1, 7):
            t0 = time.perf_counter()
            model = NGramModel(order, smoothing=smoothing, k=0.01).fit(train)
            t1 = time.perf_counter()
            ce = model.cross_entropy(val)
            t2 = time.perf_counter()
            print(f"{smoothing:>13} {order:5d} {t1 - t0:7.2f} {t2 - t1:8.2f} {ce:10.4f}")


if __name__ == "__main__":
    main()
