"""golden_eval, model_delta and matrix run to the end on awkward runs, and record the right numbers.

Each test executes a notebook for real with papermill on a tiny dataset, over runs whose
target raises on some cases, answers plain text or an empty string on others, and leaves
tokens and latency unset (tests/messy_app.py), or errors on every case; then it reads back
the headline numbers the notebook recorded with record_summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.conftest import GOLDEN, ROOT, TINY_CARD, tiny_cases, write_dataset
from tests.messy_app import BEHAVIOUR, CORRECT
from workbench import EvalOptions, publish, run_eval
from workbench.compare import compare
from workbench.store import Store

MESSY = "python:tests.messy_app:answer"
EXPLODE = "python:tests.echo_app:explode"
ECHO = "python:tests.echo_app:answer"  # right on every tiny case but c003
N = len(BEHAVIOUR)  # ten tiny cases, one of each behaviour
MESSY_ERRORS = BEHAVIOUR.count("raise")
MESSY_PASSED = sum(BEHAVIOUR.count(k) for k in CORRECT)
NO_SCORERS = {**TINY_CARD, "name": "tiny-unscored", "scorers": []}


@pytest.fixture(autouse=True)
def _kernel_imports_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook kernels run in notebooks/ and must import tests.messy_app."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def _execute(name: str, tmp_path: Path, parameters: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Run a notebook with papermill; its executed cells and its recorded summary."""
    summary_path = tmp_path / f"{name}.summary.json"
    output = tmp_path / f"{name}.ipynb"
    error = publish.execute(
        name, output, {**parameters, "summary_path": str(summary_path)}, timeout_s=120
    )
    assert error is None, error
    nb = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
    return nb, json.loads(summary_path.read_text())


def _last_line(nb: Any) -> str:
    """What the notebook's last cell printed."""
    (out,) = nb.cells[-1].outputs
    return str(out.text).strip()


# -- golden_eval ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "card", "errors", "pass_rate"),
    [
        pytest.param(MESSY, TINY_CARD, MESSY_ERRORS, MESSY_PASSED / N, id="messy"),
        pytest.param(EXPLODE, TINY_CARD, N, 0.0, id="every-case-errors"),
        # Without scorers every answer that arrived passes, plain text and "" included.
        pytest.param(MESSY, NO_SCORERS, MESSY_ERRORS, (N - MESSY_ERRORS) / N, id="no-scores"),
    ],
)
def test_golden_eval_records_the_headline_of_an_awkward_run(
    tmp_path: Path, target: str, card: dict[str, Any], errors: int, pass_rate: float
) -> None:
    dataset = write_dataset(tmp_path / "tiny", tiny_cases(N), card)
    db = tmp_path / "workbench.db"
    nb, summary = _execute(
        "golden_eval", tmp_path, {"dataset": str(dataset), "model": target, "db": str(db)}
    )
    headline = summary["headline"]
    assert (headline["results"], headline["errors"]) == (N, errors)
    assert headline["pass_rate"] == pytest.approx(pass_rate)
    assert headline["cost_usd"] is None  # a python: target has no price
    if errors == N:
        assert headline["p95_latency_ms"] is None
    else:
        assert headline["p95_latency_ms"] > 0
    budgets = {b["name"]: b["ok"] for b in summary["budgets"]}
    assert budgets["error_rate"] is False  # every run here errors on more than 0.5%
    assert _last_line(nb) == f"{N} results, {errors} errors, pass rate {pass_rate:.1%}"
    (run_id,) = summary["runs"]
    with Store(db) as store:
        assert store.get_run(run_id)["status"] == "finished"
        assert len(store.result_rows(run_id)) == N


def test_golden_eval_tag_table_counts_errors_not_missing_values(tmp_path: Path) -> None:
    """The table that crashed: pass rate and errors by tag, from Store.results_frame."""
    dataset = write_dataset(tmp_path / "tiny", tiny_cases(N))
    nb, _ = _execute(
        "golden_eval",
        tmp_path,
        {"dataset": str(dataset), "model": MESSY, "db": str(tmp_path / "w.db")},
    )
    (cell,) = [c for c in nb.cells if "views.tag_frame" in c.source]
    (out,) = cell.outputs
    last = out.data["text/plain"].splitlines()[-1].split()
    assert last == ["t", str(N), f"{MESSY_PASSED / N:g}", str(MESSY_ERRORS)]


# -- model_delta ------------------------------------------------------------------------


def _triage_subset(folder: Path, n: int = 12) -> Path:
    """The first n support-triage cases under the real card (so its name finds the tags)."""
    source = GOLDEN / "support-triage"
    folder.mkdir(parents=True)
    (folder / "dataset.yaml").write_text((source / "dataset.yaml").read_text(encoding="utf-8"))
    lines = (source / "cases.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "cases.jsonl").write_text("".join(lines[:n]), encoding="utf-8")
    return folder


def test_model_delta_on_a_faulty_demo_run_against_a_messy_run(tmp_path: Path) -> None:
    dataset = str(_triage_subset(tmp_path / "support-triage"))
    db = tmp_path / "workbench.db"
    # Injected 500s, malformed bodies and truncated answers; no 'timeout' (it hangs 30 s).
    faults = {"fault_rate": 0.3, "faults": "500,malformed,truncated"}
    with Store(db) as store:
        base = run_eval(
            dataset, "demo:triage-v1", store=store, options=EvalOptions(provider_options=faults)
        )
        cand = run_eval(dataset, MESSY, store=store)
        assert (base.results, cand.results, cand.errors) == (12, 12, 2)  # st-0005, st-0010
        nb, summary = _execute(
            "model_delta",
            tmp_path,
            {"base_run": base.run_id, "cand_run": cand.run_id, "db": str(db)},
        )
        expected = compare(store, base.run_id, cand.run_id, shared_only=True)
    headline = summary["headline"]
    assert summary["runs"] == [base.run_id, cand.run_id]
    assert {k: headline[k] for k in ("regression", "fix", "changed")} == {
        k: expected.counts[k] for k in ("regression", "fix", "changed")
    }
    assert expected.counts["new_error"] + expected.counts["still_error"] == 2
    # Both runs answered every case once, so the paired delta is the plain difference.
    assert base.pass_rate is not None and cand.pass_rate is not None
    assert headline["pass_rate_delta"] == pytest.approx(cand.pass_rate - base.pass_rate)
    assert [b["name"] for b in summary["budgets"]] == ["regressions", "pass rate fall"]
    assert all(b["ok"] for b in summary["budgets"]) is expected.ok
    verdict = "PASS" if expected.ok else "FAIL"
    assert _last_line(nb).endswith(f"verdict: {verdict}")


@pytest.mark.parametrize(
    ("cand_target", "counts", "pass_rate_delta"),
    [
        # c000/c005 raise, c001/c008 text, c002 "" and c006 a wrong answer; c003 the echo app's miss.
        pytest.param(
            MESSY,
            {"regression": 4, "fix": 1, "new_error": 2, "unchanged_pass": 3},
            MESSY_PASSED / N - 0.9,
            id="messy",
        ),
        pytest.param(EXPLODE, {"new_error": N}, -0.9, id="every-case-errors"),
    ],
)
def test_model_delta_records_exact_transitions(
    tmp_path: Path, cand_target: str, counts: dict[str, int], pass_rate_delta: float
) -> None:
    dataset = str(write_dataset(tmp_path / "tiny", tiny_cases(N)))
    db = tmp_path / "workbench.db"
    with Store(db) as store:
        base = run_eval(dataset, ECHO, store=store).run_id
        cand = run_eval(dataset, cand_target, store=store).run_id
    nb, summary = _execute(
        "model_delta", tmp_path, {"base_run": base, "cand_run": cand, "db": str(db)}
    )
    headline = summary["headline"]
    assert {k: headline[k] for k in ("regression", "fix", "changed")} == {
        k: counts.get(k, 0) for k in ("regression", "fix", "changed")
    }
    assert headline["pass_rate_delta"] == pytest.approx(pass_rate_delta)
    regressions = summary["budgets"][0]
    assert (regressions["name"], regressions["ok"]) == ("regressions", False)
    assert regressions["actual"] == counts.get("regression", 0) + counts.get("new_error", 0)
    assert _last_line(nb) == f"{counts} verdict: FAIL"


# -- matrix -----------------------------------------------------------------------------


def _output(nb: Any, source: str) -> Any:
    """The one output of the cell whose source holds this text."""
    (cell,) = [c for c in nb.cells if source in c.source]
    (out,) = [o for o in cell.outputs if o.output_type in ("execute_result", "display_data")]
    return out


def test_matrix_over_a_messy_grid_with_a_cell_that_always_errors(tmp_path: Path) -> None:
    """Three targets without prices: the echo app (the baseline), the messy app and one that
    errors on every case (no latency, no scores): every section runs, the headline holds."""
    dataset = str(write_dataset(tmp_path / "tiny", tiny_cases(N)))
    db = tmp_path / "workbench.db"
    nb, summary = _execute(
        "matrix",
        tmp_path,
        {"dataset": dataset, "models": [ECHO, MESSY, EXPLODE], "prompts": [None], "db": str(db)},
    )
    headline = summary["headline"]
    assert (headline["cells"], headline["reused_runs"]) == (3, 0)
    assert headline["best_cell"].startswith(f"{ECHO} · ")
    assert headline["best_pass_rate"] == headline["baseline_pass_rate"] == pytest.approx(0.9)
    assert len(summary["runs"]) == 3
    regressions = [b for b in summary["budgets"] if b["name"].endswith(": regressions")]
    # the messy app: 4 regressions and 2 new errors; the exploding target: N new errors
    assert [(b["ok"], b["actual"]) for b in regressions] == [(False, 6), (False, N)]
    heatmap = _output(nb, "views.matrix_heatmap(")
    (trace,) = heatmap.data["application/vnd.plotly.v1+json"]["data"]
    assert len(trace["y"]) == N and all(row[2] is None for row in trace["z"])  # errors: grey
    pareto = _output(nb, "views.pareto_figure(")
    assert "3 cell(s) of unknown cost" in str(pareto.data["application/vnd.plotly.v1+json"])
    cases = _output(nb, 'views.matrix_case_frame(matrix, ("regression"').data["text/plain"]
    assert cases.count("new_error") == 2 + N
    best = headline["best_cell"]
    assert _last_line(nb) == f"3 cells; best {best} at 90.0%, baseline 90.0%"


def test_matrix_of_stored_runs_with_no_regression(tmp_path: Path) -> None:
    """Two stored runs of the same app: the cells are told apart by run, nothing regresses."""
    dataset = str(write_dataset(tmp_path / "tiny", tiny_cases(N)))
    db = tmp_path / "workbench.db"
    with Store(db) as store:
        runs = [run_eval(dataset, ECHO, store=store).run_id for _ in range(2)]
    nb, summary = _execute("matrix", tmp_path, {"run_ids": runs, "db": str(db)})
    headline = summary["headline"]
    assert summary["runs"] == runs
    assert (headline["cells"], headline["reused_runs"]) == (2, 2)  # stored runs are reused
    assert headline["best_cell"].endswith(f"({runs[0]})")  # a tie: the baseline comes first
    assert all(b["ok"] for b in summary["budgets"])
    cases = _output(nb, 'views.matrix_case_frame(matrix, ("regression"').data["text/plain"]
    assert cases.startswith("Empty DataFrame")
    (verdicts,) = [c for c in nb.cells if "views.verdict_text(cmp)" in c.source]
    (printed,) = [o.text for o in verdicts.outputs if o.output_type == "stream"]
    candidate = headline["best_cell"].replace(runs[0], runs[1])
    assert printed.strip() == f"{candidate}: VERDICT: PASS: no blocking regression and no " + (
        "significant drop in pass rate."
    )
