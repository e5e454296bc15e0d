"""The checkers of the registered exercises, one module per day.

Each module registers its exercises with :func:`course_lib.exercises.exercise`; a checker
builds fresh inputs (random shapes, edge cases), computes the reference itself with code
that is independent of any solution (torch's own ops, closed forms, a reference loop), and
raises :class:`~course_lib.exercises.Wrong` saying what differs and on which input.
The solutions live outside the library, in the repository's ``solutions/`` folder and the
book's solutions appendix; ``tests/test_exercises.py`` checks that every solution passes and
that the placeholder and plausible wrong answers are rejected.
"""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith(("beyond", "day"))):
    importlib.import_module(f"{__name__}.{_module}")  # each day's module registers its exercises
