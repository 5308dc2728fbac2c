"""A two-step agent used as a python: target: it looks the order up, then sets the fields."""

from __future__ import annotations

import json

from workbench import Response
from workbench.providers import Request


def agent(request: Request) -> Response:
    """Return the whole trajectory of a small agent run, with per-step latency and tokens."""
    call = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": '{"order_id":"ORD-00001"}'},
    }
    fields = {
        "category": "billing",
        "priority": "p3",
        "needs_human": False,
        "summary": "Late order.",
    }
    steps = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call],
            "latency_ms": 12.0,
            "tokens_in": 40,
            "tokens_out": 9,
        },
        {"role": "tool", "tool_call_id": "call_a", "content": json.dumps({"status": "shipped"})},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "set_ticket_fields", "arguments": json.dumps(fields)},
                }
            ],
            "latency_ms": 15.0,
            "tokens_in": 70,
            "tokens_out": 30,
        },
    ]
    return Response(text="", finish_reason="tool_calls", tokens_in=110, tokens_out=39, steps=steps)
