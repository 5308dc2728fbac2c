"""The shared text helpers: clipping, quoting values, numbers, percents and percentiles."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.text import (
    clip,
    clip_counted,
    finite,
    milliseconds,
    percent,
    percentile,
    show,
    show_repr,
)


def test_clip_keeps_short_text_and_ends_long_text_with_the_marker() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcdef", 4) == "abc…"
    assert clip("abcdef", 4, marker="...") == "a..."
    assert clip("abcdef", 0) == "…"  # a width below the marker's still says it was cut


def test_clip_counted_says_how_long_the_text_was() -> None:
    assert clip_counted("short", 500) == "short"
    assert clip_counted("x" * 12_345, 60) == "x" * 40 + "...(12,345 chars)"


def test_show_quotes_strings_and_writes_other_values_as_json() -> None:
    assert show("P2") == "'P2'"
    assert show({"a": [1, None, True]}) == '{"a": [1, null, true]}'
    assert show("é") == "'é'"
    assert show({"when": Fraction(1, 3)}) == '{"when": "1/3"}'  # no JSON form: its str
    assert show("x" * 100, 10) == "'xxxxxxxx…"


def test_show_repr_quotes_raw_input_of_any_type() -> None:
    assert show_repr({"a": None}) == "{'a': None}"
    assert show_repr("x" * 100) == repr("x" * 100)[:57] + "..."


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (2.5, 2.5), (np.float64(1.5), 1.5), (np.int64(7), 7.0), (-0.0, 0.0)],
)
def test_finite_takes_real_numbers(value: object, expected: float) -> None:
    assert finite(value) == expected


@pytest.mark.parametrize(
    "value", [True, False, None, "2.5", math.nan, math.inf, -math.inf, 10**400, [1], {}]
)
def test_finite_refuses_everything_else(value: object) -> None:
    assert finite(value) is None


def test_finite_reads_numeric_text_only_when_asked() -> None:
    assert finite(" 2.5 ", parse_text=True) == 2.5
    assert finite("1e3", parse_text=True) == 1000.0
    assert finite("nan", parse_text=True) is None
    assert finite("abc", parse_text=True) is None
    assert finite(True, parse_text=True) is None
    assert finite("2.5") is None


def test_percent_and_milliseconds() -> None:
    assert percent(0.125) == "12.5%"
    assert percent(0.123456, 2) == "12.35%"
    assert percent(None) == "n/a"
    assert milliseconds(1812.4) == "1,812 ms"
    assert milliseconds(None) == "n/a"


def test_percentile_skips_missing_values() -> None:
    assert percentile([1.0, math.nan, 3.0, 2.0], 50) == 2.0
    assert percentile([1.0, None, 3.0], 50) == 2.0
    assert percentile(np.arange(101.0), 95) == 95.0
    assert percentile(pd.Series([4.0, None, 8.0]), 50) == 6.0
    assert percentile((x for x in (1.0, 2.0, 3.0)), 100) == 3.0


def test_percentile_of_nothing_is_the_empty_value() -> None:
    assert percentile([], 50) is None
    assert percentile(np.array([math.nan]), 95) is None
    assert math.isnan(percentile(pd.Series([], dtype=float), 95, math.nan))


# --- properties -------------------------------------------------------------------------------


@given(st.text(), st.integers(min_value=1, max_value=200), st.sampled_from(["…", "...", ""]))
def test_clip_never_exceeds_the_width_and_keeps_a_prefix(
    text: str, width: int, marker: str
) -> None:
    clipped = clip(text, max(width, len(marker)), marker=marker)
    assert len(clipped) <= max(width, len(marker))
    if len(text) <= max(width, len(marker)):
        assert clipped == text
    else:
        assert clipped.endswith(marker)
        assert text.startswith(clipped[: len(clipped) - len(marker)])


@given(st.text(max_size=2000), st.integers(min_value=20, max_value=500))
def test_clip_counted_never_exceeds_the_width(text: str, width: int) -> None:
    clipped = clip_counted(text, width)
    assert len(clipped) <= width
    assert clipped == text or clipped.endswith(f"({len(text):,} chars)")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_round_trips_a_number_and_its_text(value: float) -> None:
    assert finite(value) == value
    assert finite(repr(value), parse_text=True) == value


@given(
    st.lists(st.floats(min_value=-1e9, max_value=1e9), min_size=1, max_size=50),
    st.floats(min_value=0, max_value=100),
    st.floats(min_value=0, max_value=100),
)
def test_percentile_lies_within_the_values_and_grows_with_q(
    values: list[float], q1: float, q2: float
) -> None:
    low, high = sorted((q1, q2))
    a, b = percentile(values, low), percentile(values, high)
    assert a is not None and b is not None
    assert min(values) <= a <= b <= max(values)
