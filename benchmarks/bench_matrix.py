"""Many-way comparison benchmark: a 4-cell matrix over 10,000 cases of stored runs.

Usage: ``python benchmarks/bench_matrix.py [--cases N] [--repeats K] [--cells C]``

Builds C finished runs over the same cases in a temporary database through the Store API
(two targets x two prompt hashes for C = 4; one cases hash; JSON outputs like the demo's,
about a quarter changed against the baseline, some verdicts flipping, a few flaky repeats and
errors; latency, tokens, cost and three scorers on every result, and a stored summary), then
times ``workbench.matrix.matrix_of`` end to end (each candidate compared with the baseline
case by case, with deepdiff and paired cluster-bootstrap intervals at 2,000 resamples, the
cost-per-pass bootstrap and the Pareto front) followed by ``leaderboard()`` and
``render_text()``. The reference is the target from the issue, 10 s on this machine; the
plain baseline, measured in the same run, is the C - 1 two-way ``compare()`` calls alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_compare import _mutate, _output  # noqa: E402

from workbench.compare import compare  # noqa: E402
from workbench.matrix import Matrix, matrix_of  # noqa: E402
from workbench.store import ResultRow, ScoreRow, Store  # noqa: E402
from workbench.text import percentile  # noqa: E402

T = TypeVar("T")

TARGET_S = 10.0
SCORERS = ("json_schema", "json_fields", "semantic[summary]")
PROMPTS = {
    "v1": {
        "name": "v1",
        "system": "Triage the ticket into JSON with category, priority, needs_human, summary.\n"
        "Priorities: p1 outage, p2 blocked user, p3 degraded, p4 question.",
        "user": "{{ ticket }}",
    },
    "terse": {
        "name": "terse",
        "system": "Triage the ticket as JSON: category, priority, needs_human, summary.",
        "user": "{{ ticket }}",
    },
}
PRICE_IN, PRICE_OUT = 0.15e-6, 0.60e-6  # USD per token


def _cell(i: int) -> tuple[str, str]:
    """Cell i of the grid: (target, prompt); prompts vary fastest."""
    return f"demo:model-{i // 2}", ("v1", "terse")[i % 2]


def build(store: Store, cases: int, repeats: int, cells: int, seed: int = 0) -> list[str]:
    """``cells`` finished runs over the same cases, each with a stored summary; the first
    is the baseline. Written result by result with ``Store.record_result``."""
    rng = random.Random(seed)
    runs = []
    for i in range(cells):
        target, prompt = _cell(i)
        runs.append(
            store.create_run(
                dataset="bench-matrix",
                dataset_hash=f"d-{prompt}",
                cases_hash="cases-10k",
                prompt_hash=f"p-{prompt}",
                prompt=PROMPTS[prompt],
                target=target,
                cases=cases,
                repeats=repeats,
                parameters={"repeats": repeats},
            )
        )
    rows: dict[str, list[tuple[ResultRow, list[ScoreRow]]]] = {r: [] for r in runs}
    for n in range(cases):
        case_id = f"c{n:06d}"
        base = _output(rng)
        base_pass = rng.random() < 0.8
        flaky = rng.random() < 0.03
        for i, run_id in enumerate(runs):
            target, prompt = _cell(i)
            changed = i > 0 and rng.random() < 0.25
            passed = (not base_pass) if changed and rng.random() < 0.3 else base_pass
            out = _mutate(base, rng) if changed else base
            slow = 1.0 + 0.15 * (i // 2)  # the second target is slower
            short = 0.7 if prompt == "terse" else 1.0  # the terse prompt sends fewer tokens
            for r in range(repeats):
                ok = (not passed) if flaky and r == repeats - 1 else passed
                row = _result(run_id, case_id, r, out, ok, slow, short, rng)
                rows[run_id].append(row)
    for run_id in runs:
        for row, scores in rows[run_id]:
            store.record_result(row, scores)
        store.finish_run(run_id, "finished", summary=_summary(rows[run_id]))
    return runs


def _result(
    run_id: str,
    case_id: str,
    repeat: int,
    out: dict[str, object],
    ok: bool,
    slow: float,
    short: float,
    rng: random.Random,
) -> tuple[ResultRow, list[ScoreRow]]:
    tokens_in = int(rng.randint(250, 350) * short)
    if rng.random() < 0.005:  # a timeout: no output, no score, no latency
        row = ResultRow(run_id, case_id, repeat, seed=repeat, tokens_in=tokens_in, tokens_out=0)
        row.error, row.error_kind, row.attempts = "timed out after 30 s", "timeout", 3
        return row, []
    tokens_out = int(rng.randint(30, 60) * short)
    score = 1.0 if ok else rng.uniform(0.2, 0.7)
    text = json.dumps(out)
    row = ResultRow(
        run_id=run_id,
        case_id=case_id,
        repeat=repeat,
        seed=repeat,
        output=text,
        parsed=out,
        passed=ok,
        score=score,
        latency_ms=rng.lognormvariate(4.5, 0.4) * slow,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=tokens_in * PRICE_IN + tokens_out * PRICE_OUT,
        finish_reason="stop",
    )
    values = (1.0, score, rng.random())
    return row, [ScoreRow(s, v, v >= 0.5) for s, v in zip(SCORERS, values, strict=True)]


def _summary(rows: list[tuple[ResultRow, list[ScoreRow]]]) -> dict[str, Any]:
    """The keys of a run summary that matrix.py reads, as ``runner.summarize`` computes them
    (it cannot run here: it loads the dataset by name, and this one is not on disk)."""
    results = [r for r, _ in rows]
    ok = [r for r in results if not r.error]
    scores = [r.score for r in ok if r.score is not None]
    latencies = np.array([r.latency_ms for r in ok if r.latency_ms is not None], dtype=float)
    costs = [r.cost_usd for r in ok if r.cost_usd is not None]
    by_scorer: dict[str, list[float]] = {}
    for _, scored in rows:
        for s in scored:
            by_scorer.setdefault(s.scorer, []).append(s.score)
    passed = sum(r.passed for r in results)
    return {
        "results": len(results),
        "passed": passed,
        "pass_rate": passed / len(results),
        "mean_score": float(np.mean(scores)),
        "scorer_means": {k: float(np.mean(v)) for k, v in sorted(by_scorer.items())},
        "p50_latency_ms": percentile(latencies, 50),
        "p95_latency_ms": percentile(latencies, 95),
        "tokens_in": sum(r.tokens_in or 0 for r in results),
        "tokens_out": sum(r.tokens_out or 0 for r in results),
        "cost_usd": float(sum(costs)),
        "errors": sum(1 for r in results if r.error),
    }


def _timed(fn: Callable[[], T]) -> tuple[float, float, T]:
    """Wall and CPU seconds of one call, and its value."""
    w0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - w0, time.process_time() - c0, value


def _whole(store: Store, run_ids: list[str]) -> tuple[Matrix, str]:
    m = matrix_of(store, run_ids)
    m.leaderboard()
    return m, m.render_text()


def _missing_intervals(m: Matrix) -> list[str]:
    """Deltas of the leaderboard that came out without an interval."""
    missing = []
    for row in m.leaderboard()[1:]:
        deltas = dict(row["deltas"])
        deltas.update({f"scorer {k}": v for k, v in deltas.pop("scorers").items()})
        for name, d in deltas.items():
            if d is None or d.get("low") is None or d["low"] != d["low"]:
                missing.append(f"{row['cell']}: {name}")
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="timed runs (best and median)")
    args = parser.parse_args()
    if args.cells < 2:
        parser.error("--cells must be at least 2 (a baseline and a candidate)")
    load = os.getloadavg()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        run_ids = build(store, args.cases, args.repeats, args.cells)
        setup = time.perf_counter() - t0
        base, cands = run_ids[0], run_ids[1:]
        # Interleaved, so a change in the machine's load hits both figures alike.
        pairwise, pairwise_cpu, whole, whole_cpu = [], [], [], []
        for _ in range(args.runs):
            wall, cpu, _ = _timed(lambda: [compare(store, base, c) for c in cands])
            pairwise.append(wall)
            pairwise_cpu.append(cpu)
            wall, cpu, (m, text) = _timed(lambda: _whole(store, run_ids))
            whole.append(wall)
            whole_cpu.append(cpu)
        store.close()
    end_load = os.getloadavg()
    missing = _missing_intervals(m)
    best, median = min(whole), statistics.median(whole)
    pair_best, pair_median = min(pairwise), statistics.median(pairwise)
    verdict = "PASS" if median <= TARGET_S and not missing else "FAIL"
    print(text)
    print()
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, {args.cells} cells x "
        f"{args.cases:,} cases x {args.repeats} repeat(s); setup {setup:.1f} s; "
        f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the start, "
        f"{end_load[0]:.2f} at the end"
    )
    print(f"intervals missing: {', '.join(missing) if missing else 'none'}")
    cpu, pair_cpu = statistics.median(whole_cpu), statistics.median(pairwise_cpu)
    print(
        f"matrix_of + leaderboard + render_text: best {best:.2f} s, median {median:.2f} s "
        f"of {[round(t, 2) for t in whole]}; CPU median {cpu:.2f} s"
    )
    print(
        f"{len(cands)} two-way compare() calls alone: best {pair_best:.2f} s, median "
        f"{pair_median:.2f} s of {[round(t, 2) for t in pairwise]}; CPU median {pair_cpu:.2f} s"
    )
    ratio = median / TARGET_S
    overhead = median / pair_median
    print(f"ratio to the {TARGET_S:.0f} s target: {ratio:.2f}x  {verdict}")
    print(f"ratio to the {len(cands)} compare() calls: {overhead:.2f}x")
    print()
    when = started.strftime("%Y-%m-%d %H:%M")
    flags = " ".join(
        f"--{k} {v}"
        for k, v, default in (
            ("cases", args.cases, 10_000),
            ("repeats", args.repeats, 1),
            ("cells", args.cells, 4),
        )
        if v != default
    )
    command = ".venv/bin/python benchmarks/bench_matrix.py" + (f" {flags}" if flags else "")
    print(
        f"| many-way comparison, {args.cells} cells x {args.cases:,} cases x {args.repeats} "
        f"repeat(s) of stored runs: `matrix_of` + `leaderboard()` + `render_text()`, "
        f"intervals at 2,000 resamples ({when} UTC, load average {load[0]:.2f} at start, "
        f"{end_load[0]:.2f} at the end) | `{command}` | median {median:.2f} s "
        f"(best {best:.2f} s; CPU {cpu:.2f} s) | target {TARGET_S:.0f} s; {len(cands)} two-way "
        f"`compare()` alone, same run, {pair_median:.2f} s (best {pair_best:.2f} s) "
        f"| {ratio:.2f}x of target, {overhead:.2f}x the compares | <= {TARGET_S:.0f} s "
        f"| {verdict} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
