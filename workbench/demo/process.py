"""The demo model server as a child process, for targets that need it for a whole run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["LISTENING", "DemoProcess"]

# The one line ``python -m workbench.demo server`` prints once it listens, followed by its URL.
LISTENING = "workbench demo server listening on"
_EXIT_WAIT_S = 1.0


class DemoProcess:
    """The demo server as a child process, for targets that need it for a whole run."""

    def __init__(
        self,
        *,
        latency_ms: str = "0",
        fault_rate: float = 0.0,
        faults: str | None = None,
        seed: int = 0,
    ) -> None:
        self.latency_ms = str(latency_ms)
        self.fault_rate = fault_rate
        self.faults = faults
        self.seed = seed
        self._url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The child's OpenAI base URL (after start())."""
        if self._url is None:
            raise RuntimeError("DemoProcess is not running; call start() first")
        return self._url

    def command(self) -> list[str]:
        """The child's command line."""
        cmd = [
            sys.executable,
            "-m",
            "workbench.demo",
            "server",
            "--port",
            "0",
            "--latency-ms",
            self.latency_ms,
            "--fault-rate",
            repr(float(self.fault_rate)),
            "--seed",
            str(self.seed),
        ]
        if self.faults is not None:
            cmd += ["--faults", self.faults]
        return cmd

    def start(self, timeout: float = 30.0) -> DemoProcess:
        """Launch the child and wait for its "listening on URL" line."""
        if self._proc is not None:
            return self
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        line = self._first_line(timeout)
        match = re.search(rf"{LISTENING} (http://\S+)", line)
        if match is None:
            try:
                # Closing stdout comes before the exit: wait a moment so a crash says its code.
                code: int | None = self._proc.wait(timeout=_EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                code = None
            stderr = self._stderr_text()
            self.close()
            why = f"exited with code {code}" if code is not None else f"silent for {timeout:g} s"
            raise RuntimeError(
                f"demo server child process {why}; command: {' '.join(self.command())}\n"
                f"stdout: {line.strip()!r}\nstderr:\n{stderr.strip()}"
            )
        self._url = match.group(1)
        return self

    def close(self) -> None:
        """Terminate the child, waiting and killing it if it will not go."""
        proc, self._proc, self._url = self._proc, None, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5.0)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> DemoProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _first_line(self, timeout: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return lines[0].decode(errors="replace") if lines else ""

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")
