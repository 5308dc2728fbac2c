"""Toy apps used as python: targets in tests."""

from __future__ import annotations

import asyncio
import json

from workbench import Request


def answer(request: Request) -> dict[str, str]:
    """Echo the question word, except for c003, which it gets wrong."""
    word = request.messages[-1]["content"].removeprefix("Q: ")
    return {"answer": "wrong" if word == "word3" else word}


async def answer_async(request: Request) -> str:
    """The async twin of answer()."""
    await asyncio.sleep(0)
    return json.dumps(answer(request))


def explode(request: Request) -> str:
    """Always raise."""
    raise RuntimeError("app crashed")


async def slow_triage(request: Request) -> dict[str, object]:
    """A triage app that takes a little while, for crash tests."""
    await asyncio.sleep(0.02)
    ticket = str((request.input or {}).get("ticket", ""))
    category = "billing" if "charge" in ticket.lower() else "bug"
    return {
        "category": category,
        "priority": "p3",
        "needs_human": False,
        "summary": ticket[:60] or "empty",
    }
