"""Day 1: self-checking exercises.

Each exercise in a notebook leaves a placeholder (``...``) for the student's answer and
calls :func:`check`. Until the placeholder is replaced the check only says the exercise
is waiting; a wrong answer raises an ``AssertionError`` that says what differs; a right
one prints a short confirmation. The hidden solution cell calls the same check, so CI
proves every exercise is solvable and its checker accepts the right answer.

The message is printed, so it shows wherever the check sits in a cell; the returned
:class:`CheckResult` is true for a right answer and shows nothing more in a notebook
(no bare ``True`` or ``False`` under the message).

>>> result = check("ex1", ..., expected=3)
ex1: waiting for your answer (replace the ... placeholder).
>>> bool(result), result.waiting
(False, True)
>>> bool(check("ex1", 3, expected=3))
ex1: correct!
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


class CheckResult:
    """What :func:`check` found: true when the answer is right; ``waiting`` while it is ``...``.

    A notebook shows nothing for it (the check has already printed its message), so a
    check at the end of a cell leaves no bare ``True``/``False`` output.
    """

    def __init__(self, name: str, passed: bool, waiting: bool) -> None:
        self.name, self.passed, self.waiting = name, passed, waiting

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        state = "waiting" if self.waiting else ("correct" if self.passed else "wrong")
        return f"CheckResult({self.name!r}: {state})"

    def _ipython_display_(self) -> None:
        """Display nothing: the message is already printed above."""


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _differs(answer: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """Return a description of how answer differs from expected, or None if equal."""
    if isinstance(expected, (str, bytes, bool)) or expected is None:
        return None if answer == expected else f"expected {expected!r}, got {answer!r}"
    if isinstance(expected, dict):
        if not isinstance(answer, dict):
            return f"expected a dict, got {type(answer).__name__}"
        if set(answer) != set(expected):
            return f"expected keys {sorted(map(repr, expected))}, got {sorted(map(repr, answer))}"
        for key in expected:
            why = _differs(answer[key], expected[key], rtol, atol)
            if why:
                return f"at key {key!r}: {why}"
        return None
    try:
        a, e = _as_array(answer), _as_array(expected)
    except (TypeError, ValueError):
        return None if answer == expected else f"expected {expected!r}, got {answer!r}"
    if e.dtype.kind in "OUS":
        return None if answer == expected else f"expected {expected!r}, got {answer!r}"
    if a.shape != e.shape:
        return f"expected shape {e.shape}, got {a.shape}"
    if not np.allclose(a.astype(float), e.astype(float), rtol=rtol, atol=atol, equal_nan=True):
        worst = float(np.max(np.abs(a.astype(float) - e.astype(float))))
        return f"values differ (largest difference {worst:.3g}); expected {e!r}, got {a!r}"
    return None


def check(
    name: str,
    answer: Any,
    expected: Any = None,
    *,
    test: Callable[[Any], bool] | None = None,
    hint: str = "",
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> CheckResult:
    """Check an exercise answer against ``expected`` (or with the predicate ``test``).

    While ``answer`` is the placeholder ``...`` it says so and returns a false result;
    a wrong answer raises ``AssertionError`` with the difference (and the hint); a
    right one prints ``correct!`` and returns a true result. Numbers, arrays and
    tensors compare with tolerance.
    """
    if answer is Ellipsis:
        print(f"{name}: waiting for your answer (replace the ... placeholder).")
        return CheckResult(name, passed=False, waiting=True)
    if test is not None:
        ok = bool(test(answer))
        why = None if ok else f"the answer {answer!r} does not pass the check"
    else:
        why = _differs(answer, expected, rtol, atol)
    if why:
        raise AssertionError(f"{name}: not yet right: {why}." + (f" Hint: {hint}" if hint else ""))
    print(f"{name}: correct!")
    return CheckResult(name, passed=True, waiting=False)
