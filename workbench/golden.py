"""Golden sets: a dataset card plus cases in JSONL, loaded strictly and hashed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One golden case: a stable id, its input, the expected output and tags."""

    id: str
    input: dict[str, Any]
    expected: Any
    tags: tuple[str, ...] = ()
    line: int = 0
