"""The demo model's tool calls: a ticket routed through ``lookup_order``, ``set_ticket_fields``
and ``escalate``, in the OpenAI function-calling format.

Given ``tools`` (and ``tool_choice``) the triage versions act instead of answering in JSON
text. The rules, deterministic and checkable by hand:

1. A ticket naming an order (``ORD-12345``) whose order has not been looked up yet in the
   conversation gets one call, ``lookup_order(order_id)``, and nothing else: the model waits
   for the tool's result (a later turn carries it as a ``tool`` message).
2. Otherwise ``set_ticket_fields(category, priority, needs_human, summary)`` with the values
   :func:`workbench.demo.model.triage` gives, then ``escalate(team, reason)`` when the ticket
   needs a person (the team follows the category; the reason is the summary), or when a
   looked-up order came back ``lost``.

``triage-v2`` differs as a new model version does: its priority mirrors a shouting
customer (``P1``, not in the schema's enum) and it says ``"yes"`` for needs_human when the
customer asks for a person (both through ``triage``); it leaves out the required ``summary``
on tickets over 180 characters; and it escalates every security ticket, needed or not (an
extra call).

``tool_choice`` is honoured: ``none`` answers in text; ``required`` or ``auto`` call; a named
function calls only that function. Only offered tools are called. Call ids are derived from
the version, the conversation and the call's position, so a recording is byte-stable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.demo import model

__all__ = ["TEAMS", "TOOLS", "calls_for", "respond", "tool_names"]

ORDER_ID = re.compile(r"\bORD-\d{5}\b")
TEAMS = {
    "billing": "billing",
    "account": "support",
    "bug": "engineering",
    "outage": "engineering",
    "security": "security",
    "feature_request": "support",
    "shipping": "support",
}
_LONG_TICKET = 180

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "set_ticket_fields",
            "description": "Set the ticket's triage fields.",
            "parameters": {
                "type": "object",
                "properties": {
                    "category": {"type": "string", "enum": list(model.CATEGORIES)},
                    "priority": {"type": "string", "enum": list(model.PRIORITIES)},
                    "needs_human": {"type": "boolean"},
                    "summary": {"type": "string", "minLength": 1, "maxLength": 200},
                },
                "required": ["category", "priority", "needs_human", "summary"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order by its id (ORD- and five digits).",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string", "pattern": "^ORD-[0-9]{5}$"}},
                "required": ["order_id"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "escalate",
            "description": "Hand the ticket to a team of people.",
            "parameters": {
                "type": "object",
                "properties": {
                    "team": {"type": "string", "enum": sorted(set(TEAMS.values()))},
                    "reason": {"type": "string", "minLength": 1},
                },
                "required": ["team", "reason"],
                "additionalProperties": False,
            },
        },
    },
]


def respond(
    version: str,
    messages: list[dict[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    response_format: Any = None,
) -> model.Completion:
    """A triage model's answer when offered tools: its tool calls, or (``tool_choice`` none,
    or nothing to call) the triage JSON text of :func:`workbench.demo.model.respond`."""
    calls = calls_for(
        version, messages, tools or [], tool_choice or "auto", temperature=temperature, seed=seed
    )
    if not calls:
        return model.respond(
            version,
            messages,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            response_format=response_format,
        )
    prompt_tokens = 3 + sum(4 + model.count_tokens(model.message_text(m)) for m in messages)
    used = sum(
        3 + model.count_tokens(c["function"]["name"] + c["function"]["arguments"]) for c in calls
    )
    return model.Completion("", "tool_calls", prompt_tokens, used, tuple(calls))


def tool_names(tools: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The function names a request offers."""
    out = []
    for tool in tools or ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            out.append(fn["name"])
    return out


def calls_for(
    version: str,
    messages: list[dict[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    tool_choice: Any = "auto",
    *,
    temperature: float = 0.0,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """The tool calls of one turn, as OpenAI ``message.tool_calls`` entries (possibly none)."""
    offered = tool_names(tools)
    if tool_choice == "none" or not offered:
        return []
    forced = None
    if isinstance(tool_choice, Mapping):
        forced = (tool_choice.get("function") or {}).get("name")
    ticket = model.extract_ticket(messages)
    looked_up, results = _history(messages)
    planned: list[tuple[str, dict[str, Any]]] = []
    orders = [o for o in dict.fromkeys(ORDER_ID.findall(ticket)) if o not in looked_up]
    if orders and "lookup_order" in offered and forced in (None, "lookup_order"):
        planned.append(("lookup_order", {"order_id": orders[0]}))
    else:
        answer = model.triage(version, ticket, temperature=temperature, seed=seed)
        fields = dict(answer)
        if version == "triage-v2" and len(ticket) > _LONG_TICKET:
            fields.pop("summary", None)
        planned.append(("set_ticket_fields", fields))
        lost = any("lost" in r.lower() for r in results)
        category = str(answer["category"])
        escalate = answer["needs_human"] is True or answer["needs_human"] == "yes" or lost
        if version == "triage-v2" and category == "security":
            escalate = True
        if escalate:
            reason = "order lost in transit" if lost else str(answer["summary"]) or "needs a person"
            planned.append(("escalate", {"team": TEAMS.get(category, "support"), "reason": reason}))
    if forced is not None:
        planned = [p for p in planned if p[0] == forced] or [(forced, {})]
    planned = [p for p in planned if p[0] in offered]
    if not planned and tool_choice == "required":
        planned = [(offered[0], {})]
    return [_call(version, messages, i, name, args) for i, (name, args) in enumerate(planned)]


def _history(messages: Sequence[Mapping[str, Any]]) -> tuple[set[str], list[str]]:
    """Order ids already looked up by earlier assistant calls, and the tool results' texts."""
    looked_up: set[str] = set()
    results: list[str] = []
    for m in messages:
        if m.get("role") == "assistant":
            for call in m.get("tool_calls") or ():
                fn = call.get("function") or {}
                if fn.get("name") == "lookup_order":
                    looked_up.update(ORDER_ID.findall(str(fn.get("arguments") or "")))
        elif m.get("role") == "tool":
            results.append(model.message_text(m))
    return looked_up, results


def _call(
    version: str, messages: Sequence[Mapping[str, Any]], index: int, name: str, args: Any
) -> dict[str, Any]:
    blob = json.dumps([version, messages, index, name], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:24]
    return {
        "id": f"call_{digest}",
        "type": "function",
        "function": {
            "name": name,
            "arguments": json.dumps(args, ensure_ascii=False, separators=(",", ":")),
        },
    }
