"""Latency and fault specs of the demo model server: parsing, round trips, sampling, the fault mix."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.demo.faults import DEFAULT_KINDS, FaultSpec, LatencySpec
from workbench.errors import ConfigError


def test_default_fault_mix() -> None:
    spec = FaultSpec.parse(0.25)
    assert tuple(k for k, _ in spec.rates) == DEFAULT_KINDS
    assert all(r == pytest.approx(0.05) for _, r in spec.rates)
    assert spec.total == pytest.approx(0.25)
    assert FaultSpec.parse(0.0).rates == ()


def test_fault_spec_parsing() -> None:
    even = FaultSpec.parse(0.1, "timeout, 429")
    assert even.rates == (("429", 0.05), ("timeout", 0.05))
    per_kind = FaultSpec.parse(0.0, "500=0.02,429=0.05")
    assert per_kind == FaultSpec.parse("429=0.05,500=0.02")
    assert per_kind.rate("429") == 0.05 and per_kind.rate("reset") == 0.0
    assert per_kind.total == pytest.approx(0.07)
    assert FaultSpec.parse(str(per_kind)) == per_kind
    assert per_kind.pick(0.01) == "429" and per_kind.pick(0.06) == "500"
    assert per_kind.pick(0.5) is None
    for bad in [(0.1, "429,boom"), (1.5, None), (0.0, "429=0.7,500=0.6"), (0.3, "429=0.1")]:
        with pytest.raises(ConfigError):
            FaultSpec.parse(*bad)
    with pytest.raises(ConfigError, match="known kinds"):
        FaultSpec.parse(0.1, "teapot")


def test_latency_spec_parsing() -> None:
    assert LatencySpec.parse("0") == LatencySpec()
    assert LatencySpec.parse("50") == LatencySpec(50.0)
    assert LatencySpec.parse(" 80 , 400 ") == LatencySpec(80.0, 400.0)
    assert LatencySpec.parse("80,80") == LatencySpec(80.0)
    assert LatencySpec.parse("80,400").sigma == pytest.approx(math.log(5) / 1.645)
    for bad in ["", "abc", "400,80", "1,2,3", "-5", "0,100", "nan"]:
        with pytest.raises(ConfigError):
            LatencySpec.parse(bad)


def test_lognormal_median_and_p95() -> None:
    spec = LatencySpec.parse("80,400")
    rng = random.Random(1)
    samples = sorted(spec.sample(rng) * 1000 for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(80, rel=0.05)
    assert samples[int(0.95 * len(samples))] == pytest.approx(400, rel=0.1)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.integers(0, 2**32))
def test_fixed_latency_is_always_the_fixed_value(ms: float, seed: int) -> None:
    spec = LatencySpec(ms)
    rng = random.Random(seed)
    assert all(spec.sample(rng) == ms / 1000 for _ in range(5))
    assert LatencySpec.parse(str(spec)) == spec


@given(st.floats(0.001, 1e4), st.floats(1.0, 100.0))
def test_latency_spec_round_trips(median: float, spread: float) -> None:
    spec = LatencySpec(median, median * spread)
    assert LatencySpec.parse(str(spec)) == spec
