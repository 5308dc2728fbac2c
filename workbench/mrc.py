"""LRU miss-ratio curves: exact stack distances in one pass, TTL-aware, and SHARDS sampling.

Sizing follows Mattson et al. (1970): LRU has the inclusion property, so one pass over the
key sequence gives each request's stack distance, and a request hits in a cache of size C
iff its distance is at most C. Distances here are 1-based depths in the LRU stack just
before the request (1 = the most recently used object); in bytes, the depth is the summed
size of that object and every distinct object touched since its last access. The exact
pass is a Fenwick tree over access times (numba when installed, a vectorised NumPy
divide-and-conquer otherwise); SHARDS (Waldspurger et al., FAST'15) samples keys by a
salted hash and scales distances by 1/R.
"""

from __future__ import annotations

import functools
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.typing import ArrayLike

from workbench.errors import ConfigError

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "COLD",
    "EXPIRED",
    "MissRatioCurve",
    "mrc",
    "mrc_error",
    "mrc_figure",
    "shards_mrc",
    "simulate_lru",
    "stack_distances",
]

Grid = Literal["linear", "log"]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

COLD = -1  # stack distance of a key's first access
EXPIRED = -2  # stack distance of a reuse after its TTL ran out (a miss at every size)
_SHARDS_BITS = 24  # sample when the top 24 bits of the 64-bit hash are below T = R * 2**24
_U64 = 0xFFFFFFFFFFFFFFFF


# -- exact stack distances ---------------------------------------------------------


def _fenwick_counts(
    ids: IntArray, n_ids: int, times: FloatArray, ttl: float, use_ttl: bool
) -> IntArray:
    # A mark at the latest access of every key; distinct keys since p = marks in (p, i).
    # Queries and updates walk only until the paths from p and i meet: O(log(i - p)).
    n = ids.shape[0]
    last = np.full(n_ids, -1, np.int64)
    tree = np.zeros(n + 1, np.int32)
    out = np.empty(n, np.int64)
    for i in range(n):
        k = ids[i]
        p = last[k]
        b = i + 1
        if p < 0:
            out[i] = -1
        else:
            x = i
            y = p + 1
            s = 0
            while x != y:
                if x > y:
                    s += tree[x]
                    x &= x - 1
                else:
                    s -= tree[y]
                    y &= y - 1
            out[i] = -2 if use_ttl and times[i] - times[p] > ttl else s
            a = p + 1
            while a < b:
                tree[a] -= 1
                a += a & -a
            while b < a and b <= n:
                tree[b] += 1
                b += b & -b
            last[k] = i
            continue
        while b <= n:
            tree[b] += 1
            b += b & -b
        last[k] = i
    return out


def _fenwick_bytes(
    ids: IntArray, n_ids: int, weights: IntArray, times: FloatArray, ttl: float, use_ttl: bool
) -> tuple[IntArray, IntArray]:
    # As _fenwick_counts, with each mark weighted by the size at that access.
    n = ids.shape[0]
    last = np.full(n_ids, -1, np.int64)
    size = np.zeros(n_ids, np.int64)
    tree = np.zeros(n + 1, np.int64)
    out = np.empty(n, np.int64)
    own = np.zeros(n, np.int64)
    for i in range(n):
        k = ids[i]
        p = last[k]
        w = weights[i]
        b = i + 1
        if p < 0:
            out[i] = -1
            while b <= n:
                tree[b] += w
                b += b & -b
        else:
            old = size[k]
            x = i
            y = p + 1
            s = 0
            while x != y:
                if x > y:
                    s += tree[x]
                    x &= x - 1
                else:
                    s -= tree[y]
                    y &= y - 1
            out[i] = -2 if use_ttl and times[i] - times[p] > ttl else s
            own[i] = old
            a = p + 1
            while a < b:
                tree[a] -= old
                a += a & -a
            while b <= n:
                if b < a:
                    tree[b] += w
                elif w != old:
                    tree[b] += w - old
                else:
                    break
                b += b & -b
        last[k] = i
        size[k] = w
    return out, own


@functools.cache
def _kernels() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """The numba-compiled Fenwick kernels, or None without numba (or WORKBENCH_NO_NUMBA=1)."""
    if os.environ.get("WORKBENCH_NO_NUMBA", "") not in ("", "0"):
        return None
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True)
    return jit(_fenwick_counts), jit(_fenwick_bytes)


def _greater_before(x: IntArray, w: IntArray) -> IntArray:
    # For each t, the summed w[s] over s < t with x[s] > x[t] (x distinct), by bottom-up
    # merging: at width k, right halves of 2k-blocks query their sorted left halves.
    n = x.shape[0]
    out = np.zeros(n, np.int64)
    if n < 2:
        return out
    pos = np.arange(n, dtype=np.int64)
    big = int(x.max()) + 1
    vals, wts = x.copy(), w.copy()
    width = 1
    while width < n:
        block = pos // (2 * width)
        right = ((pos // width) & 1).astype(bool)
        left = ~right
        left_keys = block[left] * big + vals[left]
        csum = np.concatenate(([0], np.cumsum(wts[left])))
        first_greater = np.searchsorted(left_keys, block[right] * big + x[right], side="right")
        block_end = np.searchsorted(left_keys, (block[right] + 1) * big, side="left")
        out[right] += csum[block_end] - csum[first_greater]
        order = np.argsort(block * big + vals, kind="stable")
        vals, wts = vals[order], wts[order]
        width *= 2
    return out


def _numpy_distances(
    ids: IntArray, weights: IntArray | None, times: FloatArray | None, ttl: float | None
) -> tuple[IntArray, IntArray | None]:
    # Others since p = everything in (p, i) minus accesses whose reuse interval nests in it.
    n = ids.shape[0]
    order = np.argsort(ids, kind="stable")
    same = ids[order][1:] == ids[order][:-1]
    prev = np.full(n, -1, np.int64)
    prev[order[1:][same]] = order[:-1][same]
    w = np.ones(n, np.int64) if weights is None else weights
    reuse = np.flatnonzero(prev >= 0)
    starts = prev[reuse]
    cw = np.concatenate(([0], np.cumsum(w)))
    nested = _greater_before(starts, w[starts])
    out = np.full(n, COLD, np.int64)
    out[reuse] = cw[reuse] - cw[starts + 1] - nested
    if ttl is not None and times is not None:
        out[reuse[times[reuse] - times[starts] > ttl]] = EXPIRED
    own = None
    if weights is not None:
        own = np.zeros(n, np.int64)
        own[reuse] = weights[starts]
    return out, own


def _dense_ids(keys: npt.NDArray[Any]) -> tuple[IntArray, int]:
    if keys.dtype.kind in "iu" and keys.size:
        lo, hi = int(keys.min()), int(keys.max())
        if lo >= 0 and hi < max(2 * keys.size, 1 << 16):
            return keys.astype(np.int64, copy=False), hi + 1
    codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64), len(uniques)


def _inputs(
    keys: ArrayLike, sizes: ArrayLike | None, times: ArrayLike | None, ttl_s: float | None
) -> tuple[npt.NDArray[Any], IntArray | None, FloatArray | None]:
    key_arr = np.asarray(keys)
    if key_arr.ndim != 1:
        raise ConfigError(f"keys must be one-dimensional, got shape {key_arr.shape}")
    size_arr = time_arr = None
    if sizes is not None:
        size_arr = np.asarray(sizes, dtype=np.int64)
        if size_arr.shape != key_arr.shape or (size_arr.size and size_arr.min() < 0):
            raise ConfigError("sizes must be non-negative integers, one per key")
    if ttl_s is not None:
        if times is None:
            raise ConfigError("ttl_s needs times: pass the request times in seconds")
        if ttl_s < 0:
            raise ConfigError(f"ttl_s must be >= 0, got {ttl_s}")
    if times is not None:
        time_arr = np.asarray(times, dtype=np.float64)
        if time_arr.shape != key_arr.shape:
            raise ConfigError("times must hold one time (in seconds) per key")
    return key_arr, size_arr, time_arr


def _distances(
    keys: npt.NDArray[Any], sizes: IntArray | None, times: FloatArray | None, ttl: float | None
) -> tuple[IntArray, IntArray | None]:
    """Per request: the others' count (or bytes) since the last access, and own prior size."""
    if keys.size == 0:
        return np.empty(0, np.int64), None if sizes is None else np.empty(0, np.int64)
    ids, n_ids = _dense_ids(keys)
    kernels = _kernels()
    if kernels is None:
        return _numpy_distances(ids, sizes, times, ttl)
    # Contiguous arrays of fixed dtypes: one compiled signature per kernel.
    ids = np.ascontiguousarray(ids)
    use_ttl = ttl is not None and times is not None
    t = np.ascontiguousarray(times) if use_ttl and times is not None else np.empty(0)
    limit = float(ttl) if ttl is not None else 0.0
    if sizes is None:
        return kernels[0](ids, n_ids, t, limit, use_ttl), None
    out, own = kernels[1](ids, n_ids, np.ascontiguousarray(sizes), t, limit, use_ttl)
    return out, own


def stack_distances(
    keys: ArrayLike,
    *,
    sizes: ArrayLike | None = None,
    times: ArrayLike | None = None,
    ttl_s: float | None = None,
) -> IntArray:
    """Exact LRU stack distance of every request: -1 first access, -2 reuse past ttl_s.

    Without ``sizes`` the distance counts objects (1 = re-access of the most recent key);
    with ``sizes`` it is the byte depth: this object's size at its last access plus the
    sizes of the distinct objects touched since (exact for a byte-capacity LRU while each key
    keeps one size; an object larger than the cache flushes it, as in an LRU that admits
    everything). With ``ttl_s`` and ``times`` (seconds), a reuse more than ``ttl_s`` after
    the key's last access is a miss at every size. For one TTL refreshed on access (as
    provider prompt caches do) this is exact: objects above a live one in the stack are
    live, expired ones sit below every live one, and LRU evicts them first. For a TTL
    counted from the write it is optimistic (fewer misses than the real cache).
    """
    key_arr, size_arr, time_arr = _inputs(keys, sizes, times, ttl_s)
    out, own = _distances(key_arr, size_arr, time_arr, ttl_s)
    reused = out >= 0
    out[reused] += 1 if own is None else own[reused]
    return out


def simulate_lru(keys: ArrayLike, capacity: int, *, sizes: ArrayLike | None = None) -> float:
    """Miss ratio of a brute-force LRU cache (objects, or bytes with ``sizes``)."""
    key_list = np.asarray(keys).tolist()
    size_list = [1] * len(key_list) if sizes is None else np.asarray(sizes).tolist()
    cache: OrderedDict[Any, int] = OrderedDict()
    used = misses = 0
    for key, size in zip(key_list, size_list, strict=True):
        if key in cache:
            cache.move_to_end(key)
            used += size - cache[key]
        else:
            misses += 1
            used += size
        cache[key] = size
        while used > capacity and cache:
            used -= cache.popitem(last=False)[1]
    return misses / len(key_list) if key_list else math.nan


# -- miss-ratio curves -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MissRatioCurve:
    """An LRU miss-ratio curve: the miss ratio at each cache size, exact steps kept."""

    unit: str  # "objects" or "bytes"
    cache_sizes: IntArray  # the grid, for tables and plots
    miss_ratios: FloatArray  # the miss ratio at each grid size
    requests: int
    cold_misses: int  # first accesses plus TTL-expired reuses (estimated under sampling)
    unique_keys: int
    step_sizes: FloatArray  # every size at which the miss ratio drops
    step_miss_ratios: FloatArray  # the miss ratio from that size on
    expired_misses: int = 0
    sampling_rate: float = 1.0
    sampled_requests: int = 0

    @property
    def max_size(self) -> int:
        """The largest size on the grid."""
        return int(self.cache_sizes[-1]) if self.cache_sizes.size else 0

    @property
    def min_miss_ratio(self) -> float:
        """The miss ratio of a cache big enough for everything (cold misses only)."""
        return float(self.step_miss_ratios[-1]) if self.step_miss_ratios.size else 1.0

    def miss_ratio(self, size: ArrayLike) -> FloatArray:
        """The miss ratio at any size(s), read off the exact steps."""
        return _read_steps(self.step_sizes, self.step_miss_ratios, size)

    def size_for(self, target_hit_ratio: float) -> int | None:
        """The smallest cache size whose hit ratio reaches the target, None if none does."""
        reach = np.flatnonzero(1.0 - self.step_miss_ratios >= target_hit_ratio - 1e-12)
        return math.ceil(float(self.step_sizes[reach[0]])) if reach.size else None

    def to_frame(self) -> pd.DataFrame:
        """The grid as a table: cache_size, miss_ratio, hit_ratio."""
        return pd.DataFrame(
            {
                "cache_size": self.cache_sizes,
                "miss_ratio": self.miss_ratios,
                "hit_ratio": 1.0 - self.miss_ratios,
            }
        )


def _grid(max_size: float, points: int, grid: Grid) -> IntArray:
    top = max(1, math.ceil(max_size))
    if grid == "log":
        raw = np.geomspace(1, top, points)
    elif grid == "linear":
        raw = np.linspace(top / points, top, points)
    else:
        raise ConfigError(f"unknown grid {grid!r}; use 'linear' or 'log'")
    return np.unique(np.ceil(raw).astype(np.int64))


def _curve(
    sizes: FloatArray,
    counts: FloatArray,
    *,
    unit: str,
    total: float,
    requests: int,
    unique_keys: int,
    expired: int,
    max_size: float | None,
    points: int,
    grid: Grid,
    rate: float = 1.0,
    sampled: int = 0,
) -> MissRatioCurve:
    if points < 1:
        raise ConfigError(f"points must be >= 1, got {points}")
    steps = np.clip(1.0 - np.cumsum(counts) / total, 0.0, 1.0) if total else np.ones(0)
    top = max_size if max_size is not None else (sizes[-1] if sizes.size else 1.0)
    cache_sizes = _grid(top, points, grid)
    return MissRatioCurve(
        unit=unit,
        cache_sizes=cache_sizes,
        miss_ratios=_read_steps(sizes, steps, cache_sizes),
        requests=requests,
        cold_misses=round((float(steps[-1]) if steps.size else 1.0) * requests),
        unique_keys=unique_keys,
        step_sizes=np.asarray(sizes, dtype=np.float64),
        step_miss_ratios=np.asarray(steps, dtype=np.float64),
        expired_misses=expired,
        sampling_rate=rate,
        sampled_requests=sampled or requests,
    )


def _read_steps(step_sizes: FloatArray, step_miss: FloatArray, size: ArrayLike) -> FloatArray:
    idx = np.searchsorted(step_sizes, np.asarray(size, dtype=np.float64), side="right")
    return np.asarray(np.concatenate(([1.0], step_miss))[idx], dtype=np.float64)


def _histogram(depth: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray]:
    if depth.dtype.kind in "iu" and depth.size and int(depth.max()) <= 4 * depth.size + 1024:
        counts = np.bincount(depth)
        nonzero = np.flatnonzero(counts)
        return nonzero.astype(np.float64), counts[nonzero].astype(np.float64)
    values, counts = np.unique(depth, return_counts=True)
    return values.astype(np.float64), counts.astype(np.float64)


def mrc(
    keys: ArrayLike,
    *,
    sizes: ArrayLike | None = None,
    times: ArrayLike | None = None,
    ttl_s: float | None = None,
    max_size: float | None = None,
    points: int = 64,
    grid: Grid = "linear",
) -> MissRatioCurve:
    """The exact LRU miss-ratio curve, in objects or (with ``sizes``) bytes.

    The grid runs up to ``max_size`` (default: the largest reuse distance, where the curve
    reaches its floor of cold misses); ``miss_ratio`` and ``size_for`` use the exact steps.
    """
    key_arr, size_arr, time_arr = _inputs(keys, sizes, times, ttl_s)
    others, own = _distances(key_arr, size_arr, time_arr, ttl_s)
    reused = others >= 0
    depth = others[reused] + (1 if own is None else own[reused])
    step_sizes, counts = _histogram(depth)
    return _curve(
        step_sizes,
        counts,
        unit="objects" if size_arr is None else "bytes",
        total=float(key_arr.size),
        requests=int(key_arr.size),
        unique_keys=int(np.count_nonzero(others == COLD)),
        expired=int(np.count_nonzero(others == EXPIRED)),
        max_size=max_size,
        points=points,
        grid=grid,
    )


def _key_hash(keys: npt.NDArray[Any], seed: int) -> npt.NDArray[np.uint64]:
    """A salted 64-bit hash per key (splitmix64 finalizer), vectorised."""
    if keys.dtype.kind in "iub":
        z = keys.astype(np.int64, copy=False).view(np.uint64).copy()
    elif keys.dtype.kind == "f":
        z = keys.astype(np.float64, copy=False).view(np.uint64).copy()
    else:
        z = pd.util.hash_array(np.asarray(keys, dtype=object))
    salt = seed & _U64
    for _ in range(2):  # spread small seeds over all 64 bits
        salt = ((salt ^ (salt >> 31)) * 0x9E3779B97F4A7C15 + 0xBF58476D1CE4E5B9) & _U64
    z ^= np.uint64(salt)
    z += np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def shards_mrc(
    keys: ArrayLike,
    *,
    rate: float = 0.01,
    seed: int = 0,
    adjust: bool = True,
    sizes: ArrayLike | None = None,
    times: ArrayLike | None = None,
    ttl_s: float | None = None,
    max_size: float | None = None,
    points: int = 64,
    grid: Grid = "linear",
) -> MissRatioCurve:
    """A SHARDS fixed-rate estimate of the LRU miss-ratio curve.

    A key is sampled iff the top 24 bits of its salted 64-bit hash (``seed`` is the salt)
    are below T = round(rate * 2**24); distances over the sample are scaled by 1/R, with
    R = T / 2**24. With ``adjust`` (SHARDS_adj) the first histogram bucket absorbs
    E[Ns] - Ns, the gap between the expected and the actual number of sampled requests,
    which corrects most of the error a few sampled hot keys cause.
    """
    if not 0.0 < rate <= 1.0:
        raise ConfigError(f"rate must be in (0, 1], got {rate}")
    key_arr, size_arr, time_arr = _inputs(keys, sizes, times, ttl_s)
    threshold = round(rate * (1 << _SHARDS_BITS))
    if threshold < 1:
        raise ConfigError(f"rate {rate} is below the resolution 2**-{_SHARDS_BITS}")
    real_rate = threshold / (1 << _SHARDS_BITS)
    mask = (_key_hash(key_arr, seed) >> np.uint64(64 - _SHARDS_BITS)) < np.uint64(threshold)
    sample = np.flatnonzero(mask)
    others, own = _distances(
        key_arr[sample],
        None if size_arr is None else size_arr[sample],
        None if time_arr is None else time_arr[sample],
        ttl_s,
    )
    reused = others >= 0
    if own is None:
        step_sizes, counts = _histogram(others[reused])
        step_sizes = step_sizes / real_rate + 1.0
    else:
        step_sizes, counts = _histogram(others[reused] / real_rate + own[reused])
    expected = key_arr.size * real_rate
    total = float(sample.size)
    if adjust and counts.size:
        counts[0] += expected - sample.size
        total = expected
    return _curve(
        step_sizes,
        counts,
        unit="objects" if size_arr is None else "bytes",
        total=total,
        requests=int(key_arr.size),
        unique_keys=round(np.count_nonzero(others == COLD) / real_rate),
        expired=round(np.count_nonzero(others == EXPIRED) / real_rate),
        max_size=max_size,
        points=points,
        grid=grid,
        rate=real_rate,
        sampled=int(sample.size),
    )


def mrc_error(a: MissRatioCurve, b: MissRatioCurve, *, points: int = 100) -> float:
    """Mean absolute difference of two curves' miss ratios over a common linear size grid."""
    if a.unit != b.unit:
        raise ConfigError(f"cannot compare a curve in {a.unit} with one in {b.unit}")
    grid = _grid(max(a.max_size, b.max_size), points, "linear")
    return float(np.mean(np.abs(a.miss_ratio(grid) - b.miss_ratio(grid))))


def mrc_figure(
    curves: Mapping[str, MissRatioCurve], *, log_x: bool = False, title: str | None = None
) -> go.Figure:
    """A plotly chart of miss-ratio curves, one line each, for notebooks."""
    import plotly.graph_objects as go

    units = {c.unit for c in curves.values()}
    if len(units) > 1:
        raise ConfigError(f"curves mix units {sorted(units)}; plot objects and bytes apart")
    fig = go.Figure()
    for name, curve in curves.items():
        fig.add_trace(go.Scatter(x=curve.cache_sizes, y=curve.miss_ratios, mode="lines", name=name))
    unit = units.pop() if units else "objects"
    fig.update_layout(
        title=title or "LRU miss-ratio curve",
        xaxis_title=f"cache size ({unit})",
        yaxis_title="miss ratio",
        yaxis_range=[0, 1.02],
        template="plotly_white",
    )
    if log_x:
        fig.update_xaxes(type="log")
    return fig
