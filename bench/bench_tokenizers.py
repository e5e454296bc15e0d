"""Day 17 benchmark: our pure-Python BPE trainer against Hugging Face's (Rust) BpeTrainer.

Both learn byte-level BPE with GPT-2's split pattern from the same text to the same
vocabulary size (256 bytes + merges) in the same run; the table gives seconds for
each and the ratio. The full run adds a row without a split pattern (the text is one
long sequence). Also timed: encoding the whole text with ours and with the Hugging
Face export of the same tokenizer (and checking that the ids agree).

    python bench/bench_tokenizers.py           # 186,000 chars @ 512, whole file @ 4096, no pattern
    python bench/bench_tokenizers.py --quick   # 186,000 chars @ 512 only

Goals: 186 KB @ 512 in under 0.6 s; the whole file within 10x of Hugging Face.
Timings on a shared machine are noisy: each figure is the best of ``--repeat`` runs,
and the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tokenizers  # noqa: E402

from course_lib.tokenizers import GPT2_SPLIT_PATTERN, BPETokenizer  # noqa: E402


def load_tinyshakespeare() -> str:
    """The text via ``course_lib.data`` when available, else from ``$COURSE_DATA_MIRROR``."""
    try:
        from course_lib.data import load_text

        return load_text("tinyshakespeare")
    except ImportError:
        pass
    mirror = os.environ.get("COURSE_DATA_MIRROR")
    if mirror and (Path(mirror) / "tinyshakespeare.txt").is_file():
        return (Path(mirror) / "tinyshakespeare.txt").read_text(encoding="utf-8")
    raise SystemExit(
        "TinyShakespeare not found: install course_lib (with course_lib.data) or set "
        "COURSE_DATA_MIRROR to a folder holding tinyshakespeare.txt"
    )


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Best wall-clock seconds of ``repeat`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def train_hf(text: str, vocab_size: int, pattern: str | None):
    """Hugging Face BpeTrainer, byte-level, the same split pattern, no special tokens."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pattern is None:
        hf.pre_tokenizer = byte_level
    else:
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
        hf.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator([text], trainer)
    return hf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 186,000 characters at vocab 512")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept")
    args = parser.parse_args()

    text = load_tinyshakespeare()
    # (text, label, vocab size, pattern, runs, goal for ours in seconds or None for "< 10x HF", run HF?)
    whole = f"whole file ({len(text):,} chars)"
    cases = [(text[:186_000], "186,000 chars", 512, GPT2_SPLIT_PATTERN, args.repeat, 0.6, True)]
    if not args.quick:
        cases.append((text, whole, 4096, GPT2_SPLIT_PATTERN, args.repeat, None, True))
        # no pattern: one long sequence, which Hugging Face treats as a single word (slow)
        cases.append((text[:186_000], "186,000 chars, no pattern", 512, None, 1, None, True))
        cases.append((text, whole + ", no pattern", 4096, None, 1, None, False))

    load_before = os.getloadavg()
    rows, tok = [], None
    for sample, label, vocab_size, pattern, runs, goal, run_hf in cases:
        ours_s, ours = best_time(lambda: BPETokenizer.train(sample, vocab_size, pattern=pattern), runs)
        assert ours.vocab_size == vocab_size, ours.vocab_size
        tok = ours if pattern is not None else tok
        if not run_hf:
            rows.append(f"| train {label} @ {vocab_size} | {ours_s:.3f} | not run (minutes) | | |")
            continue
        hf_s, hf = best_time(lambda: train_hf(sample, vocab_size, pattern), runs)
        assert hf.get_vocab_size() == vocab_size, hf.get_vocab_size()
        ratio = ours_s / hf_s
        verdict = f"goal < {goal} s: {'met' if ours_s < goal else 'missed'}" if goal else (
            f"goal < 10x: {'met' if ratio < 10 else 'missed'}")  # fmt: skip
        rows.append(f"| train {label} @ {vocab_size} | {ours_s:.3f} | {hf_s:.3f} | {ratio:.2f}x | {verdict} |")

    export = tok.to_hf()  # the last tokenizer trained with the pattern, exported
    fresh = BPETokenizer(tok.merges, tok.pattern)  # same merges, empty encode cache
    enc_s, ids = best_time(lambda: fresh.encode(text), 1)
    hf_enc_s, hf_ids = best_time(lambda: export.encode(text).ids, 1)
    agree = "ids identical" if ids == hf_ids else "IDS DIFFER"
    rows.append(f"| encode whole file @ {tok.vocab_size}, cold cache ({len(ids):,} tokens) | {enc_s:.3f} | "
                f"{hf_enc_s:.3f} | {enc_s / hf_enc_s:.2f}x | {agree} |")  # fmt: skip
    load_after = os.getloadavg()

    print(f"Byte-level BPE on TinyShakespeare, GPT-2 split pattern unless noted; best of {args.repeat} "
          "runs (no-pattern row and encode: 1 run)\n")  # fmt: skip
    print("| task | ours (s) | Hugging Face (s) | ours / HF | note |")
    print("| --- | ---: | ---: | ---: | --- |")
    print("\n".join(rows))
    print(f"\nPython {platform.python_version()}, tokenizers {tokenizers.__version__}, {os.cpu_count()} CPUs "
          f"(Hugging Face may use all of them); load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after: other work on the machine slows both sides. "
          "Both trainers get the text as one string.")  # fmt: skip


if __name__ == "__main__":
    main()
