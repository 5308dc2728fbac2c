"""The support-tools demo set end to end: the bars of tool-call evaluation on the demo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench.compare import compare
from workbench.golden import load_dataset
from workbench.runner import EvalOptions, run_eval
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
TOOLS_SET = ROOT / "data" / "golden" / "support-tools"


def test_the_set_has_enough_cases_multi_turn_ones_and_declared_tools() -> None:
    ds = load_dataset(TOOLS_SET)
    assert len(ds.cases) >= 60
    multi = [c for c in ds.cases if "multi-turn" in c.tags]
    assert len(multi) >= 10
    assert all(any(m["role"] == "tool" for m in c.input["messages"]) for c in multi)
    assert [t["function"]["name"] for t in ds.card.tools or []] == [
        "set_ticket_fields",
        "lookup_order",
        "escalate",
    ]
    assert all(isinstance(c.expected["tool_calls"], list) for c in ds.cases)


@pytest.fixture()
def runs(store: Store) -> tuple[str, str]:
    v1 = run_eval(str(TOOLS_SET), "demo:triage-v1", store=store)
    v2 = run_eval(str(TOOLS_SET), "demo:triage-v2", store=store)
    return v1.run_id, v2.run_id


def test_v1_to_v2_regressions_name_the_tool_call_argument_paths(
    store: Store, runs: tuple[str, str]
) -> None:
    cmp = compare(store, *runs)
    regressions = cmp.of("regression")
    assert regressions
    paths = {c.path for case in regressions for c in case.changes}
    assert any(p.startswith("tool_calls[0].arguments.") for p in paths), paths
    assert "tool_calls[0].arguments.priority" in paths
    scores = store.scores_frame(runs[1])
    broken = scores[(scores.scorer == "tool_args_schema") & (scores.score < 1)]
    assert len(broken) and all(re.match(r"tool_calls\[\d+\] \w+: \$", d) for d in broken.detail)
    assert any("'summary' is a required property" in d for d in broken.detail)


def test_streamed_and_plain_runs_make_identical_calls(store: Store) -> None:
    plain = run_eval(
        str(TOOLS_SET),
        "demo:triage-v2",
        store=store,
        options=EvalOptions.from_flags("demo:triage-v2", limit=30, stream=False),
    )
    streamed = run_eval(
        str(TOOLS_SET),
        "demo:triage-v2",
        store=store,
        options=EvalOptions.from_flags("demo:triage-v2", limit=30, stream=True),
    )
    a = store.results_frame(plain.run_id).set_index("case_id")["tool_calls"]
    b = store.results_frame(streamed.run_id).set_index("case_id")["tool_calls"]
    assert a.map(json.dumps).to_dict() == b.map(json.dumps).to_dict()
    assert store.results_frame(streamed.run_id)["ttft_ms"].notna().all()


def test_record_then_replay_reproduces_the_tool_call_scores(tmp_path: Path, store: Store) -> None:
    snaps = tmp_path / "snaps"
    recorded = run_eval(
        str(TOOLS_SET), "demo:triage-v2", store=store, options=EvalOptions(record=str(snaps))
    )
    replayed = run_eval(
        str(TOOLS_SET), "demo:triage-v2", store=store, options=EvalOptions(replay=str(snaps))
    )

    def scored(run_id: str) -> list[tuple[str, str, float, str]]:
        f = store.scores_frame(run_id)
        return sorted(zip(f.case_id, f.scorer, f.score, f.detail, strict=True))

    assert scored(replayed.run_id) == scored(recorded.run_id)
    assert replayed.pass_rate == recorded.pass_rate
