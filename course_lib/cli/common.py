"""Day 21: what the commands share: devices, checkpoints and their tokenizers.

A checkpoint written by ``train`` stores its tokenizer in its manifest (``tok.to_dict()``),
so a single ``ckpt-XXXXXX`` folder is enough to generate.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from course_lib.checkpoint import MANIFEST, Checkpoint, best_checkpoint, latest_checkpoint, load_checkpoint
from course_lib.cli import UsageError
from course_lib.tokenizers import BPETokenizer, Tokenizer


def pick_device(name: str | None) -> torch.device:
    """``--device`` -> a torch device; one that cannot be used here is a one-line UsageError.

    A device named on the command line is used or refused, never swapped for another (and it
    wins over ``COURSE_DEVICE``). Without one: ``COURSE_DEVICE``, else the best available
    (:func:`course_lib.device.get_device`); a ``COURSE_DEVICE`` this machine lacks falls back
    with a one-line warning on stderr.
    """
    import sys
    import warnings

    from course_lib.device import get_device, parse_device, unavailable_reason

    if name is not None:
        try:
            device = parse_device(name)
        except ValueError:
            raise UsageError(f"--device {name} is not a device name: use cuda, cuda:N, mps or cpu, or leave "
                             "--device out to use the best available.") from None
        reason = unavailable_reason(device)
        if reason is not None:
            raise UsageError(f"--device {name}: {reason}; use --device cpu, or leave --device out to use the "
                             "best available.")
        return device
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            device = get_device()
        except ValueError as err:  # COURSE_DEVICE=garbage: the message names the variable
            raise UsageError(str(err)) from None
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return device


def tokenizer_kind(tok: Tokenizer) -> str:
    """'char' or 'bpe' (a chat tokenizer: its base's kind)."""
    tok = getattr(tok, "base", tok)
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
    ckpt = load_checkpoint(folder, map_location=device)  # it reads and checks the stored tokenizer too
    tok = ckpt.require_tokenizer()
    ckpt.model.eval()
    return ckpt, tok
