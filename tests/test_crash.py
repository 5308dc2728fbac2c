"""Crash safety: kill -9 at random points, then resume; nothing finished is lost or doubled."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.store import Store

from .conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _kill_after(cmd: list[str], delay_s: float) -> int:
    """Start a command in its own process group, kill -9 the group after a delay; its exit code."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc.wait(delay_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return proc.returncode


def _kill_at(cmd: list[str], db: Path, rows: int, timeout_s: float = 120) -> int:
    """Start a command and kill -9 its process group once ``results`` holds ``rows`` rows."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
            if not db.exists():
                continue
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    done = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if done >= rows:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return proc.returncode


def _integrity(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("point", range(10))
def test_eval_killed_at_a_random_point_resumes_exactly(tmp_path: Path, point: int) -> None:
    rng = random.Random(point)
    db = tmp_path / "crash.db"
    target = "demo:triage-v1" if point % 3 == 0 else "python:tests.echo_app:slow_triage"
    base = [
        sys.executable,
        "-m",
        "workbench.cli",
        "eval",
        "support-triage",
        "--model",
        target,
        "--db",
        str(db),
        "--concurrency",
        "4",
        "--repeats",
        "2",
        "--no-progress",
    ]
    if target.startswith("demo:"):
        base += ["--demo-latency-ms", "20"]
    _kill_at(base, db, rng.randint(1, 300))
    _integrity(db)
    with Store(db) as s:
        (run,) = s.runs()
        assert run["status"] == "running"  # killed mid-run, it never got to say otherwise
        run_id = run["id"]
        kept = {
            (r["case_id"], r["repeat"]): (r["output"], r["error"]) for r in s.result_rows(run_id)
        }
        scores_before = s.conn.execute(
            "SELECT COUNT(*) FROM scores WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
    result = subprocess.run(
        [*base, "--resume", run_id, "--json"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    _integrity(db)
    with Store(db) as s:
        rows = s.result_rows(run_id)
        keys = [(r["case_id"], r["repeat"]) for r in rows]
        assert len(keys) == len(set(keys)) == summary["expected_results"]
        for r in rows:  # nothing finished is lost or rewritten
            if (r["case_id"], r["repeat"]) in kept:
                assert (r["output"], r["error"]) == kept[(r["case_id"], r["repeat"])]
        scores = s.conn.execute(
            "SELECT COUNT(*) FROM scores WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        assert scores >= scores_before
        orphans = s.conn.execute(
            "SELECT COUNT(*) FROM scores s LEFT JOIN results r ON r.run_id = s.run_id AND "
            "r.case_id = s.case_id AND r.repeat = s.repeat WHERE r.run_id IS NULL"
        ).fetchone()[0]
        assert orphans == 0  # no half-written result
        assert s.get_run(run_id)["status"] == "finished"


@pytest.mark.slow
@pytest.mark.parametrize("point", range(10))
def test_weekly_killed_at_a_random_point_reruns_cleanly(tmp_path: Path, point: int) -> None:
    rng = random.Random(100 + point)
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "workbench.cli", "weekly", "--out", str(out), "--week", "2026-W48"]
    _kill_after(cmd, rng.uniform(1.0, 15.0))
    db = out / "workbench.db"
    if db.exists():
        _integrity(db)
    result = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    _integrity(db)
    folder = out / "2026-W48"
    for name in ("golden_eval-triage-v1", "golden_eval-triage-v2", "model_delta"):
        summary = json.loads((folder / f"{name}.summary.json").read_text())
        assert summary["ok"] and (folder / f"{name}.html").exists()
    with Store(db) as s:
        for run in s.runs():  # every run that finished has every one of its results, once
            if run["status"] == "finished" and run["kind"] == "eval":
                keys = [(r["case_id"], r["repeat"]) for r in s.result_rows(run["id"])]
                assert len(keys) == len(set(keys)) == run["cases"] * run["repeats"]
    assert time.time() > 0
