"""Model-version deltas: transitions, field diffs, statistics, flakiness and the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from deepdiff import DeepDiff
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from workbench import EvalOptions, run_eval
from workbench.cli import main
from workbench.compare import compare, field_changes, latest_pair, load_allowlist, word_diff
from workbench.demo.server import DemoServer
from workbench.errors import ConfigError, RunError
from workbench.store import ResultRow, ScoreRow, Store

Out = dict[str, Any] | None  # None: the result is an error


def make_run(
    store: Store,
    results: dict[str, list[tuple[Out, bool]]],
    *,
    dataset_hash: str = "h1",
    target: str = "demo:x",
) -> str:
    """A finished run whose (case -> [(output, passed) per repeat]) results are given."""
    run_id = store.create_run(
        dataset="synthetic", dataset_hash=dataset_hash, target=target, repeats=1
    )
    for case_id, repeats in results.items():
        for r, (out, passed) in enumerate(repeats):
            row = ResultRow(run_id, case_id, r, latency_ms=100.0 + r, tokens_in=10, tokens_out=5)
            if out is None:
                row.error, row.error_kind = "HTTP 500", "provider"
            else:
                row.output, row.parsed, row.passed, row.score = (
                    json.dumps(out),
                    out,
                    passed,
                    1.0 if passed else 0.0,
                )
            store.record_result(
                row, [] if out is None else [ScoreRow("exact", row.score or 0.0, passed)]
            )
    store.finish_run(run_id, "finished")
    return run_id


BASE: dict[str, list[tuple[Out, bool]]] = {
    "c01": [({"priority": "p2"}, True)],
    "c02": [({"category": "billing"}, False)],
    "c03": [({"category": "bug"}, True)],
    "c04": [({"category": "bug"}, False)],
    "c05": [({"summary": "card charged twice in March"}, True)],
    "c06": [({"category": "bug"}, True)],
    "c07": [(None, False)],
    "c08": [(None, False)],
    "c09": [({"a": 1}, False)],
    "c10": [({"needs_human": False, "tags": ["x"]}, True)],
}
CAND: dict[str, list[tuple[Out, bool]]] = {
    "c01": [({"priority": "P2"}, False)],
    "c02": [({"category": "shipping"}, True)],
    "c03": [({"category": "bug"}, True)],
    "c04": [({"category": "bug"}, False)],
    "c05": [({"summary": "card charged three times in March"}, True)],
    "c06": [(None, False)],
    "c07": [({"category": "bug"}, True)],
    "c08": [(None, False)],
    "c09": [({"a": 1, "b": 2}, False)],
    "c10": [({"needs_human": "yes", "tags": ["x", "y"]}, False)],
}


def test_known_transitions_and_field_paths(store: Store) -> None:
    cmp = compare(store, make_run(store, BASE), make_run(store, CAND))
    assert cmp.counts == {
        "regression": 2,
        "fix": 1,
        "new_error": 1,
        "error_fixed": 1,
        "still_error": 1,
        "changed": 2,
        "unchanged_pass": 1,
        "unchanged_fail": 1,
    }
    by_id = {c.case_id: c for c in cmp.cases}
    assert [c.transition for c in (by_id["c01"], by_id["c10"])] == ["regression", "regression"]
    assert [(c.path, c.kind, c.old, c.new) for c in by_id["c01"].changes] == [
        ("priority", "changed", "p2", "P2")
    ]
    assert [(c.path, c.kind) for c in by_id["c09"].changes] == [("b", "added")]
    assert [(c.path, c.kind, c.old, c.new) for c in by_id["c10"].changes] == [
        ("needs_human", "type_changed", False, "yes"),
        ("tags[1]", "added", None, "y"),
    ]
    (summary,) = by_id["c05"].changes
    assert summary.text_diff == "card charged [-twice-] {+three times+} in March"
    assert by_id["c03"].changes == [] and by_id["c06"].changes == []
    fields = dict(cmp.field_counts())
    assert fields == {
        "priority": 1,
        "category": 1,
        "summary": 1,
        "b": 1,
        "needs_human": 1,
        "tags": 1,
    }
    assert set(cmp.blocking) == {"c01", "c06", "c10"}
    assert not cmp.ok
    regressions, fall = cmp.checks()
    assert (regressions.name, regressions.ok, regressions.actual, regressions.limit) == (
        "regressions",
        False,
        3,
        0,
    )
    assert cmp.reasons[0] == regressions.message and "c01, c06, c10" in regressions.message
    assert fall.name == "pass rate fall" and "McNemar p" in fall.message
    doc = cmp.to_dict(cases=False)
    assert doc["verdict"] == {"ok": False, "reasons": cmp.reasons, "blocking": list(cmp.blocking)}
    assert [c["name"] for c in doc["checks"]] == ["regressions", "pass rate fall"]
    assert set(cmp.headline()) == {"regression", "fix", "changed", "pass_rate_delta"}
    assert cmp.render_text().endswith(f"verdict: FAIL\n  - {regressions.message}")


def test_field_changes_on_nested_and_scalar_values() -> None:
    changes = field_changes({"a": {"b": [1, 2]}, "gone": 1}, {"a": {"b": [1, 3]}})
    assert [(c.path, c.kind) for c in changes] == [("a.b[1]", "changed"), ("gone", "removed")]
    assert field_changes(1, "1")[0].kind == "type_changed"
    assert field_changes({"x": 1}, {"x": 1}) == []
    assert word_diff("a b c", "a c d") == "a [-b-] c {+d+}"


def test_different_datasets_are_refused_unless_shared(store: Store) -> None:
    a = make_run(store, {"c1": [({"x": 1}, True)], "c2": [({"x": 1}, True)]}, dataset_hash="h1")
    b = make_run(store, {"c2": [({"x": 2}, False)], "c3": [({"x": 1}, True)]}, dataset_hash="h2")
    with pytest.raises(RunError, match="different cases.*--shared"):
        compare(store, a, b)
    cmp = compare(store, a, b, shared_only=True)
    assert [c.case_id for c in cmp.cases] == ["c2"] and cmp.counts["regression"] == 1


def test_flaky_cases_are_labelled_and_kept_out_of_the_verdict(store: Store) -> None:
    ok = {"x": 1}
    base = {"c1": [(ok, True)] * 3, "c2": [(ok, True)] * 3, "c3": [(ok, False)] * 3}
    cand = {
        "c1": [(ok, True), (ok, False), (ok, False)],
        "c2": [(ok, True)] * 3,
        "c3": [(ok, False)] * 3,
    }
    cmp = compare(store, make_run(store, base), make_run(store, cand))
    (c1,) = cmp.of("regression")
    assert c1.case_id == "c1" and c1.flaky and not c1.blocking
    assert cmp.ok
    assert cmp.flakiness["cand"]["flaky_cases"] == ["c1"]
    assert cmp.flakiness["excluded_from_verdict"] == ["c1"]
    assert cmp.flakiness["cand"]["pass_at_k"]["1"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert cmp.flakiness["cand"]["pass_at_k"]["3"] == pytest.approx((1 + 1 + 0) / 3)
    assert cmp.flakiness["base"]["consistency"] == 1.0


def test_allowlist_suppresses_exactly_the_listed_cases(store: Store, tmp_path: Path) -> None:
    allow = tmp_path / "allow.yaml"
    allow.write_text("c01: priority casing is accepted for now\nc99: not in these runs\n")
    entries = load_allowlist(allow)
    cmp = compare(store, make_run(store, BASE), make_run(store, CAND), allow=entries)
    assert set(cmp.blocking) == {"c06", "c10"}
    assert {c.case_id: c.allowed for c in cmp.cases if c.allowed} == {
        "c01": "priority casing is accepted for now"
    }
    assert cmp.unused_allow == ["c99"]


def test_allowlist_needs_a_reason_per_case(tmp_path: Path) -> None:
    allow = tmp_path / "allow.yaml"
    allow.write_text("c01: fine\nc02:\n")
    with pytest.raises(ConfigError, match=r"allow\.yaml:2: c02: every allowed case needs a reason"):
        load_allowlist(allow)
    allow.write_text("- {id: c01, reason: ok}\n- {id: c02, reason: also}\n")
    assert load_allowlist(allow) == {"c01": "ok", "c02": "also"}


def test_significant_pass_rate_drop_fails_the_gate(store: Store) -> None:
    base = {f"c{i:02d}": [({"x": 1}, True)] for i in range(40)}
    cand = {f"c{i:02d}": [({"x": 2}, i >= 20)] for i in range(40)}
    cmp = compare(store, make_run(store, base), make_run(store, cand), max_regressions=100)
    assert cmp.stats["mcnemar"]["b"] == 20 and cmp.stats["mcnemar"]["c"] == 0
    assert not cmp.ok and "McNemar" in cmp.reasons[0]
    assert cmp.stats["pass_rate"]["delta"]["estimate"] == pytest.approx(-0.5)


def test_cli_gate_exit_codes_and_json(store: Store, tmp_path: Path) -> None:
    base, cand = make_run(store, BASE), make_run(store, CAND)
    db = str(store.path)
    runner = CliRunner()
    failed = runner.invoke(main, ["compare", base, cand, "--db", db, "--gate"])
    assert failed.exit_code == 1
    assert "gate: FAILED" in failed.output and "c01" in failed.output
    allow = tmp_path / "allow.yaml"
    allow.write_text("c01: a\nc06: b\nc10: c\n")
    passed = runner.invoke(
        main, ["compare", base, cand, "--db", db, "--gate", "--allow", str(allow)]
    )
    assert passed.exit_code == 0, passed.output
    out = runner.invoke(main, ["compare", "--latest", "synthetic", "--db", db, "--json"])
    doc = json.loads(out.output)
    assert doc["base"]["id"] == base and doc["cand"]["id"] == cand
    assert doc["counts"]["regression"] == 2 and doc["verdict"]["ok"] is False
    assert {c["case_id"] for c in doc["cases"]} >= {"c01", "c02", "c05"}


def test_latest_needs_two_finished_runs(store: Store) -> None:
    make_run(store, BASE)
    with pytest.raises(RunError, match="need two finished runs"):
        latest_pair(store, "synthetic")


@pytest.fixture(scope="module")
def demo_url() -> Any:
    with DemoServer() as server:
        yield server.url


def test_demo_a_a_at_temperature_zero_has_no_regressions(store: Store, demo_url: str) -> None:
    opts = EvalOptions(base_url=demo_url, concurrency=8)
    a = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
    b = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
    cmp = compare(store, a.run_id, b.run_id)
    assert cmp.counts["regression"] == cmp.counts["fix"] == cmp.counts["changed"] == 0
    assert cmp.ok and cmp.stats["mcnemar"]["p_value"] == 1.0


def test_demo_a_a_with_temperature_finds_flaky_cases(store: Store, demo_url: str) -> None:
    opts = EvalOptions(base_url=demo_url, concurrency=8, temperature=1.0, repeats=3, seed=7)
    a = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
    b = run_eval(
        "support-triage",
        "demo:triage-v1",
        store=store,
        options=EvalOptions(base_url=demo_url, concurrency=8, temperature=1.0, repeats=3, seed=100),
    )
    cmp = compare(store, a.run_id, b.run_id)
    flaky = {c.case_id for c in cmp.cases if c.flaky}
    assert flaky, "temperature 1 with 3 repeats should make some verdicts vary"
    assert not set(cmp.blocking) & flaky
    assert cmp.flakiness["base"]["repeats"] == 3 and cmp.flakiness["base"]["consistency"] < 1.0


def test_demo_v1_to_v2_shows_regressions_fixes_and_format_changes(
    store: Store, demo_url: str
) -> None:
    opts = EvalOptions(base_url=demo_url, concurrency=8)
    v1 = run_eval("support-triage", "demo:triage-v1", store=store, options=opts)
    v2 = run_eval("support-triage", "demo:triage-v2", store=store, options=opts)
    cmp = compare(store, v1.run_id, v2.run_id)
    assert cmp.counts["regression"] >= 4 and cmp.counts["fix"] >= 8
    fields = dict(cmp.field_counts())
    assert {"category", "priority", "summary"} <= set(fields)
    format_changes = [
        c
        for case in cmp.cases
        for c in case.changes
        if c.kind == "type_changed" or (c.path == "priority" and str(c.new).startswith("P"))
    ]
    assert format_changes
    assert cmp.cases[0].tags, "tags come from the dataset"


_FLAT = st.dictionaries(
    st.sampled_from(list("abcdef")),
    st.sampled_from(["p1", "p2", "a b c", "a b d", 1, 2, 0, True, False, None, "yes"]),
)


@settings(max_examples=300, deadline=None)
@given(_FLAT, _FLAT)
def test_flat_objects_diff_as_deepdiff_does(old: dict[str, Any], new: dict[str, Any]) -> None:
    from workbench import compare as cmp_mod

    assume(old != new)  # equal values (0 == False included) are no change, before any diff
    fast = cmp_mod._flat_changes(old, new)
    assert bool(fast) == bool(DeepDiff(old, new, view="tree", verbose_level=2))
    # the same answer as the general path, which asks DeepDiff
    original = cmp_mod._flat
    try:
        cmp_mod._flat = lambda value: False
        slow = field_changes(old, new)
    finally:
        cmp_mod._flat = original
    assert [(c.path, c.kind, c.old, c.new, c.text_diff) for c in fast] == [
        (c.path, c.kind, c.old, c.new, c.text_diff) for c in slow
    ]
