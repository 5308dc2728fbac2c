"""The demo model server as a child process: its command line, a failed start, a real start."""

from __future__ import annotations

import sys

import httpx
import pytest

from workbench.demo.process import DemoProcess


def test_demo_process_reports_a_failed_start(monkeypatch: pytest.MonkeyPatch) -> None:
    crash = [sys.executable, "-c", "import sys; sys.stderr.write('no port for you'); sys.exit(3)"]
    monkeypatch.setattr(DemoProcess, "command", lambda self: crash)
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*no port for you"):
        DemoProcess().start()


def test_demo_process_command_line() -> None:
    cmd = DemoProcess(latency_ms="80,400", fault_rate=0.1, faults="429", seed=4).command()
    assert cmd[:6] == [sys.executable, "-m", "workbench.demo", "server", "--port", "0"]
    assert cmd[6:] == [
        "--latency-ms",
        "80,400",
        "--fault-rate",
        "0.1",
        "--seed",
        "4",
        "--faults",
        "429",
    ]


def test_demo_process_serves_models() -> None:
    pytest.importorskip("workbench.demo.model")
    with DemoProcess(latency_ms="5", seed=3) as proc:
        assert proc.url.startswith("http://127.0.0.1:")
        r = httpx.get(f"{proc.url}/models", timeout=10)
        child = proc._proc
    assert [m["id"] for m in r.json()["data"]] == ["triage-v1", "triage-v2", "judge"]
    assert child is not None and child.poll() is not None
