"""The public surface: a deliberate __all__, documented commands and modules."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import workbench
from workbench.cli import main

from .conftest import ROOT


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
