"""Python targets for tests/test_eval_parameters.py: they show what each request carried."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from workbench import Request, Response

CALLS: list[dict[str, Any]] = []  # every request record() saw, in this process
_LOCK = threading.Lock()


def _word(request: Request) -> str:
    return str((request.input or {}).get("question", ""))


def seen(request: Request) -> dict[str, Any]:
    """What a request carries besides its messages."""
    return {"case_id": request.case_id, "input": request.input, "params": request.params()}


def record(request: Request) -> dict[str, Any]:
    """Answer right, remember the request and echo its sampling parameters in the output."""
    doc = {**seen(request), "messages": request.messages}
    with _LOCK:
        CALLS.append(doc)
    return {"answer": _word(request), "params": request.params()}


def slow(request: Request) -> dict[str, str]:
    """Answer right after 0.3 s (a slow model, for progress lines)."""
    time.sleep(0.3)
    return {"answer": _word(request)}


def cut(request: Request) -> Response:
    """Cases c000, c002, c004 stop at the output cap (finish_reason "length")."""
    cut_off = request.case_id in ("c000", "c002", "c004")
    text = '{"answer": "wo' if cut_off else json.dumps({"answer": _word(request)})
    return Response(text=text, finish_reason="length" if cut_off else "stop")


def cached(request: Request) -> Response:
    """Answer right with usage details: 80 of 100 prompt tokens cached, 4 reasoning tokens."""
    return Response(
        text=json.dumps({"answer": _word(request)}),
        tokens_in=100,
        tokens_out=10,
        cached_tokens=80,
        reasoning_tokens=4,
    )
