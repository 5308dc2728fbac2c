"""The CLI end to end: eval, runs, gate, JSON, errors, and kill -9 then resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.store import Store

from .conftest import ROOT


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and stdout, or on failure stdout and stderr (progress lines go to stderr)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["eval", "--help"],
        ["runs", "--help"],
        ["demo", "serve", "--help"],
        ["demo", "traffic", "--help"],
    ):
        code, out = invoke(*args)
        assert code == 0 and "Usage:" in out


def test_eval_json_summary_has_the_contract_keys(tmp_path: Path, tiny: Path) -> None:
    code, out = invoke(
        "eval",
        str(tiny),
        "--model",
        "python:tests.echo_app:answer",
        "--db",
        str(tmp_path / "x.db"),
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    for key in (
        "run_id",
        "cases",
        "results",
        "passed",
        "pass_rate",
        "errors",
        "p95_latency_ms",
        "budget_ok",
    ):
        assert key in doc
    assert (doc["cases"], doc["results"], doc["passed"], doc["budget_ok"]) == (6, 6, 5, True)


def test_gate_exits_nonzero_and_names_the_broken_budget(tmp_path: Path, tiny: Path) -> None:
    code, out = invoke(
        "eval",
        str(tiny),
        "--model",
        "python:tests.echo_app:explode",
        "--db",
        str(tmp_path / "x.db"),
        "--gate",
    )
    assert code == 1
    assert "gate: FAILED" in out and "error_rate 100.00% > 0.50%" in out


def test_runs_lists_newest_first(tmp_path: Path, tiny: Path) -> None:
    db = str(tmp_path / "x.db")
    invoke("eval", str(tiny), "--model", "python:tests.echo_app:answer", "--db", db)
    invoke("eval", str(tiny), "--model", "python:tests.echo_app:answer_async", "--db", db)
    code, out = invoke("runs", "--db", db, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["target"] for r in rows] == [
        "python:tests.echo_app:answer_async",
        "python:tests.echo_app:answer",
    ]


def test_library_errors_become_clean_messages(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["eval", "nope", "--model", "demo:triage-v1", "--db", str(tmp_path / "x.db")]
    )
    assert result.exit_code == 1
    assert "Error: dataset 'nope' not found" in result.output
    assert "Traceback" not in result.output


def test_malformed_golden_file_leaves_database_unchanged(tmp_path: Path, tiny: Path) -> None:
    db = tmp_path / "x.db"
    invoke("eval", str(tiny), "--model", "python:tests.echo_app:answer", "--db", str(db))
    before = db.read_bytes() if not (tmp_path / "x.db-wal").exists() else None
    with Store(db) as s:
        counts = [
            s.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("runs", "results", "scores")
        ]
    (tiny / "cases.jsonl").write_text(
        '{"id": "a", "input": {"question": 1}, "expected": 1}\n{"id": "a"}\n'
    )
    result = CliRunner().invoke(
        main, ["eval", str(tiny), "--model", "python:tests.echo_app:answer", "--db", str(db)]
    )
    assert result.exit_code == 1 and "cases.jsonl:2:" in result.output
    with Store(db) as s:
        after = [
            s.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("runs", "results", "scores")
        ]
    assert after == counts
    del before


def test_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0 and "version" in out.stdout


@pytest.mark.parametrize(
    "bad", [["--concurrency", "0"], ["--temperature", "5"], ["--repeats", "0"]]
)
def test_bad_option_values_are_refused(tiny: Path, bad: list[str]) -> None:
    result = CliRunner().invoke(
        main, ["eval", str(tiny), "--model", "python:tests.echo_app:answer", *bad]
    )
    assert result.exit_code == 2 and "Invalid value" in result.output
