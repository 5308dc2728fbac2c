"""The scorer registry and the types a scorer works with: specs, inputs, results, option checks."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import math
import numbers
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final, Protocol, cast

from workbench.errors import ScorerError

ScoreValue = float | tuple[float, str]
Scorer = Callable[..., ScoreValue]


class _NotJson:
    """Type of :data:`NOT_JSON`; pickles back to the same singleton."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_JSON"

    def __reduce__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Final[Any] = _NotJson()
"""``ScoreInput.parsed`` when the output is not JSON (``None`` means a literal JSON null)."""


class CaseLike(Protocol):
    """The parts of a golden case a scorer may read; ``golden.Case`` is one."""

    @property
    def id(self) -> str: ...
    @property
    def input(self) -> dict[str, Any]: ...
    @property
    def expected(self) -> Any: ...
    @property
    def tags(self) -> tuple[str, ...]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class ScoreInput:
    """What a scorer sees: the output text, its JSON parse, the expected value and context.

    ``parsed`` is NOT_JSON when the output does not parse. Under field narrowing ``expected``
    is NOT_JSON when the case's expected output lacks the field.
    """

    output: str
    parsed: Any
    expected: Any
    case: CaseLike | None = None
    schema: dict[str, Any] | None = None
    # the tool calls the model made ({id, name, arguments, parsed | error}, see
    # workbench.tools.stored_calls) and the tools it was offered (OpenAI definitions)
    tool_calls: tuple[dict[str, Any], ...] = ()
    tools: tuple[dict[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class ScorerSpec:
    """One entry of a dataset card's scorer list."""

    name: str
    weight: float = 1.0
    threshold: float | None = None
    field: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        """The key of this scorer in results: ``name`` or ``name[field]``."""
        return self.name if self.field is None else f"{self.name}[{self.field}]"


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """Scores of one output, keyed by scorer label, and their weighted combination."""

    scores: dict[str, float]
    passed_by: dict[str, bool]
    details: dict[str, str]
    score: float
    passed: bool


# --- registry ---------------------------------------------------------------------------------

_REGISTRY: dict[str, Scorer] = {}
_CHECKS: dict[str, Callable[[ScorerSpec], None]] = {}  # option checks of the built-ins


def register(name: str, scorer: Scorer, *, replace: bool = False) -> None:
    """Register ``scorer`` under ``name``; ``replace=True`` overrides an existing scorer."""
    if not isinstance(name, str) or not name.strip():
        raise ScorerError(f"a scorer name must be a non-empty string, got {name!r}")
    if not callable(scorer):
        raise ScorerError(f"scorer {name!r} must be callable, got {type(scorer).__name__}")
    if name in _REGISTRY and not replace:
        raise ScorerError(
            f"a scorer named {name!r} is already registered; pass replace=True to override it"
        )
    _REGISTRY[name] = scorer
    _CHECKS.pop(name, None)  # a replaced built-in is checked by its signature instead


def get(name: str) -> Scorer:
    """Return the scorer registered as ``name``, or import it when ``name`` is a dotted path."""
    scorer = _REGISTRY.get(name)
    if scorer is not None:
        return scorer
    if isinstance(name, str) and ("." in name or ":" in name):
        return _import_scorer(name)
    close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ScorerError(
        f"unknown scorer {name!r}{hint}; known scorers: {', '.join(names())}. "
        "For a custom scorer give a dotted path such as 'mypkg.scorers:my_scorer'"
    )


def names() -> list[str]:
    """Names of the registered scorers, sorted."""
    return sorted(_REGISTRY)


def _import_scorer(name: str) -> Scorer:
    if ":" in name:
        module_name, _, attr_path = name.partition(":")
    else:
        module_name, _, attr_path = name.rpartition(".")
    if not module_name or not attr_path:
        raise ScorerError(
            f"custom scorer {name!r} is not a dotted path; write 'package.module:function'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ScorerError(
            f"cannot import module {module_name!r} for custom scorer {name!r}: {exc}; "
            "check that it is installed or on sys.path"
        ) from exc
    except Exception as exc:
        raise ScorerError(
            f"importing module {module_name!r} for custom scorer {name!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ScorerError(
                f"module {module_name!r} has no attribute {attr_path!r} (custom scorer {name!r})"
            ) from None
    if not callable(obj):
        raise ScorerError(
            f"custom scorer {name!r} is a {type(obj).__name__}, not a callable; "
            "point it at a function taking (inp, **options)"
        )
    return cast(Scorer, obj)


# --- validation -------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def validate_spec(spec: ScorerSpec) -> None:
    """Check that a spec's scorer resolves and its weight, threshold, field and options fit."""
    if not isinstance(spec.name, str) or not spec.name:
        raise ScorerError(f"a scorer name must be a non-empty string, got {spec.name!r}")
    where = f"scorer {spec.label!r}"
    if not _is_number(spec.weight) or spec.weight < 0:
        raise ScorerError(f"{where}: weight must be a number >= 0, got {spec.weight!r}")
    if spec.threshold is not None and not (_is_number(spec.threshold) and 0 <= spec.threshold <= 1):
        raise ScorerError(
            f"{where}: threshold must be a number in [0, 1] (or omitted), got {spec.threshold!r}"
        )
    if spec.field is not None and (
        not isinstance(spec.field, str) or not all(spec.field.split("."))
    ):
        raise ScorerError(
            f"{where}: field must be a key or dotted path such as 'a.b', got {spec.field!r}"
        )
    if not isinstance(spec.options, Mapping):
        raise ScorerError(f"{where}: options must be a mapping, got {type(spec.options).__name__}")
    scorer = get(spec.name)
    check = _CHECKS.get(spec.name)
    if check is not None:
        check(spec)
    else:
        _check_signature(spec, scorer)


def _check_signature(spec: ScorerSpec, scorer: Scorer) -> None:
    """Check a custom scorer's options against the keyword parameters it accepts."""
    try:
        params = list(inspect.signature(scorer).parameters.values())
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    keyword = [p for p in params[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in keyword if p.default is p.empty]
    _check_names(spec, {p.name for p in keyword}, required)


def _check_names(spec: ScorerSpec, allowed: Collection[str], required: Sequence[str]) -> None:
    """Reject an option name not in ``allowed``, then a missing ``required`` one."""
    unknown = sorted((key for key in spec.options if key not in allowed), key=str)
    if unknown:
        raise ScorerError(
            f"scorer {spec.label!r}: unknown option {unknown[0]!r}; "
            f"allowed options: {', '.join(sorted(allowed)) or 'none'}"
        )
    for key in required:
        if key not in spec.options:
            raise ScorerError(f"scorer {spec.label!r}: option {key!r} is required")


_Rule = tuple[Callable[[Any], bool], str]
BOOL: _Rule = (lambda v: isinstance(v, bool), "true or false")
NON_NEGATIVE: _Rule = (lambda v: _is_number(v) and v >= 0, "a number >= 0")
STRING: _Rule = (lambda v: isinstance(v, str), "a string")


def _check_options(
    spec: ScorerSpec, rules: Mapping[str, _Rule], required: Sequence[str] = ()
) -> None:
    """Reject unknown option names, missing required ones and values of the wrong kind."""
    _check_names(spec, rules, required)
    for key, value in spec.options.items():
        accepts, wanted = rules[key]
        if not accepts(value):
            raise ScorerError(
                f"scorer {spec.label!r}: option {key!r} must be {wanted}, got {value!r}"
            )


def builtin(
    name: str,
    rules: Mapping[str, _Rule] | None = None,
    *,
    required: Sequence[str] = (),
    extra: Callable[[ScorerSpec], None] | None = None,
) -> Callable[[Scorer], Scorer]:
    """Register a built-in with its option rules and an optional extra check."""

    def check(spec: ScorerSpec) -> None:
        _check_options(spec, rules or {}, required)
        if extra is not None:
            extra(spec)

    def decorate(scorer: Scorer) -> Scorer:
        register(name, scorer)
        _CHECKS[name] = check
        return scorer

    return decorate
