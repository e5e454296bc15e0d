"""Day 21 benchmark: which recipe for the character GPT? Trials scored on the course's yardstick.

Each trial is ``shakespeare-char-cpu`` with the fields that matter set explicitly (context,
batch, steps, schedule, size, tokenizer), so that a trial means the same thing after the
preset changes. It goes through the same steps as ``python -m course_lib
train`` (tokenizer, GPTConfig, TrainConfig, Trainer) and is then scored as day 21 scores
its models: :func:`course_lib.lm_eval.score_text`, every validation character once in
overlapping windows (stride ``block_size // 2``), in nats per character, beside the
non-overlapping cut (stride ``block_size``). The bar is day 21's: the best earlier model,
day 19's MLP at 1.5536 and the Kneser-Ney 5-gram at 1.5663 in full mode.

    python bench/bench_presets.py                   # every trial (about an hour on 2 cores)
    python bench/bench_presets.py --trials ctx64 ctx128  # some of them
    python bench/bench_presets.py --quick            # 20 steps each, a smoke test
    python bench/bench_presets.py --list             # the trials and what they change

Each finished trial is merged into ``bench/results/presets.json`` (with the date, the
commit, the seconds it trained and the share of the CPUs other processes used meanwhile:
torch threads slow down badly when they must share a core, so a trial timed on a busy
machine says so), and the whole table is printed from that file. ``--quick`` runs are
printed but not saved.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from course_lib.atomic import atomic_write_text  # noqa: E402
from course_lib.device import seed_everything  # noqa: E402
from course_lib.lm_eval import score_text, score_windows, shakespeare_splits  # noqa: E402
from course_lib.model import GPT  # noqa: E402
from course_lib.presets import PRESETS  # noqa: E402
from course_lib.speedrun import cpu_busy_seconds, git_commit, others_share  # noqa: E402
from course_lib.trainer import Trainer  # noqa: E402

BASE = "shakespeare-char-cpu"
RESULTS = Path(__file__).resolve().parent / "results" / "presets.json"
# name -> (what it tries, the fields it sets). Every trial states the fields it depends on, so its
# meaning does not change when the preset does; the preset itself is "ctx64".
CTX128 = {"block_size": 128, "batch_size": 12, "max_iters": 4000, "min_lr": 3e-4}  # the preset before ctx64
CTX64 = {"block_size": 64, "batch_size": 24, "max_iters": 6000, "min_lr": 3e-5}
TRIALS: dict[str, tuple[str, dict]] = {
    "ctx64": ("the preset: context 64, 24 windows a step, 6,000 steps, decay to lr / 100", CTX64),
    "ctx64-x4000": ("the preset with 4,000 steps", {**CTX64, "max_iters": 4000}),
    "ctx128": ("context 128, 12 windows a step (the same tokens a step), 4,000 steps, decay to lr / 10", CTX128),
    "ctx128-lr5e-3": ("ctx128 with peak lr 5e-3", {**CTX128, "lr": 5e-3, "min_lr": 5e-4}),
    "ctx128-x6000": ("ctx128 with 6,000 steps", {**CTX128, "max_iters": 6000}),
    "L3": ("ctx64 with 3 layers and 4,000 steps (about the same compute)", {**CTX64, "n_layer": 3, "max_iters": 4000}),
    "w192": ("ctx64 at width 192, 6 heads, 3,000 steps (about the same compute)",
             {**CTX64, "n_embd": 192, "n_head": 6, "max_iters": 3000}),
    "muon-x3000": ("ctx64 with Muon (muon_lr 0.01) on the blocks' matrices and 3,000 steps",
                   {**CTX64, "optimizer": "muon", "muon_lr": 0.01, "max_iters": 3000}),
    "bpe512": ("BPE-512 tokens, context 64 tokens, 12 windows a step, 3,000 steps (day 21's BPE model)",
               {"tokenizer": "bpe", "vocab_size": 512, "block_size": 64, "batch_size": 12, "max_iters": 3000,
                "warmup_iters": 300, "min_lr": 3e-5}),
    "bpe512-x2500": ("bpe512 with 2,500 steps", {"tokenizer": "bpe", "vocab_size": 512, "block_size": 64,
                                                  "batch_size": 12, "max_iters": 2500, "warmup_iters": 250,
                                                  "min_lr": 3e-5}),
    "bpe512-minlr3e-4": ("bpe512 decaying to lr / 10", {"tokenizer": "bpe", "vocab_size": 512, "block_size": 64,
                                                        "batch_size": 12, "max_iters": 3000, "warmup_iters": 300,
                                                        "min_lr": 3e-4}),
}


def run_trial(name: str, changes: dict, quick: bool, compile: bool = False) -> dict:
    recipe = dataclasses.replace(PRESETS[BASE], **changes)
    if quick:
        recipe = dataclasses.replace(recipe, max_iters=20, eval_interval=10, eval_iters=2, warmup_iters=5)
    train_text, val_text = shakespeare_splits()
    tok = recipe.build_tokenizer(train_text + val_text, train_text)
    train_ids, val_ids = torch.tensor(tok.encode(train_text)), torch.tensor(tok.encode(val_text))
    seed_everything(recipe.seed)
    model = GPT(recipe.model_config(tok.vocab_size))
    cfg = recipe.train_config(progress=False, compile=compile)
    busy, own, start = cpu_busy_seconds(), time.process_time(), time.perf_counter()
    Trainer(model, train_ids, val_ids, cfg, device="cpu").fit()
    seconds = time.perf_counter() - start
    others = others_share(busy, own, seconds)
    sliding = score_text(model, tok, val_text, recipe.block_size, batch_size=64)
    cut = score_windows(model, val_ids, recipe.block_size, stride=recipe.block_size, batch_size=64)
    return {
        "trial": name + (" (compiled)" if compile else ""), "changes": changes, "compiled": compile, "nats_per_char": round(sliding.nats_per_char, 4),
        "non_overlapping": round(cut.total_nats / sliding.n_chars, 4), "params": model.num_parameters(non_embedding=False),
        "steps": recipe.max_iters, "train_s": round(seconds, 1), "ms_per_step": round(1000 * seconds / recipe.max_iters, 1),
        "others": others, "date": datetime.date.today().isoformat(), "commit": git_commit(),
    }


def table(rows: list[dict]) -> str:
    lines = ["| trial | changes | nats/char (sliding) | non-overlapping | params | steps | train s | ms/step "
             "| others' CPU | date, commit |", "|" + "---|" * 10]
    for r in sorted(rows, key=lambda r: r["nats_per_char"]):
        changes = ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "-"
        lines.append(f"| {r['trial']} | {changes} | {r['nats_per_char']:.4f} | {r['non_overlapping']:.4f} | "
                     f"{r['params']:,} | {r['steps']:,} | {r['train_s']:.0f} | {r['ms_per_step']:.1f} | {r['others']} | "
                     f"{r['date']}, {r['commit']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", nargs="+", default=list(TRIALS), choices=list(TRIALS), metavar="TRIAL")
    parser.add_argument("--quick", action="store_true", help="20 steps each, not saved (a smoke test)")
    parser.add_argument("--list", action="store_true", help="print the trials and exit")
    parser.add_argument("--compile", action="store_true",
                        help="train with torch.compile (saved as '<trial> (compiled)'; the time includes compiling)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    args = parser.parse_args()
    if args.list:
        for name, (what, changes) in TRIALS.items():
            print(f"{name:12} {what}: {changes or 'no change'}")
        return
    torch.set_num_threads(args.threads)
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    quick_rows = []
    for name in args.trials:
        row = run_trial(name, TRIALS[name][1], args.quick, args.compile)
        print(json.dumps(row), flush=True)
        if args.quick:
            quick_rows.append(row)
            continue
        saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # another run may have added trials
        saved[row["trial"]] = row
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RESULTS, json.dumps(saved, indent=1) + "\n")  # each trial kept as soon as it ends
    print(table(quick_rows if args.quick else list(saved.values())))


if __name__ == "__main__":
    main()
