"""Day 21: ``python -m course_lib train``: a recipe -> data, tokenizer, GPT, Trainer -> a run folder.

The run folder (``--out``) ends up holding::

    run.json          the resolved recipe (preset + flags), written before training starts
    tokenizer.json    the tokenizer (also stored inside every checkpoint)
    ckpt-XXXXXX/      the Trainer's checkpoints (every evaluation, and each new best)
    metrics.json      final losses, throughput, wall time, device, config and the loss history

Data: the corpus is split 90% / 10% with :func:`course_lib.data.train_val_split`. The
character vocabulary is built from the *whole* text, as nanoGPT does: the validation part
may hold a character the training part never shows, and a vocabulary from the training part
alone could not encode it. Only the set of characters is shared, no statistics. BPE merges
are learned from the training split only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from course_lib.checkpoint import MANIFEST, PREFIX, latest_checkpoint
from course_lib.cli import UsageError
from course_lib.cli.common import pick_device, tokenizer_from_dict, tokenizer_to_dict
from course_lib.data import load_text, train_val_split
from course_lib.device import describe, seed_everything
from course_lib.model import GPT, GPTConfig
from course_lib.presets import DEFAULT_BPE_VOCAB, DEFAULT_PRESET, PRESETS, Recipe
from course_lib.schedule import TrainConfig
from course_lib.tokenizers import BPETokenizer, CharTokenizer, Tokenizer
from course_lib.tokenizers.base import write_json
from course_lib.trainer import EvalRecord, Trainer

TEXT_DATASETS = ("tinyshakespeare",)  # registered corpora that are plain text
RUN_FILES = ("run.json", "tokenizer.json", "metrics.json")
# changing one of these would change the weights' shapes, the config or the token ids
FIXED_ON_RESUME = ("dataset", "tokenizer", "vocab_size", "arch", "n_layer", "n_head", "n_kv_head",
                   "n_embd", "block_size", "dropout", "bias")  # fmt: skip
_FIELDS = [f.name for f in dataclasses.fields(Recipe) if f.name != "description"]


def flag(field: str) -> str:
    """Recipe field -> its command-line flag: ``n_embd`` -> ``--n-embd``."""
    return "--" + field.replace("_", "-")


def _with_flags(err: Exception) -> UsageError:
    """A config's ValueError, followed by the flags that set the fields it names."""
    message = str(err).replace("TrainConfig.", "")
    named = [flag(f) for f in _FIELDS if re.search(rf"\b{f}\b", message)]
    return UsageError(f"{message} (set with {', '.join(named)})" if named else message)


def list_presets() -> str:
    """Every preset with its description and settings, for ``--list-presets``."""
    lines = []
    for name, recipe in PRESETS.items():
        settings = " ".join(f"{f}={getattr(recipe, f)}" for f in _FIELDS if getattr(recipe, f) is not None)
        lines.append(f"{name}: {recipe.description}\n    {settings}")
    return "\n".join(lines)


def resolve_recipe(args: argparse.Namespace, out: Path) -> Recipe:
    """The preset (or the stored recipe when resuming), overridden by the flags given explicitly."""
    explicit = {f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None}
    if args.resume:
        if args.preset:
            raise UsageError(f"--preset cannot be combined with --resume: the run's recipe is in {out / 'run.json'}.")
        try:
            base = Recipe.from_dict(json.loads((out / "run.json").read_text(encoding="utf-8"))["recipe"])
        except (OSError, ValueError, KeyError) as err:
            raise UsageError(f"--resume: cannot read {out / 'run.json'} ({err}); resume only a folder "
                             "written by python -m course_lib train.") from None
        changed = [flag(f) for f in FIXED_ON_RESUME if f in explicit and explicit[f] != getattr(base, f)]
        if changed:
            raise UsageError(f"--resume cannot change {', '.join(changed)}: the checkpoint's model and tokenizer "
                             "were built with the stored values. Start a new run with another --out instead.")
    else:
        try:
            base = PRESETS[args.preset or DEFAULT_PRESET]
        except KeyError:
            raise UsageError(f"unknown preset {args.preset!r}: choose one of {', '.join(PRESETS)} "
                             "(see --list-presets).") from None
    recipe = dataclasses.replace(base, **explicit)
    if recipe.dataset not in TEXT_DATASETS:
        raise UsageError(f"unknown dataset {recipe.dataset!r}: the text corpora are {', '.join(TEXT_DATASETS)}.")
    if recipe.tokenizer == "char" and recipe.vocab_size is not None:
        raise UsageError("--vocab-size applies to --tokenizer bpe only: the character vocabulary is the set "
                         "of characters in the text.")
    if recipe.tokenizer == "bpe":
        recipe = dataclasses.replace(recipe, vocab_size=recipe.vocab_size or DEFAULT_BPE_VOCAB)
        if recipe.vocab_size < 257:
            raise UsageError(f"--vocab-size {recipe.vocab_size} is too small: byte-level BPE starts from 256 "
                             "byte tokens, so ask for at least 257 (e.g. 512).")
    return recipe


def prepare_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Check the run folder: refuse to mix two runs, clear a previous one with ``--overwrite``."""
    if resume:
        if latest_checkpoint(out) is None:
            raise UsageError(f"--resume: no complete checkpoint in {out}; train without --resume first.")
        return
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: choose a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"--out {out} is not empty: pass --resume to continue the run in it, --overwrite "
                             "to replace it, or choose another folder.")
        for path in out.glob(f"{PREFIX}*"):
            shutil.rmtree(path)
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def build_tokenizer(recipe: Recipe, text: str, train_text: str) -> Tokenizer:
    """Characters of the whole text, or BPE merges learned from the training split."""
    if recipe.tokenizer == "char":
        return CharTokenizer.from_text(text)
    return BPETokenizer.train(train_text, recipe.vocab_size, pattern="gpt2")


def build_model_config(recipe: Recipe, vocab_size: int) -> GPTConfig:
    """GPTConfig.classic/modern with the recipe's shape; a bad combination names its flags."""
    shape: dict[str, Any] = dict(vocab_size=vocab_size, n_layer=recipe.n_layer, n_head=recipe.n_head,
                                 n_embd=recipe.n_embd, block_size=recipe.block_size, dropout=recipe.dropout)
    for name in ("n_kv_head", "bias"):  # None: the architecture's own default
        if getattr(recipe, name) is not None:
            shape[name] = getattr(recipe, name)
    factory = GPTConfig.modern if recipe.arch == "modern" else GPTConfig.classic
    try:
        return factory(**shape)
    except ValueError as err:
        raise _with_flags(err) from None


def build_train_config(recipe: Recipe, out: Path, progress: bool) -> TrainConfig:
    try:
        return TrainConfig(
            max_iters=recipe.max_iters, batch_size=recipe.batch_size, lr=recipe.lr, min_lr=recipe.min_lr,
            warmup_iters=recipe.warmup_iters, weight_decay=recipe.weight_decay, betas=(0.9, recipe.beta2),
            grad_clip=recipe.grad_clip, eval_interval=recipe.eval_interval, eval_iters=recipe.eval_iters,
            seed=recipe.seed, progress=progress, checkpoint_dir=str(out),
        )  # fmt: skip
    except ValueError as err:
        raise _with_flags(err) from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _print_eval(trainer: Trainer, r: EvalRecord) -> None:
    print(f"step {r.step:>6}  train {r.train_loss:.4f}  val {r.val_loss:.4f}  lr {r.lr:.2e}  "
          f"{r.tokens_per_sec:,.0f} tok/s  {r.elapsed_s:.1f} s", flush=True)


def stored_metrics(out: Path) -> dict[str, Any]:
    """The metrics the Trainer wrote into the run's latest checkpoint (its manifest)."""
    latest = latest_checkpoint(out)
    if latest is None:
        raise UsageError(f"{out} holds no complete checkpoint after training: was the folder changed meanwhile?")
    return json.loads((latest.path / MANIFEST).read_text(encoding="utf-8"))["metrics"]


def run(args: argparse.Namespace) -> int:
    if args.list_presets:
        print(list_presets())
        return 0
    out = Path(args.out or f"runs/{args.preset or DEFAULT_PRESET}")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite deletes it: choose one.")
    recipe = resolve_recipe(args, out)
    build_model_config(recipe, vocab_size=1)  # every flag checked before --overwrite deletes anything
    cfg = build_train_config(recipe, out, progress=not args.no_progress)
    device = pick_device(args.device)
    prepare_out(out, args.resume, args.overwrite)

    text = load_text(recipe.dataset)
    train_text, val_text = train_val_split(text, 0.1)
    print(f"data: {recipe.dataset}, {len(text):,} characters -> {len(train_text):,} train / "
          f"{len(val_text):,} validation")
    if args.resume:
        tok = tokenizer_from_dict(json.loads((out / "tokenizer.json").read_text(encoding="utf-8")))
    else:
        tok = build_tokenizer(recipe, text, train_text)
    where = "the training split"
    if recipe.tokenizer == "char":
        where = "the whole text (so every validation character has an id)"
    print(f"tokenizer: {recipe.tokenizer}, vocabulary of {tok.vocab_size} built from {where}")
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)  # (N,)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)  # (M,)

    config = build_model_config(recipe, tok.vocab_size)
    seed_everything(recipe.seed)
    model = GPT(config)
    callbacks = [_print_eval] if args.no_progress else []
    try:
        trainer = Trainer(model, train_ids, val_ids, cfg, device=device, callbacks=callbacks,
                          tokenizer=tokenizer_to_dict(tok))
    except ValueError as err:
        raise _with_flags(err) from None
    if not args.resume:
        write_json(out / "run.json", {"preset": args.preset, "recipe": recipe.to_dict()})
        tok.save(out / "tokenizer.json", **({"format": "course"} if isinstance(tok, BPETokenizer) else {}))
    n_params = model.num_parameters(non_embedding=False)
    print(f"model: {recipe.arch} GPT, {_plural(config.n_layer, 'layer')}, {_plural(config.n_head, 'head')}, "
          f"width {config.n_embd}, context {config.block_size}: {n_params:,} parameters")
    print(f"device: {trainer.device}; {cfg.max_iters} steps of {trainer.tokens_per_step:,} tokens -> {out}",
          flush=True)

    history = trainer.fit(resume_from="latest" if args.resume else None)
    metrics = {
        "val_loss": history.val_loss[-1],
        "train_loss": history.train_loss[-1],
        "iters": trainer.step,
        # the final checkpoint's figure, read back so that this file, the line below and info agree
        "tokens_per_sec": stored_metrics(out)["tokens_per_sec"],
        "wall_s": history.elapsed_s[-1],
        "device": str(trainer.device),
        "device_name": describe(trainer.device).name,
        "best_val_loss": history.best_val_loss,
        "best_iter": history.best_iter,
        "parameters": n_params,
        "config": recipe.to_dict(),
        "model_config": config.to_dict(),
        "history": [{"iter": it, "train_loss": tr, "val_loss": va, "elapsed_s": t}
                    for it, tr, va, t in zip(history.iters, history.train_loss, history.val_loss, history.elapsed_s)],
    }  # fmt: skip
    if not all(math.isfinite(metrics[k]) for k in ("val_loss", "train_loss")):
        print("warning: the loss is not finite: lower --lr or check --grad-clip")
    write_json(out / "metrics.json", metrics)
    print(f"done: step {trainer.step}, train loss {metrics['train_loss']:.4f}, val loss {metrics['val_loss']:.4f} "
          f"(best {history.best_val_loss:.4f} at step {history.best_iter}), {metrics['tokens_per_sec']:,.0f} "
          f"tokens/s, {metrics['wall_s']:.1f} s. Results in {out / 'metrics.json'}")
    return 0
