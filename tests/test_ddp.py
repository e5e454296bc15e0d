"""DistributedDataParallel: two CPU processes (gloo) launched by torchrun, checked against one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file

from course_lib.batches import get_batch
from course_lib.schedule import TrainConfig
from ddp_worker import DDP_TRAIN, TinyConfig, TinyLM, markov_tokens

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="this torch build has no torch.distributed with the gloo backend, so DDP cannot run on CPU",
)

WORLD = 2


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env.update(OMP_NUM_THREADS="1", COURSE_DEVICE="cpu", PYTHONPATH=str(Path(__file__).parents[1]))
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}", "--standalone",
           str(worker), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out


def _reference_params() -> dict[str, torch.Tensor]:
    """One process, plain torch: each step averages the loss of every micro-batch of both ranks."""
    cfg = TrainConfig(**DDP_TRAIN)
    torch.manual_seed(0)
    model = TinyLM(TinyConfig())
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=cfg.lr, betas=cfg.betas)
    data = markov_tokens(2000)
    gens = [torch.Generator().manual_seed(cfg.seed + rank) for rank in range(WORLD)]  # rank r's batches
    for it in range(cfg.max_iters):
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(it)
        losses = []
        for g in gens:
            for _ in range(cfg.grad_accum_steps):  # rank r draws its micro-batches in turn
                x, y = get_batch(data, cfg.block_size, cfg.batch_size, g, "cpu")
                logits, _ = model(x)
                losses.append(F.cross_entropy(logits.flatten(0, 1), y.flatten()))
        torch.stack(losses).mean().backward()  # DDP averages the ranks' accumulated gradients
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad()
    return {k: v.detach() for k, v in model.named_parameters()}


def test_both_ranks_ran_with_gloo(ddp_run):
    reports = [json.loads((ddp_run / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [r["rank"] for r in reports] == [0, 1]
    assert all(r["world_size"] == WORLD and r["backend"] == "gloo" for r in reports)
    assert [r["is_main"] for r in reports] == [True, False]


def test_ranks_end_with_identical_parameters(ddp_run):
    p0, p1 = (load_file(str(ddp_run / f"rank{r}.safetensors")) for r in range(WORLD))
    assert p0.keys() == p1.keys()
    for name in p0:
        assert torch.equal(p0[name], p1[name]), name


def test_ddp_equals_single_process_with_the_combined_batch(ddp_run):
    got = load_file(str(ddp_run / "rank0.safetensors"))
    want = _reference_params()
    torch.manual_seed(0)
    start = dict(TinyLM(TinyConfig()).named_parameters())
    for name, value in want.items():
        assert not torch.allclose(start[name], value), f"{name} did not train"
        torch.testing.assert_close(got[name], value, atol=1e-5, rtol=1e-5, msg=name)


def test_losses_are_averaged_finite_and_decrease(ddp_run):
    h0, h1 = (json.loads((ddp_run / f"rank{r}.json").read_text())["history"] for r in range(WORLD))
    assert h0["val_loss"] == h1["val_loss"]  # all-reduced: every rank records the same mean
    assert h0["iters"] == [0, 3, 6]
    assert all(torch.isfinite(torch.tensor(h0["train_loss"] + h0["val_loss"])))
    assert h0["val_loss"][-1] < h0["val_loss"][0]


def test_only_rank0_writes_checkpoints(ddp_run):
    from course_lib.checkpoint import latest_checkpoint, load_checkpoint

    info = latest_checkpoint(ddp_run / "ckpt")
    assert info is not None and info.step == 6
    ckpt = load_checkpoint(info.path, model=TinyLM(TinyConfig()))
    assert ckpt.meta["extra"]["trainer"]["world_size"] == WORLD
    assert {"data.rank0", "data.rank1"} <= set(ckpt.rng)  # both ranks' batch streams, for resuming
    assert not torch.equal(ckpt.rng["data.rank0"], ckpt.rng["data.rank1"])
    got = load_file(str(ddp_run / "rank0.safetensors"))
    for name, p in ckpt.model.named_parameters():
        assert torch.equal(p, got[name])
