"""The model-graded scorers' names and options; their calls are made by :mod:`workbench.judges`.

A judge scorer needs a judge model, so it cannot score from the output alone: the runner
asks :mod:`workbench.judges` for its score and hands it to :func:`score_output` as
precomputed. Called directly, as any other scorer, it fails with a message saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.errors import ScorerError
from workbench.scoring._registry import STRING, ScoreInput, ScorerSpec, ScoreValue, builtin

JUDGE_SCORERS = ("judge", "judge_reference")
REFERENCE_VERDICTS = ("equal", "superset", "subset", "contradicts", "unrelated")
# How much each factuality verdict is worth: the facts of the expected answer, all or part,
# with or without more; a contradiction or an answer about something else earn nothing.
REFERENCE_SCORES: Mapping[str, float] = {
    "equal": 1.0,
    "superset": 0.75,
    "subset": 0.5,
    "contradicts": 0.0,
    "unrelated": 0.0,
}
INCLUDE = ("input", "expected")


def _is_steps(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(s, str) and s.strip() for s in value)


def _is_scale(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and value[0] < value[1]
    )


def _is_include(value: Any) -> bool:
    return isinstance(value, list) and all(v in INCLUDE for v in value)


def _is_scores(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) <= set(REFERENCE_VERDICTS)
        and all(isinstance(v, int | float) and 0 <= v <= 1 for v in value.values())
    )


def _needs_criteria(spec: ScorerSpec) -> None:
    if not str(spec.options.get("criteria", "")).strip():
        raise ScorerError(
            f"scorer {spec.label!r}: option 'criteria' must say what a good output is, "
            "e.g. criteria: 'The summary states the customer's problem accurately'"
        )


def _not_here(name: str) -> ScoreValue:
    raise ScorerError(
        f"{name} is a model-graded scorer: it runs through a judge model during an eval "
        "(workbench eval, workbench rescore), with the judge named in the card's 'judge' "
        "or by --judge"
    )


@builtin(
    "judge",
    {
        "criteria": STRING,
        "steps": (_is_steps, "a list of non-empty strings (evaluation steps)"),
        "scale": (_is_scale, "two integers [lowest, highest], e.g. [1, 5]"),
        "include": (_is_include, f"a list of {' and '.join(INCLUDE)}"),
    },
    required=("criteria",),
    extra=_needs_criteria,
)
def _judge(inp: ScoreInput, **options: Any) -> ScoreValue:
    """A rubric applied to the output by a judge model: score in [0, 1] and the judge's reason."""
    return _not_here("judge")


@builtin(
    "judge_reference",
    {
        "criteria": STRING,
        "scores": (_is_scores, f"a mapping of {', '.join(REFERENCE_VERDICTS)} to [0, 1]"),
        "include": (_is_include, f"a list of {' and '.join(INCLUDE)}"),
    },
)
def _judge_reference(inp: ScoreInput, **options: Any) -> ScoreValue:
    """The output's facts against the expected answer's, as judged: equal, subset, ... unrelated."""
    return _not_here("judge_reference")
