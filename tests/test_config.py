"""Fast mode and the exercise checker."""

import pytest
import torch

from course_lib import fast_mode, pick
from course_lib.exercises import check


@pytest.mark.parametrize(("value", "fast"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_fast_mode_switch(monkeypatch, value, fast):
    monkeypatch.setenv("COURSE_FAST", value)
    assert fast_mode() is fast
    assert pick(full=5000, fast=50) == (50 if fast else 5000)


def test_fast_mode_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="COURSE_FAST"):
        fast_mode()


def test_check_waits_for_placeholder(capsys):
    result = check("Ex", ..., expected=1)
    assert not result and result.waiting
    assert "waiting" in capsys.readouterr().out


def test_check_result_displays_nothing_in_a_notebook(capsys):
    """The message is printed once; IPython's formatter makes no output of the result."""
    from IPython.core.formatters import DisplayFormatter

    result = check("Ex", 2, expected=2)
    assert result and not result.waiting
    assert capsys.readouterr().out == "Ex: correct!\n"
    data, _ = DisplayFormatter().format(result)
    assert data == {}
    assert capsys.readouterr().out == ""


def test_check_accepts_right_and_rejects_wrong_answers():
    assert check("Ex", torch.tensor([1.0, 2.0]), expected=[1.0, 2.0 + 1e-9])
    assert check("Ex", {"a": 1}, expected={"a": 1})
    assert check("Ex", 4, test=lambda x: x % 2 == 0)
    with pytest.raises(AssertionError, match="shape"):
        check("Ex", [1, 2, 3], expected=[1, 2])
    with pytest.raises(AssertionError, match="Hint: think"):
        check("Ex", 0.5, expected=0.25, hint="think")
    with pytest.raises(AssertionError, match="expected 'abc'"):
        check("Ex", "abd", expected="abc")
