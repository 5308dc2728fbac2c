"""The results of profiling: per-function figures, runs, pins, pin verdicts and diffs."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.checks import Check
from workbench.profiling import flamegraph
from workbench.profiling._frames import dotted, is_function
from workbench.text import percent

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FunctionStat:
    """One function's samples: as the leaf (self) and anywhere on the stack (total)."""

    function: str
    self_samples: int
    total_samples: int
    self_share: float
    total_share: float
    self_s: float
    total_s: float


@dataclass
class ProfileRun:
    """A stored profile run: its normalised stacks, per-function figures and artifacts."""

    run_id: str
    tool: str
    workload: str
    label: str
    duration_s: float
    rate_hz: float
    samples: int
    stacks: dict[str, int]
    functions: list[FunctionStat]
    artifacts: dict[str, str] = field(default_factory=dict)
    wall_s: float | None = None
    python_version: str | None = None

    @property
    def seconds(self) -> float:
        """Sampled time: samples ÷ rate."""
        return self.samples / self.rate_hz if self.rate_hz else 0.0

    def function(self, name: str) -> FunctionStat | None:
        """The figures of one function, by canonical frame or bare name (None when unsampled)."""
        return next((f for f in self.functions if is_function(f.function, name)), None)


@dataclass(frozen=True)
class Pin:
    """A pinned hot path: a function or frame pattern with share and seconds limits."""

    selector: str  # function, pattern or regex
    value: str
    limits: Mapping[str, float]
    name: str = ""
    where: str = ""  # file:line it came from

    @property
    def label(self) -> str:
        """How reports name the pin."""
        return self.name or self.value

    def matches(self, frame: str) -> bool:
        """True when a canonical frame is covered by this pin."""
        if self.selector == "function":
            return is_function(frame, self.value)
        if self.selector == "regex":
            return re.search(self.value, frame) is not None
        func, _ = flamegraph.split_frame(frame)
        return any(fnmatch.fnmatchcase(c, self.value) for c in (frame, func, dotted(frame)))


@dataclass(frozen=True)
class PinCheck(Check):
    """One pin limit's check: a :class:`~workbench.checks.Check` that also names the pin,
    the metric and the frames it matched."""

    pin: str = ""
    metric: str = ""
    matched: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, pin: str, metric: str, limit: float, actual: float, matched: tuple[str, ...] = ()
    ) -> PinCheck:
        """The check of one limit, e.g. ``embed total_share 41.0% > 30.0% (by 11.0 pp): BROKEN``."""
        name = f"{pin} {metric}"
        ok = actual <= limit + 1e-12
        shown, bound = _fmt_metric(metric, actual), _fmt_metric(metric, limit)
        if ok:
            unseen = "" if matched else " (not sampled)"
            message = f"{name} {shown} (limit ≤ {bound}){unseen}: ok"
        else:
            over = actual - limit
            by = f"{over * 100:.1f} pp" if metric.endswith("share") else f"{over:.2f} s"
            message = f"{name} {shown} > {bound} (by {by}): BROKEN"
        return cls(name, ok, message, actual, limit, "max", pin, metric, matched)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: the check's keys and the pin, metric and matched frames."""
        return super().to_dict() | {
            "pin": self.pin,
            "metric": self.metric,
            "matched": list(self.matched),
        }


@dataclass(frozen=True)
class FunctionDelta:
    """How one function moved between two profiles, in share and in seconds."""

    function: str
    base_total_share: float
    cand_total_share: float
    base_total_s: float
    cand_total_s: float
    base_self_share: float
    cand_self_share: float
    base_self_s: float
    cand_self_s: float

    @property
    def delta_total_share(self) -> float:
        """Change in total share (candidate − base)."""
        return self.cand_total_share - self.base_total_share

    @property
    def delta_total_s(self) -> float:
        """Change in total seconds (candidate − base)."""
        return self.cand_total_s - self.base_total_s

    @property
    def delta_self_share(self) -> float:
        """Change in self share (candidate − base)."""
        return self.cand_self_share - self.base_self_share

    @property
    def delta_self_s(self) -> float:
        """Change in self seconds (candidate − base)."""
        return self.cand_self_s - self.base_self_s

    @property
    def status(self) -> str:
        """``new``, ``vanished`` or ``both``."""
        if not self.base_total_s:
            return "new"
        return "vanished" if not self.cand_total_s else "both"


@dataclass
class ProfileDiff:
    """Week over week: per-function deltas (share and seconds) and new or vanished stacks."""

    base_run: str
    cand_run: str
    base_samples: int
    cand_samples: int
    base_s: float
    cand_s: float
    functions: list[FunctionDelta]
    new_stacks: dict[str, int]
    vanished_stacks: dict[str, int]
    base_stacks: dict[str, int] = field(repr=False, default_factory=dict)
    cand_stacks: dict[str, int] = field(repr=False, default_factory=dict)

    def function(self, name: str) -> FunctionDelta | None:
        """One function's delta, by canonical frame or bare name."""
        return next((f for f in self.functions if is_function(f.function, name)), None)

    def frame(self) -> pd.DataFrame:
        """The per-function deltas as a DataFrame, largest share change first."""
        import pandas as pd

        rows = [
            {
                **asdict(f),
                "delta_total_share": f.delta_total_share,
                "delta_total_s": f.delta_total_s,
                "delta_self_share": f.delta_self_share,
                "delta_self_s": f.delta_self_s,
                "status": f.status,
            }
            for f in self.functions
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "base_run": self.base_run,
            "cand_run": self.cand_run,
            "base_samples": self.base_samples,
            "cand_samples": self.cand_samples,
            "base_s": self.base_s,
            "cand_s": self.cand_s,
            "functions": self.frame().to_dict(orient="records"),
            "new_stacks": self.new_stacks,
            "vanished_stacks": self.vanished_stacks,
        }


def _fmt_metric(metric: str, value: float) -> str:
    return percent(value) if metric.endswith("share") else f"{value:.2f} s"
