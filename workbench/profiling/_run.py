"""The profile run: launch the profiler, normalise its output, write the artifacts, store it."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, RunError, WorkbenchError
from workbench.profiling import flamegraph
from workbench.profiling._launch import Outcome, check_outcome, record, too_short, tool_path
from workbench.profiling._output import read_output
from workbench.profiling._results import ProfileRun
from workbench.profiling._stacks import function_stats, normalize_stacks
from workbench.profiling._store import save_profile
from workbench.profiling._target import Target, parse_target
from workbench.store import Store

TOOLS = ("py-spy", "scalene")


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
    store.require_sqlite("profiles")
    if tool not in TOOLS:
        raise ConfigError(f"unknown profiler {tool!r}; use one of {', '.join(TOOLS)}")
    if not (isinstance(duration_s, int | float) and duration_s > 0 and math.isfinite(duration_s)):
        raise ConfigError(f"duration must be a positive number of seconds, got {duration_s!r}")
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int) or not 1 <= rate_hz <= 10_000:
        raise ConfigError(
            f"rate must be a whole number of samples per second (1-10000), got {rate_hz!r}"
        )
    workdir = Path(cwd) if cwd is not None else Path.cwd()
    spec = parse_target(target, workdir)
    exe = tool_path(tool)
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
        outcome, output = record(
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
        check_outcome(outcome, spec, tool, output, rate_hz)
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
    spec: Target,
    tool: str,
    outcome: Outcome,
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
    raw, functions_extra, lines, tool_wall_s = read_output(tool, output, spec.roots)
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
        raise RunError(too_short(spec, rate_hz, outcome.wall_s))
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
    save_profile(store, run, functions_extra, lines, dropped)
    return run
