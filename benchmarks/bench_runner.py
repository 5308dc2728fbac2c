"""Runner benchmarks: concurrency efficiency against the demo server, and harness overhead.

Usage: ``python benchmarks/bench_runner.py [--quick] [--write]``

1. ``demo``: N cases at concurrency 32 against the demo server (a child process, so client
   and server do not share a GIL) with a fixed 50 ms latency, plain and streamed. The
   reference is the ideal wall time N / 32 x 50 ms.
2. ``instant``: the same cases through a ``python:`` target that answers instantly
   (``benchmarks/_instant_app.py``), scored with the card's real scorers and stored. The
   reference is a plain loop calling the function and ``json.dumps`` (no harness).

Each figure is the median of several timed ``run_eval`` calls after one untimed warm-up
(which loads the wordllama model and warms the server). Every figure is printed next to
its reference, the ratio and the target; ``--write`` rewrites ``benchmarks/RESULTS.md``
and keeps whatever follows the notes marker in it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # `_instant_app` and `workbench` from this checkout

import httpx  # noqa: E402

from workbench import EvalOptions, Request, RunSummary, Store, load_dataset, run_eval  # noqa: E402
from workbench.demo.server import DemoProcess  # noqa: E402
from workbench.golden import Dataset  # noqa: E402

# -- parameters ---------------------------------------------------------------------
CASES = 1000
QUICK_CASES = 320
REPEATS = 3
QUICK_REPEATS = 1
CONCURRENCY = 32
LATENCY_MS = 50.0
WARMUP_CASES = 2 * CONCURRENCY
DEMO_TARGET = "demo:triage-v1"
DEMO_MAX_RATIO = 1.15  # wall time / ideal wall time
INSTANT_MIN_RATE = 3000.0  # results per second
BASELINE_REPEATS = 5
GOLDEN = ROOT / "data" / "golden" / "support-triage"
RESULTS_MD = HERE / "RESULTS.md"
NOTES_MARKER = "<!-- notes below this line are kept by --write -->"


@dataclass
class Figure:
    """One measured figure beside its reference, the ratio and the target."""

    name: str
    value: float
    unit: str
    reference: str
    reference_value: float
    ratio: float
    target: str
    ok: bool | None
    detail: str = ""

    @property
    def verdict(self) -> str:
        """PASS, MISS, or a dash for figures that only give context."""
        return "-" if self.ok is None else ("PASS" if self.ok else "MISS")


def build_dataset(folder: Path, n: int, name: str = "bench-triage") -> Path:
    """A copy of the support-triage card with n cases cycled from its golden tickets."""
    folder.mkdir(parents=True)
    card = (GOLDEN / "dataset.yaml").read_text(encoding="utf-8")
    (folder / "dataset.yaml").write_text(
        card.replace("name: support-triage", f"name: {name}", 1), encoding="utf-8"
    )
    golden = [
        json.loads(line)
        for line in (GOLDEN / "cases.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    with (folder / "cases.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n):
            case = dict(golden[i % len(golden)], id=f"bench-{i:04d}")
            fh.write(json.dumps(case, ensure_ascii=False) + "\n")
    return folder


@dataclass
class Timing:
    """One timed run_eval call: wall seconds, this process's CPU seconds, p50 latency."""

    wall: float
    cpu: float
    p50_latency_ms: float | None


def timed_run(ds: Dataset, target: str, store: Store, options: EvalOptions) -> Timing:
    """Time one run_eval call; the run must finish with a result for every case."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    summary = run_eval(ds, target, store=store, options=options)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    _check(summary, len(ds.cases))
    return Timing(wall, cpu, summary.p50_latency_ms)


def _check(summary: RunSummary, n: int) -> None:
    if summary.status != "finished" or summary.results != n or summary.errors:
        raise SystemExit(
            f"benchmark run {summary.run_id} is not clean: status {summary.status}, "
            f"{summary.results}/{n} results, {summary.errors} errors ({summary.reason})"
        )


def _timed_runs(
    ds: Dataset, warm: Dataset, target: str, store: Store, options: EvalOptions, repeats: int
) -> list[Timing]:
    timed_run(warm, target, store, options)
    return [timed_run(ds, target, store, options) for _ in range(repeats)]


def _samples(runs: Sequence[Timing], latency: bool = False) -> str:
    parts = []
    for r in runs:
        part = f"{r.wall:.3f} s (client CPU {r.cpu:.2f} s"
        if latency and r.p50_latency_ms is not None:
            part += f", p50 latency {r.p50_latency_ms:.1f} ms"
        parts.append(part + ")")
    return "runs: " + ", ".join(parts)


def _warm_server(url: str, requests: int = 8) -> None:
    body = {"model": DEMO_TARGET.partition(":")[2], "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(requests):
            client.post("/chat/completions", json=body).raise_for_status()


def bench_demo(ds: Dataset, warm: Dataset, store: Store, repeats: int) -> list[Figure]:
    """Concurrency efficiency against the demo server in a child process, plain and streamed."""
    n = len(ds.cases)
    ideal = n / CONCURRENCY * LATENCY_MS / 1000
    figures: list[Figure] = []
    with DemoProcess(latency_ms=f"{LATENCY_MS:g}") as proc:
        _warm_server(proc.url)
        for stream in (False, True):
            options = EvalOptions(base_url=proc.url, concurrency=CONCURRENCY, stream=stream)
            runs = _timed_runs(ds, warm, DEMO_TARGET, store, options, repeats)
            wall = statistics.median(r.wall for r in runs)
            label = "stream" if stream else "plain"
            figures.append(
                Figure(
                    name=f"demo {label}: wall time, {n} cases",
                    value=wall,
                    unit="s",
                    reference=f"ideal {n}/{CONCURRENCY} x {LATENCY_MS:g} ms",
                    reference_value=ideal,
                    ratio=wall / ideal,
                    target=f"<= {DEMO_MAX_RATIO:g}x",
                    ok=wall / ideal <= DEMO_MAX_RATIO,
                    detail=_samples(runs, latency=True),
                )
            )
            ideal_rate = CONCURRENCY / (LATENCY_MS / 1000)
            figures.append(
                Figure(
                    name=f"demo {label}: results/s",
                    value=n / wall,
                    unit="/s",
                    reference=f"ideal {CONCURRENCY} / {LATENCY_MS:g} ms",
                    reference_value=ideal_rate,
                    ratio=(n / wall) / ideal_rate,
                    target="context",
                    ok=None,
                )
            )
    return figures


def baseline_rate(ds: Dataset, fn: Callable[[Request], object]) -> tuple[float, list[float]]:
    """Results/s of a bare loop: build the request, call the function, json.dumps (best of N)."""
    walls = []
    for _ in range(BASELINE_REPEATS):
        t0 = time.perf_counter()
        for case in ds.cases:
            json.dumps(fn(Request(messages=[], case_id=case.id, input=case.input)))
        walls.append(time.perf_counter() - t0)
    return len(ds.cases) / statistics.median(walls), walls


def bench_instant(ds: Dataset, warm: Dataset, store: Store, repeats: int) -> list[Figure]:
    """Harness overhead with an instant in-process provider, scoring and storage included."""
    import _instant_app

    n = len(ds.cases)
    base_rate, _ = baseline_rate(ds, _instant_app.answer)
    figures = [
        Figure(
            name=f"baseline loop: results/s, {n} cases",
            value=base_rate,
            unit="/s",
            reference="(the no-harness ideal)",
            reference_value=base_rate,
            ratio=1.0,
            target="context",
            ok=None,
        )
    ]
    options = EvalOptions(concurrency=CONCURRENCY)
    for fn, kind in (("answer", "sync"), ("answer_async", "async")):
        target = f"python:_instant_app:{fn}"
        runs = _timed_runs(ds, warm, target, store, options, repeats)
        rate = n / statistics.median(r.wall for r in runs)
        per_result_us = (1 / rate - 1 / base_rate) * 1e6
        figures.append(
            Figure(
                name=f"instant {kind} def: results/s",
                value=rate,
                unit="/s",
                reference="baseline loop",
                reference_value=base_rate,
                ratio=rate / base_rate,
                target=f">= {INSTANT_MIN_RATE:,.0f}/s",
                ok=rate >= INSTANT_MIN_RATE,
                detail=f"{_samples(runs)}; harness cost {per_result_us:.0f} us/result",
            )
        )
    return figures


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.0f}/s"


def table(figures: Sequence[Figure]) -> list[list[str]]:
    """Rows of (figure, value, reference, reference value, ratio, target, verdict)."""
    rows = [["figure", "value", "reference", "ref. value", "ratio", "target", "verdict"]]
    for f in figures:
        rows.append(
            [
                f.name,
                _fmt(f.value, f.unit),
                f.reference,
                _fmt(f.reference_value, f.unit),
                f"{f.ratio:.3f}x",
                f.target,
                f.verdict,
            ]
        )
    return rows


def print_table(rows: list[list[str]]) -> None:
    """Print rows as an aligned plain-text table."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for j, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def markdown(
    figures: Sequence[Figure], command: str, n: int, repeats: int, load: str, notes: str
) -> str:
    """The RESULTS.md text: when, where, how, every figure with reference, ratio and target."""
    rows = table(figures)
    lines = [
        "# Runner benchmarks",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.machine()}",
        f"- Load average when the run started: {load} (the machine may be shared; "
        "figures from a busy machine read high)",
        f"- Command: `{command}`",
        f"- Setup: {n} cases cycled from the support-triage golden set (its card and scorers), "
        f"concurrency {CONCURRENCY}; each figure is the median of {repeats} timed `run_eval` "
        f"call(s) after one untimed warm-up run of {WARMUP_CASES} cases; only `run_eval` is timed "
        "(it includes creating the run, scoring, storing and the summary).",
        f'- Demo server: `DemoProcess(latency_ms="{LATENCY_MS:g}")`, a child process, warmed '
        f"with a few requests; target `{DEMO_TARGET}`.",
        "- Instant app: `benchmarks/_instant_app.py` returns the golden answer for the ticket; "
        "baseline = a loop building a `Request`, calling `answer` and `json.dumps` "
        f"(median of {BASELINE_REPEATS}).",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "|".join("---" for _ in rows[0]) + "|",
        *("| " + " | ".join(r) + " |" for r in rows[1:]),
        "",
        "Samples:",
        "",
        *(f"- {f.name}: {f.detail}" for f in figures if f.detail),
        "",
        NOTES_MARKER,
    ]
    return "\n".join(lines) + "\n" + notes


def _kept_notes() -> str:
    if not RESULTS_MD.exists():
        return ""
    text = RESULTS_MD.read_text(encoding="utf-8")
    _, marker, notes = text.partition(NOTES_MARKER + "\n")
    return notes if marker else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run both benchmarks, print the table and optionally write RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CASES} cases, 1 run each")
    parser.add_argument("--write", action="store_true", help=f"rewrite {RESULTS_MD.name}")
    parser.add_argument(
        "--only", choices=("demo", "instant"), help="run one benchmark (for profiling)"
    )
    args = parser.parse_args(argv)
    n = QUICK_CASES if args.quick else CASES
    repeats = QUICK_REPEATS if args.quick else REPEATS
    raw = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python", "benchmarks/bench_runner.py", *raw])
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        folder = Path(tmp)
        ds = load_dataset(build_dataset(folder / "cases", n))
        warm = load_dataset(build_dataset(folder / "warm", WARMUP_CASES))
        with Store(folder / "bench.db") as store:
            if args.only in (None, "demo"):
                figures += bench_demo(ds, warm, store, repeats)
            if args.only in (None, "instant"):
                figures += bench_instant(ds, warm, store, repeats)
    print(f"{n} cases, concurrency {CONCURRENCY}, median of {repeats}; load average {load}")
    print_table(table(figures))
    for f in figures:
        if f.detail:
            print(f"  {f.name}: {f.detail}")
    if args.write:
        RESULTS_MD.write_text(markdown(figures, command, n, repeats, load, _kept_notes()), "utf-8")
        print(f"wrote {RESULTS_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
