"""Scorers: a registry of named scoring functions, and scoring one output against a card's list.

A scorer is ``scorer(inp: ScoreInput, **options) -> float | (float, str)`` returning a score in
[0, 1] and optionally a short detail. Built-ins are registered at import; a custom scorer is
either registered with :func:`register` or named by a dotted path (``"mypkg.scorers:fn"``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import json
import math
import numbers
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import islice
from typing import Any, Final, cast

from rapidfuzz import fuzz

from workbench import embeddings
from workbench.errors import ScorerError
from workbench.golden import Case

__all__ = [
    "NOT_JSON",
    "ScoreInput",
    "ScoreResult",
    "ScoreValue",
    "Scorer",
    "ScorerSpec",
    "get",
    "names",
    "parse_output",
    "register",
    "score_output",
    "validate_spec",
]

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

_PARSE: Final[Any] = object()  # score_output's default for `parsed`: parse the output text
_MISSING: Final[Any] = object()
_EPS = 1e-9  # so a threshold of 2/3 is met by a score computed as 0.6666...


@dataclasses.dataclass(frozen=True, slots=True)
class ScoreInput:
    """What a scorer sees: the output text, its JSON parse, the expected value and context.

    ``parsed`` is NOT_JSON when the output does not parse. Under field narrowing ``expected``
    is NOT_JSON when the case's expected output lacks the field.
    """

    output: str
    parsed: Any
    expected: Any
    case: Case | None = None
    schema: dict[str, Any] | None = None


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
    allowed = {p.name for p in keyword}
    unknown = sorted((key for key in spec.options if key not in allowed), key=str)
    if unknown:
        raise ScorerError(
            f"scorer {spec.label!r}: unknown option {unknown[0]!r}; "
            f"allowed options: {', '.join(sorted(allowed)) or 'none'}"
        )
    for p in keyword:
        if p.default is p.empty and p.name not in spec.options:
            raise ScorerError(f"scorer {spec.label!r}: option {p.name!r} is required")


_Rule = tuple[Callable[[Any], bool], str]
_BOOL: _Rule = (lambda v: isinstance(v, bool), "true or false")
_NON_NEGATIVE: _Rule = (lambda v: _is_number(v) and v >= 0, "a number >= 0")
_STRING: _Rule = (lambda v: isinstance(v, str), "a string")


def _check_options(
    spec: ScorerSpec, rules: Mapping[str, _Rule], required: Sequence[str] = ()
) -> None:
    """Reject unknown option names, missing required ones and values of the wrong kind."""
    unknown = sorted((key for key in spec.options if key not in rules), key=str)
    if unknown:
        raise ScorerError(
            f"scorer {spec.label!r}: unknown option {unknown[0]!r}; "
            f"allowed options: {', '.join(sorted(rules)) or 'none'}"
        )
    for key in required:
        if key not in spec.options:
            raise ScorerError(f"scorer {spec.label!r}: option {key!r} is required")
    for key, value in spec.options.items():
        accepts, wanted = rules[key]
        if not accepts(value):
            raise ScorerError(
                f"scorer {spec.label!r}: option {key!r} must be {wanted}, got {value!r}"
            )


# --- scoring ----------------------------------------------------------------------------------


def score_output(
    specs: Sequence[ScorerSpec],
    output: str,
    expected: Any,
    *,
    case: Case | None = None,
    schema: dict[str, Any] | None = None,
    parsed: Any = _PARSE,
) -> ScoreResult:
    """Score one output with every spec and combine the scores by weight.

    A scorer that raises scores 0 and fails, with the exception as its detail; an unknown
    scorer or two specs with the same label raise ScorerError (a card error, not an output's).
    """
    if parsed is _PARSE:
        parsed = parse_output(output)
    base = ScoreInput(output, parsed, expected, case, schema)
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
        value, detail, failed = _run(spec, base)
        scores[label] = value
        details[label] = detail
        passed_by[label] = not failed and (spec.threshold is None or value >= spec.threshold - _EPS)
        total_weight += spec.weight
        weighted += spec.weight * value
    score = weighted / total_weight if total_weight > 0 else 0.0
    return ScoreResult(scores, passed_by, details, score, all(passed_by.values()))


def _run(spec: ScorerSpec, base: ScoreInput) -> tuple[float, str, bool]:
    """Run one scorer: (score in [0, 1], detail, whether it errored)."""
    scorer = _REGISTRY.get(spec.name) or get(spec.name)
    inp = base
    if spec.field is not None:
        narrowed = _narrow(base, spec.field)
        if isinstance(narrowed, str):
            return 0.0, narrowed, False
        inp = narrowed
    try:
        raw = scorer(inp, **spec.options)
    except Exception as exc:
        return 0.0, _clip(f"error: {type(exc).__name__}: {exc}", 300), True
    detail = ""
    if type(raw) is tuple and len(raw) == 2:
        raw, note = raw
        detail = "" if note is None else str(note)
    try:
        if type(raw) is not float and not isinstance(raw, numbers.Real):
            raise TypeError
        value = float(raw)
    except (TypeError, OverflowError):
        return 0.0, f"error: scorer returned {_show(raw)} ({type(raw).__name__}), not a float", True
    if 0.0 <= value <= 1.0:
        return value, detail, False
    if math.isnan(value):
        note = "scorer returned NaN; counted as 0"
        value = 0.0
    else:
        note = f"score {value:g} clipped to [0, 1]"
        value = min(1.0, max(0.0, value))
    return value, f"{detail}; {note}" if detail else note, False


def _narrow(base: ScoreInput, field: str) -> ScoreInput | str:
    """The input narrowed to one field, or a detail saying why the field is missing."""
    if base.parsed is NOT_JSON:
        return f"output is not JSON, so field {field!r} is missing"
    value = _get_field(base.parsed, field)
    if value is _MISSING:
        return f"field {field!r} missing"
    expected = _get_field(base.expected, field)
    if expected is _MISSING:
        expected = NOT_JSON
    output = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return ScoreInput(output, value, expected, base.case, base.schema)


@lru_cache(maxsize=1024)
def _split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _get_field(value: Any, path: str) -> Any:
    """Look up a top-level key, else a dotted path ("a.b", list indexes as "items.0")."""
    if isinstance(value, dict) and path in value:
        return value[path]
    for key in _split_path(path):
        if isinstance(value, dict):
            if key not in value:
                return _MISSING
            value = value[key]
        elif isinstance(value, list) and key.isascii() and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


# --- helpers shared by the built-ins ----------------------------------------------------------


def _expected(inp: ScoreInput) -> Any:
    if inp.expected is NOT_JSON:
        raise ScorerError("no expected value: the field is missing from the case's expected output")
    return inp.expected


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any, limit: int = 60) -> str:
    return _clip(repr(value) if isinstance(value, str) else _as_text(value), limit)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__


def _json_match(want: Any, got: Any, tolerance: float = 0.0, fold_case: bool = False) -> bool:
    """JSON equality (true is not 1, key order ignored), optionally tolerant."""
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    if isinstance(want, int | float) and isinstance(got, int | float):
        if want == got:
            return True
        try:
            return tolerance > 0 and abs(want - got) <= tolerance
        except OverflowError:
            return False
    if isinstance(want, str) and isinstance(got, str):
        return want == got or (fold_case and want.casefold() == got.casefold())
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(
            _json_match(v, got[k], tolerance, fold_case) for k, v in want.items()
        )
    if isinstance(want, list | tuple) and isinstance(got, list | tuple):
        return len(want) == len(got) and all(
            _json_match(a, b, tolerance, fold_case) for a, b in zip(want, got, strict=True)
        )
    return want is None and got is None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _builtin(
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


# --- built-in scorers -------------------------------------------------------------------------


@_builtin("exact")
def _exact(inp: ScoreInput) -> ScoreValue:
    """1 if the stripped output equals a string expected, or the parsed output equals JSON."""
    expected = _expected(inp)
    if isinstance(expected, str):
        got = inp.output.strip()
        if got == expected.strip():
            return 1.0
        return 0.0, f"expected {_show(expected.strip())}, got {_show(got)}"
    if inp.parsed is NOT_JSON:
        return 0.0, "output is not JSON"
    if _json_match(expected, inp.parsed):
        return 1.0
    return 0.0, f"expected {_show(expected)}, got {_show(inp.parsed)}"


@lru_cache(maxsize=4096)
def _normalize(text: str, ignore_punctuation: bool) -> str:
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    text = " ".join(text.split())
    if not ignore_punctuation:
        return text
    start, end = 0, len(text)
    while start < end and (text[start] == " " or unicodedata.category(text[start])[0] == "P"):
        start += 1
    while end > start and (text[end - 1] == " " or unicodedata.category(text[end - 1])[0] == "P"):
        end -= 1
    return text[start:end]


@_builtin("normalized_exact", {"ignore_punctuation": _BOOL})
def _normalized_exact(inp: ScoreInput, *, ignore_punctuation: bool = True) -> ScoreValue:
    """exact after case-folding, NFKC, collapsing whitespace and stripping end punctuation."""
    want = _normalize(_as_text(_expected(inp)), ignore_punctuation)
    got = _normalize(inp.output, ignore_punctuation)
    if want == got:
        return 1.0
    return 0.0, f"expected {_show(want)}, got {_show(got)}"


def _is_value_option(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


@_builtin(
    "contains",
    {
        "value": (_is_value_option, "a string or a non-empty list of strings"),
        "all": _BOOL,
        "case_sensitive": _BOOL,
    },
)
def _contains(
    inp: ScoreInput,
    *,
    value: str | list[str] | None = None,
    all: bool = True,  # shadows the builtin: it is the option's name in dataset cards
    case_sensitive: bool = False,
) -> ScoreValue:
    """Fraction of ``value`` strings found in the output (``all=False``: 1 if any is found)."""
    if value is None:
        values = [_as_text(_expected(inp))]
    else:
        values = [value] if isinstance(value, str) else list(value)
    if not values:
        raise ScorerError("option 'value' is an empty list; give at least one string")
    haystack = inp.output if case_sensitive else inp.output.casefold()
    missing = [v for v in values if (v if case_sensitive else v.casefold()) not in haystack]
    found = len(values) - len(missing)
    if not all:
        return (1.0, "") if found else (0.0, "none found: " + ", ".join(map(_show, values[:5])))
    detail = "missing: " + ", ".join(map(_show, missing[:5])) if missing else ""
    if len(missing) > 5:
        detail += f" (+{len(missing) - 5} more)"
    return found / len(values), detail


_REGEX_FLAGS = {"i": re.I, "m": re.M, "s": re.S, "x": re.X, "a": re.A}
_REGEX_FLAGS |= {str(flag.name).lower(): flag for flag in _REGEX_FLAGS.values()}


@lru_cache(maxsize=256)
def _compile(pattern: str, flags: str) -> re.Pattern[str]:
    value = re.RegexFlag(0)
    for token in re.split(r"[\s,|]+", flags.strip()):
        key = token.lower()
        if not key:
            continue
        if key in _REGEX_FLAGS:
            value |= _REGEX_FLAGS[key]
        elif set(key) <= set("imsxa"):
            for letter in key:
                value |= _REGEX_FLAGS[letter]
        else:
            raise ScorerError(
                f"unknown regex flag {token!r}; use letters from 'imsxa', such as 'i,m,s'"
            )
    try:
        return re.compile(pattern, value)
    except re.error as exc:
        raise ScorerError(f"invalid regex {pattern!r}: {exc}") from exc


def _check_regex(spec: ScorerSpec) -> None:
    try:
        _compile(spec.options["pattern"], spec.options.get("flags", ""))
    except ScorerError as exc:
        raise ScorerError(f"scorer {spec.label!r}: {exc}") from None


@_builtin(
    "regex",
    {"pattern": _STRING, "flags": _STRING, "fullmatch": _BOOL},
    required=("pattern",),
    extra=_check_regex,
)
def _regex(
    inp: ScoreInput, *, pattern: str, flags: str = "", fullmatch: bool = False
) -> ScoreValue:
    """1 if ``pattern`` is found in the output (``fullmatch``: matches all of it, stripped)."""
    compiled = _compile(pattern, flags)
    if fullmatch:
        found = compiled.fullmatch(inp.output.strip()) is not None
    else:
        found = compiled.search(inp.output) is not None
    return 1.0 if found else (0.0, f"no {'full ' if fullmatch else ''}match for /{pattern}/")


_JSON_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")


@_builtin(
    "is_json",
    {"type": (lambda v: v in _JSON_TYPES, "one of " + ", ".join(_JSON_TYPES))},
)
def _is_json(inp: ScoreInput, *, type: str | None = None) -> ScoreValue:
    """1 if the output parses as JSON (of the given ``type`` when set)."""
    if inp.parsed is NOT_JSON:
        return 0.0, "output is not JSON"
    actual = _json_type(inp.parsed)
    if type is None or actual == type or (type == "number" and actual == "integer"):
        return 1.0
    return 0.0, f"expected a JSON {type}, got {actual}"


_VALIDATOR_CACHE_SIZE = 256
# id(schema) -> (schema, validator): holding the schema keeps its id from being reused.
# Schemas are assumed not to be mutated after first use.
_VALIDATORS_BY_ID: dict[int, tuple[Any, Any]] = {}
_VALIDATORS_BY_JSON: dict[str, Any] = {}


def _validator(schema: Any) -> Any:
    """A compiled Draft 2020-12 validator for ``schema``, cached by identity, then by content."""
    hit = _VALIDATORS_BY_ID.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _VALIDATORS_BY_JSON.get(key)
    if validator is None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ScorerError(f"the schema is not a valid JSON Schema: {exc.message}") from None
        validator = Draft202012Validator(schema)
        if len(_VALIDATORS_BY_JSON) >= _VALIDATOR_CACHE_SIZE:
            _VALIDATORS_BY_JSON.clear()
        _VALIDATORS_BY_JSON[key] = validator
    if len(_VALIDATORS_BY_ID) >= _VALIDATOR_CACHE_SIZE:
        _VALIDATORS_BY_ID.clear()
    _VALIDATORS_BY_ID[id(schema)] = (schema, validator)
    return validator


def _check_json_schema(spec: ScorerSpec) -> None:
    if "schema" in spec.options:
        try:
            _validator(spec.options["schema"])
        except ScorerError as exc:
            raise ScorerError(f"scorer {spec.label!r}: option 'schema': {exc}") from None
    elif spec.field is not None:
        raise ScorerError(
            f"scorer {spec.label!r}: give options.schema for the field; "
            "the dataset's schema describes the whole output"
        )


@_builtin(
    "json_schema",
    {"schema": (lambda v: isinstance(v, dict | bool), "a JSON Schema object")},
    extra=_check_json_schema,
)
def _json_schema(inp: ScoreInput, *, schema: dict[str, Any] | None = None) -> ScoreValue:
    """1 if the parsed output validates against ``schema``, else the dataset's schema."""
    if schema is None:
        schema = inp.schema
    if schema is None:
        return 0.0, "no schema to check against"
    if inp.parsed is NOT_JSON:
        return 0.0, "output is not JSON"
    errors = list(islice(_validator(schema).iter_errors(inp.parsed), 4))
    if not errors:
        return 1.0
    shown = [f"{error.json_path}: {_clip(error.message, 100)}" for error in errors[:3]]
    return 0.0, "; ".join(shown) + ("; …" if len(errors) > 3 else "")


def _is_fields_option(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and k and _NON_NEGATIVE[0](w) for k, w in value.items())
        and sum(value.values()) > 0
    )


@_builtin(
    "json_fields",
    {
        "fields": (
            _is_fields_option,
            "a mapping of field path to weight >= 0 with a positive total",
        ),
        "numeric_tolerance": _NON_NEGATIVE,
        "case_insensitive": _BOOL,
    },
)
def _json_fields(
    inp: ScoreInput,
    *,
    fields: Mapping[str, float] | None = None,
    numeric_tolerance: float = 0.0,
    case_insensitive: bool = False,
) -> ScoreValue:
    """Weighted fraction of fields whose output value matches the expected one."""
    if inp.parsed is NOT_JSON:
        return 0.0, "output is not JSON"
    expected = _expected(inp)
    if fields is None:
        if not isinstance(expected, dict):
            raise ScorerError(
                f"json_fields compares objects but the expected output is a JSON "
                f"{_json_type(expected)}; set option 'fields' or use 'exact'"
            )
        fields = dict.fromkeys(expected, 1.0)
    if not isinstance(inp.parsed, dict):
        return 0.0, f"output is a JSON {_json_type(inp.parsed)}, not an object"
    if not fields:
        return 1.0, "no fields to compare"
    total = matched = 0.0
    mismatches: list[str] = []
    for path, weight in fields.items():
        total += weight
        want = _get_field(expected, path)
        got = _get_field(inp.parsed, path)
        if want is _MISSING:
            mismatches.append(f"{path}: missing from expected")
        elif got is _MISSING:
            mismatches.append(f"{path}: missing")
        elif _json_match(want, got, numeric_tolerance, case_insensitive):
            matched += weight
        else:
            mismatches.append(f"{path}: expected {_show(want)}, got {_show(got)}")
    detail = "; ".join(mismatches[:5])
    if len(mismatches) > 5:
        detail += f"; (+{len(mismatches) - 5} more)"
    return (matched / total if total > 0 else 0.0), detail


@_builtin(
    "numeric",
    {"abs_tol": _NON_NEGATIVE, "rel_tol": _NON_NEGATIVE},
)
def _numeric(inp: ScoreInput, *, abs_tol: float = 0.0, rel_tol: float = 1e-9) -> ScoreValue:
    """1 if the output number is close to the expected one (``math.isclose``)."""
    expected = _expected(inp)
    want = _as_number(expected)
    if want is None:
        raise ScorerError(f"the expected value {_show(expected)} is not a number")
    got = _as_number(inp.output if inp.parsed is NOT_JSON else inp.parsed)
    if got is None:
        return 0.0, f"output is not a number: {_show(inp.output)}"
    if math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol):
        return 1.0
    return 0.0, f"expected {want!r}, got {got!r}"


_FUZZY_METHODS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio")


@_builtin(
    "fuzzy",
    {"method": (lambda v: v in _FUZZY_METHODS, "one of " + ", ".join(_FUZZY_METHODS))},
)
def _fuzzy(inp: ScoreInput, *, method: str = "ratio") -> ScoreValue:
    """rapidfuzz similarity (``method``: ratio, partial_ratio, token_*_ratio) divided by 100."""
    if method not in _FUZZY_METHODS:
        methods = ", ".join(_FUZZY_METHODS)
        raise ScorerError(f"unknown fuzzy method {method!r}; use one of {methods}")
    similarity = getattr(fuzz, method)
    return float(similarity(inp.output.strip(), _as_text(_expected(inp)).strip())) / 100.0


@_builtin("semantic")
def _semantic(inp: ScoreInput) -> ScoreValue:
    """Cosine similarity of wordllama embeddings of output and expected, clipped to [0, 1]."""
    got = inp.output.strip()
    want = _as_text(_expected(inp)).strip()
    if not got or not want:
        return 1.0 if got == want else 0.0
    similarity = embeddings.similarity(got, want)
    return min(1.0, max(0.0, similarity)) if math.isfinite(similarity) else 0.0
