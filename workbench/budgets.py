"""Budgets: limits on a run's figures (latency, errors, pass rate, scores) and their verdicts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# name -> (direction, unit). "max": the figure must stay at or below the limit.
METRICS: dict[str, tuple[str, str]] = {
    "p50_latency_ms": ("max", "ms"),
    "p95_latency_ms": ("max", "ms"),
    "error_rate": ("max", "%"),
    "pass_rate": ("min", "%"),
    "mean_score": ("min", ""),
}


@dataclass(frozen=True)
class BudgetResult:
    """One budget's verdict: the figure, its limit, and by how much it broke."""

    name: str
    limit: float
    actual: float | None
    direction: str  # "max" or "min"
    unit: str = ""

    @property
    def ok(self) -> bool:
        """True when the figure is within its limit (a missing figure is not a breach)."""
        if self.actual is None or math.isnan(self.actual):
            return True
        return self.actual <= self.limit if self.direction == "max" else self.actual >= self.limit

    @property
    def overshoot(self) -> float:
        """How far past the limit, in the figure's own unit (0 when within)."""
        if self.ok or self.actual is None:
            return 0.0
        return abs(self.actual - self.limit)

    def describe(self) -> str:
        """A one-line verdict such as ``p95_latency_ms 1,812 ms > 1,500 ms (by 312 ms)``."""
        actual = "n/a" if self.actual is None else _fmt(self.actual, self.unit)
        op = "≤" if self.direction == "max" else "≥"
        if self.ok:
            return f"{self.name} {actual} (budget {op} {_fmt(self.limit, self.unit)}): ok"
        bad = ">" if self.direction == "max" else "<"
        return (
            f"{self.name} {actual} {bad} {_fmt(self.limit, self.unit)} "
            f"(by {_fmt(self.overshoot, self.unit)}): BROKEN"
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form."""
        return {
            "name": self.name,
            "limit": self.limit,
            "actual": self.actual,
            "direction": self.direction,
            "ok": self.ok,
            "message": self.describe(),
        }


def check(
    figures: Mapping[str, float | None],
    budgets: Mapping[str, float],
    scorer_pass_shares: Mapping[str, float | None] | None = None,
) -> list[BudgetResult]:
    """Verdicts for the card's budgets; each scorer's pass share must also meet the pass-rate floor."""
    results = []
    for name, limit in budgets.items():
        direction, unit = METRICS.get(name, ("max", ""))
        results.append(BudgetResult(name, float(limit), figures.get(name), direction, unit))
    floor = budgets.get("pass_rate")
    if floor is not None:
        for label, share in (scorer_pass_shares or {}).items():
            results.append(BudgetResult(f"scorer:{label}", float(floor), share, "min", "%"))
    return results


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.2f}%"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:.3f}"
