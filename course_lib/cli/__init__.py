"""Day 21: the command line, ``python -m course_lib train|generate|chat|info|bench``.

    python -m course_lib train --preset shakespeare-char-cpu --out runs/char
    python -m course_lib generate --ckpt runs/char --prompt "ROMEO:" --max-new-tokens 300
    python -m course_lib chat --ckpt runs/char
    python -m course_lib info --ckpt runs/char/ckpt-003000
    python -m course_lib bench --quick

This module only builds the parser and dispatches; each command lives in its own module
(``train``, ``generate`` for generate and chat, ``info``, ``bench``), imported when used so
that ``--help`` answers at once. A mistake on the command line, a bad checkpoint or a
missing data set ends with exit code 2 and one paragraph saying what to do, no traceback;
a command that ran but failed (a training run whose loss diverged) ends with exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from course_lib.presets import ARCHS, DEFAULT_BPE_VOCAB, DEFAULT_PRESET, OPTIMIZERS, PRESETS, TOKENIZERS


class UsageError(Exception):
    """A mistake on the command line: reported in one paragraph, exit code 2."""


class RunFailed(Exception):
    """The command ran but did not succeed (e.g. the loss diverged): one paragraph, exit code 1.

    Exit 2 says "nothing was done, fix the command"; exit 1 says "it ran, and its result is bad".
    """


def _or(value: object, rule: str) -> str:
    """A default for --help: the preset's value, or the rule that applies when it leaves it unset (None)."""
    return f"(default {value})" if value is not None else f"(default: {rule})"


def _train_parser(sub: argparse._SubParsersAction) -> None:
    # The defaults shown are the recipe a run without --preset uses, PRESETS[DEFAULT_PRESET];
    # the flags themselves default to None, meaning "keep the preset's (or the resumed run's) value".
    d = PRESETS[DEFAULT_PRESET]
    p = sub.add_parser("train", help="train a GPT on a text corpus",
                       description=f"Train a GPT. Without --preset a run uses the {DEFAULT_PRESET} preset, whose "
                                   "settings are the defaults shown below; --preset NAME starts from another "
                                   "preset's settings instead (see --list-presets), and --resume from the run's "
                                   "own. Each flag given overrides one setting.")  # fmt: skip
    p.add_argument("--preset", help=f"a tuned recipe: {', '.join(PRESETS)} (default {DEFAULT_PRESET})")
    p.add_argument("--list-presets", action="store_true", help="print the presets and their settings, then exit")
    p.add_argument("--out", help="run folder for checkpoints, tokenizer.json, run.json, metrics.json "
                                 "(default: runs/PRESET)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the previous run in a non-empty --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar: one line per evaluation")
    p.add_argument("--compile", action="store_true", help="torch.compile the training steps: seconds to compile, "
                                                           "then faster steps; results not bit-reproducible")
    p.add_argument("--device", help="cuda, cuda:N, mps or cpu (default: COURSE_DEVICE, else the best available)")
    g = p.add_argument_group("data and tokenizer")
    g.add_argument("--dataset", help=f"text corpus (default {d.dataset})")
    g.add_argument("--tokenizer", choices=TOKENIZERS, help=f"(default {d.tokenizer})")
    g.add_argument("--vocab-size", type=int, help="BPE vocabulary size, at least 257 (bpe only) "
                                                   + _or(d.vocab_size, str(DEFAULT_BPE_VOCAB)))
    g = p.add_argument_group("model")
    g.add_argument("--arch", choices=ARCHS, help=f"GPT-2 (classic) or Llama (modern) layout (default {d.arch})")
    for flag, kind in (("n-layer", int), ("n-head", int), ("n-embd", int), ("block-size", int),
                       ("dropout", float)):  # fmt: skip
        g.add_argument(f"--{flag}", type=kind, help=f"(default {getattr(d, flag.replace('-', '_'))})")
    g.add_argument("--n-kv-head", type=int, help="key/value heads "
                                                  + _or(d.n_kv_head, "classic n_head, modern n_head // 2"))
    g.add_argument("--bias", action=argparse.BooleanOptionalAction, help="biases in Linear and norm layers "
                                                                          + _or(d.bias, "classic yes, modern no"))
    g = p.add_argument_group("optimisation")
    for flag, kind in (("batch-size", int), ("max-iters", int), ("lr", float), ("min-lr", float),
                       ("warmup-iters", int), ("weight-decay", float), ("beta2", float), ("grad-clip", float),
                       ("eval-interval", int), ("eval-iters", int), ("seed", int)):  # fmt: skip
        g.add_argument(f"--{flag}", type=kind, help=f"(default {getattr(d, flag.replace('-', '_'))})")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help=f"muon: Muon for the blocks' matrices, AdamW for the "
                                                          f"rest (default {d.optimizer})")
    g.add_argument("--muon-lr", type=float, help=f"Muon's peak learning rate (default {d.muon_lr})")


def _sampling_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="a run folder (its best checkpoint) or a ckpt-XXXXXX folder")
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate (default 200)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens only")
    p.add_argument("--top-p", type=float, help="sample from the smallest set with probability >= p")
    p.add_argument("--seed", type=int, help="seed the sampler for a repeatable output")
    p.add_argument("--no-cache", action="store_true", help="recompute every step instead of using the KV-cache")
    p.add_argument("--device", help="cuda, cuda:N, mps or cpu (default: COURSE_DEVICE, else the best available)")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m course_lib`` parser with its five subcommands."""
    parser = argparse.ArgumentParser(
        prog="course" if os.path.basename(sys.argv[0]) == "course" else "python -m course_lib",
        description="Train a GPT, sample from it, chat with it, inspect a checkpoint, run the benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub)
    gen = sub.add_parser("generate", help="sample text from a checkpoint, streamed as it is produced")
    _sampling_flags(gen)
    gen.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    chat = sub.add_parser("chat", help="talk to a fine-tuned checkpoint (a base model continues each line you type)")
    _sampling_flags(chat)
    info = sub.add_parser("info", help="print a checkpoint's metadata and model summary, or check the device")
    info.add_argument("--ckpt", help="a run folder (its best checkpoint) or a ckpt-XXXXXX folder")
    info.add_argument("--device", help="where to run the summary's forward pass (default: cpu); with "
                      "--check-device, the device to check (default: the one the course would pick)")
    info.add_argument("--check-device", action="store_true",
                      help="train a tiny GPT for 40 steps on the CPU and on the device and compare the losses")
    bench = sub.add_parser("bench", help="run the repository's bench/bench_*.py scripts, or the CPU speedrun")
    bench.add_argument("what", nargs="?", choices=["speedrun"],
                       help="speedrun: train until the yardstick reaches 1.70, then 1.55 nats/char, and time it")
    bench.add_argument("--quick", action="store_true", help="pass --quick to every script (speedrun: 30 steps "
                                                           "of a tiny model, a smoke test, never recorded)")
    bench.add_argument("--record", metavar="FILE", help="speedrun: append the result to this JSON list of "
                                                        "records (default: bench/results/speedrun.json in a "
                                                        "source checkout)")
    bench.add_argument("--no-record", action="store_true", help="speedrun: print the result, save nothing")
    return parser


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    if name == "train":
        from course_lib.cli.train import run
    elif name in ("generate", "chat"):
        from course_lib.cli import generate as module

        run = module.run_generate if name == "generate" else module.run_chat
    elif name == "info":
        from course_lib.cli.info import run
    else:
        from course_lib.cli.bench import run
    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or an argparse error (2, message already printed)
        return int(exit_.code or 0)
    from course_lib.checkpoint import CheckpointError
    from course_lib.data import DataError

    try:
        return _command(args.command)(args)
    except (UsageError, CheckpointError, DataError) as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RunFailed as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # stdout piped into a program that stopped reading (e.g. head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except KeyboardInterrupt:
        print(f"\n{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130
