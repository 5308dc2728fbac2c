"""Normalising collapsed stacks so weeks compare across machines, and per-function figures."""

from __future__ import annotations

import re
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench.profiling import flamegraph
from workbench.profiling._results import FunctionStat
from workbench.profiling._target import ENTRY_FILE

_RUNNER_FILES = frozenset({"<string>", "<frozen runpy>", "runpy.py", ENTRY_FILE})
_LAUNCHER_FRAME = "<module> (<string>)"  # the root frame of ``python -c RUNNER``
_IMPORT_FRAME = "_find_and_load (<frozen importlib._bootstrap>)"
_PROCESS_FRAME = re.compile(r'^process \d+:".*?"(?:;|$)')
_THREAD_FRAME = re.compile(r"^thread \((?:0x[0-9a-fA-F]+|\d+)\)$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]+$")
_LINE_SUFFIX = re.compile(r"^(?P<name>.*) \((?P<file>.*?)(?::\d+)?\)$")
_STDLIB = re.compile(r"/lib/python\d+(?:\.\d+)?/(?!site-packages/|dist-packages/)(?P<rest>.*)$")


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
