"""Redaction benchmark: per-kind precision and recall on held-out data, and throughput.

Usage: ``python benchmarks/bench_redact.py [--splits held_out,tuning] [--runs 5]``

Scores ``workbench.redact`` on the labelled corpus of ``tests/redaction_corpus.py`` (Faker-built
support tickets with exact spans; the held-out split is one the detectors were never tuned on)
and prints, per kind, the labelled items, precision and recall against the issue's bars
(P >= 0.98, R >= 0.97). Then it times ``redact`` over every text of the first split, in texts/s
and MB/s of UTF-8 input, against a plain baseline timed in the same run on the same texts: one
combined naive regex pass, ``re.sub`` of emails, dotted quads and digit runs (no validation, no
cues, no secrets), which is about the least a redactor can do.
"""

from __future__ import annotations

import argparse
import logging
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import redaction_corpus as rc  # noqa: E402
from workbench.redact import KINDS, redact  # noqa: E402

# The baseline: emails, dotted quads and runs of 7+ digits with separators, in one pass.
_NAIVE = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}\b"
    r"|\+?\d(?:[ ()./-]?\d){6,}"
)


def naive(text: str) -> str:
    """The baseline redactor: one `re.sub` of the naive pattern."""
    return _NAIVE.sub("[REDACTED]", text)


def timed(fn: Callable[[str], str], texts: Sequence[str], runs: int) -> float:
    """Median wall time, over `runs` runs, of `fn` over every text."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for text in texts:
            fn(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_scores(split: str) -> None:
    """Per-kind labelled items, precision and recall of one split, with the verdicts."""
    rows = rc.corpus(split)
    score = rc.score(rows)
    print(f"\n{split}: {len(rows):,} texts, {sum(score.labelled.values()):,} labelled items")
    print(
        f"  {'kind':8} {'labelled':>8} {'found':>6} {'redacted':>8} {'wrong':>5} {'P':>6} {'R':>6}"
    )
    for kind in KINDS:
        p, r = score.precision(kind), score.recall(kind)
        verdict = "PASS" if p >= rc.PRECISION_BAR and r >= rc.RECALL_BAR else "MISS"
        print(
            f"  {kind:8} {score.labelled[kind]:8,} {score.found[kind]:6,} "
            f"{score.redacted[kind]:8,} {score.redacted[kind] - score.correct[kind]:5,} "
            f"{p:6.3f} {r:6.3f}  {verdict}"
        )
    print(f"  misses {len(score.misses)}, false positives {len(score.false_positives)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--splits",
        default="held_out,tuning",
        help=f"comma-separated, from {', '.join(rc.SPLITS)}; the first is timed",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs (median reported)")
    args = parser.parse_args()
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = [s for s in splits if s not in rc.SPLITS]
    if not splits or unknown:
        parser.error(f"unknown split(s) {unknown}; choose from {', '.join(rc.SPLITS)}")
    logging.getLogger("faker").setLevel(logging.ERROR)  # en_PH's bank provider warns on import

    start = time.perf_counter()
    for split in splits:
        rc.corpus(split)
    print(
        f"python {platform.python_version()} on {platform.machine()}; corpus built in "
        f"{time.perf_counter() - start:.1f} s; bars P >= {rc.PRECISION_BAR}, R >= {rc.RECALL_BAR}"
    )
    for split in splits:
        print_scores(split)

    texts = [row.text for row in rc.corpus(splits[0])]
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    redact(texts[0])  # warm the lazily built state (libphonenumber's metadata)
    ours = timed(redact, texts, args.runs)
    base = timed(naive, texts, args.runs)
    print(
        f"\nthroughput on {splits[0]}: {len(texts):,} texts, {megabytes:.2f} MB, median of {args.runs}"
    )
    for name, seconds in (("redact", ours), ("naive re.sub baseline", base)):
        print(
            f"  {name:22} {seconds:7.3f} s  {len(texts) / seconds:10,.0f} texts/s  "
            f"{megabytes / seconds:6.2f} MB/s"
        )
    print(f"  redact takes {ours / base:.1f}x the baseline's time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
