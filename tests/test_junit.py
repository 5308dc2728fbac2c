"""JUnit XML reports: one testcase per case, failures for exactly the failed cases, valid
against the schemas Jenkins and JUnit check reports with (tests/data, vendored)."""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import xmlschema

from workbench import EvalOptions, RunSummary, Selection, run_eval
from workbench.compare import Comparison, compare
from workbench.junit import (
    MESSAGE_CHARS,
    OUTPUT_CHARS,
    Outcome,
    Suite,
    TestCase,
    compare_junit,
    eval_junit,
    to_xml,
    write_junit,
)
from workbench.store import Store

from . import junit_app
from .conftest import GOLDEN

DATA = Path(__file__).parent / "data"
SCHEMAS = ("jenkins-junit.xsd", "xunit-junit-10.xsd")
SNAPSHOTS = Path(__file__).resolve().parents[1] / "data" / "snapshots" / "support-triage"
APP = "python:tests.junit_app:answer"


@functools.cache
def _schema(name: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(DATA / name))


def valid(xml: str) -> ET.Element:
    """The parsed report, after checking it against both vendored JUnit schemas."""
    for name in SCHEMAS:
        _schema(name).validate(xml)
    return ET.fromstring(xml)


def cases_of(root: ET.Element, suite: int = 0) -> dict[str, ET.Element]:
    return {tc.get("name", ""): tc for tc in root.findall("testsuite")[suite].findall("testcase")}


def having(cases: dict[str, ET.Element], tag: str) -> set[str]:
    return {name for name, tc in cases.items() if tc.find(tag) is not None}


@pytest.fixture(scope="module")
def env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_GOLDEN_DIR", str(GOLDEN))
        yield


@pytest.fixture(scope="module")
def live(env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, RunSummary]]:
    """Twenty support-triage cases against the demo model, timed for real."""
    with Store(tmp_path_factory.mktemp("live") / "w.db") as store:
        opts = EvalOptions(selection=Selection(limit=20))
        yield store, run_eval("support-triage", "demo:triage-v1", store=store, options=opts)


@pytest.fixture(scope="module")
def replayed(env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Comparison]:
    """Demo v1 against v2 on the whole set, replayed from the committed snapshots."""
    with Store(tmp_path_factory.mktemp("replay") / "w.db") as store:
        opts = EvalOptions(replay=str(SNAPSHOTS))
        base = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
        cand = run_eval("support-triage", "demo:triage-v2", store=store, options=opts)
        first = compare(store, base.run_id, cand.run_id)
        yield compare(store, base.run_id, cand.run_id, allow={first.blocking[0]: "relabelled"})


# -- eval runs ----------------------------------------------------------------------


def test_one_testcase_per_case_failing_exactly_the_failed_ones(
    live: tuple[Store, RunSummary],
) -> None:
    store, summary = live
    root = valid(eval_junit(store, summary.run_id))
    cases = cases_of(root)
    rows = store.result_rows(summary.run_id)
    assert len(cases) == len(rows) == 20
    assert having(cases, "failure") == {r["case_id"] for r in rows if not r["passed"]}
    assert having(cases, "failure")  # the demo model fails some: the check can fail
    suite = root.findall("testsuite")[0]
    assert suite.get("name") == "support-triage · demo:triage-v1"
    assert (suite.get("tests"), suite.get("failures")) == ("20", str(20 - summary.passed))
    assert {tc.get("classname") for tc in cases.values()} == {"support-triage"}
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == summary.run_id and props["dataset_hash"] == summary.dataset_hash
    assert (props["target"], props["model"]) == ("demo:triage-v1", "triage-v1")
    assert root.get("tests") == str(20 + len(summary.checks()))


def test_time_is_the_case_latency_in_seconds(live: tuple[Store, RunSummary]) -> None:
    store, summary = live
    cases = cases_of(valid(eval_junit(store, summary.run_id)))
    rows = store.result_rows(summary.run_id)
    assert all(r["latency_ms"] for r in rows)
    for row in rows:
        assert float(cases[row["case_id"]].get("time", "")) == pytest.approx(
            row["latency_ms"] / 1000, abs=5e-4
        )


def test_a_failure_names_each_failing_scorer_its_score_threshold_and_reason(
    live: tuple[Store, RunSummary],
) -> None:
    store, summary = live
    cases = cases_of(valid(eval_junit(store, summary.run_id)))
    scores = store.scores_frame(summary.run_id)
    failing = scores[~scores["passed"]]
    assert len(failing)
    for row in failing.itertuples():
        failure = cases[row.case_id].find("failure")
        assert failure is not None and failure.get("type") == "assertion"
        message, text = failure.get("message", ""), failure.text or ""
        assert f"{row.scorer} {row.score:.2f} < " in message
        assert f"{row.scorer} | {row.score:.2f} | " in text and "| NO |" in text
        if row.detail:
            assert row.detail in text
    output = store.result_rows(summary.run_id)
    first = next(r for r in output if not r["passed"])
    assert first["output"] in (cases[first["case_id"]].find("failure").text or "")


def test_budgets_are_a_suite_of_their_own(live: tuple[Store, RunSummary]) -> None:
    store, summary = live
    root = valid(eval_junit(store, summary.run_id, summary=summary))
    suite = root.findall("testsuite")[1]
    assert suite.get("name") == "budgets"
    budgets = cases_of(root, 1)
    assert list(budgets) == [c.name for c in summary.checks()]
    assert having(budgets, "failure") == {c.name for c in summary.checks() if not c.ok}
    for check in summary.checks():
        shown = budgets[check.name].find("failure" if not check.ok else "system-out")
        assert shown is not None
        assert check.message in (shown.get("message") or shown.text or "")


def test_errors_broken_budgets_control_characters_and_long_outputs(
    store: Store, tiny: Path
) -> None:
    summary = run_eval(str(tiny), APP, store=store)
    # a dataset folder: summarize() finds it only through the summary given
    xml = eval_junit(store, summary.run_id, summary=summary)
    root = valid(xml)  # would not parse with the raw characters
    cases = cases_of(root)
    rows = {r["case_id"]: r for r in store.result_rows(summary.run_id)}
    assert len(cases) == 6
    assert having(cases, "error") == {c for c, r in rows.items() if r["error"]} == {"c003"}
    error = cases["c003"].find("error")
    assert error is not None and error.get("type") == rows["c003"]["error_kind"] == "provider"
    assert "app crashed" in error.get("message", "") and "here" in error.get("message", "")
    assert having(cases, "failure") == {
        c for c, r in rows.items() if not r["passed"] and not r["error"]
    }
    # the control characters are gone, the rest of the output (tab, DEL, emoji) is kept
    assert "\x1b" in rows["c002"]["output"] and "\x1b" not in xml and "\x00" not in xml
    text = cases["c002"].find("failure").text or ""
    assert f"not json [31m {junit_app.ALLOWED} word2" in text
    # a long output is clipped, saying how long it was
    long_text = cases["c004"].find("failure").text or ""
    assert len(rows["c004"]["output"]) > 20_000 > len(long_text) > OUTPUT_CHARS / 2
    assert f"({len(rows['c004']['output']):,} chars)" in long_text
    # the crash broke the error-rate budget: a failing budget testcase
    assert "error_rate" in having(cases_of(root, 1), "failure")
    assert root.get("errors") == "1"


def test_repeats_make_one_testcase_failed_when_any_repeat_failed(store: Store, tiny: Path) -> None:
    summary = run_eval(str(tiny), APP, store=store, options=EvalOptions(repeats=3, seed=0))
    cases = cases_of(valid(eval_junit(store, summary.run_id, summary=summary)))
    assert len(cases) == 6 and summary.results == 18
    failure = cases["c001"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("failed 2 of 3 repeats: ")
    text = failure.text or ""
    assert "repeat 1: " in text and "repeat 2: " in text and "repeat 0: " not in text
    assert cases["c003"].find("error").get("message", "").startswith("errored in 3 of 3 repeats")
    assert having(cases, "failure") == {"c001", "c002", "c004"}


# -- comparisons --------------------------------------------------------------------


def test_a_comparison_fails_exactly_its_blocking_regressions(replayed: Comparison) -> None:
    cmp = replayed
    root = valid(compare_junit(cmp))
    cases = cases_of(root)
    assert len(cases) == len(cmp.cases) == 171
    assert having(cases, "failure") == set(cmp.blocking) and len(cmp.blocking) >= 5
    allowed = {c.case_id for c in cmp.cases if c.allowed}
    assert having(cases, "skipped") == allowed and len(allowed) == 1
    skipped = cases[next(iter(allowed))].find("skipped")
    assert skipped is not None and "allowed: relabelled" in (skipped.text or "")
    assert root.findall("testsuite")[0].get("skipped") == "1"
    for delta in cmp.cases:
        if delta.blocking:
            failure = cases[delta.case_id].find("failure")
            assert failure is not None and failure.get("type") == "regression"
            text = failure.text or ""
            assert all(c.describe() in text for c in delta.changes)
            assert "base output:" in text and "candidate output:" in text
            assert (delta.cand_output or "")[:200] in text
    assert {tc.get("time") for tc in cases.values()} == {"0.000"}  # no latency per case


def test_the_gate_rules_are_testcases(replayed: Comparison) -> None:
    root = valid(compare_junit(replayed))
    gate = cases_of(root, 1)
    assert root.findall("testsuite")[1].get("name") == "gate"
    assert list(gate) == [c.name for c in replayed.checks()]
    assert having(gate, "failure") == {c.name for c in replayed.checks() if not c.ok}
    assert "regressions" in having(gate, "failure")


def test_new_errors_fail_and_flaky_regressions_are_skipped(store: Store, tiny: Path) -> None:
    opts = EvalOptions(repeats=3, seed=0)
    base = run_eval(str(tiny), "python:tests.echo_app:answer", store=store, options=opts)
    cand = run_eval(str(tiny), APP, store=store, options=opts)
    cmp = compare(store, base.run_id, cand.run_id)
    cases = cases_of(valid(compare_junit(cmp)))
    assert len(cases) == 6
    flaky = next(c for c in cmp.cases if c.case_id == "c001")
    assert (flaky.transition, flaky.flaky, flaky.blocking) == ("regression", True, False)
    assert having(cases, "skipped") == {"c001"}
    assert "flaky" in (cases["c001"].find("skipped").text or "")
    assert having(cases, "failure") == set(cmp.blocking) == {"c002", "c003", "c004"}
    failure = cases["c003"].find("failure")
    assert failure is not None and failure.get("type") == "new_error"
    assert "app crashed" in failure.get("message", "")
    assert "candidate error: " in (failure.text or "")

    back = compare(store, cand.run_id, base.run_id)  # the crash is now the baseline's
    assert {c.case_id: c.transition for c in back.cases}["c003"] == "error_fixed"
    cases = cases_of(valid(compare_junit(back)))
    assert "c003" not in having(cases, "failure") and "error_fixed" in (
        cases["c003"].find("system-out").text or ""
    )


# -- the builder --------------------------------------------------------------------


def test_the_builder_counts_cleans_and_clips_any_text() -> None:
    bad = "x\x00\x01\x0b\x0c\x1f\ud800\ufffe\uffff y"
    suites = [
        Suite(
            f"cell {bad}",
            [
                TestCase("ok", "m", 1.25, stdout=bad),
                TestCase(bad, "m", 0.5, Outcome("failure", bad * 200, "assertion", bad)),
                TestCase("boom", "m", outcome=Outcome("error", "down", "provider")),
                TestCase("meh", "m", outcome=Outcome("skipped", "not counted")),
            ],
            {"key": bad},
        ),
        Suite("empty"),
    ]
    xml = to_xml(suites, name=bad)
    root = valid(xml)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "1")
    assert root.get("time") == "1.750" and root.get("name") == "x y"
    first = root.findall("testsuite")[0]
    assert (first.get("skipped"), first.get("time")) == ("1", "1.750")
    assert first.find("properties/property").get("value") == "x y"
    failure = first.find("testcase/failure")
    assert failure is not None
    assert len(failure.get("message", "")) <= MESSAGE_CHARS and "chars)" in failure.get(
        "message", ""
    )
    assert first.find("testcase/skipped").text == "not counted"
    assert root.findall("testsuite")[1].find("properties") is None  # none: the schema wants one


def test_write_junit_is_atomic_and_makes_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "junit" / "deep" / "eval.xml"
    xml = to_xml([Suite("s", [TestCase("a", "m")])])
    assert write_junit(target, xml) == target
    assert target.read_text(encoding="utf-8") == xml
    write_junit(target, xml.replace('name="a"', 'name="b"'))
    assert 'name="b"' in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["eval.xml"]
