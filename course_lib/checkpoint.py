"""Day 21: saving and loading checkpoints safely: safetensors and JSON, no pickle.

One checkpoint is one folder, ``OUT/ckpt-000500/``::

    model.safetensors      weights; each tied tensor stored once, its aliases in meta.json
    optimizer.safetensors  optimizer tensors (Adam moments); the rest of its state is JSON
    rng.safetensors        random-number generator states, so a resumed run is exact
    meta.json              the manifest: configs, tokenizer, step, metrics, versions, and the
                           sha256 of every file above. Written last: no manifest, no checkpoint.

Every file is written by :func:`course_lib.atomic.atomic_write_bytes` (a temporary file in
the same folder, fsync'ed, then renamed over its final name), so a crash never leaves a
half-written file under a real name. :func:`load_checkpoint` checks the manifest before it
builds anything (sizes capped, tokenizer checked: :mod:`course_lib.manifest`), then every
file's size and hash, and raises :class:`CheckpointError` saying what is wrong and what to do.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import safetensors.torch
import torch
from torch import nn

from course_lib.atomic import atomic_write_bytes
from course_lib.manifest import (
    MAX_MANIFEST_BYTES,
    CheckpointError,
    check_finite,
    check_model_config,
    check_structure,
    is_course_tokenizer,
    read_safetensors,
    tokenizer_from_manifest,
)

FORMAT_VERSION = 1
MANIFEST = "meta.json"
PREFIX = "ckpt-"
WEIGHTS, OPTIMIZER, RNG = "model.safetensors", "optimizer.safetensors", "rng.safetensors"
FILES = (MANIFEST, WEIGHTS, OPTIMIZER, RNG)  # everything save_checkpoint writes in a ckpt-XXXXXX folder

if TYPE_CHECKING:
    from course_lib.tokenizers import Tokenizer


@dataclass(frozen=True)
class CheckpointInfo:
    """One complete checkpoint found by :func:`list_checkpoints`."""

    step: int
    val_loss: float | None
    path: Path


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns: the model (loaded), the manifest, RNG states and
    the course tokenizer stored with it (checked against the model; None when there is none)."""

    model: nn.Module
    meta: dict[str, Any]
    rng: dict[str, torch.Tensor]
    path: Path
    tokenizer: Tokenizer | None = None

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta.get("metrics", {})

    def require_tokenizer(self) -> Tokenizer:
        """:attr:`tokenizer`, or a :class:`CheckpointError` saying what the manifest holds instead."""
        if self.tokenizer is None:
            raise _no_tokenizer(self.path, self.meta)
        return self.tokenizer

    def __repr__(self) -> str:
        name = type(self.model).__name__
        return f"Checkpoint(step={self.step}, model={name}, metrics={self.metrics}, path={self.path})"


def _to_jsonable(obj: Any, what: str) -> Any:
    if obj is None or isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "to_str"):  # a Hugging Face tokenizers.Tokenizer
        return json.loads(obj.to_str())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"{what} must be a dataclass, a dict or have to_dict() or to_str(), got {type(obj).__name__}")


def _dedupe(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Store each tied tensor once: returns (tensors, aliases) with aliases[name] = stored name."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in state.items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().to("cpu", copy=True).contiguous()  # a copy: no shared memory left
    return tensors, aliases


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"class": type(optimizer).__name__, "param_groups": sd["param_groups"], "state": plain}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(pid): dict(v) for pid, v in info["state"].items()}
    for name, t in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = t
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
              for g in info["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    path_dir: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    step: int,
    config: Any = None,
    train_config: Any = None,
    tokenizer: Any = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    rng: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``path_dir/ckpt-{step:06d}/`` and return that folder.

    ``config`` is the model config (default ``model.config``), ``train_config`` the training
    config and ``tokenizer`` anything with ``to_dict()`` or a JSON-able dict; ``metrics``
    (e.g. ``{"val_loss": 1.52}``) and ``extra`` must be JSON-able. ``rng`` maps names to
    generator states (``torch.Generator.get_state()``) saved in ``rng.safetensors``.
    """
    from course_lib import __version__

    folder = Path(path_dir) / f"{PREFIX}{step:06d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # rewriting: the folder is incomplete until the end
    config = model.config if config is None and hasattr(model, "config") else config
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "metrics": dict(metrics or {}),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model_config": _to_jsonable(config, "config"),
        "train_config": _to_jsonable(train_config, "train_config"),
        "tokenizer": _to_jsonable(tokenizer, "tokenizer"),
        "extra": extra or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "course_lib_version": __version__,
        "torch_version": torch.__version__,
    }
    weights, meta["aliases"] = _dedupe(model.state_dict())  # tied tensors: stored once, aliased
    blobs = {WEIGHTS: (weights, {"format": "pt", "meta": json.dumps(meta)})}
    if optimizer is not None:
        opt_tensors, meta["optimizer"] = _flatten_optimizer(optimizer)
        blobs[OPTIMIZER] = (opt_tensors, {"format": "pt"})
    if rng:
        blobs[RNG] = ({k: v.detach().to("cpu", copy=True) for k, v in rng.items()}, {"format": "pt"})
    meta["files"] = {}
    for name, (tensors, st_meta) in blobs.items():
        data = safetensors.torch.save(tensors, metadata=st_meta)
        atomic_write_bytes(folder / name, data)
        meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    atomic_write_bytes(folder / MANIFEST, json.dumps(meta, indent=2).encode("utf-8"))  # last: marks it complete
    return folder


def _read_manifest(folder: Path) -> dict[str, Any]:
    manifest = folder / MANIFEST
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a checkpoint folder: pass a folder such as "
                              f"OUT/{PREFIX}000500, or use latest_checkpoint(OUT) / best_checkpoint(OUT).")
    if not manifest.is_file():
        raise CheckpointError(f"{folder} has no {MANIFEST}: the checkpoint is incomplete (the run stopped "
                              "while writing it). Use an earlier one from list_checkpoints().")
    if manifest.stat().st_size > MAX_MANIFEST_BYTES:
        raise CheckpointError(f"{manifest} has {manifest.stat().st_size:,} bytes, more than a manifest ever needs "
                              f"({MAX_MANIFEST_BYTES:,}): it is not a course_lib manifest; pick another checkpoint.")
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError(f"{manifest} is not valid JSON ({err}): the checkpoint is corrupt; "
                              "use an earlier one from list_checkpoints().") from err
    return check_structure(meta, manifest)


def _read_verified(folder: Path, name: str, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    path = folder / name
    expected = meta["files"][name]
    if not path.is_file():
        raise CheckpointError(f"{path} is missing although {MANIFEST} lists it: the checkpoint is "
                              "incomplete; use an earlier one from list_checkpoints().")
    size = path.stat().st_size  # compared before reading: a huge file is never read into memory
    if size != expected["bytes"]:
        raise CheckpointError(f"{path} has {size} bytes, the manifest says {expected['bytes']}: the file "
                              "is truncated or was overwritten; use an earlier checkpoint or save it again.")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise CheckpointError(f"{path} does not match the sha256 in {MANIFEST}: the file is corrupt; "
                              "use an earlier checkpoint or save it again.")
    return read_safetensors(data, path)


def _default_factory(cfg: dict[str, Any]) -> nn.Module:
    try:
        from course_lib.model import GPT, GPTConfig
    except ImportError as err:
        raise CheckpointError("cannot rebuild the model: course_lib.model.GPT is not importable; pass "
                              "model=... or model_factory=lambda cfg: MyModel(MyConfig(**cfg)).") from err
    return GPT(GPTConfig.from_dict(cfg))


def _check_fits(model: nn.Module, meta: dict[str, Any], weights: dict[str, torch.Tensor], folder: Path) -> None:
    stored_cfg = meta.get("model_config")
    config = getattr(model, "config", None)
    if stored_cfg is not None and config is not None:
        current = _to_jsonable(config, "model.config")
        diff = sorted(k for k in set(stored_cfg) | set(current) if stored_cfg.get(k) != current.get(k))
        if diff:
            shown = ", ".join(f"{k}: checkpoint {stored_cfg.get(k)!r} vs model {current.get(k)!r}" for k in diff)
            raise CheckpointError(f"{folder} was saved from a model with a different config ({shown}). Build the "
                                  "model from the stored config: load_checkpoint(path) without model=, "
                                  "or pass a model built with meta['model_config'].")
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = [f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(weights)) if weights[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"missing {missing[:5]}" if missing else "", f"unexpected {unexpected[:5]}" if unexpected else "",
                 f"shapes differ: {'; '.join(shapes[:5])}" if shapes else ""]
        raise CheckpointError(f"{folder} does not fit this model ({', '.join(p for p in parts if p)}). Load it "
                              "into a model built with the checkpoint's own config (meta['model_config']).")


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
    model_factory: Callable[[dict[str, Any]], nn.Module] | None = None,
) -> Checkpoint:
    """Load a checkpoint folder, verifying every file against the manifest.

    With ``model=None`` the model is rebuilt from the stored config by ``model_factory``
    (default: ``GPT(GPTConfig.from_dict(cfg))`` from :mod:`course_lib.model`) and moved to
    ``map_location``; a given ``model`` keeps its device. The
    optimizer, when given, gets its full state back. A course tokenizer stored in the
    manifest comes back as ``Checkpoint.tokenizer``.

    The manifest is checked before anything is built from it (:mod:`course_lib.manifest`):
    sizes capped, the tokenizer's split pattern one of the known ones and its vocabulary
    the model's. Raises :class:`CheckpointError` on any of those, on a missing, truncated,
    corrupt or unreadable file, on NaN or infinite weights, or when the checkpoint does
    not fit ``model``.
    """
    folder = Path(path)
    meta = _read_manifest(folder)
    rebuilt = model is None
    where = folder / MANIFEST
    check_model_config(meta.get("model_config"), where, gpt=rebuilt and model_factory is None)
    tokenizer = _stored_tokenizer(meta, where, model)  # checked (pattern, vocabulary) before the model exists
    weights = _read_verified(folder, WEIGHTS, meta)
    check_finite(weights, folder / WEIGHTS)
    for alias, target in meta.get("aliases", {}).items():
        if target not in weights:
            raise CheckpointError(f"{where} says {alias} is stored as {target}, which model.safetensors does not "
                                  "hold: the checkpoint is damaged; use an earlier one from list_checkpoints().")
        weights[alias] = weights[target]
    if rebuilt:
        if meta.get("model_config") is None:
            raise CheckpointError(f"{folder} stores no model config: pass model=... to load it into.")
        model = (model_factory or _default_factory)(meta["model_config"])
    _check_fits(model, meta, weights, folder)
    model.load_state_dict(weights, strict=True)  # copies into the model's own device and dtype
    if rebuilt:
        model.to(map_location)
    if optimizer is not None:
        if OPTIMIZER not in meta["files"]:
            raise CheckpointError(f"{folder} holds no optimizer state: resume from a checkpoint saved "
                                  "with an optimizer, or load the weights only (optimizer=None).")
        opt_tensors = _read_verified(folder, OPTIMIZER, meta)
        try:
            optimizer.load_state_dict(_unflatten_optimizer(opt_tensors, meta["optimizer"]))
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"the optimizer state in {folder} does not fit this optimizer ({err}): "
                                  "build the optimizer the same way (configure_optimizer) before loading.") from err
    rng = _read_verified(folder, RNG, meta) if RNG in meta["files"] else {}
    return Checkpoint(model=model, meta=meta, rng=rng, path=folder, tokenizer=tokenizer)


def _stored_tokenizer(meta: dict[str, Any], where: Path, model: nn.Module | None) -> Tokenizer | None:
    """The course tokenizer in the manifest, checked against the model's vocab_size; None if there is none."""
    if not is_course_tokenizer(meta.get("tokenizer")):
        return None
    stored_cfg = meta.get("model_config") or {}
    vocab = stored_cfg.get("vocab_size", getattr(getattr(model, "config", None), "vocab_size", None))
    return tokenizer_from_manifest(meta["tokenizer"], where, vocab_size=vocab)


def checkpoint_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """The course tokenizer stored in a checkpoint folder's manifest, without loading any weights.

    Checked as :func:`load_checkpoint` checks it (known split pattern, the model's vocab_size);
    a checkpoint that stores none raises :class:`CheckpointError`.
    """
    folder = Path(path)
    meta = _read_manifest(folder)
    tokenizer = _stored_tokenizer(meta, folder / MANIFEST, None)
    if tokenizer is None:
        raise _no_tokenizer(folder, meta)
    return tokenizer


def _no_tokenizer(folder: Path, meta: dict[str, Any]) -> CheckpointError:
    stored = meta.get("tokenizer")
    kind = stored.get("type") if isinstance(stored, dict) else type(stored).__name__
    what = "no tokenizer" if stored is None else f"a tokenizer of type {kind!r}, not one of the course's"
    return CheckpointError(f"{folder} stores {what}, so its ids cannot be turned into text: use a checkpoint "
                           "saved with tokenizer=tok.to_dict() (python -m course_lib train does).")


def list_checkpoints(out_dir: str | os.PathLike) -> list[CheckpointInfo]:
    """Complete checkpoints (those with a manifest) under ``out_dir``, oldest step first."""
    out = Path(out_dir)
    found: list[CheckpointInfo] = []
    for folder in sorted(out.glob(f"{PREFIX}*")) if out.is_dir() else []:
        if not (folder / MANIFEST).is_file():
            continue  # incomplete: its manifest was never written
        try:
            meta = _read_manifest(folder)
        except CheckpointError as err:
            warnings.warn(f"skipping {folder}: {err}", stacklevel=2)
            continue
        val = meta.get("metrics", {}).get("val_loss")
        found.append(CheckpointInfo(step=int(meta["step"]), val_loss=None if val is None else float(val), path=folder))
    return sorted(found, key=lambda info: info.step)


def latest_checkpoint(out_dir: str | os.PathLike) -> CheckpointInfo | None:
    """The complete checkpoint with the highest step, or None when there is none."""
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def best_checkpoint(out_dir: str | os.PathLike) -> CheckpointInfo | None:
    """The complete checkpoint with the lowest validation loss (ties: the earlier step), or None."""
    scored = [c for c in list_checkpoints(out_dir) if c.val_loss is not None]
    return min(scored, key=lambda c: (c.val_loss, c.step)) if scored else None
