"""A python: target that echoes script-injection payloads, for the XSS tests of published reports."""

from __future__ import annotations

from workbench import Request


def echo(request: Request) -> dict[str, object]:
    """Echo the case's payload as the answer and add a field named after its second payload."""
    case = request.input or {}
    return {"answer": case.get("payload", ""), str(case.get("field", "extra"))[:60]: 1}


def expected(request: Request) -> dict[str, object]:
    """Answer what the case expects (the baseline of a model-delta comparison)."""
    return {"answer": (request.input or {}).get("expected", "")}
