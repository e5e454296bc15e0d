"""Part 3 benchmark: AdamW against Muon at equal wall time on day 21's model, over seeds.

The race of the Muon chapter (section 5), for longer and with more than one seed: for each
time budget, :func:`course_lib.speedrun.equal_time_steps` times a few steps of each
optimiser (alternating, the fastest timing counts) and sizes its run to the budget;
:func:`course_lib.speedrun.train_steps` trains it (warm-up and cosine fitted to its steps),
and the model is scored on the course's yardstick (:func:`course_lib.lm_eval.score_text`,
every validation character, in nats per character).

    python bench/bench_optimizers.py            # budgets 75 s and 150 s, seeds 1337 and 1 (about 20 min)
    python bench/bench_optimizers.py --quick    # 3 s budgets, one seed: a smoke test, not saved

The result is saved to ``bench/results/optimizers.json`` with the date, the commit and the
share of the CPUs other processes used meanwhile (a race timed on a busy machine says so),
and the table is printed from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from course_lib.atomic import atomic_write_text  # noqa: E402
from course_lib.lm_eval import score_text, shakespeare_splits  # noqa: E402
from course_lib.presets import PRESETS  # noqa: E402
from course_lib.speedrun import cpu_busy_seconds, equal_time_steps, git_commit, others_share, train_steps  # noqa: E402
from course_lib.tokenizers import CharTokenizer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "optimizers.json"
BASE = PRESETS["shakespeare-char-cpu"]
MUON_LR = 0.02  # the chapter's rate
RECIPES = {"AdamW": BASE, "Muon": dataclasses.replace(BASE, optimizer="muon", muon_lr=MUON_LR)}


def race(budgets: list[float], seeds: list[int], probe_steps: int, val_chars: int | None) -> dict:
    train_text, val_text = shakespeare_splits()
    tok = CharTokenizer.from_text(train_text + val_text)
    train_ids, val_ids = torch.tensor(tok.encode(train_text)), torch.tensor(tok.encode(val_text))
    rows = []
    busy, own, t0 = cpu_busy_seconds(), time.process_time(), time.perf_counter()
    for budget in budgets:
        for seed in seeds:
            recipes = {label: dataclasses.replace(r, seed=seed) for label, r in RECIPES.items()}
            ms, steps = equal_time_steps(recipes, budget, probe_steps, tok, train_ids, val_ids)
            for label, recipe in recipes.items():
                model, _, seconds = train_steps(recipe, steps[label], tok, train_ids, val_ids)
                val = score_text(model, tok, val_text[:val_chars], recipe.block_size, batch_size=64).nats_per_char
                rows.append({"optimiser": label, "budget_s": budget, "seed": seed, "steps": steps[label],
                             "ms_per_step": round(ms[label], 1), "train_s": round(seconds, 1),
                             "nats_per_char": round(val, 4)})
                print(f"  {label:5s} budget {budget:.0f} s, seed {seed}: {steps[label]:,} steps in {seconds:.1f} s, "
                      f"{val:.4f} nats/char", flush=True)
    wall = time.perf_counter() - t0
    return {"date": datetime.date.today().isoformat(), "commit": git_commit(), "others": others_share(busy, own, wall),
            "threads": torch.get_num_threads(), "muon_lr": MUON_LR, "recipe": BASE.to_dict(), "rows": rows}


def table(result: dict) -> str:
    """One line per optimiser and budget: mean and spread over the seeds, then Muon's lead."""
    lines = [f"AdamW against Muon (muon_lr {result['muon_lr']}) at equal wall time on day 21's model; "
             f"{result['date']}, commit {result['commit']}, others used {result['others']} of the CPUs",
             "| optimiser | budget s | seeds | steps | ms/step | val nats/char (mean) | spread (max - min) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in result["rows"]:
        groups.setdefault((row["optimiser"], row["budget_s"]), []).append(row)
    for (label, budget), rows in groups.items():
        vals = [r["nats_per_char"] for r in rows]
        lines.append(f"| {label} | {budget:.0f} | {len(rows)} | {statistics.mean(r['steps'] for r in rows):,.0f} | "
                     f"{statistics.mean(r['ms_per_step'] for r in rows):.1f} | {statistics.mean(vals):.4f} | "
                     f"{max(vals) - min(vals):.4f} |")
    for budget in sorted({b for _, b in groups}):
        adamw = statistics.mean(r["nats_per_char"] for r in groups.get(("AdamW", budget), []))
        muon = statistics.mean(r["nats_per_char"] for r in groups.get(("Muon", budget), []))
        lines.append(f"at {budget:.0f} s: Muon ahead by {adamw - muon:+.4f} nats/char")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s budgets, one seed, 5,000 validation characters; "
                                                             "not saved")
    args = parser.parse_args(argv)
    if args.quick:
        result = race([3.0], [1337], probe_steps=5, val_chars=5_000)
    else:
        result = race([75.0, 150.0], [1337, 1], probe_steps=30, val_chars=None)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
