"""course_lib.scaling: a 2-process torchrun of a tiny GPT (gloo, CPU), read back and compared; the ring arithmetic."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.distributed as dist

from course_lib.device import seed_everything
from course_lib.model import GPT
from course_lib.presets import PRESETS
from course_lib.scaling import RankReport, launch, read_run, ring_allreduce_bytes, torchrun_command, worker_env

gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="this torch build has no torch.distributed with the gloo backend, so DDP cannot run on CPU",
)
TINY = dict(batch_size=4, block_size=16, n_layer=1, n_embd=32)  # 17,536 parameters: a run of seconds
STEPS = 4


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    return launch(2, tmp_path_factory.mktemp("scaling2"), steps=STEPS, threads=1, timeout=180, **TINY)


@gloo
def test_both_ranks_report_the_same_run(two_ranks):
    r0, r1 = two_ranks.reports
    assert (r0.rank, r1.rank) == (0, 1) and two_ranks.world_size == 2
    assert r0.backend == r1.backend == "gloo" and r0.threads == r1.threads == 1
    assert r0.steps == r1.steps == STEPS
    assert r0.tokens_per_step == 2 * TINY["batch_size"] * TINY["block_size"]  # both ranks' windows
    assert r0.val_loss == r1.val_loss and r0.tokens_per_sec == r1.tokens_per_sec > 0  # all-reduced means
    assert r0.n_params == 17_536 and r0.allreduce_ms > 0


@gloo
def test_ranks_end_with_identical_weights_that_trained(two_ranks):
    assert two_ranks.ranks_identical()
    recipe = dataclasses.replace(PRESETS["shakespeare-char-cpu"], **TINY)
    w = two_ranks.weights(0)
    seed_everything(recipe.seed)
    start = dict(GPT(recipe.model_config(w["embed_tokens.weight"].shape[0])).named_parameters())
    assert set(w) == set(start)
    assert all(not torch.equal(w[k], start[k].detach()) for k in w)  # every tensor moved


@gloo
def test_read_run_refuses_a_missing_rank(two_ranks, tmp_path):
    (tmp_path / "rank1.json").write_text((two_ranks.out_dir / "rank1.json").read_text())
    with pytest.raises(ValueError, match="ranks \\[1\\]"):
        read_run(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_run(tmp_path / "nothing")


def test_command_and_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    cmd = torchrun_command(2, "out", steps=7, threads=1, n_layer=1)
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    assert cmd[6:] == ["course_lib.scaling", "out", "--steps=7", "--threads=1", "--n-layer=1"]
    env = worker_env(1)
    assert "RANK" not in env and env["OMP_NUM_THREADS"] == "1" and env["COURSE_DEVICE"] == "cpu"
    with pytest.raises(TypeError, match="unknown override"):
        torchrun_command(2, "out", steps=7, lr=1)


def test_ring_allreduce_bytes_matches_a_simulated_ring():
    """Count what each rank sends in a reduce-scatter and an all-gather over a ring, chunk by chunk."""
    for n, size in ((2, 10), (3, 12), (4, 1000), (8, 64)):
        chunk = size // n
        sent = [0] * n
        for _phase in ("reduce-scatter", "all-gather"):
            for _step in range(n - 1):  # every rank passes one chunk to its right-hand neighbour
                for rank in range(n):
                    sent[rank] += chunk
        assert all(s * 4 == ring_allreduce_bytes(size, n) for s in sent)
    assert ring_allreduce_bytes(124_439_808, 8, 2) == pytest.approx(2 * 7 / 8 * 124_439_808 * 2)
    with pytest.raises(ValueError):
        ring_allreduce_bytes(10, 0)


def test_rank_report_round_trips():
    r = RankReport(0, 1, "none", 2, 5, 64, 100, 1.0, 64.0, 0.0, 3.0)
    assert RankReport(**json.loads(json.dumps(r.to_dict()))) == r
