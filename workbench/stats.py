"""Paired statistics for comparing a baseline run with a candidate run case by case.

Everything here works on paired units (the same case in both runs): bootstrap intervals for the
change in a statistic, an exact McNemar test on pass/fail flips, pass@k and pass^k, and the
agreement of repeated verdicts. Bootstraps are vectorised: each chunk of resamples is one index
matrix, so 30,000 pairs x 2,000 resamples take a fraction of a second.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binom

from workbench import text
from workbench.errors import ConfigError

__all__ = [
    "Interval",
    "McNemar",
    "consistency",
    "mcnemar_exact",
    "paired_bootstrap",
    "pass_at_k",
    "pass_hat_k",
    "percentile",
]

# Index-matrix cells drawn per chunk (int32): bounds memory at a few tens of MB per chunk.
_CHUNK_CELLS: Final = 1 << 22
_PERCENTILE = re.compile(r"p(\d+(?:\.\d*)?)")

_Floats = NDArray[np.float64]
_Indices = NDArray[np.int32]
_Statistic = Callable[[_Indices], _Floats]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval over ``n`` paired units."""

    estimate: float
    low: float
    high: float
    level: float = 0.95
    n: int = 0

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero (False for NaN bounds)."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict, for tables and JSON."""
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "n": self.n,
        }


@dataclass(frozen=True)
class McNemar:
    """Discordant pairs of two pass/fail runs and the exact two-sided p-value."""

    b: int
    c: int
    p_value: float

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict, for tables and JSON."""
        return {"b": self.b, "c": self.c, "p_value": self.p_value}


def paired_bootstrap(
    base: ArrayLike,
    cand: ArrayLike,
    *,
    statistic: str = "mean",
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    clusters: ArrayLike | None = None,
) -> Interval:
    """Percentile-bootstrap CI for ``statistic(cand) - statistic(base)``, resampling pairs.

    Args:
        statistic: ``"mean"``, ``"sum"`` or a percentile such as ``"p50"``, ``"p95"``, ``"p99"``
            (then the delta of the two percentiles, both taken on the same resampled pairs).
        clusters: optional group label per pair (e.g. the case id when a case was repeated);
            whole clusters are resampled, because repeats of one case are not independent.

    Pairs with a NaN on either side are dropped. With fewer than two pairs (or clusters) the
    bounds are NaN. The same inputs and seed always give the same interval.
    """
    q = _parse_statistic(statistic)
    if not 0 < level < 1:
        raise ConfigError(f"level must be between 0 and 1 (exclusive), got {level!r}")
    resamples = _as_int(resamples, "resamples")
    if resamples < 1:
        raise ConfigError(f"resamples must be at least 1, got {resamples}")
    b = _as_1d_float(base, "base")
    c = _as_1d_float(cand, "cand")
    if b.shape != c.shape:
        raise ConfigError(
            f"base and cand must pair up: got {b.size} and {c.size} values; "
            "align both runs on the same cases first"
        )
    keep = ~(np.isnan(b) | np.isnan(c))
    b, c = b[keep], c[keep]
    codes = _cluster_codes(clusters, keep)
    n = int(b.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, level, 0)
    groups = _Groups(codes if codes is not None else np.arange(n))
    stat = (
        _percentile_statistic(b, c, groups, q)
        if q is not None
        else _sum_statistic(b, c, groups, statistic == "mean")
    )
    estimate = float(stat(np.arange(groups.count, dtype=np.int32)[None, :])[0])
    if n < 2 or groups.count < 2:
        return Interval(estimate, math.nan, math.nan, level, n)
    diff = c - b
    if statistic == "mean" and np.all(diff == diff[0]):
        # No spread at all: every resample has the same mean, so avoid ulp noise in the bounds.
        return Interval(estimate, estimate, estimate, level, n)

    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // (groups.count * groups.width))
    values = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        idx = rng.integers(0, groups.count, size=(stop - start, groups.count), dtype=np.int32)
        values[start:stop] = stat(idx)
    tail = (1 - level) / 2
    # Both bounds as lower-tail quantiles, so swapping base and cand negates the interval exactly.
    low = float(np.quantile(values, tail))
    high = -float(np.quantile(-values, tail))
    return Interval(estimate, low, high, level, n)


def mcnemar_exact(base_pass: ArrayLike, cand_pass: ArrayLike) -> McNemar:
    """Exact McNemar test on paired pass/fail verdicts; ``b`` counts regressions, ``c`` fixes."""
    base = _as_1d_bool(base_pass, "base_pass")
    cand = _as_1d_bool(cand_pass, "cand_pass")
    if base.shape != cand.shape:
        raise ConfigError(
            f"base_pass and cand_pass must pair up: got {base.size} and {cand.size} verdicts"
        )
    b = int(np.count_nonzero(base & ~cand))
    c = int(np.count_nonzero(~base & cand))
    return McNemar(b, c, _binom_two_sided(b, c))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): ``1 - C(n-c, k) / C(n, k)`` for c passes in n samples."""
    n, c, k = _check_nck(n, c, k)
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: chance that k of the n samples, drawn without replacement, all pass: C(c,k)/C(n,k)."""
    n, c, k = _check_nck(n, c, k)
    if c < k:
        return 0.0
    top = np.arange(c - k + 1, c + 1, dtype=np.float64)
    bottom = np.arange(n - k + 1, n + 1, dtype=np.float64)
    return float(np.prod(top / bottom))


def consistency(verdicts: ArrayLike) -> float:
    """Share of one case's repeats that agree with its majority verdict (NaN when there are none)."""
    arr = np.asarray(verdicts).ravel()
    if arr.dtype.kind == "f":
        arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan
    _, counts = np.unique(arr, return_counts=True)
    return float(counts.max() / arr.size)


def percentile(values: ArrayLike, q: float) -> float:
    """The q-th percentile (0-100, linear interpolation) ignoring NaN; NaN when nothing is left."""
    if not 0 <= q <= 100:
        raise ConfigError(f"percentile q must be between 0 and 100, got {q!r}")
    return text.percentile(_as_1d_float(values, "values"), q, math.nan)


class _Groups:
    """Paired units grouped into clusters: a padded (clusters x width) matrix of unit indices."""

    def __init__(self, codes: NDArray[np.intp]) -> None:
        n = codes.size
        self.sizes = np.bincount(codes)
        self.count = int(self.sizes.size)
        self.width = int(self.sizes.max())
        self.equal = bool(np.all(self.sizes == self.width))
        self.codes = codes
        if self.width == 1:
            self.members = np.argsort(codes)[:, None]  # cluster g holds unit members[g]
            return
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate(([0], np.cumsum(self.sizes)[:-1]))
        slot = np.arange(n) - starts[codes[order]]
        # Padding points at unit n, a sentinel that sorts after every real unit.
        self.members = np.full((self.count, self.width), n, dtype=np.intp)
        self.members[codes[order], slot] = order

    def units(self, idx: _Indices) -> NDArray[np.int64]:
        """How many units each resample (one row of cluster indices) holds."""
        if self.equal:
            return np.full(idx.shape[0], self.count * self.width, dtype=np.int64)
        return np.asarray(np.take(self.sizes, idx).sum(axis=1), dtype=np.int64)


def _sum_statistic(b: _Floats, c: _Floats, groups: _Groups, mean: bool) -> _Statistic:
    """Resampled sum (or mean) of the paired differences, from per-cluster sums."""
    diff = c - b
    if groups.width == 1:
        totals = diff[groups.members[:, 0]]
    else:
        totals = np.bincount(groups.codes, weights=diff, minlength=groups.count).astype(np.float64)

    def stat(idx: _Indices) -> _Floats:
        sums = np.take(totals, idx).sum(axis=1)
        return np.asarray(sums / groups.units(idx) if mean else sums, dtype=np.float64)

    return stat


def _percentile_statistic(b: _Floats, c: _Floats, groups: _Groups, q: float) -> _Statistic:
    """Resampled ``pct(cand) - pct(base)``, via order statistics of precomputed ranks."""
    sides = [_RankedSide(x, groups) for x in (b, c)]

    def stat(idx: _Indices) -> _Floats:
        last = groups.units(idx) - 1
        pos = last * (q / 100)
        k = np.floor(pos)
        frac = pos - k
        base_pct, cand_pct = (
            side.percentile(idx, k.astype(np.int64), frac, last) for side in sides
        )
        return cand_pct - base_pct

    return stat


class _RankedSide:
    """One run's values, sorted once, with each cluster's members replaced by their ranks."""

    def __init__(self, x: _Floats, groups: _Groups) -> None:
        order = np.argsort(x, kind="stable")
        self.sorted = x[order]
        rank = np.empty(x.size + 1, dtype=np.int32)
        rank[order] = np.arange(x.size, dtype=np.int32)
        rank[x.size] = x.size  # the padding sentinel ranks after every real value
        # One row per member slot: gathering flat int32 rows is several times faster than
        # gathering (clusters x width) rows.
        self.slots = np.ascontiguousarray(rank[groups.members].T)

    def percentile(
        self,
        idx: _Indices,
        k: NDArray[np.int64],
        frac: _Floats,
        last: NDArray[np.int64],
    ) -> _Floats:
        """Linear-interpolated percentile of each resample (one row of ``idx`` per resample)."""
        r = np.concatenate([np.take(slot, idx) for slot in self.slots], axis=1)
        lo, hi = _order_pair(r, k, last)
        a, bb = self.sorted[lo], self.sorted[hi]
        step = bb - a
        # numpy's lerp: exact at both ends, monotone in between.
        return np.asarray(np.where(frac >= 0.5, bb - step * (1 - frac), a + step * frac))


def _order_pair(
    r: NDArray[np.int32], k: NDArray[np.int64], last: NDArray[np.int64]
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Per row, the k-th and (k+1)-th smallest values (0-based, the second capped at ``last``).

    Partitions ``r`` in place: once at the smallest k, then the tail just far enough to cover
    the largest k + 1, so only a short head is sorted even when k differs between rows.
    """
    kmin = int(k.min())
    r.partition(kmin, axis=1)
    tail = r[:, kmin:]
    span = int(k.max()) - kmin + 2
    if span < tail.shape[1]:
        tail.partition(span - 1, axis=1)
    head = np.sort(tail[:, :span], axis=1)
    rows = np.arange(r.shape[0])
    return head[rows, k - kmin], head[rows, np.minimum(k + 1, last) - kmin]


def _binom_two_sided(b: int, c: int) -> float:
    """Exact two-sided binomial p-value of b successes in b + c trials at p = 0.5."""
    if b + c == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(b, c), b + c, 0.5)))


def _parse_statistic(statistic: str) -> float | None:
    """None for "mean"/"sum", the percentile (0-100) for "pNN"; ConfigError otherwise."""
    if statistic in ("mean", "sum"):
        return None
    match = _PERCENTILE.fullmatch(statistic) if isinstance(statistic, str) else None
    if match is None or not 0 <= float(match.group(1)) <= 100:
        raise ConfigError(
            f"unknown statistic {statistic!r}: use 'mean', 'sum' or a percentile like 'p95'"
        )
    return float(match.group(1))


def _cluster_codes(clusters: ArrayLike | None, keep: NDArray[np.bool_]) -> NDArray[np.intp] | None:
    """Cluster labels of the kept pairs as codes 0..G-1, or None without clusters."""
    if clusters is None:
        return None
    labels = np.asarray(clusters)
    if labels.ndim != 1 or labels.size != keep.size:
        raise ConfigError(
            f"clusters must hold one label per pair: got shape {labels.shape} for {keep.size} pairs"
        )
    _, codes = np.unique(labels[keep], return_inverse=True)
    return np.asarray(codes, dtype=np.intp).ravel()


def _as_1d_float(values: ArrayLike, name: str) -> _Floats:
    """A 1-D float64 copy of ``values``; ConfigError when that is impossible."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _as_1d_bool(values: ArrayLike, name: str) -> NDArray[np.bool_]:
    """A 1-D bool array; values must be booleans or 0/1."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "iuf" or not np.all((arr == 0) | (arr == 1)):
            raise ConfigError(f"{name} must hold pass/fail booleans (or 0/1), got {arr.dtype}")
        arr = arr == 1
    return arr


def _as_int(value: object, name: str) -> int:
    """``value`` as an int (bool excluded); ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _check_nck(n: int, c: int, k: int) -> tuple[int, int, int]:
    """Validate sample count n, pass count c and draw size k for pass@k and pass^k."""
    n, c, k = _as_int(n, "n"), _as_int(c, "c"), _as_int(k, "k")
    if n < 1 or not 0 <= c <= n:
        raise ConfigError(f"need n >= 1 and 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ConfigError(f"k must be between 1 and n={n}, got k={k}")
    return n, c, k
