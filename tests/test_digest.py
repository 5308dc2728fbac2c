"""Key figures, their moves since last week, the report's summary box and the index rows."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench import digest
from workbench.checks import Check
from workbench.digest import KeyFigure


def _summary(headline: dict, budgets: list | None = None, **extra: object) -> dict:
    return {"ok": True, "headline": headline, "budgets": budgets or [], **extra}


def test_a_move_reads_better_or_worse_by_the_way_that_is_better() -> None:
    up_good = KeyFigure("pass_rate", 0.8, "higher", previous=0.7)
    up_bad = KeyFigure("p95_ms", 320.0, "lower", previous=300.0)
    assert (up_good.move, up_good.judgement) == ("up", "better")
    assert (up_bad.move, up_bad.judgement) == ("up", "worse")
    assert KeyFigure("errors", 3, "lower", previous=5).judgement == "better"
    assert KeyFigure("x", 1.0, None, previous=2.0).judgement == "changed"
    assert KeyFigure("x", 1.0, "higher", previous=1.0).judgement == "same"
    assert KeyFigure("x", 1.0, "higher").move is None  # first week: nothing to compare
    assert KeyFigure("best_cell", "b", None, previous="a").change_text() == "was a"


def test_change_text_gives_the_difference_and_the_relative_change() -> None:
    assert KeyFigure("p95_ms", 320.0, "lower", previous=300.0).change_text() == "+20 (+6.7%)"
    assert KeyFigure("rate", 0.5, "higher", previous=0.6).change_text() == "−0.1 (−16.7%)"
    assert KeyFigure("n", 4, "higher", previous=0).change_text() == "+4"  # no % of zero
    assert KeyFigure("n", 4, "higher", previous=4).change_text() == "no change"


def test_mark_key_takes_patterns_in_order_and_at_most_five() -> None:
    headline = {
        "pass_rate": 0.8,
        "api p95_ms": 120.0,
        "llm p95_ms": 900.0,
        "errors": 2,
        "a": 1,
        "b": 2,
        "c": 3,
    }
    marked = digest.mark_key(
        headline, {"* p95_ms": "lower", "pass_rate": "higher", "missing": None}
    )
    assert [(m["name"], m["better"]) for m in marked] == [
        ("api p95_ms", "lower"),
        ("llm p95_ms", "lower"),
        ("pass_rate", "higher"),
    ]
    assert len(digest.mark_key(headline, ["*"])) == digest.MAX_KEY
    with pytest.raises(ValueError, match="'higher' or 'lower'"):
        digest.mark_key(headline, {"pass_rate": "up"})  # type: ignore[dict-item]


def test_mark_key_takes_the_direction_of_a_budget_and_the_interval() -> None:
    checks = [Check("p95_ms", True, "ok", actual=100.0, limit=300.0, direction="max")]
    headline = {"p95_ms": 100.0, "delta": 0.1, "delta_low": -0.05, "delta_high": 0.2}
    marked = digest.mark_key(headline, ["p95_ms", "delta"], checks, {"p95_ms": (90.0, 110.0)})
    assert marked == [
        {"name": "p95_ms", "better": "lower", "interval": [90.0, 110.0]},
        {"name": "delta", "better": None, "interval": [-0.05, 0.2]},
    ]


def test_key_figures_fall_back_to_the_first_numbers_without_their_bounds() -> None:
    summary = _summary(
        {"model": "m", "rate": 0.5, "rate_low": 0.4, "rate_high": 0.6, "n": 10, "ok": True}
    )
    figures = digest.key_figures(summary, _summary({"rate": 0.4}))
    assert [(f.name, f.previous) for f in figures] == [("rate", 0.4), ("n", None)]
    assert digest.key_figures({"headline": "not a mapping"}) == []


def test_verdict_says_failed_broken_or_held() -> None:
    assert digest.verdict({"ok": False, "error": "cell 3: KeyError"}) == (
        "wb-bad",
        "FAILED: cell 3: KeyError",
    )
    budgets = [{"name": "a", "ok": True}, {"name": "b", "ok": False}]
    assert digest.verdict(_summary({}, budgets)) == ("wb-bad", "1 of 2 budgets broken")
    assert digest.verdict(_summary({}, budgets[:1])) == ("wb-ok", "all 1 budgets hold")
    assert digest.verdict(_summary({})) == ("wb-na", "no budgets recorded")


def test_summary_box_puts_broken_budgets_first_and_shows_the_change() -> None:
    budgets = [
        {"name": "held", "ok": True, "message": "fine"},
        {"name": "p95", "ok": False, "message": "p95 412 ms > 300 ms"},
    ]
    summary = _summary({"p95_ms": 412.0}, budgets, key=[{"name": "p95_ms", "better": "lower"}])
    box = digest.summary_box("latency", summary, _summary({"p95_ms": 280.0}), since="2026-W47")
    assert "1 of 2 budgets broken" in box and "p95 412 ms &gt; 300 ms" in box
    assert box.index(">p95<") < box.index(">held<")  # the broken badge first
    assert "since 2026-W47" in box and "data-judgement='worse'" in box and "▲ +132" in box
    assert digest.SECTIONS_MARK in box
    first = digest.summary_box("latency", summary)
    assert "First run" in first and "data-judgement" not in first


def test_summary_box_escapes_what_a_notebook_recorded() -> None:
    evil = "<script>alert(1)</script>"
    box = digest.summary_box(evil, _summary({evil: 1.0}, [{"name": evil, "ok": False}]))
    assert "<script>" not in box and "&lt;script&gt;" in box


def test_sparkline_needs_two_points_and_spans_the_box() -> None:
    assert digest.sparkline([("2026-W48", 1.0)]) == ""
    svg = digest.sparkline([("W1", 1.0), ("W2", 3.0), ("W3", 2.0)], width=100, height=20)
    coords = re.search(r" points='([^']+)'", svg)
    assert coords is not None
    xs, ys = zip(*(map(float, p.split(",")) for p in coords.group(1).split()), strict=True)
    assert xs == tuple(sorted(xs)) and min(xs) == 3.0 and max(xs) == 97.0
    assert min(ys) == 3.0 and max(ys) == 17.0  # highest value at the top
    assert "W2: 3" in svg and "data-points='3'" in svg


@given(st.lists(st.floats(-1e9, 1e9), min_size=2, max_size=30))
def test_sparkline_points_stay_inside_the_box(values: list[float]) -> None:
    svg = digest.sparkline([(f"W{i}", v) for i, v in enumerate(values)], width=110, height=26)
    coords = re.search(r" points='([^']+)'", svg)
    assert coords is not None
    for point in coords.group(1).split():
        x, y = map(float, point.split(","))
        assert 0 <= x <= 110 and 0 <= y <= 26


def test_index_table_lists_failures_and_broken_budgets_first() -> None:
    ok = _summary({"rate": 0.9}, [{"name": "rate", "ok": True}], week="W2")
    broken = _summary({"rate": 0.5}, [{"name": "rate", "ok": False}], week="W2")
    failed = {"ok": False, "error": "boom", "week": "W2"}
    history = {
        "fine": [_summary({"rate": 0.8}, week="W1"), ok],
        "bad": [broken],
        "crashed": [failed],
    }
    table = digest.index_table(history, {"fine": "W2/fine.html"})
    assert table.index(">crashed<") < table.index(">bad<") < table.index(">fine<")
    assert table.count("<svg") == 1  # only "fine" has two weeks of its figure
    assert "href='W2/fine.html'" in table


def test_worse_table_names_what_got_worse_since_the_week_before() -> None:
    key = [{"name": "p95_ms", "better": "lower"}, {"name": "rate", "better": "higher"}]
    before = _summary({"p95_ms": 200.0, "rate": 0.8}, [{"name": "p95", "ok": True}], week="W1")
    now = _summary(
        {"p95_ms": 350.0, "rate": 0.9},
        [{"name": "p95", "ok": False, "message": "350 > 300"}],
        week="W2",
        key=key,
    )
    table = digest.worse_table({"latency": [before, now]})
    assert "budget p95" in table and "350 &gt; 300" in table
    assert ">p95_ms<" in table and ">rate<" not in table  # rate got better
    quiet = digest.worse_table({"latency": [now]})
    assert "Nothing got worse" in quiet


def test_number_reads_as_a_reader_reads_it() -> None:
    assert [digest.number(v) for v in (1234, 0.690123, 41.456, 12345.6, None, float("nan"))] == [
        "1,234",
        "0.6901",
        "41.46",
        "12,346",
        "n/a",
        "n/a",
    ]
