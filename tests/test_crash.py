"""Crash safety: kill -9 at random points, then resume; nothing finished is lost or doubled."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from workbench import demo
from workbench.demo.traffic import generate
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
    _kill_after(cmd, rng.uniform(1.0, 60.0))  # the demo run takes 60-120 s
    db = out / "workbench.db"
    if db.exists():
        _integrity(db)
    result = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    _integrity(db)
    folder = out / "2026-W48"
    for job in demo.weekly_config().notebooks:
        summary = json.loads((folder / f"{job.name}.summary.json").read_text())
        assert summary["ok"] and (folder / f"{job.name}.html").exists()
    with Store(db) as s:
        for run in s.runs():  # every run that finished has every one of its results, once
            if run["status"] == "finished" and run["kind"] == "eval":
                keys = [(r["case_id"], r["repeat"]) for r in s.result_rows(run["id"])]
                assert len(keys) == len(set(keys)) == run["cases"] * run["repeats"]


# -- trace ingest ------------------------------------------------------------------------------

INGEST_FILES = 3
INGEST_COPIES = 15  # of the demo traffic per file: about 15,000 spans and 9 MB each


def _respan(line: bytes, copy: int) -> bytes:
    """A TracesData line with every trace id moved to its own copy (prefix = the copy number)."""
    doc = json.loads(line)
    for group in doc["resourceSpans"]:
        for scope in group["scopeSpans"]:
            for span in scope["spans"]:
                span["traceId"] = f"{copy:08x}" + span["traceId"][8:]
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def _spans_digest(db: Path) -> tuple[int, str, int]:
    """Rows, a sha256 over every column of every span in key order, and the files recorded."""
    digest = hashlib.sha256()
    with sqlite3.connect(db) as conn:
        count = 0
        for row in conn.execute("SELECT * FROM spans ORDER BY trace_id, span_id"):
            digest.update(repr(row).encode())
            count += 1
        files = conn.execute("SELECT COUNT(*) FROM trace_files").fetchone()[0]
    return count, digest.hexdigest(), files


@pytest.fixture(scope="module")
def ingest_case(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[str], tuple[Any, ...], float]:
    """Trace files from the demo traffic (repeated under fresh trace ids), and a clean ingest.

    Three files of about 15,000 spans: the first two are bulk loads (their indexes are
    rebuilt at the end of their transaction), the third is not, so kills land in both paths
    and between the files' commits.
    """
    folder = tmp_path_factory.mktemp("ingest-crash")
    demo = folder / "demo.jsonl"
    generate(demo, requests=200, seed=3)
    lines = [line for line in demo.read_bytes().splitlines() if line.strip()]
    files = []
    for f in range(INGEST_FILES):
        path = folder / f"traces-{f}.jsonl"
        with open(path, "wb") as out:
            for copy in range(f * INGEST_COPIES, (f + 1) * INGEST_COPIES):
                out.writelines(_respan(line, copy) for line in lines)
        files.append(str(path))
    clean = folder / "clean.db"
    started = time.monotonic()
    result = subprocess.run(
        _ingest_cmd(files, clean), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    assert " 0 skipped" in result.stdout
    expected = _spans_digest(clean)
    assert expected[0] > 30_000 and expected[2] == INGEST_FILES
    return files, expected, seconds


def _ingest_cmd(files: list[str], db: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workbench.cli",
        "traces",
        "ingest",
        *files,
        "--db",
        str(db),
        *extra,
    ]


def _check_ingest_kill(tmp_path: Path, ingest_case: Any, seed: int) -> None:
    files, expected, seconds = ingest_case
    rng = random.Random(seed)
    db = tmp_path / "crash.db"
    extra = ("--strict",) if seed % 3 == 2 else ()  # strict: one transaction for all files
    Store(db).close()  # the schema exists, so the kill always lands inside the ingest
    _kill_after(_ingest_cmd(files, db, *extra), rng.uniform(0.5, seconds * 1.05))
    _integrity(db)
    with sqlite3.connect(db) as conn:
        kept = conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        recorded = conn.execute("SELECT COUNT(*) FROM trace_files").fetchone()[0]
    assert {"idx_spans_route", "idx_spans_class", "idx_spans_cache"} <= indexes
    assert kept == 0 or recorded > 0  # spans only ever land with their file's record
    if extra:
        assert kept in (0, expected[0])  # strict: all files or nothing
    result = subprocess.run(
        _ingest_cmd(files, db, *extra),
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    _integrity(db)
    assert _spans_digest(db) == expected  # nothing lost, nothing doubled, same routes and costs


@pytest.mark.parametrize("seed", range(10))
def test_ingest_killed_at_a_random_point_reingests_exactly(
    tmp_path: Path, ingest_case: Any, seed: int
) -> None:
    _check_ingest_kill(tmp_path, ingest_case, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 30))
def test_ingest_killed_at_more_points(tmp_path: Path, ingest_case: Any, seed: int) -> None:
    _check_ingest_kill(tmp_path, ingest_case, seed)
