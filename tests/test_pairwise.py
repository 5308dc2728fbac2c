"""Pairwise judging of two runs: both orders per case, win rate, sign test, consistency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.errors import ConfigError
from workbench.golden import load_dataset
from workbench.pairwise import pairwise
from workbench.runner import EvalOptions, run_eval
from workbench.store import ResultRow, Store

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "golden" / "support-triage"


@pytest.fixture()
def two_runs(store: Store) -> tuple[str, str]:
    opts = {"limit": 60}
    v1 = run_eval(
        str(DEMO),
        "demo:triage-v1",
        store=store,
        options=EvalOptions.from_flags("demo:triage-v1", **opts),
    )
    v2 = run_eval(
        str(DEMO),
        "demo:triage-v2",
        store=store,
        options=EvalOptions.from_flags("demo:triage-v2", **opts),
    )
    return v1.run_id, v2.run_id


def test_each_case_is_judged_in_both_orders(store: Store, two_runs: tuple[str, str]) -> None:
    base, cand = two_runs
    store.conn.execute("DELETE FROM judge_cache")  # count every pairwise call
    p = pairwise(store, base, cand, "demo:judge", dataset=str(DEMO))
    hows = [c.how for c in p.cases]
    judged = hows.count("judged") + hows.count("inconsistent")
    assert judged > 0 and hows.count("identical") > 0
    assert p.usage.calls == 2 * judged  # two orders per judged case, none for identical texts
    assert len(p.cases) == 60 and p.win_rate.n == 60
    assert 0 <= p.win_rate.low <= p.win_rate.estimate <= p.win_rate.high <= 1
    # the demo judge's deliberate first-position bias is caught, and counted as a tie
    flipped = [c for c in p.cases if c.how == "inconsistent"]
    assert flipped and all(c.outcome == "tie" and c.base_first != c.cand_first for c in flipped)
    assert p.position_consistency == pytest.approx(1 - len(flipped) / judged)
    # a consistent verdict is the same winner in both orders
    for c in p.cases:
        if c.how == "judged":
            assert c.base_first == c.cand_first == c.outcome
    # asked again: every judgement is answered by the cache
    again = pairwise(store, base, cand, "demo:judge", dataset=str(DEMO))
    assert again.usage.calls == 0 and again.usage.cached == 2 * judged
    assert [c.outcome for c in again.cases] == [c.outcome for c in p.cases]


def test_swapping_the_runs_mirrors_the_verdicts(store: Store, two_runs: tuple[str, str]) -> None:
    base, cand = two_runs
    p = pairwise(store, base, cand, "demo:judge", dataset=str(DEMO))
    q = pairwise(store, cand, base, "demo:judge", dataset=str(DEMO))
    assert q.win_rate.estimate == pytest.approx(1 - p.win_rate.estimate)
    assert (q.counts["cand_wins"], q.counts["base_wins"]) == (
        p.counts["base_wins"],
        p.counts["cand_wins"],
    )
    assert q.position_consistency == p.position_consistency
    assert q.sign_p == pytest.approx(p.sign_p)


def test_a_run_against_itself_ties_everywhere_with_no_call(
    store: Store, two_runs: tuple[str, str]
) -> None:
    base, _ = two_runs
    p = pairwise(store, base, base, "demo:judge", dataset=str(DEMO))
    assert p.counts["ties"] == 60 and p.win_rate.estimate == 0.5 and p.usage.calls == 0
    assert p.sign_p == 1.0 and p.position_consistency is None
    assert p.checks()[0].ok


def _run(store: Store, target: str, outputs: dict[str, str | None]) -> str:
    ds = load_dataset(DEMO)
    run_id = store.create_run(dataset=ds.name, dataset_hash=ds.hash, target=target)
    for case_id, summary in outputs.items():
        row = ResultRow(run_id=run_id, case_id=case_id, repeat=0)
        if summary is None:
            row.error = "HTTP 500"
        else:
            row.output = json.dumps({"category": "bug", "summary": summary})
        store.record_result(row)
    store.finish_run(run_id, "finished")
    return run_id


def test_a_clearly_better_candidate_wins_and_errors_lose(store: Store) -> None:
    ds = load_dataset(DEMO)
    cases = ds.cases[:24]
    good = {c.id: c.expected["summary"] for c in cases}
    bad = {c.id: "Das Problem ist unklar, bitte melden Sie sich." for c in cases}
    bad[cases[0].id] = None  # the baseline errored here: the candidate wins with no call
    good[cases[1].id] = None  # the candidate errored here: the baseline wins
    base, cand = _run(store, "python:old", bad), _run(store, "python:new", good)
    p = pairwise(store, base, cand, "demo:judge", dataset=ds)
    by_case = {c.case_id: c for c in p.cases}
    assert by_case[cases[0].id].outcome == "B" and by_case[cases[0].id].how == "error"
    assert by_case[cases[1].id].outcome == "A" and by_case[cases[1].id].how == "error"
    assert p.counts["cand_wins"] >= 20
    assert p.win_rate.low > 0.5 and p.sign_p < 0.001
    # and the other way round the gate says the candidate is significantly worse
    q = pairwise(store, cand, base, "demo:judge", dataset=ds)
    assert not q.checks()[0].ok and "BROKEN" in q.checks()[0].message


def test_a_run_judging_itself_is_refused(store: Store, two_runs: tuple[str, str]) -> None:
    base, cand = two_runs
    with pytest.raises(ConfigError, match="allow-self-judge"):
        pairwise(store, base, cand, "demo:triage-v2", dataset=str(DEMO))
    p = pairwise(store, base, cand, "demo:triage-v2", dataset=str(DEMO), allow_self_judge=True)
    assert p.judge == "demo:triage-v2"


def test_cli_compare_pairwise_reports_win_rate_and_consistency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "wb.db"
    runner = CliRunner()
    monkeypatch.chdir(ROOT)
    for model in ("demo:triage-v1", "demo:triage-v2"):
        out = runner.invoke(
            main, ["eval", "support-triage", "--model", model, "--limit", "40", "--db", str(db)]
        )
        assert out.exit_code in (0, 1), out.output
    out = runner.invoke(
        main,
        ["compare", "--latest", "support-triage", "--db", str(db), "--pairwise", "demo:judge"],
    )
    assert "pairwise (demo:judge on summary, both orders): candidate win rate" in out.output
    assert "position consistency" in out.output and "sign test p = " in out.output
    js = runner.invoke(
        main,
        [
            "compare",
            "--latest",
            "support-triage",
            "--db",
            str(db),
            "--pairwise",
            "demo:judge",
            "--json",
        ],
    )
    doc = json.loads(js.stdout)
    assert doc["pairwise"]["win_rate_interval"]["n"] == 40
    assert any(c["name"] == "pairwise_win_rate" for c in doc["checks"])
    refused = runner.invoke(
        main,
        ["compare", "--latest", "support-triage", "--db", str(db), "--pairwise", "demo:triage-v2"],
    )
    assert refused.exit_code == 1 and "--allow-self-judge" in refused.output
