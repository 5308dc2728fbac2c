"""Miss-ratio-curve benchmark: exact LRU MRC and SHARDS on a 10M-request Zipf trace.

Usage: ``python benchmarks/bench_cache.py [--quick] [--requests N] [--keys M] [--alpha A]``

Builds an IID Zipf(alpha = 1.0) trace of 10M requests over 1M keys (``--quick``: 1M over
100k), then times ``workbench.mrc.mrc`` (exact Mattson stack distances and the curve)
and ``shards_mrc`` at R = 0.01, and measures SHARDS' mean absolute error against the exact
curve over several hash salts, with and without SHARDS_adj. The issue's bars: exact >= 1M
requests/s and SHARDS >= 20M input requests/s, on one core. numba compiles the kernels on
first use; that compile runs before the timed calls, against an empty cache folder, and is
reported apart, as is loading them from numba's on-disk cache in a fresh process. The
NumPy fallback (no numba) is timed on a 1M-request trace over 100k keys for context.
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# An empty numba cache folder, so the compile time below is a cold compile.
_NUMBA_DIR = tempfile.mkdtemp(prefix="bench-cache-numba-")
atexit.register(shutil.rmtree, _NUMBA_DIR, ignore_errors=True)
os.environ["NUMBA_CACHE_DIR"] = _NUMBA_DIR

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench import mrc  # noqa: E402

EXACT_TARGET = 1_000_000  # requests/s
SHARDS_TARGET = 20_000_000  # input requests/s
SHARDS_RATE = 0.01
SALTS = 10
_LOAD_FROM_CACHE = (
    "import time, numpy as np; from workbench import mrc; t = time.perf_counter(); "
    "mrc.mrc(np.arange(8) % 3); mrc.mrc(np.arange(8) % 3, sizes=np.ones(8)); "
    "print(time.perf_counter() - t)"
)


def zipf_trace(n: int, keys: int, alpha: float, seed: int = 0) -> np.ndarray:
    """n IID requests over `keys` keys with Zipf(alpha) popularity; key ids shuffled."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, keys + 1, dtype=np.float64) ** alpha)
    ranks = np.searchsorted(cdf / cdf[-1], rng.random(n))
    return rng.permutation(keys)[ranks]


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median wall time of `repeats` calls, every time, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def verdict(value: float, target: float) -> str:
    return "PASS" if value >= target else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M requests over 100k keys")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--keys", type=int, default=None)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.requests or (1_000_000 if args.quick else 10_000_000)
    m = args.keys or n // 10

    kernels = mrc._kernels()
    numba_version = "not installed (NumPy fallback)"
    compile_s = load_s = None
    if kernels is not None:
        import numba

        numba_version = numba.__version__
        start = time.perf_counter()
        mrc.mrc(np.arange(8) % 3)
        mrc.mrc(np.arange(8) % 3, sizes=np.ones(8))
        compile_s = time.perf_counter() - start
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_FROM_CACHE], capture_output=True, text=True, cwd=ROOT
        )
        load_s = float(out.stdout) if out.returncode == 0 else None

    start = time.perf_counter()
    trace = zipf_trace(n, m, args.alpha)
    gen_s = time.perf_counter() - start

    exact_s, exact_runs, exact = timed(lambda: mrc.mrc(trace), args.repeats)
    dist_s, _, _ = timed(lambda: mrc.stack_distances(trace), args.repeats)
    shards_s, shards_runs, shards = timed(
        lambda: mrc.shards_mrc(trace, rate=SHARDS_RATE), max(5, args.repeats)
    )
    adj = [
        mrc.mrc_error(exact, mrc.shards_mrc(trace, rate=SHARDS_RATE, seed=s)) for s in range(SALTS)
    ]
    raw = [
        mrc.mrc_error(exact, mrc.shards_mrc(trace, rate=SHARDS_RATE, seed=s, adjust=False))
        for s in range(SALTS)
    ]
    sizes = np.random.default_rng(1).integers(100, 20_000, m)[trace]
    bytes_s, _, _ = timed(lambda: mrc.mrc(trace, sizes=sizes), 1)
    sub = trace if n <= 1_000_000 else zipf_trace(1_000_000, 100_000, args.alpha, seed=1)
    ids = sub.astype(np.int64)
    fallback_s, _, _ = timed(lambda: mrc._numpy_distances(ids, None, None, None), 1)

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# Cache MRC benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print()
    print(
        f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, numba {numba_version}; load average {load}"
    )
    print(
        f"- Trace: IID Zipf(alpha={args.alpha}), {n:,} requests over {m:,} keys "
        f"({exact.unique_keys:,} seen), generated in {gen_s:.1f} s; one core (no threads)"
    )
    if compile_s is not None:
        cached = f"{load_s:.2f} s" if load_s is not None else "n/a"
        print(
            f"- numba: cold compile of both kernels {compile_s:.2f} s (not timed below); "
            f"importing numba and loading them from its on-disk cache in a fresh process {cached}"
        )
    print(f"- Median of {args.repeats} runs (SHARDS: {max(5, args.repeats)})")
    print()
    print("| figure | value | target | verdict |")
    print("|---|---|---|---|")
    exact_rate = n / exact_s
    shards_rate = n / shards_s
    print(
        f"| exact MRC (`mrc`), requests/s | {exact_rate:,.0f}/s ({exact_s:.2f} s) "
        f"| >= {EXACT_TARGET:,}/s | {verdict(exact_rate, EXACT_TARGET)} |"
    )
    print(
        f"| stack distances only, requests/s | {n / dist_s:,.0f}/s ({dist_s:.2f} s) | context | - |"
    )
    print(
        f"| SHARDS R={SHARDS_RATE}, input requests/s | {shards_rate:,.0f}/s ({shards_s * 1000:.0f} ms, "
        f"{shards.sampled_requests:,} sampled) | >= {SHARDS_TARGET:,}/s "
        f"| {verdict(shards_rate, SHARDS_TARGET)} |"
    )
    print(f"| SHARDS_adj MAE vs exact, salt 0 | {adj[0]:.4f} | context (paper: < 0.01) | - |")
    print(
        f"| SHARDS_adj MAE, {SALTS} salts: mean / max | {statistics.mean(adj):.4f} / {max(adj):.4f} "
        "| context | - |"
    )
    print(
        f"| SHARDS without adj MAE, {SALTS} salts: mean / max | {statistics.mean(raw):.4f} / "
        f"{max(raw):.4f} | context | - |"
    )
    print(f"| exact byte MRC, requests/s | {n / bytes_s:,.0f}/s ({bytes_s:.2f} s) | context | - |")
    print(
        f"| NumPy fallback distances, {sub.size:,} requests over {sub.size // 10:,} keys "
        f"| {sub.size / fallback_s:,.0f}/s "
        f"({fallback_s:.2f} s) | context | - |"
    )
    print()
    print(
        f"Runs: exact {[round(t, 2) for t in exact_runs]} s; "
        f"SHARDS {[round(t * 1000) for t in shards_runs]} ms. "
        f"Exact curve: hit ratio {1 - exact.miss_ratio(m // 100):.3f} at 1% of the keys, "
        f"{1 - exact.miss_ratio(m // 10):.3f} at 10%, floor (cold) {exact.min_miss_ratio:.3f}; "
        f"size for 80% hits: {exact.size_for(0.8)}."
    )
    passed = exact_rate >= EXACT_TARGET and shards_rate >= SHARDS_TARGET
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
