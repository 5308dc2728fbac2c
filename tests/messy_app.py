"""A python: target with every kind of awkward answer, for the robustness tests.

It raises on some cases, answers plain text on some, an empty string on some, and JSON on
the rest (as a dict, or through a Response, one without tokens or latency). What a case
gets depends only on the last digit of its id (c003 and st-0013 both get BEHAVIOUR[3]), so
a test can work out the headline numbers a run must record. It answers the ``tiny`` test
dataset ({"answer": <the question word>}) and support-triage (a fixed triage guess).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from workbench import Request, Response

BEHAVIOUR = (
    "raise",  # 0
    "text",  # 1
    "empty",  # 2
    "json",  # 3
    "bare_response",  # 4: a Response with tokens and latency left None
    "raise",  # 5
    "wrong",  # 6: valid JSON, wrong answer
    "json",  # 7
    "text",  # 8
    "usage_response",  # 9: a Response with token counts
)
# The behaviours that give the right JSON answer on the tiny dataset.
CORRECT = ("json", "bare_response", "usage_response")


def behaviour(case_id: str | None) -> str:
    """What the app does for a case id: BEHAVIOUR at the id's last digit."""
    digits = "".join(ch for ch in case_id or "" if ch.isdigit())
    return BEHAVIOUR[int(digits[-1]) if digits else 3]


def answer(request: Request) -> str | dict[str, Any] | Response:
    """Answer a case the way BEHAVIOUR says."""
    kind = behaviour(request.case_id)
    case = request.input or {}
    if kind == "raise":
        raise RuntimeError(f"messy app crashed on {request.case_id}")
    if kind == "text":
        return f"I think this is about {_about(case)}, but I am not sure."
    if kind == "empty":
        return ""
    if kind == "wrong":
        return json.dumps({"answer": "something else"})
    if kind == "json":
        return _right(case)  # a dict: the provider serialises it
    text = json.dumps(_right(case), ensure_ascii=False)
    if kind == "bare_response":
        return Response(text=text, tokens_in=None, tokens_out=None, latency_ms=None)
    return Response(text=text, tokens_in=12, tokens_out=4)  # usage_response


def _about(case: Mapping[str, Any]) -> str:
    return str(case.get("question") or case.get("ticket") or "nothing")[:40]


def _right(case: Mapping[str, Any]) -> dict[str, Any]:
    if "ticket" not in case:
        return {"answer": str(case.get("question", ""))}
    ticket = str(case["ticket"])
    return {
        "category": "billing" if "charge" in ticket.lower() else "bug",
        "priority": "p3",
        "needs_human": False,
        "summary": ticket[:60] or "empty",
    }
