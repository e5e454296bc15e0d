"""Tests for course_lib.mlp_lm: the lookup-table first layer against the textbook concatenation,
left padding, locality of the context, and exact scoring against evaluate_perplexity."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.batches import evaluate_perplexity
from course_lib.mlp_lm import MLPLM, MLPLMConfig, context_windows, score_tokens


def _model(direct: bool = False, seed: int = 0, **kw) -> MLPLM:
    torch.manual_seed(seed)
    cfg = MLPLMConfig(**{"vocab_size": 11, "context_size": 3, "n_embd": 4, "hidden_size": 16, "direct": direct, **kw})
    model = MLPLM(cfg)
    with torch.no_grad():  # move every weight away from its (partly zero) initialisation
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def _textbook_logits(model: MLPLM, ctx: torch.Tensor) -> torch.Tensor:
    """Bengio et al.'s formula written out: concatenate the embeddings, tanh layer, output layer."""
    x = model.embed_tokens.weight[ctx].flatten(-2)  # (..., n*d)
    h = torch.tanh(x @ model.hidden.weight.T + model.hidden.bias)  # (..., H)
    out = h @ model.lm_head.weight.T + model.lm_head.bias  # (..., V)
    return out if model.direct is None else out + x @ model.direct.weight.T


def test_context_windows_pad_on_the_left() -> None:
    idx = torch.tensor([[5, 6, 7, 8], [1, 2, 3, 4]])
    got = context_windows(idx, 3, pad_id=0)
    assert got.shape == (2, 4, 3)
    assert got[0].tolist() == [[0, 0, 5], [0, 5, 6], [5, 6, 7], [6, 7, 8]]
    assert got[1, 3].tolist() == [2, 3, 4]
    with pytest.raises(ValueError, match="batch dimension"):
        context_windows(torch.tensor([1, 2, 3]), 2, pad_id=0)


@pytest.mark.parametrize("direct", [False, True])
def test_lookup_table_first_layer_equals_the_concatenation(direct: bool) -> None:
    model = _model(direct)
    ctx = torch.randint(0, 12, (5, 7, 3), generator=torch.Generator().manual_seed(1))  # 11 = the padding id
    ours, ref = model.context_logits(ctx), _textbook_logits(model, ctx)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad((ours * torch.linspace(-1, 1, 11)).sum(), list(model.parameters()))
    ref_grads = torch.autograd.grad((ref * torch.linspace(-1, 1, 11)).sum(), list(model.parameters()))
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5, msg=name)


def test_forward_predicts_each_position_from_its_window_and_averages_the_loss() -> None:
    model = _model()
    idx = torch.randint(0, 11, (2, 6), generator=torch.Generator().manual_seed(2))
    targets = torch.randint(0, 11, (2, 6), generator=torch.Generator().manual_seed(3))
    logits, loss = model(idx, targets)
    assert logits.shape == (2, 6, 11)
    for b in range(2):
        for t in range(6):
            window = [11] * max(0, 2 - t) + idx[b, max(0, t - 2) : t + 1].tolist()  # pad id 11
            expected = _textbook_logits(model, torch.tensor(window))
            torch.testing.assert_close(logits[b, t], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1)))
    assert model(idx)[1] is None


def test_only_the_last_context_size_tokens_matter() -> None:
    model = _model()
    idx = torch.randint(0, 11, (1, 10), generator=torch.Generator().manual_seed(4))
    changed = idx.clone()
    changed[0, :4] = (changed[0, :4] + 1) % 11  # tokens 0..3 are outside the windows of positions >= 6
    a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[0, 6:], b[0, 6:])
    assert not torch.allclose(a[0, :6], b[0, :6])


def test_score_tokens_equals_one_window_evaluate_perplexity_and_a_hand_loop() -> None:
    model = _model()
    data = torch.randint(0, 11, (50,), generator=torch.Generator().manual_seed(5))
    logp = score_tokens(model, data, batch_size=7)  # several batches
    assert logp.shape == (49,) and logp.dtype == torch.float64
    ppl = evaluate_perplexity(model, data, block_size=49, batch_size=1)  # one window: full contexts
    assert ppl.n_tokens == 49
    assert -logp.mean().item() == pytest.approx(ppl.loss, rel=1e-6)
    t = 20  # by hand: character 20 from characters 17, 18, 19
    expected = F.log_softmax(_textbook_logits(model, data[17:20]).double(), -1)[data[20]]
    assert logp[t - 1].item() == pytest.approx(expected.item(), rel=1e-5)


def test_short_windows_score_the_same_targets_with_less_context() -> None:
    model = _model()
    data = torch.randint(0, 11, (61,), generator=torch.Generator().manual_seed(6))
    full = -score_tokens(model, data).mean().item()
    windowed = evaluate_perplexity(model, data, block_size=4, batch_size=8)
    assert windowed.n_tokens == 60 and windowed.loss != pytest.approx(full, rel=1e-6)


def test_a_model_with_zero_output_layer_scores_ln_v() -> None:
    model = _model()
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
    assert -score_tokens(model, torch.arange(11)).mean().item() == pytest.approx(math.log(11))


def test_dropout_acts_only_in_training_mode() -> None:
    model = _model(dropout=0.5)
    idx = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(7))
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="context_size"):
        MLPLMConfig(context_size=0)
    with pytest.raises(ValueError, match="dropout"):
        MLPLMConfig(dropout=1.0)
    model = _model()
    with pytest.raises(ValueError, match="0..10"):
        model(torch.tensor([[3, 11]]))
    with pytest.raises(ValueError, match="1-D"):
        score_tokens(model, torch.tensor([[1, 2, 3]]))
