"""Running py-spy or scalene with the workload as its child, and turning failures into clear errors."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, RunError
from workbench.profiling._target import ENTRY_FILE, RUNNER, STATUS_ENV, Target

_GRACE_S = 60.0
_TAIL_LINES = 15


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    status: dict[str, Any] | None
    wall_s: float
    stopped: bool  # we stopped it at the requested duration


def tool_path(tool: str) -> str:
    local = Path(sys.executable).parent / tool
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(tool)
    if not found:
        raise ConfigError(
            f"{tool} is not installed (looked next to {sys.executable} and on PATH); pip install {tool}"
        )
    return found


def _launch(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    logs: Path,
    stop_after: float | None,
    started: Path,
    group_stop: bool,
    limit_s: float,
) -> tuple[int, str, str, float, bool]:
    """Run a profiler in its own session; SIGINT it ``stop_after`` s after the workload starts."""
    begin = time.perf_counter()
    out_log, err_log = logs / "stdout.txt", logs / "stderr.txt"
    with out_log.open("w") as out_fh, err_log.open("w") as err_fh:
        try:
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out_fh,
                stderr=err_fh,
                start_new_session=True,
            )
        except OSError as exc:
            raise RunError(f"cannot start {cmd[0]}: {exc}") from None
    stopped = False
    try:
        if stop_after is not None:
            # The clock starts with the workload, not with the profiler's own start-up.
            limit = time.perf_counter() + _GRACE_S
            while proc.poll() is None and not started.exists() and time.perf_counter() < limit:
                time.sleep(0.01)
            try:
                proc.wait(timeout=stop_after)
            except subprocess.TimeoutExpired:
                stopped = True
                _signal(proc, signal.SIGINT, group=group_stop)
        proc.wait(timeout=_GRACE_S if stopped else limit_s)
    except subprocess.TimeoutExpired:
        _signal(proc, signal.SIGKILL, group=True)
        proc.wait()
        raise RunError(
            f"{Path(cmd[0]).name} did not finish in time ({limit_s:.0f} s including "
            f"{_GRACE_S:.0f} s of grace); it and the workload were killed"
        ) from None
    except BaseException:
        _signal(proc, signal.SIGKILL, group=True)
        proc.wait()
        raise
    finally:
        # A workload outliving its profiler (e.g. py-spy stopped before its signal handler
        # was installed) must not keep burning CPU.
        _signal(proc, signal.SIGKILL, group=True)
    wall = time.perf_counter() - begin
    read = {"encoding": "utf-8", "errors": "replace"}
    return proc.returncode, out_log.read_text(**read), err_log.read_text(**read), wall, stopped


def _signal(proc: subprocess.Popen[Any], sig: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, sig)
        elif proc.poll() is None:
            proc.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_status(path: Path) -> dict[str, Any] | None:
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return status if isinstance(status, dict) else None


def record(
    target: Target,
    *,
    tool: str,
    exe: str,
    duration_s: float,
    rate_hz: int,
    native: bool,
    out_dir: Path,
    cwd: Path,
    profile_only: str | None,
) -> tuple[Outcome, Path]:
    with tempfile.TemporaryDirectory(prefix="workbench-profile-") as tmp:
        status_file = Path(tmp) / "status.json"
        env = {**os.environ, STATUS_ENV: str(status_file)}
        args = [target.kind, target.name, *target.args]
        if tool == "py-spy":
            output = out_dir / "raw.txt"
            whole = max(1, math.ceil(duration_s))
            cmd = [exe, "record", "-r", str(rate_hz), "-d", str(whole), "-f", "raw", "--nolineno"]
            cmd += ["-o", str(output), *(["--native"] if native else []), "--", *target.command()]
            # py-spy takes whole seconds; a fractional duration is ended with SIGINT, to
            # py-spy alone: it then writes its output and kills the workload.
            stop_after = duration_s if duration_s < whole else None
            group_stop = False
        else:
            output = out_dir / "scalene.json"
            entry = Path(tmp) / ENTRY_FILE
            entry.write_text(RUNNER, encoding="utf-8")
            cmd = [exe, "run", "-o", str(output), "--cpu-sampling-rate", f"{1 / rate_hz:g}"]
            # scalene profiles only code under its program path: the project, when the
            # workload lives in it, else the workload's own folder.
            home = Path(target.roots[0])
            program_path = cwd.resolve() if home.is_relative_to(cwd.resolve()) else home
            cmd += ["--program-path", str(program_path)]
            if profile_only:  # only files whose path holds one of these fragments
                cmd += ["--profile-all", "--profile-only", profile_only]
            cmd += [str(entry), "---", *args]
            stop_after, group_stop = duration_s, True  # scalene runs the workload in-process
        code, out, err, wall, stopped = _launch(
            cmd,
            cwd=cwd,
            env=env,
            logs=Path(tmp),
            stop_after=stop_after,
            started=Path(str(status_file) + ".started"),
            group_stop=group_stop,
            limit_s=math.ceil(duration_s) + _GRACE_S,
        )
        status = _read_status(status_file)
    return Outcome(code, out, err, status, wall, stopped), output


def check_outcome(outcome: Outcome, target: Target, tool: str, output: Path, rate_hz: int) -> None:
    """Raise the clear error for a run that failed before producing a profile."""
    status = outcome.status or {}
    error = str(status.get("error") or "")
    if error.startswith("not-found"):
        raise ConfigError(f"profile target {target.workload!r}: {error.partition(': ')[2]}")
    exit_code = status.get("exit")
    if exit_code is None and tool == "scalene" and not outcome.stopped:
        exit_code = outcome.returncode
    if exit_code not in (None, 0) and not outcome.stopped:  # stopping it is not a failure
        raise RunError(
            f"the workload {target.workload!r} exited with status {exit_code}; "
            f"its stderr ends with:\n{_tail(outcome.stderr, tool)}"
        )
    text = outcome.stderr + outcome.stdout
    denied = r"^Error: .*(permission denied|operation not permitted)"
    if outcome.returncode != 0 and re.search(denied, text, re.I | re.M):
        raise RunError(
            f"{tool} was not permitted to read the workload's memory: {_tail(text, None, 3)}; "
            "launch the workload as the profiler's child (as workbench does) rather than by PID, "
            "or grant ptrace: docker run --cap-add SYS_PTRACE, Kubernetes capabilities.add: "
            "[SYS_PTRACE], or sysctl kernel.yama.ptrace_scope=0"
        )
    if tool == "py-spy" and outcome.returncode != 0:
        if "Failed to get process" in text or "No such process" in text or status:
            raise RunError(too_short(target, rate_hz, outcome.wall_s))
        raise RunError(f"py-spy failed (exit {outcome.returncode}): {_tail(text, None)}")
    if not output.is_file() or output.stat().st_size == 0:
        if tool == "py-spy" or "did not run long enough" in text or outcome.returncode == 0:
            raise RunError(too_short(target, rate_hz, outcome.wall_s))
        raise RunError(f"scalene wrote no profile (exit {outcome.returncode}): {_tail(text, None)}")


def too_short(target: Target, rate_hz: int, wall_s: float) -> str:
    return (
        f"the workload {target.workload!r} ran too briefly to be sampled: 0 samples at "
        f"{rate_hz} Hz in {wall_s:.2f} s; increase --duration and make the workload run "
        "longer (loop its hot path), or raise --rate"
    )


def _tail(text: str, tool: str | None, lines: int = _TAIL_LINES) -> str:
    kept = [
        line
        for line in text.splitlines()
        if line.strip()
        and not line.startswith("py-spy> ")
        and not line.startswith("Scalene")
        and not line.lstrip().startswith("To view in")
    ]
    if tool is None:
        kept = [line for line in kept if not re.match(r"\s+\d+: ", line)]  # rust backtraces
    return "\n".join(kept[-lines:]) if kept else "(empty)"
