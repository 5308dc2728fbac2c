"""Tables and charts that notebooks show: thin, tested views over the store."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.store import Store
from workbench.tables import frame_html
from workbench.text import percent as rate

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.calibration import Calibration
    from workbench.checks import Result
    from workbench.compare import Comparison
    from workbench.matrix import Matrix
    from workbench.pairwise import Pairwise
    from workbench.runner import RunSummary

__all__ = [
    "PERCENTILES",
    "SVG",
    "Figure",
    "agreement_frame",
    "budget_frame",
    "case_delta_frame",
    "checks_line",
    "delta_frame",
    "disagreement_frame",
    "failures_frame",
    "field_figure",
    "field_frame",
    "figure",
    "flakiness_frame",
    "flaky_frame",
    "judge_cost_frame",
    "judge_frame",
    "latency_frame",
    "load_frame",
    "matrix_case_frame",
    "matrix_cell_frame",
    "matrix_heatmap",
    "pairwise_case_frame",
    "pairwise_frame",
    "pareto_figure",
    "pin_frame",
    "rate",
    "score_histogram",
    "scorer_frame",
    "setup_notebook",
    "summary_frame",
    "tag_delta_frame",
    "tag_frame",
    "tool_call_frame",
    "tool_failure_frame",
    "transition_frame",
    "verdict_text",
]

PERCENTILES = (50, 90, 95, 99)
_SUMMARY_COLUMNS = (
    "run",
    "target",
    "status",
    "results",
    "pass rate",
    "errors",
    "mean score",
    "p50 ms",
    "p95 ms",
    "tokens in",
    "cached",
    "tokens out",
    "reasoning",
    "cut at max_tokens",
    "cost USD",
    "budgets",
)


def setup_notebook() -> None:
    """Display defaults for notebooks: tables through ``tables.frame_html``, many rows."""
    from IPython import get_ipython

    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.max_rows", 200)
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, frame_html)


class Figure:
    """A plotly chart that renders live in JupyterLab and offline in exported HTML.

    JupyterLab draws the plotly mimetype; nbconvert picks the HTML, which calls plotly.js
    but does not carry it: the published report loads it once, from the file beside it or
    inlined (``publish.to_html``), so a week of reports holds one copy and needs no network.
    """

    def __init__(self, fig: go.Figure) -> None:
        self.fig = fig

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        height = self.fig.layout.height or 420
        html = self.fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config={"displaylogo": False},
            default_height=f"{height}px",
        )
        return {
            "application/vnd.plotly.v1+json": self.fig.to_plotly_json(),
            "text/html": html,
        }


def figure(fig: go.Figure) -> Figure:
    """Wrap a plotly figure for display (see Figure)."""
    return Figure(fig)


def summary_frame(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    """One row per run: status, results, pass and error rates, latency, tokens, cost."""
    rows = []
    for s in summaries:
        rows.append(
            {
                "run": s.run_id,
                "target": s.target,
                "status": s.status,
                "results": f"{s.results}/{s.expected_results}",
                "pass rate": s.pass_rate,
                "errors": s.errors,
                "mean score": s.mean_score,
                "p50 ms": s.p50_latency_ms,
                "p95 ms": s.p95_latency_ms,
                "tokens in": s.tokens_in,
                "cached": s.cached_tokens,
                "tokens out": s.tokens_out,
                "reasoning": s.reasoning_tokens,
                "cut at max_tokens": s.length_cutoffs,
                "cost USD": s.cost_usd,
                "budgets": "ok" if s.budget_ok else "BROKEN",
            }
        )
    return pd.DataFrame(rows, columns=list(_SUMMARY_COLUMNS)).set_index("run")


def budget_frame(summary: RunSummary) -> pd.DataFrame:
    """Each budget: the figure, the limit, and the verdict."""
    return pd.DataFrame(
        [
            {
                "budget": b.name,
                "actual": b.actual,
                "limit": b.limit,
                "rule": "≤" if b.direction == "max" else "≥",
                "verdict": "ok" if b.ok else "BROKEN",
                "detail": b.message,
            }
            for b in summary.budgets
        ],
        columns=["budget", "actual", "limit", "rule", "verdict", "detail"],
    ).set_index("budget")


def failures_frame(
    store: Store, run_id: str, *, expected: dict[str, Any] | None = None, limit: int = 20
) -> pd.DataFrame:
    """Failed and errored results with expected vs actual and the scorers that failed."""
    rows = store.query(
        """
        SELECT r.case_id, r.repeat, r.output, r.error, r.score,
               group_concat(CASE WHEN s.passed = 0 THEN s.scorer || ': ' || coalesce(s.detail, '') END, '; ')
                   AS failed_scorers
        FROM results r LEFT JOIN scores s
          ON s.run_id = r.run_id AND s.case_id = r.case_id AND s.repeat = r.repeat
        WHERE r.run_id = ? AND r.passed = 0
        GROUP BY r.run_id, r.case_id, r.repeat
        ORDER BY r.error IS NOT NULL, r.score NULLS FIRST, r.case_id
        LIMIT ?
        """,
        [run_id, limit],
    )
    out = []
    for r in rows:
        exp = (expected or {}).get(r["case_id"])
        out.append(
            {
                "case": r["case_id"],
                "repeat": r["repeat"],
                "score": r["score"],
                "expected": json.dumps(exp, ensure_ascii=False) if exp is not None else "",
                "actual": _shown_output(r["output"], r["error"]),
                "why": r["error"] or r["failed_scorers"] or "",
            }
        )
    frame = pd.DataFrame(out, columns=["case", "repeat", "score", "expected", "actual", "why"])
    frame["score"] = frame["score"].astype(float)  # NaN, not None, for errored results
    return frame


def scorer_frame(store: Store, run_id: str) -> pd.DataFrame:
    """Per scorer: mean score, pass share and how many results it judged."""
    return store.frame(
        "SELECT scorer, AVG(score) AS mean_score, AVG(passed) AS pass_share, COUNT(*) AS results "
        "FROM scores WHERE run_id = ? GROUP BY scorer ORDER BY scorer",
        (run_id,),
    ).set_index("scorer")


def latency_frame(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Latency and time-to-first-token percentiles per run (errors excluded)."""
    rows = []
    for run_id in run_ids:
        frame = store.frame(
            "SELECT latency_ms, ttft_ms FROM results WHERE run_id = ? AND error IS NULL",
            (run_id,),
        )
        for column in ("latency_ms", "ttft_ms"):
            values = frame[column].dropna().to_numpy(dtype=float)
            if not values.size:
                continue
            row: dict[str, Any] = {"run": run_id, "measure": column, "n": int(values.size)}
            for q in PERCENTILES:
                row[f"p{q}"] = float(np.percentile(values, q))
            row["max"] = float(values.max())
            rows.append(row)
    columns = ["run", "measure", "n", *(f"p{q}" for q in PERCENTILES), "max"]
    return pd.DataFrame(rows, columns=columns)


def score_histogram(
    store: Store, run_ids: Sequence[str], labels: Sequence[str] | None = None
) -> Figure:
    """Distribution of case scores per run, overlaid."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, run_id in enumerate(run_ids):
        scores = [
            r["score"]
            for r in store.query(
                "SELECT score FROM results WHERE run_id = ? AND score IS NOT NULL", [run_id]
            )
        ]
        name = labels[i] if labels else run_id
        fig.add_trace(
            go.Histogram(
                x=scores, name=name, opacity=0.7, xbins={"start": 0, "end": 1.0001, "size": 0.05}
            )
        )
    fig.update_layout(
        barmode="overlay",
        title="Case scores",
        xaxis_title="weighted score",
        yaxis_title="results",
        height=360,
        margin={"t": 50, "b": 40, "l": 50, "r": 20},
    )
    return Figure(fig)


def tag_frame(store: Store, run_id: str, tags: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Pass rate per case tag (results with repeats; an errored result counts as failed)."""
    results = store.results_frame(run_id)
    rows = []
    for case_id, passed, error in zip(
        results["case_id"], results["passed"], results["error"], strict=True
    ):
        for tag in tags.get(case_id, ()):
            rows.append({"tag": tag, "passed": _flag(passed), "error": not _missing(error)})
    if not rows:
        empty = pd.DataFrame({"cases": [], "pass rate": [], "errors": []}, dtype=float)
        return empty.rename_axis("tag").astype({"cases": int, "errors": int})
    frame = pd.DataFrame(rows)
    return (
        frame.groupby("tag")
        .agg(cases=("passed", "size"), **{"pass rate": ("passed", "mean")}, errors=("error", "sum"))
        .sort_values("pass rate")
    )


# -- comparisons --------------------------------------------------------------------


def transition_frame(cmp: Comparison) -> pd.DataFrame:
    """Cases per transition, with how many of them are flaky or allowed."""
    rows = []
    for name, count in cmp.counts.items():
        cases = cmp.of(name)
        rows.append(
            {
                "transition": name,
                "cases": count,
                "flaky": sum(c.flaky for c in cases),
                "allowed": sum(c.allowed is not None for c in cases),
                "blocking": sum(c.blocking for c in cases),
            }
        )
    return pd.DataFrame(rows).set_index("transition")


def case_delta_frame(
    cmp: Comparison, transitions: Sequence[str] = ("regression", "new_error"), limit: int = 20
) -> pd.DataFrame:
    """Cases of some transitions with their field diffs next to the expected output."""
    rows = []
    for case in cmp.of(*transitions)[:limit]:
        rows.append(
            {
                "case": case.case_id,
                "transition": case.transition,
                "flaky": case.flaky,
                "allowed": case.allowed or "",
                "what changed": "; ".join(c.describe() for c in case.changes)
                or (f"error: {case.cand_error}" if case.cand_error else ""),
                "expected": _json(case.expected),
                "base output": _shown_output(case.base_output, case.base_error),
                "candidate output": _shown_output(case.cand_output, case.cand_error),
                "tags": ", ".join(case.tags),
            }
        )
    return pd.DataFrame(rows, columns=list(_CASE_DELTA_COLUMNS))


_CASE_DELTA_COLUMNS = (
    "case",
    "transition",
    "flaky",
    "allowed",
    "what changed",
    "expected",
    "base output",
    "candidate output",
    "tags",
)


def field_frame(cmp: Comparison) -> pd.DataFrame:
    """Which output fields changed, in how many cases."""
    total = len(cmp.cases)
    rows = [
        {"field": f, "cases": n, "share": n / total if total else math.nan}
        for f, n in cmp.field_counts()
    ]
    return pd.DataFrame(rows, columns=["field", "cases", "share"])


def field_figure(fields: pd.DataFrame) -> go.Figure:
    """A bar chart of :func:`field_frame`: in how many cases each output field changed."""
    import plotly.express as px

    title = "Cases in which each output field changed"
    return px.bar(fields, x="field", y="cases", title=title, height=320)


def checks_line(result: Result) -> str:
    """How many of a result's checks hold, naming those that broke."""
    checks = result.checks()
    failed = [c.name for c in checks if not c.ok]
    return f"{len(checks) - len(failed)}/{len(checks)} checks ok" + (
        ": broken " + ", ".join(failed) if failed else ""
    )


def delta_frame(cmp: Comparison) -> pd.DataFrame:
    """Paired deltas (candidate - baseline) with 95% bootstrap intervals."""
    s = cmp.stats
    rows = [("pass rate", s["pass_rate"]["delta"]), ("mean score", s["score"])]
    rows += [(f"score: {k}", v) for k, v in s["scorers"].items()]
    rows += [
        ("latency p50 ms", s["latency_p50_ms"]),
        ("latency p95 ms", s["latency_p95_ms"]),
        ("tokens in", s["tokens_in"]),
        ("tokens out", s["tokens_out"]),
        ("cost USD / case", s["cost_usd"]),
    ]
    return _interval_frame(rows, "measure")


def tag_delta_frame(cmp: Comparison) -> pd.DataFrame:
    """Mean score delta per case tag, with intervals, worst first."""
    frame = _interval_frame(list(cmp.stats["tags"].items()), "tag")
    return frame.sort_values("delta", na_position="last") if not frame.empty else frame


def flaky_frame(cmp: Comparison) -> pd.DataFrame:
    """Flaky cases: verdicts that vary across repeats, kept out of the verdict."""
    rows = [
        {
            "case": c.case_id,
            "transition": c.transition,
            "base pass share": c.base_passed,
            "candidate pass share": c.cand_passed,
            "tags": ", ".join(c.tags),
        }
        for c in cmp.cases
        if c.flaky
    ]
    return pd.DataFrame(
        rows, columns=["case", "transition", "base pass share", "candidate pass share", "tags"]
    )


def flakiness_frame(cmp: Comparison) -> pd.DataFrame:
    """Repeats, flaky share, consistency and pass@k per side."""
    rows = []
    for side in ("base", "cand"):
        f = cmp.flakiness[side]
        row: dict[str, Any] = {
            "run": cmp.base["id"] if side == "base" else cmp.cand["id"],
            "repeats": f["repeats"],
            "flaky cases": len(f["flaky_cases"]),
            "consistency": f["consistency"],
        }
        row.update({f"pass@{k}": v for k, v in f["pass_at_k"].items()})
        row.update({f"pass^{k}": v for k, v in f["pass_hat_k"].items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def verdict_text(cmp: Comparison) -> str:
    """The gate's verdict in one paragraph."""
    if cmp.ok:
        return "VERDICT: PASS: no blocking regression and no significant drop in pass rate."
    return "VERDICT: FAIL: " + " ".join(f"({i}) {r}" for i, r in enumerate(cmp.reasons, 1))


def _interval_frame(rows: Sequence[tuple[str, Mapping[str, Any]]], key: str) -> pd.DataFrame:
    out = []
    for name, d in rows:
        low, high = _number(d.get("low")), _number(d.get("high"))
        finite = math.isfinite(low) and math.isfinite(high)
        out.append(
            {
                key: name,
                "delta": _number(d.get("estimate")),
                "95% low": low,
                "95% high": high,
                "n": int(d.get("n") or 0),
                "significant": finite and (low > 0 or high < 0),
            }
        )
    return pd.DataFrame(out, columns=[key, "delta", "95% low", "95% high", "n", "significant"])


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _missing(value: Any) -> bool:
    """None or NaN: what a NULL reads as, depending on the pandas version and the column."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _flag(value: Any) -> bool:
    return False if _missing(value) else bool(value)


def _number(value: Any) -> float:
    return math.nan if _missing(value) else float(value)


def _shown_output(output: Any, error: Any) -> str:
    """An output as a table cell: the error when the call failed, a mark when it was empty."""
    if _missing(output):
        return f"error: {error}" if not _missing(error) else ""
    return str(output) if output != "" else "(empty output)"


class SVG:
    """An SVG document shown inline (as an image in exported HTML)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_svg_(self) -> str:
        return self.text


def pin_frame(results: Sequence[Any]) -> pd.DataFrame:
    """Pinned hot paths: each limit, the figure, and the verdict."""
    rows = [
        {
            "pin": r.pin,
            "metric": r.metric,
            "actual": r.actual,
            "limit": r.limit,
            "verdict": "ok" if r.ok else "BREACHED",
            "detail": r.message,
        }
        for r in results
    ]
    return pd.DataFrame(rows, columns=["pin", "metric", "actual", "limit", "verdict", "detail"])


def load_frame(run: Any) -> pd.DataFrame:
    """Per endpoint of a load run: percentiles, error rate and budget verdicts."""
    rows = []
    for e in run.endpoints:
        rows.append(
            {
                "endpoint": e.endpoint,
                "kind": e.kind,
                "requests": e.requests,
                "error rate": e.error_rate,
                "p50 ms": e.p50_ms,
                "p95 ms": e.p95_ms,
                "p99 ms": e.p99_ms,
                "budgets": "; ".join(b.message for b in e.budgets),
                "verdict": "ok" if e.ok else "BROKEN",
            }
        )
    columns = ["endpoint", "kind", "requests", "error rate", "p50 ms", "p95 ms", "p99 ms"]
    return pd.DataFrame(rows, columns=[*columns, "budgets", "verdict"]).set_index("endpoint")


# -- many-way comparisons -----------------------------------------------------------------


def matrix_cell_frame(m: Matrix) -> pd.DataFrame:
    """One row per cell of a matrix: its target, prompt and run, whether the run was reused,
    and for candidates the gate against the baseline with its regressions and fixes."""
    diffs = m.prompt_diffs()
    rows = []
    for cell in m.cells:
        cmp = m.comparisons.get(cell.label)
        diff = diffs.get(cell.label)
        rows.append(
            {
                "cell": cell.label,
                "target": cell.target,
                "prompt": cell.prompt or "",
                "run": cell.run_id,
                "reused": cell.reused,
                "gate": "baseline" if cmp is None else ("PASS" if cmp.ok else "FAIL"),
                "regressions": "" if cmp is None else len(cmp.of("regression", "new_error")),
                "fixes": "" if cmp is None else len(cmp.of("fix", "error_fixed")),
                "prompt change": "" if diff is None else diff.render_text().splitlines()[0],
            }
        )
    return pd.DataFrame(rows, columns=list(_CELL_COLUMNS)).set_index("cell")


_CELL_COLUMNS = (
    "cell",
    "target",
    "prompt",
    "run",
    "reused",
    "gate",
    "regressions",
    "fixes",
    "prompt change",
)


def matrix_case_frame(
    m: Matrix, transitions: Sequence[str] = ("regression", "new_error"), limit: int = 10
) -> pd.DataFrame:
    """Each candidate cell's cases of some transitions against the baseline, with their field
    diffs next to the expected output: at most ``limit`` per cell (see case_delta_frame)."""
    parts = []
    for label, cmp in m.comparisons.items():
        frame = case_delta_frame(cmp, transitions, limit=limit)
        frame.insert(0, "cell", label)
        parts.append(frame)
    if not parts:
        return pd.DataFrame(columns=["cell", *_CASE_DELTA_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def matrix_heatmap(verdicts: pd.DataFrame) -> go.Figure:
    """A case × cell heatmap of ``Matrix.verdict_frame``: the share of repeats each cell passed
    on each case, in the frame's order (hardest first, at the top), errors grey."""
    import plotly.graph_objects as go

    cases = [str(c) for c in verdicts.index]
    cells = [str(c) for c in verdicts.columns]
    values = verdicts.to_numpy(dtype=float)
    z = [[None if math.isnan(v) else float(v) for v in row] for row in values]
    text = [["error" if v is None else f"{v:.0%} of repeats passed" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=cells,
            y=cases,
            text=text,
            zmin=0,
            zmax=1,
            colorscale=[[0, "#c0392b"], [0.5, "#f1c40f"], [1, "#27ae60"]],
            colorbar={
                "title": {"text": "passed"},
                "tickformat": ".0%",
                "lenmode": "pixels",
                "len": 240,
                "yanchor": "top",
                "y": 1,
            },
            xgap=2,
            ygap=1,
            hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", side="top", showgrid=False)
    # One row per case, a case id per row up to a few hundred; beyond that, hover for the id.
    fig.update_yaxes(
        type="category",
        autorange="reversed",
        showgrid=False,
        tickfont={"size": 9},
        showticklabels=len(cases) <= _HEATMAP_LABELLED,
    )
    fig.update_layout(
        title=f"Verdicts of {len(cases)} cases, hardest first (grey: an error or no result)",
        height=min(max(320, _HEATMAP_ROW_PX * len(cases) + 160), _HEATMAP_MAX_PX),
        plot_bgcolor="#b0b0b0",
        margin={"t": 90, "b": 20, "l": 90, "r": 20},
    )
    return fig


_HEATMAP_ROW_PX = 13
_HEATMAP_MAX_PX = 8000
_HEATMAP_LABELLED = 600


def pareto_figure(m: Matrix) -> go.Figure:
    """Each cell's pass rate against its cost per case, sized by p95 latency and labelled;
    the cells on the Pareto front in colour, the dominated ones grey. The front is over
    quality, cost and latency at once, so a front cell may look beaten on these two axes
    alone (it is then faster). An unknown cost is plotted at 0."""
    import plotly.graph_objects as go

    rows = m.leaderboard()
    cost = [_number(r["cost_usd"]) / r["results"] if r["results"] else math.nan for r in rows]
    p95 = [_number(r["p95_latency_ms"]) for r in rows]
    known = [v for v in p95 if math.isfinite(v)]
    low, high = (min(known), max(known)) if known else (0.0, 0.0)
    size = [
        16.0 if not math.isfinite(v) or high == low else 12 + 28 * (v - low) / (high - low)
        for v in p95
    ]
    fig = go.Figure()
    for on_front in (True, False):
        idx = [i for i, r in enumerate(rows) if r["pareto"] is on_front]
        if not idx:
            continue
        fig.add_trace(
            go.Scatter(
                x=[0.0 if math.isnan(cost[i]) else cost[i] for i in idx],
                y=[_plotted(rows[i]["pass_rate"]) for i in idx],
                mode="markers+text",
                text=[rows[i]["cell"] for i in idx],
                textposition="top center",
                marker={
                    "size": [size[i] for i in idx],
                    "color": "#2c7fb8" if on_front else "#b8c0c8",
                    "line": {"width": 2 if on_front else 1, "color": "#1b3a5c"},
                },
                customdata=[
                    [
                        "n/a" if math.isnan(cost[i]) else f"${cost[i]:.6g}",
                        "n/a" if not math.isfinite(p95[i]) else f"{p95[i]:,.0f} ms",
                    ]
                    for i in idx
                ],
                hovertemplate="%{text}<br>pass rate %{y:.1%}<br>cost per case %{customdata[0]}"
                "<br>p95 latency %{customdata[1]}<extra></extra>",
                name="on the Pareto front" if on_front else "dominated",
                cliponaxis=False,
            )
        )
    unknown = sum(math.isnan(c) for c in cost)
    fig.update_layout(
        title="Pass rate against cost per case (marker size: p95 latency)"
        + (f"; {unknown} cell(s) of unknown cost at 0" if unknown else ""),
        xaxis={"title": "cost per case (USD)", "tickformat": "$.2g", "zeroline": False},
        yaxis={"title": "pass rate", "tickformat": ".1%"},
        height=460,
        margin={"t": 70, "b": 50, "l": 70, "r": 30},
    )
    return fig


def _plotted(value: Any) -> float | None:
    """A figure for a chart: None (a gap) for a missing one, never NaN (not valid JSON)."""
    return None if _missing(value) else float(value)


# -- judges -------------------------------------------------------------------------------


def agreement_frame(cal: Calibration) -> pd.DataFrame:
    """The calibration's figures: kappa with its interval, agreement, the judge's fail
    verdicts' precision and recall, flips between repeats, labels and labellers."""
    fail = cal.fail
    rows = [
        ("kappa", cal.kappa.estimate, cal.kappa.low, cal.kappa.high, cal.kappa_kind),
        (
            "kappa on pass/fail",
            cal.verdict_kappa.estimate,
            cal.verdict_kappa.low,
            cal.verdict_kappa.high,
            "Cohen's",
        ),
        ("agreement on pass/fail", cal.agreement, None, None, f"{cal.n_labels} labels"),
        ("fail precision", fail.precision, None, None, f"{fail.tp} of {fail.tp + fail.fp}"),
        ("fail recall", fail.recall, None, None, f"{fail.tp} of {fail.tp + fail.fn}"),
        (
            "verdicts changed between repeats",
            cal.flip_share,
            None,
            None,
            f"{cal.repeats} repeat(s)" if cal.repeats > 1 else "run with repeats to measure",
        ),
        (
            "labellers agree (pass/fail kappa)",
            cal.labeller_kappa,
            None,
            None,
            "outputs labelled twice",
        ),
    ]
    return pd.DataFrame(
        [
            {
                "figure": name,
                "value": _number(value),
                "95% low": _number(low),
                "95% high": _number(high),
                "about": about,
            }
            for name, value, low, high, about in rows
        ]
    ).set_index("figure")


def disagreement_frame(cal: Calibration, *, limit: int | None = None) -> pd.DataFrame:
    """The labelled outputs where judge and people disagree on pass/fail, worst first."""
    items = cal.disagreements.copy()
    items["gap"] = (items["human_value"] - items["judge_value"]).abs()
    items = items.sort_values(["gap", "case"], ascending=[False, True])
    columns = ["case", "labeller", "human", "judge", "judge_reason", "note", "output"]
    frame = items[columns].rename(
        columns={"human": "people", "judge_reason": "judge's reason", "note": "people's note"}
    )
    return (frame if limit is None else frame.head(limit)).set_index("case")


def judge_cost_frame(*results: Calibration | Pairwise | RunSummary) -> pd.DataFrame:
    """What judging cost: calls, cached answers, tokens, latency and money, per result."""
    rows = []
    for r in results:
        usage = getattr(r, "usage", None) or getattr(r, "judge", None)
        if usage is None or isinstance(usage, str):
            continue
        rows.append(
            {
                "what": type(r).__name__.lower(),
                "judge calls": usage.calls,
                "cached": usage.cached,
                "tokens in": usage.tokens_in,
                "tokens out": usage.tokens_out,
                "latency s": round(usage.latency_ms / 1000, 2),
                "cost USD": _number(usage.cost_usd),
            }
        )
    return pd.DataFrame(rows)


def judge_frame(summary: RunSummary) -> pd.DataFrame:
    """Each judge scorer of a judged run: its pass share and mean next to its calibration."""
    from workbench.runner import calibration_text

    if summary.judge is None:
        return pd.DataFrame(columns=["scorer", "mean score", "calibration"])
    return pd.DataFrame(
        [
            {
                "scorer": label,
                "mean score": _number(summary.scorer_means.get(label)),
                "calibration": calibration_text(cal),
            }
            for label, cal in summary.judge.calibrations.items()
        ]
    ).set_index("scorer")


def pairwise_frame(p: Pairwise) -> pd.DataFrame:
    """Pairwise figures: win rate with its interval, wins, ties, sign test, consistency."""
    iv, c = p.win_rate, p.counts
    return pd.DataFrame(
        [
            {
                "figure": "candidate win rate",
                "value": iv.estimate,
                "95% low": iv.low,
                "95% high": iv.high,
            },
            {"figure": "candidate wins", "value": c["cand_wins"]},
            {"figure": "baseline wins", "value": c["base_wins"]},
            {"figure": "ties", "value": c["ties"]},
            {"figure": "sign test p", "value": p.sign_p},
            {"figure": "position consistency", "value": _number(p.position_consistency)},
        ]
    ).set_index("figure")


def pairwise_case_frame(p: Pairwise, *, limit: int | None = 20) -> pd.DataFrame:
    """The cases the judge decided or found position-inconsistent (not identical outputs)."""
    names = {"A": "baseline", "B": "candidate", "tie": "tie", None: ""}
    rows = [
        {
            "case": c.case_id,
            "winner": names[c.outcome],
            "how": c.how,
            "baseline first": names[c.base_first],
            "candidate first": names[c.cand_first],
            "reason": c.reason,
        }
        for c in p.cases
        if c.how != "identical"
    ]
    frame = pd.DataFrame(
        rows, columns=["case", "winner", "how", "baseline first", "candidate first", "reason"]
    )
    return (frame if limit is None else frame.head(limit)).set_index("case")


# -- tool calls ---------------------------------------------------------------------------


def tool_call_frame(
    store: Store, run_id: str, tools: Sequence[Mapping[str, Any]] | None = None
) -> pd.DataFrame:
    """Per tool the run's model called: calls, cases, arguments that are not JSON or break
    the offered tool's schema, and the pass rate of the cases that called it."""
    import jsonschema

    schemas = {
        (t.get("function") or {}).get("name"): (t.get("function") or {}).get("parameters")
        for t in tools or ()
    }
    validators = {
        name: jsonschema.Draft202012Validator(schema)
        for name, schema in schemas.items()
        if schema is not None
    }
    rows: dict[str, dict[str, Any]] = {}
    for r in store.result_rows(run_id):
        calls = json.loads(r["tool_calls"]) if r.get("tool_calls") else []
        for name in dict.fromkeys(str(c.get("name")) for c in calls):
            rows.setdefault(
                name, {"calls": 0, "cases": 0, "not JSON": 0, "schema broken": 0, "passed": 0}
            )
            rows[name]["cases"] += 1
            rows[name]["passed"] += bool(r["passed"])
        for c in calls:
            row = rows[str(c.get("name"))]
            row["calls"] += 1
            if "parsed" not in c:
                row["not JSON"] += 1
            elif c.get("name") in validators:
                row["schema broken"] += not validators[c["name"]].is_valid(c["parsed"])
    columns = ["tool", "offered", "calls", "cases", "not JSON", "schema broken", "case pass rate"]
    out = [
        {
            "tool": name,
            "offered": name in schemas if schemas else None,
            **{k: v for k, v in row.items() if k != "passed"},
            "case pass rate": row["passed"] / row["cases"] if row["cases"] else math.nan,
        }
        for name, row in sorted(rows.items())
    ]
    return pd.DataFrame(out, columns=columns).set_index("tool")


def tool_failure_frame(store: Store, run_id: str, *, limit: int = 20) -> pd.DataFrame:
    """The tool scorers' failures: case, scorer and the reason (JSON paths for contracts)."""
    frame = store.scores_frame(run_id)
    bad = frame[
        frame["scorer"].str.startswith(("tool_", "no_tool_call")) & ~frame["passed"].astype(bool)
    ]
    return bad[["case_id", "scorer", "score", "detail"]].head(limit).set_index("case_id")
