"""Rule judges used as python: targets beside demo:judge in judge-panel tests."""

from __future__ import annotations

import json
import re

from workbench import Request

_OUTPUT = re.compile(r"<output>\n(.*?)\n</output>", re.S)


def _output(request: Request) -> str:
    match = _OUTPUT.search(str(request.messages[-1]["content"]))
    return match.group(1) if match else ""


def ascii_judge(request: Request) -> str:
    """5 for a short ASCII text (an English summary, roughly), else 1."""
    text = _output(request)
    good = text.isascii() and 0 < len(text) <= 160
    return json.dumps({"score": 5 if good else 1, "reason": "ascii and short" if good else "not"})


def lenient_judge(request: Request) -> str:
    """Passes everything with a 4."""
    return json.dumps({"score": 4, "reason": "looks fine"})
