"""Scoring one output: parse it, run every scorer of a card's list, combine by weight."""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from workbench.errors import ScorerError
from workbench.scoring._registry import (
    NOT_JSON,
    CaseLike,
    ScoreInput,
    ScoreResult,
    ScorerSpec,
    get,
)
from workbench.text import clip, show

_PARSE: Final[Any] = object()  # score_output's default for `parsed`: parse the output text
MISSING: Final[Any] = object()
_EPS = 1e-9  # so a threshold of 2/3 is met by a score computed as 0.6666...


# --- parsing ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_FENCE = re.compile(r"```(?:[A-Za-z][\w+-]*)?[ \t]*\r?\n?(.*?)```", re.DOTALL)


def parse_output(text: str) -> Any:
    """Parse output text as JSON, unwrapping a ```json fence; NOT_JSON when it does not parse."""
    if not isinstance(text, str):
        return NOT_JSON
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        pass
    if "```" not in text:
        return NOT_JSON
    match = _FENCE.search(text)
    if match is None:
        return NOT_JSON
    try:
        return _DECODER.decode(match.group(1))
    except (ValueError, RecursionError):
        return NOT_JSON


# --- scoring ----------------------------------------------------------------------------------


def score_output(
    specs: Sequence[ScorerSpec],
    output: str,
    expected: Any,
    *,
    case: CaseLike | None = None,
    schema: dict[str, Any] | None = None,
    parsed: Any = _PARSE,
    precomputed: Mapping[str, tuple[float, str, bool]] | None = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> ScoreResult:
    """Score one output with every spec and combine the scores by weight.

    A scorer that raises scores 0 and fails, with the exception as its detail; an unknown
    scorer or two specs with the same label raise ScorerError (a card error, not an output's).
    ``precomputed`` gives some labels' (score, detail, errored) already known, such as the
    judge scorers' (see :mod:`workbench.judges`). ``tool_calls`` are the calls the model
    made and ``tools`` the tools it was offered, for the tool-call scorers.
    """
    if parsed is _PARSE:
        parsed = parse_output(output)
    base = ScoreInput(
        output,
        parsed,
        expected,
        case,
        schema,
        tuple(dict(c) for c in tool_calls or ()),
        tuple(dict(t) for t in tools or ()),
    )
    scores: dict[str, float] = {}
    passed_by: dict[str, bool] = {}
    details: dict[str, str] = {}
    total_weight = weighted = 0.0
    for spec in specs:
        label = spec.label
        if label in scores:
            raise ScorerError(
                f"two scorers share the label {label!r}; results are keyed by label, "
                "so keep one of them or give it a different field"
            )
        known = (precomputed or {}).get(label)
        value, detail, failed = known if known is not None else _run(spec, base)
        scores[label] = value
        details[label] = detail
        passed_by[label] = not failed and (spec.threshold is None or value >= spec.threshold - _EPS)
        total_weight += spec.weight
        weighted += spec.weight * value
    score = weighted / total_weight if total_weight > 0 else 0.0
    return ScoreResult(scores, passed_by, details, score, all(passed_by.values()))


def _run(spec: ScorerSpec, base: ScoreInput) -> tuple[float, str, bool]:
    """Run one scorer: (score in [0, 1], detail, whether it errored)."""
    scorer = get(spec.name)
    inp = base
    if spec.field is not None:
        narrowed = narrow(base, spec.field)
        if isinstance(narrowed, str):
            return 0.0, narrowed, False
        inp = narrowed
    try:
        raw = scorer(inp, **spec.options)
    except Exception as exc:
        return 0.0, clip(f"error: {type(exc).__name__}: {exc}", 300), True
    detail = ""
    if type(raw) is tuple and len(raw) == 2:
        raw, note = raw
        detail = "" if note is None else str(note)
    try:
        if type(raw) is not float and not isinstance(raw, numbers.Real):
            raise TypeError
        value = float(raw)
    except (TypeError, OverflowError):
        return 0.0, f"error: scorer returned {show(raw)} ({type(raw).__name__}), not a float", True
    if 0.0 <= value <= 1.0:
        return value, detail, False
    if math.isnan(value):
        note = "scorer returned NaN; counted as 0"
        value = 0.0
    else:
        note = f"score {value:g} clipped to [0, 1]"
        value = min(1.0, max(0.0, value))
    return value, f"{detail}; {note}" if detail else note, False


def narrow(base: ScoreInput, field: str) -> ScoreInput | str:
    """The input narrowed to one field, or a detail saying why the field is missing."""
    if base.parsed is NOT_JSON:
        return f"output is not JSON, so field {field!r} is missing"
    value = get_field(base.parsed, field)
    if value is MISSING:
        return f"field {field!r} missing"
    expected = get_field(base.expected, field)
    if expected is MISSING:
        expected = NOT_JSON
    output = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return ScoreInput(output, value, expected, base.case, base.schema, base.tool_calls, base.tools)


@lru_cache(maxsize=1024)
def _split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def get_field(value: Any, path: str) -> Any:
    """Look up a top-level key, else a dotted path ("a.b", list indexes as "items.0")."""
    if isinstance(value, dict) and path in value:
        return value[path]
    for key in _split_path(path):
        if isinstance(value, dict):
            if key not in value:
                return MISSING
            value = value[key]
        elif isinstance(value, list) and key.isascii() and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
