"""Weekly-run benchmark: the whole demo weekly run, wall time per notebook and in total.

Usage: ``python benchmarks/bench_weekly.py [--out DIR]``

Runs ``workbench weekly`` on the bundled demo config (both model versions evaluated, compared,
the demo workload profiled, a trace generated and ingested, caches and budgets analysed) into
a temporary folder with a fresh database, as the README's first command does, and times each
notebook from the end of the one before. The reference is the issue's target, 90 s wall on
2 cores; a second reference, measured in the same run, is papermill's floor: one empty
notebook executed and published the same way, times the number of notebooks, which no
notebook content can go below.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from workbench import demo, publish, weekly  # noqa: E402

TARGET_S = 90.0


def _floor(folder: Path) -> float:
    """Seconds to execute and publish an empty parameterized notebook."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("db = None\nsummary_path = None")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("1")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    source = folder / "empty.ipynb"
    nbformat.write(nb, source)
    start = time.perf_counter()
    publish.publish(str(source), folder / "out", {}, name="empty")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the reports here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "reports"
        # Generated demo traces go to the temp folder, so the run generates its own (a reused
        # trace from an earlier run would hide the generation's cost).
        config = demo.weekly_config()
        traces = str(Path(tmp) / "traces")
        jobs = tuple(
            dataclasses.replace(job, parameters={**job.parameters, "artifacts": traces})
            if "demo_requests" in job.parameters
            else job
            for job in config.notebooks
        )
        config = dataclasses.replace(config, notebooks=jobs)
        times: list[tuple[str, float, bool]] = []
        last = time.perf_counter()

        def tick(report: publish.Report) -> None:
            nonlocal last
            now = time.perf_counter()
            times.append((report.name, now - last, report.ok))
            last = now

        start = last
        result = weekly.run_weekly(config, out, db=Path(tmp) / "bench.db", on_report=tick)
        total = time.perf_counter() - start
        floor = _floor(Path(tmp))
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print(f"{'notebook':28} {'seconds':>8}  status")
    for name, seconds, ok in times:
        print(f"{name:28} {seconds:8.1f}  {'ok' if ok else 'FAILED'}")
    index_s = total - sum(t for _, t, _ in times)
    print(f"{'index':28} {index_s:8.1f}")
    print(f"{'total':28} {total:8.1f}")
    print(
        f"papermill floor: {floor:.1f} s per notebook, {floor * len(times):.1f} s for {len(times)}"
    )
    print(f"ratio to the floor: {total / (floor * len(times)):.2f}x")
    verdict = "PASS" if total <= TARGET_S else "MISS"
    print(f"target: {TARGET_S:.0f} s wall -> {total / TARGET_S:.2f}x of target: {verdict}")
    summary = {
        "total_s": round(total, 1),
        "notebooks": {n: round(t, 1) for n, t, _ in times},
        "floor_s": round(floor, 1),
        "all_ok": all(ok for _, _, ok in times),
        "index": str(result.index),
    }
    print(json.dumps(summary))
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
