"""Comparison benchmark: two runs of 10,000 cases x 3 repeats, diffs and statistics included.

Usage: ``python benchmarks/bench_compare.py [--cases N] [--repeats K]``

Builds two synthetic runs in a temporary database (JSON outputs like the demo's, about a
quarter of them changed between the runs, some verdicts flipping, some repeats flaky), then
times ``workbench.compare.compare`` end to end: reading both runs, classifying every case,
field-level diffs with deepdiff, paired cluster-bootstrap intervals (2,000 resamples) for
pass rate, scores, every scorer and tag, latency, tokens and cost, McNemar and flakiness.
The reference is the target from the issue: 5 s on this machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.compare import compare  # noqa: E402
from workbench.store import Store  # noqa: E402

TARGET_S = 5.0
CATEGORIES = ("billing", "account", "bug", "feature_request", "shipping", "security", "outage")
WORDS = [
    "card",
    "charged",
    "twice",
    "refund",
    "invoice",
    "login",
    "password",
    "export",
    "report",
    "printer",
    "reader",
    "late",
]


def _output(rng: random.Random) -> dict[str, object]:
    return {
        "category": rng.choice(CATEGORIES),
        "priority": rng.choice(("p1", "p2", "p3", "p4")),
        "needs_human": rng.random() < 0.3,
        "summary": " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))),
    }


def _mutate(out: dict[str, object], rng: random.Random) -> dict[str, object]:
    new = dict(out)
    kind = rng.random()
    if kind < 0.3:
        new["category"] = rng.choice(CATEGORIES)
    elif kind < 0.5:
        new["priority"] = str(new["priority"]).upper()
    elif kind < 0.6:
        new["needs_human"] = "yes"
    else:
        words = str(new["summary"]).split()
        words[rng.randrange(len(words))] = rng.choice(WORDS)
        new["summary"] = " ".join(words)
    return new


def build(store: Store, cases: int, repeats: int, seed: int = 0) -> tuple[str, str]:
    """Two finished runs with paired results and per-scorer scores, written in bulk."""
    rng = random.Random(seed)
    runs = [
        store.create_run(dataset="bench", dataset_hash="h", target=t, repeats=repeats)
        for t in ("demo:a", "demo:b")
    ]
    results: list[tuple[object, ...]] = []
    scores: list[tuple[object, ...]] = []
    for i in range(cases):
        case_id = f"c{i:06d}"
        base = _output(rng)
        changed = rng.random() < 0.25
        flaky = rng.random() < 0.03
        base_pass = rng.random() < 0.8
        cand_pass = (not base_pass) if changed and rng.random() < 0.3 else base_pass
        cand = _mutate(base, rng) if changed else base
        for run_id, out, passed in ((runs[0], base, base_pass), (runs[1], cand, cand_pass)):
            for r in range(repeats):
                ok = (not passed) if flaky and r == repeats - 1 else passed
                score = 1.0 if ok else rng.uniform(0.2, 0.7)
                text = json.dumps(out)
                results.append(
                    (
                        run_id,
                        case_id,
                        r,
                        r,
                        text,
                        text,
                        int(ok),
                        score,
                        rng.lognormvariate(4.5, 0.4),
                        None,
                        300,
                        40,
                        0.0001,
                        "stop",
                        None,
                        None,
                        1,
                        "2026-01-01T00:00:00",
                    )
                )
                for scorer, value in (
                    ("json_schema", 1.0),
                    ("json_fields", score),
                    ("semantic[summary]", rng.random()),
                ):
                    scores.append((run_id, case_id, r, scorer, value, int(value >= 0.5), ""))
    with store.conn:
        store.conn.executemany(
            "INSERT INTO results (run_id, case_id, repeat, seed, output, parsed, passed, score, "
            "latency_ms, ttft_ms, tokens_in, tokens_out, cost_usd, finish_reason, error, "
            "error_kind, attempts, created_at) VALUES (" + ", ".join("?" * 18) + ")",
            results,
        )
        store.conn.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)", scores)
    for run_id in runs:
        store.finish_run(run_id, "finished")
    return runs[0], runs[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        base, cand = build(store, args.cases, args.repeats)
        setup = time.perf_counter() - t0
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            cmp = compare(store, base, cand)
            times.append(time.perf_counter() - t0)
        store.close()
    median = statistics.median(times)
    print(
        f"python {platform.python_version()}, {args.cases:,} cases x {args.repeats} repeats "
        f"({cmp.pairs:,} pairs); setup {setup:.1f} s"
    )
    print(f"transitions: {cmp.counts}")
    print(f"changed fields: {dict(cmp.field_counts())}")
    print(f"compare wall time: median {median:.2f} s of {[round(t, 2) for t in times]}")
    verdict = "PASS" if median <= TARGET_S else "MISS"
    print(f"ratio to the {TARGET_S:.0f} s target: {median / TARGET_S:.2f}x  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
