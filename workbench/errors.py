"""Exceptions raised by workbench.

WorkbenchError
 ├── DatasetError        a golden set or dataset card is malformed
 ├── ScorerError         an unknown scorer, or a scorer that cannot run
 ├── ProviderError       a provider failed after its retries
 │    ├── CircuitOpenError   the circuit breaker refuses further calls
 │    └── ReplayMissError    replay found no snapshot for a request
 ├── StoreError          the SQLite store cannot be read or written
 ├── RunError            a run cannot start, resume or continue
 └── ConfigError         a bad option, target or configuration value

The library raises these; only the CLI turns them into exit codes.
"""

from __future__ import annotations

__all__ = [
    "AgreementError",
    "CircuitOpenError",
    "ConfigError",
    "DatasetError",
    "ProviderError",
    "ReplayMissError",
    "RunError",
    "ScorerError",
    "StoreError",
    "WorkbenchError",
]


class WorkbenchError(Exception):
    """Base class for every error workbench raises on purpose."""


class DatasetError(WorkbenchError):
    """A golden set or dataset card is malformed."""


class ScorerError(WorkbenchError):
    """A scorer is unknown or misconfigured."""


class ProviderError(WorkbenchError):
    """A provider call failed after retries."""

    def __init__(self, message: str, *, attempts: int = 1, retryable: bool = False) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.retryable = retryable


class CircuitOpenError(ProviderError):
    """The provider's circuit breaker is open; calls are refused."""


class ReplayMissError(ProviderError):
    """A replayed run asked for a response that was never recorded."""


class StoreError(WorkbenchError):
    """The store cannot be opened, migrated or written."""


class RunError(WorkbenchError):
    """A run cannot start, resume or continue."""


class ConfigError(WorkbenchError):
    """A bad option, target name or configuration value."""


class AgreementError(ConfigError, ValueError):
    """Labels that cannot be compared: empty, unpaired, or outside the declared categories."""
