"""What the demo model server injects: per-request latency (LatencySpec) and faults (FaultSpec)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from workbench.errors import ConfigError

__all__ = ["DEFAULT_KINDS", "KINDS", "FaultSpec", "LatencySpec"]

KINDS = ("429", "500", "timeout", "malformed", "truncated", "reset", "slow")
DEFAULT_KINDS = ("429", "500", "timeout", "malformed", "truncated")
_Z95 = 1.645


def _fmt(x: float) -> str:
    """Render a number without a trailing .0 so parse(str(spec)) round-trips."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _number(text: str, what: str) -> float:
    """Parse one finite number or raise ConfigError naming the option."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what}: {text!r} must be finite")
    return value


@dataclass(frozen=True)
class LatencySpec:
    """Per-request latency in ms: none (0), fixed, or lognormal from a median and a p95."""

    median_ms: float = 0.0
    p95_ms: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.median_ms) or self.median_ms < 0:
            raise ConfigError(f"latency median must be >= 0 ms, got {self.median_ms!r}")
        if self.p95_ms is None:
            return
        if not math.isfinite(self.p95_ms) or self.p95_ms < self.median_ms:
            raise ConfigError(
                f"latency p95 ({self.p95_ms!r} ms) must be >= the median ({self.median_ms!r} ms)"
            )
        if self.p95_ms == self.median_ms:
            object.__setattr__(self, "p95_ms", None)
        elif self.median_ms == 0:
            raise ConfigError("a lognormal latency needs a median > 0 ms, e.g. '80,400'")

    @classmethod
    def parse(cls, text: str | float) -> LatencySpec:
        """Parse "0" (none), "50" (fixed 50 ms) or "80,400" (median 80 ms, p95 400 ms)."""
        if isinstance(text, int | float):
            return cls(float(text))
        parts = [p.strip() for p in str(text).split(",")]
        if len(parts) not in (1, 2) or not all(parts):
            raise ConfigError(
                f"latency {text!r}: expected '0', a fixed '50' or a 'median,p95' pair like '80,400'"
            )
        median = _number(parts[0], "latency median")
        p95 = _number(parts[1], "latency p95") if len(parts) == 2 else None
        return cls(median, p95)

    @property
    def sigma(self) -> float:
        """Sigma of the underlying normal: ln(p95 / median) / 1.645 (0 when fixed)."""
        if self.p95_ms is None or self.median_ms == 0:
            return 0.0
        return math.log(self.p95_ms / self.median_ms) / _Z95

    def sample(self, rng: random.Random) -> float:
        """Draw one latency in seconds."""
        if self.p95_ms is None:
            return self.median_ms / 1000.0
        return rng.lognormvariate(math.log(self.median_ms), self.sigma) / 1000.0

    def __str__(self) -> str:
        if self.p95_ms is None:
            return _fmt(self.median_ms)
        return f"{_fmt(self.median_ms)},{_fmt(self.p95_ms)}"


@dataclass(frozen=True)
class FaultSpec:
    """Fault rates per kind; at most one fault per request. Kinds are kept in KINDS order."""

    rates: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        seen: dict[str, float] = {}
        for kind, rate in self.rates:
            if kind not in KINDS:
                raise ConfigError(f"unknown fault kind {kind!r}; known kinds: {', '.join(KINDS)}")
            if kind in seen:
                raise ConfigError(f"fault kind {kind!r} given twice")
            if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
                raise ConfigError(f"fault rate for {kind!r} must be in [0, 1], got {rate!r}")
            seen[kind] = float(rate)
        if sum(seen.values()) > 1.0 + 1e-9:
            raise ConfigError(f"fault rates add up to {sum(seen.values()):g}, more than 1")
        ordered = tuple((k, seen[k]) for k in KINDS if seen.get(k))
        object.__setattr__(self, "rates", ordered)

    @classmethod
    def parse(cls, rate: float | str = 0.0, kinds: str | None = None) -> FaultSpec:
        """Split a total rate evenly over kinds ("429,timeout"), or read "429=0.05,500=0.02"."""
        if isinstance(rate, str) and kinds is None and "=" in rate:
            kinds, rate = rate, 0.0
        total = _number(str(rate), "fault rate")
        if not 0.0 <= total <= 1.0:
            raise ConfigError(f"fault rate must be in [0, 1], got {rate!r}")
        entries = [e.strip() for e in (kinds or "").split(",") if e.strip()]
        if any("=" in e for e in entries):
            if not all("=" in e for e in entries):
                raise ConfigError(
                    f"faults {kinds!r}: give every kind a rate ('429=0.05,500=0.02') or none"
                )
            pairs = []
            for entry in entries:
                kind, _, value = entry.partition("=")
                pairs.append((kind.strip(), _number(value.strip(), f"fault rate for {kind!r}")))
            spec = cls(tuple(pairs))
            if total and abs(total - spec.total) > 1e-9:
                raise ConfigError(
                    f"fault rate {total:g} disagrees with per-kind rates {kinds!r} "
                    f"(total {spec.total:g}); give one or the other"
                )
            return spec
        names = tuple(entries) or DEFAULT_KINDS
        return cls(tuple((k, total / len(names)) for k in names))

    @property
    def total(self) -> float:
        """Probability that a request gets any fault."""
        return sum(r for _, r in self.rates)

    def rate(self, kind: str) -> float:
        """The rate of one kind (0 when not configured)."""
        return dict(self.rates).get(kind, 0.0)

    def pick(self, u: float) -> str | None:
        """Map a uniform draw in [0, 1) to a fault kind, or None for a clean request."""
        edge = 0.0
        for kind, rate in self.rates:
            edge += rate
            if u < edge:
                return kind
        return None

    def __str__(self) -> str:
        return ",".join(f"{k}={_fmt(r)}" for k, r in self.rates)
