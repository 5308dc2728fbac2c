"""LRU miss-ratio curves: exact stack distances against brute force, TTL, bytes, SHARDS."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import mrc as mrc_module
from workbench.errors import ConfigError
from workbench.mrc import (
    COLD,
    EXPIRED,
    mrc,
    mrc_error,
    mrc_figure,
    shards_mrc,
    simulate_lru,
    stack_distances,
)


def zipf_trace(n: int, keys: int, alpha: float, seed: int) -> np.ndarray:
    """n requests over `keys` keys with Zipf(alpha) popularity, key ids shuffled."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, keys + 1) ** alpha)
    ranks = np.searchsorted(cdf / cdf[-1], rng.random(n))
    return rng.permutation(keys)[ranks]


# -- exact MRC ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "trace",
    [
        np.random.default_rng(1).integers(0, 40, 2_000),
        zipf_trace(3_000, 200, 0.9, seed=2),
    ],
    ids=["uniform", "zipf"],
)
def test_exact_mrc_equals_brute_force_lru(trace: np.ndarray) -> None:
    curve = mrc(trace)
    for capacity in (1, 2, 5, 10, 25, 40, 100, 250):
        assert curve.miss_ratio(capacity) == pytest.approx(simulate_lru(trace, capacity))
    assert curve.unique_keys == len(np.unique(trace))
    assert curve.cold_misses == curve.unique_keys


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=60),
    st.lists(st.integers(0, 12), min_size=10, max_size=10),
)
def test_exact_mrc_matches_lru_on_any_small_trace(keys: list[int], key_sizes: list[int]) -> None:
    objects = mrc(keys)
    sizes = [key_sizes[k] for k in keys]
    in_bytes = mrc(keys, sizes=sizes)
    for capacity in range(12):
        assert objects.miss_ratio(capacity) == pytest.approx(simulate_lru(keys, capacity))
    for capacity in range(0, 70, 3):
        expected = simulate_lru(keys, capacity, sizes=sizes)
        assert in_bytes.miss_ratio(capacity) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 15), max_size=120), st.integers(0, 2**31))
def test_numpy_fallback_equals_compiled_kernel(keys: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = np.asarray(keys, dtype=np.int64)
    sizes = rng.integers(1, 50, 16)[ids]
    times = np.cumsum(rng.exponential(1.0, ids.size))
    for weights in (None, sizes):
        others, own = mrc_module._numpy_distances(ids, weights, times, 2.0)
        reused = others >= 0
        others[reused] += 1 if own is None else own[reused]
        assert (
            others.tolist() == stack_distances(ids, sizes=weights, times=times, ttl_s=2.0).tolist()
        )


def test_string_keys_and_sparse_integer_keys() -> None:
    words = ["a", "b", "a", "c", "b", "a"]
    assert stack_distances(words).tolist() == [COLD, COLD, 2, COLD, 3, 3]
    sparse = [10**12, 7, 10**12, -5, 7, 10**12]
    assert stack_distances(sparse).tolist() == [COLD, COLD, 2, COLD, 3, 3]


def test_byte_mrc_on_a_hand_computed_example() -> None:
    keys = ["a", "b", "a", "c", "b"]
    sizes = [10, 20, 10, 5, 20]
    # a: b (20) since, plus a itself (10) = 30; b: a and c (15) since, plus b (20) = 35.
    assert stack_distances(keys, sizes=sizes).tolist() == [COLD, COLD, 30, COLD, 35]
    curve = mrc(keys, sizes=sizes)
    assert curve.unit == "bytes"
    assert curve.miss_ratio([29, 30, 34, 35, 1000]).tolist() == [1.0, 0.8, 0.8, 0.6, 0.6]
    for capacity in (29, 30, 34, 35):
        assert curve.miss_ratio(capacity) == simulate_lru(keys, capacity, sizes=sizes)
    assert curve.size_for(0.2) == 30
    assert curve.size_for(0.4) == 35
    assert curve.size_for(0.5) is None


def test_ttl_counts_expired_reuses_as_misses() -> None:
    keys = ["a", "b", "a", "a", "b"]
    times = [0.0, 1.0, 5.0, 100.0, 104.0]
    assert stack_distances(keys, times=times, ttl_s=10).tolist() == [
        COLD,
        COLD,
        2,
        EXPIRED,
        EXPIRED,
    ]
    assert stack_distances(keys, times=times).tolist() == [COLD, COLD, 2, 1, 2]
    with_ttl = mrc(keys, times=times, ttl_s=10)
    assert with_ttl.expired_misses == 2 and with_ttl.cold_misses == 4
    assert with_ttl.min_miss_ratio == pytest.approx(0.8)
    assert mrc(keys, times=times).min_miss_ratio == pytest.approx(0.4)
    with pytest.raises(ConfigError, match="ttl_s needs times"):
        stack_distances(keys, ttl_s=10)


def test_size_for_is_the_smallest_size_meeting_the_target() -> None:
    trace = zipf_trace(5_000, 500, 1.0, seed=3)
    curve = mrc(trace)
    for target in (0.3, 0.5, 0.7, 0.8):
        size = curve.size_for(target)
        assert size is not None
        assert 1 - simulate_lru(trace, size) >= target
        assert 1 - simulate_lru(trace, size - 1) < target
    assert curve.size_for(1 - curve.min_miss_ratio + 0.01) is None


def test_curve_grid_and_frame() -> None:
    curve = mrc(zipf_trace(2_000, 300, 0.8, seed=4), points=10)
    frame = curve.to_frame()
    assert list(frame.columns) == ["cache_size", "miss_ratio", "hit_ratio"]
    assert len(frame) == 10 and frame["cache_size"].is_monotonic_increasing
    assert frame["miss_ratio"].is_monotonic_decreasing
    log = mrc(zipf_trace(2_000, 300, 0.8, seed=4), grid="log", points=10)
    assert log.cache_sizes[0] == 1
    assert mrc([]).requests == 0


# -- SHARDS ------------------------------------------------------------------------


def test_shards_at_one_percent_is_within_002_of_exact_on_1m_requests() -> None:
    trace = zipf_trace(1_000_000, 100_000, 0.9, seed=7)
    exact = mrc(trace)
    estimate = shards_mrc(trace, rate=0.01, seed=0)
    assert 0.005 < estimate.sampled_requests / estimate.requests < 0.02
    assert mrc_error(exact, estimate) < 0.02


def test_shards_at_full_rate_is_exact_and_salts_change_the_sample() -> None:
    trace = zipf_trace(20_000, 2_000, 1.0, seed=5)
    assert mrc_error(mrc(trace), shards_mrc(trace, rate=1.0)) == 0.0
    a = shards_mrc(trace, rate=0.1, seed=1)
    again = shards_mrc(trace, rate=0.1, seed=1)
    other = shards_mrc(trace, rate=0.1, seed=2)
    assert a.sampled_requests == again.sampled_requests
    assert np.array_equal(a.step_sizes, again.step_sizes)
    assert a.sampled_requests != other.sampled_requests
    words = np.array([f"key-{k}" for k in trace])
    assert mrc_error(mrc(words), shards_mrc(words, rate=0.2)) < 0.05


def test_shards_rejects_bad_rates_and_error_needs_one_unit() -> None:
    with pytest.raises(ConfigError, match="rate"):
        shards_mrc([1, 2, 3], rate=0)
    with pytest.raises(ConfigError, match="resolution"):
        shards_mrc([1, 2, 3], rate=1e-9)
    with pytest.raises(ConfigError, match="bytes"):
        mrc_error(mrc([1, 2, 1]), mrc([1, 2, 1], sizes=[1, 1, 1]))


def test_mrc_figure_draws_one_line_per_curve() -> None:
    trace = zipf_trace(5_000, 500, 1.0, seed=6)
    fig = mrc_figure({"exact": mrc(trace), "shards": shards_mrc(trace, rate=0.1)}, log_x=True)
    assert [t.name for t in fig.data] == ["exact", "shards"]
    assert fig.layout.xaxis.type == "log"
