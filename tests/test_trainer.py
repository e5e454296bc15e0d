"""Batches, loss estimates, perplexity, the LR schedule, optimizer groups and the Trainer loop."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from course_lib.batches import estimate_loss, evaluate_perplexity, get_batch
from course_lib.schedule import TrainConfig, configure_optimizer, lr_at
from course_lib.trainer import EvalRecord, History, Trainer
from ddp_worker import TinyConfig, TinyLM, markov_tokens

V = 16


class UniformLM(nn.Module):
    """All logits zero: every next token has probability 1/V, so the loss is exactly ln V."""

    def __init__(self, vocab_size: int = V, block_size: int = 8) -> None:
        super().__init__()
        self.config = TinyConfig(vocab_size=vocab_size, block_size=block_size)
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, idx, targets=None):
        logits = torch.zeros(*idx.shape, self.config.vocab_size) * self.dummy  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


class BigramTable(nn.Module):
    """Logits depend only on the current token: a fixed (V, V) table, known probabilities."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)
        self.config = TinyConfig(vocab_size=table.shape[0], block_size=8)

    def forward(self, idx, targets=None):
        logits = self.table[idx]  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def quick_cfg(**kw) -> TrainConfig:
    base = dict(max_iters=12, batch_size=8, block_size=8, lr=1e-2, min_lr=1e-3, warmup_iters=2,
                eval_interval=4, eval_iters=2, progress=False, seed=0)
    return TrainConfig(**{**base, **kw})


def params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


# ---------------------------------------------------------------- batches
def test_get_batch_windows_are_shifted_slices_of_the_data():
    data = torch.arange(100, 200)  # token value = 100 + position, so a window reveals its start
    x, y = get_batch(data, block_size=5, batch_size=64, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, 5) and x.dtype == y.dtype == torch.long
    starts = x[:, 0] - 100
    assert torch.equal(x, data[starts[:, None] + torch.arange(5)])
    assert torch.equal(y, x + 1)
    assert starts.min() >= 0 and starts.max() <= 100 - 5 - 1
    x2, _ = get_batch(data, 5, 64, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)  # the generator makes it repeatable


def test_get_batch_reaches_every_start_including_the_last():
    data = torch.arange(10)
    x, _ = get_batch(data, block_size=4, batch_size=2000, generator=torch.Generator().manual_seed(1))
    assert set(x[:, 0].tolist()) == set(range(10 - 4))  # starts 0..5, the last one ends at data[9]


@pytest.mark.parametrize("bad, match", [(torch.rand(50), "token ids"), (torch.arange(8), "block_size"),
                                        (torch.zeros(4, 20, dtype=torch.long), "1-D")])
def test_get_batch_rejects_bad_data(bad, match):
    with pytest.raises(ValueError, match=match):
        get_batch(bad, 8, 2, torch.Generator())


def test_estimate_loss_of_uniform_model_is_ln_v_and_restores_mode():
    model = UniformLM()
    model.train()
    out = estimate_loss(model, {"train": markov_tokens(300), "val": markov_tokens(100, seed=3)},
                        block_size=8, batch_size=4, eval_iters=3, generator=torch.Generator().manual_seed(0))
    assert set(out) == {"train", "val"}
    assert out["train"] == pytest.approx(math.log(V), abs=1e-6) and out["val"] == pytest.approx(math.log(V), abs=1e-6)
    assert model.training


# ---------------------------------------------------------------- perplexity
def test_perplexity_of_uniform_model_is_v():
    result = evaluate_perplexity(UniformLM(), markov_tokens(101), block_size=8, batch_size=3)
    assert result.n_tokens == 100
    assert result.loss == pytest.approx(math.log(V), abs=1e-12)
    assert result.perplexity == pytest.approx(V, rel=1e-12)


@pytest.mark.parametrize("n", [9, 57, 64, 65, 203])
def test_perplexity_scores_every_token_but_the_first_exactly_once(n):
    torch.manual_seed(n)
    table = torch.randn(V, V)
    data = torch.randint(V, (n,))
    log_probs = torch.log_softmax(table.double(), dim=-1)  # (V, V): row = current token
    by_hand = -sum(log_probs[data[i], data[i + 1]].item() for i in range(n - 1)) / (n - 1)
    result = evaluate_perplexity(BigramTable(table), data, block_size=8, batch_size=3)
    assert result.n_tokens == n - 1
    assert result.loss == pytest.approx(by_hand, rel=1e-6)
    assert result.perplexity == pytest.approx(math.exp(by_hand), rel=1e-6)


def test_perplexity_uses_non_overlapping_windows_with_a_short_last_one():
    torch.manual_seed(0)
    model = TinyLM(TinyConfig())
    data = markov_tokens(83, seed=5)  # 82 targets = 10 windows of 8 + one of 2
    total = 0.0
    for s in range(0, 82, 8):  # the documented windows, one at a time
        t = min(8, 82 - s)
        logits, _ = model(data[None, s : s + t])
        total += F.cross_entropy(logits[0].double(), data[s + 1 : s + t + 1], reduction="sum").item()
    result = evaluate_perplexity(model, data, block_size=8, batch_size=4)
    assert result.loss == pytest.approx(total / 82, rel=1e-6)


# ---------------------------------------------------------------- schedule and optimizer
def test_lr_schedule_closed_form():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110)  # decay ends at max_iters
    assert cfg.lr_at(0) == pytest.approx(1e-4)  # lr / warmup
    assert cfg.lr_at(4) == pytest.approx(5e-4)
    assert cfg.lr_at(9) == pytest.approx(1e-3)
    assert cfg.lr_at(10) == pytest.approx(1e-3)  # cosine starts at the peak
    assert cfg.lr_at(35) == pytest.approx(1e-4 + 0.9e-3 * (1 + math.cos(math.pi / 4)) / 2)
    assert cfg.lr_at(60) == pytest.approx(5.5e-4)  # halfway: the mean of lr and min_lr
    assert cfg.lr_at(110) == pytest.approx(1e-4) and cfg.lr_at(10_000) == 1e-4
    no_warmup = TrainConfig(lr=2e-3, min_lr=0.0, warmup_iters=0, max_iters=100, lr_decay_iters=50)
    assert no_warmup.lr_at(0) == pytest.approx(2e-3) and no_warmup.lr_at(25) == pytest.approx(1e-3)
    assert no_warmup.lr_at(50) == 0.0
    # the config's method is the function of plain numbers with the config's settings
    assert lr_at(35, lr=1e-3, min_lr=1e-4, warmup_iters=10, decay_iters=110) == cfg.lr_at(35)


def test_lr_schedule_matches_torch_schedulers():
    cfg = TrainConfig(lr=3e-3, min_lr=3e-4, warmup_iters=7, max_iters=60)
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=cfg.lr)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / 7, end_factor=1.0, total_iters=6)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=60 - 7, eta_min=cfg.min_lr)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[7])
    for it in range(60 + 1):
        assert opt.param_groups[0]["lr"] == pytest.approx(cfg.lr_at(it), rel=1e-9, abs=1e-12), it
        opt.step()
        sched.step()


def test_train_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig(dtype="fp8")
    with pytest.raises(ValueError, match="warmup_iters"):
        TrainConfig(warmup_iters=-1)
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="grad_accum_steps"):
        TrainConfig(grad_accum_steps=0)
    assert TrainConfig.from_dict(json.loads(json.dumps(quick_cfg().to_dict()))) == quick_cfg()


def test_optimizer_groups_decay_matrices_only():
    model = TinyLM(TinyConfig(tie_weights=True))
    opt = configure_optimizer(model, weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device="cpu")
    assert isinstance(opt, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = ({names[id(p)] for p in g["params"]} for g in opt.param_groups)
    assert decay == {"embed_tokens.weight", "embed_positions.weight", "up_proj.weight", "down_proj.weight"}
    assert no_decay == {"norm.weight", "norm.bias", "up_proj.bias", "down_proj.bias"}
    assert model.lm_head.weight is model.embed_tokens.weight  # tied: counted once, in decay
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert opt.param_groups[0]["betas"] == (0.9, 0.95) and not opt.param_groups[0]["fused"]


# ---------------------------------------------------------------- the trainer
def _trained(cfg: TrainConfig, model_seed: int = 0, dtype=torch.float32, **kw) -> tuple[Trainer, History]:
    torch.manual_seed(model_seed)
    model = TinyLM(TinyConfig()).to(dtype)
    trainer = Trainer(model, markov_tokens(3000), markov_tokens(600, seed=1), cfg, device="cpu", **kw)
    return trainer, trainer.fit()


def test_gradient_accumulation_equals_one_big_batch():
    big, _ = _trained(quick_cfg(max_iters=3, batch_size=16, eval_interval=100), dtype=torch.float64)
    accum, _ = _trained(quick_cfg(max_iters=3, batch_size=4, grad_accum_steps=4, eval_interval=100),
                        dtype=torch.float64)
    small, _ = _trained(quick_cfg(max_iters=3, batch_size=4, eval_interval=100), dtype=torch.float64)
    for (name, a), b, c in zip(big.raw_model.named_parameters(), accum.raw_model.parameters(),
                               small.raw_model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12, msg=name)
    assert any(not torch.allclose(a, c) for a, c in zip(big.raw_model.parameters(), small.raw_model.parameters()))


def test_fit_records_history_and_calls_back(capsys):
    seen: list[EvalRecord] = []
    cfg = quick_cfg(max_iters=30, eval_interval=10, grad_clip=0.5)
    trainer, history = _trained(cfg, callbacks=[lambda tr, rec: seen.append(rec)])
    assert capsys.readouterr() == ("", "")  # progress=False: nothing printed
    assert history.iters == [0, 10, 20, 30] and trainer.step == 30
    assert [r.step for r in seen] == history.iters and [r.val_loss for r in seen] == history.val_loss
    assert history.lr == [cfg.lr_at(0), cfg.lr_at(9), cfg.lr_at(19), cfg.lr_at(29)]
    assert history.val_perplexity == pytest.approx([math.exp(v) for v in history.val_loss])
    assert history.val_loss[-1] < history.val_loss[0] - 0.5  # it learned the Markov chain
    assert history.best_val_loss == min(history.val_loss) and not history.stopped_early
    assert all(t > 0 for t in history.tokens_per_sec[1:]) and history.elapsed_s == sorted(history.elapsed_s)
    assert json.loads(json.dumps(history.to_dict())) == history.to_dict()
    assert History.from_dict(history.to_dict()) == history


def test_early_stopping_on_rising_validation_loss():
    torch.manual_seed(0)
    train, val = markov_tokens(3000, step=1, noise=0.0), markov_tokens(600, step=-1, noise=0.0)
    cfg = quick_cfg(max_iters=200, eval_interval=5, early_stopping_patience=2)
    history = Trainer(TinyLM(TinyConfig()), train, val, cfg, device="cpu").fit()  # learns +1, validated on -1
    assert history.stopped_early and history.iters[-1] < cfg.max_iters
    best_at = history.val_loss.index(min(history.val_loss))
    assert len(history.val_loss) - 1 - best_at == 3  # stopped at the third evaluation without a new best
    assert history.val_loss[-1] > history.val_loss[0]  # validation got worse while training improved
    assert history.train_loss[-1] < history.train_loss[0]


def test_progress_bar_shows_the_losses(capsys):
    _trained(quick_cfg(max_iters=4, eval_interval=2, log_every=1, progress=True))
    out, err = capsys.readouterr()
    assert out == "" and "training" in err and "val=" in err and "4/4" in err  # tqdm writes to stderr


def test_request_stop_from_a_callback_ends_the_run():
    cfg = quick_cfg(max_iters=100, eval_interval=4)
    trainer, history = _trained(cfg, callbacks=[lambda tr, rec: rec.step >= 8 and tr.request_stop()])
    assert trainer.step == 8 and history.iters == [0, 4, 8] and not history.stopped_early


def test_finishing_is_true_at_the_last_evaluation_only():
    def last_flags(cfg: TrainConfig, stop_at: int | None = None, train=None, val=None) -> list[tuple[int, bool]]:
        seen: list[tuple[int, bool]] = []

        def callback(tr: Trainer, rec: EvalRecord) -> None:
            if rec.step == stop_at:
                tr.request_stop()
            seen.append((rec.step, tr.finishing))

        torch.manual_seed(0)
        train = markov_tokens(3000) if train is None else train
        val = markov_tokens(600, seed=1) if val is None else val
        Trainer(TinyLM(TinyConfig()), train, val, cfg, device="cpu", callbacks=[callback]).fit()
        return seen

    assert last_flags(quick_cfg(max_iters=8, eval_interval=4)) == [(0, False), (4, False), (8, True)]
    assert last_flags(quick_cfg(max_iters=100, eval_interval=4), stop_at=4) == [(0, False), (4, True)]
    rising = last_flags(quick_cfg(max_iters=200, eval_interval=5, early_stopping_patience=2),
                        train=markov_tokens(3000, step=1, noise=0.0), val=markov_tokens(600, step=-1, noise=0.0))
    assert rising[-1][1] and not any(flag for _, flag in rising[:-1]) and rising[-1][0] < 200


def test_mixed_precision_settings_on_cpu():
    trainer, history = _trained(quick_cfg(max_iters=4, dtype="bfloat16"))
    assert trainer.ptdtype == torch.bfloat16 and not trainer.scaler.is_enabled()
    assert all(p.dtype == torch.float32 for p in trainer.raw_model.parameters())  # master weights stay fp32
    assert all(math.isfinite(v) for v in history.val_loss)
    auto, _ = _trained(quick_cfg(max_iters=1))
    assert auto.ptdtype == torch.float32  # "auto" on a CPU
    half, history = _trained(quick_cfg(max_iters=4, dtype="float16"))
    assert half.scaler.is_enabled() and all(math.isfinite(v) for v in history.val_loss)


def test_trainer_rejects_a_window_longer_than_the_model():
    with pytest.raises(ValueError, match="block_size"):
        Trainer(TinyLM(TinyConfig()), markov_tokens(100), markov_tokens(100), quick_cfg(block_size=16))


def test_history_plot_returns_a_figure():
    _, history = _trained(quick_cfg(max_iters=8))
    fig = history.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()][:2] == ["train", "validation"]
    assert list(ax.get_lines()[1].get_ydata()) == history.val_loss
    import matplotlib.pyplot as plt

    fig2, given = plt.subplots()
    assert history.plot(ax=given) is fig2
    plt.close(fig2)


# ---------------------------------------------------------------- torch.compile
def test_compiled_training_matches_eager():
    eager, h_eager = _trained(quick_cfg(max_iters=6, eval_interval=3))
    compiled, h_compiled = _trained(quick_cfg(max_iters=6, eval_interval=3, compile=True))
    assert compiled.model is not compiled.raw_model  # the steps really ran compiled
    torch.testing.assert_close(h_compiled.val_loss, h_eager.val_loss,
                               rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(eager.raw_model.named_parameters(), compiled.raw_model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


def test_a_failing_compile_falls_back_to_the_same_eager_run(monkeypatch):
    class Broken(nn.Module):  # what torch.compile gives where it cannot build the step: fails on first use
        def __init__(self, model):
            super().__init__()
            self.inner = model

        def forward(self, *args, **kwargs):
            self.inner(*args, **kwargs)  # half a forward pass, then the compiler fails
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda model, **kw: Broken(model))
    eager, h_eager = _trained(quick_cfg(max_iters=6, eval_interval=3))
    with pytest.warns(RuntimeWarning, match="torch.compile failed on the first step .*InvalidCxxCompiler"):
        fallen, h_fallen = _trained(quick_cfg(max_iters=6, eval_interval=3, compile=True))
    assert fallen.model is fallen.raw_model
    assert h_fallen.val_loss == h_eager.val_loss  # the same batches
    for (name, a), b in zip(eager.raw_model.named_parameters(), fallen.raw_model.parameters()):
        assert torch.equal(a, b), name


def test_a_real_error_on_a_compiled_step_is_not_hidden(monkeypatch):
    class FailsInTraining(TinyLM):  # a bug of the model's own, met on the first training step
        def forward(self, idx, targets=None):
            if self.training:
                raise ValueError("a bug in the model")
            return super().forward(idx, targets)

    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)  # compiles to itself: errors are the model's
    trainer = Trainer(FailsInTraining(TinyConfig()), markov_tokens(3000), markov_tokens(600, seed=1),
                      quick_cfg(compile=True), device="cpu")
    bug = "a bug in the model"
    with pytest.warns(RuntimeWarning, match=bug), pytest.raises(ValueError, match=bug):
        trainer.fit()  # tried compiled, then uncompiled: the same error, raised
