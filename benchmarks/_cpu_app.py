"""A CPU-bound "app" for the Dask benchmark: ~20 ms of pure-Python work, then the golden answer.

The work holds the GIL the whole time, so threads in one process cannot run two cases at
once: only more processes (the Dask workers) make it faster. It answers as
``_instant_app`` does, so the scores are the golden ones.
"""

from __future__ import annotations

from typing import Any

from _instant_app import answer as _golden

from workbench import Request

ITERATIONS = 350_000  # about 20 ms of one core on the benchmark machine (measured in the run)


def spin(iterations: int = ITERATIONS) -> int:
    """Pure-Python arithmetic that holds the GIL for ``iterations`` steps."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def answer(request: Request) -> dict[str, Any]:
    """Spin for ~20 ms of CPU, then the expected triage for the request's ticket."""
    spin()
    return _golden(request)
