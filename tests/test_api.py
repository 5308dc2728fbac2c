"""The public surface: a deliberate __all__, documented commands and modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import workbench
from workbench.cli import main

from .conftest import ROOT

# Every module a user may import: no _private part. The CLI's surface is its commands
# (checked below against the README), so it declares no __all__.
PUBLIC_MODULES = [
    info.name
    for info in pkgutil.walk_packages(workbench.__path__, "workbench.")
    if not any(part.startswith("_") for part in info.name.split("."))
    and info.name != "workbench.cli"
]


def test_public_api_is_pinned() -> None:
    assert workbench.__all__ == [
        "Case",
        "Dataset",
        "EvalOptions",
        "Request",
        "Response",
        "RunSummary",
        "Selection",
        "Store",
        "WorkbenchError",
        "load_dataset",
        "run_eval",
        "summarize",
    ]
    for name in workbench.__all__:
        assert getattr(workbench, name).__doc__


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_exported_members(name: str) -> None:
    """httpx's habit: ``__all__`` names what exists, and every public definition is in it."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} declares no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [member for member in exported if not hasattr(module, member)]
    assert not missing, f"{name}.__all__ names {missing}, which {name} does not have"
    # defined here, or (for a package) in one of its private modules and imported here
    home = (name, *(f"{name}.{part}" for part in _private_parts(module)))
    public = {
        member
        for member, obj in vars(module).items()
        if not member.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ in home
    }
    leaked = sorted(public - set(exported))
    assert not leaked, f"{name} defines {leaked} but leaves them out of __all__ (add or rename)"


def _private_parts(module: object) -> list[str]:
    path = getattr(module, "__path__", None)
    return (
        [info.name for info in pkgutil.iter_modules(path) if info.name.startswith("_")]
        if path
        else []
    )


def test_the_member_check_covers_the_packages_and_flat_modules() -> None:
    assert {"workbench.golden", "workbench.profiling", "workbench.profiling.flamegraph"} <= set(
        PUBLIC_MODULES
    )
    assert "workbench.scoring._registry" not in PUBLIC_MODULES
    assert _private_parts(importlib.import_module("workbench.scoring")) == [
        "_builtins",
        "_judges",
        "_registry",
        "_score",
        "_tools",
    ]


def test_every_module_has_a_docstring() -> None:
    for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        module = importlib.import_module(info.name)
        assert module.__doc__ and module.__doc__.strip(), info.name


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = []
    for name, cmd in main.commands.items():
        sub = getattr(cmd, "commands", None)
        commands.extend((f"{name} {s}", c) for s, c in sub.items()) if sub else commands.append(
            (name, cmd)
        )
    for name, cmd in commands:
        assert cmd.help, f"workbench {name} has no help text"
        assert f"workbench {name}" in readme, f"workbench {name} is not in the README"


def test_readme_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_schema_doc_covers_every_table_and_column(tmp_path: Path) -> None:
    from workbench.store import Store

    doc = (ROOT / "docs" / "schema.md").read_text()
    with Store(tmp_path / "x.db") as s:
        for table in (t for t in s.db.table_names() if not t.startswith("sqlite_")):
            assert f"## `{table}`" in doc
            for column in s.db[table].columns_dict:
                assert f"`{column}`" in doc, f"{table}.{column} is not documented"
