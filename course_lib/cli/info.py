"""Day 21: ``python -m course_lib info``: what a checkpoint holds, and its model summary;
``info --check-device``: whether the accelerator trains like the CPU (:mod:`course_lib.device_check`).

Prints the manifest (step, losses, wall time, versions, model and training configs, the
tokenizer) and :func:`course_lib.model.summary` of the model on one window of
``block_size`` tokens: parameters per module, activation shapes, a memory estimate.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from course_lib.cli import UsageError
from course_lib.cli.common import load_for_inference, pick_device, tokenizer_kind
from course_lib.model import summary


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def describe_checkpoint(meta: dict[str, Any]) -> list[str]:
    """The manifest's main facts as ``key: value`` lines."""
    metrics = meta.get("metrics", {})
    lines = [f"step: {meta['step']}"]
    for key in ("train_loss", "val_loss", "val_perplexity"):
        if key in metrics:
            lines.append(f"{key.replace('_', ' ')}: {_fmt(metrics[key])}")
    if "tokens_per_sec" in metrics:  # over the run up to this step, as train prints it at the end
        lines.append(f"training speed: {metrics['tokens_per_sec']:,.0f} tokens/s")
    if "elapsed_s" in metrics:
        lines.append(f"wall time: {metrics['elapsed_s']:.1f} s")
    lines.append(f"course_lib version: {meta.get('course_lib_version')} (torch {meta.get('torch_version')})")
    lines.append(f"created: {meta.get('created')}")
    for name in ("model_config", "train_config"):
        config = meta.get(name) or {}
        lines.append(f"{name.replace('_', ' ')}: " + ", ".join(f"{k}={v}" for k, v in config.items()))
    return lines


def check(args: argparse.Namespace) -> int:
    """``info --check-device``: the CPU against the device; exit code 1 when they disagree."""
    from course_lib.device_check import check_device

    device = pick_device(args.device)
    if device.type == "cpu":
        print("the course would train on the CPU here (no CUDA GPU or Apple MPS device is available, or "
              "--device cpu / COURSE_DEVICE=cpu asked for it): there is no other device to compare it with.")
        return 0
    report = check_device(device)
    print(report)
    return 0 if report.ok else 1


def run(args: argparse.Namespace) -> int:
    if args.check_device:
        return check(args)
    if args.ckpt is None:
        raise UsageError("info needs --ckpt (a run folder or a ckpt-XXXXXX folder), or --check-device.")
    device = pick_device(args.device or "cpu")
    ckpt, tok = load_for_inference(args.ckpt, device)
    model = ckpt.model
    print(f"checkpoint: {ckpt.path}")
    print("\n".join(describe_checkpoint(ckpt.meta)))
    print(f"tokenizer: {tokenizer_kind(tok)}, vocab size {tok.vocab_size}")
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    idx = torch.zeros((1, model.config.block_size), dtype=torch.long, device=device)  # (1, block_size)
    print()
    print(summary(model, idx))
    return 0
