"""Every registered exercise is real: its solution passes, and the placeholder and plausible
wrong answers (off by one, the wrong axis or sign, the input returned unchanged, a constant)
are rejected. Each day with registered exercises meets the course's counts."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path

import pytest

from course_lib.exercises import check, registered

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the solutions/ folder, beside course_lib

EXERCISES = registered()
DAYS = sorted({key.split(".")[0] for key in EXERCISES})


def solutions(day: str):
    return importlib.import_module(f"solutions.{day}")


def test_every_day_with_registered_exercises_has_solutions_and_wrong_answers():
    for day in DAYS:
        module = solutions(day)
        keys = {k for k in EXERCISES if k.startswith(day + ".")}
        assert set(module.SOLUTIONS) == keys, day
        assert set(module.WRONG) == keys, day


@pytest.mark.parametrize("day", DAYS)
def test_day_meets_the_counts(day):
    kinds = Counter(ex.kind for key, ex in EXERCISES.items() if key.startswith(day + "."))
    assert sum(kinds.values()) >= 4, f"{day}: at least four exercises, got {dict(kinds)}"
    assert kinds["code"] >= 2, f"{day}: at least two where the learner writes code, got {dict(kinds)}"
    assert kinds["experiment"] >= 1, f"{day}: at least one experiment, got {dict(kinds)}"
    assert kinds["value"] <= 1, f"{day}: at most one single-value question, got {dict(kinds)}"


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_solution_passes(key, capsys):
    answer = solutions(key.split(".")[0]).SOLUTIONS[key]
    assert check(key, answer)
    assert "correct!" in capsys.readouterr().out


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_placeholders_wait(key, capsys):
    def placeholder(*args, **kwargs):
        ...  # YOUR CODE

    kind = EXERCISES[key].kind  # code: a function left as it is; otherwise the result of one (None)
    for answer in (..., placeholder if kind == "code" else placeholder()):
        result = check(key, answer)
        assert not result and result.waiting, answer
        assert "waiting for your answer" in capsys.readouterr().out


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_wrong_answers_are_rejected(key):
    wrong = solutions(key.split(".")[0]).WRONG[key]
    assert len(wrong) >= 2, f"{key}: at least two plausible wrong answers are tested"
    for i, answer in enumerate(wrong):
        with pytest.raises(AssertionError, match=rf"(?s){key} \(.*\): not yet right: .* \(see .*\)"):
            check(key, answer)
        print(f"{key}: wrong answer {i} rejected")


def test_a_registered_exercise_refuses_an_expected_value():
    key = sorted(EXERCISES)[0]
    with pytest.raises(TypeError, match="checked by course_lib's own checker"):
        check(key, 1, expected=1)
