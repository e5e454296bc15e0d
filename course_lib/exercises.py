"""Day 1: self-checking exercises.

Each exercise in a notebook leaves a placeholder (``...``) for the student's answer and
calls :func:`check`. Until the placeholder is replaced the check only says the exercise
is waiting; a wrong answer raises an ``AssertionError`` that says what differs; a right
one prints a short confirmation. The hidden solution cell calls the same check, so CI
proves every exercise is solvable and its checker accepts the right answer.

>>> check("ex1", ..., expected=3)
False
>>> check("ex1", 3, expected=3)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


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
) -> bool:
    """Check an exercise answer against ``expected`` (or with the predicate ``test``).

    Returns False (and says so) while ``answer`` is the placeholder ``...``; raises
    ``AssertionError`` with the difference (and the hint) when the answer is wrong;
    returns True when it is right. Numbers, arrays and tensors compare with tolerance.
    """
    if answer is Ellipsis:
        print(f"{name}: waiting for your answer (replace the ... placeholder).")
        return False
    if test is not None:
        ok = bool(test(answer))
        why = None if ok else f"the answer {answer!r} does not pass the check"
    else:
        why = _differs(answer, expected, rtol, atol)
    if why:
        raise AssertionError(f"{name}: not yet right: {why}." + (f" Hint: {hint}" if hint else ""))
    print(f"{name}: correct!")
    return True
