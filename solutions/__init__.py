"""Solutions to the registered exercises, one module per day, out of the notebooks' flow.

Each module defines ``SOLUTIONS`` (exercise key -> the answer that passes) and ``WRONG``
(exercise key -> plausible wrong answers that the checker must reject). The book's solutions
appendix shows these files; ``tests/test_exercises.py`` runs them against the checkers.
"""
