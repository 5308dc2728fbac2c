"""Profiles in the store: saving a run, loading it back, its hot paths and earlier runs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import astuple
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, RunError, StoreError
from workbench.profiling._results import FunctionStat, ProfileRun
from workbench.profiling._stacks import function_stats
from workbench.store import Store

if TYPE_CHECKING:
    import pandas as pd


def save_profile(
    store: Store,
    run: ProfileRun,
    extra: Mapping[str, Mapping[str, float | None]],
    lines: Sequence[Mapping[str, Any]],
    dropped: int,
) -> None:
    """Write the profile's rows in one transaction, then close the run as finished."""
    store.require_sqlite("profiles")
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


def profile_row(store: Store, run_id: str) -> dict[str, Any]:
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
    profile_row(store, run_id)
    cur = store.conn.execute(
        "SELECT stack, samples FROM profile_stacks WHERE run_id = ?", (run_id,)
    )
    return {stack: int(samples) for stack, samples in cur}


def load_profile(store: Store, run_id: str) -> ProfileRun:
    """A stored profile run, with its stacks and per-function figures."""
    row = profile_row(store, run_id)
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
    row = profile_row(store, run_id)
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


def hot_paths(store: Store, run_id: str, top: int = 20, *, by: str = "total") -> pd.DataFrame:
    """The run's hottest functions (by ``total`` or ``self`` samples) as a DataFrame."""
    import pandas as pd

    if by not in ("total", "self"):
        raise ConfigError(f"hot paths sort by 'total' or 'self', not {by!r}")
    profile_row(store, run_id)
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
