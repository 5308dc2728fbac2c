"""The notebook views on awkward runs: errors, plain text, empty outputs, missing figures."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.conftest import write_dataset
from tests.messy_app import BEHAVIOUR, CORRECT
from workbench import Dataset, EvalOptions, RunSummary, load_dataset, run_eval, summarize, views
from workbench.compare import Comparison, compare
from workbench.matrix import Matrix, matrix_of
from workbench.store import ResultRow, Store

MESSY = "python:tests.messy_app:answer"
N = len(BEHAVIOUR)  # ten cases, c000 to c009: one of each behaviour
ERRORS = BEHAVIOUR.count("raise")
PASSED = sum(BEHAVIOUR.count(k) for k in CORRECT)


def _cases() -> list[dict[str, object]]:
    # Two tags, so the by-tag views have groups of different make-up.
    return [
        {
            "id": f"c{i:03d}",
            "input": {"question": f"word{i}"},
            "expected": {"answer": f"word{i}"},
            "tags": ["all", "even" if i % 2 == 0 else "odd"],
        }
        for i in range(N)
    ]


@pytest.fixture
def ds(tmp_path: Path) -> Dataset:
    return load_dataset(str(write_dataset(tmp_path / "tiny", _cases())))


def _eval(ds: Dataset, target: str, store: Store) -> RunSummary:
    return run_eval(ds, target, store=store, options=EvalOptions(concurrency=4))


@pytest.fixture
def messy(ds: Dataset, store: Store) -> RunSummary:
    return _eval(ds, MESSY, store)


@pytest.fixture
def all_errors(ds: Dataset, store: Store) -> RunSummary:
    return _eval(ds, "python:tests.echo_app:explode", store)


@pytest.fixture
def empty_run(ds: Dataset, store: Store) -> RunSummary:
    """A run that recorded nothing at all (it died before its first result)."""
    run_id = store.create_run(dataset=ds.name, dataset_hash=ds.hash, target=MESSY, repeats=1)
    store.finish_run(run_id, "failed", reason="killed")
    return summarize(store, run_id, ds)


def _tags(ds: Dataset) -> dict[str, tuple[str, ...]]:
    return {c.id: c.tags for c in ds.cases}


def test_the_messy_app_has_every_kind_of_answer(messy: RunSummary, store: Store) -> None:
    frame = store.results_frame(messy.run_id)
    assert (messy.results, messy.errors, messy.passed) == (N, ERRORS, PASSED) == (10, 2, 4)
    assert frame["error"].notna().sum() == 2
    assert (frame["output"] == "").sum() == 1
    assert frame["parsed"].isna().sum() == 5  # two errors, two plain texts, one empty
    assert frame["tokens_in"].isna().sum() == 9  # only the usage_response reports tokens


# -- one run -------------------------------------------------------------------------


def test_summary_frame(messy: RunSummary, all_errors: RunSummary, empty_run: RunSummary) -> None:
    frame = views.summary_frame([messy, all_errors, empty_run])
    assert list(frame.index) == [messy.run_id, all_errors.run_id, empty_run.run_id]
    assert list(frame["results"]) == ["10/10", "10/10", "0/10"]
    assert list(frame["errors"]) == [2, 10, 0]
    assert frame.loc[messy.run_id, "pass rate"] == pytest.approx(0.4)
    assert frame.loc[all_errors.run_id, "pass rate"] == 0.0
    assert pd.isna(frame.loc[all_errors.run_id, "p95 ms"])
    assert pd.isna(frame.loc[empty_run.run_id, "pass rate"])
    assert list(frame.loc[messy.run_id, ["tokens in", "tokens out"]]) == [12, 4]


def test_summary_frame_of_no_runs_keeps_its_columns() -> None:
    frame = views.summary_frame([])
    assert frame.empty and frame.index.name == "run"
    assert {"pass rate", "errors", "p95 ms", "budgets"} <= set(frame.columns)


def test_budget_frame(messy: RunSummary, all_errors: RunSummary, empty_run: RunSummary) -> None:
    frame = views.budget_frame(messy)
    assert frame.loc["error_rate", "verdict"] == "BROKEN"
    assert frame.loc["error_rate", "actual"] == pytest.approx(0.2)
    assert frame.loc["pass_rate", "verdict"] == "BROKEN"  # 40% < the card's 50%
    errors = views.budget_frame(all_errors)
    assert pd.isna(errors.loc["p95_latency_ms", "actual"])
    assert "n/a" in errors.loc["p95_latency_ms", "detail"]
    assert views.budget_frame(empty_run).loc["pass_rate", "detail"].startswith("pass_rate n/a")
    none = views.budget_frame(replace(messy, budgets=[]))
    assert none.empty and none.index.name == "budget" and "verdict" in none.columns


def test_failures_frame(messy: RunSummary, store: Store, ds: Dataset) -> None:
    expected = {c.id: c.expected for c in ds.cases}
    frame = views.failures_frame(store, messy.run_id, expected=expected)
    by_case = frame.set_index("case")
    assert list(frame["case"]) == ["c001", "c002", "c008", "c006", "c000", "c005"]  # errors last
    assert by_case.loc["c002", "actual"] == "(empty output)"
    assert by_case.loc["c001", "actual"].startswith("I think this is about word1")
    assert by_case.loc["c000", "actual"].startswith("error: ") and "RuntimeError" in str(
        by_case.loc["c000", "why"]
    )
    assert by_case.loc["c006", "expected"] == '{"answer": "word6"}'
    assert "not JSON" in by_case.loc["c008", "why"]
    assert frame["score"].dtype == float and frame["score"].isna().sum() == 2
    assert len(views.failures_frame(store, messy.run_id, limit=3)) == 3


def test_failures_frame_without_failures(empty_run: RunSummary, store: Store) -> None:
    frame = views.failures_frame(store, empty_run.run_id)
    assert frame.empty and list(frame.columns) == [
        "case",
        "repeat",
        "score",
        "expected",
        "actual",
        "why",
    ]


def test_scorer_frame(messy: RunSummary, all_errors: RunSummary, store: Store) -> None:
    frame = views.scorer_frame(store, messy.run_id)
    assert list(frame.index) == ["json_fields", "json_schema"]
    assert list(frame["results"]) == [8, 8]  # errored results have no scores
    # json_schema passes the four right answers and the wrong one; json_fields the four.
    assert frame.loc["json_schema", "pass_share"] == pytest.approx(5 / 8)
    assert frame.loc["json_fields", "pass_share"] == pytest.approx(4 / 8)
    none = views.scorer_frame(store, all_errors.run_id)
    assert none.empty and "mean_score" in none.columns


def test_latency_frame(messy: RunSummary, all_errors: RunSummary, store: Store) -> None:
    frame = views.latency_frame(store, [messy.run_id, all_errors.run_id])
    # Errors are left out; no ttft row, since the python target does not stream.
    assert list(frame["measure"]) == ["latency_ms"]
    assert frame.loc[0, "n"] == 8 and frame.loc[0, "p50"] <= frame.loc[0, "max"]
    none = views.latency_frame(store, [all_errors.run_id])
    assert none.empty and {"run", "measure", "n", "p95", "max"} <= set(none.columns)
    assert none.round(1).empty  # what the notebook does with it


def test_latency_frame_skips_missing_figures(store: Store) -> None:
    run_id = store.create_run(dataset="d", dataset_hash="h", target="t")
    for i, latency in enumerate([None, 12.0, None, 30.0]):
        store.record_result(
            ResultRow(run_id, f"c{i}", 0, output="x", passed=True, latency_ms=latency)
        )
    frame = views.latency_frame(store, [run_id])
    assert list(frame["measure"]) == ["latency_ms"]
    assert frame.loc[0, "n"] == 2 and frame.loc[0, "max"] == 30.0
    assert frame.loc[0, "p50"] == pytest.approx(21.0)


def test_score_histogram(messy: RunSummary, all_errors: RunSummary, store: Store) -> None:
    chart = views.score_histogram(store, [messy.run_id, all_errors.run_id], labels=["m", "e"])
    messy_trace, errors_trace = chart.fig.data
    assert (messy_trace.name, errors_trace.name) == ("m", "e")
    assert len(messy_trace.x) == 8 and not errors_trace.x
    assert "text/html" in chart._repr_mimebundle_()


def test_tag_frame(messy: RunSummary, store: Store, ds: Dataset) -> None:
    frame = views.tag_frame(store, messy.run_id, _tags(ds))
    assert frame.loc["all"].to_dict() == {"cases": 10, "pass rate": 0.4, "errors": 2}
    # Even ids: raise, empty, bare_response, wrong, text; odd: text, json, raise, json, usage.
    assert frame.loc["even"].to_dict() == {"cases": 5, "pass rate": 0.2, "errors": 1}
    assert frame.loc["odd"].to_dict() == {"cases": 5, "pass rate": 0.6, "errors": 1}
    assert list(frame.index) == ["even", "all", "odd"]  # worst first


def test_tag_frame_when_everything_errored(
    all_errors: RunSummary, store: Store, ds: Dataset
) -> None:
    frame = views.tag_frame(store, all_errors.run_id, _tags(ds))
    assert frame.loc["all"].to_dict() == {"cases": 10, "pass rate": 0.0, "errors": 10}


def test_tag_frame_without_tags_or_results(
    messy: RunSummary, empty_run: RunSummary, store: Store, ds: Dataset
) -> None:
    for frame in (
        views.tag_frame(store, messy.run_id, {}),
        views.tag_frame(store, empty_run.run_id, _tags(ds)),
    ):
        assert frame.empty and list(frame.columns) == ["cases", "pass rate", "errors"]
        assert frame.index.name == "tag" and frame.round(3).empty


# -- two runs ------------------------------------------------------------------------


@pytest.fixture
def cmp(ds: Dataset, store: Store, messy: RunSummary) -> Comparison:
    """The echo app (right except on c003) as baseline, the messy app as candidate."""
    base = _eval(ds, "python:tests.echo_app:answer", store)
    return compare(store, base.run_id, messy.run_id, dataset=ds)


def test_transition_frame(cmp: Comparison) -> None:
    frame = views.transition_frame(cmp)
    counts = {k: v for k, v in frame["cases"].items() if v}
    assert counts == {"regression": 4, "fix": 1, "new_error": 2, "unchanged_pass": 3}
    assert frame.loc["new_error", "blocking"] == 2 and frame["flaky"].sum() == 0


def test_case_delta_frame(cmp: Comparison) -> None:
    frame = views.case_delta_frame(cmp).set_index("case")
    assert sorted(frame.index) == ["c000", "c001", "c002", "c005", "c006", "c008"]
    assert frame.loc["c002", "candidate output"] == "(empty output)"
    assert frame.loc["c002", "base output"] == '{"answer": "word2"}'
    assert frame.loc["c000", "candidate output"].startswith("error: ")
    assert frame.loc["c000", "what changed"].startswith("error: ")
    assert "I think" in frame.loc["c001", "what changed"]
    assert frame.loc["c006", "what changed"] == "answer: [-word6-] {+something else+}"
    assert frame.loc["c001", "tags"] == "all, odd"
    fixes = views.case_delta_frame(cmp, ("fix", "error_fixed"))
    assert list(fixes["case"]) == ["c003"]
    assert views.case_delta_frame(cmp, ("still_error",)).empty


def test_field_frame(cmp: Comparison) -> None:
    frame = views.field_frame(cmp).set_index("field")
    # The three plain-text and empty outputs change as a whole, the wrong answer and the fix by field.
    assert frame["cases"].to_dict() == {"output": 3, "answer": 2}
    assert frame.loc["output", "share"] == pytest.approx(0.3)


def test_delta_frame(cmp: Comparison) -> None:
    frame = views.delta_frame(cmp).set_index("measure")
    assert frame.loc["pass rate", "delta"] == pytest.approx(0.4 - 0.9)
    assert frame.loc["pass rate", "n"] == 10
    assert frame.loc["latency p50 ms", "n"] == 8  # pairs with an error on either side drop out
    assert frame.loc["tokens in", "n"] == 0  # neither app reports tokens on every case
    assert math.isnan(frame.loc["tokens in", "delta"]) and not frame.loc["tokens in", "significant"]
    assert math.isnan(frame.loc["cost USD / case", "95% low"])
    assert {"score: json_schema", "score: json_fields"} <= set(frame.index)
    assert frame.round(4).shape == frame.shape


def test_tag_delta_frame(cmp: Comparison) -> None:
    frame = views.tag_delta_frame(cmp)
    assert set(frame["tag"]) == {"all", "even", "odd"}
    assert list(frame["delta"]) == sorted(frame["delta"])
    assert frame.set_index("tag").loc["all", "n"] == 8


def test_flaky_views_without_repeats(cmp: Comparison) -> None:
    assert views.flaky_frame(cmp).empty
    frame = views.flakiness_frame(cmp)
    assert list(frame["repeats"]) == [1, 1] and list(frame["flaky cases"]) == [0, 0]
    assert list(frame["pass@1"]) == pytest.approx([0.9, 0.4])


def test_verdict_text(cmp: Comparison) -> None:
    text = views.verdict_text(cmp)
    assert text.startswith("VERDICT: FAIL: (1) 6 regression(s)")
    assert "c000" in text and "c003" not in text


def test_comparison_views_when_no_result_pairs_up(store: Store) -> None:
    """Shared cases but no shared repeat: every paired figure is missing, nothing crashes."""
    base = store.create_run(dataset="d", dataset_hash="h", target="a")
    cand = store.create_run(dataset="d", dataset_hash="h", target="b")
    for i in range(10):
        store.record_result(ResultRow(base, f"c{i}", 0, output="yes", passed=True, score=1.0))
        store.record_result(ResultRow(cand, f"c{i}", 1, output="", passed=False, score=0.0))
    cmp = compare(store, base, cand)
    deltas = views.delta_frame(cmp)
    assert deltas["n"].eq(0).all() and deltas["delta"].isna().all()
    assert not deltas["significant"].any()
    assert "pass rate fell from n/a to n/a" in views.verdict_text(cmp)
    assert views.tag_delta_frame(cmp).empty
    assert set(views.case_delta_frame(cmp)["candidate output"]) == {"(empty output)"}


# -- a matrix of runs --------------------------------------------------------------------


@pytest.fixture
def grid(ds: Dataset, store: Store, messy: RunSummary, all_errors: RunSummary) -> Matrix:
    """The echo app as baseline, then the messy app, then a target that errors on every case."""
    base = _eval(ds, "python:tests.echo_app:answer", store)
    return matrix_of(store, [base.run_id, messy.run_id, all_errors.run_id], dataset=ds)


def test_matrix_cell_frame(grid: Matrix) -> None:
    frame = views.matrix_cell_frame(grid)
    assert list(frame.index) == [c.label for c in grid.cells]
    assert list(frame["gate"]) == ["baseline", "FAIL", "FAIL"]
    # regressions and new errors, as the leaderboard counts them; none for the baseline
    assert frame["regressions"].tolist() == ["", 6, N]
    assert frame["fixes"].tolist() == ["", 1, 0]
    assert frame["reused"].all()  # stored runs
    assert frame["prompt change"].iloc[0] == ""
    assert all(p.startswith("prompt: unchanged") for p in frame["prompt change"].iloc[1:])


def test_matrix_case_frame(grid: Matrix) -> None:
    frame = views.matrix_case_frame(grid, limit=3)
    labels = [c.label for c in grid.cells]
    assert list(frame["cell"]) == [labels[1]] * 3 + [labels[2]] * 3  # at most 3 per cell
    assert set(frame["transition"]) == {"regression", "new_error"}
    everything = views.matrix_case_frame(grid, limit=100)
    assert (everything["cell"] == labels[2]).sum() == N
    messy = everything[everything["cell"] == labels[1]].set_index("case")
    assert messy.loc["c006", "what changed"] == "answer: [-word6-] {+something else+}"
    fixes = views.matrix_case_frame(grid, ("fix", "error_fixed"))
    assert list(fixes["case"]) == ["c003"]


def test_matrix_case_frame_without_candidates_or_regressions(ds: Dataset, store: Store) -> None:
    runs = [_eval(ds, "python:tests.echo_app:answer", store).run_id for _ in range(2)]
    same = matrix_of(store, runs, dataset=ds)
    frame = views.matrix_case_frame(same)
    assert frame.empty and list(frame.columns)[:3] == ["cell", "case", "transition"]
    alone = replace(same, cells=same.cells[:1], comparisons={})
    assert list(views.matrix_case_frame(alone).columns) == list(frame.columns)


def test_matrix_heatmap_keeps_the_hardest_first_and_errors_as_gaps(
    grid: Matrix, store: Store
) -> None:
    verdicts = grid.verdict_frame(store)
    (trace,) = views.matrix_heatmap(verdicts).data
    assert list(trace.y) == list(verdicts.index)  # the frame's order: hardest first
    means = verdicts.mean(axis=1).tolist()
    assert means == sorted(means) and means[0] < means[-1]
    assert list(trace.x) == [c.label for c in grid.cells]
    assert all(row[2] is None for row in trace.z)  # every call of the third cell failed
    assert all(text[2] == "error" for text in trace.text)
    json.dumps(trace.to_plotly_json(), allow_nan=False)  # gaps are null, not NaN
    c003 = list(trace.y).index("c003")  # the echo app's one miss
    assert trace.z[c003][0] == 0.0 and trace.text[c003][0] == "0% of repeats passed"
    fig = views.matrix_heatmap(verdicts)
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.showticklabels
    tall = views.matrix_heatmap(
        pd.DataFrame({"a": [1.0] * 2000}, index=[f"c{i}" for i in range(2000)])
    )
    assert tall.layout.height <= 8000 and not tall.layout.yaxis.showticklabels


def test_pareto_figure_marks_the_front_and_plots_unknown_costs_at_zero(grid: Matrix) -> None:
    fig = views.pareto_figure(grid)
    front = {trace.name: trace for trace in fig.data}["on the Pareto front"]
    assert set(front.text) == set(grid.pareto) and grid.cells[0].label in front.text
    points = {
        t: (x, y)
        for trace in fig.data
        for t, x, y in zip(trace.text, trace.x, trace.y, strict=True)
    }
    assert points[grid.cells[0].label] == (0.0, pytest.approx(0.9))  # python targets have no price
    assert points[grid.cells[2].label] == (0.0, 0.0)
    assert "3 cell(s) of unknown cost at 0" in fig.layout.title.text
    sizes = [s for trace in fig.data for s in trace.marker.size]
    assert all(12 <= s <= 40 for s in sizes)
    json.dumps(fig.to_plotly_json()["data"], allow_nan=False)  # no NaN: the notebook's JSON


# -- profiles and load runs ------------------------------------------------------------


def test_pin_and_load_frames_when_empty() -> None:
    pins = views.pin_frame([])
    assert pins.empty and "verdict" in pins.columns
    load = views.load_frame(SimpleNamespace(endpoints=[]))
    assert load.empty and load.index.name == "endpoint" and "p95 ms" in load.columns
