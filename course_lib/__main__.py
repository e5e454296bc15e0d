"""Day 21: ``python -m course_lib train|generate|chat|info|bench``, also installed as ``course``.

A thin entry point: the commands live in :mod:`course_lib.cli`.
"""

import sys

from course_lib.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
