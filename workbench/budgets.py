"""Budgets: limits on a run's figures (latency, errors, pass rate, scores) and their checks."""

from __future__ import annotations

from collections.abc import Mapping

from workbench.checks import Check, Direction, limit_check

__all__ = ["METRICS", "check"]

# name -> (direction, unit). "max": the figure must stay at or below the limit.
METRICS: dict[str, tuple[Direction, str]] = {
    "p50_latency_ms": ("max", "ms"),
    "p95_latency_ms": ("max", "ms"),
    "error_rate": ("max", "%"),
    "pass_rate": ("min", "%"),
    "mean_score": ("min", ""),
}


def check(
    figures: Mapping[str, float | None],
    budgets: Mapping[str, float],
    scorer_pass_shares: Mapping[str, float | None] | None = None,
) -> list[Check]:
    """Checks for the card's budgets; each scorer's pass share must also meet the pass-rate floor."""
    results = []
    for name, limit in budgets.items():
        if name == "judge_kappa":  # a floor on each judge scorer's calibration, checked there
            continue
        direction, unit = METRICS.get(name, ("max", ""))
        results.append(limit_check(name, figures.get(name), float(limit), direction, unit))
    floor = budgets.get("pass_rate")
    if floor is not None:
        for label, share in (scorer_pass_shares or {}).items():
            results.append(limit_check(f"scorer:{label}", share, float(floor), "min", "%"))
    return results
