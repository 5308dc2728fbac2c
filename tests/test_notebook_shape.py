"""The notebooks stay thin clients of the package: constants, calls, and a short record."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def _code_cells(path: Path) -> list[dict[str, object]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


def _source(cell: dict[str, object]) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else str(source)


def test_there_are_notebooks() -> None:
    assert {p.stem for p in NOTEBOOKS} >= {
        "golden_eval",
        "model_delta",
        "profile_hot_paths",
        "latency_budgets",
        "cache_effectiveness",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_first_cell_holds_parameters_and_only_constants(path: Path) -> None:
    first = _code_cells(path)[0]
    assert "parameters" in first["metadata"].get("tags", [])  # type: ignore[attr-defined]
    for node in ast.parse(_source(first)).body:
        assert isinstance(node, ast.Assign), ast.unparse(node)
        ast.literal_eval(node.value)  # a constant: a literal, a list, a dict or None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_last_cells_are_short_and_record_through_the_package(path: Path) -> None:
    cells = _code_cells(path)
    last = ast.parse(_source(cells[-1])).body
    assert len(last) <= 3, _source(cells[-1])
    recording = [c for c in cells if "record_summary(" in _source(c)]
    assert len(recording) == 1
    statements = ast.parse(_source(recording[0])).body
    first = ast.unparse(statements[0])
    assert len(statements) <= 3 and first.startswith("record_summary(summary_path, "), first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_defines_functions_or_builds_a_figure(path: Path) -> None:
    for cell in _code_cells(path)[1:]:
        tree = ast.parse(_source(cell))
        for node in ast.walk(tree):
            assert not isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Lambda), ast.unparse(
                node
            )
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not any(n.startswith("plotly") for n in names), ast.unparse(node)
        # Statements, not lines: the formatter spreads one long call over many lines.
        assert len(tree.body) <= 12, _source(cell)
