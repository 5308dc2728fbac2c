"""Many-way comparison: the models × prompts grid, reuse of finished runs, the leaderboard,
the Pareto front, compare with several candidates, and the PR-sized Markdown."""

from __future__ import annotations

import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import markdown_it
import pytest
import xmlschema
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.cli import main
from workbench.compare import compare
from workbench.markdown import MAX_BYTES, comparison_markdown, write_markdown
from workbench.matrix import Cell, _pareto
from workbench.store import ResultRow, ScoreRow, Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "golden" / "support-triage"
GRID = ("--model", "demo:triage-v1", "--model", "demo:triage-v2", "--prompt", "v1")


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo set with a third, test-only prompt variant in prompts/short.yaml."""
    folder = tmp_path_factory.mktemp("grid") / "support-triage"
    shutil.copytree(DEMO, folder)
    (folder / "prompts").mkdir()
    (folder / "prompts" / "short.yaml").write_text(
        "system: Triage the ticket into JSON with category, priority, needs_human, summary.\n"
    )
    return folder


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_two_by_two_grid_prints_four_cells_and_reruns_nothing(card: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    args = ("matrix", str(card), *GRID, "--prompt", "short", "--limit", "30", "--db", db)
    code, out, err = invoke(*args, "--json")
    assert code == 0, err
    doc = json.loads(out)
    cells = [r["cell"] for r in doc["leaderboard"]]
    assert cells == [
        "demo:triage-v1 · v1",
        "demo:triage-v1 · short",
        "demo:triage-v2 · v1",
        "demo:triage-v2 · short",
    ]
    assert err.count(": running") == 4
    for row in doc["leaderboard"][1:]:
        for key in ("pass_rate", "mean_score", "p95_latency_ms", "cost_usd", "cost_per_pass_usd"):
            delta = row["deltas"][key]
            assert delta["low"] <= delta["estimate"] <= delta["high"], (row["cell"], key)
        assert set(row["deltas"]["scorers"]) == set(doc["leaderboard"][0]["scorers"])
    assert doc["pareto"] and set(doc["pareto"]) <= set(cells)
    # v2 against v1 on the same prompt: the regressions compare finds are the matrix's
    with Store(tmp_path / "m.db") as store:
        runs = {r["cell"]: r["run"] for r in doc["leaderboard"]}
        cmp = compare(store, runs["demo:triage-v1 · v1"], runs["demo:triage-v2 · v1"])
        row = doc["leaderboard"][2]
        assert row["regressions"] == cmp.counts["regression"] + cmp.counts["new_error"]
        assert row["fixes"] == cmp.counts["fix"] + cmp.counts["error_fixed"]
        before = store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    code, out, err = invoke(*args)
    assert code == 0, err
    assert err.count(": reusing run") == 4 and ": running" not in err
    with Store(tmp_path / "m.db") as store:
        assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == before
    assert "matrix on support-triage: 4 cells, baseline demo:triage-v1 · v1" in out
    assert "Pareto front" in out
    # another sampling parameter is another run
    code, _, err = invoke(
        "matrix", str(card), *GRID, "--limit", "30", "--db", db, "--temperature", "0.5"
    )
    assert code == 0 and err.count(": running") == 2


def test_compare_with_several_candidates_gives_the_same_table(card: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    code, out, err = invoke(
        "matrix", str(card), *GRID, "--prompt", "terse", "--limit", "20", "--db", db, "--json"
    )
    assert code == 0, err
    grid = json.loads(out)
    runs = [r["run"] for r in grid["leaderboard"]]
    code, out, err = invoke("compare", *runs, "--db", db, "--json")
    assert code == 0, err
    table = json.loads(out)
    assert [r["cell"] for r in table["leaderboard"]] == [r["cell"] for r in grid["leaderboard"]]
    for a, b in zip(table["leaderboard"], grid["leaderboard"], strict=True):
        assert a["pass_rate"] == b["pass_rate"] and a.get("deltas") == b.get("deltas")
    assert table["prompts"]["demo:triage-v1 · terse"]["templates"]["system"]
    code, _, err = invoke("compare", runs[0], runs[0], runs[1], "--db", db)
    assert code != 0 and "appears twice" in err


def test_gate_fails_when_a_cell_regresses(card: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    md, xml = tmp_path / "summary.md", tmp_path / "junit" / "matrix.xml"
    code, out, err = invoke(
        "matrix",
        str(card),
        *GRID,
        "--db",
        db,
        "--gate",
        "--markdown",
        str(md),
        "--junit",
        str(xml),
        "--json",
    )
    assert code == 1 and "demo:triage-v2 · v1: " in err  # v2 really regresses cases
    text = md.read_text()
    assert "| `demo:triage-v2 · v1` |" in text and "#### Regressions" in text
    assert len(text.encode()) <= MAX_BYTES
    xmlschema.XMLSchema(str(ROOT / "tests" / "data" / "jenkins-junit.xsd")).validate(str(xml))
    suites = {s.get("name"): s for s in ET.parse(xml).getroot()}
    assert list(suites) == [
        "demo:triage-v1 · v1",
        "demo:triage-v1 · v1 · budgets",
        "demo:triage-v2 · v1 vs baseline",
        "demo:triage-v2 · v1 vs baseline · gate",
    ]
    cases = suites["demo:triage-v2 · v1 vs baseline"].findall("testcase")
    assert len(cases) == 171
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    blocking = json.loads(out)["comparisons"]["demo:triage-v2 · v1"]["verdict"]["blocking"]
    assert failed == set(blocking) and failed


def _point(pass_rate: float, cost: float, p95: float, score: float = 0.5) -> dict[str, float]:
    return {
        "pass_rate": pass_rate,
        "mean_score": score,
        "cost_usd": cost,
        "results": 1,
        "p95_latency_ms": p95,
    }


def test_pareto_keeps_exactly_the_undominated_cells() -> None:
    summaries = {
        "a": _point(0.9, 2.0, 100),  # best quality
        "b": _point(0.8, 1.0, 100),  # cheaper
        "c": _point(0.7, 1.5, 120),  # worse than b on all three
        "d": _point(0.8, 1.0, 100, score=0.4),  # ties b but lower score
    }
    cells = [Cell(k, "t", None, k) for k in summaries]
    assert _pareto(cells, summaries) == ["a", "b"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 10), st.floats(1, 1000)), min_size=1, max_size=8
    )
)
def test_pareto_front_is_nonempty_and_mutually_undominated(
    points: list[tuple[float, float, float]],
) -> None:
    summaries = {str(i): _point(*p) for i, p in enumerate(points)}
    cells = [Cell(k, "t", None, k) for k in summaries]
    front = _pareto(cells, summaries)
    assert front
    for label in summaries:
        q, c, lat = points[int(label)]
        dominated = any(
            oq >= q and oc <= c and ol <= lat and (oq > q or oc < c or ol < lat)
            for oq, oc, ol in points
        )
        assert (label in front) == (not dominated)


def _big_runs(store: Store, n: int) -> tuple[str, str]:
    long = "word " * 400
    ids = []
    for side in ("base", "cand"):
        run_id = store.create_run(dataset="big", dataset_hash="h", target=f"demo:{side}", repeats=1)
        rows = []
        for i in range(n):
            passed = side == "base"
            out = {
                "category": "bug" if passed else "billing",
                "summary": f"`|<script>alert(1)</script> {long} {i}",
            }
            row = ResultRow(
                run_id,
                f"case-{i:05d}`|<b>",
                0,
                output=json.dumps(out),
                parsed=out,
                passed=passed,
                score=float(passed),
                latency_ms=100.0 + i % 7,
                tokens_in=10,
                tokens_out=5,
                cost_usd=1e-5,
            )
            rows.append((row, [ScoreRow("exact", float(passed), passed, "category differs")]))
        with store.conn:
            for row, scores in rows:
                store.record_result(row, scores)
        store.finish_run(run_id, "finished")
        ids.append(run_id)
    return ids[0], ids[1]


def test_markdown_stays_under_64_kib_on_10000_regressions_and_escapes_outputs(store: Store) -> None:
    base, cand = _big_runs(store, 10_000)
    cmp = compare(store, base, cand, resamples=200)
    assert cmp.counts["regression"] == 10_000
    text = comparison_markdown(cmp)
    assert len(text.encode()) <= MAX_BYTES < 64 * 1024
    assert "❌ FAIL" in text and "| 10000 |" in text
    assert "more (full list: `workbench compare --json`)" in text
    html = markdown_it.MarkdownIt("commonmark").render(text)
    assert "<script>" not in html and "<b>" not in html  # untrusted text stays text
    assert "&lt;script&gt;" in html


def test_markdown_appends_to_the_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_markdown(summary, "## ours")
    assert summary.read_text() == "# earlier step\n## ours\n"
    other = tmp_path / "out" / "pr.md"
    write_markdown(other, "a\n")
    write_markdown(other, "b\n")
    assert other.read_text() == "b\n"


def test_cost_per_pass_is_nan_when_nothing_passes_or_costs(store: Store) -> None:
    from workbench.matrix import _cost_per_pass

    value = _cost_per_pass({"a": (1.0, 0.0)}, {"a": (1.0, 0.0)}, True, 0, 10)["value"]
    assert math.isnan(value)
    out = _cost_per_pass(
        {"a": (1.0, 1.0), "b": (1.0, 1.0)}, {"a": (3.0, 1.0), "b": (1.0, 1.0)}, False, 0, 50
    )
    assert out["value"] == 2.0 and out["delta"]["estimate"] == 1.0
