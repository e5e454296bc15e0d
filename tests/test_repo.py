"""The repository's own rules: clean notebooks, a complete table of contents, one set of
dependencies in pyproject.toml and environment.yml."""

import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("day*.ipynb"))


def test_notebooks_exist_and_are_named_by_day():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"day(0[1-9]|1\d|2[01])_[a-z0-9_]+\.ipynb", path.name), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]  # fmt: skip
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_title_parameters_exercises_and_summary(path):
    nb = nbformat.read(path, as_version=4)
    day = int(path.name[3:5])
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith(f"# Day {day} "), "first cell must be the '# Day N — title'"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].cell_type == "code", "exactly one papermill parameters cell"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Learning objectives" in markdown and "## Summary" in markdown
    assert "## Exercises" in markdown
    solutions = [c for c in nb.cells if "hide-input" in c.metadata.get("tags", [])
                 and c.source.lstrip().startswith("# Solution")]  # fmt: skip
    assert len(solutions) >= 3, "at least three exercises, each with a hidden solution"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "from course_lib" in code or "import course_lib" in code


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        for value in node.values():
            files += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += _toc_files(item)
    return files


def test_table_of_contents_matches_the_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"], *_toc_files(toc.get("parts", []))]
    for name in files:
        assert any((ROOT / f"{name}{ext}").exists() for ext in (".md", ".ipynb")), name
    listed = {f for f in files if f.startswith("notebooks/")}
    present = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    assert listed == present, f"in _toc.yml but missing: {listed - present}; not listed: {present - listed}"


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("lab", "book", "dev"):
        wanted |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {r for r in pip if not r.startswith("-e")}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    assert "-e ." in pip, "environment.yml must install course_lib itself"


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert re.search(r"^\s*(\w+=\S*\s+)*make test\b", ci, re.M), ".ci/run must call the README's test command"
