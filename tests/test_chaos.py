"""Provider chaos: full eval runs against the demo server with every fault kind mixed."""

from __future__ import annotations

import time

import pytest

from workbench import EvalOptions, run_eval
from workbench.demo.server import DemoServer, FaultSpec
from workbench.golden import load_dataset
from workbench.providers import RetryPolicy
from workbench.store import Store

ALL_KINDS = "429,500,reset,timeout,malformed,truncated,slow"


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("stream", [False, True])
def test_every_case_ends_with_a_result_or_a_recorded_error(
    store: Store, rate: float, stream: bool
) -> None:
    faults = FaultSpec.parse(rate, ALL_KINDS)
    with DemoServer(faults=faults, seed=11, retry_after_s=0, hang_s=1.0) as server:
        opts = EvalOptions(base_url=server.url, concurrency=16, timeout_s=0.4, stream=stream)
        summary = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
        stats = server.stats()
    rows = store.result_rows(summary.run_id)
    ids = [c.id for c in load_dataset("support-triage").cases]
    keys = [(r["case_id"], r["repeat"]) for r in rows]
    assert summary.status == "finished", summary.reason
    assert sorted(r["case_id"] for r in rows) == sorted(ids)  # none lost
    assert len(keys) == len(set(keys))  # none duplicated
    for r in rows:
        assert (r["output"] is not None) != (r["error"] is not None)
        assert 1 <= r["attempts"] <= RetryPolicy().max_attempts  # retries stay bounded
    assert sum(stats["faults"].values()) > 0
    if rate >= 0.2:
        assert max(r["attempts"] for r in rows) > 1
    budgets = {b.name: b for b in summary.budgets}
    assert budgets["error_rate"].actual == summary.error_rate  # the error budget is reported
    if rate == 0.5:
        truncated = [r for r in rows if r["finish_reason"] == "length"]
        assert truncated and not any(r["passed"] for r in truncated)


def test_retry_after_is_honoured_under_load(store: Store) -> None:
    with DemoServer(faults=FaultSpec.parse(0, "429=0.5"), seed=2, retry_after_s=1) as server:
        opts = EvalOptions(base_url=server.url, concurrency=8)
        ds = load_dataset("support-triage")
        t0 = time.perf_counter()
        summary = run_eval(ds, "demo:triage-v1", store=store, options=opts)
        elapsed = time.perf_counter() - t0
    rows = store.result_rows(summary.run_id)
    retried = [r for r in rows if r["attempts"] > 1]
    assert retried and summary.errors < len(rows)
    # each retried case waited at least Retry-After (1 s) per extra attempt
    assert elapsed >= 1.0
    assert all(r["attempts"] <= RetryPolicy().max_attempts for r in rows)


def test_sustained_failure_opens_the_breaker_and_the_run_says_so(store: Store) -> None:
    with DemoServer(faults=FaultSpec.parse(0, "500=1.0"), seed=1) as server:
        opts = EvalOptions(base_url=server.url, concurrency=4)
        t0 = time.perf_counter()
        summary = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
        elapsed = time.perf_counter() - t0
        requests = server.stats()["requests"]
    assert summary.status == "failed" and "circuit breaker open" in (summary.reason or "")
    assert elapsed < 30  # it stopped instead of spinning
    assert requests < 200  # far fewer calls than 171 cases x 5 attempts
    assert summary.results < summary.expected_results  # the rest is left for --resume
