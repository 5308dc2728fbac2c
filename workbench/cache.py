"""Cache effectiveness and sizing: miss-ratio curves, SHARDS, per-layer economics from spans.

Sizing follows Mattson et al. (1970): LRU has the inclusion property, so one pass over the
key sequence gives each request's stack distance, and a request hits in a cache of size C
iff its distance is at most C. Distances here are 1-based depths in the LRU stack just
before the request (1 = the most recently used object); in bytes, the depth is the summed
size of that object and every distinct object touched since its last access. The exact
pass is a Fenwick tree over access times (numba when installed, a vectorised NumPy
divide-and-conquer otherwise); SHARDS (Waldspurger et al., FAST'15) samples keys by a
salted hash and scales distances by 1/R. Economics read the ``spans`` table
(``docs/schema.md``).
"""

from __future__ import annotations

import functools
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.typing import ArrayLike

from workbench.errors import ConfigError
from workbench.prices import FIELDS as PRICE_FIELDS
from workbench.prices import Price, PriceBook

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.store import Store

Grid = Literal["linear", "log"]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

COLD = -1  # stack distance of a key's first access
EXPIRED = -2  # stack distance of a reuse after its TTL ran out (a miss at every size)
LAYERS = ("prompt_template", "embedding", "response_exact", "response_semantic", "provider")
# The span class of the work a hit on each application layer skips.
_BACKING = {
    "prompt_template": "template",
    "embedding": "embedding",
    "response_exact": "llm",
    "response_semantic": "llm",
}
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


# -- economics from spans ------------------------------------------------------------

_SPAN_COLUMNS = (
    "trace_id, parent_span_id, start_ns, duration_ms, route, span_class, cache_layer, "
    "cache_key_hash, cache_hit, obj_bytes, ttl_s, request_model, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, cost_usd"
)
REPORT_COLUMNS = (
    "lookups",
    "hits",
    "misses",
    "hit_ratio",
    "cold_misses",
    "cold_miss_share",
    "expired_misses",
    "unique_keys",
    "tokens_saved",
    "token_hit_ratio",
    "usd_saved",
    "usd_write_premium",
    "usd_hit_ratio",
    "hit_p50_ms",
    "hit_p95_ms",
    "miss_p50_ms",
    "miss_p95_ms",
    "lookup_p50_ms",
    "latency_saved_s",
    "unpriced_calls",
)


def _window(since_ns: int | None, until_ns: int | None) -> tuple[str, list[int]]:
    sql, args = "", []
    if since_ns is not None:
        sql += " AND start_ns >= ?"
        args.append(since_ns)
    if until_ns is not None:
        sql += " AND start_ns < ?"
        args.append(until_ns)
    return sql, args


_NUMERIC_COLUMNS = (
    "duration_ms",
    "cache_hit",
    "obj_bytes",
    "ttl_s",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
)


def _spans(store: Store, since_ns: int | None, until_ns: int | None) -> pd.DataFrame:
    """Lookups and model calls in the window, plus the roots and calls of their traces."""
    where, args = _window(since_ns, until_ns)
    picked = f"(cache_layer IS NOT NULL OR span_class = 'llm'){where}"
    sql = (
        f"SELECT {_SPAN_COLUMNS}, ({picked}) AS picked FROM spans "
        f"WHERE trace_id IN (SELECT trace_id FROM spans WHERE {picked}) "
        "AND (parent_span_id IS NULL OR span_class IN ('llm', 'embedding', 'template') "
        f"OR {picked}) ORDER BY start_ns, trace_id"
    )
    frame = pd.read_sql_query(sql, store.conn, params=[*args, *args, *args])
    # A column that is NULL throughout comes back as objects; the arithmetic wants floats.
    for column in _NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


def _price_columns(calls: pd.DataFrame, prices: PriceBook) -> pd.DataFrame:
    """Each call's rates (NaN for an unpriced model), aligned with ``calls``."""
    models = calls["request_model"]
    rates = {m: prices.rates(m) for m in models.dropna().unique()}
    priced = {m: r for m, r in rates.items() if r is not None}
    table = pd.DataFrame(list(priced.values()), index=list(priced), columns=list(PRICE_FIELDS))
    return table.reindex(models.to_numpy()).set_axis(calls.index)


def _tokens(calls: pd.DataFrame, column: str) -> pd.Series:
    return calls[column].fillna(0).astype(float)


def _call_costs(calls: pd.DataFrame, prices: PriceBook) -> tuple[pd.Series, pd.Series]:
    """USD per call (from the price table, else cost_usd) and whether it could be priced."""
    price = _price_columns(calls, prices)
    read, write = _tokens(calls, "cache_read_tokens"), _tokens(calls, "cache_write_tokens")
    uncached = (_tokens(calls, "input_tokens") - read - write).clip(lower=0)
    priced = (
        uncached * price["input"]
        + read * price["cache_read"]
        + write * price["cache_write"]
        + _tokens(calls, "output_tokens") * price["output"]
    ) / 1e6
    cost = priced.fillna(calls["cost_usd"].astype(float))
    return cost.fillna(0.0), cost.notna()


def _pct(values: pd.Series, q: float) -> float:
    values = values.dropna()
    return float(np.percentile(values, q)) if len(values) else math.nan


def _key_stats(rows: pd.DataFrame) -> tuple[Any, Any, Any]:
    """Cold misses (first access of a key in the window), TTL-expired misses, unique keys."""
    keyed = rows[rows["cache_key_hash"].notna()]
    if keyed.empty:
        return pd.NA, pd.NA, pd.NA
    first = ~keyed["cache_key_hash"].duplicated()
    gap_s = keyed.groupby("cache_key_hash")["start_ns"].diff() / 1e9
    miss = ~keyed["hit"]
    expired = miss & ~first & keyed["ttl_s"].notna() & (gap_s > keyed["ttl_s"])
    return int((miss & first).sum()), int(expired.sum()), int(keyed["cache_key_hash"].nunique())


def _latency(rows: pd.DataFrame, column: str) -> dict[str, float]:
    hits, misses = rows[rows["hit"]], rows[~rows["hit"]]
    return {
        "hit_p50_ms": _pct(hits[column], 50),
        "hit_p95_ms": _pct(hits[column], 95),
        "miss_p50_ms": _pct(misses[column], 50),
        "miss_p95_ms": _pct(misses[column], 95),
        "lookup_p50_ms": _pct(rows["duration_ms"], 50),
    }


def _app_layer(rows: pd.DataFrame, calls: pd.DataFrame, prices: PriceBook) -> dict[str, Any]:
    """Savings of an application cache layer: each hit avoids a miss's mean backing work."""
    backing_class = _BACKING.get(rows["cache_layer"].iloc[0], "llm")
    backing = calls[calls["span_class"] == backing_class]
    cost, priced = _call_costs(backing, prices)
    work = (
        pd.DataFrame(
            {
                "trace_id": backing["trace_id"],
                "tokens": backing[["input_tokens", "output_tokens"]].fillna(0).sum(axis=1),
                "usd": cost,
                "ms": backing["duration_ms"].fillna(0.0),
                "unpriced": ~priced,
            }
        )
        .groupby("trace_id")[["tokens", "usd", "ms", "unpriced"]]
        .sum()
    )
    misses = rows[~rows["hit"]]
    miss_traces = misses.groupby("trace_id").agg(route=("route", "first"), n=("hit", "size"))
    miss_traces = miss_traces.join(work, how="left").fillna(
        {"tokens": 0.0, "usd": 0.0, "ms": 0.0, "unpriced": 0}
    )
    per_route = miss_traces.groupby("route")[["n", "tokens", "usd", "ms"]].sum()
    overall = per_route.sum()
    hits = rows[rows["hit"]]
    tokens_saved = usd_gross = ms_saved = 0.0
    # With no misses at all there is nothing to value a hit by: savings stay 0.
    for route, n_hits in hits.groupby("route").size().items() if overall["n"] else ():
        basis = per_route.loc[route] if route in per_route.index else overall
        tokens_saved += n_hits * basis["tokens"] / basis["n"]
        usd_gross += n_hits * basis["usd"] / basis["n"]
        ms_saved += n_hits * basis["ms"] / basis["n"]
    # A lookup's own cost (a semantic lookup's query embedding); a lookup recorded on the
    # backing call itself is already that call's cost.
    own = rows[rows["span_class"] != backing_class]
    lookup_cost, lookup_priced = _call_costs(own, prices)
    has_tokens = own[["input_tokens", "cost_usd"]].notna().any(axis=1)
    usd_saved = usd_gross - float(lookup_cost.sum())
    spent_tokens, spent_usd = float(overall["tokens"]), float(overall["usd"])
    return {
        "tokens_saved": tokens_saved,
        "token_hit_ratio": _ratio(tokens_saved, tokens_saved + spent_tokens),
        "usd_saved": usd_saved,
        "usd_write_premium": 0.0,
        "usd_hit_ratio": _ratio(usd_saved, usd_saved + spent_usd),
        "latency_saved_s": ms_saved / 1000.0,
        "unpriced_calls": int(miss_traces["unpriced"].sum() + (has_tokens & ~lookup_priced).sum()),
        **_latency(rows, "request_ms"),
    }


def _provider_layer(rows: pd.DataFrame, prices: PriceBook) -> dict[str, Any]:
    """Savings of the provider prompt cache: reads at the discount, net of write premiums."""
    price = _price_columns(rows, prices)
    read, write = _tokens(rows, "cache_read_tokens"), _tokens(rows, "cache_write_tokens")
    gross = float((read * (price["input"] - price["cache_read"])).sum()) / 1e6
    premium = float((write * (price["cache_write"] - price["input"])).sum()) / 1e6
    unpriced = int(price["input"].isna().sum())
    cost, _ = _call_costs(rows, prices)
    saved = gross - premium
    return {
        "tokens_saved": float(read.sum()),
        "token_hit_ratio": _ratio(float(read.sum()), float(rows["input_tokens"].fillna(0).sum())),
        "usd_saved": saved,
        "usd_write_premium": premium,
        "usd_hit_ratio": _ratio(saved, float(cost.sum()) + saved),
        "latency_saved_s": math.nan,
        "unpriced_calls": unpriced,
        **_latency(rows, "duration_ms"),
    }


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def layer_report(
    store: Store,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    prices: Mapping[str, Price] | None = None,
) -> pd.DataFrame:
    """Per cache layer: hit ratios by requests, tokens and USD, latency, cold share, keys.

    A lookup is a span with ``cache_layer`` and ``cache_hit`` starting in [since, until).
    A hit on a response cache avoids the model calls (``span_class = 'llm'``) a miss of that
    route costs on average: each miss is charged its trace's calls, split evenly among the
    trace's misses of the layer; a route without misses uses the layer's mean. An embedding
    hit avoids ``embedding`` spans and a prompt-template hit ``template`` spans the same way.
    Behind a stacked layer (exact in front of semantic), a miss's cost already counts the
    later layers' hits, so the value is marginal. USD saved is net of the lookups' own cost
    (e.g. the query embedding of a semantic lookup) and, for the provider prompt cache
    (every model call is a lookup; a hit has ``cache_read_tokens`` > 0), of cache-write
    premiums. Calls are priced from ``prices`` laid over the built-in table
    (``workbench.prices``, which also says how unset cache rates and dated names are
    priced), else by their ``cost_usd``; ``unpriced_calls`` counts those with neither. Hit/miss percentiles are of
    the request's root span (the lookup span's own when the trace has no root), and of the
    call itself for the provider; ``latency_saved_s`` = hits x the mean backing time of a
    miss (gross: ``lookup_p50_ms`` shows what each lookup costs). Cold misses are misses of
    a key's first access in the window; expired misses came after more than ``ttl_s``.
    """
    table = PriceBook(prices)
    spans = _spans(store, since_ns, until_ns)
    picked = spans[spans["picked"].fillna(0).astype(bool)]
    roots = spans[spans["parent_span_id"].isna()].drop_duplicates("trace_id")
    root_ms = roots.set_index("trace_id")["duration_ms"]
    root_route = roots.set_index("trace_id")["route"]
    calls = spans[spans["span_class"].isin(["llm", "embedding", "template"])]
    rows_out: dict[str, dict[str, Any]] = {}
    found = [x for x in picked["cache_layer"].dropna().unique() if x != "provider"]
    for layer in [*[x for x in LAYERS if x in found], *sorted(set(found) - set(LAYERS))]:
        rows = picked[(picked["cache_layer"] == layer) & picked["cache_hit"].notna()].copy()
        if rows.empty:
            continue
        rows["hit"] = rows["cache_hit"].astype(int) != 0
        rows["route"] = rows["route"].fillna(rows["trace_id"].map(root_route)).fillna("")
        rows["request_ms"] = rows["trace_id"].map(root_ms).fillna(rows["duration_ms"])
        rows_out[layer] = {**_counts(rows), **_app_layer(rows, calls, table)}
    flagged = (picked["cache_layer"] == "provider") & picked["cache_hit"].notna()
    model_call = (picked["span_class"] == "llm") & picked["input_tokens"].notna()
    provider = picked[flagged | model_call].copy()
    if not provider.empty:
        read = provider["cache_read_tokens"].fillna(0) > 0
        provider["hit"] = read | (flagged[provider.index] & (provider["cache_hit"].fillna(0) != 0))
        rows_out["provider"] = {**_counts(provider), **_provider_layer(provider, table)}
    frame = pd.DataFrame.from_dict(rows_out, orient="index", columns=list(REPORT_COLUMNS))
    frame.index.name = "layer"
    for column in ("lookups", "hits", "misses", "unpriced_calls"):
        frame[column] = frame[column].astype("int64")
    for column in ("cold_misses", "expired_misses", "unique_keys"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _counts(rows: pd.DataFrame) -> dict[str, Any]:
    hits = int(rows["hit"].sum())
    cold, expired, unique = _key_stats(rows)
    misses = len(rows) - hits
    return {
        "lookups": len(rows),
        "hits": hits,
        "misses": misses,
        "hit_ratio": hits / len(rows),
        "cold_misses": cold,
        "cold_miss_share": cold / misses if misses and cold is not pd.NA else math.nan,
        "expired_misses": expired,
        "unique_keys": unique,
    }


# -- sizing from spans ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SizingReport:
    """How big one cache layer should be: its MRCs against the hit ratio it gets today."""

    layer: str
    target_hit_ratio: float
    requests: int
    unique_keys: int
    observed_hit_ratio: float
    objects: MissRatioCurve
    bytes: MissRatioCurve | None
    recommended_objects: int | None  # smallest LRU size reaching the target, None if none
    recommended_bytes: int | None
    equivalent_objects: int | None  # the LRU size whose hit ratio equals today's
    ttl_s: float | None = None
    shards_rate: float | None = None

    def summary(self) -> dict[str, Any]:
        """The headline figures as plain values, for recording from a notebook."""
        return {
            "layer": self.layer,
            "requests": self.requests,
            "unique_keys": self.unique_keys,
            "observed_hit_ratio": self.observed_hit_ratio,
            "target_hit_ratio": self.target_hit_ratio,
            "max_hit_ratio": 1.0 - self.objects.min_miss_ratio,
            "recommended_objects": self.recommended_objects,
            "recommended_bytes": self.recommended_bytes,
            "equivalent_objects": self.equivalent_objects,
        }


def sizing_report(
    store: Store,
    layer: str,
    *,
    target_hit_ratio: float = 0.8,
    ttl_s: float | None = None,
    shards_rate: float | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    points: int = 64,
) -> SizingReport:
    """MRCs (objects and bytes) of one layer's key sequence, and the size for a target.

    Keys are the lookups' ``cache_key_hash`` in ``start_ns`` order; a missing ``obj_bytes``
    takes the key's known size, else the layer median (no sizes at all: no byte curve).
    ``ttl_s`` makes reuses later than that miss; ``shards_rate`` samples (large traces).
    """
    if not 0.0 < target_hit_ratio <= 1.0:
        raise ConfigError(f"target_hit_ratio must be in (0, 1], got {target_hit_ratio}")
    where, args = _window(since_ns, until_ns)
    frame = pd.read_sql_query(
        "SELECT start_ns, cache_key_hash, cache_hit, obj_bytes FROM spans WHERE cache_layer = ? "
        f"AND cache_key_hash IS NOT NULL{where} ORDER BY start_ns, trace_id, span_id",
        store.conn,
        params=[layer, *args],
    )
    if frame.empty:
        known = [
            r[0]
            for r in store.conn.execute(
                "SELECT DISTINCT cache_layer FROM spans WHERE cache_key_hash IS NOT NULL "
                "AND cache_layer IS NOT NULL ORDER BY 1"
            )
        ]
        have = ", ".join(known) if known else "none"
        raise ConfigError(
            f"no lookups with a cache_key_hash for layer {layer!r} in the window; "
            f"layers with keys: {have}"
        )
    keys = frame["cache_key_hash"].to_numpy()
    times = (frame["start_ns"] - frame["start_ns"].iloc[0]).to_numpy(dtype=np.float64) / 1e9
    frame["obj_bytes"] = frame.groupby("cache_key_hash")["obj_bytes"].ffill()
    sizes = frame.groupby("cache_key_hash")["obj_bytes"].bfill()
    sizes = sizes.fillna(frame["obj_bytes"].median())

    def curve(unit_sizes: npt.NDArray[Any] | None) -> MissRatioCurve:
        options: dict[str, Any] = {"sizes": unit_sizes, "times": times, "ttl_s": ttl_s}
        if shards_rate is None:
            return mrc(keys, points=points, **options)
        return shards_mrc(keys, rate=shards_rate, points=points, **options)

    objects = curve(None)
    byte_curve = None if sizes.isna().all() else curve(sizes.to_numpy(dtype=np.int64))
    observed = float(frame["cache_hit"].dropna().astype(float).mean())
    return SizingReport(
        layer=layer,
        target_hit_ratio=target_hit_ratio,
        requests=len(frame),
        unique_keys=int(frame["cache_key_hash"].nunique()),
        observed_hit_ratio=observed,
        objects=objects,
        bytes=byte_curve,
        recommended_objects=objects.size_for(target_hit_ratio),
        recommended_bytes=None if byte_curve is None else byte_curve.size_for(target_hit_ratio),
        equivalent_objects=objects.size_for(observed) if observed > 0 else 0,
        ttl_s=ttl_s,
        shards_rate=shards_rate,
    )


# -- semantic caching ----------------------------------------------------------------

DEFAULT_THRESHOLDS: FloatArray = np.linspace(0.5, 0.99, 25)


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def threshold_sweep(
    pairs: Sequence[tuple[str, str, bool]], thresholds: ArrayLike = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Hit rate against false-hit rate of a semantic cache, per similarity threshold.

    Each pair (query, cached query, same intent) hits when the wordllama cosine similarity
    is at least the threshold. ``hit_rate`` is the share of pairs that hit; ``false_hit_rate``
    the share of hits that are not the same intent (NaN with no hits), with a 95% Wilson
    interval; ``precision`` = 1 - false_hit_rate and ``recall`` the share of same-intent
    pairs that hit.
    """
    from workbench import embeddings

    if not pairs:
        raise ConfigError("threshold_sweep needs labelled pairs; try demo_pairs()")
    texts = sorted({text for a, b, _ in pairs for text in (a, b)})
    position = {text: i for i, text in enumerate(texts)}
    vectors = embeddings.embed_many(texts)
    left = vectors[[position[a] for a, _, _ in pairs]]
    right = vectors[[position[b] for _, b, _ in pairs]]
    similarity = np.einsum("ij,ij->i", left, right)
    same = np.array([bool(label) for _, _, label in pairs])
    rows = []
    for threshold in np.asarray(thresholds, dtype=np.float64):
        hit = similarity >= threshold
        hits, false_hits = int(hit.sum()), int((hit & ~same).sum())
        low, high = _wilson(false_hits, hits)
        rows.append(
            {
                "threshold": float(threshold),
                "hits": hits,
                "hit_rate": hits / len(pairs),
                "false_hits": false_hits,
                "false_hit_rate": false_hits / hits if hits else math.nan,
                "false_hit_low": low,
                "false_hit_high": high,
                "precision": (hits - false_hits) / hits if hits else math.nan,
                "recall": (hits - false_hits) / same.sum() if same.any() else math.nan,
            }
        )
    return pd.DataFrame(rows)


_PARAPHRASES = (
    ("How do I cancel my subscription?", "I want to cancel my subscription, how do I do that?"),
    ("I was charged twice this month", "Why did you bill me two times this month?"),
    ("How can I reset my password?", "I forgot my password and need to change it"),
    ("Where is my order?", "My package hasn't arrived yet, where is it?"),
    ("Can I get a refund for order 1234?", "Please refund my order 1234"),
    ("How do I change my email address?", "I need to update the email on my account"),
    ("The app crashes when I open it", "Every time I launch the app it crashes"),
    ("How do I download my invoice?", "Where can I get a copy of my invoice?"),
    ("Can I upgrade to the pro plan?", "I'd like to switch to the pro plan"),
    ("How do I turn on two-factor authentication?", "How can I enable 2FA on my account?"),
    ("I can't log in to my account", "Login is not working for me"),
    ("How do I delete my account?", "Please close my account permanently"),
    ("Do you ship to Canada?", "Can you deliver orders to Canada?"),
    ("How long does shipping take?", "What's the delivery time for orders?"),
    ("How do I add a team member?", "How can I invite a colleague to my workspace?"),
    ("The export to CSV is broken", "Exporting to CSV doesn't work"),
    ("What payment methods do you accept?", "Which ways can I pay?"),
    ("Can I change my delivery address?", "I need to update the shipping address for my order"),
    ("Is there a student discount?", "Do you offer discounts for students?"),
    ("The website is down", "Your site isn't loading at all"),
    ("How do I update my credit card?", "I want to change the card you charge"),
    ("My account is locked", "I've been locked out of my account"),
    ("How do I export my data?", "Can I download all my data?"),
    ("Why is my invoice higher than usual?", "My bill this month is more than normal, why?"),
    ("How do I return an item?", "What is the process to send a product back?"),
    ("Can I pause my subscription?", "Is it possible to put my plan on hold?"),
    ("How do I change my password?", "I'd like to set a new password"),
    ("My order arrived damaged", "The package came broken"),
    ("How do I contact a human agent?", "I want to talk to a real person"),
    ("Where can I find my receipt?", "How do I get a receipt for my purchase?"),
)
_NEAR_MISSES = (
    ("Cancel my subscription", "Don't cancel my subscription"),
    ("Refund order 1234", "Refund order 5678"),
    ("How do I enable two-factor authentication?", "How do I disable two-factor authentication?"),
    ("Upgrade my plan to pro", "Downgrade my plan from pro"),
    ("Add a user to my workspace", "Remove a user from my workspace"),
    ("Ship my order to Canada", "Ship my order to Mexico"),
    ("I was charged twice", "I was not charged at all"),
    ("How do I reset my password?", "How do I reset my username?"),
    ("Can I get a refund?", "Can I get a replacement?"),
    ("Change my email address", "Change my shipping address"),
    ("Why was my card declined?", "Why was my card charged?"),
    ("Start my free trial", "End my free trial"),
    ("Turn on email notifications", "Turn off email notifications"),
    ("Track order 1001", "Track order 1002"),
    ("Open a support ticket", "Close my support ticket"),
    ("The app is slow on Android", "The app is slow on iPhone"),
    ("I want to buy more seats", "I want to remove some seats"),
    ("Is the API down?", "Is the API rate limited?"),
    ("Delete my account", "Delete my project"),
    ("Lock my account", "Unlock my account"),
    ("Send me the invoice for March", "Send me the invoice for April"),
    ("Increase my storage limit", "Decrease my storage limit"),
    ("Can I pay by credit card?", "Can I pay by bank transfer?"),
    ("Make Alice an admin", "Remove Alice as admin"),
    ("My package arrived early", "My package arrived late"),
    ("Renew my subscription", "Do not renew my subscription"),
    ("Export my data to CSV", "Import my data from CSV"),
    ("Log me out of all devices", "Log me in on all devices"),
    ("Why is my bill higher this month?", "Why is my bill lower this month?"),
    ("Refund my last payment", "Refund my first payment"),
)


def demo_pairs() -> list[tuple[str, str, bool]]:
    """60 labelled support-question pairs: 30 paraphrases (True), 30 near-misses (False).

    The near-misses differ by a negation, an antonym or an entity (order number, country,
    month), the cases where embedding similarity alone returns someone else's answer.
    """
    return [(a, b, True) for a, b in _PARAPHRASES] + [(a, b, False) for a, b in _NEAR_MISSES]
