"""papermill reads and changes every notebook's parameters, and fast mode keeps what it sets.

papermill finds parameters by reading the cell tagged ``parameters`` line by line and
injects a cell with the new values right after it. The cell after that applies fast mode
(``COURSE_FAST=1``) to the values still at their full-size defaults, so a value passed
with ``-p`` wins in both modes. These tests use papermill itself: its parser on every
notebook, its injection on every notebook, and two real executions.
"""

import ast
import logging
import os
import re
from pathlib import Path

import nbformat
import pytest

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("day*.ipynb")) + sorted((ROOT / "notebooks").glob("beyond*.ipynb"))
COMPLAINTS = ("Unable to parse", "Passed unknown parameter", "Black encountered an error")


def parameters_cell(nb) -> int:
    """Index of the cell tagged ``parameters``."""
    return next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))


def defaults(path: Path) -> dict:
    """The parameters cell's ``name = literal`` lines, evaluated."""
    nb = nbformat.read(path, as_version=4)
    body = ast.parse(nb.cells[parameters_cell(nb)].source).body
    return {node.targets[0].id: ast.literal_eval(node.value) for node in body}


def changed(value):
    """A value of the same kind that differs from ``value``, as papermill can pass it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 3 + 1
    if value is None:
        return 7
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, (list, tuple)):  # papermill passes lists (a tuple would arrive as a string)
        return [*value, *value[:1]]
    if isinstance(value, dict):
        return {**value, "seed": 99}
    raise TypeError(f"no changed value for {value!r}")


def complaints(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING or any(c in r.getMessage() for c in COMPLAINTS)]  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_parses_every_parameter_without_a_warning(path, caplog, recwarn):
    with caplog.at_level(logging.DEBUG, logger="papermill"):
        found = papermill.inspect_notebook(path)
    assert not complaints(caplog), complaints(caplog)
    assert not [str(w.message) for w in recwarn if "papermill" in str(w.filename)]
    expected = defaults(path)
    assert list(found) == list(expected), "papermill must find exactly the names the cell assigns"
    for name, value in expected.items():
        assert ast.literal_eval(found[name]["default"]) == value, name
        assert found[name]["help"], f"{name}: say what it is in a comment on its line"


def _prepared(path: Path, parameters: dict, tmp_path: Path, caplog):
    """The notebook as papermill would run it (nothing executed), and its first code cells."""
    with caplog.at_level(logging.INFO, logger="papermill"):
        nb = papermill.execute_notebook(str(path), str(tmp_path / path.name), parameters=parameters,
                                        prepare_only=True, kernel_name="python3", progress_bar=False)  # fmt: skip
    assert not complaints(caplog), complaints(caplog)
    i = parameters_cell(nb)
    return nb, i


def _run_parameter_cells(cells) -> dict:
    namespace: dict = {}
    for cell in cells:
        exec(compile(cell.source, "<cell>", "exec"), namespace)  # the cells a kernel would run first
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_value_passed_with_p_wins_in_fast_and_full_mode(path, fast, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1" if fast else "0")
    wanted = {name: changed(value) for name, value in defaults(path).items()}
    nb, i = _prepared(path, wanted, tmp_path, caplog)
    injected = nb.cells[i + 1]
    assert "injected-parameters" in injected.metadata.get("tags", []), "papermill injects right after the cell"
    values = _run_parameter_cells(nb.cells[i : i + 3])  # parameters, injected values, fast mode
    for name, value in wanted.items():
        assert values[name] == value, f"{name}: -p gave {value!r}, the notebook uses {values[name]!r}"


def test_fast_mode_cell_keeps_full_mode_as_is_and_shrinks_fast_mode(monkeypatch):
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        i = parameters_cell(nb)
        full = defaults(path)
        monkeypatch.setenv("COURSE_FAST", "0")
        assert {k: v for k, v in _run_parameter_cells(nb.cells[i : i + 2]).items() if k in full} == full
        monkeypatch.setenv("COURSE_FAST", "1")
        fast = _run_parameter_cells(nb.cells[i : i + 2])
        shrunk = [k for k in full if fast[k] != full[k]]
        assert shrunk, f"{path.name}: fast mode changes nothing"


def _kernel_env(monkeypatch, fast: bool) -> None:
    """The kernel papermill starts inherits this process's environment."""
    monkeypatch.setenv("COURSE_FAST", "1" if fast else "0")
    mirror = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    if mirror:
        monkeypatch.setenv("COURSE_DATA_MIRROR", str(Path(mirror).resolve()))


def _execute(name: str, parameters: dict, tmp_path: Path, caplog):
    with caplog.at_level(logging.INFO, logger="papermill"):
        nb = papermill.execute_notebook(str(ROOT / "notebooks" / name), str(tmp_path / name), parameters=parameters,
                                        kernel_name="python3", cwd=str(ROOT / "notebooks"), progress_bar=False,
                                        execution_timeout=300)  # fmt: skip
    assert not complaints(caplog), complaints(caplog)
    return nb


def _printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.get("output_type") == "stream")  # fmt: skip


def test_day16_runs_with_max_order_3_in_fast_mode(tmp_path, caplog, monkeypatch):
    # fast mode would use max_order 6: the printed orders show that -p max_order 3 won
    _kernel_env(monkeypatch, fast=True)
    nb = _execute("day16_perplexity_and_evaluation.ipynb", {"max_order": 3}, tmp_path, caplog)
    line = re.search(r"plain counts \(k = 0\): (\{.*\})", _printed(nb))
    assert line, "section 4 prints the orders it evaluated"
    assert list(ast.literal_eval(line.group(1))) == [1, 2, 3]


def test_day01_runs_with_n_points_100_in_fast_mode(tmp_path, caplog, monkeypatch):
    _kernel_env(monkeypatch, fast=True)
    nb = _execute("day01_tensors_and_neurons.ipynb", {"n_points": 100}, tmp_path, caplog)
    assert "X_toy: (100, 2)" in _printed(nb), "fast mode would have used 60 points"
