"""Profiling hot paths: py-spy or scalene runs into the store, pinned hot paths, week-over-week diffs.

A profile run launches the workload as the profiler's child (no ptrace grant needed),
normalises the collapsed stacks (no process or thread frames, no line numbers, paths
relative to site-packages, the stdlib or the project) so weeks compare across machines,
and stores them with per-function self/total samples, shares and seconds (samples ÷
rate). The flamegraph SVG, a speedscope JSON and the raw stacks are written next to it.

The parts: ``_results`` (the dataclasses), ``_target`` (what to run, and the launcher
script the profiler runs), ``_launch`` (running py-spy or scalene), ``_stacks``
(normalising stacks, per-function figures), ``_output`` (reading py-spy's and scalene's
output), ``_run`` (:func:`profile`), ``_store`` (saving and loading runs), ``_diff``
(week over week), ``_pins`` (pinned hot paths), ``_frames`` (frame names: dotted
``module.func``, matching a function) and ``_report`` (:func:`profile_report`: a run with its pin
checks and diff, the one result the CLI and the notebook show). ``flamegraph`` draws
collapsed stacks (SVG, differential SVG, icicle, speedscope JSON); notebooks import it as
``from workbench.profiling import flamegraph``.
"""

from workbench.profiling._diff import diff_profiles
from workbench.profiling._pins import THRESHOLDS, check_pins, load_pins, pin_results
from workbench.profiling._report import ProfileReport, profile_report, render_text
from workbench.profiling._results import (
    FunctionDelta,
    FunctionStat,
    Pin,
    PinCheck,
    ProfileDiff,
    ProfileRun,
)
from workbench.profiling._run import TOOLS, profile
from workbench.profiling._stacks import (
    function_stats,
    normalize_frame,
    normalize_stacks,
    relative_path,
)
from workbench.profiling._store import (
    hot_paths,
    latest_profile,
    load_profile,
    load_stacks,
    previous_profile,
)

__all__ = [
    "THRESHOLDS",
    "TOOLS",
    "FunctionDelta",
    "FunctionStat",
    "Pin",
    "PinCheck",
    "ProfileDiff",
    "ProfileReport",
    "ProfileRun",
    "check_pins",
    "diff_profiles",
    "function_stats",
    "hot_paths",
    "latest_profile",
    "load_pins",
    "load_profile",
    "load_stacks",
    "normalize_frame",
    "normalize_stacks",
    "pin_results",
    "previous_profile",
    "profile",
    "profile_report",
    "relative_path",
    "render_text",
]
