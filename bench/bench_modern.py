"""Part 3 benchmark: GPT-2's layout to a modern one, one change at a time, over seeds.

Every change of :data:`course_lib.ablation.CHANGES` (and all of them together) trains at the
shape, batch and schedule of day 21's recipe for the same number of steps (equal training
compute), from each seed, and is scored on the course's yardstick (every validation
character, nats per character). The table gives the mean and the spread over the seeds,
the parameters, the training tokens per second and the KV-cache bytes per token.

    python bench/bench_modern.py                     # 1,000 steps, seeds 1337 and 1 (about 20 min)
    python bench/bench_modern.py --steps 2000 --seeds 1337 1 2
    python bench/bench_modern.py --quick             # 5 steps each: a smoke test, not saved

Validation losses do not depend on the machine's load (training is seeded and deterministic
on a CPU); tokens per second do, so the share of the CPUs other processes used is saved
with the results, in ``bench/results/modern.json`` with the date and the commit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from course_lib.ablation import CHANGES, run_change  # noqa: E402
from course_lib.atomic import atomic_write_text  # noqa: E402
from course_lib.lm_eval import shakespeare_splits  # noqa: E402
from course_lib.model import GPTConfig  # noqa: E402
from course_lib.presets import PRESETS  # noqa: E402
from course_lib.speedrun import cpu_busy_seconds, git_commit, others_share  # noqa: E402
from course_lib.tokenizers import CharTokenizer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "modern.json"
RECIPE = PRESETS["shakespeare-char-cpu"]


def base_config(vocab_size: int) -> GPTConfig:
    """The classic layout at day 21's shape."""
    return GPTConfig.classic(vocab_size=vocab_size, block_size=RECIPE.block_size, n_layer=RECIPE.n_layer,
                             n_head=RECIPE.n_head, n_embd=RECIPE.n_embd)  # fmt: skip


def measure(steps: int, seeds: list[int], val_chars: int | None) -> dict:
    train_text, val_text = shakespeare_splits()
    tok = CharTokenizer.from_text(train_text + val_text)
    train_ids, val_ids = torch.tensor(tok.encode(train_text)), torch.tensor(tok.encode(val_text))
    base = base_config(tok.vocab_size)
    rows = []
    busy, own, t0 = cpu_busy_seconds(), time.process_time(), time.perf_counter()
    for seed in seeds:
        for name in CHANGES:
            row = run_change(name, base, RECIPE, tok, train_ids, val_ids, val_text[:val_chars], steps=steps, seed=seed)
            rows.append(row)
            print(f"  {name:12s} seed {seed}: {row['nats_per_char']:.4f} nats/char, {row['tokens_per_s']:,} tokens/s",
                  flush=True)
    wall = time.perf_counter() - t0
    return {"date": datetime.date.today().isoformat(), "commit": git_commit(), "others": others_share(busy, own, wall),
            "threads": torch.get_num_threads(), "steps": steps, "seeds": seeds, "recipe": RECIPE.to_dict(),
            "rows": rows}  # fmt: skip


def summarise(result: dict) -> list[dict]:
    """One row per change: the mean and spread of nats/char over the seeds, and the change from GPT-2."""
    by_change: dict[str, list[dict]] = {}
    for row in result["rows"]:
        by_change.setdefault(row["change"], []).append(row)
    base = statistics.mean(r["nats_per_char"] for r in by_change["GPT-2"])
    out = []
    for name, rows in by_change.items():
        vals = [r["nats_per_char"] for r in rows]
        out.append({"change": name, "seeds": len(rows), "nats_per_char": statistics.mean(vals),
                    "spread": max(vals) - min(vals), "vs_gpt2": statistics.mean(vals) - base,
                    "parameters": rows[0]["parameters"], "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rows),
                    "kv_bytes_per_token": rows[0]["kv_bytes_per_token"]})  # fmt: skip
    return out


def table(result: dict) -> str:
    lines = [f"GPT-2 to modern at day 21's shape, {result['steps']:,} steps each, seeds {result['seeds']}; "
             f"{result['date']}, commit {result['commit']}, others used {result['others']} of the CPUs",
             "| change | val nats/char | spread | vs GPT-2 | parameters | tokens/s | KV bytes/token |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in summarise(result):
        lines.append(f"| {s['change']} | {s['nats_per_char']:.4f} | {s['spread']:.4f} | {s['vs_gpt2']:+.4f} | "
                     f"{s['parameters']:,} | {s['tokens_per_s']:,.0f} | {s['kv_bytes_per_token']:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per change (default 1,000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 1], help="seeds (default 1337 1)")
    parser.add_argument("--quick", action="store_true", help="5 steps, one seed, 5,000 validation characters; "
                                                             "not saved")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.quick:
        result = measure(5, [1337], val_chars=5_000)
    else:
        result = measure(args.steps, args.seeds, val_chars=None)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
