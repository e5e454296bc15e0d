"""Words and word vocabularies (course_lib.text), against hand-worked examples and Counter."""

import doctest
import random
from collections import Counter

import pytest

import course_lib.text as text_module
from course_lib.text import Vocab, words


def test_docstring_examples():
    result = doctest.testmod(text_module)
    assert result.attempted >= 6
    assert result.failed == 0


def test_words_hand_worked():
    assert words("To be, or not to be: that is the question.") == [
        "to", "be", "or", "not", "to", "be", "that", "is", "the", "question",
    ]  # fmt: skip
    # inner apostrophes stay, outer ones and underscores split; digits are words
    assert words("'Tis o'er-ripe, snake_case 42!") == ["tis", "o'er", "ripe", "snake", "case", "42"]
    assert words("Hello WORLD", lowercase=False) == ["Hello", "WORLD"]
    assert words("naïve Ünïcode") == ["naïve", "ünïcode"]
    assert words("  ,.;!  ") == []


def test_words_rejects_bytes():
    with pytest.raises(TypeError, match="decode"):
        words(b"bytes")  # type: ignore[arg-type]


def test_build_order_counts_and_unknown():
    tokens = "c a b a c a d".split()
    vocab = Vocab.build(tokens)
    # a:3, c:2, then b and d tie at 1 and sort alphabetically
    assert vocab.itos == ["<unk>", "a", "c", "b", "d"]
    assert vocab.counts == [0, 3, 2, 1, 1]
    cut = Vocab.build(tokens, max_size=2)
    assert cut.itos == ["<unk>", "a", "c"]
    assert cut.counts == [2, 3, 2]  # the unknown token stands for b and d
    assert sum(cut.counts) == len(tokens)
    assert Vocab.build(tokens, min_count=2).itos == ["<unk>", "a", "c"]


def test_build_matches_counter_on_random_text():
    rng = random.Random(0)
    tokens = [rng.choice("abcdefghij") * rng.randint(1, 3) for _ in range(2000)]
    vocab = Vocab.build(tokens, max_size=12)
    counter = Counter(tokens)
    expected = sorted(counter, key=lambda w: (-counter[w], w))[:12]
    assert vocab.itos[1:] == expected
    assert vocab.counts[1:] == [counter[w] for w in expected]
    held_out = [rng.choice("abcdefghij") * rng.randint(1, 4) for _ in range(500)]
    assert vocab.oov_rate(held_out) == pytest.approx(sum(t not in set(expected) for t in held_out) / 500)


def test_encode_decode_and_oov_rate():
    vocab = Vocab.build("the cat sat on the mat".split(), max_size=3)
    assert vocab.itos == ["<unk>", "the", "cat", "mat"]
    assert vocab.unk_id == 0
    ids = vocab.encode(["the", "dog", "sat", "mat"])
    assert ids == [1, 0, 0, 3]
    assert vocab.decode(ids) == ["the", "<unk>", "<unk>", "mat"]
    assert vocab.oov_rate(["the", "dog", "sat", "mat"]) == 0.5
    assert "<unk>" not in vocab and "the" in vocab and "dog" not in vocab
    assert len(vocab) == 4


def test_without_unknown_token_everything_is_kept_and_unseen_raises():
    vocab = Vocab.build(["b", "a", "b"], unk_token=None)
    assert vocab.itos == ["b", "a"] and vocab.unk_id is None
    assert vocab.encode(["a", "b"]) == [1, 0]
    with pytest.raises(ValueError, match="unk_token"):
        vocab.encode(["c"])
    with pytest.raises(ValueError, match="unk_token"):
        Vocab.build(["a"], max_size=1, unk_token=None)


def test_bad_input_messages():
    vocab = Vocab.build(["a"])
    with pytest.raises(TypeError, match="list of tokens"):
        vocab.encode("a b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ids run from 0 to 1"):
        vocab.decode([2])
    with pytest.raises(ValueError, match="at least one"):
        vocab.oov_rate([])
    with pytest.raises(ValueError, match="max_size"):
        Vocab.build(["a"], max_size=0)
    with pytest.raises(ValueError, match="unknown token"):
        Vocab.build(["<unk>", "a"])
    with pytest.raises(ValueError, match="one count per token"):
        Vocab(itos=["<unk>", "a"], counts=[1])
