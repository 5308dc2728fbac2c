"""llama.cpp's ``llama-server`` serving SmolLM2-135M-Instruct on a free loopback port.

The server and the model are built and unpacked once per machine by
``scripts/llama_server.py`` (``make test`` runs it first). A missing build is never a skip:
it fails, naming what to install or run.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "llama_server.py"


def build_script() -> ModuleType:
    """scripts/llama_server.py as a module."""
    spec = importlib.util.spec_from_file_location("llama_server", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """A running llama-server child process; stopped by PID."""

    def __init__(self, log: Path) -> None:
        script = build_script()
        try:
            script.ensure_model()
            script.ensure_server()
        except (SystemExit, subprocess.CalledProcessError, OSError) as exc:
            pytest.fail(
                f"llama-server is not built and cannot be built here: {exc}. "
                "Install cmake, g++ and make, then run: python scripts/llama_server.py",
                pytrace=False,
            )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        argv, env = script.command(self.port)
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama-server exited with {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"llama-server did not answer /health within {timeout_s:g}s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
