"""Tables and charts that notebooks show: thin, tested views over the store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.store import Store

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.runner import RunSummary

PERCENTILES = (50, 90, 95, 99)


def setup_notebook() -> None:
    """Display defaults for notebooks: offline plotly (JS inline once) and wide tables."""
    import plotly.io as pio

    # The mimetype renders in JupyterLab; the "notebook" part embeds plotly.js in the
    # output once, so exported HTML reports draw charts with no network.
    pio.renderers.default = "plotly_mimetype+notebook"
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.max_rows", 200)


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
                "tokens out": s.tokens_out,
                "cost USD": s.cost_usd,
                "budgets": "ok" if s.budget_ok else "BROKEN",
            }
        )
    return pd.DataFrame(rows).set_index("run")


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
                "detail": b.describe(),
            }
            for b in summary.budgets
        ]
    ).set_index("budget")


def failures_frame(
    store: Store, run_id: str, *, expected: dict[str, Any] | None = None, limit: int = 20
) -> pd.DataFrame:
    """Failed and errored results with expected vs actual and the scorers that failed."""
    rows = store.db.query(
        """
        SELECT r.case_id, r.repeat, r.output, r.error, r.score,
               group_concat(CASE WHEN s.passed = 0 THEN s.scorer || ': ' || coalesce(s.detail, '') END, '; ')
                   AS failed_scorers
        FROM results r LEFT JOIN scores s
          ON s.run_id = r.run_id AND s.case_id = r.case_id AND s.repeat = r.repeat
        WHERE r.run_id = ? AND r.passed = 0
        GROUP BY r.case_id, r.repeat
        ORDER BY r.error IS NOT NULL, r.score, r.case_id
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
                "actual": r["output"] if r["output"] is not None else f"error: {r['error']}",
                "why": r["error"] or r["failed_scorers"] or "",
            }
        )
    return pd.DataFrame(out, columns=["case", "repeat", "score", "expected", "actual", "why"])


def scorer_frame(store: Store, run_id: str) -> pd.DataFrame:
    """Per scorer: mean score, pass share and how many results it judged."""
    return pd.read_sql_query(
        "SELECT scorer, AVG(score) AS mean_score, AVG(passed) AS pass_share, COUNT(*) AS results "
        "FROM scores WHERE run_id = ? GROUP BY scorer ORDER BY scorer",
        store.conn,
        params=(run_id,),
    ).set_index("scorer")


def latency_frame(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Latency and time-to-first-token percentiles per run (errors excluded)."""
    rows = []
    for run_id in run_ids:
        frame = pd.read_sql_query(
            "SELECT latency_ms, ttft_ms FROM results WHERE run_id = ? AND error IS NULL",
            store.conn,
            params=(run_id,),
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
    return pd.DataFrame(rows)


def score_histogram(
    store: Store, run_ids: Sequence[str], labels: Sequence[str] | None = None
) -> go.Figure:
    """Distribution of case scores per run, overlaid."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, run_id in enumerate(run_ids):
        scores = [
            r["score"]
            for r in store.db.query(
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
    return fig


def tag_frame(store: Store, run_id: str, tags: dict[str, Sequence[str]]) -> pd.DataFrame:
    """Pass rate per case tag."""
    results = store.results_frame(run_id)
    rows = []
    for _, r in results.iterrows():
        for tag in tags.get(r["case_id"], ()):
            rows.append({"tag": tag, "passed": bool(r["passed"]), "error": r["error"] is not None})
    if not rows:
        return pd.DataFrame(columns=["cases", "pass rate", "errors"])
    frame = pd.DataFrame(rows)
    return (
        frame.groupby("tag")
        .agg(cases=("passed", "size"), **{"pass rate": ("passed", "mean")}, errors=("error", "sum"))
        .sort_values("pass rate")
    )
