"""Scorers: a registry of named scoring functions, and scoring one output against a card's list.

A scorer is ``scorer(inp: ScoreInput, **options) -> float | (float, str)`` returning a score in
[0, 1] and optionally a short detail. Built-ins are registered at import; a custom scorer is
either registered with :func:`register` or named by a dotted path (``"mypkg.scorers:fn"``).

The parts: ``_registry`` (the types, the registry and spec checks), ``_score`` (parsing an
output and scoring it with a card's specs), ``_builtins`` (the built-in scorers) and
``_judges`` (the model-graded scorers' options; :mod:`workbench.judges` makes their calls).
"""

from workbench.scoring import _builtins as _builtins  # registers the built-in scorers
from workbench.scoring import _tools as _tools  # and the tool-call scorers
from workbench.scoring._judges import (
    JUDGE_SCORERS,
    REFERENCE_SCORES,
    REFERENCE_VERDICTS,
    VOTES,
    AnyJudge,
    JudgeConfig,
    JudgePanel,
    judge_from_dict,
    parse_judge,
)
from workbench.scoring._registry import (
    NOT_JSON,
    CaseLike,
    ScoreInput,
    Scorer,
    ScoreResult,
    ScorerSpec,
    ScoreValue,
    get,
    names,
    register,
    validate_spec,
)
from workbench.scoring._score import MISSING, get_field, narrow, parse_output, score_output

__all__ = [
    "JUDGE_SCORERS",
    "MISSING",
    "NOT_JSON",
    "REFERENCE_SCORES",
    "REFERENCE_VERDICTS",
    "VOTES",
    "AnyJudge",
    "CaseLike",
    "JudgeConfig",
    "JudgePanel",
    "ScoreInput",
    "ScoreResult",
    "ScoreValue",
    "Scorer",
    "ScorerSpec",
    "get",
    "get_field",
    "judge_from_dict",
    "names",
    "narrow",
    "parse_judge",
    "parse_output",
    "register",
    "score_output",
    "validate_spec",
]
