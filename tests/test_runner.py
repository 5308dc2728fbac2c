"""The runner: scoring and storing every (case, repeat), resume, errors, replay, faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench import EvalOptions, run_eval
from workbench.demo.server import DemoServer, FaultSpec
from workbench.errors import ConfigError, RunError
from workbench.golden import load_dataset
from workbench.store import ResultRow, Store


def test_python_target_scores_and_stores_every_case(store: Store, tiny: Path) -> None:
    s = run_eval(str(tiny), "python:tests.echo_app:answer", store=store)
    assert (s.status, s.results, s.passed, s.errors) == ("finished", 6, 5, 0)
    assert s.pass_rate == pytest.approx(5 / 6)
    failures = [r for r in store.result_rows(s.run_id) if not r["passed"]]
    assert [r["case_id"] for r in failures] == ["c003"]
    scores = store.scores_frame(s.run_id)
    assert set(scores["scorer"]) == {"json_schema", "json_fields"}
    run = store.get_run(s.run_id)
    assert run["status"] == "finished" and run["summary"]["passed"] == 5
    assert run["dataset_hash"] == load_dataset(tiny).hash


def test_repeats_use_seed_plus_repeat(store: Store, tiny: Path) -> None:
    s = run_eval(
        str(tiny),
        "python:tests.echo_app:answer",
        store=store,
        options=EvalOptions(repeats=3, seed=10),
    )
    rows = store.result_rows(s.run_id)
    assert len(rows) == 18 and s.expected_results == 18
    assert {(r["repeat"], r["seed"]) for r in rows} == {(0, 10), (1, 11), (2, 12)}


def test_errors_are_recorded_and_break_the_budget(store: Store, tiny: Path) -> None:
    s = run_eval(str(tiny), "python:tests.echo_app:explode", store=store)
    assert (s.results, s.errors, s.error_rate) == (6, 6, 1.0)
    assert not s.budget_ok
    broken = {b.name for b in s.broken()}
    assert {"error_rate", "pass_rate"} <= broken
    assert s.broken() == [c for c in s.checks() if not c.ok]
    assert s.provenance().runs == (s.run_id,)
    assert s.headline()["errors"] == 6 and s.headline()["pass_rate"] == 0.0
    assert "BROKEN" in s.render_text()
    row = store.result_rows(s.run_id)[0]
    assert (
        "app crashed" in row["error"] and row["error_kind"] == "provider" and row["attempts"] == 1
    )


def test_a_run_that_did_not_finish_fails_its_first_check(store: Store, tiny: Path) -> None:
    s = run_eval(str(tiny), "python:tests.echo_app:answer", store=store)
    assert [c.name for c in s.checks()] == [b.name for b in s.budgets] and s.budget_ok
    s.status, s.reason = "failed", "circuit open"
    first = s.checks()[0]
    assert (first.name, first.ok, first.message) == ("run", False, "run failed: circuit open")
    assert not s.budget_ok and s.broken()[0] is not None


def test_resume_runs_only_missing_and_never_duplicates(store: Store, tiny: Path) -> None:
    ds = load_dataset(tiny)
    run_id = store.create_run(
        dataset=ds.name,
        dataset_hash=ds.hash,
        target="python:tests.echo_app:answer",
        parameters=EvalOptions(repeats=2).parameters(),
        cases=6,
        repeats=2,
    )
    for case_id in ("c000", "c001"):
        store.record_result(ResultRow(run_id, case_id, 0, output="kept", passed=True, score=1.0))
    store.finish_run(run_id, "failed", reason="killed")
    s = run_eval(ds, "python:tests.echo_app:answer", store=store, resume=run_id)
    rows = store.result_rows(s.run_id)
    assert s.run_id == run_id and s.status == "finished"
    assert len(rows) == 12 == len({(r["case_id"], r["repeat"]) for r in rows})
    assert [r["output"] for r in rows if r["case_id"] == "c000" and r["repeat"] == 0] == ["kept"]


def test_resume_refuses_changed_dataset_or_target(store: Store, tiny: Path, tmp_path: Path) -> None:
    s = run_eval(str(tiny), "python:tests.echo_app:answer", store=store)
    with pytest.raises(RunError, match="ran python:tests.echo_app:answer, not"):
        run_eval(str(tiny), "python:tests.echo_app:answer_async", store=store, resume=s.run_id)
    (tiny / "cases.jsonl").write_text((tiny / "cases.jsonl").read_text().replace("word5", "word6"))
    with pytest.raises(RunError, match="changed since it started"):
        run_eval(str(tiny), "python:tests.echo_app:answer", store=store, resume=s.run_id)


def test_bad_options_are_refused(store: Store, tiny: Path) -> None:
    with pytest.raises(ConfigError, match="repeats"):
        run_eval(
            str(tiny), "python:tests.echo_app:answer", store=store, options=EvalOptions(repeats=0)
        )


def test_record_then_replay_gives_identical_scores(store: Store, tmp_path: Path) -> None:
    snaps = tmp_path / "snaps"
    with DemoServer() as server:
        opts = EvalOptions(
            base_url=server.url, record=str(snaps), temperature=0.7, seed=5, concurrency=8
        )
        first = run_eval("support-triage", "demo:triage-v2", store=store, options=opts)
    replay = EvalOptions(replay=str(snaps), temperature=0.7, seed=5)
    second = run_eval("support-triage", "demo:triage-v2", store=store, options=replay)
    a = store.results_frame(first.run_id)[["case_id", "score", "passed", "output"]]
    b = store.results_frame(second.run_id)[["case_id", "score", "passed", "output"]]
    assert first.results == second.results >= 150
    assert a.equals(b)
    assert (first.pass_rate, first.mean_score) == (second.pass_rate, second.mean_score)
    lines = (snaps / "demo_triage-v2.jsonl").read_text().splitlines()
    assert len(lines) == first.results
    assert "api_key" not in lines[0].lower()


def test_replay_miss_fails_the_run_naming_the_case(
    store: Store, tiny: Path, tmp_path: Path
) -> None:
    snaps = tmp_path / "snaps"
    run_eval(
        str(tiny),
        "python:tests.echo_app:answer",
        store=store,
        options=EvalOptions(record=str(snaps)),
    )
    s = run_eval(
        str(tiny),
        "python:tests.echo_app:answer",
        store=store,
        options=EvalOptions(replay=str(snaps), seed=99),
    )
    assert s.status == "failed" and "6 case(s) had no snapshot" in (s.reason or "")
    assert "no snapshot for case 'c000'" in store.result_rows(s.run_id)[0]["error"]


def test_run_against_faulty_server_loses_nothing(store: Store) -> None:
    """The bar: 20% injected faults, every case ends with a result or a recorded error."""
    faults = FaultSpec.parse(0.2)
    with DemoServer(faults=faults, seed=3, retry_after_s=0, hang_s=1.5) as server:
        opts = EvalOptions(base_url=server.url, concurrency=16, timeout_s=0.5)
        s = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
        stats = server.stats()
    rows = store.result_rows(s.run_id)
    ds = load_dataset("support-triage")
    assert s.status == "finished"
    assert sorted(r["case_id"] for r in rows) == sorted(c.id for c in ds.cases)
    assert all((r["output"] is not None) or r["error"] for r in rows)
    assert sum(stats["faults"].values()) >= 0.1 * len(rows)
    assert max(r["attempts"] for r in rows) > 1
    truncated = [r for r in rows if r["finish_reason"] == "length"]
    assert all(not r["passed"] for r in truncated)


def test_circuit_breaker_marks_run_failed_and_keeps_results(store: Store) -> None:
    server = DemoServer().start()
    url = server.url
    server.stop()
    opts = EvalOptions(base_url=url, concurrency=2, timeout_s=0.5)
    s = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
    assert s.status == "failed"
    assert "circuit breaker open" in (s.reason or "") and f"--resume {s.run_id}" in (s.reason or "")
    assert s.results < s.expected_results
    assert store.get_run(s.run_id)["status"] == "failed"


def test_run_parameters_hold_no_secrets(
    store: Store, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-should-not-land")
    s = run_eval(str(tiny), "python:tests.echo_app:answer", store=store)
    dump = json.dumps(store.get_run(s.run_id))
    assert "sk-secret" not in dump


@pytest.mark.parametrize("version", ["triage-v1", "triage-v2"])
def test_committed_snapshots_replay_offline(store: Store, version: str) -> None:
    snaps = Path(__file__).resolve().parents[1] / "data" / "snapshots" / "support-triage"
    s = run_eval(
        "support-triage", f"demo:{version}", store=store, options=EvalOptions(replay=str(snaps))
    )
    assert s.status == "finished" and s.errors == 0 and s.results >= 150
    assert s.p95_latency_ms is None  # replays measure no latency
    with DemoServer() as server:
        live = run_eval(
            "support-triage",
            f"demo:{version}",
            store=store,
            options=EvalOptions(base_url=server.url),
        )
    assert live.pass_rate == s.pass_rate and live.mean_score == pytest.approx(s.mean_score)
