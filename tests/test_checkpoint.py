"""Checkpoints: safetensors + JSON round trips, exact resume, atomic writes, clear errors."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import course_lib
from course_lib.checkpoint import (
    CheckpointError,
    best_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from course_lib.schedule import TrainConfig, configure_optimizer
from course_lib.trainer import Trainer
from ddp_worker import TinyConfig, TinyLM, markov_tokens

TRAIN, VAL = markov_tokens(2000), markov_tokens(400, seed=1)


def tiny(seed: int = 0, **kw) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(TinyConfig(**kw))


def stepped(model: TinyLM, steps: int = 3) -> torch.optim.Optimizer:
    """An AdamW that has taken a few real steps, so its state is not empty."""
    opt = configure_optimizer(model, 0.1, 1e-2, (0.9, 0.95), "cpu")
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(16, (4, 9), generator=g)
        model(idx[:, :-1], idx[:, 1:])[1].backward()
        opt.step()
        opt.zero_grad()
    return opt


def run_cfg(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(max_iters=20, batch_size=4, block_size=8, lr=1e-2, min_lr=1e-3, warmup_iters=3,
                grad_accum_steps=2, eval_interval=5, eval_iters=2, checkpoint_dir=str(tmp_path),
                progress=False, seed=0)
    return TrainConfig(**{**base, **kw})


# ---------------------------------------------------------------- round trips
def test_weights_round_trip_with_tied_tensors_stored_once(tmp_path):
    model = tiny(tie_weights=True)
    folder = save_checkpoint(tmp_path, model, step=7, metrics={"val_loss": 1.25}, tokenizer={"kind": "char"})
    assert folder == tmp_path / "ckpt-000007"
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "model.safetensors"]
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in f.keys() and "embed_tokens.weight" in f.keys()
        inner = json.loads(f.metadata()["meta"])  # the metadata travels inside the weights file too
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["aliases"] == {"lm_head.weight": "embed_tokens.weight"} == inner["aliases"]
    assert inner["model_config"] == meta["model_config"] == model.config.to_dict()
    assert meta["step"] == 7 and meta["metrics"] == {"val_loss": 1.25} and meta["tokenizer"] == {"kind": "char"}
    assert meta["course_lib_version"] == course_lib.__version__ and meta["torch_version"] == torch.__version__
    fresh = tiny(seed=1, tie_weights=True)
    ckpt = load_checkpoint(folder, model=fresh)
    assert ckpt.model is fresh and ckpt.step == 7
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    assert fresh.lm_head.weight is fresh.embed_tokens.weight  # still tied after loading


def test_model_is_rebuilt_from_the_stored_config(tmp_path):
    model = tiny(n_embd=24)
    folder = save_checkpoint(tmp_path, model, step=1, metrics={})
    ckpt = load_checkpoint(folder, model_factory=lambda cfg: TinyLM(TinyConfig.from_dict(cfg)))
    assert ckpt.model.config == model.config
    idx = torch.randint(16, (2, 8))
    assert torch.equal(ckpt.model(idx)[0], model(idx)[0])


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    model = tiny()
    opt = stepped(model)
    folder = save_checkpoint(tmp_path, model, opt, step=3, metrics={})
    model2 = tiny(seed=5)
    opt2 = configure_optimizer(model2, 0.5, 1.0, (0.5, 0.5), "cpu")  # wrong hyper-parameters, overwritten
    load_checkpoint(folder, model=model2, optimizer=opt2)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for pid, entry in s1["state"].items():
        for key, value in entry.items():
            assert torch.equal(value, s2["state"][pid][key]), (pid, key)
    idx = torch.randint(16, (4, 9))
    for m, o in ((model, opt), (model2, opt2)):
        m(idx[:, :-1], idx[:, 1:])[1].backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- exact resume
def test_interrupted_and_resumed_run_matches_a_straight_run(tmp_path):
    def make(seed: int, folder: Path, callbacks=()) -> Trainer:
        model = tiny(seed, dropout=0.1, tie_weights=True)  # dropout: the global RNG must come back too
        return Trainer(model, TRAIN, VAL, run_cfg(folder), device="cpu", callbacks=callbacks)

    straight = make(0, tmp_path / "straight")
    h_straight = straight.fit()

    def crash(trainer, record):
        if record.step == 10:
            raise KeyboardInterrupt  # the run dies right after writing ckpt-000010

    with pytest.raises(KeyboardInterrupt):
        make(0, tmp_path / "resumed", [crash]).fit()
    assert latest_checkpoint(tmp_path / "resumed").step == 10
    resumed = make(123, tmp_path / "resumed")  # other initial weights: all must come from the checkpoint
    h_resumed = resumed.fit(resume_from="latest")
    assert resumed.step == straight.step == 20
    for (name, a), b in zip(straight.raw_model.named_parameters(), resumed.raw_model.parameters()):
        assert torch.equal(a, b), name
    for field in ("iters", "train_loss", "val_loss", "lr"):
        assert getattr(h_resumed, field) == getattr(h_straight, field), field
    assert h_resumed.best_val_loss == h_straight.best_val_loss
    assert [c.step for c in list_checkpoints(tmp_path / "straight")] == [5, 10, 15, 20]


def test_checkpoint_cadence_and_metadata(tmp_path):
    cfg = run_cfg(tmp_path, max_iters=20, eval_interval=4, checkpoint_every=2, keep_best=False)
    trainer = Trainer(tiny(), TRAIN, VAL, cfg, device="cpu", tokenizer={"vocab": list("abcd")})
    history = trainer.fit()
    found = list_checkpoints(tmp_path)
    assert [c.step for c in found] == [4, 12, 20]  # evaluations 2, 4, 6 (step 0 is evaluation 1)
    for info in found:
        assert info.val_loss == history.val_loss[history.iters.index(info.step)]
    meta = load_checkpoint(found[-1].path, model=tiny()).meta
    assert TrainConfig.from_dict(meta["train_config"]) == cfg
    assert meta["tokenizer"] == {"vocab": list("abcd")} and meta["metrics"]["elapsed_s"] > 0
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        Trainer(tiny(), TRAIN, VAL, run_cfg(tmp_path / "empty"), device="cpu").fit(resume_from="latest")


# ---------------------------------------------------------------- listing
def test_list_best_latest(tmp_path):
    model = tiny()
    for step, val in [(300, 1.7), (100, 2.0), (200, 1.5)]:
        save_checkpoint(tmp_path, model, step=step, metrics={"val_loss": val})
    (tmp_path / "ckpt-000400").mkdir()  # incomplete: no manifest
    (tmp_path / "ckpt-000400" / "model.safetensors").write_bytes(b"partial")
    assert [(c.step, c.val_loss) for c in list_checkpoints(tmp_path)] == [(100, 2.0), (200, 1.5), (300, 1.7)]
    assert best_checkpoint(tmp_path).step == 200 and best_checkpoint(tmp_path).path == tmp_path / "ckpt-000200"
    assert latest_checkpoint(tmp_path).step == 300
    assert list_checkpoints(tmp_path / "nothing") == [] and latest_checkpoint(tmp_path / "nothing") is None
    assert best_checkpoint(tmp_path / "nothing") is None


# ---------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("crash_on", ["model.safetensors", "optimizer.safetensors", "meta.json"])
def test_crash_while_writing_leaves_no_listed_checkpoint(tmp_path, monkeypatch, crash_on):
    model = tiny()
    opt = stepped(model, 1)
    good = save_checkpoint(tmp_path, model, opt, step=100, metrics={"val_loss": 2.0})
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(crash_on):
            raise OSError("disk full (simulated crash)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(tmp_path, model, opt, step=200, metrics={"val_loss": 1.0})
    monkeypatch.undo()
    assert [c.step for c in list_checkpoints(tmp_path)] == [100]
    assert best_checkpoint(tmp_path).path == good
    assert not list((tmp_path / "ckpt-000200").glob("*.tmp"))  # the temporary file was removed
    assert not (tmp_path / "ckpt-000200" / crash_on).exists()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(tmp_path / "ckpt-000200", model=tiny())
    load_checkpoint(good, model=tiny(), optimizer=configure_optimizer(tiny(), 0.1, 1e-2, (0.9, 0.95), "cpu"))


# ---------------------------------------------------------------- errors
def _corrupt(folder: Path, how: str) -> None:
    path = folder / "model.safetensors"
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flipped byte":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif how == "missing file":
        (folder / "optimizer.safetensors").unlink()
    elif how == "bad manifest":
        (folder / "meta.json").write_text("{ not json")


@pytest.mark.parametrize("how, message", [("truncated", "truncated"), ("flipped byte", "sha256"),
                                          ("missing file", "missing"), ("bad manifest", "not valid JSON")])
def test_corrupt_checkpoint_raises_a_clear_error(tmp_path, how, message):
    model = tiny()
    opt = stepped(model, 1)
    folder = save_checkpoint(tmp_path, model, opt, step=1, metrics={})
    _corrupt(folder, how)
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(folder, model=tiny(), optimizer=configure_optimizer(tiny(), 0.1, 1e-2, (0.9, 0.95), "cpu"))
    assert "earlier" in str(err.value)  # says what to do


def test_mismatched_model_raises_a_clear_error(tmp_path):
    folder = save_checkpoint(tmp_path, tiny(n_embd=16), step=1, metrics={})
    with pytest.raises(CheckpointError, match=r"n_embd: checkpoint 16 vs model 32"):
        load_checkpoint(folder, model=tiny(n_embd=32))
    no_config = tiny(n_embd=32)
    del no_config.config  # only the tensors can be compared
    with pytest.raises(CheckpointError, match=r"shapes differ: down_proj.bias: checkpoint \(16,\) vs model \(32,\)"):
        load_checkpoint(folder, model=no_config)
    model = tiny()
    folder = save_checkpoint(tmp_path / "opt", model, stepped(model, 1), step=1, metrics={})
    wrong_opt = torch.optim.AdamW(model.parameters())  # one group instead of two
    with pytest.raises(CheckpointError, match="does not fit this optimizer"):
        load_checkpoint(folder, model=tiny(), optimizer=wrong_opt)


# ---------------------------------------------------------------- no pickle
def test_files_are_safetensors_and_json_never_pickle(tmp_path):
    trainer = Trainer(tiny(), TRAIN, VAL, run_cfg(tmp_path, max_iters=5), device="cpu")
    trainer.fit()
    folder = latest_checkpoint(tmp_path).path
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["meta.json", "model.safetensors", "optimizer.safetensors", "rng.safetensors"]
    for path in folder.iterdir():
        data = path.read_bytes()
        assert not data.startswith((b"\x80", b"PK")), f"{path.name} looks like a pickle or a torch zip"
        if path.suffix == ".safetensors":
            (n,) = struct.unpack("<Q", data[:8])  # safetensors: 8-byte header length, then JSON
            assert isinstance(json.loads(data[8 : 8 + n]), dict)
        else:
            assert isinstance(json.loads(data), dict)
    root = Path(course_lib.__file__).parent
    for name in ("checkpoint.py", "trainer.py", "batches.py", "schedule.py"):
        source = (root / name).read_text()
        assert not re.search(r"^\s*(import|from)\s+(pickle|dill)", source, re.M), name
        for call in re.findall(r"(?<![\w.])torch\.load\(([^)]*)\)", source):  # not safetensors.torch.load
            assert "weights_only=True" in call, name


# ---------------------------------------------------------------- the course's GPT
def test_gpt_trains_saves_and_is_rebuilt_by_the_default_factory(tmp_path):
    model_mod = pytest.importorskip("course_lib.model", reason="course_lib.model is not available yet")
    GPT, GPTConfig = model_mod.GPT, model_mod.GPTConfig
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16))
    history = Trainer(model, TRAIN, VAL, run_cfg(tmp_path, max_iters=10, lr=3e-2), device="cpu").fit()
    assert history.val_loss[-1] < history.val_loss[0]
    ckpt = load_checkpoint(latest_checkpoint(tmp_path).path)  # rebuilt with GPT(GPTConfig.from_dict(...))
    assert isinstance(ckpt.model, GPT) and ckpt.model.config == model.config
    idx = TRAIN[:16].view(2, 8)
    model.eval()
    ckpt.model.eval()
    assert torch.equal(ckpt.model(idx)[0], model(idx)[0])
