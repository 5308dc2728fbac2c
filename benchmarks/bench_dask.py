"""Dask executor benchmarks: the speed-up on CPU-bound work, the overhead on I/O-bound work.

Usage: ``python benchmarks/bench_dask.py [--quick] [--only cpu|io]``

1. ``cpu``: 2,000 cases through a ``python:`` target that spins ~20 ms of pure-Python CPU
   (``benchmarks/_cpu_app.py``), in-process (one process: the GIL lets one case run at a
   time) against a running 2-worker ``LocalCluster`` (processes) on this machine, in one
   run of this script; the support-triage card without its judge (so no judge server
   competes for the two cores), its embedding scorer kept. The figure is the speed-up, in-process wall time / Dask wall time
   (target >= 1.7x on 2 cores). The client's serial part, the wall time of its store writes
   in the Dask run, is measured and gives the Amdahl extrapolation to N workers (its whole
   CPU time, which includes the in-process scheduler's, is printed beside it).
2. ``io``: the I/O-bound runner benchmark of ``bench_runner.py`` (1,000 cases at
   concurrency 32 against the demo server with a fixed 50 ms latency), in-process against
   the same cluster; the figure is the ratio of the Dask wall time to the in-process one
   (target <= 1.2x).

The cluster is started once, before the timed runs; its start-up time is printed apart.
Each timed ``run_eval`` call (run creation, the workers' sessions, scoring, storing, the
summary) follows an untimed warm-up run of the same kind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the apps and `workbench` from this checkout

import bench_runner as br  # noqa: E402
import yaml  # noqa: E402

from workbench import EvalOptions, Store, load_dataset  # noqa: E402
from workbench.demo.server import DemoProcess  # noqa: E402
from workbench.golden import Dataset  # noqa: E402

CPU_CASES = 2000
QUICK_CPU_CASES = 400
CPU_TARGET = "python:_cpu_app:answer"
CPU_MIN_SPEEDUP = 1.7
IO_MAX_RATIO = 1.2
WORKERS = 2
SPIN_SAMPLES = 50


def spin_ms() -> float:
    """The CPU milliseconds of one ``_cpu_app.spin()`` on this machine, now (median)."""
    import statistics

    import _cpu_app

    samples = []
    for _ in range(SPIN_SAMPLES):
        t0 = time.process_time()
        _cpu_app.spin()
        samples.append((time.process_time() - t0) * 1000)
    return statistics.median(samples)


class _StoreClock:
    """Seconds the client spends in ``Store.record_result`` (the store writes)."""

    def __init__(self, store: Store) -> None:
        self.seconds = 0.0
        inner = store.record_result

        def timed(*args: Any, **kwargs: Any) -> bool:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        store.record_result = timed  # type: ignore[method-assign]


def _pair(
    ds: Dataset, warm: Dataset, target: str, store: Store, local: EvalOptions, dask: EvalOptions
) -> tuple[br.Timing, br.Timing, float]:
    """One warm-up and one timed run in-process, then the same on the cluster; the Dask
    run's store-write seconds."""
    br.timed_run(warm, target, store, local)
    in_process = br.timed_run(ds, target, store, local)
    br.timed_run(warm, target, store, dask)
    clock = _StoreClock(store)
    on_dask = br.timed_run(ds, target, store, dask)
    del store.record_result  # back to the method
    return in_process, on_dask, clock.seconds


def _without_judge(folder: Path) -> Path:
    """The card without its judge: the CPU benchmark measures the target and the scorers
    (the embedding model included), not a judge server's share of the two cores."""
    card = yaml.safe_load((folder / "dataset.yaml").read_text(encoding="utf-8"))
    card.pop("judge", None)
    card["scorers"] = [s for s in card["scorers"] if s["name"] != "judge"]
    (folder / "dataset.yaml").write_text(yaml.safe_dump(card, sort_keys=False), "utf-8")
    return folder


def bench_cpu(folder: Path, store: Store, address: str, n: int) -> list[str]:
    """The CPU-bound speed-up, the client's serial part, and the Amdahl extrapolation."""
    ds = load_dataset(_without_judge(br.build_dataset(folder / "cpu", n, "bench-cpu")))
    warm = load_dataset(_without_judge(br.build_dataset(folder / "cpu-warm", 8, "bench-cpu")))
    local = EvalOptions()
    dask = EvalOptions(executor="dask", scheduler=address)
    ms = spin_ms()
    a, b, writes = _pair(ds, warm, CPU_TARGET, store, local, dask)
    speedup = a.wall / b.wall
    serial = b.cpu  # the client's CPU during the Dask run: everything it does per result
    lines = [
        f"cpu: {n} cases x {ms:.1f} ms of pure-Python CPU (median of {SPIN_SAMPLES} spins), "
        f"{WORKERS} workers",
        f"  in-process {a.wall:.2f} s (client CPU {a.cpu:.2f} s); Dask {b.wall:.2f} s "
        f"(client CPU {b.cpu:.2f} s, of which store writes {writes:.2f} s)",
        f"  speed-up {speedup:.2f}x (target >= {CPU_MIN_SPEEDUP:g}x): "
        + ("PASS" if speedup >= CPU_MIN_SPEEDUP else "MISS"),
    ]
    # Amdahl: the in-process wall time is the work W; the client's store writes S stay
    # serial (one writer), the rest divides among k workers: T(k) = S + (W - S) / k.
    share = writes / a.wall
    lines.append(
        f"  serial part: store writes S = {writes:.2f} s of W = {a.wall:.2f} s, S/W = {share:.3f} "
        f"(all the client's CPU: {serial / a.wall:.3f}); Amdahl with S serial: "
        + ", ".join(f"{k} workers {1 / (share + (1 - share) / k):.1f}x" for k in (2, 8, 32, 128))
        + f", at most {1 / share:.0f}x"
    )
    return lines


def bench_io(folder: Path, store: Store, address: str) -> list[str]:
    """The Dask path's overhead on bench_runner's demo benchmark (plain, not streamed)."""
    n = br.CASES
    ds = load_dataset(br.build_dataset(folder / "io", n))
    warm = load_dataset(br.build_dataset(folder / "io-warm", br.WARMUP_CASES))
    with DemoProcess(latency_ms=f"{br.LATENCY_MS:g}") as proc:
        br._warm_server(proc.url)
        local = EvalOptions(base_url=proc.url, concurrency=br.CONCURRENCY)
        dask = EvalOptions(
            base_url=proc.url, concurrency=br.CONCURRENCY, executor="dask", scheduler=address
        )
        a, b, writes = _pair(ds, warm, br.DEMO_TARGET, store, local, dask)
        # The same without the card's judge: a demo judge is a server each worker spawns per
        # run (an openai: judge is an endpoint, nothing to start), so this is the executor's
        # own overhead on calls to an endpoint.
        bare = load_dataset(_without_judge(br.build_dataset(folder / "io-bare", n, "bench-bare")))
        bare_warm = load_dataset(
            _without_judge(br.build_dataset(folder / "io-bare-warm", br.WARMUP_CASES, "bench-bare"))
        )
        c, d, _ = _pair(bare, bare_warm, br.DEMO_TARGET, store, local, dask)
    ideal = n / br.CONCURRENCY * br.LATENCY_MS / 1000
    ratio = b.wall / a.wall
    return [
        f"io: {n} cases at concurrency {br.CONCURRENCY}, demo server at {br.LATENCY_MS:g} ms "
        f"(ideal {ideal:.3f} s), {WORKERS} workers sharing a cap of {br.CONCURRENCY} calls",
        f"  in-process {a.wall:.3f} s ({a.wall / ideal:.2f}x ideal, client CPU {a.cpu:.2f} s); "
        f"Dask {b.wall:.3f} s ({b.wall / ideal:.2f}x ideal, client CPU {b.cpu:.2f} s, "
        f"store writes {writes:.2f} s)",
        f"  Dask / in-process {ratio:.3f}x (target <= {IO_MAX_RATIO:g}x): "
        + ("PASS" if ratio <= IO_MAX_RATIO else "MISS"),
        f"  without the judge (no server spawned per worker per run): in-process {c.wall:.3f} s, "
        f"Dask {d.wall:.3f} s, {d.wall / c.wall:.3f}x (context)",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Start the cluster, run the benchmarks, print the figures as ratios."""
    import distributed

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CPU_CASES} CPU cases")
    parser.add_argument("--only", choices=("cpu", "io"), help="run one benchmark")
    args = parser.parse_args(argv)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the start {load}; {os.cpu_count()} cores")
    t0 = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp,
        Store(Path(tmp) / "bench.db") as store,
    ):
        print(f"LocalCluster of {WORKERS} processes started in {time.perf_counter() - t0:.1f} s")
        lines: list[str] = []
        if args.only in (None, "cpu"):
            n = QUICK_CPU_CASES if args.quick else CPU_CASES
            lines += bench_cpu(Path(tmp), store, cluster.scheduler_address, n)
        if args.only in (None, "io"):
            lines += bench_io(Path(tmp), store, cluster.scheduler_address)
    print("\n".join(lines))
    end = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end {end}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
