"""Tests for course_lib.model.generation: settings, KV-cache, sampling filters, eos, beam search."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.model import (
    GPT,
    GPTConfig,
    KVCache,
    SamplingError,
    SamplingSettings,
    filter_logits,
    next_token_probs,
    sample_next,
)
from course_lib.model import kv_cache


# init_std=0.3 makes the next-token distributions peaked, so greedy text is not one repeated token
TINY = dict(vocab_size=29, block_size=16, n_layer=2, n_head=4, n_embd=32, init_std=0.3)
CONFIGS = {
    "classic": GPTConfig.classic(**TINY),
    "modern": GPTConfig.modern(**TINY),
    "sinusoidal": GPTConfig(**TINY, pos_encoding="sinusoidal"),
}


def make(name: str, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(CONFIGS[name]).eval()


@pytest.mark.parametrize("name", CONFIGS)
def test_incremental_forward_with_cache_matches_full_forward(name):
    model = make(name)
    idx = torch.randint(0, 29, (2, 12))
    full, _ = model(idx)  # (2, 12, V)
    cache = KVCache.for_model(model, batch=2)
    chunks = [idx[:, :4], idx[:, 4:5], idx[:, 5:6], idx[:, 6:9], idx[:, 9:12]]  # prefill, singles, chunks
    pieces = [model(chunk, kv_cache=cache)[0] for chunk in chunks]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 12
    with pytest.raises(ValueError, match="exceed block_size"):
        model(idx[:, :5], kv_cache=cache)  # 12 + 5 > 16


@pytest.mark.parametrize("name", CONFIGS)
def test_cached_and_uncached_greedy_agree_past_block_size(name):
    model = make(name)
    idx = torch.randint(0, 29, (2, 5))
    cached = model.generate(idx, 30, temperature=0, use_cache=True)  # 35 tokens > block_size 16
    uncached = model.generate(idx, 30, temperature=0, use_cache=False)
    assert cached.shape == (2, 35)
    assert torch.equal(cached, uncached)
    assert len(set(cached[:, 5:].flatten().tolist())) >= 4  # varied text, so a mismatch would show
    # the reference: a plain loop that feeds the last block_size tokens every step
    seq = idx
    for _ in range(30):
        logits, _ = model(seq[:, -16:])
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(cached, seq)


def test_stream_yields_the_generated_tokens():
    model = make("modern")
    idx = torch.randint(0, 29, (1, 3))
    stream = model.generate_stream(idx, 8, temperature=0)
    first = next(stream)
    assert torch.is_grad_enabled()  # between tokens the caller's grad mode is back in force
    streamed = torch.stack([first, *stream], dim=1)  # (1, 8)
    assert torch.equal(torch.cat([idx, streamed], dim=1), model.generate(idx, 8, temperature=0))


def test_eos_stops_each_row_independently():
    model = make("classic")
    idx = torch.randint(0, 29, (3, 4))
    free = model.generate(idx, 12, temperature=0)  # no eos: the reference continuation
    eos = int(free[0, 4 + 2])  # row 0 reaches this token at its 3rd new token
    out = model.generate(idx, 12, temperature=0, eos_id=eos)
    for row in range(3):
        new, ref = out[row, 4:].tolist(), free[row, 4:].tolist()
        stop = ref.index(eos) if eos in ref else len(ref)
        assert new[: stop + 1] == ref[: stop + 1]  # identical up to and including eos
        assert all(t == eos for t in new[stop:])  # then padded with eos
    all_stop = [r.index(eos) if eos in r else 12 for r in free[:, 4:].tolist()]
    assert out.size(1) == 4 + min(12, max(all_stop) + 1)  # ends once every row has stopped


def test_sampling_is_reproducible_with_a_generator():
    model = make("modern")
    idx = torch.zeros(2, 1, dtype=torch.long)
    runs = [model.generate(idx, 20, top_k=10, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_generate_restores_training_mode_and_disables_dropout():
    torch.manual_seed(0)
    model = GPT(GPTConfig.classic(**{**TINY, "dropout": 0.5})).train()
    idx = torch.randint(0, 29, (1, 4))
    a = model.generate(idx, 10, temperature=0)
    b = model.generate(idx, 10, temperature=0)
    assert torch.equal(a, b) and model.training


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=-1.0), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
    ],
)
def test_generate_rejects_bad_settings(kwargs, message):
    model = make("classic")
    with pytest.raises(ValueError, match=message):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 3, **kwargs)
    with pytest.raises(ValueError, match=r"ids\[None\]"):
        model.generate(torch.zeros(5, dtype=torch.long), 3)
    with pytest.raises(ValueError, match=message):  # raised at the call, before any token
        model.generate_stream(torch.zeros(1, 1, dtype=torch.long), 3, **kwargs)


def test_kv_cache_has_its_own_module():
    assert KVCache is kv_cache.KVCache and KVCache.__module__ == "course_lib.model.kv_cache"
    model = make("modern")
    cache = KVCache.for_model(model, batch=3)
    assert cache.k.shape == (2, 3, model.config.kv_heads, 16, 8) and "length=0 of max_len=16" in repr(cache)


# --- sampling settings ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "setting, value",
    [
        ("temperature", float("nan")),
        ("temperature", float("inf")),
        ("temperature", -0.5),
        ("temperature", "0.8"),
        ("top_k", 0),
        ("top_k", 2.5),
        ("top_k", True),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_p", float("nan")),
        ("max_new_tokens", -1),
        ("max_new_tokens", 3.0),
        ("eos_id", -1),
        ("use_cache", "yes"),
    ],
)
def test_settings_refuse_bad_values_naming_the_setting(setting, value):
    with pytest.raises(SamplingError) as err:
        SamplingSettings(**{setting: value})
    assert isinstance(err.value, ValueError) and err.value.setting == setting and err.value.value is value
    assert str(err.value).startswith(f"{setting} must be ") and f"got {value!r}." in str(err.value)
    with pytest.raises(SamplingError, match=setting):  # a changed copy is checked again
        dataclasses.replace(SamplingSettings(), **{setting: value})
    with pytest.raises(SamplingError, match=setting):  # and so is a keyword of generate, before any token
        make("classic").generate_stream(torch.zeros(1, 1, dtype=torch.long), **{setting: value})


def test_settings_are_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        SamplingSettings(100, 0.8)  # type: ignore[misc]
    s = SamplingSettings(temperature=0.8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.temperature = 0.5  # type: ignore[misc]
    assert SamplingSettings(top_k=3, top_p=1.0, eos_id=0) == SamplingSettings(top_k=3, top_p=1.0, eos_id=0)


def test_generate_takes_a_settings_object_or_its_fields_as_keywords():
    model = make("modern")
    idx = torch.randint(0, 29, (2, 3))
    seeded = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    by_keywords = model.generate(idx, 12, temperature=0.7, top_k=5, generator=seeded())
    settings = SamplingSettings(max_new_tokens=12, temperature=0.7, top_k=5)
    assert torch.equal(model.generate(idx, settings=settings, generator=seeded()), by_keywords)
    # keywords and max_new_tokens replace the object's values
    greedy = model.generate(idx, 4, settings=settings, temperature=0)
    assert torch.equal(greedy, model.generate(idx, settings=SamplingSettings(max_new_tokens=4, temperature=0)))
    assert greedy.shape == (2, 7)
    with pytest.raises(TypeError, match="temprature.*the settings are max_new_tokens, temperature"):
        model.generate(idx, 3, temprature=0.5)
    with pytest.raises(TypeError, match="SamplingSettings"):
        model.generate(idx, settings={"temperature": 0.5})


def test_tiny_temperatures_are_the_greedy_limit_without_nan():
    # logits / 1e-36 overflows float32 (3.4e38): inf - inf is NaN. The limit T -> 0 is the argmax one-hot.
    logits = torch.tensor([[1e4, 2e4, -3e4, 1.5e4], [0.0, -1.0, 0.5, 0.25]])
    argmax = torch.tensor([1, 2])
    for t in (1e-45, 1e-38, 1e-36, 1e-20):
        probs = next_token_probs(logits, temperature=t)
        assert torch.equal(probs, F.one_hot(argmax, 4).float()), t
        assert torch.equal(sample_next(logits, temperature=t, top_p=0.9), argmax)
    # an ordinary temperature is plain softmax(logits / T), here against torch in float64
    torch.testing.assert_close(next_token_probs(logits[1:], 0.7), (logits[1:].double() / 0.7).softmax(-1).float())
    model = make("classic")
    idx = torch.randint(0, 29, (2, 4))
    assert torch.equal(model.generate(idx, 10, temperature=1e-45), model.generate(idx, 10, temperature=0))


def test_token_ids_outside_the_vocabulary_are_named():
    model = make("modern")  # vocab_size 29
    for bad in (29, -1):
        ids = torch.tensor([[0, 5, bad]])
        with pytest.raises(ValueError, match=rf"idx holds token id {bad}, .*vocab_size=29 ids \(0 to 28\)"):
            model(ids)
        with pytest.raises(ValueError, match=rf"the prompt holds token id {bad}"):  # at the call, before any token
            model.generate_stream(ids, 3)
        with pytest.raises(ValueError, match=rf"the prompt holds token id {bad}"):
            model.beam_search(ids, 3)
    with pytest.raises(SamplingError, match="eos_id must be a token id below vocab_size=29"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 3, eos_id=29)


# --- sampling filters --------------------------------------------------------------------
PROBS = torch.tensor([[0.15, 0.5, 0.05, 0.3]])  # sorted: 0.5 (1), 0.3 (3), 0.15 (0), 0.05 (2)


@pytest.mark.parametrize("p, kept", [(0.01, {1}), (0.5, {1}), (0.75, {1, 3}), (0.85, {0, 1, 3}), (1.0, {0, 1, 2, 3})])
def test_top_p_keeps_the_smallest_set_reaching_p(p, kept):
    out = filter_logits(PROBS.log(), top_p=p)
    assert set(torch.isfinite(out[0]).nonzero().flatten().tolist()) == kept


def test_top_p_and_top_k_match_a_brute_force_rule():
    torch.manual_seed(0)
    logits = torch.randn(50, 12)
    for p in (0.3, 0.6, 0.9):
        out = filter_logits(logits, top_p=p)
        for row, probs in zip(out, logits.softmax(-1)):
            order = sorted(range(12), key=lambda i: -probs[i].item())
            expected, mass = set(), 0.0
            for i in order:  # add tokens, most likely first, until the mass reaches p
                expected.add(i)
                mass += probs[i].item()
                if mass >= p:
                    break
            assert set(torch.isfinite(row).nonzero().flatten().tolist()) == expected
    out = filter_logits(logits, top_k=3)
    assert torch.equal(torch.isfinite(out), logits >= logits.topk(3).values[:, -1:])
    torch.testing.assert_close(out[torch.isfinite(out)], logits[torch.isfinite(out)])


def test_sample_frequencies_follow_the_filtered_distribution():
    gen = torch.Generator().manual_seed(0)
    logits = PROBS.log().expand(20000, 4)
    counts = lambda ids: torch.bincount(ids, minlength=4).float() / ids.numel()  # noqa: E731
    top2 = counts(sample_next(logits, top_k=2, generator=gen))
    torch.testing.assert_close(top2, torch.tensor([0.0, 0.625, 0.0, 0.375]), atol=0.015, rtol=0)
    cold = counts(sample_next(logits, temperature=0.5, generator=gen))  # p**2, renormalized
    torch.testing.assert_close(cold, PROBS[0] ** 2 / (PROBS[0] ** 2).sum(), atol=0.015, rtol=0)
    assert torch.equal(sample_next(logits[:3], temperature=0), torch.ones(3, dtype=torch.long))


# --- beam search --------------------------------------------------------------------------
def sequence_logprob(model: GPT, prompt: torch.Tensor, new: list[int]) -> float:
    """log P(new | prompt) from one full forward pass: an independent scorer."""
    seq = torch.cat([prompt, torch.tensor([new])], dim=1)
    logp = F.log_softmax(model(seq)[0][0], dim=-1)  # (L, V)
    T = prompt.size(1)
    return sum(logp[T - 1 + i, tok].item() for i, tok in enumerate(new))


def brute_force_best(model: GPT, prompt: torch.Tensor, n: int) -> tuple[list[int], float]:
    V = model.config.vocab_size
    scored = [(sequence_logprob(model, prompt, list(s)), list(s)) for s in itertools.product(range(V), repeat=n)]
    best = max(scored)
    return best[1], best[0]


def test_beam_with_one_beam_is_greedy():
    model = make("modern")
    idx = torch.randint(0, 29, (2, 3))
    assert torch.equal(model.beam_search(idx, 20, num_beams=1), model.generate(idx, 20, temperature=0))


def test_exhaustive_beam_finds_the_brute_force_optimum():
    torch.manual_seed(1)
    model = GPT(GPTConfig.modern(vocab_size=5, block_size=8, n_layer=1, n_head=2, n_embd=16, init_std=0.5)).eval()
    prompt = torch.tensor([[0, 3]])
    best, _ = brute_force_best(model, prompt, 3)
    out = model.beam_search(prompt, 3, num_beams=25)  # 25 = 5**2 beams keep every prefix
    assert out[0, 2:].tolist() == best


def bigram_model(table: torch.Tensor) -> GPT:
    """A GPT whose next-token distribution is table[last token]: blocks silenced, lm_head solved for."""
    V = table.size(0)
    cfg = GPTConfig.classic(vocab_size=V, block_size=8, n_layer=1, n_head=1, n_embd=16, tie_weights=False)
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    with torch.no_grad():
        block = model.layers[0]
        for linear in (block.self_attn.o_proj, block.mlp.down_proj):  # the block adds nothing
            linear.weight.zero_()
            linear.bias.zero_()
        model.embed_positions.weight.zero_()
        h = model.norm(model.embed_tokens.weight)  # (V, C): final hidden state for each last token
        model.lm_head.weight.copy_((torch.linalg.pinv(h) @ table.log()).T)  # h @ W.T = log table
    return model


def test_beam_beats_greedy_on_a_hand_built_trap():
    # from 0 the likeliest token is 1 (0.5) but 1 leads nowhere (uniform); 2 (0.4) leads to 3 (0.94)
    table = torch.tensor(
        [[0.05, 0.50, 0.40, 0.05], [0.25, 0.25, 0.25, 0.25], [0.02, 0.02, 0.02, 0.94], [0.70, 0.10, 0.10, 0.10]]
    )
    model = bigram_model(table)
    prompt = torch.tensor([[0]])
    assert torch.allclose(model(prompt)[0][0, -1].softmax(-1), table[0], atol=1e-4)  # the trap is built
    greedy = model.generate(prompt, 2, temperature=0)[0, 1:].tolist()
    beam = model.beam_search(prompt, 2, num_beams=2)[0, 1:].tolist()
    best, best_logprob = brute_force_best(model, prompt, 2)
    assert greedy[0] == 1 and beam == best == [2, 3]
    assert sequence_logprob(model, prompt, beam) == pytest.approx(math.log(0.4 * 0.94), abs=1e-3)
    assert sequence_logprob(model, prompt, beam) > sequence_logprob(model, prompt, greedy) + 0.5


def test_beam_search_stops_at_eos_and_pads():
    table = torch.tensor(
        [[0.05, 0.50, 0.40, 0.05], [0.25, 0.25, 0.25, 0.25], [0.02, 0.02, 0.02, 0.94], [0.70, 0.10, 0.10, 0.10]]
    )
    model = bigram_model(table)
    out = model.beam_search(torch.tensor([[0], [2]]), 4, num_beams=2, eos_id=3)
    # row 1 ("2"): eos follows with 0.94, so the best hypothesis is just [3]; it is padded with eos
    assert out[1, 1:].tolist() == [3] * (out.size(1) - 1)
    # row 0: 0 -> 2 -> 3 (0.4 * 0.94, mean log-prob -0.49) beats every longer hypothesis
    assert out[0, 1:3].tolist() == [2, 3] and out.size(1) == 3
