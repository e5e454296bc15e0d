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

import dis
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

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


def _one_line(a: np.ndarray) -> str:
    """An array's values on one line, shortened past 20 entries."""
    return np.array2string(a, threshold=20, edgeitems=3, max_line_width=10**9, precision=6)


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
        return f"values differ (largest difference {worst:.3g}); expected {_one_line(e)}, got {_one_line(a)}"
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
    if name in registered():  # a registered exercise: its checker holds the reference
        if expected is not None or test is not None:
            raise TypeError(f"{name} is checked by course_lib's own checker: call check({name!r}, answer)")
        return _check_registered(EXERCISES[name], answer)
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


# ---------------------------------------------------------------- registered exercises
Kind = Literal["code", "experiment", "value"]


class Wrong(AssertionError):
    """Raised by a checker: what differs, on which input (the learner's answer is wrong)."""


class Waiting(Exception):
    """Raised by a checker when the answer is still the placeholder."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a day: ``check(key, answer)`` calls ``checker(answer)``.

    ``kind``: ``code`` (a function or class that the checker runs on fresh inputs and
    compares with a reference it computes itself), ``experiment`` (settings or a run with
    a measurable target) or ``value`` (a single number or tuple). ``section``: where the
    day teaches what the exercise needs, named in every failure message.
    """

    key: str
    title: str
    kind: Kind
    section: str
    checker: Callable[[Any], str | None]  # raises Wrong or Waiting; may return a short note


EXERCISES: dict[str, Exercise] = {}
CHECK_MODULES = ("course_lib.exercise_checks",)  # imported on first use: they register themselves


def exercise(key: str, *, title: str, kind: Kind, section: str) -> Callable:
    """Decorator registering ``checker`` as the reference of exercise ``key`` (``"day01.ex1"``)."""
    if kind not in ("code", "experiment", "value"):
        raise ValueError(f"kind must be 'code', 'experiment' or 'value', got {kind!r}")

    def register(checker: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
        if key in EXERCISES:
            raise ValueError(f"exercise {key!r} is registered twice")
        EXERCISES[key] = Exercise(key, title, kind, section, checker)
        return checker

    return register


def registered() -> dict[str, Exercise]:
    """Every registered exercise, by key (importing the checker modules first)."""
    for module in CHECK_MODULES:
        importlib.import_module(module)
    return EXERCISES


def is_placeholder(answer: Any) -> bool:
    """True for the ``...`` placeholder."""
    return answer is Ellipsis


def call_answer(answer: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function or class. A body of ``...`` (it returns None) or one that
    raises NotImplementedError is still the placeholder: the check says it is waiting."""
    if is_placeholder(answer):
        raise Waiting
    if not callable(answer):
        raise Wrong(f"expected a function or class, got {type(answer).__name__} {answer!r}")
    try:
        out = answer(*args, **kwargs)
    except NotImplementedError as err:
        raise Waiting from err
    if out is None and _body_is_ellipsis(answer):
        raise Waiting
    return out


def raised(what: str, err: Exception) -> Wrong:
    """The learner's code raised ``err`` while the checker ran ``what``: a wrong answer, reported."""
    return Wrong(f"{what} raised {type(err).__name__}: {err}")


def call_reported(answer: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """:func:`call_answer`, with any other error the learner's code raises reported as Wrong
    (``what`` names the call and its input in the message)."""
    try:
        return call_answer(answer, *args, **kwargs)
    except (Waiting, Wrong):
        raise
    except Exception as err:  # noqa: BLE001 (any other error is the learner's bug, reported)
        raise raised(what, err) from None


def _body_is_ellipsis(fn: Any) -> bool:
    """True for a function whose body does nothing (``...``, ``pass``, a docstring only)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    ops = [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in ("RESUME", "NOP", "CACHE")]
    return ops in ([("LOAD_CONST", None), ("RETURN_VALUE", None)], [("RETURN_CONST", None)])


def differs(answer: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """How ``answer`` differs from ``expected`` (numbers, arrays, tensors, dicts), or None."""
    return _differs(answer, expected, rtol, atol)


def _check_registered(ex: Exercise, answer: Any) -> CheckResult:
    label = f"{ex.key} ({ex.title})"
    try:
        if is_placeholder(answer) or (answer is None and ex.kind != "code"):  # None: a placeholder's result
            raise Waiting
        note = ex.checker(answer)
    except Waiting:
        print(f"{label}: waiting for your answer (replace the ... placeholder).")
        return CheckResult(ex.key, passed=False, waiting=True)
    except Wrong as err:
        raise AssertionError(f"{label}: not yet right: {err} (see {ex.section}).") from None
    print(f"{label}: correct!" + (f" {note}" if note else ""))
    return CheckResult(ex.key, passed=True, waiting=False)
