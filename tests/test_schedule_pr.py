"""The pull-request workflow (``schedule --emit github-pr``): valid YAML whose commands the
workbench CLI runs as written."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from workbench.cli import main
from workbench.errors import ConfigError
from workbench.schedule import EMITTERS, emit, pr_commands

from .conftest import ROOT


def workflow(**kwargs: Any) -> dict[str, Any]:
    doc = yaml.safe_load(emit("github-pr", None, workdir=Path("."), **kwargs))
    assert isinstance(doc, dict)
    return doc


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["jobs"]["golden"]["steps"])


def commands(doc: dict[str, Any]) -> list[list[str]]:
    """Each shell line of the workflow's run steps, split as a shell would."""
    return [shlex.split(line) for s in steps(doc) for line in s.get("run", "").splitlines()]


def test_the_workflow_runs_on_pull_requests_and_uploads_the_reports() -> None:
    assert "github-pr" in EMITTERS
    doc = workflow()
    on = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in on and "schedule" not in on
    uses = [s.get("uses", "") for s in steps(doc)]
    assert uses[:2] == ["actions/checkout@v4", "actions/setup-python@v5"]
    assert steps(doc)[1]["with"]["python-version"] == "3.11"
    assert ["python", "-m", "pip", "install", "-e", "."] in commands(doc)
    upload = steps(doc)[-1]
    assert upload["uses"] == "actions/upload-artifact@v4" and upload["if"] == "always()"
    assert upload["with"]["path"] == "junit/"


def test_it_replays_both_targets_then_gates_on_the_comparison() -> None:
    runs = [c for c in commands(workflow()) if c[:1] == ["workbench"]]
    base, cand, cmp = runs
    for argv, target in ((base, "demo:triage-v1"), (cand, "demo:triage-v2")):
        assert argv[:3] == ["workbench", "eval", "support-triage"]
        assert _value(argv, "--model") == target
        assert _value(argv, "--replay") == "data/snapshots/support-triage"
        assert _value(argv, "--db") == "pr.db"
    assert "--gate" in cand and _value(cand, "--junit") == "junit/eval.xml"
    assert "--gate" not in base and "--junit" not in base  # the reference breaks nothing
    assert cmp[:2] == ["workbench", "compare"] and _value(cmp, "--latest") == "support-triage"
    assert _value(cmp, "--db") == "pr.db" and "--gate" in cmp
    assert _value(cmp, "--markdown") == "$GITHUB_STEP_SUMMARY"
    assert _value(cmp, "--junit") == "junit/compare.xml"
    text = emit("github-pr", None, workdir=Path("."))
    assert '--markdown "$GITHUB_STEP_SUMMARY"' in text  # quoted for the shell


def test_dataset_targets_and_snapshots_are_configurable_and_quoted() -> None:
    doc = workflow(
        dataset="my set",
        baseline="openai:gpt-4o-mini",
        candidate="python:app.v2:answer",
        snapshots="snap shots/my set",
    )
    base, cand, cmp = [c for c in commands(doc) if c[:1] == ["workbench"]]
    assert base[2] == cand[2] == _value(cmp, "--latest") == "my set"
    assert (_value(base, "--model"), _value(cand, "--model")) == (
        "openai:gpt-4o-mini",
        "python:app.v2:answer",
    )
    assert _value(base, "--replay") == _value(cand, "--replay") == "snap shots/my set"
    with pytest.raises(ConfigError, match="one non-empty line"):
        pr_commands("a\nb", "demo:x", "demo:y", "snaps")
    with pytest.raises(ConfigError, match="candidate"):
        emit("github-pr", None, workdir=Path("."), candidate=" ")


def test_the_cron_applies_to_the_schedules_only(tmp_path: Path) -> None:
    ignored = emit("github-pr", "not a cron", workdir=tmp_path)
    assert ignored == emit("github-pr", None, workdir=tmp_path)
    with pytest.raises(ConfigError, match="needs a cron expression"):
        emit("cron", None, workdir=tmp_path)
    with pytest.raises(ConfigError, match="github-pr"):
        emit("gitlab", "17 6 * * 1", workdir=tmp_path)  # the error lists every emitter
    assert "workflow_dispatch" in emit("github", "17 6 * * 1", workdir=tmp_path)


def test_the_cli_runs_the_commands_as_emitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflow's commands through the CLI, in a checkout-like folder: the candidate's
    budgets hold, the demo v2 regresses, so the compare gate fails and writes its summary.
    An option the CLI does not have yet (``--junit``) is left out and named."""
    (tmp_path / "data").symlink_to(ROOT / "data")
    summary = tmp_path / "step-summary.md"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    runs = [c for c in commands(workflow()) if c[:1] == ["workbench"]]
    left_out: set[str] = set()
    codes = []
    for argv in runs:
        args = [os.path.expandvars(a) for a in argv[1:]]
        args, missing = _known(args)
        left_out |= missing
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        codes.append(result.exit_code)
        if "compare" in args:
            assert "gate: FAILED" in result.output + (result.stderr or "")
    assert codes == [0, 0, 1]
    assert left_out <= {"--junit"}
    assert summary.read_text(encoding="utf-8").startswith("## ❌ FAIL")
    assert (tmp_path / "pr.db").exists()
    if "--junit" not in left_out:  # the CLI has it: the reports are written
        assert (tmp_path / "junit" / "eval.xml").exists()
        assert (tmp_path / "junit" / "compare.xml").exists()


def _value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def _known(args: list[str]) -> tuple[list[str], set[str]]:
    """The arguments without the options the CLI command does not define (with their value)."""
    command = main.commands[args[0]]
    flags = {
        opt: p.is_flag for p in command.params if isinstance(p, click.Option) for opt in p.opts
    }
    kept: list[str] = []
    missing: set[str] = set()
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg.startswith("--") and arg not in flags:
            missing.add(arg)
            skip = i + 1 < len(args) and not args[i + 1].startswith("--")
            continue
        kept.append(arg)
    return kept, missing
