"""Part 3 (Beyond the course 4): day 21's character GPT quantised: file size, loss and generation speed.

Four rows, one model: float32; int8 per output channel and 4-bit in groups of 32 (weight-only,
course_lib.quantize: the blocks' matrices quantised, dequantised in each forward, float32
matmuls); and torch's own dynamic int8 (``torch.ao.quantization.quantize_dynamic`` on the same
layers: int8 weights with one scale per matrix, activations quantised at run time, int8
matmuls), or a row saying why it could not run. For each:

- **file MB**: the model written by ``course_lib.quantize.save_quantized`` (safetensors, the
  tied embedding stored once), measured with ``os.path.getsize``;
- **nats/char**: day 21's validation figure, ``course_lib.lm_eval.score_text`` on every
  validation character (overlapping windows, stride ``block_size // 2``);
- **tokens/s**: greedy generation of ``--new-tokens`` after the same prompt, each model timed
  alone on ``--gen-threads`` threads (default 1: more threads than free cores make torch many
  times slower), the best of ``--repeats`` runs (after a warm-up).

    python bench/bench_quantize.py                        # trains day 21's preset first (minutes)
    python bench/bench_quantize.py --checkpoint notebooks/runs/day21_full/final/ckpt-006000
    python bench/bench_quantize.py --quick                # a tiny model, 30 steps: a smoke test, not recorded

Without ``--checkpoint`` the script trains ``shakespeare-char-cpu`` as day 21 does and saves it in
``runs/bench_quantize/`` (printed, for ``--checkpoint`` next time). Each run is appended to
``bench/results/quantize.json`` with the date, the commit and the share of the CPUs other
processes used meanwhile: timings on a busy machine say so.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from course_lib.atomic import atomic_write_text  # noqa: E402
from course_lib.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from course_lib.device import seed_everything  # noqa: E402
from course_lib.lm_eval import score_text, shakespeare_splits  # noqa: E402
from course_lib.model import GPT  # noqa: E402
from course_lib.presets import PRESETS  # noqa: E402
from course_lib.quantize import quantize_model, save_quantized, tokens_per_second, torch_dynamic_int8  # noqa: E402
from course_lib.speedrun import cpu_busy_seconds, git_commit, others_share  # noqa: E402
from course_lib.tokenizers import CharTokenizer  # noqa: E402
from course_lib.trainer import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "quantize.json"
PRESET = "shakespeare-char-cpu"  # day 21's character model
QUICK = dict(n_layer=1, n_head=2, n_kv_head=None, n_embd=32, block_size=32, batch_size=16, max_iters=30,
             warmup_iters=5, eval_interval=15, eval_iters=2)  # day 21's fast-mode model  # fmt: skip


def train_day21(quick: bool, out_dir: Path) -> tuple[GPT, CharTokenizer, str]:
    """Day 21's character model, trained as day 21 trains it; saved under ``out_dir``."""
    train_text, val_text = shakespeare_splits()
    tok = CharTokenizer.from_text(train_text + val_text)
    recipe = dataclasses.replace(PRESETS[PRESET], **QUICK) if quick else PRESETS[PRESET]
    seed_everything(recipe.seed)
    model = GPT(recipe.model_config(tok.vocab_size))
    t0 = time.perf_counter()
    trainer = Trainer(model, torch.tensor(tok.encode(train_text)), torch.tensor(tok.encode(val_text)),
                      recipe.train_config(progress=not quick))  # fmt: skip
    trainer.fit()
    path = save_checkpoint(out_dir, model, step=trainer.step, tokenizer=tok.to_dict())
    print(f"trained {PRESET}{' (quick)' if quick else ''}: {trainer.step:,} steps in "
          f"{time.perf_counter() - t0:.0f} s, saved in {path}")
    return model.eval(), tok, f"{PRESET}, {trainer.step:,} steps, trained by the bench ({path.relative_to(ROOT)})"


def load_day21(checkpoint: Path) -> tuple[GPT, CharTokenizer, str]:
    folder = checkpoint if (checkpoint / "meta.json").is_file() else getattr(latest_checkpoint(checkpoint), "path",
                                                                             None)  # fmt: skip
    if folder is None:
        raise SystemExit(f"no checkpoint in {checkpoint}: pass a ckpt-XXXXXX folder, or its parent")
    ckpt = load_checkpoint(folder)
    tok = ckpt.require_tokenizer()
    if not isinstance(tok, CharTokenizer) or not isinstance(ckpt.model, GPT):
        raise SystemExit(f"{folder} is not a character GPT (day 21's char model): got {type(tok).__name__}")
    return ckpt.model.eval(), tok, f"{folder} (step {ckpt.step:,})"


def variants(model: GPT) -> list[tuple[str, GPT | None, str]]:
    """(name, model or None, note) for each row."""
    rows: list[tuple[str, GPT | None, str]] = [
        ("float32", model, "the trained weights"),
        ("int8 per-channel", quantize_model(model, "int8"), "weight-only: int8 + a float32 scale per row"),
        ("4-bit g32", quantize_model(model, "int4"), "weight-only: 4-bit codes + a float16 scale per 32 weights"),
    ]
    name = "torch dynamic int8"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dynamic = torch_dynamic_int8(model)
            dynamic(torch.zeros(1, 1, dtype=torch.long))  # it must also run
        except Exception as err:  # noqa: BLE001 (any failure is the row's note)
            rows.append((name, None, f"unavailable in torch {torch.__version__}: {type(err).__name__}: {err}"))
            return rows
    deprecated = any(issubclass(w.category, DeprecationWarning) for w in caught)
    note = "torch.ao.quantization.quantize_dynamic: int8 weights (a scale per matrix) and activations"
    rows.append((name, dynamic, note + ("; torch marks it deprecated (torchao replaces it)" if deprecated else "")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="day 21's char model (a ckpt folder or its parent)")
    parser.add_argument("--quick", action="store_true", help="a tiny model, 30 steps, 20,000 characters scored")
    parser.add_argument("--new-tokens", type=int, default=None, help="generated per timing (default 200; quick 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed generations per model; the best counts")
    parser.add_argument("--prompt", default="PETRUCHIO:\n")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--gen-threads", type=int, default=1, help="torch threads while generation is timed")
    args = parser.parse_args()
    new_tokens = args.new_tokens or (32 if args.quick else 200)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.checkpoint:
        model, tok, source = load_day21(args.checkpoint)
    else:
        model, tok, source = train_day21(args.quick, ROOT / "runs" / "bench_quantize" / ("quick" if args.quick else
                                                                                         "day21_char"))  # fmt: skip
    _, val_text = shakespeare_splits()
    text = val_text[:20_000] if args.quick else val_text
    prompt = torch.tensor([tok.encode(args.prompt)])  # (1, T)

    busy, own, t0 = cpu_busy_seconds(), time.process_time(), time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, m, note in variants(model):
            if m is None:
                rows.append({"scheme": name, "file_mb": None, "nats_per_char": None, "tokens_per_s": None,
                             "note": note})  # fmt: skip
                continue
            size = save_quantized(m, Path(tmp) / "model.safetensors")
            nats = score_text(m, tok, text, model.config.block_size, batch_size=64).nats_per_char
            speed = tokens_per_second(m, prompt, new_tokens, args.repeats, threads=args.gen_threads)
            rows.append({"scheme": name, "file_mb": round(size / 1e6, 4), "nats_per_char": round(nats, 4),
                         "tokens_per_s": round(speed, 1), "note": note})  # fmt: skip
    wall = time.perf_counter() - t0
    others = others_share(busy, own, wall)
    base = rows[0]
    print(f"\n{source}; {'the first 20,000' if args.quick else 'all'} validation characters scored; "
          f"{new_tokens} greedy tokens after {args.prompt!r}, best of {args.repeats} on {args.gen_threads} thread(s); torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); others used {others} of the CPUs\n")
    print("| scheme | file MB | x smaller | nats/char | vs float32 | tokens/s | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if r["file_mb"] is None:
            print(f"| {r['scheme']} | - | - | - | - | - | {r['note']} |")
            continue
        print(f"| {r['scheme']} | {r['file_mb']:.3f} | {base['file_mb'] / r['file_mb']:.2f} | "
              f"{r['nats_per_char']:.4f} | {r['nats_per_char'] - base['nats_per_char']:+.4f} | "
              f"{r['tokens_per_s']:,.0f} | {r['note']} |")
    if args.quick:
        print("\n(--quick: not recorded)")
        return
    record = {"date": datetime.date.today().isoformat(), "commit": git_commit(ROOT),
              "others": others, "source": source, "new_tokens": new_tokens,
              "repeats": args.repeats, "gen_threads": args.gen_threads, "prompt": args.prompt, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "rows": rows}  # fmt: skip
    records = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else []
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(records + [record], indent=1) + "\n")
    print(f"\nappended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
