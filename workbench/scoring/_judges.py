"""The model-graded scorers' names and options; their calls are made by :mod:`workbench.judges`.

A judge scorer needs a judge model, so it cannot score from the output alone: the runner
asks :mod:`workbench.judges` for its score and hands it to :func:`score_output` as
precomputed. Called directly, as any other scorer, it fails with a message saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
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
_CONFIG_KEYS = ("model", "temperature", "max_tokens", "seed", "base_url", "api_key_env")


@dataclass(frozen=True)
class JudgeConfig:
    """A judge: its target and the sampling parameters its requests carry."""

    target: str
    temperature: float | None = 0.0
    max_tokens: int | None = 512
    seed: int | None = 0
    base_url: str | None = None
    api_key_env: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """What a run records about its judge (no secret: an API key's variable name only)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, recorded: Mapping[str, Any]) -> JudgeConfig:
        """The config a run recorded with :meth:`to_dict` (a field left out was None)."""
        unset = {f.name: None for f in fields(cls) if f.name != "target"}
        return cls(**{**unset, **recorded})


VOTES = ("majority", "mean")


@dataclass(frozen=True)
class JudgePanel:
    """Several judges voting on each judgement: ``majority`` takes the median score (the
    verdict most judges give, at any threshold), ``mean`` the mean."""

    members: tuple[JudgeConfig, ...]
    vote: str = "majority"

    @property
    def target(self) -> str:
        """The panel's name: its members' targets joined by ``+``."""
        return "+".join(m.target for m in self.members)

    def to_dict(self) -> dict[str, Any]:
        """What a run records about its judges."""
        return {
            "target": self.target,
            "panel": [m.to_dict() for m in self.members],
            "vote": self.vote,
        }


AnyJudge = JudgeConfig | JudgePanel


def judge_from_dict(recorded: Mapping[str, Any]) -> AnyJudge:
    """A judge or panel as a run recorded it (``to_dict``)."""
    if "panel" in recorded:
        members = tuple(JudgeConfig.from_dict(m) for m in recorded["panel"])
        return JudgePanel(members, recorded.get("vote", "majority"))
    return JudgeConfig.from_dict(recorded)


def parse_judge(value: Any) -> tuple[AnyJudge | None, str | None]:
    """A card's ``judge:``: a target, a mapping with ``model`` and parameters, or a panel (a
    list of those, or ``{panel: [...], vote: majority | mean}``); the config, or None and the
    problem."""
    if isinstance(value, list) or (isinstance(value, Mapping) and "panel" in value):
        return _parse_panel(value)
    return _parse_one(value)


def _parse_panel(value: Any) -> tuple[JudgePanel | None, str | None]:
    vote = "majority"
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in ("panel", "vote"))
        if unknown:
            return None, f"{unknown[0]}: unknown key of a panel; known: panel, vote"
        vote = value.get("vote", "majority")
        if vote not in VOTES:
            return None, f"vote: {vote!r}; use one of {', '.join(VOTES)}"
        value = value["panel"]
    if not isinstance(value, list) or len(value) < 2:
        return None, "a panel lists at least two judges, e.g. [demo:judge, openai:gpt-4o-mini]"
    members = []
    for i, item in enumerate(value):
        config, problem = _parse_one(item)
        if config is None:
            return None, f"panel[{i}].{problem}"
        members.append(config)
    targets = [m.target for m in members]
    if len(set(targets)) < len(targets):
        return None, "a panel names each judge once"
    return JudgePanel(tuple(members), vote), None


def _parse_one(value: Any) -> tuple[JudgeConfig | None, str | None]:
    if isinstance(value, str):
        value = {"model": value}
    if not isinstance(value, Mapping):
        return None, "must be a target such as demo:judge, or {model: TARGET, temperature: 0, ...}"
    unknown = sorted(str(k) for k in value if k not in _CONFIG_KEYS)
    if unknown:
        return None, f"{unknown[0]}: unknown key; known: {', '.join(_CONFIG_KEYS)}"
    target = value.get("model")
    if not isinstance(target, str) or ":" not in target:
        return None, "model: must be a target such as demo:judge or openai:gpt-4o-mini"
    for key in ("temperature",):
        v = value.get(key, 0.0)
        if v is not None and (not isinstance(v, int | float) or isinstance(v, bool) or v < 0):
            return None, f"{key}: must be a number >= 0, got {v!r}"
    for key in ("max_tokens", "seed"):
        v = value.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            return None, f"{key}: must be a whole number >= 0, got {v!r}"
    for key in ("base_url", "api_key_env"):
        v = value.get(key)
        if v is not None and not isinstance(v, str):
            return None, f"{key}: must be a string"
    return JudgeConfig(
        target=target,
        temperature=value.get("temperature", 0.0),
        max_tokens=value.get("max_tokens", 512),
        seed=value.get("seed", 0),
        base_url=value.get("base_url"),
        api_key_env=value.get("api_key_env"),
    ), None


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
