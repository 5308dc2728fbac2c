"""``python -m workbench.demo <command>``: the demo's one command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.demo.__main__ import COMMANDS, main

from .conftest import ROOT


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("server", "app", "workload", "traffic"))
    assert set(COMMANDS) == {"server", "app", "workload", "traffic"}


def test_each_command_has_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    for name, flag in (
        ("server", "--latency-ms"),
        ("app", "--model-url"),
        ("workload", "--duration"),
        ("traffic", "--requests"),
    ):
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert f"python -m workbench.demo {name}" in out and flag in out, name


def test_unknown_commands_and_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["nope"], ["workload", "--no-such-option"], ["workload"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
    assert "--duration" in capsys.readouterr().err  # the last one: a required option


def test_only_the_chosen_command_is_imported() -> None:
    code = (
        "import sys\n"
        "from workbench.demo.__main__ import main\n"
        "try:\n"
        "    main(['server', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = {m for m in sys.modules if m.startswith('workbench.demo.')}\n"
        "assert 'workbench.demo.server' in loaded, loaded\n"
        "assert not loaded & {'workbench.demo.app', 'workbench.demo.traffic'}, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_module_runs_as_a_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workbench.demo", "server", "--host", "0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "python -m workbench.demo server: error:" in done.stderr
    assert "127.0.0.1 only" in done.stderr
