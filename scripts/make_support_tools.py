"""Build data/golden/support-tools/ from the support-triage golden set (run from the repo root).

Each case routes one support-triage ticket through the demo tools (workbench.demo.tools):
the expected calls follow from the ticket's golden triage fields, written by people. A
ticket about a delivery names an order (``ORD-`` and five digits, derived from the case id)
and first expects ``lookup_order``; a second, multi-turn case for it carries that call and
the tool's answer (``shipped`` or ``lost``) and expects the fields to be set, escalating a
lost order. ``needs_human`` tickets expect ``escalate`` to the category's team.

    python scripts/make_support_tools.py
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml

from workbench.demo.tools import TEAMS, TOOLS

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data" / "golden" / "support-triage"
TARGET = ROOT / "data" / "golden" / "support-tools"
DELIVERY = re.compile(
    r"\b(arriv|deliver|shipp|tracking|package|parcel|courier|order|reader|printer)",
    re.IGNORECASE,
)
CASES = 64  # plain ones, before the multi-turn follow-ups


def order_id(case_id: str) -> str:
    digits = int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % 100000
    return f"ORD-{digits:05d}"


def fields_call(expected: dict[str, object]) -> dict[str, object]:
    return {
        "name": "set_ticket_fields",
        "arguments": {k: expected[k] for k in ("category", "priority", "needs_human", "summary")},
    }


def main() -> None:
    rows = [json.loads(line) for line in (SOURCE / "cases.jsonl").read_text().splitlines()]
    plain = [r for r in rows if "adversarial" not in r["tags"] and "long" not in r["tags"]]
    chosen = plain[:CASES]
    out = []
    for row in chosen:
        expected = row["expected"]
        ticket = row["input"]["ticket"]
        tags = list(row["tags"])
        calls = [fields_call(expected)]
        if expected["needs_human"]:
            calls.append({"name": "escalate", "arguments": {"team": TEAMS[expected["category"]]}})
        if expected["category"] == "shipping" or (
            DELIVERY.search(ticket) and expected["category"] in ("shipping", "billing")
        ):
            oid = order_id(row["id"])
            ticket = f"{ticket} (Order {oid})"
            out.append(
                {
                    "id": row["id"].replace("st-", "tool-"),
                    "input": {"ticket": ticket, "channel": row["input"]["channel"]},
                    "expected": {
                        "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": oid}}]
                    },
                    "tags": [*tags, "order"],
                }
            )
            status = "lost" if int(oid[-1]) % 3 == 0 else "shipped"
            call_id = "call_" + hashlib.sha256(oid.encode()).hexdigest()[:24]
            after = [fields_call(expected)]
            if expected["needs_human"] or status == "lost":
                after.append(
                    {"name": "escalate", "arguments": {"team": TEAMS[expected["category"]]}}
                )
            out.append(
                {
                    "id": row["id"].replace("st-", "tool-") + "-2",
                    "input": {
                        "ticket": ticket,
                        "channel": row["input"]["channel"],
                        "messages": [
                            {
                                "role": "user",
                                "content": f"Route this support ticket.\nChannel: {row['input']['channel']}\n<ticket>\n{ticket}\n</ticket>",
                            },
                            {
                                "role": "assistant",
                                "content": None,
                                "tool_calls": [
                                    {
                                        "id": call_id,
                                        "type": "function",
                                        "function": {
                                            "name": "lookup_order",
                                            "arguments": json.dumps(
                                                {"order_id": oid}, separators=(",", ":")
                                            ),
                                        },
                                    }
                                ],
                            },
                            {
                                "role": "tool",
                                "tool_call_id": call_id,
                                "content": json.dumps({"order_id": oid, "status": status}),
                            },
                        ],
                    },
                    "expected": {"tool_calls": after},
                    "tags": [*tags, "order", "multi-turn", status],
                }
            )
            continue
        out.append(
            {
                "id": row["id"].replace("st-", "tool-"),
                "input": {"ticket": ticket, "channel": row["input"]["channel"]},
                "expected": {"tool_calls": calls},
                "tags": tags,
            }
        )
    TARGET.mkdir(parents=True, exist_ok=True)
    (TARGET / "cases.jsonl").write_text(
        "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in out), encoding="utf-8"
    )
    print(f"{len(out)} cases, {sum('multi-turn' in c['tags'] for c in out)} multi-turn")


if __name__ == "__main__":
    main()
