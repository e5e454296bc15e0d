"""course_lib.muon against references written here independently: the Newton-Schulz
iteration as a polynomial of the singular values (through an SVD, in float64), a Muon step
written as plain tensor arithmetic, and torch.optim.AdamW for the AdamW groups."""

from __future__ import annotations

import pytest
import torch

from course_lib.model import GPT, GPTConfig
from course_lib.muon import NS_COEFFS, Muon, muon_param_groups, newton_schulz
from course_lib.schedule import TrainConfig, configure_optimizer
from course_lib.trainer import Trainer


def svd_reference(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """X_{k+1} = a X + b X X^T X + c (X X^T)^2 X keeps X's singular vectors and maps each
    singular value s to a s + b s^3 + c s^5: apply that to the SVD directly."""
    a, b, c = NS_COEFFS
    u, s, vh = torch.linalg.svd(g.double(), full_matrices=False)
    s = s / (torch.linalg.matrix_norm(g.double()) + 1e-7)  # Frobenius normalisation (eps for a zero matrix)
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return u @ torch.diag(s) @ vh


@pytest.mark.parametrize("shape", [(16, 16), (8, 24), (40, 12)])
def test_newton_schulz_is_the_singular_value_polynomial(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    out = newton_schulz(g)
    assert out.shape == g.shape and out.dtype == g.dtype
    torch.testing.assert_close(out.double(), svd_reference(g), atol=2e-5, rtol=1e-4)


def test_newton_schulz_output_is_nearly_orthogonal():
    g = torch.randn(64, 128, generator=torch.Generator().manual_seed(1))
    s = torch.linalg.svdvals(newton_schulz(g))
    assert 0.6 < s.min() and s.max() < 1.25  # the quintic trades exactness for speed
    s0 = torch.linalg.svdvals(g)
    assert s0.max() / s0.min() > 5  # the input's spread was large: the iteration flattened it


def test_newton_schulz_batches_equal_one_at_a_time():
    g = torch.randn(3, 12, 20, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(newton_schulz(g), torch.stack([newton_schulz(m) for m in g]))


def test_newton_schulz_refuses_a_vector():
    with pytest.raises(ValueError, match="orthogonalises a matrix"):
        newton_schulz(torch.ones(5))


def _tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.modern(vocab_size=11, n_layer=2, n_head=2, n_embd=16, block_size=8))


def _loss(model: GPT, seed: int) -> torch.Tensor:
    x = torch.randint(0, 11, (4, 8), generator=torch.Generator().manual_seed(seed))
    return model(x[:, :-1], x[:, 1:])[1]


def test_param_groups_split_blocks_from_embeddings_and_vectors():
    model = _tiny_gpt()
    muon, adam_matrices, vectors = muon_param_groups(model, weight_decay=0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].startswith("layers.") and p.dim() == 2 for p in muon["params"])
    assert [names[id(p)] for p in adam_matrices["params"]] == ["embed_tokens.weight"]  # tied with lm_head
    assert all(p.dim() == 1 for p in vectors["params"]) and vectors["weight_decay"] == 0.0
    n = sum(len(g["params"]) for g in (muon, adam_matrices, vectors))
    assert n == len(list(model.parameters()))


def test_two_muon_steps_match_plain_arithmetic():
    """Two steps (so the momentum matters) of Muon against the update rule written out here."""
    lr, muon_lr, beta, wd = 1e-3, 0.02, 0.95, 0.1
    model, ref = _tiny_gpt(), _tiny_gpt()
    opt = Muon(muon_param_groups(model, wd)[:1], lr=lr, muon_lr=muon_lr, momentum=beta)  # the Muon group only
    ref_params = dict(ref.named_parameters())
    hidden = {n for n, p in ref_params.items() if n.startswith("layers.") and p.dim() == 2}
    momentum = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in ref_params.items()}
    for step in (0, 1):
        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()
        ref.zero_grad()
        _loss(ref, step).backward()
        with torch.no_grad():
            for n in hidden:
                p = ref_params[n]
                g = p.grad.double()
                momentum[n] = beta * momentum[n] + (1 - beta) * g
                direction = (1 - beta) * g + beta * momentum[n]
                scale = max(1.0, p.shape[0] / p.shape[1]) ** 0.5
                new = p.double() * (1 - muon_lr * wd) - muon_lr * scale * svd_reference(direction)
                p.copy_(new.float())
    for n in hidden:
        torch.testing.assert_close(dict(model.named_parameters())[n], ref_params[n], atol=2e-6, rtol=0)  # steps ~5e-3


def test_adamw_groups_follow_torch_adamw():
    model, ref = _tiny_gpt(), _tiny_gpt()
    groups = muon_param_groups(model, weight_decay=0.1)
    opt = Muon(groups[1:], lr=1e-2, betas=(0.9, 0.99))  # the AdamW groups only: both models move the same
    ref_groups = muon_param_groups(ref, weight_decay=0.1)[1:]  # the AdamW groups only
    ref_opt = torch.optim.AdamW([{"params": g["params"], "weight_decay": g["weight_decay"]} for g in ref_groups],
                                lr=1e-2, betas=(0.9, 0.99))
    for step in range(3):
        for m, o in ((model, opt), (ref, ref_opt)):
            o.zero_grad()
            _loss(m, step).backward()
            o.step()
    adam_ids = {id(p) for g in groups[1:] for p in g["params"]}
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        if id(p) in adam_ids:
            torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=n)


def test_muon_refuses_a_vector_in_a_muon_group():
    with pytest.raises(ValueError, match="matrices only"):
        Muon([{"params": [torch.nn.Parameter(torch.ones(4))], "use_muon": True}])


def test_muon_needs_blocks():
    with pytest.raises(ValueError, match="model.layers"):
        muon_param_groups(torch.nn.Linear(3, 3), weight_decay=0.1)


def test_trainer_runs_muon_groups_at_the_scaled_schedule():
    model = _tiny_gpt()
    data = torch.randint(0, 11, (400,), generator=torch.Generator().manual_seed(3))
    cfg = TrainConfig(max_iters=6, batch_size=4, lr=1e-3, min_lr=1e-4, warmup_iters=2, eval_interval=6,
                      eval_iters=2, optimizer="muon", muon_lr=0.02, progress=False)
    trainer = Trainer(model, data, data, cfg, device="cpu")
    history = trainer.fit()
    assert isinstance(trainer.optimizer, Muon)
    lrs = {g["use_muon"]: g["lr"] for g in trainer.optimizer.param_groups}
    last = cfg.lr_at(cfg.max_iters - 1)
    assert lrs[False] == pytest.approx(last) and lrs[True] == pytest.approx(last * 20)
    assert all(v == v and v < 3.0 for v in history.val_loss)  # finite, no blow-up (ln 11 = 2.40 at the start)


def test_config_errors_name_the_field():
    with pytest.raises(Exception, match="optimizer") as err:
        TrainConfig(optimizer="sgd")
    assert err.value.fields == ("optimizer",)
    with pytest.raises(Exception, match="muon_lr"):
        TrainConfig(muon_lr=0.0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        configure_optimizer(_tiny_gpt(), 0.1, 1e-3, (0.9, 0.95), optimizer="lion")
