"""Day 1: fast mode, the one switch between small (CI) and full (book) settings.

Every notebook's papermill ``parameters`` cell reads :func:`fast_mode` to choose its
sizes, so ``COURSE_FAST=1`` makes the whole course run in minutes, while papermill's
``-p name value`` still overrides any single parameter. :func:`from_dict_strict` rebuilds
the course's settings dataclasses (model configs, recipes) from their JSON form, and
:class:`ConfigError` is what they raise for a setting that cannot work: it carries the
field's name, so a command line can name the flag that sets it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting that cannot work, with the field (or fields) it concerns.

    >>> err = ConfigError("lr", "lr must be a positive finite number, got inf")
    >>> err.fields, str(err)
    (('lr',), 'lr must be a positive finite number, got inf')
    >>> ConfigError(("n_embd", "n_head"), "n_embd=30 is not divisible by n_head=4").fields
    ('n_embd', 'n_head')
    """

    def __init__(self, fields: str | Sequence[str], message: str) -> None:
        super().__init__(message)
        self.fields: tuple[str, ...] = (fields,) if isinstance(fields, str) else tuple(fields)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (DataLoader workers, multiprocessing)
        return type(self), (self.fields, self.message)


def is_finite_number(x: Any) -> bool:
    """A real number that is neither NaN nor infinite (bools excluded)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_int(name: str, value: Any, low: int) -> None:
    """Raise a :class:`ConfigError` for ``name`` unless ``value`` is an int (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        kind = "a positive int" if low == 1 else f"an int >= {low}"
        raise ConfigError(name, f"{name} must be {kind}, got {value!r}")


def fast_mode() -> bool:
    """True when ``COURSE_FAST`` asks for small settings (``1``, ``true``, ``yes``, ``on``).

    >>> import os; os.environ["COURSE_FAST"] = "1"; fast_mode()
    True
    """
    value = os.environ.get("COURSE_FAST", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"COURSE_FAST={value!r} is not understood: set it to 1 for small settings "
        "or 0 (or leave it unset) for full ones."
    )


def pick(full: T, fast: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise.

    >>> import os; os.environ["COURSE_FAST"] = "0"; pick(full=5000, fast=50)
    5000
    >>> os.environ["COURSE_FAST"] = "1"; pick(full=5000, fast=50)
    50
    """
    return fast if fast_mode() else full


def from_dict_strict(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """Build the dataclass ``cls`` from ``data``; unknown keys raise a ValueError naming the valid ones.

    >>> from course_lib.presets import Recipe
    >>> from_dict_strict(Recipe, {"n_layers": 2}, "recipe")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown recipe field(s) ['n_layers']; valid fields are: description, ...
    """
    valid = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ValueError(f"unknown {what} field(s) {unknown}; valid fields are: {', '.join(valid)}")
    return cls(**data)
