"""The load driver: loopback only, bounded, percentiles and budgets, stored per request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.demo.server import DemoServer, FaultSpec, LatencySpec
from workbench.errors import ConfigError
from workbench.latency import (
    Endpoint,
    LatencyBudget,
    Phase,
    check_loopback,
    load_endpoints,
    phases_from,
    run_load,
)
from workbench.store import Store

CHAT = {
    "model": "triage-v1",
    "messages": [{"role": "user", "content": "<ticket>card charged twice</ticket>"}],
}


@pytest.fixture(scope="module")
def model_server() -> Iterator[DemoServer]:
    with DemoServer(latency=LatencySpec.parse("20")) as s:
        yield s


def endpoints(url: str, **kw: Any) -> list[Endpoint]:
    return [
        Endpoint("models", f"{url}/models", kind="api", method="GET"),
        Endpoint("chat", f"{url}/chat/completions", kind="llm", bodies=(CHAT,), **kw),
    ]


def test_steady_and_spike_phases_are_measured_and_stored(
    store: Store, model_server: DemoServer
) -> None:
    phases = [Phase("steady", 40, 1.0), Phase("spike", 120, 0.5)]
    run = run_load(store, endpoints(model_server.url), phases=phases, seed=1)
    assert 60 <= run.requests <= 160
    by_name = {e.endpoint: e for e in run.endpoints}
    chat = by_name["chat"]
    assert chat.errors == 0 and chat.p95_ms is not None and chat.p95_ms >= 20
    assert chat.p50_ms <= chat.p95_ms <= chat.p99_ms
    assert set(chat.by_phase) == {"steady", "spike"}
    assert run.ok
    stored = store.conn.execute(
        "SELECT COUNT(*) FROM load_results WHERE run_id = ?", (run.run_id,)
    ).fetchone()[0]
    assert stored == run.requests
    assert store.get_run(run.run_id)["kind"] == "load"


def test_streaming_endpoint_reports_time_to_first_token(
    store: Store, model_server: DemoServer
) -> None:
    stream = dict(CHAT, stream=True)
    eps = [
        Endpoint(
            "chat",
            f"{model_server.url}/chat/completions",
            kind="llm",
            bodies=(stream,),
            stream=True,
        )
    ]
    run = run_load(store, eps, phases=[Phase("steady", 30, 1.0)])
    (chat,) = run.endpoints
    assert chat.ttft_p95_ms is not None and chat.ttft_p95_ms <= chat.p95_ms


def test_fault_injection_breaks_the_error_budget(store: Store) -> None:
    with DemoServer(faults=FaultSpec.parse(0, "500=0.2")) as faulty:
        run = run_load(store, endpoints(faulty.url)[1:], phases=[Phase("steady", 60, 1.0)], seed=2)
    (chat,) = run.endpoints
    assert chat.error_rate > 0.05
    assert not run.ok
    assert [b.name for b in chat.budgets if not b.ok] == ["error_rate"]


def test_tight_latency_budget_breaks(store: Store, model_server: DemoServer) -> None:
    eps = [
        Endpoint(
            "chat",
            f"{model_server.url}/chat/completions",
            kind="llm",
            bodies=(CHAT,),
            budget=LatencyBudget(p95_ms=1.0),
        )
    ]
    run = run_load(store, eps, phases=[Phase("steady", 20, 0.5)])
    assert not run.ok and "p95_latency_ms" in run.endpoints[0].budgets[0].message


def test_requests_are_bounded(store: Store, model_server: DemoServer) -> None:
    run = run_load(
        store, endpoints(model_server.url), phases=[Phase("steady", 200, 5.0)], max_requests=25
    )
    assert run.requests == 25 and run.stopped_by == "max_requests 25"


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/x", "http://example.com/x", "http://192.168.1.5:80/"]
)
def test_only_loopback_is_a_target(url: str) -> None:
    with pytest.raises(ConfigError, match="not on loopback"):
        check_loopback(url)
    check_loopback("http://127.0.0.1:9/x")
    check_loopback("http://[::1]:9/x")


def test_python_callable_endpoint(store: Store) -> None:
    eps = [Endpoint("echo", "python:tests.echo_app:answer_async", bodies=(None,))]
    # the callable receives the body; answer_async expects a Request, so it raises -> errors counted
    run = run_load(store, eps, phases=[Phase("steady", 50, 0.3)])
    assert run.endpoints[0].errors == run.endpoints[0].requests > 0


def test_endpoint_file_and_phase_spec(tmp_path: Path) -> None:
    f = tmp_path / "eps.yaml"
    f.write_text(
        "endpoints:\n  - {name: s, url: 'http://127.0.0.1:1/api/search', kind: api, body: {query: x}, budget: {p95_ms: 100}}\n"
    )
    (ep,) = load_endpoints(f)
    assert ep.limits.p95_ms == 100 and ep.bodies == ({"query": "x"},)
    f.write_text("endpoints:\n  - {url: 'http://127.0.0.1:1/', kind: batch}\n")
    with pytest.raises(ConfigError, match="kind"):
        load_endpoints(f)
    assert phases_from("steady:20rps:10s,spike:60rps:3s") == [
        Phase("steady", 20, 10),
        Phase("spike", 60, 3),
    ]
    with pytest.raises(ConfigError, match="name:RATErps:SECONDSs"):
        phases_from("fast")


def test_demo_endpoints_report_p95_and_errors_and_faults_break_the_budget(store: Store) -> None:
    from workbench.demo.stack import app_endpoints, app_stack

    with app_stack(latency_ms="5") as url:
        clean = run_load(store, app_endpoints(url), phases=[Phase("steady", 40, 1.5)], seed=3)
    with app_stack(latency_ms="5", fault_rate=0.3) as url:
        faulty = run_load(store, app_endpoints(url), phases=[Phase("steady", 40, 1.5)], seed=3)
    for run in (clean, faulty):
        assert {e.endpoint for e in run.endpoints} == {"search", "triage"}
        assert all(e.p95_ms is not None for e in run.endpoints)
    assert clean.ok
    by_name = {e.endpoint: e for e in faulty.endpoints}
    assert by_name["search"].ok  # search does not call the model
    breached = [b.name for b in by_name["triage"].budgets if not b.ok]
    assert breached == ["error_rate"]


def test_latency_cli_gate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    args = [
        "latency",
        "--demo",
        "--fault-rate",
        "0.3",
        "--phases",
        "steady:30rps:1s",
        "--db",
        str(tmp_path / "l.db"),
    ]
    result = CliRunner().invoke(main, [*args, "--gate"])
    assert result.exit_code == 1 and "error_rate" in result.output and "BROKEN" in result.output
    result = CliRunner().invoke(main, ["latency", "--db", str(tmp_path / "l.db")])
    assert result.exit_code == 2 and "exactly one of --demo or --config" in result.output
