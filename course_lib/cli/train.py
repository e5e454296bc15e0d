"""Day 21: ``python -m course_lib train``: a recipe -> data, tokenizer, GPT, Trainer -> a run folder.

The run folder (``--out``) ends up holding::

    run.json          the resolved recipe (preset + flags), written before training starts
    tokenizer.json    the tokenizer in Hugging Face's format (tokenizers.Tokenizer.from_file);
                      each checkpoint stores the course's own (tok.to_dict()), which --resume reads
    ckpt-XXXXXX/      the Trainer's checkpoints (every evaluation, and each new best)
    metrics.json      final losses, throughput, wall time, device, config and the loss history
    .train.lock       empty; a run holds a lock on it (flock) while it writes here

Nothing is deleted or written until every check has passed: the settings, the data, the
tokenizer, the model. Then the run takes the folder's lock (a second run into the same
folder is refused), ``--overwrite`` removes what an earlier run wrote there (the files
above and its ``ckpt-XXXXXX`` folders, nothing else) and training starts.

Data: the corpus is split 90% / 10% with :func:`course_lib.data.train_val_split`. The
character vocabulary is built from the *whole* text, as nanoGPT does: the validation part
may hold a character the training part never shows, and a vocabulary from the training part
alone could not encode it. Only the set of characters is shared, no statistics. BPE merges
are learned from the training split only.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from course_lib.atomic import temporary_target
from course_lib.checkpoint import FILES as CHECKPOINT_FILES
from course_lib.checkpoint import MANIFEST, PREFIX, checkpoint_tokenizer, latest_checkpoint
from course_lib.cli import RunFailed, UsageError
from course_lib.cli.common import pick_device
from course_lib.config import ConfigError
from course_lib.data import load_text, train_val_split
from course_lib.device import describe, seed_everything
from course_lib.model import GPT
from course_lib.presets import DEFAULT_BPE_VOCAB, DEFAULT_PRESET, PRESETS, Recipe
from course_lib.tokenizers.base import write_json
from course_lib.trainer import EvalRecord, Trainer

try:
    import fcntl
except ImportError:  # Windows: no lock; keep to one run per folder yourself
    fcntl = None  # type: ignore[assignment]

TEXT_DATASETS = ("tinyshakespeare",)  # registered corpora that are plain text
RUN_FILES = ("run.json", "tokenizer.json", "metrics.json")
LOCK = ".train.lock"
# changing one of these would change the weights' shapes, the config or the token ids; the seed
# chose the initial weights and the evaluation windows, and a resumed run continues the stored
# random streams (a new seed would change nothing but those windows)
FIXED_ON_RESUME = ("dataset", "tokenizer", "vocab_size", "arch", "n_layer", "n_head", "n_kv_head",
                   "n_embd", "block_size", "dropout", "bias", "seed")  # fmt: skip
_FIELDS = [f.name for f in dataclasses.fields(Recipe) if f.name != "description"]
# what the Trainer and course_lib.checkpoint write: ckpt-000500 (f"{PREFIX}{step:06d}") holding
# checkpoint.FILES, or the temporary file of one of them (course_lib.atomic) after a crash
_CKPT_NAME = re.compile(re.escape(PREFIX) + r"\d{6,}")
_DISK_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def flag(field: str) -> str:
    """Recipe field -> its command-line flag: ``n_embd`` -> ``--n-embd``."""
    return "--" + field.replace("_", "-")


def _usage(err: ConfigError) -> UsageError:
    """A recipe's ConfigError, followed by the flags that set the fields it concerns."""
    named = [flag(f) for f in err.fields if f in _FIELDS]
    return UsageError(f"{err} (set with {', '.join(named)})" if named else str(err))


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
            raise UsageError(f"--resume cannot change {', '.join(changed)}: the checkpoint's model, tokenizer and "
                             "random streams were made with the stored values. Start a new run with another --out "
                             "instead.")
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


def check_out(out: Path, resume: bool, overwrite: bool) -> list[Path]:
    """Check the run folder without changing it; return what ``--overwrite`` is to delete.

    Refused: a file, a folder this user cannot write to, a folder holding another run (unless
    ``--resume`` or ``--overwrite``), and a previous run whose ckpt-XXXXXX folders hold files
    course_lib does not write there (deleting them would lose someone's files).
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: choose a folder.")
    if resume:
        if latest_checkpoint(out) is None:
            raise UsageError(f"--resume: no complete checkpoint in {out}; train without --resume first.")
        _check_writable(out, "so --resume could not save the steps it trains")
        return []
    _check_writable(out, "so the run could not save anything")
    if not out.is_dir() or not [p for p in out.iterdir() if p.name != LOCK]:
        return []
    if not overwrite:
        raise UsageError(f"--out {out} is not empty: pass --resume to continue the run in it, --overwrite "
                         "to replace it, or choose another folder.")
    return _previous_run(out)


def _check_writable(out: Path, consequence: str) -> None:
    """Refuse now, before any data loads, a folder that cannot be written (or created)."""
    existing = out
    while not existing.exists() and existing != existing.parent:  # where mkdir will start from
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is a file, so no folder can be made there: choose another --out.")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "into it" if existing == out else f"in {existing} to create it"
        raise UsageError(f"--out {out}: permission denied: this user cannot write {where}, {consequence}. "
                         "Choose a folder you can write to (e.g. --out runs/NAME) or ask for write access.")


def _previous_run(out: Path) -> list[Path]:
    """The files and checkpoint folders an earlier train wrote in ``out``; anything else stays."""
    mine = []
    for path in sorted(out.iterdir()):
        if path.name in RUN_FILES:
            if path.is_symlink() or not path.is_file():
                raise UsageError(f"--overwrite: {path} is not the file train writes there but a "
                                 f"{'link' if path.is_symlink() else 'folder'}, so it is not deleted: move it "
                                 "elsewhere, then run again.")
            mine.append(path)
        elif _CKPT_NAME.fullmatch(path.name):
            strange = _not_checkpoint_files(path)
            if strange:
                raise UsageError(f"--overwrite: {path} holds {', '.join(strange)}, which course_lib does not write "
                                 "in a checkpoint, so it is not deleted: move what you want to keep elsewhere "
                                 "(or delete the folder yourself), then run again.")
            mine.append(path)
    return mine


def _not_checkpoint_files(folder: Path) -> list[str]:
    """What in ``folder`` save_checkpoint would not have written (or the folder itself, if a link)."""
    if folder.is_symlink() or not folder.is_dir():
        return [f"{folder.name} (not a folder but a {'link' if folder.is_symlink() else 'file'})"]
    return [p.name for p in sorted(folder.iterdir()) if p.is_symlink() or not p.is_file()
            or (p.name not in CHECKPOINT_FILES and temporary_target(p.name) not in CHECKPOINT_FILES)]  # fmt: skip


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Create ``out`` if needed and hold an exclusive lock on ``out/.train.lock`` until the end."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write there ({err.strerror}): choose a folder you can "
                         "write to.") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when fd closes, even on a crash
            except BlockingIOError:
                raise UsageError(f"--out {out}: another python -m course_lib train is writing there (it holds "
                                 f"{out / LOCK}): wait for it to end, or choose another --out.") from None
        yield
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _print_eval(trainer: Trainer, r: EvalRecord) -> None:
    print(f"step {r.step:>6}  train {r.train_loss:.4f}  val {r.val_loss:.4f}  lr {r.lr:.2e}  "
          f"{r.tokens_per_sec:,.0f} tok/s  {r.elapsed_s:.1f} s", flush=True)


def _stop_if_diverged(trainer: Trainer, r: EvalRecord) -> None:
    """A NaN or infinite loss never comes back: stop instead of training on."""
    if not (math.isfinite(r.train_loss) and math.isfinite(r.val_loss)):
        trainer.request_stop()


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
    try:
        recipe.model_config(vocab_size=recipe.vocab_size or 256)  # the shape, before any data loads
        cfg = recipe.train_config(checkpoint_dir=str(out), progress=not args.no_progress, compile=args.compile)
    except ConfigError as err:
        raise _usage(err) from None
    device = pick_device(args.device)
    check_out(out, args.resume, args.overwrite)  # changes nothing yet

    text = load_text(recipe.dataset)
    train_text, val_text = train_val_split(text, 0.1)
    print(f"data: {recipe.dataset}, {len(text):,} characters -> {len(train_text):,} train / "
          f"{len(val_text):,} validation")
    if args.resume:
        tok = checkpoint_tokenizer(latest_checkpoint(out).path)  # the one the weights were trained with
    else:
        tok = recipe.build_tokenizer(text, train_text)
    where = "the training split"
    if recipe.tokenizer == "char":
        where = "the whole text (so every validation character has an id)"
    print(f"tokenizer: {recipe.tokenizer}, vocabulary of {tok.vocab_size} built from {where}")
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)  # (N,)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)  # (M,)
    if len(val_ids) <= recipe.block_size:
        raise UsageError(f"--block-size {recipe.block_size} is too long for the data: a window needs block_size "
                         f"+ 1 tokens and the validation split has {len(val_ids):,}; choose a --block-size "
                         f"below {len(val_ids):,} (e.g. 128).")

    try:
        config = recipe.model_config(tok.vocab_size)
    except ConfigError as err:
        raise _usage(err) from None
    seed_everything(recipe.seed)
    model = GPT(config)
    callbacks = [_stop_if_diverged, *([_print_eval] if args.no_progress else [])]
    try:
        trainer = Trainer(model, train_ids, val_ids, cfg, device=device, callbacks=callbacks,
                          tokenizer=tok.to_dict())
    except ValueError as err:
        raise UsageError(str(err)) from None

    with _locked(out):  # every check passed: from here on the run writes
        for path in check_out(out, args.resume, args.overwrite):  # again: the folder may have changed meanwhile
            _remove(path)
        if not args.resume:
            write_json(out / "run.json", {"preset": args.preset, "recipe": recipe.to_dict()})
            tok.save_hf(out / "tokenizer.json")  # Hugging Face's format, for tokenizers.Tokenizer.from_file
        n_params = model.num_parameters(non_embedding=False)
        print(f"model: {recipe.arch} GPT, {_plural(config.n_layer, 'layer')}, {_plural(config.n_head, 'head')}, "
              f"width {config.n_embd}, context {config.block_size}: {n_params:,} parameters")
        print(f"device: {trainer.device}; {cfg.max_iters} steps of {trainer.tokens_per_step:,} tokens -> {out}",
              flush=True)
        try:
            history = trainer.fit(resume_from="latest" if args.resume else None)
        except OSError as err:
            if err.errno not in _DISK_ERRORS:
                raise
            raise UsageError(f"writing {err.filename or out} failed at step {trainer.step} ({err.strerror}): "
                             "free some space or fix the permissions, then continue with --resume from the "
                             "latest complete checkpoint.") from None
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
                        for it, tr, va, t in zip(history.iters, history.train_loss, history.val_loss,
                                                 history.elapsed_s)],
        }  # fmt: skip
        write_json(out / "metrics.json", metrics)
    if not all(math.isfinite(metrics[k]) for k in ("val_loss", "train_loss")):
        raise RunFailed(f"training diverged: the training loss became {metrics['train_loss']} (validation "
                        f"{metrics['val_loss']}) at step {trainer.step}, so the run stopped there. Lower --lr "
                        f"({recipe.lr:g} now; the presets use 1e-3 to 3e-3) and start again with --overwrite: the "
                        f"checkpoint of step {trainer.step} holds no usable model.")
    print(f"done: step {trainer.step}, train loss {metrics['train_loss']:.4f}, val loss {metrics['val_loss']:.4f} "
          f"(best {history.best_val_loss:.4f} at step {history.best_iter}), {metrics['tokens_per_sec']:,.0f} "
          f"tokens/s, {metrics['wall_s']:.1f} s. Results in {out / 'metrics.json'}")
    return 0
