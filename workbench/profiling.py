"""Profiling hot paths: py-spy or scalene runs into the store, pinned hot paths, week-over-week diffs.

A profile run launches the workload as the profiler's child (no ptrace grant needed),
normalises the collapsed stacks (no process or thread frames, no line numbers, paths
relative to site-packages, the stdlib or the project) so weeks compare across machines,
and stores them with per-function self/total samples, shares and seconds (samples ÷
rate). The flamegraph SVG, a speedscope JSON and the raw stacks are written next to it.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from workbench import flamegraph
from workbench.errors import ConfigError, RunError, StoreError, WorkbenchError
from workbench.store import Store

if TYPE_CHECKING:
    import pandas as pd

TOOLS = ("py-spy", "scalene")
THRESHOLDS = ("max_total_share", "max_total_s", "max_self_share", "max_self_s")
_SELECTORS = ("function", "pattern", "regex")
_PIN_KEYS = frozenset({*_SELECTORS, *THRESHOLDS, "name"})
_STATUS_ENV = "WORKBENCH_PROFILE_STATUS"
_ENTRY_FILE = "_workbench_entry.py"
_RUNNER_FILES = frozenset({"<string>", "<frozen runpy>", "runpy.py", _ENTRY_FILE})
_LAUNCHER_FRAME = "<module> (<string>)"  # the root frame of ``python -c _RUNNER``
_IMPORT_FRAME = "_find_and_load (<frozen importlib._bootstrap>)"
_GRACE_S = 60.0
_TAIL_LINES = 15
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_CALL = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_PROCESS_FRAME = re.compile(r'^process \d+:".*?"(?:;|$)')
_THREAD_FRAME = re.compile(r"^thread \((?:0x[0-9a-fA-F]+|\d+)\)$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]+$")
_LINE_SUFFIX = re.compile(r"^(?P<name>.*) \((?P<file>.*?)(?::\d+)?\)$")
_STDLIB = re.compile(r"/lib/python\d+(?:\.\d+)?/(?!site-packages/|dist-packages/)(?P<rest>.*)$")

# Runs the workload inside the profiled interpreter and reports how it ended: py-spy
# does not pass on its child's exit status, so the status travels through a file.
_RUNNER = f"""\
import json, os, pkgutil, runpy, sys
_wb_status = os.environ.pop({_STATUS_ENV!r}, "")
if _wb_status:
    open(_wb_status + ".started", "w").close()
_wb_kind, _wb_target = sys.argv[1], sys.argv[2]
sys.argv = [_wb_target, *sys.argv[3:]]
_wb_result = {{"exit": 1, "error": "", "python": sys.version.split()[0]}}
try:
    if _wb_kind == "script":
        sys.path[0] = os.path.dirname(os.path.abspath(_wb_target))
        runpy.run_path(_wb_target, run_name="__main__")
    elif _wb_kind == "module":
        runpy.run_module(_wb_target, run_name="__main__", alter_sys=True)
    else:
        import importlib
        _wb_mod, _wb_func = _wb_target.split(":", 1)
        try:
            _wb_obj = importlib.import_module(_wb_mod)
        except ModuleNotFoundError as _wb_exc:
            if _wb_exc.name and (_wb_mod + ".").startswith(_wb_exc.name + "."):
                _wb_result["error"] = "not-found: no module named " + repr(_wb_exc.name)
            raise
        for _wb_part in _wb_func.split("."):
            if not hasattr(_wb_obj, _wb_part):
                _wb_result["error"] = "not-found: " + repr(_wb_mod) + " has no " + repr(_wb_func)
                raise SystemExit(2)
            _wb_obj = getattr(_wb_obj, _wb_part)
        _wb_obj()
    _wb_result["exit"] = 0
except SystemExit as _wb_exc:
    _wb_code = _wb_exc.code
    _wb_result["exit"] = 0 if _wb_code is None else _wb_code if isinstance(_wb_code, int) else 1
    raise
finally:
    if _wb_status:
        with open(_wb_status, "w") as _wb_fh:
            json.dump(_wb_result, _wb_fh)
"""

_SPEC_CHECK = """\
import importlib.util, json, sys
try:
    spec = importlib.util.find_spec(sys.argv[1])
except (ImportError, ValueError):
    spec = None
print(json.dumps(None if spec is None else
                 {"origin": spec.origin, "package": spec.submodule_search_locations is not None}))
"""


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionStat:
    """One function's samples: as the leaf (self) and anywhere on the stack (total)."""

    function: str
    self_samples: int
    total_samples: int
    self_share: float
    total_share: float
    self_s: float
    total_s: float


@dataclass
class ProfileRun:
    """A stored profile run: its normalised stacks, per-function figures and artifacts."""

    run_id: str
    tool: str
    workload: str
    label: str
    duration_s: float
    rate_hz: float
    samples: int
    stacks: dict[str, int]
    functions: list[FunctionStat]
    artifacts: dict[str, str] = field(default_factory=dict)
    wall_s: float | None = None
    python_version: str | None = None

    @property
    def seconds(self) -> float:
        """Sampled time: samples ÷ rate."""
        return self.samples / self.rate_hz if self.rate_hz else 0.0

    def function(self, name: str) -> FunctionStat | None:
        """The figures of one function, by canonical frame or bare name (None when unsampled)."""
        return next((f for f in self.functions if _is_function(f.function, name)), None)


@dataclass(frozen=True)
class Pin:
    """A pinned hot path: a function or frame pattern with share and seconds limits."""

    selector: str  # function, pattern or regex
    value: str
    limits: Mapping[str, float]
    name: str = ""
    where: str = ""  # file:line it came from

    @property
    def label(self) -> str:
        """How reports name the pin."""
        return self.name or self.value

    def matches(self, frame: str) -> bool:
        """True when a canonical frame is covered by this pin."""
        if self.selector == "function":
            return _is_function(frame, self.value)
        if self.selector == "regex":
            return re.search(self.value, frame) is not None
        func, _ = flamegraph.split_frame(frame)
        return any(fnmatch.fnmatchcase(c, self.value) for c in (frame, func, _dotted(frame)))


@dataclass(frozen=True)
class PinResult:
    """One pin limit's verdict, reported like a budget: name, limit, actual, message."""

    name: str  # "<pin> <metric>"
    pin: str
    metric: str
    limit: float
    actual: float
    matched: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the figure is within its limit."""
        return self.actual <= self.limit + 1e-12

    @property
    def message(self) -> str:
        """A one-line verdict such as ``embed total_share 41.0% > 30.0% (by 11.0 pp): BROKEN``."""
        actual, limit = _fmt_metric(self.metric, self.actual), _fmt_metric(self.metric, self.limit)
        unseen = "" if self.matched else " (not sampled)"
        if self.ok:
            return f"{self.name} {actual} (limit ≤ {limit}){unseen}: ok"
        over = self.actual - self.limit
        by = f"{over * 100:.1f} pp" if self.metric.endswith("share") else f"{over:.2f} s"
        return f"{self.name} {actual} > {limit} (by {by}): BROKEN"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "name": self.name,
            "pin": self.pin,
            "metric": self.metric,
            "limit": self.limit,
            "actual": self.actual,
            "ok": self.ok,
            "matched": list(self.matched),
            "message": self.message,
        }


@dataclass(frozen=True)
class FunctionDelta:
    """How one function moved between two profiles, in share and in seconds."""

    function: str
    base_total_share: float
    cand_total_share: float
    base_total_s: float
    cand_total_s: float
    base_self_share: float
    cand_self_share: float
    base_self_s: float
    cand_self_s: float

    @property
    def delta_total_share(self) -> float:
        """Change in total share (candidate − base)."""
        return self.cand_total_share - self.base_total_share

    @property
    def delta_total_s(self) -> float:
        """Change in total seconds (candidate − base)."""
        return self.cand_total_s - self.base_total_s

    @property
    def delta_self_share(self) -> float:
        """Change in self share (candidate − base)."""
        return self.cand_self_share - self.base_self_share

    @property
    def delta_self_s(self) -> float:
        """Change in self seconds (candidate − base)."""
        return self.cand_self_s - self.base_self_s

    @property
    def status(self) -> str:
        """``new``, ``vanished`` or ``both``."""
        if not self.base_total_s:
            return "new"
        return "vanished" if not self.cand_total_s else "both"


@dataclass
class ProfileDiff:
    """Week over week: per-function deltas (share and seconds) and new or vanished stacks."""

    base_run: str
    cand_run: str
    base_samples: int
    cand_samples: int
    base_s: float
    cand_s: float
    functions: list[FunctionDelta]
    new_stacks: dict[str, int]
    vanished_stacks: dict[str, int]
    base_stacks: dict[str, int] = field(repr=False, default_factory=dict)
    cand_stacks: dict[str, int] = field(repr=False, default_factory=dict)

    def function(self, name: str) -> FunctionDelta | None:
        """One function's delta, by canonical frame or bare name."""
        return next((f for f in self.functions if _is_function(f.function, name)), None)

    def frame(self) -> pd.DataFrame:
        """The per-function deltas as a DataFrame, largest share change first."""
        import pandas as pd

        rows = [
            {
                **asdict(f),
                "delta_total_share": f.delta_total_share,
                "delta_total_s": f.delta_total_s,
                "delta_self_share": f.delta_self_share,
                "delta_self_s": f.delta_self_s,
                "status": f.status,
            }
            for f in self.functions
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "base_run": self.base_run,
            "cand_run": self.cand_run,
            "base_samples": self.base_samples,
            "cand_samples": self.cand_samples,
            "base_s": self.base_s,
            "cand_s": self.cand_s,
            "functions": self.frame().to_dict(orient="records"),
            "new_stacks": self.new_stacks,
            "vanished_stacks": self.vanished_stacks,
        }


# -- targets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    kind: str  # script, module or call
    name: str  # script path, module name or "module:func"
    args: tuple[str, ...]
    python: str
    python_options: tuple[str, ...]
    workload: str
    roots: tuple[str, ...]  # folders that file paths are made relative to

    def command(self) -> list[str]:
        return [self.python, *self.python_options, "-c", _RUNNER, self.kind, self.name, *self.args]


def _parse_target(target: str, cwd: Path) -> _Target:
    workload = target.strip()
    if not workload:
        raise ConfigError(
            "empty profile target; give 'python script.py ARGS', '-m module' or 'module:func'"
        )
    if _CALL.match(workload):
        return _module_target("call", workload, (), sys.executable, (), workload, cwd)
    try:
        argv = shlex.split(workload)
    except ValueError as exc:
        raise ConfigError(f"profile target {workload!r}: cannot split: {exc}") from None
    python, options = sys.executable, []
    rest = argv
    if _PYTHON.match(Path(argv[0]).name):
        if argv[0] not in ("python", "python3"):
            found = shutil.which(argv[0])
            if not found:
                raise ConfigError(f"profile target {workload!r}: interpreter {argv[0]!r} not found")
            python = found
        rest = argv[1:]
        while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
            takes_value = rest[0] in ("-X", "-W") and len(rest) > 1
            options.extend(rest[: 2 if takes_value else 1])
            rest = rest[2 if takes_value else 1 :]
    if rest and rest[0] == "-c":
        raise ConfigError(
            f"profile target {workload!r}: -c code cannot be profiled; put it in a script or a module"
        )
    if rest and rest[0] == "-m":
        if len(rest) < 2:
            raise ConfigError(f"profile target {workload!r}: -m needs a module name")
        return _module_target(
            "module", rest[1], tuple(rest[2:]), python, tuple(options), workload, cwd
        )
    if not rest or (rest is argv and not rest[0].endswith(".py")):
        raise ConfigError(
            f"profile target {workload!r}: give 'python script.py ARGS', 'script.py ARGS', "
            "'-m module ARGS' or 'module:func'"
        )
    script = Path(rest[0]) if Path(rest[0]).is_absolute() else cwd / rest[0]
    if not script.is_file():
        raise ConfigError(
            f"profile target {workload!r}: script {rest[0]} not found (looked in {cwd}); check the path"
        )
    script = script.resolve()
    roots = (str(script.parent), str(cwd.resolve()))
    return _Target("script", str(script), tuple(rest[1:]), python, tuple(options), workload, roots)


def _module_target(
    kind: str,
    name: str,
    args: tuple[str, ...],
    python: str,
    options: tuple[str, ...],
    workload: str,
    cwd: Path,
) -> _Target:
    module = name.split(":", 1)[0]
    try:
        found = subprocess.run(
            [python, "-c", _SPEC_CHECK, module],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"profile target {workload!r}: cannot run {python}: {exc}") from None
    spec = json.loads(found.stdout.strip().splitlines()[-1]) if found.stdout.strip() else None
    if spec is None:
        raise ConfigError(
            f"profile target {workload!r}: module {module!r} is not importable from {cwd} "
            f"with {python}; check the name, the working folder or the installed packages"
        )
    roots = [str(cwd.resolve())]
    if spec.get("origin") and Path(spec["origin"]).is_file():
        depth = module.count(".") + (1 if spec["package"] else 0)
        roots.insert(0, str(Path(spec["origin"]).resolve().parents[depth]))
    return _Target(kind, name, args, python, options, workload, tuple(roots))


# -- running the profiler ----------------------------------------------------------------


@dataclass
class _Outcome:
    returncode: int
    stdout: str
    stderr: str
    status: dict[str, Any] | None
    wall_s: float
    stopped: bool  # we stopped it at the requested duration


def _tool_path(tool: str) -> str:
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


def _record(
    target: _Target,
    *,
    tool: str,
    exe: str,
    duration_s: float,
    rate_hz: int,
    native: bool,
    out_dir: Path,
    cwd: Path,
    profile_only: str | None,
) -> tuple[_Outcome, Path]:
    with tempfile.TemporaryDirectory(prefix="workbench-profile-") as tmp:
        status_file = Path(tmp) / "status.json"
        env = {**os.environ, _STATUS_ENV: str(status_file)}
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
            entry = Path(tmp) / _ENTRY_FILE
            entry.write_text(_RUNNER, encoding="utf-8")
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
    return _Outcome(code, out, err, status, wall, stopped), output


def _check_outcome(
    outcome: _Outcome, target: _Target, tool: str, output: Path, rate_hz: int
) -> None:
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
            raise RunError(_too_short(target, rate_hz, outcome.wall_s))
        raise RunError(f"py-spy failed (exit {outcome.returncode}): {_tail(text, None)}")
    if not output.is_file() or output.stat().st_size == 0:
        if tool == "py-spy" or "did not run long enough" in text or outcome.returncode == 0:
            raise RunError(_too_short(target, rate_hz, outcome.wall_s))
        raise RunError(f"scalene wrote no profile (exit {outcome.returncode}): {_tail(text, None)}")


def _too_short(target: _Target, rate_hz: int, wall_s: float) -> str:
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


# -- normalising stacks ------------------------------------------------------------------


def normalize_frame(frame: str, roots: Sequence[str] = ()) -> str | None:
    """A frame in canonical ``func (path/file.py)`` form; None for process and thread frames."""
    frame = frame.strip()
    if not frame or _PROCESS_FRAME.match(frame) or _THREAD_FRAME.match(frame):
        return None
    match = _LINE_SUFFIX.match(frame)
    if not match:
        return frame
    name = "[unknown]" if _ADDRESS.match(match["name"]) else match["name"]  # ASLR moves these
    return f"{name} ({relative_path(match['file'], roots)})"


def relative_path(path: str, roots: Sequence[str] = ()) -> str:
    """A source path relative to site-packages, the given roots, the stdlib or its package."""
    p = path.replace("\\", "/")
    if not p.startswith("/") and not re.match(r"^[A-Za-z]:/", p):
        return p
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in p:
            return p.rsplit(marker, 1)[1]
    for root in sorted(roots, key=len, reverse=True):
        prefix = root.replace("\\", "/").rstrip("/") + "/"
        if p.startswith(prefix):
            return p[len(prefix) :]
    stdlib = sysconfig.get_paths().get("stdlib", "").replace("\\", "/").rstrip("/") + "/"
    if p.startswith(stdlib):
        return p[len(stdlib) :]
    match = _STDLIB.search(p)
    if match:
        return match["rest"]
    source = Path(path)
    if not source.is_file():
        return p
    top = source.parent  # from the outermost package's parent, as an import sees it
    while (top / "__init__.py").is_file() and top.parent != top:
        top = top.parent
    return source.relative_to(top).as_posix()


def normalize_stacks(
    stacks: Mapping[str, int], roots: Sequence[str] = (), *, launched: bool = False
) -> tuple[dict[str, int], int]:
    """Canonical collapsed stacks and the number of samples dropped.

    Process and thread frames go, line numbers go, paths become relative, and the
    launcher's own leading frames (``python -c``, runpy) are dropped. With ``launched``
    only stacks under workbench's launcher count: interpreter start-up is not the workload.
    """
    out: dict[str, int] = {}
    dropped = 0
    for stack, count in stacks.items():
        if count <= 0:
            continue
        rest = stack
        while _PROCESS_FRAME.match(rest):  # the command line may itself hold ';'
            rest = _PROCESS_FRAME.sub("", rest, count=1)
        frames = [f for f in (normalize_frame(x, roots) for x in rest.split(";")) if f]
        if launched:
            # Native frames (py-spy --native) may sit below the launcher; interpreter
            # start-up and the launcher's own imports are not the workload.
            start = next((i for i, f in enumerate(frames) if not _is_native(f)), len(frames))
            if frames[start : start + 1] != [_LAUNCHER_FRAME] or frames[start + 1 : start + 2] == [
                _IMPORT_FRAME
            ]:
                dropped += count
                continue
            frames = frames[start:]
        while frames and flamegraph.split_frame(frames[0])[1].rsplit("/", 1)[-1] in _RUNNER_FILES:
            frames.pop(0)
        if not frames:
            dropped += count
            continue
        key = ";".join(frames)
        out[key] = out.get(key, 0) + count
    return out, dropped


def _is_native(frame: str) -> bool:
    """True for a native frame (``func (libpython3.11.so)``), not Python code."""
    file = flamegraph.split_frame(frame)[1]
    return bool(file) and not file.endswith(".py") and not file.startswith("<")


def function_stats(stacks: Mapping[str, int], rate_hz: float) -> list[FunctionStat]:
    """Per-function self and total samples, shares and seconds, most total samples first."""
    total = sum(c for c in stacks.values() if c > 0)
    self_counts: dict[str, int] = {}
    total_counts: dict[str, int] = {}
    for stack, count in stacks.items():
        if count <= 0 or not stack:
            continue
        frames = stack.split(";")
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):  # once per stack, however deep the recursion
            total_counts[frame] = total_counts.get(frame, 0) + count
    stats = [
        FunctionStat(
            function=frame,
            self_samples=self_counts.get(frame, 0),
            total_samples=n,
            self_share=self_counts.get(frame, 0) / total if total else 0.0,
            total_share=n / total if total else 0.0,
            self_s=self_counts.get(frame, 0) / rate_hz,
            total_s=n / rate_hz,
        )
        for frame, n in total_counts.items()
    ]
    return sorted(stats, key=lambda f: (-f.total_samples, -f.self_samples, f.function))


# -- scalene ----------------------------------------------------------------------------


def _scalene_frame(entry: str) -> str:
    """``func (file)`` from scalene's ``/path/file.py func:12;`` stack entry."""
    text = entry.strip().rstrip(";")
    head, _, line = text.rpartition(":")
    if line.isdigit():
        text = head
    file, _, func = text.rpartition(" ")
    return f"{func} ({file})" if file else text


def _read_output(
    tool: str, output: Path, roots: Sequence[str]
) -> tuple[dict[str, int], dict[str, dict[str, float | None]], list[dict[str, Any]], float | None]:
    """Raw stacks, per-function and per-line figures and wall time from a profiler's output file."""
    try:
        data = output.read_bytes()
    except OSError as exc:
        raise RunError(f"{output}: cannot read the {tool} output: {exc}") from None
    if tool == "py-spy":
        # Frame names come from the workload's own files, whatever their encoding.
        return flamegraph.parse_collapsed(data.decode("utf-8", errors="replace")), {}, [], None
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RunError(f"{output}:{line}: scalene's JSON is not valid UTF-8") from None
    except ValueError as exc:
        raise RunError(f"{output}: scalene wrote JSON that does not parse: {exc}") from None
    except RecursionError:
        raise RunError(f"{output}: scalene's JSON is nested too deeply to read") from None
    if not isinstance(doc, dict):
        raise RunError(
            f"{output}: scalene's JSON is {type(doc).__name__}, not an object with "
            "'stacks' and 'files'; was it written by scalene --json?"
        )
    for key, kind in (("stacks", list), ("files", dict)):
        if doc.get(key) is not None and not isinstance(doc[key], kind):
            raise RunError(
                f"{output}: {key}: scalene's JSON holds a {type(doc[key]).__name__}, "
                f"expected {'a list' if kind is list else 'an object'}; re-run the profile"
            )
    stacks, functions, lines = _parse_scalene(doc, roots)
    elapsed = _finite(doc.get("elapsed_time_sec"))
    return stacks, functions, lines, elapsed


def _parse_scalene(
    doc: Mapping[str, Any], roots: Sequence[str]
) -> tuple[dict[str, int], dict[str, dict[str, float | None]], list[dict[str, Any]]]:
    """Collapsed stacks, per-function CPU/memory and per-line rows from scalene's JSON.

    Entries of a shape this version does not know are skipped, not fatal: the rest of
    the profile is still worth having.
    """
    stacks: dict[str, int] = {}
    for entry in doc.get("stacks") or []:
        try:
            frames, info = entry
            count = int(info.get("count", 0))
        except (TypeError, ValueError, AttributeError, OverflowError):
            continue
        if (
            count <= 0
            or not isinstance(frames, list)
            or not all(isinstance(f, str) for f in frames)
        ):
            continue
        key = ";".join(_scalene_frame(f) for f in frames)
        stacks[key] = stacks.get(key, 0) + count
    functions: dict[str, dict[str, float | None]] = {}
    lines: list[dict[str, Any]] = []
    for file, detail in (doc.get("files") or {}).items():
        if not isinstance(detail, dict):
            continue
        rel = relative_path(file, roots)
        for fn in _records(detail.get("functions")):
            frame = normalize_frame(f"{fn.get('line', '?')} ({file})", roots) or str(fn.get("line"))
            functions[frame] = _scalene_figures(fn)
        for ln in _records(detail.get("lines")):
            figures = _scalene_figures(ln)
            lineno = ln.get("lineno", 0)
            if not any(figures.values()) or not isinstance(lineno, int) or lineno < 0:
                continue
            lines.append(
                {
                    "file": rel,
                    "line": lineno,
                    "source": str(ln.get("line", "")).rstrip("\n"),
                    **figures,
                }
            )
    return stacks, functions, lines


def _records(value: Any) -> list[dict[str, Any]]:
    """The mappings of a list from scalene's JSON (anything else is not a record)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _finite(value: Any) -> float | None:
    """A finite number as float; None for anything else (bool, text, NaN, infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _scalene_figures(row: Mapping[str, Any]) -> dict[str, float | None]:
    def num(key: str) -> float | None:
        return _finite(row.get(key))

    return {
        "cpu_python_pct": num("n_cpu_percent_python"),
        "cpu_native_pct": num("n_cpu_percent_c"),
        "cpu_system_pct": num("n_sys_percent"),
        "peak_mb": num("n_peak_mb"),
        "malloc_mb": num("n_malloc_mb"),
    }


# -- the profile run --------------------------------------------------------------------


def profile(
    store: Store,
    target: str,
    *,
    tool: str = "py-spy",
    duration_s: float = 10.0,
    rate_hz: int = 100,
    label: str = "default",
    artifacts_dir: str | os.PathLike[str] = Path("profiles"),
    native: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    profile_only: str | None = None,
) -> ProfileRun:
    """Profile a workload (``python script.py ARGS``, ``-m module``, ``module:func``) and store it.

    The workload runs as the profiler's child for at most ``duration_s`` seconds. The
    run, its normalised stacks and per-function figures land in the store; the raw
    stacks, a flamegraph SVG and a speedscope JSON (and scalene's JSON) in
    ``artifacts_dir/<run id>/``.
    """
    if tool not in TOOLS:
        raise ConfigError(f"unknown profiler {tool!r}; use one of {', '.join(TOOLS)}")
    if not (isinstance(duration_s, int | float) and duration_s > 0 and math.isfinite(duration_s)):
        raise ConfigError(f"duration must be a positive number of seconds, got {duration_s!r}")
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int) or not 1 <= rate_hz <= 10_000:
        raise ConfigError(
            f"rate must be a whole number of samples per second (1-10000), got {rate_hz!r}"
        )
    workdir = Path(cwd) if cwd is not None else Path.cwd()
    spec = _parse_target(target, workdir)
    exe = _tool_path(tool)
    run_id = store.create_run(
        kind="profile",
        dataset=None,
        dataset_hash=None,
        target=spec.workload,
        parameters={
            "tool": tool,
            "duration_s": duration_s,
            "rate_hz": rate_hz,
            "label": label,
            "native": native,
            "profile_only": profile_only,
        },
    )
    out_dir = Path(artifacts_dir) / run_id
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        outcome, output = _record(
            spec,
            tool=tool,
            exe=exe,
            duration_s=duration_s,
            rate_hz=rate_hz,
            native=native,
            out_dir=out_dir,
            cwd=workdir,
            profile_only=profile_only,
        )
        _check_outcome(outcome, spec, tool, output, rate_hz)
        run = _build(
            store, run_id, spec, tool, outcome, output, out_dir, duration_s, rate_hz, label
        )
    except KeyboardInterrupt:
        store.finish_run(run_id, "interrupted", reason="interrupted by the user")
        raise
    except OSError as exc:
        store.finish_run(run_id, "failed", reason=f"cannot write artifacts: {exc}")
        raise RunError(f"{out_dir}: cannot write the profile's artifacts: {exc}") from None
    except WorkbenchError as exc:
        store.finish_run(run_id, "failed", reason=str(exc))
        raise
    return run


def _build(
    store: Store,
    run_id: str,
    spec: _Target,
    tool: str,
    outcome: _Outcome,
    output: Path,
    out_dir: Path,
    duration_s: float,
    rate_hz: int,
    label: str,
) -> ProfileRun:
    """Normalise what the profiler wrote, write the artifacts and store the run."""
    artifacts: dict[str, str] = {}
    functions_extra: dict[str, dict[str, float | None]] = {}
    lines: list[dict[str, Any]] = []
    wall_s: float | None = outcome.wall_s
    raw, functions_extra, lines, tool_wall_s = _read_output(tool, output, spec.roots)
    if tool == "py-spy":
        artifacts["raw"] = str(output)
    else:
        wall_s = tool_wall_s if tool_wall_s is not None else wall_s
        artifacts["scalene"] = str(output)
        folded = out_dir / "raw.txt"
        folded.write_text(flamegraph.format_collapsed(raw), encoding="utf-8")
        artifacts["raw"] = str(folded)
    stacks, dropped = normalize_stacks(raw, spec.roots, launched=tool == "py-spy")
    samples = sum(stacks.values())
    if samples == 0 and not functions_extra:
        raise RunError(_too_short(spec, rate_hz, outcome.wall_s))
    title = f"{spec.workload} ({tool}, {label}, {samples:,} samples)"
    svg = out_dir / "flamegraph.svg"
    svg.write_text(flamegraph.flamegraph_svg(stacks, title=title), encoding="utf-8")
    speedscope = out_dir / "speedscope.json"
    speedscope.write_text(
        json.dumps(flamegraph.speedscope_json(stacks, name=title, rate_hz=rate_hz)),
        encoding="utf-8",
    )
    artifacts.update(flamegraph=str(svg), speedscope=str(speedscope))
    functions = function_stats(stacks, rate_hz)
    python_version = (outcome.status or {}).get("python") or (
        sys.version.split()[0] if spec.python == sys.executable else None
    )
    run = ProfileRun(
        run_id=run_id,
        tool=tool,
        workload=spec.workload,
        label=label,
        duration_s=float(duration_s),
        rate_hz=float(rate_hz),
        samples=samples,
        stacks=stacks,
        functions=functions,
        artifacts=artifacts,
        wall_s=wall_s,
        python_version=python_version,
    )
    _save(store, run, functions_extra, lines, dropped)
    return run


def hot_paths(store: Store, run_id: str, top: int = 20, *, by: str = "total") -> pd.DataFrame:
    """The run's hottest functions (by ``total`` or ``self`` samples) as a DataFrame."""
    import pandas as pd

    if by not in ("total", "self"):
        raise ConfigError(f"hot paths sort by 'total' or 'self', not {by!r}")
    _profile_row(store, run_id)
    order = (
        "total_samples DESC, self_samples DESC"
        if by == "total"
        else "self_samples DESC, total_samples DESC"
    )
    return pd.read_sql_query(
        f"SELECT * FROM profile_functions WHERE run_id = ? ORDER BY {order}, function LIMIT ?",
        store.conn,
        params=(run_id, int(top)),
    )


# -- the store ---------------------------------------------------------------------------


def _save(
    store: Store,
    run: ProfileRun,
    extra: Mapping[str, Mapping[str, float | None]],
    lines: Sequence[Mapping[str, Any]],
    dropped: int,
) -> None:
    """Write the profile's rows in one transaction, then close the run as finished."""
    figures = ("cpu_python_pct", "cpu_native_pct", "cpu_system_pct", "peak_mb", "malloc_mb")
    function_rows = []
    seen = set()
    for f in run.functions:
        more = extra.get(f.function, {})
        function_rows.append((run.run_id, *astuple(f), *(more.get(k) for k in figures)))
        seen.add(f.function)
    for name, more in extra.items():
        if name not in seen:  # scalene saw it, but it is on no sampled stack
            zero = FunctionStat(name, 0, 0, 0.0, 0.0, 0.0, 0.0)
            function_rows.append((run.run_id, *astuple(zero), *(more.get(k) for k in figures)))
    conn = store.conn
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO profiles (run_id, tool, workload, label, duration_s, rate_hz, samples, "
                "artifacts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.tool,
                    run.workload,
                    run.label,
                    run.duration_s,
                    run.rate_hz,
                    run.samples,
                    json.dumps(run.artifacts, sort_keys=True),
                ),
            )
            conn.executemany(
                "INSERT INTO profile_stacks (run_id, stack, samples) VALUES (?, ?, ?)",
                [(run.run_id, s, n) for s, n in sorted(run.stacks.items())],
            )
            conn.executemany(
                "INSERT INTO profile_functions (run_id, function, self_samples, total_samples, "
                "self_share, total_share, self_s, total_s, cpu_python_pct, cpu_native_pct, "
                "cpu_system_pct, peak_mb, malloc_mb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                function_rows,
            )
            conn.executemany(
                "INSERT OR REPLACE INTO profile_lines (run_id, file, line, source, cpu_python_pct, "
                "cpu_native_pct, cpu_system_pct, peak_mb, malloc_mb) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run.run_id,
                        ln["file"],
                        ln["line"],
                        ln["source"],
                        *(ln.get(k) for k in figures),
                    )
                    for ln in lines
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"{store.path}: cannot store profile {run.run_id}: {exc}") from None
    store.finish_run(
        run.run_id,
        "finished",
        summary={
            "samples": run.samples,
            "seconds": run.seconds,
            "wall_s": run.wall_s,
            "dropped_samples": dropped,
            "workload_python": run.python_version,
            "artifacts": run.artifacts,
            "top": [
                {"function": f.function, "total_share": f.total_share, "self_share": f.self_share}
                for f in run.functions[:5]
            ],
        },
    )


def _profile_row(store: Store, run_id: str) -> dict[str, Any]:
    rows = list(store.db.query("SELECT * FROM profiles WHERE run_id = ?", [run_id]))
    if rows:
        return rows[0]
    run = store.get_run(run_id)  # RunError naming recent runs when it does not exist
    raise RunError(
        f"run {run_id} is a {run.get('kind')} run with status {run.get('status')}, "
        "not a finished profile; pick a run from 'workbench runs --kind profile'"
    )


def load_stacks(store: Store, run_id: str) -> dict[str, int]:
    """A stored profile's canonical collapsed stacks."""
    _profile_row(store, run_id)
    cur = store.conn.execute(
        "SELECT stack, samples FROM profile_stacks WHERE run_id = ?", (run_id,)
    )
    return {stack: int(samples) for stack, samples in cur}


def load_profile(store: Store, run_id: str) -> ProfileRun:
    """A stored profile run, with its stacks and per-function figures."""
    row = _profile_row(store, run_id)
    run = store.get_run(run_id)
    stacks = load_stacks(store, run_id)
    rate = float(row["rate_hz"] or 0) or 1.0
    summary = run.get("summary") or {}
    return ProfileRun(
        run_id=run_id,
        tool=row["tool"],
        workload=row["workload"],
        label=row["label"] or "",
        duration_s=float(row["duration_s"] or 0),
        rate_hz=rate,
        samples=int(row["samples"] or 0),
        stacks=stacks,
        functions=function_stats(stacks, rate),
        artifacts=json.loads(row["artifacts"]) if row["artifacts"] else {},
        wall_s=summary.get("wall_s"),
        python_version=summary.get("workload_python") or run.get("python_version"),
    )


def previous_profile(store: Store, run_id: str) -> str | None:
    """The finished profile run before this one with the same workload, label and tool."""
    row = _profile_row(store, run_id)
    started = store.get_run(run_id)["started_at"]
    found = store.conn.execute(
        "SELECT r.id FROM runs r JOIN profiles p ON p.run_id = r.id "
        "WHERE r.status = 'finished' AND r.id != ? AND p.workload = ? AND p.label IS ? "
        "AND p.tool = ? AND (r.started_at < ? OR (r.started_at = ? AND r.id < ?)) "
        "ORDER BY r.started_at DESC, r.id DESC LIMIT 1",
        (run_id, row["workload"], row["label"], row["tool"], started, started, run_id),
    ).fetchone()
    return str(found[0]) if found else None


def latest_profile(store: Store, label: str, *, before: str | None = None) -> str | None:
    """The newest finished profile run with a label (started before run ``before``, if given)."""
    started = store.get_run(before)["started_at"] if before else "9999"
    found = store.conn.execute(
        "SELECT r.id FROM runs r JOIN profiles p ON p.run_id = r.id WHERE r.status = 'finished' "
        "AND p.label = ? AND r.started_at < ? ORDER BY r.started_at DESC, r.id DESC LIMIT 1",
        (label, started),
    ).fetchone()
    return str(found[0]) if found else None


# -- week over week ----------------------------------------------------------------------


def diff_profiles(store: Store, base_run: str | None, cand_run: str) -> ProfileDiff:
    """Per-function deltas (share and seconds) and new/vanished stacks from base to candidate.

    With no ``base_run`` the baseline is :func:`previous_profile` of the candidate.
    """
    if base_run is None:
        base_run = previous_profile(store, cand_run)
        if base_run is None:
            row = _profile_row(store, cand_run)
            raise RunError(
                f"no earlier finished {row['tool']} profile of {row['workload']!r} labelled "
                f"{row['label']!r} to compare {cand_run} with; pass a baseline run id"
            )
    base, cand = load_profile(store, base_run), load_profile(store, cand_run)
    before = {f.function: f for f in base.functions}
    after = {f.function: f for f in cand.functions}
    zero = FunctionStat("", 0, 0, 0.0, 0.0, 0.0, 0.0)
    deltas = []
    for name in before.keys() | after.keys():
        b, c = before.get(name, zero), after.get(name, zero)
        deltas.append(
            FunctionDelta(
                function=name,
                base_total_share=b.total_share,
                cand_total_share=c.total_share,
                base_total_s=b.total_s,
                cand_total_s=c.total_s,
                base_self_share=b.self_share,
                cand_self_share=c.self_share,
                base_self_s=b.self_s,
                cand_self_s=c.self_s,
            )
        )
    deltas.sort(key=lambda d: (-abs(d.delta_total_share), -abs(d.delta_total_s), d.function))
    return ProfileDiff(
        base_run=base_run,
        cand_run=cand_run,
        base_samples=base.samples,
        cand_samples=cand.samples,
        base_s=base.seconds,
        cand_s=cand.seconds,
        functions=deltas,
        new_stacks={s: n for s, n in cand.stacks.items() if s not in base.stacks},
        vanished_stacks={s: n for s, n in base.stacks.items() if s not in cand.stacks},
        base_stacks=base.stacks,
        cand_stacks=cand.stacks,
    )


# -- pinned hot paths --------------------------------------------------------------------


def load_pins(path: str | os.PathLike[str]) -> list[Pin]:
    """Pinned hot paths from YAML (``pins: [{function|pattern|regex, max_*}]``); errors name file:line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the pins: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{file}:{line}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(
            f"{file}:1: nested too deeply to read; pins are a list of flat mappings"
        ) from None
    if isinstance(node, yaml.MappingNode):
        items = [v for k, v in node.value if k.value == "pins"]
        unknown = [k for k, _ in node.value if k.value != "pins"]
        if unknown:
            raise ConfigError(
                f"{file}:{unknown[0].start_mark.line + 1}: {_clip(str(unknown[0].value), 60)}: "
                "unknown key; the file holds 'pins:'"
            )
        node = items[0] if items else None
    if not isinstance(node, yaml.SequenceNode):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(
            f"{file}:{line}: expected 'pins:' with a list of "
            "{function|pattern|regex: ..., max_total_share: 0.3, max_total_s: 2.0}"
        )
    pins: list[Pin] = []
    errors: list[str] = []
    for i, item in enumerate(node.value):
        where = f"{file}:{item.start_mark.line + 1}"
        if not isinstance(item, yaml.MappingNode):
            errors.append(
                f"{where}: pins[{i}]: each pin is a mapping such as {{function: name, max_total_share: 0.3}}"
            )
            continue
        pin, problems = _parse_pin(item, f"pins[{i}]", str(file))
        errors.extend(problems)
        if pin is not None:
            pins.append(pin)
    if errors:
        raise ConfigError("bad pins:\n" + "\n".join(errors))
    return pins


def _parse_pin(item: yaml.MappingNode, label: str, file: str) -> tuple[Pin | None, list[str]]:
    errors: list[str] = []
    where = f"{file}:{item.start_mark.line + 1}"
    selector: tuple[str, str] | None = None
    limits: dict[str, float] = {}
    name = ""
    for key_node, value_node in item.value:
        key = _clip(str(key_node.value), 60)
        at = f"{file}:{key_node.start_mark.line + 1}: {label}.{key}"
        try:
            value = yaml.safe_load(yaml.serialize(value_node))
        except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
            # compose() checks only the syntax; tags such as !!int x fail here, on construction
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            errors.append(f"{at}: cannot read the value: {_clip(first, 200)}")
            continue
        if key not in _PIN_KEYS:
            errors.append(f"{at}: unknown key; allowed keys are {', '.join(sorted(_PIN_KEYS))}")
        elif key in _SELECTORS:
            if not isinstance(value, str) or not value.strip():
                errors.append(f"{at}: must be a non-empty string")
            elif selector is not None:
                errors.append(
                    f"{at}: give one of {', '.join(_SELECTORS)} per pin, not both {selector[0]} and {key}"
                )
            else:
                if key == "regex":
                    try:
                        re.compile(value)
                    except re.error as exc:
                        errors.append(
                            f"{at}: not a valid regular expression: {_clip(str(exc), 200)}"
                        )
                    except (RecursionError, OverflowError):
                        errors.append(f"{at}: the regular expression is too large or too deep")
                selector = (key, value.strip())
        elif key == "name":
            name = str(value)
        else:
            number = _finite(value)
            if number is None:
                errors.append(f"{at}: {_clip(repr(value), 80)} is not a number")
            elif number < 0 or (key.endswith("share") and number > 1):
                bound = (
                    "between 0 and 1 (a share: 0.3 = 30%)"
                    if key.endswith("share")
                    else "≥ 0 seconds"
                )
                errors.append(f"{at}: {value!r} must be {bound}")
            else:
                limits[key] = number
    if selector is None:
        errors.append(f"{where}: {label}: give a function, pattern or regex to pin")
    if not limits and not any(str(k.value) in THRESHOLDS for k, _ in item.value):
        errors.append(f"{where}: {label}: no threshold; add one of {', '.join(THRESHOLDS)}")
    if errors or selector is None:
        return None, errors
    return Pin(selector[0], selector[1], limits, name=name, where=where), []


def check_pins(store: Store, run_id: str, pins: Sequence[Pin]) -> list[PinResult]:
    """Each pin limit's verdict on a stored profile (shares of all samples, seconds = samples ÷ rate)."""
    row = _profile_row(store, run_id)
    rate = float(row["rate_hz"] or 0) or 1.0
    stacks = load_stacks(store, run_id)
    return pin_results(stacks, rate, pins)


def pin_results(stacks: Mapping[str, int], rate_hz: float, pins: Sequence[Pin]) -> list[PinResult]:
    """Pin verdicts on collapsed stacks; a stack counts once however many frames match."""
    total = sum(c for c in stacks.values() if c > 0)
    results = []
    for pin in pins:
        cache: dict[str, bool] = {}
        total_n = self_n = 0
        matched: set[str] = set()
        for stack, count in stacks.items():
            if count <= 0 or not stack:
                continue
            frames = stack.split(";")
            hits = [f for f in frames if cache.setdefault(f, pin.matches(f))]
            if hits:
                total_n += count
                matched.update(hits)
                if cache[frames[-1]]:
                    self_n += count
        figures = {
            "max_total_share": total_n / total if total else 0.0,
            "max_total_s": total_n / rate_hz,
            "max_self_share": self_n / total if total else 0.0,
            "max_self_s": self_n / rate_hz,
        }
        for key in THRESHOLDS:
            if key in pin.limits:
                metric = key.removeprefix("max_")
                results.append(
                    PinResult(
                        name=f"{pin.label} {metric}",
                        pin=pin.label,
                        metric=metric,
                        limit=pin.limits[key],
                        actual=figures[key],
                        matched=tuple(sorted(matched)),
                    )
                )
    return results


# -- text report -------------------------------------------------------------------------


def render_text(
    run: ProfileRun,
    pins_results: Sequence[PinResult] = (),
    diff: ProfileDiff | None = None,
    *,
    top: int = 10,
) -> str:
    """The CLI's report: the run, its hot paths, pin verdicts and the diff against a baseline."""
    wall = f", wall {run.wall_s:.2f} s" if run.wall_s is not None else ""
    out = [
        f"profile {run.run_id}: {run.tool} on {run.workload!r} (label {run.label})",
        f"  {run.samples:,} samples at {run.rate_hz:g} Hz = {run.seconds:.2f} s sampled "
        f"(duration ≤ {run.duration_s:g} s{wall}); python {run.python_version or '?'}",
    ]
    out += [f"  {name}: {path}" for name, path in sorted(run.artifacts.items())]
    out.append("")
    out.append(f"hot paths (top {min(top, len(run.functions))} by total samples):")
    width = min(70, max((len(f.function) for f in run.functions[:top]), default=8))
    out.append(f"  {'function':<{width}}  {'total':>7} {'total s':>8}  {'self':>7} {'self s':>7}")
    for f in run.functions[:top]:
        out.append(
            f"  {_clip(f.function, width):<{width}}  {f.total_share:>7.1%} {f.total_s:>8.2f}"
            f"  {f.self_share:>7.1%} {f.self_s:>7.2f}"
        )
    if pins_results:
        broken = sum(not r.ok for r in pins_results)
        out += ["", f"pins: {len(pins_results) - broken} ok, {broken} broken"]
        out += [f"  {r.message}" for r in pins_results]
    if diff is not None:
        out += [
            "",
            f"vs {diff.base_run}: {diff.base_samples:,} → {diff.cand_samples:,} samples "
            f"({diff.base_s:.2f} s → {diff.cand_s:.2f} s)",
        ]
        moved = [d for d in diff.functions if d.delta_total_share or d.delta_total_s][:top]
        for d in moved:
            out.append(
                f"  {_clip(d.function, width):<{width}}  {d.delta_total_share * 100:+6.1f} pp "
                f"{d.delta_total_s:+7.2f} s  ({d.status})"
            )
        if not moved:
            out.append("  no function moved")
        out.append(
            f"  new stacks: {len(diff.new_stacks)} ({sum(diff.new_stacks.values()):,} samples); "
            f"vanished stacks: {len(diff.vanished_stacks)} ({sum(diff.vanished_stacks.values()):,} samples)"
        )
    return "\n".join(out) + "\n"


# -- helpers -----------------------------------------------------------------------------


def _is_function(frame: str, name: str) -> bool:
    """True when ``name`` is the frame itself, its function name or its dotted ``module.func``."""
    return frame == name or flamegraph.split_frame(frame)[0] == name or _dotted(frame) == name


def _dotted(frame: str) -> str:
    """``pkg.module.func`` for ``func (pkg/module.py)``; the bare function when there is no file."""
    func, file = flamegraph.split_frame(frame)
    if not file.endswith(".py") or file.startswith("<"):
        return func
    module = file[: -len(".py")].replace("/", ".").removesuffix(".__init__")
    return f"{module}.{func}"


def _fmt_metric(metric: str, value: float) -> str:
    return f"{value * 100:.1f}%" if metric.endswith("share") else f"{value:.2f} s"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
