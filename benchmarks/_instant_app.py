"""An instant "app" for benchmarks: the golden answer for a support-triage ticket, no model.

It answers from a ticket -> expected table built once at import, so every call costs a
dict lookup and the harness (rendering, scoring, storage) is all that is measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench import Request

_CASES = Path(__file__).resolve().parents[1] / "data" / "golden" / "support-triage" / "cases.jsonl"
_FALLBACK = {"category": "bug", "priority": "p3", "needs_human": False, "summary": "A bug."}


def _answers() -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for line in _CASES.read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc = json.loads(line)
            table[doc["input"]["ticket"]] = doc["expected"]
    return table


ANSWERS = _answers()


def answer(request: Request) -> dict[str, Any]:
    """The expected triage for the request's ticket (a canned answer when unknown)."""
    ticket = (request.input or {}).get("ticket", "")
    return ANSWERS.get(ticket, _FALLBACK)


async def answer_async(request: Request) -> dict[str, Any]:
    """The async twin of answer(): no thread hop in the python provider."""
    return answer(request)
