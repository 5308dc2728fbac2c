"""The tool-call scorers: which tools were called, whether their arguments keep the tool's
contract, whether they are the expected ones, and the order of a multi-step trajectory.

They read the calls the model made (``ScoreInput.tool_calls``: name, raw arguments, and the
parse or its error) and the tools it was offered (``ScoreInput.tools``). The expected calls
come from the case's expected output: ``{"tool_calls": [{"name": ..., "arguments": {...}}]}``
(or the list itself); an expected ``{"tool_calls": []}`` means no call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from workbench.errors import ScorerError
from workbench.scoring._builtins import (
    _is_fields_option,
    _validator,
    field_matches,
    mismatch_detail,
)
from workbench.scoring._registry import BOOL, NON_NEGATIVE, ScoreInput, ScoreValue, builtin
from workbench.text import clip

TOOL_SCORERS = (
    "tool_called",
    "no_tool_call",
    "tool_args_schema",
    "tool_args_match",
    "tool_sequence",
)
_ORDERS = ("set", "ordered")
_SEQUENCE_MODES = ("exact", "in_order", "set")


def expected_calls(inp: ScoreInput) -> list[dict[str, Any]]:
    """The case's expected calls as ``[{name, arguments}]``; ScorerError when it has none."""
    expected = inp.expected
    if isinstance(expected, Mapping) and "tool_calls" in expected:
        expected = expected["tool_calls"]
    if not isinstance(expected, list) or not all(
        isinstance(c, Mapping) and isinstance(c.get("name"), str) for c in expected
    ):
        raise ScorerError(
            'the expected output names no tool calls; give {"tool_calls": [{"name": ..., '
            '"arguments": {...}}]} (an empty list for none)'
        )
    return [{"name": c["name"], "arguments": c.get("arguments", {})} for c in expected]


def _names(inp: ScoreInput) -> list[str]:
    return [str(c.get("name", "")) for c in inp.tool_calls]


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


@builtin(
    "tool_called",
    {
        "tools": (_is_names, "a list of tool names"),
        "order": (lambda v: v in _ORDERS, "set or ordered"),
        "only": BOOL,
    },
)
def _tool_called(
    inp: ScoreInput,
    *,
    tools: Sequence[str] | None = None,
    order: str = "set",
    only: bool = False,
) -> ScoreValue:
    """The expected tools (``tools``, else the expected calls' names) were called: the share
    found (in order, with ``order: ordered``); with ``only``, calls to other tools count
    against it."""
    wanted = list(tools) if tools else [c["name"] for c in expected_calls(inp)]
    called = _names(inp)
    if not wanted:
        return (
            (1.0, "no tool expected, none called")
            if not called
            else (
                0.0,
                f"no tool expected; called {', '.join(called)}",
            )
        )
    if order == "ordered":
        found, rest = [], iter(called)
        for name in wanted:
            if any(c == name for c in rest):
                found.append(name)
            else:
                break
    else:
        found = [n for n in dict.fromkeys(wanted) if n in called]
    unique = list(dict.fromkeys(wanted)) if order == "set" else wanted
    extra = sorted({c for c in called if c not in wanted})
    denominator = len(unique) + (len(extra) if only else 0)
    score = len(found) / denominator
    missing = [n for n in unique if n not in found] if order == "set" else unique[len(found) :]
    parts = [f"called {', '.join(called) or 'nothing'}"]
    if missing:
        parts.append(
            f"missing {', '.join(missing)}" + (" (in order)" if order == "ordered" else "")
        )
    if extra and only:
        parts.append(f"not expected: {', '.join(extra)}")
    return score, "; ".join(parts)


@builtin("no_tool_call")
def _no_tool_call(inp: ScoreInput) -> ScoreValue:
    """1 when the model called no tool (it answered, or declined, in text)."""
    called = _names(inp)
    return (1.0, "") if not called else (0.0, f"called {', '.join(called)}")


@builtin("tool_args_schema")
def _tool_args_schema(inp: ScoreInput) -> ScoreValue:
    """The share of calls whose arguments parse as JSON and validate against the offered
    tool's ``parameters`` schema; the reason names the failing path. No call: nothing to
    break (pair it with ``tool_called``)."""
    if not inp.tool_calls:
        return 1.0, "no tool calls"
    schemas = {
        (t.get("function") or {}).get("name"): (t.get("function") or {}).get(
            "parameters", {"type": "object"}
        )
        for t in inp.tools
    }
    problems: list[str] = []
    for i, call in enumerate(inp.tool_calls):
        name = str(call.get("name", ""))
        where = f"tool_calls[{i}] {name}"
        if name not in schemas:
            offered = ", ".join(str(n) for n in schemas) or "none"
            problems.append(f"{where}: not an offered tool (offered: {offered})")
        elif "error" in call or "parsed" not in call:
            problems.append(f"{where}: {call.get('error', 'arguments missing')}")
        else:
            errors = list(islice(_validator(schemas[name]).iter_errors(call["parsed"]), 2))
            if errors:
                first = errors[0]
                problems.append(f"{where}: {first.json_path}: {clip(first.message, 120)}")
    good = len(inp.tool_calls) - len(problems)
    return good / len(inp.tool_calls), "; ".join(problems[:4])


@builtin(
    "tool_args_match",
    {
        "fields": (_is_fields_option, "a mapping of TOOL.argument path to weight >= 0"),
        "numeric_tolerance": NON_NEGATIVE,
        "case_insensitive": BOOL,
    },
)
def _tool_args_match(
    inp: ScoreInput,
    *,
    fields: Mapping[str, float] | None = None,
    numeric_tolerance: float = 0.0,
    case_insensitive: bool = False,
) -> ScoreValue:
    """Weighted share of the expected calls' arguments the model's calls match: the n-th
    expected call of a tool against the n-th call of that tool. ``fields`` weighs
    ``TOOL.path`` (e.g. ``set_ticket_fields.priority: 2``); by default every expected
    argument weighs 1. A missing call misses all its arguments."""
    wanted = expected_calls(inp)
    if not wanted:
        return (1.0, "") if not inp.tool_calls else (0.0, "no call expected")
    made: dict[str, list[Mapping[str, Any]]] = {}
    for call in inp.tool_calls:
        made.setdefault(str(call.get("name", "")), []).append(call)
    seen: dict[str, int] = {}
    total = matched = 0.0
    mismatches: list[str] = []
    for want in wanted:
        name = want["name"]
        k = seen.get(name, 0)
        seen[name] = k + 1
        calls = made.get(name, [])
        got_call = calls[k] if k < len(calls) else None
        args = want["arguments"] if isinstance(want["arguments"], Mapping) else {}
        weights = (
            {
                p.split(".", 1)[1]: w
                for p, w in fields.items()
                if p.split(".", 1)[0] == name and "." in p
            }
            if fields
            else dict.fromkeys(args, 1.0)
        )
        if got_call is None:
            total += sum(weights.values())
            mismatches.append(f"{name}: not called")
            continue
        if "parsed" not in got_call:
            total += sum(weights.values())
            mismatches.append(f"{name}: {got_call.get('error', 'arguments missing')}")
            continue
        t, m, missed = field_matches(
            args,
            got_call["parsed"],
            weights,
            numeric_tolerance,
            case_insensitive,
            prefix=f"{name}.",
        )
        total, matched = total + t, matched + m
        mismatches += missed
    detail = mismatch_detail(mismatches)
    return (matched / total if total > 0 else 1.0), detail


@builtin(
    "tool_sequence",
    {
        "mode": (lambda v: v in _SEQUENCE_MODES, "exact, in_order or set"),
        "max_steps": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "a whole number >= 1",
        ),
    },
)
def _tool_sequence(
    inp: ScoreInput, *, mode: str = "in_order", max_steps: int | None = None
) -> ScoreValue:
    """F1 of the calls made against the expected sequence (``exact``: the same list;
    ``in_order``: the expected tools as an in-order subsequence; ``set``: the same tools),
    with precision and recall in the reason; over ``max_steps`` calls scores 0."""
    wanted = [c["name"] for c in expected_calls(inp)]
    called = _names(inp)
    if max_steps is not None and len(called) > max_steps:
        return 0.0, f"{len(called)} calls, over the budget of {max_steps}: {', '.join(called)}"
    if not wanted and not called:
        return 1.0, "no calls expected, none made"
    if mode == "exact":
        hits = len(wanted) if wanted == called else _in_order_hits(wanted, called)
    elif mode == "in_order":
        hits = _in_order_hits(wanted, called)
    else:
        pool = list(called)
        hits = 0
        for name in wanted:
            if name in pool:
                pool.remove(name)
                hits += 1
    precision = hits / len(called) if called else 0.0
    recall = hits / len(wanted) if wanted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if mode == "exact" and wanted != called:
        f1 = min(f1, 0.99)  # not the same list: never a full score
    return f1, (
        f"precision {precision:.2f} recall {recall:.2f} ({mode}); expected "
        f"{' → '.join(wanted) or 'none'}, called {' → '.join(called) or 'none'}"
    )


def _in_order_hits(wanted: Sequence[str], called: Sequence[str]) -> int:
    """The length of the longest common subsequence of the two name lists."""
    prev = [0] * (len(called) + 1)
    for w in wanted:
        row = [0]
        for j, c in enumerate(called):
            row.append(prev[j] + 1 if w == c else max(prev[j + 1], row[j]))
        prev = row
    return prev[-1]
