"""Service-level figures from ingested traces: percentiles, burn-rate alerts, week-over-week drift.

A *request* is a root span (no parent) with a route: one attempt of one client call, so a
retried call counts each attempt and its ``retry_count``. Latency percentiles are over every
attempt, failed ones included (a timeout is the slowest request there is), with NumPy's
linear interpolation. A request failed when its status is ``error`` or it carries an
``error_type``.

Each route gets a budget by kind: ``llm`` when any of its traces holds a model call
(``span_class = 'llm'``), else ``api``; ``kinds`` overrides that per route pattern. The
budgets are :data:`workbench.latency.DEFAULT_BUDGETS`: p95 ≤ 300 ms for API core, ≤ 1.5 s
for LLM endpoints, errors ≤ 0.5%.

Burn-rate alerts follow the SRE Workbook's multiwindow, multi-burn-rate recipe: a p95
budget is an SLO that 95% of requests finish within the limit, an error budget one that
99.5% succeed; burn = bad fraction / (1 - SLO), and an alert fires when both its long and
its short window burn at least its rate.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.checks import Check, Provenance
from workbench.errors import ConfigError
from workbench.latency import DEFAULT_BUDGETS, LatencyBudget
from workbench.store import Store
from workbench.traces import window_clause

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "ALERTS",
    "Alert",
    "SloReport",
    "budget_table",
    "burn_rates",
    "drift",
    "model_calls",
    "model_table",
    "over_time",
    "over_time_figure",
    "requests_frame",
    "route_kinds",
    "slo_report",
    "window_bounds",
]

NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S
_QUANTILES = (50, 95, 99)
# Bucket widths for charts over time, smallest first: the first giving <= 60 buckets wins.
_BUCKETS_S = (1, 5, 10, 30, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86_400)


@dataclass(frozen=True)
class Alert:
    """One multiwindow burn-rate alert: fires when both windows burn at least ``burn``."""

    severity: str
    long_s: int
    short_s: int
    burn: float

    @property
    def name(self) -> str:
        return f"{self.severity} {_span(self.long_s)}/{_span(self.short_s)} ≥ {self.burn:g}x"


# The SRE Workbook's table: 2% of a 30-day budget in 1 h, 5% in 6 h, 10% in 3 days.
ALERTS = (
    Alert("page", 3600, 300, 14.4),
    Alert("page", 6 * 3600, 1800, 6.0),
    Alert("ticket", 3 * 86_400, 6 * 3600, 1.0),
)


# -- requests ----------------------------------------------------------------------------


def requests_frame(
    store: Store,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    kinds: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Root spans with a route, starting in [since, until): one row per attempt.

    Columns: trace_id, start_ns, route, duration_ms, failed, retry_count, tenant, kind
    (see :func:`route_kinds`; ``kinds`` maps route patterns to ``api`` or ``llm``).
    """
    store.require_sqlite("traces")
    window, args = window_clause(since_ns, until_ns)
    frame = _spans(
        store,
        "trace_id, start_ns, route, duration_ms, status_code, error_type, retry_count, tenant",
        "parent_span_id IS NULL AND route IS NOT NULL AND duration_ms IS NOT NULL" + window,
        args,
    )
    frame["retry_count"] = frame["retry_count"].fillna(0).astype("int64")
    sql = f"SELECT DISTINCT trace_id FROM spans WHERE span_class = 'llm'{window}"
    llm_traces = {r[0] for r in store.conn.execute(sql, args)}
    frame["kind"] = frame["route"].map(route_kinds(frame, llm_traces, kinds))
    return frame


def route_kinds(
    requests: pd.DataFrame,
    llm_traces: set[str] | frozenset[str] = frozenset(),
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each route's budget kind: ``overrides`` (fnmatch patterns, first match), else by content."""
    for pattern, kind in (overrides or {}).items():
        if kind not in DEFAULT_BUDGETS:
            raise ConfigError(
                f"route kind {kind!r} for {pattern!r} is unknown; use one of {sorted(DEFAULT_BUDGETS)}"
            )
    kinds: dict[str, str] = {}
    for route, traces in requests.groupby("route")["trace_id"]:
        match = next(
            (k for p, k in (overrides or {}).items() if fnmatch.fnmatchcase(route, p)), None
        )
        kinds[str(route)] = match or ("llm" if llm_traces.intersection(traces) else "api")
    return kinds


def model_calls(
    store: Store, *, since_ns: int | None = None, until_ns: int | None = None
) -> pd.DataFrame:
    """Model-call spans (``span_class = 'llm'``): start, model, latency, TTFT, failure."""
    window, args = window_clause(since_ns, until_ns)
    return _spans(
        store,
        "start_ns, COALESCE(request_model, response_model, '?') AS model, duration_ms, ttft_ms, "
        "status_code, error_type, retry_count, input_tokens, output_tokens",
        "span_class = 'llm' AND duration_ms IS NOT NULL" + window,
        args,
    )


def _spans(store: Store, columns: str, where: str, args: Sequence[int]) -> pd.DataFrame:
    """Spans in start order with a ``failed`` flag from their status and error type."""
    store.require_sqlite("traces")
    frame = pd.read_sql_query(
        f"SELECT {columns} FROM spans WHERE {where} ORDER BY start_ns, trace_id",
        store.conn,
        params=list(args),
    )
    frame["failed"] = (frame.pop("status_code") == "error") | frame.pop("error_type").notna()
    return frame


def window_bounds(
    store: Store, *, days: float = 7.0, as_of_ns: int | None = None
) -> dict[str, Any]:
    """This window and the one before it: ``(as_of - days, as_of]`` and the same length earlier.

    ``as_of_ns`` defaults to just after the newest span's start, so a week's analysis
    covers the newest week of traffic in the store.
    """
    store.require_sqlite("traces")
    if days <= 0 or not math.isfinite(days):
        raise ConfigError(f"window days must be a positive number, got {days!r}")
    if as_of_ns is None:
        newest = store.conn.execute("SELECT MAX(start_ns) FROM spans").fetchone()[0]
        if newest is None:
            raise ConfigError(
                "the store holds no spans; ingest traces first (workbench traces ingest FILE)"
            )
        as_of_ns = int(newest) + 1
    width = int(days * DAY_NS)
    return {
        "as_of": pd.Timestamp(as_of_ns, unit="ns", tz="UTC"),
        "since_ns": as_of_ns - width,
        "until_ns": as_of_ns,
        "base_since_ns": as_of_ns - 2 * width,
        "base_until_ns": as_of_ns - width,
    }


# -- budgets -----------------------------------------------------------------------------


def _figures(group: pd.DataFrame) -> dict[str, Any]:
    ms = group["duration_ms"].to_numpy(dtype=np.float64)
    p50, p95, p99 = np.percentile(ms, _QUANTILES) if ms.size else [math.nan] * 3
    n = len(group)
    return {
        "requests": n,
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "errors": int(group["failed"].sum()),
        "error_rate": float(group["failed"].mean()) if n else math.nan,
        "retry_rate": float((group["retry_count"] > 0).mean()) if n else math.nan,
    }


def _budget(kind: str, budgets: Mapping[str, LatencyBudget] | None) -> LatencyBudget:
    table = {**DEFAULT_BUDGETS, **(budgets or {})}
    return table[kind]


def budget_table(
    requests: pd.DataFrame, *, budgets: Mapping[str, LatencyBudget] | None = None
) -> pd.DataFrame:
    """Per route: requests, p50/p95/p99, error and retry rates, and the checks of its budget."""
    rows = []
    for (route, kind), group in requests.groupby(["route", "kind"], sort=True):
        limits = _budget(str(kind), budgets)
        figures = _figures(group)
        checks = limits.checks(figures)
        rows.append(
            {
                "route": route,
                "kind": kind,
                **figures,
                "p95_budget_ms": limits.p95_ms,
                "error_budget": limits.error_rate,
                "ok": all(c.ok for c in checks),
                "checks": checks,
            }
        )
    columns = ["route", "kind", "requests", "p50_ms", "p95_ms", "p99_ms", "errors",
               "error_rate", "retry_rate", "p95_budget_ms", "error_budget", "ok", "checks"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).set_index("route")


def over_time(
    requests: pd.DataFrame, *, by: str = "route", bucket_s: int | None = None
) -> pd.DataFrame:
    """Per ``by`` (route, or model for :func:`model_calls`) and time bucket: requests,
    p50/p95/p99, error and retry rates.

    ``bucket_s`` defaults to the smallest of 1 s, 5 s, ... 1 day giving at most 60 buckets.
    """
    if requests.empty:
        return pd.DataFrame(columns=["bucket", by, "requests", "p50_ms", "p95_ms", "p99_ms",
                                     "errors", "error_rate", "retry_rate"])  # fmt: skip
    if bucket_s is None:
        span_s = (requests["start_ns"].max() - requests["start_ns"].min()) / NS_PER_S
        bucket_s = next((b for b in _BUCKETS_S if span_s / b <= 60), _BUCKETS_S[-1])
    if bucket_s <= 0:
        raise ConfigError(f"bucket_s must be positive, got {bucket_s}")
    width = bucket_s * NS_PER_S
    keyed = requests.assign(
        bucket=(requests["start_ns"] // width) * width,
        retry_count=requests["retry_count"].fillna(0),
    )
    rows = [
        {"bucket": pd.Timestamp(int(b), unit="ns", tz="UTC"), by: key, **_figures(group)}
        for (b, key), group in keyed.groupby(["bucket", by], sort=True)
    ]
    return pd.DataFrame(rows)


def over_time_figure(
    frame: pd.DataFrame,
    metric: str = "p95_ms",
    limits: Mapping[str, float] | None = None,
    *,
    by: str = "route",
) -> go.Figure:
    """One line per route (or ``by``) of ``metric`` over time, each limit dashed (``limits``)."""
    import plotly.graph_objects as go

    percent = metric.endswith("_rate")
    fig = go.Figure()
    for route, group in frame.groupby(by, sort=True):
        y = group[metric] * (100 if percent else 1)
        x = group["bucket"].dt.strftime("%Y-%m-%d %H:%M:%S").tolist()  # plotly reads these as dates
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=str(route)))
        if limits and route in limits:
            limit = limits[route] * (100 if percent else 1)
            fig.add_trace(
                go.Scatter(
                    x=[x[0], x[-1]],
                    y=[limit, limit],
                    mode="lines",
                    line={"dash": "dash"},
                    name=f"{route} budget",
                )
            )
    label = metric.removesuffix("_ms").replace("_", " ")
    fig.update_layout(
        title=f"{label} per {by}",
        xaxis_title="UTC",
        yaxis_title="%" if percent else "ms (log)",
        template="plotly_white",
        height=360,
    )
    if not percent:
        fig.update_yaxes(type="log")
    return fig


def model_table(calls: pd.DataFrame) -> pd.DataFrame:
    """Per model: calls, p50/p95/p99 latency, p95 time to first token, error rate, tokens."""
    rows = []
    for model, group in calls.groupby("model", sort=True):
        ms = group["duration_ms"].to_numpy(dtype=np.float64)
        ttft = group["ttft_ms"].dropna().to_numpy(dtype=np.float64)
        p50, p95, p99 = np.percentile(ms, _QUANTILES)
        rows.append(
            {
                "model": model,
                "calls": len(group),
                "p50_ms": float(p50),
                "p95_ms": float(p95),
                "p99_ms": float(p99),
                "ttft_p95_ms": float(np.percentile(ttft, 95)) if ttft.size else math.nan,
                "error_rate": float(group["failed"].mean()),
                "input_tokens": int(group["input_tokens"].fillna(0).sum()),
                "output_tokens": int(group["output_tokens"].fillna(0).sum()),
            }
        )
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


@dataclass
class SloReport:
    """A window of traced traffic against its budgets: per route its figures, burn-rate
    alerts and drift from the window before, with one check for each."""

    bounds: dict[str, Any]
    requests: pd.DataFrame  # this window's requests (see requests_frame)
    baseline: pd.DataFrame  # the window before's
    budgets: pd.DataFrame  # budget_table(requests)
    burns: pd.DataFrame  # burn_rates(requests)
    drifts: pd.DataFrame  # drift(requests, baseline)

    def checks(self) -> list[Check]:
        """Per route: each budget, each SLI's burn-rate alerts, and each figure's drift."""
        out: list[Check] = []
        for route, row in self.budgets.iterrows():
            out += [c.renamed(f"{route} {c.name}") for c in row["checks"]]
        for (route, sli), group in (
            self.burns.groupby(["route", "sli"], sort=True) if not self.burns.empty else []
        ):
            firing = group[group["fires"]]
            message = (
                "firing: "
                + "; ".join(
                    f"{a} (burn {lb:.1f}x / {sb:.1f}x)"
                    for a, lb, sb in zip(
                        firing["alert"], firing["long_burn"], firing["short_burn"], strict=True
                    )
                )
                if len(firing)
                else f"no alert firing (highest burn {group['long_burn'].max():.2f}x)"
            )
            out.append(Check(f"{route} {sli} burn rate", firing.empty, message))
        for _, row in self.drifts.iterrows():
            name = f"{row['route']} {row['figure']} drift"
            message = f"{row['verdict']}: {_drift_text(row)}"
            out.append(Check(name, row["verdict"] != "worse", message))
        return out

    def headline(self) -> dict[str, Any]:
        """Each route's p95 latency and error rate."""
        rows = list(self.budgets.iterrows())
        return {
            **{f"{route} p95_ms": round(float(row.p95_ms), 2) for route, row in rows},
            **{f"{route} error_rate": round(float(row.error_rate), 4) for route, row in rows},
        }

    def provenance(self) -> Provenance:
        """Trace windows are not runs: nothing to name."""
        return Provenance()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: the window, the headline and the checks."""
        return {
            "as_of": str(self.bounds["as_of"]),
            "requests": len(self.requests),
            "baseline_requests": len(self.baseline),
            "headline": self.headline(),
            "checks": [c.to_dict() for c in self.checks()],
        }

    def render_text(self) -> str:
        """One line per check, after a count of those that hold."""
        checks = self.checks()
        failed = [c.name for c in checks if not c.ok]
        lines = [
            f"{len(checks) - len(failed)}/{len(checks)} checks ok"
            + (": broken " + ", ".join(failed) if failed else "")
        ]
        lines += [f"  {'ok ' if c.ok else 'BAD'} {c.name}: {c.message}" for c in checks]
        return "\n".join(lines)


def slo_report(
    store: Store,
    *,
    days: float = 7.0,
    kinds: Mapping[str, str] | None = None,
    budgets: Mapping[str, LatencyBudget] | None = None,
    as_of_ns: int | None = None,
) -> SloReport:
    """This window of traffic (ending at the newest span) and the one before, analysed."""
    bounds = window_bounds(store, days=days, as_of_ns=as_of_ns)
    requests = requests_frame(
        store, since_ns=bounds["since_ns"], until_ns=bounds["until_ns"], kinds=kinds
    )
    baseline = requests_frame(
        store, since_ns=bounds["base_since_ns"], until_ns=bounds["base_until_ns"], kinds=kinds
    )
    return SloReport(
        bounds,
        requests,
        baseline,
        budget_table(requests, budgets=budgets),
        burn_rates(requests, budgets=budgets),
        drift(requests, baseline, budgets=budgets),
    )


def _drift_text(row: pd.Series) -> str:
    def unit(v: float) -> str:
        return f"{v * 100:.2f}%" if row["figure"] == "error_rate" else f"{v:,.1f} ms"

    if row["last_window"] is None or pd.isna(row["last_window"]):
        return f"{unit(row['this_window'])} this window, none before"
    return f"{unit(row['last_window'])} → {unit(row['this_window'])} ({row['evidence']})"


# -- burn rates --------------------------------------------------------------------------


def burn_rates(
    requests: pd.DataFrame,
    *,
    as_of_ns: int | None = None,
    budgets: Mapping[str, LatencyBudget] | None = None,
    alerts: Sequence[Alert] = ALERTS,
) -> pd.DataFrame:
    """Per route, SLI and alert: the long- and short-window burn rates and whether it fires.

    The latency SLI counts a request bad when it took longer than its p95 budget (SLO 95%);
    the error SLI when it failed (SLO 1 - error budget). Windows end at ``as_of_ns``
    (default: just after the newest request). A window with no requests burns nothing.
    """
    if requests.empty:
        return pd.DataFrame(columns=["route", "sli", "alert", "long_burn", "short_burn", "fires"])
    end = int(requests["start_ns"].max()) + 1 if as_of_ns is None else as_of_ns
    rows = []
    for (route, kind), group in requests.groupby(["route", "kind"], sort=True):
        limits = _budget(str(kind), budgets)
        start = group["start_ns"].to_numpy()
        slis = {
            "latency": (group["duration_ms"].to_numpy() > limits.p95_ms, 0.05),
            "errors": (group["failed"].to_numpy(dtype=bool), limits.error_rate),
        }
        for sli, (bad, allowed) in slis.items():
            for alert in alerts:
                long_burn = _burn(start, bad, end, alert.long_s, allowed)
                short_burn = _burn(start, bad, end, alert.short_s, allowed)
                rows.append(
                    {
                        "route": route,
                        "sli": sli,
                        "alert": alert.name,
                        "severity": alert.severity,
                        "long_burn": long_burn,
                        "short_burn": short_burn,
                        "threshold": alert.burn,
                        "fires": long_burn >= alert.burn and short_burn >= alert.burn,
                    }
                )
    return pd.DataFrame(rows)


def _burn(start: np.ndarray, bad: np.ndarray, end: int, window_s: int, allowed: float) -> float:
    inside = (start >= end - window_s * NS_PER_S) & (start < end)
    n = int(inside.sum())
    if n == 0 or allowed <= 0:
        return 0.0
    return float(bad[inside].sum()) / n / allowed


# -- drift -------------------------------------------------------------------------------


def drift(
    current: pd.DataFrame,
    baseline: pd.DataFrame,
    *,
    budgets: Mapping[str, LatencyBudget] | None = None,
    resamples: int = 2000,
    seed: int = 0,
    min_change: float = 0.10,
) -> pd.DataFrame:
    """Each route's budgeted figures this window against the last, with a verdict.

    p95 latency: a bootstrap 95% interval of the difference (requests resampled within each
    window). Error rate: Fisher's exact test at 5%. A change is ``worse``/``better`` when it
    is significant and at least ``min_change`` relative (so a tiny but certain shift on a
    huge sample is ``steady``); ``no baseline`` when last window had no requests for the
    route. ``budget`` says whether this window's figure is within its limit.
    """
    from scipy.stats import fisher_exact

    rng = np.random.default_rng(seed)
    rows = []
    for (route, kind), group in current.groupby(["route", "kind"], sort=True):
        limits = _budget(str(kind), budgets)
        base = baseline[baseline["route"] == route] if not baseline.empty else baseline
        now_ms = group["duration_ms"].to_numpy(dtype=np.float64)
        p95_now = float(np.percentile(now_ms, 95))
        err_now = float(group["failed"].mean())
        entry: dict[str, Any] = {"route": route, "kind": kind}
        if base.empty:
            rows.append(entry | _row("p95_ms", p95_now, None, None, "no baseline", limits.p95_ms))
            rows.append(
                entry | _row("error_rate", err_now, None, None, "no baseline", limits.error_rate)
            )
            continue
        was_ms = base["duration_ms"].to_numpy(dtype=np.float64)
        p95_was = float(np.percentile(was_ms, 95))
        low, high = _bootstrap_p95_diff(now_ms, was_ms, rng, resamples)
        significant = low > 0 or high < 0
        rows.append(
            entry
            | _row(
                "p95_ms",
                p95_now,
                p95_was,
                (low, high),
                _verdict(p95_now, p95_was, significant, min_change),
                limits.p95_ms,
            )
        )
        err_was = float(base["failed"].mean())
        table = [
            [int(group["failed"].sum()), int((~group["failed"]).sum())],
            [int(base["failed"].sum()), int((~base["failed"]).sum())],
        ]
        p_value = float(fisher_exact(table).pvalue)
        rows.append(
            entry
            | _row(
                "error_rate",
                err_now,
                err_was,
                p_value,
                _verdict(err_now, err_was, p_value < 0.05, min_change),
                limits.error_rate,
            )
        )
    columns = ["route", "kind", "figure", "this_window", "last_window", "change", "evidence",
               "verdict", "limit", "budget"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _row(
    figure: str, now: float, was: float | None, evidence: Any, verdict: str, limit: float
) -> dict[str, Any]:
    if isinstance(evidence, tuple):
        evidence = f"95% CI of change [{evidence[0]:+.1f}, {evidence[1]:+.1f}] ms"
    elif isinstance(evidence, float):
        evidence = f"Fisher p = {evidence:.3g}"
    return {
        "figure": figure,
        "this_window": now,
        "last_window": was,
        "change": None if was is None else now - was,
        "evidence": evidence or "",
        "verdict": verdict,
        "limit": limit,
        "budget": "ok" if now <= limit else "BROKEN",
    }


def _verdict(now: float, was: float, significant: bool, min_change: float) -> str:
    relative = abs(now - was) / was if was > 0 else (math.inf if now > 0 else 0.0)
    if not significant or relative < min_change:
        return "steady"
    return "worse" if now > was else "better"


def _bootstrap_p95_diff(
    now: np.ndarray, was: np.ndarray, rng: np.random.Generator, resamples: int
) -> tuple[float, float]:
    """A percentile-bootstrap 95% interval of p95(now) - p95(was)."""
    diffs = _p95_resamples(now, rng, resamples) - _p95_resamples(was, rng, resamples)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


_DIRECT_MAX = 5000  # above this many values, resample the order statistic itself


def _p95_resamples(x: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The p95 of ``resamples`` bootstrap resamples of ``x``.

    Small samples are resampled outright (in chunks, to bound memory). For large ones the
    resample's p95 is drawn directly: the k-th smallest of n draws from the sample is the
    value at rank ceil(n * U), U ~ Beta(k, n - k + 1), the k-th order statistic of n uniforms;
    O(resamples) whatever n, where resampling outright costs O(n * resamples).
    """
    n = len(x)
    if n <= _DIRECT_MAX:
        out = np.empty(resamples)
        chunk = max(1, 2_000_000 // n)
        for lo in range(0, resamples, chunk):
            k = min(chunk, resamples - lo)
            out[lo : lo + k] = np.percentile(x[rng.integers(0, n, size=(k, n))], 95, axis=1)
        return out
    ordered = np.sort(x)
    k = int(np.floor((n - 1) * 0.95)) + 1  # the 1-based rank np.percentile interpolates from
    ranks = np.ceil(rng.beta(k, n - k + 1, size=resamples) * n).astype(np.int64)
    return ordered[np.clip(ranks - 1, 0, n - 1)]


def _span(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
