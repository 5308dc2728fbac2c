"""The tool-call scorers: called tools, argument contracts with their paths, argument
matches, trajectories; and end to end on the demo server's tool calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import write_dataset
from workbench import scoring
from workbench.demo.tools import TOOLS
from workbench.runner import run_eval
from workbench.store import Store
from workbench.tools import stored_calls


def calls(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    raw = [
        {"id": f"c{i}", "name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}
        for i, (n, a) in enumerate(pairs)
    ]
    return stored_calls(raw) or []


FIELDS = {
    "category": "billing",
    "priority": "p2",
    "needs_human": False,
    "summary": "Charged twice.",
}
EXPECTED = {
    "tool_calls": [
        {"name": "set_ticket_fields", "arguments": FIELDS},
        {"name": "escalate", "arguments": {"team": "billing"}},
    ]
}


def score(
    name: str, made: list[dict[str, Any]], expected: Any = EXPECTED, **options: Any
) -> tuple[float, str]:
    spec = scoring.ScorerSpec(name, options=options)
    r = scoring.score_output([spec], "", expected, tool_calls=made, tools=TOOLS)
    return r.scores[spec.label], r.details[spec.label]


def test_tool_called_as_a_set_in_order_and_with_nothing_else() -> None:
    both = calls(("set_ticket_fields", FIELDS), ("escalate", {"team": "billing", "reason": "x"}))
    assert score("tool_called", both)[0] == 1.0
    one = calls(("set_ticket_fields", FIELDS))
    value, detail = score("tool_called", one)
    assert value == 0.5 and "missing escalate" in detail
    backwards = list(reversed(both))
    assert score("tool_called", backwards)[0] == 1.0
    assert score("tool_called", backwards, order="ordered")[0] == 0.5
    extra = [*both, *calls(("lookup_order", {"order_id": "ORD-00001"}))]
    assert score("tool_called", extra)[0] == 1.0
    value, detail = score("tool_called", extra, only=True)
    assert value == pytest.approx(2 / 3) and "not expected: lookup_order" in detail
    assert score("tool_called", [], expected={"tool_calls": []})[0] == 1.0
    assert score("no_tool_call", [])[0] == 1.0 and score("no_tool_call", one)[0] == 0.0


def test_tool_args_schema_names_the_failing_path() -> None:
    shouted = calls(("set_ticket_fields", {**FIELDS, "priority": "P1"}))
    value, detail = score("tool_args_schema", shouted)
    assert value == 0.0
    assert (
        "tool_calls[0] set_ticket_fields: $.priority: 'P1' is not one of ['p1', 'p2', 'p3', 'p4']"
        in detail
    )
    missing = calls(("set_ticket_fields", {k: v for k, v in FIELDS.items() if k != "summary"}))
    assert "'summary' is a required property" in score("tool_args_schema", missing)[1]
    broken = calls(("lookup_order", '{"order_id": "ORD-'))
    assert "arguments are not JSON" in score("tool_args_schema", broken)[1]
    unknown = calls(("delete_account", {}))
    assert "not an offered tool" in score("tool_args_schema", unknown)[1]
    mixed = calls(("set_ticket_fields", FIELDS), ("escalate", {"team": "legal", "reason": "r"}))
    value, detail = score("tool_args_schema", mixed)
    assert value == 0.5 and "tool_calls[1] escalate: $.team" in detail


def test_tool_args_match_weighs_fields_and_names_mismatches() -> None:
    made = calls(
        ("set_ticket_fields", {**FIELDS, "priority": "P2"}),
        ("escalate", {"team": "billing", "reason": "r"}),
    )
    value, detail = score("tool_args_match", made)
    assert value == pytest.approx(4 / 5)  # 4 of set_ticket_fields' fields + escalate.team
    assert "set_ticket_fields.priority: expected 'p2', got 'P2'" in detail
    assert score("tool_args_match", made, case_insensitive=True)[0] == 1.0
    weighted = score(
        "tool_args_match",
        made,
        fields={"set_ticket_fields.category": 3, "set_ticket_fields.priority": 1},
    )
    assert weighted[0] == pytest.approx(3 / 4)
    assert score("tool_args_match", made[:1])[1].endswith("escalate: not called")


def test_tool_sequence_f1_modes_and_step_budget() -> None:
    plan = {"tool_calls": [{"name": "lookup_order"}, {"name": "set_ticket_fields"}]}
    right = calls(("lookup_order", {"order_id": "ORD-00001"}), ("set_ticket_fields", FIELDS))
    assert score("tool_sequence", right, plan)[0] == 1.0
    assert score("tool_sequence", right, plan, mode="exact")[0] == 1.0
    swapped = list(reversed(right))
    assert score("tool_sequence", swapped, plan)[0] == pytest.approx(0.5)
    assert score("tool_sequence", swapped, plan, mode="set")[0] == 1.0
    assert score("tool_sequence", swapped, plan, mode="exact")[0] < 1.0
    padded = [*right, *calls(("escalate", {"team": "support", "reason": "r"}))]
    value, detail = score("tool_sequence", padded, plan)
    assert value == pytest.approx(0.8) and "precision 0.67 recall 1.00" in detail
    assert score("tool_sequence", padded, plan, max_steps=2)[0] == 0.0


NAMES = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=6)


@given(NAMES, NAMES, st.sampled_from(["exact", "in_order", "set"]))
def test_tool_sequence_is_a_share_and_full_only_for_a_match(
    wanted: list[str], made: list[str], mode: str
) -> None:
    expected = {"tool_calls": [{"name": n} for n in wanted]}
    value, _ = score("tool_sequence", calls(*((n, {}) for n in made)), expected, mode=mode)
    assert 0.0 <= value <= 1.0
    if wanted == made:
        assert value == 1.0
    if mode == "exact" and wanted != made:
        assert value < 1.0


def test_on_the_demo_v2_breaks_the_contract_and_the_reason_says_where(
    tmp_path: Path, store: Store
) -> None:
    card = {
        "name": "mini-tools",
        "prompt": {
            "system": "Route the ticket with the tools.",
            "user": "<ticket>\n{{ ticket }}\n</ticket>",
        },
        "tools": TOOLS,
        "tool_choice": "auto",
        "scorers": [
            {"name": "tool_called"},
            {"name": "tool_args_schema", "threshold": 1},
            {
                "name": "tool_args_match",
                "options": {
                    "fields": {"set_ticket_fields.category": 1, "set_ticket_fields.priority": 1}
                },
            },
        ],
    }
    ticket = "URGENT!!! I was charged twice this month and need it fixed NOW"
    expected = {
        "tool_calls": [
            {"name": "set_ticket_fields", "arguments": {"category": "billing", "priority": "p1"}}
        ]
    }
    folder = write_dataset(
        tmp_path / "mini-tools",
        [{"id": "m1", "input": {"ticket": ticket}, "expected": expected}],
        card,
    )
    v1 = run_eval(str(folder), "demo:triage-v1", store=store)
    v2 = run_eval(str(folder), "demo:triage-v2", store=store)
    s1 = store.scores_frame(v1.run_id).set_index("scorer")
    s2 = store.scores_frame(v2.run_id).set_index("scorer")
    assert s1.loc["tool_args_schema", "score"] == 1.0
    assert s2.loc["tool_args_schema", "score"] < 1.0
    assert "set_ticket_fields: $.priority: 'P" in s2.loc["tool_args_schema", "detail"]
    assert s1.loc["tool_called", "score"] == 1.0
    # and compare names the tool-call argument that changed
    from workbench.compare import compare

    cmp = compare(store, v1.run_id, v2.run_id, dataset=None)
    (case,) = cmp.cases
    assert case.transition == "regression"
    paths = {c.path: (c.old, c.new) for c in case.changes}
    assert paths["tool_calls[0].arguments.priority"] == ("p2", "P2")
