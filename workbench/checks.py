"""One result contract: every capability's result says the same things the same way.

A result (an eval's :class:`~workbench.runner.RunSummary`, a
:class:`~workbench.compare.Comparison`, a load test's :class:`~workbench.latency.LoadRun`,
a :class:`~workbench.profiling.ProfileOutcome`, the trace budgets' :class:`~workbench.slo.SloReport`,
the :class:`~workbench.cache.CacheReport`) implements :class:`Result`:

- ``checks()``: its pass/fail statements, each a :class:`Check` (name, ok, message, and the
  figure against its limit when there is one). The CI gate, the report badges and the
  notebooks' verdict lines read these and nothing else.
- ``headline()``: the few numbers that matter, flat and JSON-ready, recorded by the
  notebooks and drawn as trends in the weekly index. A figure's interval, where it has one,
  is either in the headline as ``<name>_low`` and ``<name>_high`` or given by an optional
  ``intervals()`` method (name -> (low, high)), which :func:`workbench.publish.record_summary`
  reads for the key figures.
- ``provenance()``: what it was computed from: run ids, dataset versions, artifacts.
- ``to_dict()`` for ``--json`` and ``render_text()`` for the terminal.

The edges do no more than call these: the CLI prints ``to_dict()`` or ``render_text()`` and
gates on :func:`broken`; a notebook's last cell is ``record_summary(summary_path, result)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["Check", "Direction", "Provenance", "Result", "broken", "limit_check", "passed"]

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class Check:
    """One pass/fail statement: a budget, a pin, a gate rule; with its figure and limit if any."""

    name: str
    ok: bool
    message: str
    actual: float | None = None
    limit: float | None = None
    direction: Direction | None = None  # "max": the figure must stay at or below the limit

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the ``budgets`` entries of summaries and ``--json`` output)."""
        return {
            "name": self.name,
            "ok": self.ok,
            "message": self.message,
            "actual": self.actual,
            "limit": self.limit,
            "direction": self.direction,
        }

    def renamed(self, name: str) -> Check:
        """The same check under another name (e.g. prefixed with its endpoint or route)."""
        return Check(name, self.ok, self.message, self.actual, self.limit, self.direction)


def limit_check(
    name: str,
    actual: float | None,
    limit: float,
    direction: Direction = "max",
    unit: str = "",
) -> Check:
    """A figure against its limit, e.g. ``p95_latency_ms 1,812 ms > 1,500 ms (by 312 ms): BROKEN``.

    ``unit`` is ``"ms"``, ``"%"`` (a share shown as a percentage) or ``""``. A missing or NaN
    figure is not a breach: it reads ``n/a`` and the check holds.
    """
    value = None if actual is None or math.isnan(actual) else float(actual)
    shown = "n/a" if value is None else _fmt(value, unit)
    if value is None or (value <= limit if direction == "max" else value >= limit):
        op = "≤" if direction == "max" else "≥"
        message = f"{name} {shown} (budget {op} {_fmt(limit, unit)}): ok"
        return Check(name, True, message, value, float(limit), direction)
    bad = ">" if direction == "max" else "<"
    message = (
        f"{name} {shown} {bad} {_fmt(limit, unit)} (by {_fmt(abs(value - limit), unit)}): BROKEN"
    )
    return Check(name, False, message, value, float(limit), direction)


@dataclass(frozen=True)
class Provenance:
    """What a result was computed from: run ids, dataset versions (name -> hash), artifacts."""

    runs: tuple[str, ...] = ()
    datasets: Mapping[str, str] | None = None
    artifacts: Mapping[str, str] | None = None

    def __add__(self, other: Provenance) -> Provenance:
        return Provenance(
            self.runs + tuple(r for r in other.runs if r not in self.runs),
            {**(self.datasets or {}), **(other.datasets or {})},
            {**(self.artifacts or {}), **(other.artifacts or {})},
        )


@runtime_checkable
class Result(Protocol):
    """What every capability's result offers the CLI, the notebooks and the publisher."""

    def checks(self) -> list[Check]:
        """Its pass/fail statements."""

    def headline(self) -> dict[str, Any]:
        """Its few numbers that matter, flat and JSON-ready."""

    def provenance(self) -> Provenance:
        """The runs, dataset versions and artifacts it was computed from."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""

    def render_text(self) -> str:
        """A terminal report."""


def broken(results: Result | Iterable[Result]) -> list[Check]:
    """The checks that failed, over one result or several."""
    many = [results] if isinstance(results, Result) else list(results)
    return [c for r in many for c in r.checks() if not c.ok]


def passed(results: Result | Iterable[Result]) -> bool:
    """True when no check failed."""
    return not broken(results)


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.2f}%"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:.3f}"
