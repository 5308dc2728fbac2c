"""The store: migrations, runs, atomic idempotent results, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import RunError, StoreError
from workbench.store import MIGRATIONS, SCHEMA_VERSION, ResultRow, ScoreRow, Store


def _run(store: Store, **kw: object) -> str:
    return store.create_run(dataset="d", dataset_hash="h", target="demo:triage-v1", **kw)  # type: ignore[arg-type]


def test_new_database_has_latest_schema_and_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "x.db") as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {"runs", "results", "scores", "schema_migrations"} <= set(s.db.table_names())


def test_upgrade_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);"
        + MIGRATIONS[0]
        + "INSERT INTO schema_migrations VALUES (1, '2026-01-01');"
        "INSERT INTO runs (id, status, dataset, target, started_at) VALUES ('old', 'finished', 'd', 'demo:x', '2026-01-01');"
        "INSERT INTO results (run_id, case_id, repeat, passed, created_at) VALUES ('old', 'c1', 0, 1, '2026-01-01');"
    )
    conn.commit()
    conn.close()
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.get_run("old")["status"] == "finished"
        rows = s.result_rows("old")
        assert rows[0]["case_id"] == "c1" and rows[0]["finish_reason"] is None
        s.record_result(
            ResultRow("old", "c2", 0, finish_reason="stop"), [ScoreRow("exact", 1.0, True)]
        )
        assert s.done_keys("old") == {("c1", 0), ("c2", 0)}


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with Store(path) as s:
        s.conn.execute("INSERT INTO schema_migrations VALUES (?, 'x')", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this workbench"):
        Store(path)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="junk.db"):
        Store(path)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "x.db")


def test_run_provenance_is_recorded(store: Store) -> None:
    run_id = _run(store, parameters={"seed": 3, "temperature": 0.5}, cases=10, repeats=2)
    run = store.get_run(run_id)
    assert run["status"] == "running"
    assert run["parameters"] == {"seed": 3, "temperature": 0.5}
    assert run["package_versions"]["python"]
    assert run["started_at"] and run["finished_at"] is None
    store.finish_run(run_id, "failed", reason="provider down", summary={"results": 3})
    run = store.get_run(run_id)
    assert (run["status"], run["reason"], run["summary"]) == (
        "failed",
        "provider down",
        {"results": 3},
    )


def test_unknown_run_lists_recent(store: Store) -> None:
    rid = _run(store)
    with pytest.raises(RunError, match=f"recent runs: {rid}"):
        store.get_run("nope")


def test_record_result_is_idempotent_and_atomic(store: Store) -> None:
    rid = _run(store)
    row = ResultRow(rid, "c1", 0, output='{"a": 1}', parsed={"a": 1}, passed=True, score=1.0)
    assert store.record_result(row, [ScoreRow("exact", 1.0, True)]) is True
    assert store.record_result(row, [ScoreRow("exact", 0.0, False)]) is False
    assert len(store.result_rows(rid)) == 1
    scores = store.scores_frame(rid)
    assert list(scores["score"]) == [1.0]
    frame = store.results_frame(rid)
    assert frame.loc[0, "parsed"] == {"a": 1} and bool(frame.loc[0, "passed"])


def test_results_frame_reads_missing_values_the_same_on_every_pandas(store: Store) -> None:
    rid = _run(store)
    rows = [
        ResultRow(rid, "c1", 0, output='{"a": 1}', parsed={"a": 1}, passed=True, score=1.0),
        ResultRow(rid, "c2", 0, output="plain text, not JSON", score=0.0, latency_ms=3.0),
        ResultRow(rid, "c3", 0, output="", score=0.0),
        ResultRow(rid, "c4", 0, output="0", parsed=0, score=0.0),
        ResultRow(rid, "c5", 0, error="HTTP 500", error_kind="provider"),
    ]
    for row in rows:
        store.record_result(row)
    frame = store.results_frame(rid).set_index("case_id")
    assert list(frame["parsed"]) == [{"a": 1}, None, None, 0, None]
    assert list(frame["passed"]) == [True, False, False, False, False]
    assert frame["passed"].dtype == bool
    # NULL text is None, never NaN (which is truthy and not a str).
    assert list(frame["error"]) == [None, None, None, None, "HTTP 500"]
    assert frame.loc["c3", "output"] == "" and frame.loc["c5", "output"] is None
    assert frame["finish_reason"].map(lambda v: v is None).all()
    # NULL numbers are NaN in float columns, whichever rows have them.
    for column in ("score", "latency_ms", "ttft_ms", "tokens_in", "cost_usd"):
        assert frame[column].dtype == float, column
    assert frame["latency_ms"].isna().sum() == 4 and frame["ttft_ms"].isna().all()


def test_results_frame_of_a_run_without_results(store: Store) -> None:
    frame = store.results_frame(_run(store))
    assert frame.empty and {"case_id", "parsed", "passed", "error"} <= set(frame.columns)
    assert frame["passed"].dtype == bool and frame["score"].dtype == float


def test_result_for_unknown_run_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="write refused"):
        store.record_result(ResultRow("ghost", "c1", 0))
    assert store.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3)), max_size=40))
def test_done_keys_equal_distinct_writes(keys: list[tuple[str, int]]) -> None:
    with Store(":memory:") as s:
        rid = _run(s)
        for case_id, repeat in keys:
            s.record_result(ResultRow(rid, case_id, repeat))
        assert s.done_keys(rid) == set(keys)
        assert len(s.result_rows(rid)) == len(set(keys))


def _writer(path: str, worker: int, n: int) -> None:
    with Store(path) as s:
        rid = s.create_run(
            dataset="d", dataset_hash="h", target=f"w{worker}", run_id=f"run-{worker}"
        )
        for i in range(n):
            s.record_result(ResultRow(rid, f"c{i}", 0, passed=True), [ScoreRow("exact", 1.0, True)])
        s.finish_run(rid, "finished")


def test_four_processes_write_one_database(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Store(path) as s:
        assert s.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 600
        assert s.conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 600
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
