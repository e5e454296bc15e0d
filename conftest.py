"""pytest settings for the whole repository: nbval runs every notebook in fast mode.

``make test`` runs ``pytest tests notebooks --nbval-lax``. The kernels nbval starts
inherit this process's environment, so setting COURSE_FAST here (unless it is already
set) is enough; the unit tests set or clear it themselves where it matters. A relative
COURSE_DATA_MIRROR is made absolute, since each kernel runs inside notebooks/. (This file
sits at the top of the repository, not among the students' notebooks.)
"""

import os
from pathlib import Path

os.environ.setdefault("COURSE_FAST", "1")
# Under pytest-xdist each worker runs its own kernel: one thread each keeps two kernels
# from oversubscribing a 2-core machine (kernels read this when torch starts).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
_mirror = os.environ.get("COURSE_DATA_MIRROR", "").strip()
if _mirror and not Path(_mirror).is_absolute():
    os.environ["COURSE_DATA_MIRROR"] = str(Path(_mirror).resolve())
