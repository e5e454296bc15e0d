"""Tests for course_lib.ngram: hand-worked counts, closed forms and a torch reference."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.ngram import SMOOTHINGS, NGramModel

NAMES = ["emma", "ava", "olivia", "mia", "amelia", "liam", "noah", "oliver", "elijah", "eva", "leo", "mila"]


def _toy_text(n: int = 400, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(list("abcd"), size=n, p=[0.4, 0.3, 0.2, 0.1]))


def _all_contexts(vocab: list, max_len: int):
    for length in range(max_len + 1):
        yield from itertools.product(vocab, repeat=length)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3])
def test_distribution_sums_to_one_for_every_context_continuous(smoothing: str, order: int) -> None:
    text = _toy_text()
    model = NGramModel(order, smoothing=smoothing, k=0.5).fit(text[:60], vocab="abcde")  # 'e' never seen
    for context in _all_contexts(model.vocab, order - 1):  # seen and unseen ones (all with 'e')
        p = model.distribution(context)
        assert p.shape == (5,)
        assert np.all(p >= 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12), context


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_distribution_sums_to_one_for_every_context_names(smoothing: str) -> None:
    model = NGramModel(3, smoothing=smoothing, k=0.1).fit(NAMES)
    for context in _all_contexts(model.vocab, 2):
        assert model.distribution(context).sum() == pytest.approx(1.0, abs=1e-12), context


def test_add_k_bigram_equals_hand_computed_fractions() -> None:
    # "..ab." style framing for a bigram: ".ab." and ".b." -> bigrams .a ab b. .b b.
    model = NGramModel(2, smoothing="add-k", k=1.0).fit(["ab", "b"])
    assert model.vocab == [".", "a", "b"]
    expected = {
        ".": [Fraction(0 + 1, 2 + 3), Fraction(1 + 1, 2 + 3), Fraction(1 + 1, 2 + 3)],
        "a": [Fraction(0 + 1, 1 + 3), Fraction(0 + 1, 1 + 3), Fraction(1 + 1, 1 + 3)],
        "b": [Fraction(2 + 1, 2 + 3), Fraction(0 + 1, 2 + 3), Fraction(0 + 1, 2 + 3)],
    }
    for context, row in expected.items():
        np.testing.assert_allclose(model.distribution(context), [float(f) for f in row], rtol=1e-12)
    assert model.prob("", "a") == pytest.approx(2 / 5)  # an empty context is the start of a name
    np.testing.assert_array_equal(model.counts("."), [0, 1, 1])
    np.testing.assert_array_equal(model.counts(), [2, 1, 2])  # unigrams of the predicted tokens


def test_add_k_k_half_and_unseen_context_is_uniform() -> None:
    model = NGramModel(2, smoothing="add-k", k=0.5).fit("aab")  # bigrams aa ab
    np.testing.assert_allclose(model.distribution("a"), [(1 + 0.5) / (2 + 1.0), (1 + 0.5) / (2 + 1.0)])
    np.testing.assert_allclose(model.distribution("b"), [0.5, 0.5])  # 'b' is never followed
    np.testing.assert_allclose(model.distribution(""), [(2 + 0.5) / (3 + 1.0), (1 + 0.5) / (3 + 1.0)])


def test_perplexity_of_uniform_model_is_vocab_size() -> None:
    uniform = NGramModel(1, smoothing="add-k", k=0.0).fit("abcde" * 20)
    assert uniform.perplexity("eeadcbbca") == pytest.approx(5.0, rel=1e-12)
    huge_k = NGramModel(3, smoothing="add-k", k=1e12).fit(_toy_text())
    assert huge_k.perplexity(_toy_text(seed=1)) == pytest.approx(4.0, rel=1e-6)


def test_bigram_mle_cross_entropy_matches_torch_nll_loss() -> None:
    model = NGramModel(2, smoothing="add-k", k=0.0).fit(NAMES)
    chars = sorted(set("".join(NAMES)))
    stoi = {c: i + 1 for i, c in enumerate(chars)} | {".": 0}
    xs, ys = [], []
    for name in NAMES:
        seq = ["."] + list(name) + ["."]
        for a, b in zip(seq, seq[1:]):
            xs.append(stoi[a])
            ys.append(stoi[b])
    V = len(stoi)
    N = torch.zeros(V, V, dtype=torch.float64)
    N.index_put_((torch.tensor(xs), torch.tensor(ys)), torch.ones(len(xs), dtype=torch.float64), accumulate=True)
    logp = (N / N.sum(1, keepdim=True).clamp(min=1)).log()  # (V, V)
    expected = F.nll_loss(logp[torch.tensor(xs)], torch.tensor(ys)).item()
    assert model.cross_entropy(NAMES) == pytest.approx(expected, rel=1e-12)
    assert len(model.token_log_probs(NAMES)) == sum(len(n) + 1 for n in NAMES)  # each token once


def test_kneser_ney_continuation_counts_and_probabilities_by_hand() -> None:
    # "abababcb": bigrams ab ba ab ba ab bc cb -> distinct: ab ba bc cb
    model = NGramModel(2, smoothing="kneser-ney", discount=0.75).fit("abababcb")
    np.testing.assert_array_equal(model.counts(), [3, 4, 1])  # raw unigram counts
    assert model.distinct_ngrams == [3, 4]  # a b c; ab ba bc cb
    assert model.stored_ngrams == 7  # what the results table lists as the model's size
    np.testing.assert_array_equal(model.continuation_counts(), [1, 2, 1])  # a<-{b}, b<-{a,c}, c<-{b}
    D = 0.75
    # unigram: max(N1+(.w) - D, 0) / 4 + D * 3 / 4 * 1/3
    p_uni = np.array([(1 - D) / 4, (2 - D) / 4, (1 - D) / 4]) + D * 3 / 4 / 3
    np.testing.assert_allclose(p_uni, [0.25, 0.5, 0.25])
    # after 'a' (seen 3 times, always followed by 'b': one type)
    expected_a = np.maximum(np.array([0, 3, 0]) - D, 0) / 3 + D * 1 / 3 * p_uni
    np.testing.assert_allclose(model.distribution("a"), expected_a, rtol=1e-12)
    assert model.prob("a", "b") == pytest.approx(0.875)
    # after 'b': ba twice, bc once -> two types
    expected_b = np.maximum(np.array([2, 0, 1]) - D, 0) / 3 + D * 2 / 3 * p_uni
    np.testing.assert_allclose(model.distribution("b"), expected_b, rtol=1e-12)


def test_kneser_ney_trigram_lower_order_uses_continuation_counts() -> None:
    # "xab yab zab xcd": 'ab' follows three different tokens, 'cd' one
    text = "xabyabzabxcd"
    model = NGramModel(3, smoothing="kneser-ney").fit(text)
    cont = dict(zip(model.vocab, model.continuation_counts("a")))
    assert cont["b"] == 3  # x, y, z precede "ab"
    assert dict(zip(model.vocab, model.continuation_counts("c")))["d"] == 1
    assert dict(zip(model.vocab, model.counts("a")))["b"] == 3


def test_interpolated_equals_weighted_sum_of_orders() -> None:
    text = _toy_text(300)
    lambdas = (0.2, 0.3, 0.5)
    model = NGramModel(3, smoothing="interpolated", lambdas=lambdas, k=0.0).fit(text)
    for context in ["ab", "ca", "dd"]:
        uni = model.counts() / model.counts().sum()
        bi = model.counts(context[1:]) / model.counts(context[1:]).sum()
        tri = model.counts(context) / model.counts(context).sum()
        np.testing.assert_allclose(model.distribution(context), 0.2 * uni + 0.3 * bi + 0.5 * tri, rtol=1e-12)


def test_scoring_scores_each_token_once_with_shorter_contexts_at_the_start() -> None:
    text, held_out = _toy_text(500), _toy_text(40, seed=3)
    model = NGramModel(3, smoothing="kneser-ney").fit(text)
    logp = model.token_log_probs(held_out)
    assert logp.shape == (len(held_out),)
    one_by_one = [math.log(model.prob(held_out[max(0, t - 2) : t], held_out[t])) for t in range(len(held_out))]
    np.testing.assert_allclose(logp, one_by_one, rtol=1e-12)
    assert model.cross_entropy(held_out) == pytest.approx(-np.mean(one_by_one))


def test_unseen_context_fraction_by_hand() -> None:
    model = NGramModel(2, smoothing="add-k").fit("aabb")  # contexts seen: a, b ('b' at position 2)
    model3 = NGramModel(3, smoothing="add-k").fit("aabb")  # contexts seen: aa, ab
    assert model.unseen_context_fraction("ab") == 0.0
    # held-out "abab": token 0 uses the empty context, 1 uses 'a', then 'ab' (seen), 'ba' (unseen)
    assert model3.unseen_context_fraction("abab") == pytest.approx(1 / 4)


def test_sampling_is_reproducible_and_follows_the_distribution() -> None:
    model = NGramModel(3, smoothing="kneser-ney").fit(NAMES)
    assert model.sample(seed=7) == model.sample(seed=7)
    assert [model.sample(seed=s) for s in range(5)] != [model.sample(seed=s + 5) for s in range(5)]
    draws = NGramModel(1, smoothing="add-k", k=0).fit("aaabbc").sample(6000, seed=0)
    freq = np.array([draws.count(c) for c in "abc"]) / 6000
    np.testing.assert_allclose(freq, [3 / 6, 2 / 6, 1 / 6], atol=0.03)
    gen = np.random.default_rng(1)
    assert model.sample(prompt="em", generator=gen).startswith("em")


def test_integer_tokens_and_many_sequences() -> None:
    model = NGramModel(2, smoothing="add-k", k=1.0, boundary=-1).fit([[3, 4], [4]])
    assert model.vocab == [-1, 3, 4]
    assert model.prob([3], 4) == pytest.approx(2 / 4)
    sample = model.sample(seed=0)
    assert isinstance(sample, list) and -1 not in sample


def test_clear_errors() -> None:
    model = NGramModel(2).fit("abc")
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        model.cross_entropy("abz")
    with pytest.raises(ValueError, match="boundary"):
        NGramModel(2).fit(["a.b"])
    with pytest.raises(ValueError, match="smoothing"):
        NGramModel(2, smoothing="good-turing")
    with pytest.raises(ValueError, match="lambdas"):
        NGramModel(2, smoothing="interpolated", lambdas=[0.5, 0.6])
    with pytest.raises(ValueError, match="discount"):
        NGramModel(2, smoothing="kneser-ney", discount=1.5)
    with pytest.raises(RuntimeError, match="fit"):
        NGramModel(2).prob("a", "b")
    with pytest.raises(ValueError, match="n="):
        model.sample()
    with pytest.raises(ValueError, match="continuous"):
        model.cross_entropy(["ab", "c"])
