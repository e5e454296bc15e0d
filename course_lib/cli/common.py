"""Day 21: what the commands share: devices, checkpoints and their tokenizers.

A checkpoint written by ``train`` stores its tokenizer in its manifest (the tokenizer's own
JSON, as ``tok.save`` writes it), so a single ``ckpt-XXXXXX`` folder is enough to generate.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from course_lib.checkpoint import (
    MANIFEST,
    Checkpoint,
    CheckpointError,
    best_checkpoint,
    latest_checkpoint,
    load_checkpoint,
)
from course_lib.cli import UsageError
from course_lib.tokenizers import BPETokenizer, CharTokenizer, Tokenizer

_KINDS: dict[str, type[Tokenizer]] = {
    "course_lib.CharTokenizer": CharTokenizer,
    "course_lib.BPETokenizer": BPETokenizer,
}


def pick_device(name: str | None) -> torch.device:
    """``--device`` -> a torch device (the best available when None); a bad name is a UsageError."""
    from course_lib.device import get_device

    try:
        return get_device(name)
    except ValueError as err:
        raise UsageError(f"--device {name}: {err}") from None


def tokenizer_to_dict(tok: Tokenizer) -> dict[str, Any]:
    """The tokenizer's own JSON file (``tok.save``) as a dict, to store in a checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tok.json"  # not *tokenizer.json: BPE would write Hugging Face's format
        tok.save(path)
        return json.loads(path.read_text(encoding="utf-8"))


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Inverse of :func:`tokenizer_to_dict`, through the tokenizer class's own ``load``."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in _KINDS:
        raise CheckpointError(f"the checkpoint's tokenizer has type {kind!r}; this command reads "
                              f"{', '.join(_KINDS)}: train with python -m course_lib train.")
    fd, tmp = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        return _KINDS[kind].load(tmp)
    finally:
        os.unlink(tmp)


def tokenizer_kind(tok: Tokenizer) -> str:
    """'char' or 'bpe'."""
    return "bpe" if isinstance(tok, BPETokenizer) else "char"


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """``--ckpt``: a ckpt-XXXXXX folder as is; a run folder -> its best (else latest) checkpoint."""
    folder = Path(path)
    if (folder / MANIFEST).is_file():
        return folder
    if not folder.is_dir():
        raise UsageError(f"--ckpt {path}: no such folder. Pass a run folder written by "
                         "'python -m course_lib train --out DIR' or one of its ckpt-XXXXXX folders.")
    found = best_checkpoint(folder) or latest_checkpoint(folder)
    if found is None:
        raise UsageError(f"--ckpt {path}: no complete checkpoint (ckpt-XXXXXX folder with {MANIFEST}) "
                         "in it. Train first, or pass the checkpoint folder itself.")
    return found.path


def load_for_inference(path: str | os.PathLike, device: torch.device) -> tuple[Checkpoint, Tokenizer]:
    """Load the checkpoint at ``--ckpt`` onto ``device`` in eval mode, with its tokenizer."""
    folder = resolve_checkpoint(path)
    ckpt = load_checkpoint(folder, map_location=device)
    stored = ckpt.meta.get("tokenizer")
    if stored is None:
        raise CheckpointError(f"{folder} stores no tokenizer, so its ids cannot be turned into text: "
                              "use a checkpoint written by python -m course_lib train.")
    ckpt.model.eval()
    return ckpt, tokenizer_from_dict(stored)
