"""The store on a real PostgreSQL server: the same schema, migrations and API as SQLite.

The suite starts a throwaway server (tests/pg.py: initdb into a temp folder, pg_ctl on a
loopback port) once per session; each test gets a database of its own. Without Debian's
``postgresql`` package the tests fail and say how to install it: they never skip.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tests.pg import Server, write_runs
from workbench import EvalOptions, _dialect, audit, load_dataset, publish, run_eval
from workbench.cli import main
from workbench.compare import compare
from workbench.errors import RunError, StoreError
from workbench.store import MIGRATIONS, SCHEMA_VERSION, ResultRow, ScoreRow, Store

_names = count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """One PostgreSQL server for the session (stopped and deleted at the end)."""
    server = Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: Server) -> str:
    """The URL of a new, empty database on the session's server."""
    return pg_server.createdb(f"t{os.getpid()}_{next(_names)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on each engine."""
    if request.param == "sqlite":
        target = str(tmp_path / "workbench.db")
    else:
        target = request.getfixturevalue("pg_url")
    with Store(target) as s:
        yield s


def _run(store: Store, **kw: Any) -> str:
    return store.create_run(dataset="d", dataset_hash="h", target="demo:triage-v1", **kw)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=180,
        check=False,
    )


# -- the store's own behaviour, on both engines ------------------------------------------


def test_new_database_has_the_latest_schema(any_store: Store) -> None:
    assert any_store.schema_version == SCHEMA_VERSION
    (applied,) = any_store.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
    assert applied == SCHEMA_VERSION


def test_record_result_is_idempotent_and_atomic(any_store: Store) -> None:
    rid = _run(any_store)
    row = ResultRow(rid, "c1", 0, output='{"a": 1}', parsed={"a": 1}, passed=True, score=1.0)
    assert any_store.record_result(row, [ScoreRow("exact", 1.0, True)]) is True
    assert any_store.record_result(row, [ScoreRow("exact", 0.0, False)]) is False
    assert len(any_store.result_rows(rid)) == 1
    assert list(any_store.scores_frame(rid)["score"]) == [1.0]
    frame = any_store.results_frame(rid)
    assert frame.loc[0, "parsed"] == {"a": 1} and bool(frame.loc[0, "passed"])


def test_result_for_unknown_run_is_refused(any_store: Store) -> None:
    with pytest.raises(StoreError, match="write refused"):
        any_store.record_result(ResultRow("ghost", "c1", 0))
    assert any_store.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0


def test_run_provenance_and_unknown_runs(any_store: Store) -> None:
    rid = _run(any_store, parameters={"seed": 3, "temperature": 0.5}, cases=10, repeats=2)
    any_store.finish_run(rid, "failed", reason="provider down", summary={"results": 3})
    run = any_store.get_run(rid)
    assert (run["status"], run["reason"], run["summary"]) == (
        "failed",
        "provider down",
        {"results": 3},
    )
    assert run["parameters"] == {"seed": 3, "temperature": 0.5} and run["cases"] == 10
    with pytest.raises(RunError, match=f"recent runs: {rid}"):
        any_store.get_run("nope")


_MESSY = [
    {"case_id": "c1", "output": '{"a": 1}', "parsed": {"a": 1}, "passed": True, "score": 1.0},
    {"case_id": "c2", "output": "plain text", "score": 0.0, "latency_ms": 3.25, "tokens_in": 7},
    {"case_id": "c3", "output": "", "score": 0.0, "cost_usd": 1.5e-7},
    {"case_id": "c4", "output": "0", "parsed": 0, "score": 0.0, "tool_calls": [{"id": "x"}]},
    {"case_id": "c5", "error": "HTTP 500 100% broken? 'quoted'", "error_kind": "provider"},
    {"case_id": "C6", "output": "ünïcode ✓", "seed": 2**40, "passed": True},
]


def test_results_frame_is_the_same_on_both_engines(tmp_path: Path, pg_url: str) -> None:
    """Values, NULLs, dtypes and order (byte order: "C6" before "c1") match SQLite's."""
    frames = []
    for target in (str(tmp_path / "w.db"), pg_url):
        with Store(target) as s:
            rid = _run(s, run_id="same")
            for fields in _MESSY:
                s.record_result(
                    ResultRow(rid, repeat=0, **fields),  # type: ignore[arg-type]
                    [ScoreRow("exact", fields.get("score") or 0.0, bool(fields.get("passed")))],
                )
            frame = s.results_frame(rid).drop(columns=["created_at"])
            frames.append((frame, s.scores_frame(rid), s.done_keys(rid)))
    (lite, lite_scores, lite_keys), (pg, pg_scores, pg_keys) = frames
    assert list(pg["case_id"]) == ["C6", "c1", "c2", "c3", "c4", "c5"]
    pd.testing.assert_frame_equal(pg, lite)
    assert pg_scores.equals(lite_scores) and pg_keys == lite_keys
    assert pg.loc[0, "seed"] == 2**40  # BIGINT, not a 32-bit INTEGER


def test_a_version_5_database_is_migrated_and_keeps_its_data(pg_url: str) -> None:
    conn = _dialect.connect(pg_url)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for version, step in enumerate(MIGRATIONS[:5], 1):
        for statement in filter(str.strip, _dialect.ddl(step).split(";")):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01')", (version,))
    conn.execute(
        "INSERT INTO runs (id, status, dataset_hash, started_at) "
        "VALUES ('old', 'finished', 'h0', '2026-01-01')"
    )
    conn.execute(
        "INSERT INTO results (run_id, case_id, repeat, passed, created_at) "
        "VALUES ('old', 'c1', 0, 1, '2026-01-01')"
    )
    conn.close()
    with Store(pg_url) as s:
        assert s.schema_version == SCHEMA_VERSION
        run = s.get_run("old")
        assert (run["cases_hash"], run["prompt_hash"]) == ("h0", "h0")  # step 10's UPDATE
        assert s.result_rows("old")[0]["tool_calls"] is None
        s.record_result(ResultRow("old", "c2", 0), [ScoreRow("exact", 1.0, True)])
        assert s.done_keys("old") == {("c1", 0), ("c2", 0)}


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    with Store(pg_url) as s:
        s.conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (SCHEMA_VERSION + 1, "x"))
    with pytest.raises(StoreError, match="newer than this workbench"):
        Store(pg_url)


# -- many writers, resume ---------------------------------------------------------------------


def test_four_processes_migrate_and_write_one_database(pg_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=write_runs, args=(pg_url, w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Store(pg_url) as s:
        counts = s.conn.execute(
            "SELECT run_id, COUNT(*) FROM results GROUP BY run_id ORDER BY run_id"
        ).fetchall()
        assert counts == [(f"run-{w}", 150) for w in range(4)]
        assert s.conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 600
        versions = s.conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))  # each once
        assert audit.verify(s.conn) == (4, None)  # the run log is one chain, not a fork


def test_resume_runs_only_the_missing_cases(pg_url: str, tiny: Path) -> None:
    ds = load_dataset(tiny)
    with Store(pg_url) as store:
        run_id = store.create_run(
            dataset=ds.name,
            dataset_hash=ds.hash,
            target="python:tests.echo_app:answer",
            parameters=EvalOptions(repeats=2).parameters(),
            cases=6,
            repeats=2,
        )
        for case_id in ("c000", "c001"):
            store.record_result(ResultRow(run_id, case_id, 0, output="kept", passed=True))
        store.finish_run(run_id, "failed", reason="killed")
        s = run_eval(ds, "python:tests.echo_app:answer", store=store, resume=run_id)
        rows = store.result_rows(run_id)
        assert s.run_id == run_id and s.status == "finished"
        assert len(rows) == 12 == len({(r["case_id"], r["repeat"]) for r in rows})
        assert [r["output"] for r in rows if (r["case_id"], r["repeat"]) == ("c000", 0)] == ["kept"]
        assert audit.verify(store.conn) == (1, None)


# -- the CLI and the notebooks ----------------------------------------------------------------


SECRET = "s3cr3t-pw"


@pytest.fixture(scope="module")
def two_runs(pg_server: Server) -> tuple[str, str, str]:
    """A database with a v1 and a v2 run of support-triage, written by ``workbench eval``."""
    url = pg_server.createdb(f"cli{os.getpid()}")
    first = _cli("eval", "support-triage", "--model", "demo:triage-v1", "--db", url, "--json")
    assert first.returncode == 0, first.stderr
    # The second finds the database through WORKBENCH_DB, with a password in the URL (the
    # trust server ignores it): it must not be printed, nor stored.
    with_password = url.replace("workbench@", f"workbench:{SECRET}@")
    env = {"WORKBENCH_DB": with_password}
    second = _cli("eval", "support-triage", "--model", "demo:triage-v2", "--json", env=env)
    assert second.returncode == 0, second.stderr
    assert SECRET not in second.stdout + second.stderr
    return url, json.loads(first.stdout)["run_id"], json.loads(second.stdout)["run_id"]


def test_cli_eval_then_compare_latest(two_runs: tuple[str, str, str], tmp_path: Path) -> None:
    url, base, cand = two_runs
    shown = _cli("compare", "--latest", "support-triage", "--db", url)
    assert shown.returncode == 0, shown.stderr
    assert "verdict:" in shown.stdout and "pass rate" in shown.stdout
    done = _cli("compare", "--latest", "support-triage", "--db", url, "--json")
    got = json.loads(done.stdout)
    assert (got["base"]["id"], got["cand"]["id"]) == (base, cand)
    # the same comparison from the same two runs on SQLite, for the counts
    with Store(url) as pg, Store(tmp_path / "copy.db") as lite:
        for run_id in (base, cand):
            _copy_run(pg, lite, run_id)
        on_pg, on_lite = compare(pg, base, cand), compare(lite, base, cand)
    assert got["counts"] == on_pg.counts == on_lite.counts
    assert got["compared_cases"] == len(on_lite.cases) >= 150
    assert on_pg.stats == on_lite.stats
    runs = _cli("runs", "--db", url)
    assert base in runs.stdout and cand in runs.stdout


def _copy_run(src: Store, dst: Store, run_id: str) -> None:
    run = src.query("SELECT * FROM runs WHERE id = ?", [run_id])[0]
    dst.conn.execute(
        f"INSERT INTO runs ({', '.join(run)}) VALUES ({', '.join('?' * len(run))})",
        tuple(run.values()),
    )
    for table in ("results", "scores"):
        rows = src.query(f"SELECT * FROM {table} WHERE run_id = ?", [run_id])
        dst.conn.executemany(
            f"INSERT INTO {table} ({', '.join(rows[0])}) VALUES ({', '.join('?' * len(rows[0]))})",
            [tuple(r.values()) for r in rows],
        )


def test_golden_eval_and_model_delta_notebooks_run_on_postgres(
    two_runs: tuple[str, str, str], tmp_path: Path
) -> None:
    url, base, cand = two_runs
    for name, parameters in (
        ("golden_eval", {"model": "demo:triage-v1", "limit": 20}),
        ("model_delta", {"base_run": base, "cand_run": cand}),
    ):
        summary_path = tmp_path / f"{name}.json"
        output = tmp_path / f"{name}.ipynb"
        error = publish.execute(
            name,
            output,
            {**parameters, "db": url, "summary_path": str(summary_path)},
            timeout_s=120,
        )
        assert error is None, error
        nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
        summary = json.loads(summary_path.read_text())
        if name == "golden_eval":
            (run_id,) = summary["runs"]
            assert summary["headline"]["results"] == 20
            with Store(url) as s:
                assert len(s.result_rows(run_id)) == 20
        else:
            with Store(url) as s:
                expected = compare(s, base, cand, shared_only=True)
            assert summary["headline"]["regression"] == expected.counts["regression"]
            assert summary["headline"]["fix"] == expected.counts["fix"]


# -- secrets and clear errors -----------------------------------------------------------------


def test_a_password_in_the_url_is_never_printed_or_stored(two_runs: tuple[str, str, str]) -> None:
    url = two_runs[0].replace("workbench@", f"workbench:{SECRET}@")
    listed = _cli("runs", "--db", url)
    verified = _cli("verify", "--db", url)
    for out in (listed, verified):
        assert out.returncode == 0, out.stderr
        assert SECRET not in out.stdout + out.stderr
    assert "workbench:***@" in verified.stdout
    with Store(url) as s:
        assert SECRET not in str(s.path)
        for table in ("runs", "results", "scores", "run_log"):
            assert SECRET not in json.dumps(s.query(f"SELECT * FROM {table}"), default=str)


def test_an_unreachable_server_or_bad_url_is_a_clear_error(pg_server: Server) -> None:
    closed = f"postgresql://workbench:hunter2@127.0.0.1:{pg_server.port + 1}/nope"
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as caught:
        Store(closed)
    assert "hunter2" not in str(caught.value) and "workbench:***@" in str(caught.value)
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        Store(pg_server.url("no_such_database"))
    with pytest.raises(StoreError, match="check the URL"):
        Store("postgresql://127.0.0.1:notaport/x")
    with pytest.raises(StoreError, match="pass the URL as a str"):
        Store(Path(pg_server.url("workbench")))
    done = _cli("runs", "--db", closed)
    assert done.returncode == 1
    assert "cannot connect to PostgreSQL" in done.stderr and "hunter2" not in done.stderr


def test_sqlite_only_parts_refuse_a_postgres_store(pg_url: str, tmp_path: Path) -> None:
    from workbench import latency, profiling, traces

    spans = tmp_path / "spans.jsonl"
    spans.write_text("")
    with Store(pg_url) as s:
        with pytest.raises(StoreError, match="traces need a SQLite store for now: use --db"):
            traces.ingest(s, spans)
        with pytest.raises(StoreError, match="load tests need a SQLite store"):
            latency.run_load(s, [])
        with pytest.raises(StoreError, match="profiles need a SQLite store"):
            profiling.profile(s, "python:tests.echo_app:answer")
        assert s.runs() == []  # refused before any run was opened
        with pytest.raises(StoreError, match="needs a SQLite store"):
            s.db  # noqa: B018 - the sqlite-utils view
        with pytest.raises(StoreError, match="no PostgreSQL translation"):
            s.conn.execute("PRAGMA integrity_check")
    done = _cli("traces", "ingest", str(spans), "--db", pg_url)
    assert done.returncode == 1 and "traces need a SQLite store" in done.stderr


# -- the dialect ------------------------------------------------------------------------------


def test_translate_placeholders_and_percent_signs() -> None:
    sql = "SELECT '?', x FROM t WHERE a = ? AND b LIKE 'judge error:%' AND c = \"?\""
    assert _dialect.translate(sql) == (
        "SELECT '?', x FROM t WHERE a = %s AND b LIKE 'judge error:%%' AND c = \"?\""
    )
    assert _dialect.translate("SELECT '100%'", has_params=False) == "SELECT '100%'"
    assert _dialect.translate("SELECT json_extract(parameters, '$.key') = ?") == (
        "SELECT (parameters::jsonb ->> 'key') = %s"
    )


def test_redact_hides_passwords_only() -> None:
    assert _dialect.redact("postgresql://u:p@h:5/d") == "postgresql://u:***@h:5/d"
    assert _dialect.redact("postgresql://u@h/d?password=p&sslmode=require") == (
        "postgresql://u@h/d?password=***&sslmode=require"
    )
    assert _dialect.redact("postgresql://u@h/d") == "postgresql://u@h/d"


def test_matrix_rescore_and_judge_calibration_on_postgres(pg_url: str) -> None:
    """The rest of the eval path: the grid reuses stored runs, a rescore writes a new run,
    and a judged eval finds its judge's calibration (``json_extract`` on the parameters)."""

    def run(*args: str) -> str:
        done = CliRunner().invoke(main, [*args, "--db", pg_url], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done.output

    grid = ["matrix", "support-triage", "--model", "demo:triage-v1", "--model", "demo:triage-v2"]
    run(*grid, "--limit", "8")
    assert "reused" in run(*grid, "--limit", "8").lower()
    with Store(pg_url) as s:
        first = s.runs(kind="eval")[-1]["id"]
    rescored = json.loads(run("rescore", first, "--json"))
    labels = str(ROOT / "data" / "golden" / "support-triage" / "judge-labels.jsonl")
    run("judge", "calibrate", "support-triage", "--labels", labels)
    judged = run("eval", "support-triage", "--model", "demo:triage-v1", "--limit", "4")
    with Store(pg_url) as s:
        assert s.get_run(rescored["run_id"])["source_run"] == first
        assert len(s.result_rows(rescored["run_id"])) == 8
        (calibration,) = s.runs(kind="calibration")
    assert f"calibration {calibration['id']}" in judged
