"""Tool calls as a result stores them: each call's name, id, raw arguments, and what they parse to.

A model's tool call carries its arguments as the JSON text it wrote. That text is kept as it
came (it is what the app would have received), next to its parse: ``parsed`` when it is a
JSON value, else ``error`` saying why not. Scorers and comparisons read these records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["stored_calls"]


def stored_calls(calls: Sequence[Mapping[str, str]] | None) -> list[dict[str, Any]] | None:
    """Calls as ``{id, name, arguments, parsed}`` or ``{id, name, arguments, error}``."""
    if not calls:
        return None
    out: list[dict[str, Any]] = []
    for call in calls:
        record: dict[str, Any] = {
            "id": call.get("id", ""),
            "name": call.get("name", ""),
            "arguments": call.get("arguments", ""),
        }
        try:
            record["parsed"] = json.loads(record["arguments"]) if record["arguments"] else {}
        except (ValueError, RecursionError) as exc:
            record["error"] = f"arguments are not JSON: {exc}"
        out.append(record)
    return out
