"""Tests for course_lib.embeddings: hand-worked SGNS losses, sampling formulas, exact skip-gram
pairs, cosine neighbours and 3CosAdd on hand-made vectors, and Spearman with ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.data import Analogy
from course_lib.embeddings import (
    SkipGram,
    SkipGramConfig,
    WordVectors,
    build_vocab,
    encode_words,
    keep_probabilities,
    noise_distribution,
    rankdata,
    sgns_loss,
    skipgram_pairs,
    spearman,
    subsample,
    tokenize,
    train_skipgram,
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------- vocabulary
def test_tokenize_and_vocab_drop_rare_words_without_an_unknown_token() -> None:
    toks = tokenize("The cat; the CAT, the dog. O'er!")
    assert toks == ["the", "cat", "the", "cat", "the", "dog", "o'er"]
    vocab = build_vocab(toks, min_count=2)
    assert vocab.itos == ["the", "cat"] and vocab.counts == [3, 2] and vocab.unk_token is None
    assert encode_words(["dog", "cat", "the", "bird"], vocab).tolist() == [1, 0]  # unknown words vanish
    with pytest.raises(ValueError, match="min_count"):
        build_vocab(toks, min_count=10)
    with pytest.raises(TypeError, match="tokenize"):
        encode_words("the cat", vocab)


# ---------------------------------------------------------------- sampling formulas
def test_noise_distribution_is_frequency_to_the_three_quarters_normalised() -> None:
    counts = [16, 1, 81, 0]
    p = noise_distribution(counts)
    expected = torch.tensor([8.0, 1.0, 27.0, 0.0], dtype=torch.float64) / 36.0  # 16^.75 = 8, 81^.75 = 27
    torch.testing.assert_close(p, expected)
    torch.testing.assert_close(noise_distribution(counts, power=1.0), torch.tensor(counts, dtype=torch.float64) / 98)


def test_negative_samples_follow_the_noise_distribution() -> None:
    p = noise_distribution([16, 1, 81]).float()
    draws = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).double() / draws.numel()
    torch.testing.assert_close(freq, p.double(), atol=5e-3, rtol=0)


def test_keep_probabilities_follow_mikolovs_formula() -> None:
    counts = [900, 90, 9, 1]  # total 1000: frequencies 0.9, 0.09, 0.009, 0.001
    keep = keep_probabilities(counts, t=0.01)
    f = np.array(counts) / 1000
    expected = np.minimum(1.0, np.sqrt(0.01 / f))  # keep = 1 - P(discard), P(discard) = 1 - sqrt(t/f)
    np.testing.assert_allclose(keep.numpy(), expected, rtol=1e-12)
    assert keep[0] == pytest.approx(math.sqrt(1 / 90)) and keep[2] == 1.0 and keep[3] == 1.0
    with pytest.raises(ValueError, match="threshold"):
        keep_probabilities(counts, t=0)


def test_subsample_keeps_each_word_at_its_rate() -> None:
    keep = torch.tensor([0.25, 1.0], dtype=torch.float64)
    ids = torch.tensor([0, 1] * 50_000)
    kept = subsample(ids, keep, torch.Generator().manual_seed(0))
    counts = torch.bincount(kept, minlength=2)
    assert counts[1] == 50_000  # keep probability 1: every occurrence stays
    assert counts[0] / 50_000 == pytest.approx(0.25, abs=0.01)


# ---------------------------------------------------------------- pairs
def test_window_one_pairs_of_a_tiny_sentence_are_exact() -> None:
    vocab = build_vocab(tokenize("the quick brown fox"), min_count=1)
    ids = encode_words(tokenize("the quick brown fox"), vocab)
    centers, contexts = skipgram_pairs(ids, window=1)  # a dynamic window of 1 is always 1
    pairs = [(vocab.itos[c], vocab.itos[x]) for c, x in zip(centers.tolist(), contexts.tolist())]
    assert pairs == [("the", "quick"), ("quick", "the"), ("quick", "brown"),
                     ("brown", "quick"), ("brown", "fox"), ("fox", "brown")]  # fmt: skip


def test_window_two_fixed_pairs_and_dynamic_pairs_are_a_subset() -> None:
    ids = torch.arange(5)
    centers, contexts = skipgram_pairs(ids, window=2, dynamic=False)
    fixed = set(zip(centers.tolist(), contexts.tolist()))
    assert fixed == {(i, j) for i in range(5) for j in range(5) if 0 < abs(i - j) <= 2}
    assert len(centers) == len(fixed)  # no duplicates
    c, x = skipgram_pairs(torch.arange(200), window=2, generator=torch.Generator().manual_seed(0))
    dynamic = list(zip(c.tolist(), x.tolist()))
    assert all(0 < abs(i - j) <= 2 for i, j in dynamic)
    for i in range(2, 198):  # a center either sees both words at distance 2 or neither
        far = [(i, j) in set(dynamic) for j in (i - 2, i + 2)]
        near = [(i, j) in set(dynamic) for j in (i - 1, i + 1)]
        assert far[0] == far[1] and all(near)
    share_far = np.mean([abs(i - j) == 2 for i, j in dynamic])  # reach 1 or 2: E[far] = 1 of E[pairs] = 3
    assert share_far == pytest.approx(1 / 3, abs=0.05)


# ---------------------------------------------------------------- the loss
def test_sgns_loss_equals_a_hand_computation_on_tiny_tables() -> None:
    model = SkipGram(vocab_size=3, embedding_dim=2)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        model.out_embed.weight.copy_(torch.tensor([[0.5, 0.5], [1.0, -1.0], [0.0, 1.0]]))
    center, context, negatives = torch.tensor([0, 1]), torch.tensor([2, 0]), torch.tensor([[1, 2], [1, 1]])
    # pair 1: v = (1, 0), u_o = (0, 1): dot 0; negatives u = (1,-1) dot 1, (0,1) dot 0
    l1 = -(math.log(_sigmoid(0.0)) + math.log(_sigmoid(-1.0)) + math.log(_sigmoid(0.0)))
    # pair 2: v = (0, 2), u_o = (.5,.5): dot 1; negatives (1,-1) twice: dot -2
    l2 = -(math.log(_sigmoid(1.0)) + 2 * math.log(_sigmoid(2.0)))
    assert model(center, context, negatives).item() == pytest.approx((l1 + l2) / 2, rel=1e-6)
    v = model.in_embed(center)
    functional = sgns_loss(v, model.out_embed(context), model.out_embed(negatives))
    assert functional.item() == pytest.approx((l1 + l2) / 2, rel=1e-6)


def test_training_lowers_the_loss_and_groups_words_that_share_contexts() -> None:
    # two "topics": words 0-3 only appear among themselves, words 4-7 likewise
    gen = torch.Generator().manual_seed(0)
    blocks = [torch.randint(0, 4, (8,), generator=gen) + 4 * (i % 2) for i in range(600)]
    ids = torch.cat(blocks)
    vocab = build_vocab([str(i) for i in ids.tolist()], min_count=1)
    ids = encode_words([str(i) for i in ids.tolist()], vocab)
    cfg = SkipGramConfig(embedding_dim=8, window=2, epochs=3, batch_size=256, lr=0.02, subsample_t=None)
    model, losses = train_skipgram(ids, vocab, cfg, progress=False)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5
    wv = WordVectors.from_model(model, vocab)
    topic = {w: int(w) // 4 for w in vocab.itos}
    for w in vocab.itos:  # the 3 nearest neighbours share the word's topic
        assert all(topic[n] == topic[w] for n, _ in wv.nearest(w, k=3)), (w, wv.nearest(w, k=3))


# ---------------------------------------------------------------- word vectors
@pytest.fixture
def toy_vectors() -> WordVectors:
    vecs = torch.tensor([
        [1.0, 0.0, 0.0],  # man
        [1.0, 1.0, 0.0],  # woman
        [1.0, 0.0, 1.0],  # king
        [1.0, 1.0, 1.0],  # queen
        [0.0, 0.0, 3.0],  # crown (long vector: cosine ignores length)
        [-1.0, 0.0, 0.0],  # apple
    ])  # fmt: skip
    return WordVectors(vecs, ["man", "woman", "king", "queen", "crown", "apple"])


def test_nearest_ranks_by_cosine_and_excludes_the_word(toy_vectors: WordVectors) -> None:
    got = toy_vectors.nearest("king", k=5)
    words = [w for w, _ in got]
    assert words[0] == "queen" and words[-1] == "apple" and "king" not in words
    # cos(king, queen) = 2/(sqrt2*sqrt3); cos(king, crown) = cos(king, man) = 1/sqrt2
    assert got[0][1] == pytest.approx(2 / math.sqrt(6))
    assert dict(got)["crown"] == pytest.approx(1 / math.sqrt(2))
    assert dict(got)["apple"] == pytest.approx(-1 / math.sqrt(2))
    assert toy_vectors.similarity("crown", "king") == pytest.approx(1 / math.sqrt(2))
    with pytest.raises(KeyError, match="not in the vocabulary"):
        toy_vectors.nearest("emperor")


def test_3cosadd_finds_queen_and_excludes_the_query_words(toy_vectors: WordVectors) -> None:
    assert toy_vectors.analogy("man", "woman", "king")[0][0] == "queen"
    assert toy_vectors.analogy("man", "king", "woman")[0][0] == "queen"
    # without exclusion the answer to king - man + man would be king itself
    assert toy_vectors.analogy("man", "man", "king", k=1)[0][0] != "king"
    qs = [Analogy("family", "man", "woman", "king", "queen"),  # right
          Analogy("family", "man", "woman", "king", "apple"),  # wrong
          Analogy("family", "man", "woman", "king", "prince")]  # not covered  # fmt: skip
    acc, cov = toy_vectors.evaluate_analogies(qs)
    assert (acc, cov) == (0.5, pytest.approx(2 / 3))
    assert math.isnan(toy_vectors.evaluate_analogies(qs[2:])[0])


def test_3cosadd_batched_evaluation_agrees_with_one_by_one() -> None:
    gen = torch.Generator().manual_seed(1)
    words = [f"w{i}" for i in range(40)]
    wv = WordVectors(torch.randn(40, 5, generator=gen), words)
    quads = torch.stack([torch.randperm(40, generator=gen)[:4] for _ in range(60)]).tolist()
    qs = [Analogy("s", *(words[i] for i in q)) for q in quads]
    expected = np.mean([wv.analogy(q.a, q.b, q.c)[0][0] == q.d for q in qs])
    assert wv.evaluate_analogies(qs) == (pytest.approx(expected), 1.0)


def test_rankdata_averages_tied_ranks() -> None:
    assert rankdata(torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0])).tolist() == [
        4.0, 1.5, 5.0, 1.5, 6.5, 9.0, 3.0, 8.0, 6.5]  # fmt: skip


def test_spearman_with_ties_matches_a_hand_computation() -> None:
    x, y = [1.0, 2.0, 2.0, 3.0], [10.0, 30.0, 20.0, 40.0]
    # ranks x: 1, 2.5, 2.5, 4 (mean 2.5); ranks y: 1, 3, 2, 4 (mean 2.5)
    # centred: (-1.5, 0, 0, 1.5) and (-1.5, .5, -.5, 1.5): dot 4.5, norms^2 4.5 and 5
    assert spearman(x, y) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="constant"):
        spearman([1, 1, 1], [1, 2, 3])


def test_spearman_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=50).astype(float)  # many ties
    y = x + rng.normal(size=50)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)


def test_evaluate_similarity_reports_spearman_over_the_covered_pairs(toy_vectors: WordVectors) -> None:
    pairs = [("king", "queen", 9.0), ("king", "crown", 5.0), ("king", "apple", 1.0), ("king", "prince", 8.0)]
    rho, cov = toy_vectors.evaluate_similarity(pairs)
    assert cov == 0.75
    assert rho == pytest.approx(1.0)  # cosines .816 > .707 > -.707 follow the human order
