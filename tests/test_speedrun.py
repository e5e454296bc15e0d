"""Part 3's CPU speedrun: the run stops where the yardstick says, records are kept safely.

A tiny model with loose targets runs for real (a few seconds); the exact score it reports is
compared with :func:`course_lib.lm_eval.score_text` on the model it stopped with.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import course_lib.speedrun as speedrun
from course_lib.cli import main
from course_lib.speedrun import SPEEDRUN, Split, SpeedrunResult, append_record, load_records, records_table

TINY = dataclasses.replace(SPEEDRUN, n_layer=1, n_embd=32, n_head=2, n_kv_head=None, block_size=32,
                           batch_size=8, max_iters=200, warmup_iters=5, eval_interval=10, eval_iters=2)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def result(splits, steps=100, commit="abc1234", date="2026-12-01") -> SpeedrunResult:
    return SpeedrunResult(splits, steps, 10.0, 1.0, "3%", SPEEDRUN.to_dict(), 2, date=date, commit=commit)


def test_the_run_stops_at_the_check_where_the_last_target_is_reached(monkeypatch):
    import course_lib.lm_eval as lm_eval  # run_speedrun imports score_text from here when it runs

    seen = []
    original = lm_eval.score_text

    def recording(model, tok, text, block_size, **kw):
        score = original(model, tok, text, block_size, **kw)
        seen.append(score.nats_per_char)
        return score

    monkeypatch.setattr(lm_eval, "score_text", recording)
    lines = []
    run = speedrun.run_speedrun(TINY, (3.6, 3.3), log=lines.append)
    assert [s.reached for s in run.splits] == [True, True]
    first, last = run.splits
    assert first.step <= last.step == run.steps < TINY.max_iters  # stopped once 3.3 was reached
    assert first.nats_per_char <= 3.6 and last.nats_per_char <= 3.3
    assert 0 < first.train_s <= last.train_s <= run.train_s
    # the reported score is the yardstick's, on the model as it was at that check
    assert seen and seen[-1] == pytest.approx(last.nats_per_char, abs=1e-4)
    # every exact score but the last was above the last target (else the run would have stopped there)
    assert all(s > 3.3 for s in seen[:-1])
    assert any("reached 3.3 nats/char" in line for line in lines)


def test_an_unreached_target_says_so_and_the_schedule_runs_out():
    short = dataclasses.replace(TINY, max_iters=20)
    run = speedrun.run_speedrun(short, (3.9, 0.5), log=lambda line: None)
    assert run.splits[-1].reached is False and run.splits[-1].step is None
    assert run.steps == 20


def test_targets_must_fall():
    with pytest.raises(ValueError, match="targets must fall"):
        speedrun.run_speedrun(TINY, (1.55, 1.70))


def test_records_are_appended_atomically_and_a_bad_file_is_left_alone(tmp_path):
    path = tmp_path / "results" / "speedrun.json"
    assert load_records(path) == []
    append_record(path, result([Split(1.70, True, 500, 40.0, 1.69), Split(1.55, False)]))
    append_record(path, result([Split(1.70, True, 300, 30.0, 1.68), Split(1.55, True, 900, 90.0, 1.54)],
                               commit="def5678"))
    records = load_records(path)
    assert [r["commit"] for r in records] == ["abc1234", "def5678"]
    assert not list(path.parent.glob("*.tmp*"))  # no temporary file left behind
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}', encoding="utf-8")
    with pytest.raises(ValueError, match="JSON list"):
        append_record(bad, result([Split(1.70, False)]))
    assert json.loads(bad.read_text(encoding="utf-8")) == {"not": "a list"}  # untouched


def test_records_table_puts_the_fastest_to_the_last_target_first():
    slow = result([Split(1.70, True, 500, 40.0, 1.69), Split(1.55, True, 2000, 150.0, 1.549)], commit="slow")
    fast = result([Split(1.70, True, 400, 35.5, 1.69), Split(1.55, True, 1500, 120.25, 1.548)], commit="fast")
    none = result([Split(1.70, True, 400, 30.0, 1.69), Split(1.55, False)], commit="none")
    table = records_table([r.to_dict() for r in (none, slow, fast)])
    rows = table.splitlines()
    assert rows[0].startswith("| date | to 1.70 (goal 45 s) | to 1.55 (goal 180 s) |")
    assert [row.split("|")[-2].strip() for row in rows[2:]] == ["fast", "slow", "none"]
    assert "120.2 s (step 1,500)" in rows[2] and "not reached" in rows[4]
    assert "2x128, ctx 64, batch 24, muon (lr 0.003, Muon 0.01)" in rows[2]


def test_the_command_prints_the_splits_and_records_unless_told_not_to(tmp_path, monkeypatch, capsys):
    fake = result([Split(1.70, True, 400, 35.5, 1.69), Split(1.55, True, 1500, 120.2, 1.548)])
    monkeypatch.setattr(speedrun, "run_speedrun", lambda recipe, targets, log: fake)
    path = tmp_path / "records.json"
    assert main(["bench", "speedrun", "--record", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| 1.55 | 1.5480 | 1,500 | 120.2 | 180 |" in out and "records (" in out
    assert len(load_records(path)) == 1
    assert main(["bench", "speedrun", "--record", str(path), "--no-record"]) == 0
    assert main(["bench", "speedrun", "--quick", "--record", str(path)]) == 0  # a smoke test is never kept
    assert len(load_records(path)) == 1


def test_train_steps_is_seeded_and_sizes_its_schedule_and_equal_time_steps_fits_the_budget():
    from course_lib.lm_eval import shakespeare_splits
    from course_lib.tokenizers import CharTokenizer

    train_text, val_text = shakespeare_splits()
    tok = CharTokenizer.from_text(train_text + val_text)
    tr, va = torch.tensor(tok.encode(train_text[:50_000])), torch.tensor(tok.encode(val_text[:5_000]))
    a, history, seconds = speedrun.train_steps(TINY, 16, tok, tr, va, eval_iters=1)
    b, _, _ = speedrun.train_steps(TINY, 16, tok, tr, va, eval_iters=1)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), f"{name}: the same recipe and steps should give the same weights"
    assert history.iters[-1] == 16 and len(history.iters) == 9 and seconds > 0  # evaluated every 16 // 8 steps
    ms, steps = speedrun.equal_time_steps({"a": TINY, "b": dataclasses.replace(TINY, optimizer="adamw")}, 0.5, 3,
                                          tok, tr, va, rounds=1)
    assert set(ms) == set(steps) == {"a", "b"}
    for label in ms:
        assert ms[label] > 0 and steps[label] == max(int(500 / ms[label]), 10)
    with pytest.raises(ValueError, match="steps"):
        speedrun.train_steps(TINY, 0, tok, tr, va)
    with pytest.raises(ValueError, match="positive"):
        speedrun.equal_time_steps({"a": TINY}, 0, 3, tok, tr, va)
