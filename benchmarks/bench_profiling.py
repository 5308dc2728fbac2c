"""Profiler overhead on the demo workload: throughput with and without py-spy (and scalene).

Usage: ``python benchmarks/bench_profiling.py [--duration S] [--repeats N]``

The demo workload (``python -m workbench.demo workload``) replays golden tickets through
the demo app for a fixed time and reports requests per second. It runs plainly, under
``py-spy record`` at 100 Hz, and under ``scalene run`` (CPU only, and CPU plus memory),
interleaved so machine noise hits every variant alike. The overhead is
1 − (throughput profiled ÷ throughput plain), the plain run being the reference.
Target for py-spy at 100 Hz: ≤ 5%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET = 0.05


def _workload(duration: float, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workbench.demo",
        "workload",
        "--duration",
        str(duration),
        "--json-out",
        str(out),
    ]


def _variant(name: str, duration: float, tmp: Path) -> list[str]:
    out = tmp / f"{name}.json"
    work = _workload(duration, out)
    if name == "plain":
        return work
    if name == "py-spy 100 Hz":
        return [
            str(BIN / "py-spy"),
            "record",
            "-r",
            "100",
            "-f",
            "raw",
            "--nolineno",
            "-o",
            str(tmp / "raw.txt"),
            "--",
            *work,
        ]
    scalene = [str(BIN / "scalene"), "run", "-o", str(tmp / "scalene.json")]
    if name == "scalene cpu":
        scalene.append("--cpu-only")
    return [*scalene, "-m", "workbench.demo", "---", *work[3:]]


def measure(name: str, duration: float, tmp: Path) -> float:
    """Requests per second of one workload run under a variant."""
    out = tmp / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = _variant(name, duration, tmp)
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=duration * 10 + 60)
    return float(json.loads(out.read_text())["per_second"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-scalene", action="store_true")
    args = parser.parse_args()
    variants = ["plain", "py-spy 100 Hz"] + (
        [] if args.no_scalene else ["scalene cpu", "scalene cpu+memory"]
    )
    rates: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for v in variants:
                try:
                    rates[v].append(measure(v, args.duration, Path(tmp)))
                except (subprocess.CalledProcessError, OSError, ValueError, KeyError) as exc:
                    print(f"{v}: failed: {exc}", file=sys.stderr)
    plain = statistics.median(rates["plain"])
    print(f"demo workload, {args.duration:g} s per run, median of {args.repeats} interleaved runs")
    print(f"{'variant':<20} {'req/s':>9}  {'overhead vs plain':>18}  runs")
    for v in variants:
        if not rates[v]:
            continue
        med = statistics.median(rates[v])
        overhead = 1 - med / plain
        mark = ""
        if v == "py-spy 100 Hz":
            mark = "  PASS" if overhead <= TARGET else "  MISS"
        print(f"{v:<20} {med:>9.1f}  {overhead:>17.1%}{mark}  {[round(r) for r in rates[v]]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
