"""Service-level figures from traces: budgets, percentiles over time, burn rates, drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workbench import cache, slo
from workbench.demo import traffic
from workbench.errors import ConfigError
from workbench.store import Store
from workbench.traces import ingest

S = 1_000_000_000
HOUR = 3600 * S
COLUMNS = ("trace_id", "span_id", "parent_span_id", "start_ns", "duration_ms", "route",
           "span_class", "status_code", "error_type", "retry_count", "request_model", "ttft_ms")  # fmt: skip


def insert(store: Store, rows: list[dict[str, Any]]) -> None:
    store.conn.executemany(
        f"INSERT INTO spans ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [tuple(row.get(c) for c in COLUMNS) for row in rows],
    )


def req(i: int, at_ns: int, ms: float, route: str = "/api/x", **extra: Any) -> dict[str, Any]:
    return {"trace_id": f"t{i}", "span_id": "r", "start_ns": at_ns, "duration_ms": ms,
            "route": route, "status_code": "unset", **extra}  # fmt: skip


# -- the bar: the store agrees with the raw file ------------------------------------------


@pytest.fixture(scope="module")
def demo_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("traffic") / "demo.jsonl"
    traffic.generate(path, requests=400, seed=3, fault_rate=0.1)
    return path


def raw_spans(path: Path) -> list[dict[str, Any]]:
    """Every span of an OTLP JSON lines file with its attributes as a plain dict."""

    def value(v: dict[str, Any]) -> Any:
        ((kind, x),) = v.items()
        return int(x) if kind == "intValue" else x

    spans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    attrs = {a["key"]: value(a["value"]) for a in s.get("attributes", [])}
                    spans.append(s | {"attrs": attrs})
    return spans


def test_demo_trace_figures_from_the_store_match_the_raw_file(
    demo_trace: Path, store: Store
) -> None:
    first = ingest(store, [demo_trace])
    again = ingest(store, [demo_trace])
    assert first.stored > 0 and again.stored == 0
    spans = raw_spans(demo_trace)
    assert store.conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == len(spans)

    requests = slo.requests_frame(store)
    table = slo.budget_table(requests)
    for route in ("/api/triage", "/api/search"):
        roots = [
            s for s in spans if "parentSpanId" not in s and s["attrs"].get("http.route") == route
        ]
        ms = [(int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) / 1e6 for s in roots]
        failed = [s["status"].get("code") == 2 or "error.type" in s["attrs"] for s in roots]
        assert table.loc[route, "requests"] == len(roots)
        assert table.loc[route, "p95_ms"] == pytest.approx(np.percentile(ms, 95), rel=1e-9)
        assert table.loc[route, "error_rate"] == pytest.approx(np.mean(failed))
    assert table.loc["/api/triage", "kind"] == "llm" and table.loc["/api/search", "kind"] == "api"
    assert table.loc["/api/triage", "errors"] > 0  # the faults reached the figures

    layers = cache.layer_report(store)
    for layer in ("prompt_template", "embedding", "response_exact", "provider"):
        lookups = [s for s in spans if s["attrs"].get("workbench.cache.layer") == layer]
        hits = sum(bool(s["attrs"]["workbench.cache.hit"]) for s in lookups)
        assert (layers.loc[layer, "lookups"], layers.loc[layer, "hits"]) == (len(lookups), hits)
        assert layers.loc[layer, "hit_ratio"] == pytest.approx(hits / len(lookups))


def test_traffic_replayed_in_another_week_lands_in_that_week(tmp_path: Path, store: Store) -> None:
    now, later = tmp_path / "now.jsonl", tmp_path / "later.jsonl"
    a = traffic.generate(now, requests=40, seed=1)
    b = traffic.generate(later, requests=40, seed=2, week=_next_week())
    ingest(store, [now, later])
    bounds = slo.window_bounds(store)
    this = slo.requests_frame(store, since_ns=bounds["since_ns"], until_ns=bounds["until_ns"])
    last = slo.requests_frame(
        store, since_ns=bounds["base_since_ns"], until_ns=bounds["base_until_ns"]
    )
    assert (len(last), len(this)) == (a.attempts, b.attempts)
    gap = this["start_ns"].min() - last["start_ns"].min()
    assert 7 * 24 * HOUR <= gap < 7 * 24 * HOUR + 600 * S


def _next_week() -> str:
    import datetime as dt

    year, week, _ = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def test_week_shift_is_whole_weeks_and_names_a_bad_week() -> None:
    import datetime as dt

    wednesday = dt.date(2026, 11, 25)  # in 2026-W48
    assert traffic.week_shift_ns("2026-W48", wednesday) == 0
    assert traffic.week_shift_ns("2026-W49", wednesday) == 7 * 24 * HOUR
    assert traffic.week_shift_ns("2027-W01", wednesday) == 6 * 7 * 24 * HOUR
    with pytest.raises(ConfigError, match="2026-W49"):
        traffic.week_shift_ns("next week", wednesday)


# -- requests, kinds, windows ---------------------------------------------------------------


def test_requests_are_root_spans_with_failures_and_kinds(store: Store) -> None:
    t0 = 10 * HOUR
    insert(
        store,
        [
            req(1, t0, 100.0, "/api/chat"),
            {
                "trace_id": "t1",
                "span_id": "m",
                "parent_span_id": "r",
                "start_ns": t0 + 1,
                "duration_ms": 90.0,
                "span_class": "llm",
                "request_model": "m1",
            },
            req(2, t0 + S, 5.0, "/api/search", status_code="error"),
            req(3, t0 + 2 * S, 7.0, "/api/search", error_type="TimeoutError", retry_count=1),
            req(4, t0 + 3 * S, 9.0, "/api/search"),
            {"trace_id": "t5", "span_id": "r", "start_ns": t0, "duration_ms": 1.0},  # no route
        ],
    )
    frame = slo.requests_frame(store)
    assert list(frame["trace_id"]) == ["t1", "t2", "t3", "t4"]
    assert list(frame["failed"]) == [False, True, True, False]
    assert list(frame["kind"]) == ["llm", "api", "api", "api"]
    assert list(frame["retry_count"]) == [0, 0, 1, 0]
    window = slo.requests_frame(store, since_ns=t0 + S, until_ns=t0 + 3 * S)
    assert list(window["trace_id"]) == ["t2", "t3"]
    assert set(slo.requests_frame(store, kinds={"/api/s*": "llm"})["kind"]) == {"llm"}
    with pytest.raises(ConfigError, match="'gpu'"):
        slo.requests_frame(store, kinds={"/api/*": "gpu"})


def test_window_bounds_end_at_the_newest_span_and_need_spans(store: Store) -> None:
    with pytest.raises(ConfigError, match="no spans"):
        slo.window_bounds(store)
    insert(store, [req(1, 100 * 24 * HOUR, 1.0)])
    b = slo.window_bounds(store, days=7)
    assert b["until_ns"] == 100 * 24 * HOUR + 1
    assert b["until_ns"] - b["since_ns"] == b["base_until_ns"] - b["base_since_ns"] == 7 * 24 * HOUR
    assert b["base_until_ns"] == b["since_ns"]
    with pytest.raises(ConfigError, match="positive"):
        slo.window_bounds(store, days=0)


# -- budgets and time series ---------------------------------------------------------------


def frame_of(ms: list[float], route: str = "/api/x", kind: str = "api", failed: list[bool] | None = None,
             start_ns: list[int] | None = None) -> pd.DataFrame:  # fmt: skip
    n = len(ms)
    return pd.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(n)],
            "start_ns": start_ns or [i * S for i in range(n)],
            "route": route,
            "duration_ms": ms,
            "failed": failed or [False] * n,
            "retry_count": 0,
            "kind": kind,
        }
    )


def test_budget_table_verdicts_per_kind() -> None:
    api = frame_of([100.0] * 90 + [400.0] * 10)  # p95 = 400 ms > 300 ms
    llm = frame_of([1000.0] * 100, route="/api/chat", kind="llm", failed=[True] + [False] * 99)
    table = slo.budget_table(pd.concat([api, llm]))
    assert table.loc["/api/x", "p95_ms"] == 400.0 and not table.loc["/api/x", "ok"]
    assert table.loc["/api/chat", "p95_budget_ms"] == 1500.0
    assert table.loc["/api/chat", "error_rate"] == 0.01 and not table.loc["/api/chat", "ok"]
    names = {v.name: v.ok for v in table.loc["/api/chat", "checks"]}
    assert names == {"p95_latency_ms": True, "error_rate": False}


def test_over_time_buckets_and_the_chart() -> None:
    frame = frame_of([float(i) for i in range(120)], start_ns=[i * S for i in range(120)])
    series = slo.over_time(frame)
    assert (series["bucket"].diff().dropna() == pd.Timedelta(seconds=5)).all()  # 120 s / 5 s = 24
    assert series["requests"].sum() == 120
    assert series.iloc[0]["p95_ms"] == pytest.approx(np.percentile(range(5), 95))
    assert len(slo.over_time(frame, bucket_s=60)) == 2
    fig = slo.over_time_figure(series, "p95_ms", {"/api/x": 300.0})
    assert [t.name for t in fig.data] == ["/api/x", "/api/x budget"]
    assert slo.over_time(frame.iloc[:0]).empty


# -- burn rates ------------------------------------------------------------------------------


def test_burn_rates_need_both_windows() -> None:
    end = 10 * 24 * HOUR
    # 1,000 requests over the last hour; 2% fail, all of them in the last five minutes.
    starts = [end - HOUR + i * (HOUR // 1000) for i in range(1000)]
    failed = [s >= end - 300 * S for s in starts]
    failed = [f and i % 4 == 0 for i, f in enumerate(failed)]  # a quarter of those
    frame = frame_of([10.0] * 1000, failed=failed, start_ns=starts)
    burns = slo.burn_rates(frame, as_of_ns=end).set_index(["sli", "alert"])
    page = burns.loc[("errors", slo.ALERTS[0].name)]
    bad = sum(failed)
    recent = sum(s >= end - 300 * S for s in starts)
    assert page["long_burn"] == pytest.approx(bad / 1000 / 0.005)
    assert page["short_burn"] == pytest.approx(bad / recent / 0.005)
    assert page["fires"] == (page["long_burn"] >= 14.4 and page["short_burn"] >= 14.4)
    assert not burns.loc[("latency", slo.ALERTS[0].name), "fires"]


def test_a_latency_burn_fires_the_page() -> None:
    end = 5 * HOUR
    starts = [end - HOUR + i * (HOUR // 100) for i in range(100)]
    frame = frame_of([1000.0] * 100, start_ns=starts)  # every request over 300 ms
    burns = slo.burn_rates(frame, as_of_ns=end)
    latency = burns[burns["sli"] == "latency"]
    assert latency["long_burn"].iloc[0] == pytest.approx(1 / 0.05)
    assert latency["fires"].all()  # 20x burns every pair
    assert not burns[burns["sli"] == "errors"]["fires"].any()


# -- drift -----------------------------------------------------------------------------------


def test_drift_verdicts() -> None:
    rng = np.random.default_rng(0)
    base = frame_of(list(rng.normal(100, 5, 400)))
    same = frame_of(list(rng.normal(100, 5, 400)))
    slower = frame_of(list(rng.normal(150, 5, 400)))
    assert set(slo.drift(same, base)["verdict"]) == {"steady"}
    worse = slo.drift(slower, base).set_index("figure")
    assert worse.loc["p95_ms", "verdict"] == "worse" and "95% CI" in worse.loc["p95_ms", "evidence"]
    assert slo.drift(base, slower).set_index("figure").loc["p95_ms", "verdict"] == "better"
    errors = frame_of([100.0] * 400, failed=[i < 40 for i in range(400)])
    flagged = slo.drift(errors, base).set_index("figure").loc["error_rate"]
    assert flagged["verdict"] == "worse" and flagged["budget"] == "BROKEN"
    assert set(slo.drift(base, base.iloc[:0])["verdict"]) == {"no baseline"}


def test_report_checks_for_the_index() -> None:
    frame = frame_of([100.0] * 100, failed=[i < 3 for i in range(100)])
    report = slo.SloReport(
        {"as_of": None},
        frame,
        frame.iloc[:0],
        slo.budget_table(frame),
        slo.burn_rates(frame),
        slo.drift(frame, frame.iloc[:0]),
    )
    by_name = {c.name: c for c in report.checks()}
    assert not by_name["/api/x error_rate"].ok
    assert by_name["/api/x p95_latency_ms"].ok
    assert by_name["/api/x p95_ms drift"].message.startswith("no baseline")
    assert "/api/x errors burn rate" in by_name
    assert report.headline() == {"/api/x p95_ms": 100.0, "/api/x error_rate": 0.03}
    assert "broken /api/x error_rate" in report.render_text()


def test_large_samples_resample_the_p95_order_statistic_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = np.random.default_rng(1).lognormal(3, 0.5, 8000)
    fast = slo._p95_resamples(values, np.random.default_rng(2), 4000)
    monkeypatch.setattr(slo, "_DIRECT_MAX", 10**9)
    slow = slo._p95_resamples(values, np.random.default_rng(3), 4000)
    spread = np.percentile(slow, 97.5) - np.percentile(slow, 2.5)
    for q in (2.5, 50, 97.5):
        assert abs(np.percentile(fast, q) - np.percentile(slow, q)) < 0.1 * spread
