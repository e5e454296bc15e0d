"""Every example in course_lib's docstrings runs and prints what it says (``doctest``).

Each module runs in a clean environment: ``COURSE_FAST`` unset, a temporary
``COURSE_DATA_DIR`` (an example that records a result writes there, never into the
repository or the user's data folder, whose files are only read, as a mirror) and a
temporary current folder; the environment is put back afterwards, whatever an example set.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import pkgutil
from pathlib import Path

import pytest

import course_lib
from course_lib.data import data_dir, mirror_dir

# Examples that cannot print the same thing everywhere: the DocTest's name and why.
SKIP = {
    "course_lib.device": "prints a description of the machine it runs on",
}


def modules_with_examples() -> list[str]:
    """Every course_lib module whose source has a ``>>>`` line (found without importing it)."""
    found = ["course_lib"] + [m.name for m in pkgutil.walk_packages(course_lib.__path__, "course_lib.")]
    names = []
    for name in sorted(found):
        if name.rsplit(".", 1)[-1] == "__main__":  # importing it would run the command line
            continue
        origin = importlib.util.find_spec(name).origin
        if ">>> " in Path(origin).read_text(encoding="utf-8"):
            names.append(name)
    return names


MODULES = modules_with_examples()


def test_the_library_has_examples() -> None:
    assert {"course_lib.config", "course_lib.model.generation", "course_lib.lm_eval"} <= set(MODULES)


@pytest.fixture
def clean_environment(tmp_path, monkeypatch):
    """A temporary data cache and current folder; os.environ restored whatever an example sets."""
    saved = dict(os.environ)
    mirror = mirror_dir() or data_dir()  # the user's files, only read (copied into the temporary cache)
    os.environ.pop("COURSE_FAST", None)
    os.environ["COURSE_DATA_MIRROR"] = str(mirror)
    os.environ["COURSE_DATA_DIR"] = str(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, clean_environment) -> None:
    report: list[str] = []
    runner = doctest.DocTestRunner(verbose=False)
    for test in doctest.DocTestFinder().find(importlib.import_module(name)):
        if test.name not in SKIP:
            runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0, "".join(report)
