"""The one result contract: checks, limit checks, and what a notebook records from results."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench import budgets, checks
from workbench.checks import Check, Provenance, limit_check
from workbench.publish import record_summary


def test_a_breach_says_by_how_much() -> None:
    c = limit_check("p95_latency_ms", 1812.4, 1500, "max", "ms")
    assert not c.ok
    assert c.message == "p95_latency_ms 1,812 ms > 1,500 ms (by 312 ms): BROKEN"
    assert (c.actual, c.limit, c.direction) == (1812.4, 1500.0, "max")
    floor = limit_check("pass_rate", 0.8, 0.9, "min", "%")
    assert floor.message == "pass_rate 80.00% < 90.00% (by 10.00%): BROKEN"


@pytest.mark.parametrize("missing", [None, math.nan])
def test_a_missing_figure_is_not_a_breach(missing: float | None) -> None:
    c = limit_check("error_rate", missing, 0.005, "max", "%")
    assert c.ok and c.actual is None
    assert c.message == "error_rate n/a (budget ≤ 0.50%): ok"


@given(
    actual=st.floats(allow_nan=False, allow_infinity=False, width=32),
    limit=st.floats(allow_nan=False, allow_infinity=False, width=32),
    direction=st.sampled_from(["max", "min"]),
)
def test_limit_check_holds_exactly_when_the_figure_is_within(
    actual: float, limit: float, direction: checks.Direction
) -> None:
    c = limit_check("x", actual, limit, direction)
    assert c.ok is (actual <= limit if direction == "max" else actual >= limit)
    assert c.message.endswith(": ok" if c.ok else ": BROKEN")
    assert json.loads(json.dumps(c.to_dict()))["ok"] is c.ok


def test_renamed_keeps_everything_but_the_name() -> None:
    c = limit_check("p95_latency_ms", 10, 300, "max", "ms").renamed("search p95_latency_ms")
    assert c.name == "search p95_latency_ms" and c.ok and c.limit == 300


def test_budgets_check_every_scorer_against_the_pass_rate_floor() -> None:
    out = budgets.check(
        {"p95_latency_ms": 120.0, "pass_rate": 0.95},
        {"p95_latency_ms": 100, "pass_rate": 0.9},
        {"exact": 0.85, "schema": 1.0},
    )
    assert [(c.name, c.ok) for c in out] == [
        ("p95_latency_ms", False),
        ("pass_rate", True),
        ("scorer:exact", False),
        ("scorer:schema", True),
    ]


class _Fake:
    """A result as any capability returns it."""

    def __init__(self, name: str, ok: bool, run: str) -> None:
        self.name, self.ok, self.run = name, ok, run

    def checks(self) -> list[Check]:
        return [Check(self.name, self.ok, f"{self.name}: {'ok' if self.ok else 'BROKEN'}")]

    def headline(self) -> dict[str, Any]:
        return {f"{self.name} figure": 1.5}

    def provenance(self) -> Provenance:
        return Provenance((self.run,), {"ds": "abc"}, {"svg": f"{self.run}.svg"})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def render_text(self) -> str:
        return self.name


def test_broken_and_passed_over_one_result_or_several() -> None:
    good, bad = _Fake("a", True, "r1"), _Fake("b", False, "r2")
    assert isinstance(good, checks.Result)
    assert checks.passed(good) and not checks.broken(good)
    assert [c.name for c in checks.broken([good, bad])] == ["b"]
    assert not checks.passed([good, bad])


def test_record_summary_merges_results_and_skips_a_step_that_did_not_run(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    doc = record_summary(
        path,
        _Fake("a", True, "r1"),
        None,
        _Fake("b", False, "r2"),
        headline={"extra": 2},
        checks=[{"name": "own", "ok": True, "message": "fine"}],
    )
    assert json.loads(path.read_text()) == doc
    assert doc["runs"] == ["r1", "r2"]
    assert doc["datasets"] == {"ds": "abc"}
    assert doc["artifacts"] == {"svg": "r2.svg"}
    assert doc["headline"] == {"a figure": 1.5, "b figure": 1.5, "extra": 2}
    assert [(b["name"], b["ok"]) for b in doc["budgets"]] == [
        ("a", True),
        ("b", False),
        ("own", True),
    ]
    assert doc["budgets"][1]["message"] == "b: BROKEN"


def test_record_summary_without_a_path_writes_nothing(tmp_path: Path) -> None:
    doc = record_summary(None, _Fake("a", True, "r1"))
    assert doc["runs"] == ["r1"] and not list(tmp_path.iterdir())
