"""Tests for workbench.stats: paired bootstrap, exact McNemar, pass@k, consistency, percentile."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import stats
from workbench.errors import ConfigError
from workbench.stats import (
    Interval,
    McNemar,
    consistency,
    mcnemar_exact,
    paired_bootstrap,
    pass_at_k,
    pass_hat_k,
    percentile,
)


def _shifted_pairs(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired scores: a per-case level shared by both runs, plus noise and a known shift."""
    rng = np.random.default_rng(seed)
    level = rng.normal(size=n)
    base = level + rng.normal(scale=0.5, size=n)
    cand = level + shift + rng.normal(scale=0.5, size=n)
    return base, cand


def _reference_bootstrap(
    base: np.ndarray,
    cand: np.ndarray,
    clusters: np.ndarray,
    q: float | None,
    resamples: int,
    seed: int,
    level: float = 0.95,
) -> tuple[float, float]:
    """A slow loop over the same cluster draws that paired_bootstrap makes for small inputs."""
    labels, codes = np.unique(clusters, return_inverse=True)
    members = [np.flatnonzero(codes == g) for g in range(labels.size)]
    idx = np.random.default_rng(seed).integers(
        0, labels.size, size=(resamples, labels.size), dtype=np.int32
    )
    values = []
    for row in idx:
        units = np.concatenate([members[g] for g in row])
        if q is None:
            values.append(np.mean(cand[units] - base[units]))
        else:
            values.append(np.percentile(cand[units], q) - np.percentile(base[units], q))
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


# --- paired_bootstrap: reproducibility and agreement with scipy -----------------------------


def test_same_seed_gives_identical_interval() -> None:
    base, cand = _shifted_pairs(500, 0.1, seed=1)
    for statistic in ("mean", "p95", "sum"):
        first = paired_bootstrap(base, cand, statistic=statistic, seed=42)
        again = paired_bootstrap(base.tolist(), cand.tolist(), statistic=statistic, seed=42)
        assert first == again


def test_different_seed_gives_different_bounds() -> None:
    base, cand = _shifted_pairs(500, 0.1, seed=1)
    one = paired_bootstrap(base, cand, seed=1)
    two = paired_bootstrap(base, cand, seed=2)
    assert one.estimate == two.estimate
    assert (one.low, one.high) != (two.low, two.high)


def test_mean_interval_agrees_with_scipy_bootstrap() -> None:
    shift = 0.3
    base, cand = _shifted_pairs(300, shift, seed=7)
    diff = cand - base
    ours = paired_bootstrap(base, cand, resamples=5000, seed=11)
    ref = scipy.stats.bootstrap(
        (diff,),
        np.mean,
        method="percentile",
        n_resamples=5000,
        rng=np.random.default_rng(12345),
    ).confidence_interval
    width = ref.high - ref.low
    assert ours.estimate == pytest.approx(diff.mean(), abs=1e-12)
    assert ours.n == 300
    assert abs(ours.low - ref.low) < 0.1 * width
    assert abs(ours.high - ref.high) < 0.1 * width
    assert ours.low < shift < ours.high
    assert ours.excludes_zero


def test_mean_interval_covers_true_shift_about_95_percent_of_the_time() -> None:
    shift = 0.2
    covered = 0
    for dataset in range(100):
        base, cand = _shifted_pairs(60, shift, seed=1000 + dataset)
        interval = paired_bootstrap(base, cand, resamples=400, seed=dataset)
        covered += interval.low <= shift <= interval.high
    assert 88 <= covered <= 99


def test_sum_interval_is_n_times_mean_interval() -> None:
    base, cand = _shifted_pairs(200, 0.1, seed=3)
    mean = paired_bootstrap(base, cand, seed=5)
    total = paired_bootstrap(base, cand, statistic="sum", seed=5)
    assert total.estimate == pytest.approx(float(np.sum(cand - base)))
    assert total.low == pytest.approx(200 * mean.low)
    assert total.high == pytest.approx(200 * mean.high)


# --- percentile statistics ------------------------------------------------------------------


def test_p95_interval_contains_true_p95_difference() -> None:
    rng = np.random.default_rng(21)
    n = 20_000
    base = rng.lognormal(mean=0.0, sigma=0.5, size=n)
    cand = rng.lognormal(mean=0.2, sigma=0.5, size=n)
    z95 = scipy.stats.norm.ppf(0.95)
    true_delta = math.exp(0.5 * z95) * (math.exp(0.2) - 1)
    interval = paired_bootstrap(base, cand, statistic="p95", resamples=1000, seed=3)
    assert interval.estimate == pytest.approx(
        np.percentile(cand, 95) - np.percentile(base, 95), rel=1e-12
    )
    assert interval.low < true_delta < interval.high
    assert interval.low > 0


@pytest.mark.parametrize("statistic", ["p0", "p50", "p99", "p100", "p12.5"])
def test_percentile_estimate_matches_numpy(statistic: str) -> None:
    base, cand = _shifted_pairs(101, 0.5, seed=4)
    q = float(statistic[1:])
    interval = paired_bootstrap(base, cand, statistic=statistic, resamples=200)
    expected = np.percentile(cand, q) - np.percentile(base, q)
    assert interval.estimate == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert interval.low <= interval.high


@pytest.mark.parametrize("q", [None, 5.0, 50.0, 95.0, 100.0])
def test_cluster_bootstrap_matches_slow_reference_with_unequal_clusters(q: float | None) -> None:
    rng = np.random.default_rng(8)
    sizes = rng.integers(1, 5, size=25)
    clusters = np.repeat([f"case-{i}" for i in range(25)], sizes)
    base = rng.normal(size=clusters.size)
    cand = base + rng.normal(0.2, 1.0, size=clusters.size)
    statistic = "mean" if q is None else f"p{q:g}"
    ours = paired_bootstrap(
        base, cand, statistic=statistic, resamples=300, seed=9, clusters=clusters
    )
    low, high = _reference_bootstrap(base, cand, clusters, q, resamples=300, seed=9)
    assert ours.low == pytest.approx(low, rel=1e-9, abs=1e-12)
    assert ours.high == pytest.approx(high, rel=1e-9, abs=1e-12)


# --- cluster bootstrap ----------------------------------------------------------------------


def test_cluster_interval_is_wider_when_repeats_are_correlated() -> None:
    rng = np.random.default_rng(5)
    cases, repeats = 150, 3
    case_effect = np.repeat(rng.normal(size=cases), repeats)  # shared by a case's repeats
    base = rng.normal(size=cases * repeats)
    cand = base + 0.1 + case_effect + rng.normal(scale=0.05, size=cases * repeats)
    case_ids = np.repeat(np.arange(cases), repeats)
    naive = paired_bootstrap(base, cand, seed=1)
    clustered = paired_bootstrap(base, cand, seed=1, clusters=case_ids)
    assert clustered.estimate == pytest.approx(naive.estimate)
    assert clustered.n == naive.n == cases * repeats
    assert clustered.high - clustered.low > 1.4 * (naive.high - naive.low)


def test_clusters_follow_nan_dropping_and_accept_any_labels() -> None:
    base = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    cand = np.array([1.5, 2.5, 3.0, 4.0, 6.0, np.nan])
    labels = ["a", "a", "b", "b", "c", "c"]
    got = paired_bootstrap(base, cand, clusters=labels, seed=3)
    keep = [0, 1, 3, 4]
    want = paired_bootstrap(base[keep], cand[keep], clusters=[labels[i] for i in keep], seed=3)
    assert got == want
    assert got.n == 4


def test_a_single_cluster_gives_nan_bounds() -> None:
    interval = paired_bootstrap([1.0, 2.0, 3.0], [2.0, 2.0, 5.0], clusters=[7, 7, 7])
    assert interval.estimate == pytest.approx(1.0)
    assert math.isnan(interval.low) and math.isnan(interval.high)


def test_clusters_of_wrong_length_raise() -> None:
    with pytest.raises(ConfigError, match="one label per pair"):
        paired_bootstrap([1.0, 2.0], [1.0, 3.0], clusters=[1, 2, 3])


# --- NaN handling, degenerate input and validation ------------------------------------------


def test_nan_pairs_are_dropped() -> None:
    base, cand = _shifted_pairs(50, 0.2, seed=2)
    holed_base, holed_cand = base.copy(), cand.copy()
    holed_base[[3, 10]] = np.nan
    holed_cand[[10, 20]] = np.nan
    keep = np.ones(50, dtype=bool)
    keep[[3, 10, 20]] = False
    got = paired_bootstrap(holed_base, holed_cand, seed=4)
    assert got == paired_bootstrap(base[keep], cand[keep], seed=4)
    assert got.n == 47


@pytest.mark.parametrize(
    ("base", "cand", "estimate"),
    [([], [], math.nan), ([np.nan, 1.0], [2.0, np.nan], math.nan), ([1.0], [3.0], 2.0)],
)
def test_fewer_than_two_pairs_give_nan_bounds(
    base: list[float], cand: list[float], estimate: float
) -> None:
    interval = paired_bootstrap(base, cand)
    assert math.isnan(interval.low) and math.isnan(interval.high)
    assert interval.estimate == pytest.approx(estimate, nan_ok=True)
    assert not interval.excludes_zero


def test_constant_differences_give_a_zero_width_interval() -> None:
    interval = paired_bootstrap([0.1, 0.2, 0.3, 0.4], [0.6, 0.7, 0.8, 0.9])
    assert interval.low == interval.estimate == interval.high
    assert interval.estimate == pytest.approx(0.5)
    clustered = paired_bootstrap(np.zeros(5), np.full(5, 0.1), clusters=[0, 0, 0, 1, 2])
    assert clustered.low == clustered.estimate == clustered.high


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"statistic": "median"}, "unknown statistic"),
        ({"statistic": "p101"}, "unknown statistic"),
        ({"statistic": "p"}, "unknown statistic"),
        ({"level": 1.0}, "level"),
        ({"level": 0.0}, "level"),
        ({"resamples": 0}, "resamples"),
        ({"resamples": 2.5}, "resamples"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.5, 3.5], **kwargs)  # type: ignore[arg-type]


def test_lengths_that_differ_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="pair up"):
        paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ConfigError, match="one-dimensional"):
        paired_bootstrap([[1.0, 2.0]], [[1.0, 2.0]])


def test_interval_helpers() -> None:
    assert Interval(0.2, 0.1, 0.3).excludes_zero
    assert Interval(-0.2, -0.3, -0.1).excludes_zero
    assert not Interval(0.1, -0.1, 0.3).excludes_zero
    assert not Interval(0.0, 0.0, 0.3).excludes_zero
    assert Interval(0.2, 0.1, 0.3, level=0.9, n=12).to_dict() == {
        "estimate": 0.2,
        "low": 0.1,
        "high": 0.3,
        "level": 0.9,
        "n": 12,
    }


def test_level_changes_width() -> None:
    base, cand = _shifted_pairs(200, 0.1, seed=6)
    wide = paired_bootstrap(base, cand, level=0.99)
    narrow = paired_bootstrap(base, cand, level=0.8)
    assert wide.level == 0.99
    assert wide.low < narrow.low < narrow.high < wide.high


# --- McNemar ----------------------------------------------------------------------------------


def _verdicts(b: int, c: int, both: int = 3, neither: int = 2) -> tuple[list[bool], list[bool]]:
    """Paired verdicts with b regressions, c fixes and some concordant pairs, shuffled."""
    pairs = [(True, False)] * b + [(False, True)] * c
    pairs += [(True, True)] * both + [(False, False)] * neither
    order = np.random.default_rng(b * 1000 + c).permutation(len(pairs))
    return [pairs[i][0] for i in order], [pairs[i][1] for i in order]


@pytest.mark.parametrize(
    ("b", "c"),
    [(0, 0), (0, 5), (7, 0), (1, 1), (10, 12), (12, 10), (3, 17), (100, 130), (130, 100)],
)
def test_mcnemar_counts_and_matches_scipy_binomtest(b: int, c: int) -> None:
    base, cand = _verdicts(b, c)
    result = mcnemar_exact(base, cand)
    assert (result.b, result.c) == (b, c)
    expected = 1.0 if b + c == 0 else scipy.stats.binomtest(b, b + c, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_matches_scipy_on_a_grid() -> None:
    for b, c in itertools.product(range(26), repeat=2):
        if b + c == 0:
            continue
        got = stats._binom_two_sided(b, c)
        assert got == pytest.approx(scipy.stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_mcnemar_accepts_zero_one_and_rejects_other_values() -> None:
    assert mcnemar_exact([1, 1, 0, 0], [1, 0, 1, 1]) == McNemar(b=1, c=2, p_value=1.0)
    with pytest.raises(ConfigError, match="pass/fail"):
        mcnemar_exact([0.5, 1.0], [1.0, 1.0])
    with pytest.raises(ConfigError, match="pass/fail"):
        mcnemar_exact([np.nan, 1.0], [1.0, 1.0])
    with pytest.raises(ConfigError, match="pair up"):
        mcnemar_exact([True, False], [True])


def test_mcnemar_to_dict() -> None:
    assert McNemar(2, 9, 0.065).to_dict() == {"b": 2, "c": 9, "p_value": 0.065}


# --- pass@k and pass^k ----------------------------------------------------------------------


def _brute_force(n: int, c: int, k: int) -> tuple[float, float]:
    """pass@k and pass^k by enumerating every k-subset of n samples whose first c pass."""
    subsets = list(itertools.combinations(range(n), k))
    any_pass = sum(any(i < c for i in s) for s in subsets)
    all_pass = sum(all(i < c for i in s) for s in subsets)
    return any_pass / len(subsets), all_pass / len(subsets)


def test_pass_at_k_and_pass_hat_k_match_enumeration() -> None:
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                at_k, hat_k = _brute_force(n, c, k)
                assert pass_at_k(n, c, k) == pytest.approx(at_k, abs=1e-12)
                assert pass_hat_k(n, c, k) == pytest.approx(hat_k, abs=1e-12)


@pytest.mark.parametrize(("n", "c"), [(1, 0), (1, 1), (10, 3), (200, 17), (7, 7)])
def test_pass_at_1_and_pass_hat_1_are_the_pass_rate(n: int, c: int) -> None:
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)
    assert pass_hat_k(n, c, 1) == pytest.approx(c / n)


def test_pass_at_k_is_stable_for_large_n() -> None:
    n, c, k = 2000, 37, 100
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)
    hat = Fraction(math.comb(1500, 40), math.comb(n, 40))
    assert pass_hat_k(n, 1500, 40) == pytest.approx(float(hat), rel=1e-12)


def test_pass_k_edges() -> None:
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # only 2 failures: any 3 samples hold a pass
    assert pass_hat_k(5, 5, 5) == 1.0
    assert pass_hat_k(5, 2, 3) == 0.0
    assert pass_hat_k(5, 0, 1) == 0.0
    assert pass_hat_k(4, 3, 2) == pytest.approx(0.5)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 4), (3, 4, 1), (0, 0, 1), (3, 1, 0), (3, -1, 1)])
def test_pass_k_rejects_bad_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ConfigError):
        pass_at_k(n, c, k)
    with pytest.raises(ConfigError):
        pass_hat_k(n, c, k)


def test_pass_k_rejects_non_integers() -> None:
    with pytest.raises(ConfigError, match="integer"):
        pass_at_k(3.0, 1, 1)  # type: ignore[arg-type]
    assert pass_at_k(np.int64(4), 2, 2) == pytest.approx(5 / 6)  # type: ignore[arg-type]


# --- consistency and percentile ---------------------------------------------------------------


def test_consistency() -> None:
    assert consistency([True, True, True]) == 1.0
    assert consistency([True, False, True]) == pytest.approx(2 / 3)
    assert consistency([0, 1, 1, 0]) == 0.5
    assert consistency(["A", "B", "A", "A", "C"]) == pytest.approx(3 / 5)
    assert consistency([1.0, np.nan, 1.0, 0.0]) == pytest.approx(2 / 3)
    assert math.isnan(consistency([]))
    assert math.isnan(consistency([np.nan]))


def test_percentile_is_nan_safe() -> None:
    assert percentile([1.0, np.nan, 3.0, 2.0], 50) == 2.0
    assert percentile(range(101), 95) == 95.0
    assert math.isnan(percentile([], 50))
    assert math.isnan(percentile([np.nan, np.nan], 99))
    with pytest.raises(ConfigError, match="between 0 and 100"):
        percentile([1.0], 101)


# --- properties -------------------------------------------------------------------------------

_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
_pairs = st.integers(min_value=0, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(_values, min_size=n, max_size=n), st.lists(_values, min_size=n, max_size=n)
    )
)


@settings(max_examples=150, deadline=None)
@given(pairs=_pairs, seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_mean_estimate_lies_inside_its_interval(
    pairs: tuple[list[float], list[float]], seed: int
) -> None:
    base, cand = pairs
    interval = paired_bootstrap(base, cand, resamples=200, seed=seed)
    if math.isfinite(interval.low) and math.isfinite(interval.high):
        assert interval.low <= interval.estimate <= interval.high


@settings(max_examples=100, deadline=None)
@given(
    pairs=_pairs,
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    statistic=st.sampled_from(["mean", "sum", "p50", "p95"]),
    clustered=st.booleans(),
)
def test_swapping_runs_negates_the_interval(
    pairs: tuple[list[float], list[float]], seed: int, statistic: str, clustered: bool
) -> None:
    base, cand = pairs
    clusters = [i // 2 for i in range(len(base))] if clustered else None
    forward = paired_bootstrap(
        base, cand, statistic=statistic, resamples=200, seed=seed, clusters=clusters
    )
    backward = paired_bootstrap(
        cand, base, statistic=statistic, resamples=200, seed=seed, clusters=clusters
    )
    np.testing.assert_array_equal(
        [backward.estimate, backward.low, backward.high],
        [-forward.estimate, -forward.high, -forward.low],
    )


@settings(max_examples=200, deadline=None)
@given(b=st.integers(min_value=0, max_value=400), c=st.integers(min_value=0, max_value=400))
def test_mcnemar_p_value_is_a_symmetric_probability(b: int, c: int) -> None:
    forward = mcnemar_exact(*_verdicts(b, c))
    backward = mcnemar_exact(*_verdicts(c, b))
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == backward.p_value
    assert (backward.b, backward.c) == (c, b)
