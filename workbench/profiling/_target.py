"""Profile targets: ``python script.py ARGS``, ``-m module`` or ``module:func``, and the launcher that runs them."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import ConfigError

STATUS_ENV = "WORKBENCH_PROFILE_STATUS"
ENTRY_FILE = "_workbench_entry.py"
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_CALL = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

# Runs the workload inside the profiled interpreter and reports how it ended: py-spy
# does not pass on its child's exit status, so the status travels through a file.
RUNNER = f"""\
import json, os, pkgutil, runpy, sys
_wb_status = os.environ.pop({STATUS_ENV!r}, "")
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


@dataclass(frozen=True)
class Target:
    kind: str  # script, module or call
    name: str  # script path, module name or "module:func"
    args: tuple[str, ...]
    python: str
    python_options: tuple[str, ...]
    workload: str
    roots: tuple[str, ...]  # folders that file paths are made relative to

    def command(self) -> list[str]:
        return [self.python, *self.python_options, "-c", RUNNER, self.kind, self.name, *self.args]


def parse_target(target: str, cwd: Path) -> Target:
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
    return Target("script", str(script), tuple(rest[1:]), python, tuple(options), workload, roots)


def _module_target(
    kind: str,
    name: str,
    args: tuple[str, ...],
    python: str,
    options: tuple[str, ...],
    workload: str,
    cwd: Path,
) -> Target:
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
    return Target(kind, name, args, python, options, workload, tuple(roots))
