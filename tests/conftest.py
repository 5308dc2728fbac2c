"""Shared fixtures: a store on tmp_path, small datasets, and a live demo server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "data" / "golden"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh on-disk store."""
    with Store(tmp_path / "workbench.db") as s:
        yield s


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests from writing ./workbench.db and point dataset lookup at the repo."""
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "default.db"))
    monkeypatch.setenv("WORKBENCH_GOLDEN_DIR", str(GOLDEN))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


TINY_CARD: dict[str, Any] = {
    "name": "tiny",
    "prompt": {"system": "Answer in JSON.", "user": "Q: {{ question }}"},
    "output_schema": {
        "type": "object",
        "required": ["answer"],
        "properties": {"answer": {"type": "string"}},
    },
    "scorers": [
        {"name": "json_schema", "threshold": 1.0},
        {"name": "json_fields", "weight": 2, "threshold": 1.0},
    ],
    "budgets": {"pass_rate": 0.5, "p95_latency_ms": 1500, "error_rate": 0.005},
}


def write_dataset(
    folder: Path, cases: list[dict[str, Any]] | str, card: dict[str, Any] | None = None
) -> Path:
    """Write a dataset folder with a card and cases (a list, or raw JSONL text)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.yaml").write_text(yaml.safe_dump(card or TINY_CARD, sort_keys=False))
    if isinstance(cases, str):
        (folder / "cases.jsonl").write_text(cases, encoding="utf-8")
    else:
        (folder / "cases.jsonl").write_text(
            "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8"
        )
    return folder


def tiny_cases(n: int = 6) -> list[dict[str, Any]]:
    """n cases asking for an echo of a word."""
    return [
        {
            "id": f"c{i:03d}",
            "input": {"question": f"word{i}"},
            "expected": {"answer": f"word{i}"},
            "tags": ["t"],
        }
        for i in range(n)
    ]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A six-case dataset folder."""
    return write_dataset(tmp_path / "tiny", tiny_cases())
