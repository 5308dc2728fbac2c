"""Reading a profiler's output file: py-spy's collapsed stacks or scalene's JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.errors import RunError
from workbench.profiling import flamegraph
from workbench.profiling._stacks import normalize_frame, relative_path
from workbench.text import finite


def _scalene_frame(entry: str) -> str:
    """``func (file)`` from scalene's ``/path/file.py func:12;`` stack entry."""
    text = entry.strip().rstrip(";")
    head, _, line = text.rpartition(":")
    if line.isdigit():
        text = head
    file, _, func = text.rpartition(" ")
    return f"{func} ({file})" if file else text


def read_output(
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
    elapsed = finite(doc.get("elapsed_time_sec"))
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


def _scalene_figures(row: Mapping[str, Any]) -> dict[str, float | None]:
    def num(key: str) -> float | None:
        return finite(row.get(key))

    return {
        "cpu_python_pct": num("n_cpu_percent_python"),
        "cpu_native_pct": num("n_cpu_percent_c"),
        "cpu_system_pct": num("n_sys_percent"),
        "peak_mb": num("n_peak_mb"),
        "malloc_mb": num("n_malloc_mb"),
    }
