"""The repository's own rules: clean notebooks, a complete table of contents, one set of
dependencies in pyproject.toml and environment.yml."""

import ast
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from course_lib.exercises import registered

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("day*.ipynb")) + sorted((ROOT / "notebooks").glob("beyond*.ipynb"))


def _chapter(path: Path) -> tuple[str, str]:
    """``("day21", "# Day 21 ")`` or, for Part 3, ``("beyond01", "# Beyond the course 1 ")``: its key and title."""
    key = path.name.split("_")[0]
    number = int(key[-2:])
    return key, (f"# Day {number} " if key.startswith("day") else f"# Beyond the course {number} ")


def test_notebooks_exist_and_are_named_by_day():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"(day(0[1-9]|1\d|2[01])|beyond\d\d)_[a-z0-9_]+\.ipynb", path.name), path.name


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
    chapter, title = _chapter(path)
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith(title), f"first cell must be the '{title}— title'"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].cell_type == "code", "exactly one papermill parameters cell"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Learning objectives" in markdown and "## Summary" in markdown
    assert "## Exercises" in markdown
    solutions = [c for c in nb.cells if "hide-input" in c.metadata.get("tags", [])
                 and c.source.lstrip().startswith("# Solution")]  # fmt: skip
    keys = sorted(k for k in registered() if k.startswith(f"{chapter}."))
    if keys:  # registered exercises: every one is checked in the notebook, the solutions are elsewhere
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert not solutions, "the solutions live in solutions/ and the book's appendix, not in the notebook"
        for key in keys:
            assert f'check("{key}",' in code, f"{key} is registered but the notebook never checks it"
        assert (ROOT / "book" / "solutions" / f"{chapter}.md").exists(), "the appendix page of the solutions"
    else:
        assert len(solutions) >= 3, "at least three exercises, each with a hidden solution"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "from course_lib" in code or "import course_lib" in code


def _parameters_cell(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_one_literal_per_line(path):
    """papermill reads the cell line by line: `name = literal  # what it is`, nothing else."""
    nb = nbformat.read(path, as_version=4)
    cell = nb.cells[_parameters_cell(nb)]
    assert cell.source.startswith("# Parameters") and "papermill in.ipynb out.ipynb -p NAME VALUE" in cell.source
    lines = cell.source.splitlines()
    body = ast.parse(cell.source).body
    assert body, "no parameters"
    for node in body:
        what = lines[node.lineno - 1]
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"only assignments: {what}"
        assert isinstance(node.targets[0], ast.Name), f"one name per line: {what}"
        assert node.lineno == node.end_lineno, f"one line per parameter: {what}"
        ast.literal_eval(node.value)  # raises ValueError on a call, a name or an expression
        comment = what[node.end_col_offset :]
        assert comment.startswith("  # "), f"say what it is in a comment on its line: {what}"
        assert "=" not in comment, f"papermill skips a line with two '=': {what}"
    for number, line in enumerate(lines, 1):
        assert not line.strip() or line.startswith("#") or any(n.lineno == number for n in body), line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_fast_mode_cell_follows_and_replaces_only_defaults(path):
    """The cell after the parameters: `name = FAST if name == DEFAULT else name` under `if fast_mode():`."""
    nb = nbformat.read(path, as_version=4)
    i = _parameters_cell(nb)
    params = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(nb.cells[i].source).body}
    cell = nb.cells[i + 1]
    assert cell.cell_type == "code" and not cell.metadata.get("tags"), "an untagged code cell"
    assert cell.source.startswith("# Fast mode (COURSE_FAST=1")
    imp, branch = ast.parse(cell.source).body
    assert ast.unparse(imp) == "from course_lib import fast_mode"
    assert isinstance(branch, ast.If) and ast.unparse(branch.test) == "fast_mode()" and not branch.orelse
    replaced = []
    for stmt in branch.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        name = stmt.targets[0].id
        if name not in params:
            continue  # a helper value, such as day 21's fast_overrides
        value, line = stmt.value, ast.unparse(stmt)
        assert isinstance(value, ast.IfExp) and ast.unparse(value.orelse) == name, line
        test = value.test
        assert isinstance(test, ast.Compare) and ast.unparse(test.left) == name and len(test.ops) == 1, line
        default = ast.literal_eval(test.comparators[0])
        assert default == params[name] and type(default) is type(params[name]), f"not the default: {line}"
        assert isinstance(test.ops[0], ast.Is if default is None else ast.Eq), line
        replaced.append(name)
    assert replaced and len(replaced) == len(set(replaced)), replaced
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"\bpick\(", code), "the parameters are literals; fast mode lives in its own cell"


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
