"""The shared yardstick: units, per-character normalisation, persistence and the split."""

import json
import math
import os
import stat
import threading

import numpy as np
import pytest
import torch

from course_lib.lm_eval import (
    Result,
    ResultsTable,
    load_results,
    nats_per_char,
    ngram_results,
    record_result,
    results_path,
    shakespeare_splits,
)
from course_lib.data import load_text
from course_lib.ngram import NGramModel


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_FAST", "1")
    return tmp_path


# ---------------------------------------------------------------- units
@pytest.mark.parametrize("nats", [0.0, 0.5, math.log(2), 1.5662, math.log(65)])
def test_bits_and_perplexity_are_conversions_of_nats(nats):
    r = Result("m", 16, nats)
    assert r.bits_per_char == pytest.approx(nats / math.log(2), rel=1e-12)
    assert r.perplexity == pytest.approx(math.exp(nats), rel=1e-12)
    # the same numbers from torch, in base 2 directly
    p = torch.tensor(math.exp(-nats), dtype=torch.float64)  # a model giving every char this probability
    assert r.bits_per_char == pytest.approx(-torch.log2(p).item(), abs=1e-12)


def test_one_bit_per_char_is_a_coin_flip():
    r = Result("fair coin", 16, math.log(2))
    assert r.bits_per_char == pytest.approx(1.0)
    assert r.perplexity == pytest.approx(2.0)


def test_uniform_model_over_65_chars_has_perplexity_65():
    logits = torch.zeros(10, 65)  # (N, V) uniform
    targets = torch.randint(0, 65, (10,), generator=torch.Generator().manual_seed(0))
    ce = torch.nn.functional.cross_entropy(logits.double(), targets).item()
    assert Result("uniform", 16, ce).perplexity == pytest.approx(65.0, rel=1e-12)


# ---------------------------------------------------------------- per-character normalisation
def test_token_model_is_normalised_per_character_by_hand():
    # text "the cat" (7 chars) cut into tokens "the", " cat" with probabilities 1/4 and 1/8:
    # total = ln 4 + ln 8 = 5 ln 2 nats over 7 characters -> 5/7 bits per character
    total = -math.log(1 / 4) - math.log(1 / 8)
    r = Result.from_total_nats("token model", 17, total, n_chars=len("the cat"))
    assert r.nats_per_char == pytest.approx(5 * math.log(2) / 7)
    assert r.bits_per_char == pytest.approx(5 / 7)
    # per token it would be 2.5 bits: the yardstick, not the model, changed
    assert total / 2 / math.log(2) == pytest.approx(2.5)


def test_character_model_per_char_equals_its_mean_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(50, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (50,), generator=g)
    total = torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
    mean = torch.nn.functional.cross_entropy(logits, y).item()
    assert nats_per_char(total, 50) == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize("bad", [dict(total_nats=-1.0, n_chars=3), dict(total_nats=math.inf, n_chars=3),
                                 dict(total_nats=1.0, n_chars=0)])  # fmt: skip
def test_nats_per_char_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        nats_per_char(**bad)


@pytest.mark.parametrize("kwargs, words", [
    (dict(model="", day=16, nats_per_char=1.0), "non-empty"),
    (dict(model="m", day=0, nats_per_char=1.0), "day"),
    (dict(model="m", day=16, nats_per_char=math.inf), "smoothing"),
    (dict(model="m", day=16, nats_per_char=-0.1), ">= 0"),
    (dict(model="m", day=16, nats_per_char=1.0, n_params=-3), "n_params"),
])  # fmt: skip
def test_result_rejects_bad_fields_with_a_clear_message(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Result(**kwargs)


# ---------------------------------------------------------------- the table
def test_table_sorts_worst_first_and_replaces_by_name():
    t = ResultsTable.of([Result("a", 15, 2.0), Result("b", 19, 1.5), Result("c", 16, 3.0)])
    assert [r.model for r in t.rows] == ["c", "a", "b"]
    t.add(Result("c", 16, 1.0))  # the same name again: replaced, not added
    assert len(t) == 3 and [r.model for r in t.rows] == ["a", "b", "c"]
    assert t["c"].nats_per_char == 1.0 and "zzz" not in t


def test_markdown_and_html_show_every_row():
    t = ResultsTable.of([Result("x|y", 15, math.log(2), 10, "a <note>"), Result("z", 16, 1.0)])
    md = t.to_markdown().splitlines()
    assert md[0].startswith("| model |") and len(md) == 2 + 2
    assert "x\\|y" in md[3] and "1.000" in md[3] and "2.00" in md[3]  # 1 bit, perplexity 2
    page = t._repr_html_()
    assert page.count("<tr>") == 3 and "a &lt;note&gt;" in page


def test_plot_returns_a_figure_with_one_bar_per_model():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = ResultsTable.of([Result("a", 15, 2.0), Result("b", 19, math.log(2))])
    fig, ax = plt.subplots()
    assert t.plot(ax=ax) is fig
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == pytest.approx([1.0, 2.0 / math.log(2)])
    plt.close(fig)


# ---------------------------------------------------------------- persistence
def test_record_and_load_round_trip_in_a_temporary_data_dir(data_dir):
    assert len(load_results()) == 0
    path = record_result(Result("bigram", 15, 2.5, 4225, "counts"))
    assert path == data_dir / "results" / "lm_results_fast.json"
    record_result(Result("mlp", 19, 1.9, 12_000))
    record_result(Result("bigram", 15, 2.4, 4225, "re-run"))  # replaces the row
    table = load_results()
    assert [r.model for r in table.rows] == ["bigram", "mlp"]
    assert table["bigram"] == Result("bigram", 15, 2.4, 4225, "re-run")
    on_disk = json.loads(path.read_text())
    assert {row["model"] for row in on_disk["results"]} == {"bigram", "mlp"}
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_the_results_file_is_readable_as_the_umask_allows(data_dir):
    before = os.umask(0o022)
    try:
        path = record_result(Result("bigram", 15, 2.5))
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # a shared data folder: others may read it


def test_fast_and_full_modes_keep_separate_files(data_dir, monkeypatch):
    record_result(Result("fast one", 16, 2.0))
    monkeypatch.setenv("COURSE_FAST", "0")
    assert results_path().name == "lm_results_full.json" and len(load_results()) == 0
    record_result(Result("full one", 16, 1.0))
    assert [r.model for r in load_results()] == ["full one"]
    assert [r.model for r in load_results("fast")] == ["fast one"]


def test_a_failed_write_leaves_the_old_file_intact(data_dir, monkeypatch):
    path = record_result(Result("kept", 16, 2.0))
    before = path.read_text()

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        record_result(Result("lost", 16, 1.0))
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_concurrent_recorders_lose_no_row(data_dir):
    threads = [threading.Thread(target=record_result, args=(Result(f"m{i}", 16, 1.0 + i / 10),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.model for r in load_results()) == [f"m{i}" for i in range(8)]


def test_corrupt_results_file_gives_a_clear_error(data_dir):
    path = results_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="delete it"):
        load_results()


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="'fast', 'full'"):
        results_path("medium")


# ---------------------------------------------------------------- the split and the n-gram rows
def test_split_sizes_are_the_course_convention():
    train, val = shakespeare_splits()
    assert len(train) + len(val) == 1_115_394
    assert len(val) == 111_539 == round(0.1 * 1_115_394)
    assert len(train) == 1_003_855
    text = load_text("tinyshakespeare")
    assert train == text[:1_003_855] and val == text[1_003_855:]  # contiguous: the last 10%


def test_ngram_results_score_the_same_characters_as_evaluate_perplexity():
    # a bigram with add-1 from scratch (numpy counts) on a training prefix, scoring val[1:]
    train, val = shakespeare_splits()
    train = train[:20_000]
    vocab = sorted(set(shakespeare_splits()[0]) | set(val))
    ids = {c: i for i, c in enumerate(vocab)}
    t = np.array([ids[c] for c in train])
    v = np.array([ids[c] for c in val])
    counts = np.zeros((len(vocab), len(vocab)))  # (65, 65)
    np.add.at(counts, (t[:-1], t[1:]), 1)
    P = (counts + 1) / (counts.sum(axis=1, keepdims=True) + len(vocab))  # (65, 65)
    expected = -np.log(P[v[:-1], v[1:]]).mean()  # every validation char after the first
    [r] = ngram_results(orders=(2,), smoothing="add-k", k=1.0, train_chars=20_000)
    assert r.model == "2-gram (add-1)" and r.day == 15
    assert r.nats_per_char == pytest.approx(expected, rel=1e-10)
    assert r.n_params == len(set(train)) + len({train[i : i + 2] for i in range(len(train) - 1)})


def test_ngram_results_kneser_ney_improve_with_order_and_match_the_model():
    train, val = shakespeare_splits()
    rows = ngram_results(orders=(1, 3), train_chars=100_000)
    assert [r.model for r in rows] == ["1-gram (kneser-ney)", "3-gram (kneser-ney)"]
    assert rows[1].nats_per_char < rows[0].nats_per_char < math.log(65)
    lm = NGramModel(3, smoothing="kneser-ney").fit(train[:100_000], vocab=sorted(set(train) | set(val)))
    assert rows[1].nats_per_char == pytest.approx(-lm.token_log_probs(val)[1:].mean(), rel=1e-12)


# ---------------------------------------------------------------- the sliding-window yardstick
from course_lib.lm_eval import score_windows, window_plan  # noqa: E402


class _PositionModel(torch.nn.Module):
    """Vocabulary {0, 1}; at window position t it gives token 1 probability (t + 1) / (t + 2),
    so the score of an all-ones text tells how much context each prediction had."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, targets=None):
        t = torch.arange(x.shape[1], dtype=torch.float64)
        logits = torch.stack([torch.zeros_like(t), torch.log(t + 1)], -1)  # p(1) = (t+1)/(t+2)
        return logits.expand(x.shape[0], -1, -1), None


def test_window_plan_scores_every_token_once_with_half_a_context():
    for n, T, S in [(10, 4, 2), (11, 4, 2), (5, 4, 2), (100, 16, 8), (101, 16, 5), (40, 8, 8), (30, 8, 1)]:
        plan = window_plan(n, T, S)
        scored = []
        for k, (start, first) in enumerate(plan):
            end = plan[k + 1][1] - 1 if k + 1 < len(plan) else n - 1  # last token this window scores
            assert 0 <= start and start + 1 <= first <= end <= start + T
            scored += range(first, end + 1)
            if k > 0:
                assert first - start >= T - S + 1  # the first scored token's context
        assert scored == list(range(1, n)), (n, T, S)


def test_score_windows_by_hand():
    # 10 ones, T = 4, S = 2: windows (0,1) (2,5) (4,7) (5,9) score window positions
    # 0-3, 2-3, 2-3 and 3, i.e. contexts 1, 2, 3, 4 | 3, 4 | 3, 4 | 4 tokens
    s = score_windows(_PositionModel(), torch.ones(10, dtype=torch.long), 4, stride=2)
    by_hand = math.log(2) + math.log(3 / 2) + 3 * math.log(4 / 3) + 4 * math.log(5 / 4)
    assert s.total_nats == pytest.approx(by_hand, rel=1e-12)
    assert (s.n_predictions, s.min_context) == (9, 3)
    # non-overlapping windows: contexts 1-4 and 1-4; the last window ends at the last token,
    # so token 9 is scored from window 5-8 with a context of 4
    s = score_windows(_PositionModel(), torch.ones(10, dtype=torch.long), 4, stride=4)
    by_hand = 2 * (math.log(2) + math.log(3 / 2) + math.log(4 / 3) + math.log(5 / 4)) + math.log(5 / 4)
    assert s.total_nats == pytest.approx(by_hand, rel=1e-12)


def _brute_force(model, ids, context):
    """One forward pass per token: token i from ids[max(0, i - context(i)) : i]."""
    total = 0.0
    with torch.no_grad():
        for i in range(1, ids.numel()):
            x = ids[max(0, i - context(i)) : i][None]
            total += -torch.log_softmax(model(x)[0][0, -1].double(), -1)[ids[i]].item()
    return total


@pytest.mark.parametrize("arch", ["modern", "classic"])
def test_score_windows_matches_a_brute_force_scorer(arch):
    from course_lib.model import GPT, GPTConfig

    torch.manual_seed(0)
    T = 8
    factory = GPTConfig.modern if arch == "modern" else GPTConfig.classic
    model = GPT(factory(vocab_size=11, n_layer=1, n_head=2, n_embd=16, block_size=T)).eval()
    ids = torch.randint(0, 11, (45,), generator=torch.Generator().manual_seed(1))
    full = score_windows(model, ids, T, stride=1, batch_size=7)  # every token sees min(i, T) tokens
    assert full.total_nats == pytest.approx(_brute_force(model, ids, lambda i: T), rel=1e-9)

    def context(i, S):  # the first window, then windows ending S tokens apart; the last ends at the end
        if i <= T:
            return i
        end = min(T + S * math.ceil((i - T) / S), ids.numel() - 1)  # the last token i's window predicts
        return i - (end - T)

    cut = score_windows(model, ids, T, stride=T)  # mostly (i - 1) % T + 1 tokens
    assert cut.total_nats == pytest.approx(_brute_force(model, ids, lambda i: context(i, T)), rel=1e-9)
    half = score_windows(model, ids, T)  # the default: stride T // 2
    assert half.total_nats == pytest.approx(_brute_force(model, ids, lambda i: context(i, T // 2)), rel=1e-9)
    assert half.min_context == T // 2 + 1 and half.n_predictions == 44


def test_score_windows_rejects_bad_input():
    m = _PositionModel()
    with pytest.raises(ValueError, match="1-D tensor of token ids"):
        score_windows(m, torch.ones(2, 5, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="stride must be between 1 and block_size"):
        score_windows(m, torch.ones(10, dtype=torch.long), 4, stride=5)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        score_windows(m, torch.ones(1, dtype=torch.long), 4)


def test_score_text_counts_the_characters_a_bpe_model_predicts():
    from course_lib.lm_eval import score_text
    from course_lib.tokenizers import BPETokenizer, CharTokenizer

    class Uniform(torch.nn.Module):
        def __init__(self, V):
            super().__init__()
            self.V = V

        def forward(self, x):
            return torch.zeros(*x.shape, self.V, dtype=torch.float64)

    text = "the cat sat on the mat; the cat sat on the hat. " * 4
    char = CharTokenizer.from_text(text)
    s = score_text(Uniform(char.vocab_size), char, text, block_size=16)
    assert s.n_chars == len(text) - 1 and s.windows.n_predictions == len(text) - 1
    assert s.nats_per_char == pytest.approx(math.log(char.vocab_size), rel=1e-12)
    bpe = BPETokenizer.train(text, 270)
    ids = bpe.encode(text)
    s = score_text(Uniform(bpe.vocab_size), bpe, text, block_size=16)
    first = len(bpe.decode(ids[:1]))
    assert first > 1 and s.n_chars == len(text) - first
    assert s.total_nats == pytest.approx((len(ids) - 1) * math.log(bpe.vocab_size), rel=1e-12)
