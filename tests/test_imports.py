"""No import circle in workbench/: modules import in any order, and the import graph is acyclic."""

from __future__ import annotations

import ast
import pkgutil
import random
import subprocess
import sys
from pathlib import Path

import pytest

import workbench

PACKAGE = Path(workbench.__file__).parent
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(workbench.__path__, "workbench.")
    if "__main__" not in m.name
)


def _module_of(path: Path) -> str:
    parts = ("workbench", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The workbench modules that ``path`` imports anywhere: at the top, in a function, for types."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # `from pkg import name` loads the submodule pkg.name if there is one, else pkg
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != module}


def _graph() -> dict[str, set[str]]:
    paths = {_module_of(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {name: _imports(path, name, known) for name, path in sorted(paths.items())}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_walk_finds_the_subpackages() -> None:
    assert {"workbench.audit", "workbench.scoring._registry", "workbench.demo.app"} <= set(MODULES)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_module_imports_in_a_fresh_interpreter_in_any_order(seed: int) -> None:
    order = MODULES.copy()
    random.Random(seed).shuffle(order)
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(
        [sys.executable, "-c", code, *order], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"import order {order}:\n{done.stderr[-3000:]}"


def test_the_import_graph_has_no_circle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_graph_check_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_at_the_top_inside_functions_and_relative(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from workbench import store\n"
        "from . import _registry\n"
        "from ..errors import ConfigError\n"
        "if TYPE_CHECKING:\n"
        "    from workbench.golden import Case\n"
        "def f():\n"
        "    import workbench.audit\n"
        "    from workbench import run_eval\n"
    )
    known = {"workbench", "workbench.store", "workbench.errors", "workbench.golden"}
    known |= {"workbench.audit", "workbench.scoring._registry", "workbench.scoring.mod"}
    assert _imports(source, "workbench.scoring.mod", known) == {
        "workbench",
        "workbench.store",
        "workbench.scoring._registry",
        "workbench.errors",
        "workbench.golden",
        "workbench.audit",
    }
    assert "workbench.audit" in _graph()["workbench.store"]
