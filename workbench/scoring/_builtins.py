"""The built-in scorers, registered under their names when workbench.scoring is imported."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from itertools import islice
from typing import Any

from rapidfuzz import fuzz

from workbench import embeddings
from workbench.configfile import json_type
from workbench.errors import ScorerError
from workbench.scoring._registry import (
    BOOL,
    NON_NEGATIVE,
    NOT_JSON,
    STRING,
    ScoreInput,
    ScorerSpec,
    ScoreValue,
    builtin,
)
from workbench.scoring._score import MISSING, as_text, get_field
from workbench.text import clip, finite, show

# --- helpers shared by the built-ins ----------------------------------------------------------


def _expected(inp: ScoreInput) -> Any:
    if inp.expected is NOT_JSON:
        raise ScorerError("no expected value: the field is missing from the case's expected output")
    return inp.expected


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


# --- built-in scorers -------------------------------------------------------------------------


@builtin("exact")
def _exact(inp: ScoreInput) -> ScoreValue:
    """1 if the stripped output equals a string expected, or the parsed output equals JSON."""
    expected = _expected(inp)
    if isinstance(expected, str):
        got = inp.output.strip()
        if got == expected.strip():
            return 1.0
        return 0.0, f"expected {show(expected.strip())}, got {show(got)}"
    if inp.parsed is NOT_JSON:
        return 0.0, "output is not JSON"
    if _json_match(expected, inp.parsed):
        return 1.0
    return 0.0, f"expected {show(expected)}, got {show(inp.parsed)}"


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


@builtin("normalized_exact", {"ignore_punctuation": BOOL})
def _normalized_exact(inp: ScoreInput, *, ignore_punctuation: bool = True) -> ScoreValue:
    """exact after case-folding, NFKC, collapsing whitespace and stripping end punctuation."""
    want = _normalize(as_text(_expected(inp)), ignore_punctuation)
    got = _normalize(inp.output, ignore_punctuation)
    if want == got:
        return 1.0
    return 0.0, f"expected {show(want)}, got {show(got)}"


def _is_value_option(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


@builtin(
    "contains",
    {
        "value": (_is_value_option, "a string or a non-empty list of strings"),
        "all": BOOL,
        "case_sensitive": BOOL,
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
        values = [as_text(_expected(inp))]
    else:
        values = [value] if isinstance(value, str) else list(value)
    if not values:
        raise ScorerError("option 'value' is an empty list; give at least one string")
    haystack = inp.output if case_sensitive else inp.output.casefold()
    missing = [v for v in values if (v if case_sensitive else v.casefold()) not in haystack]
    found = len(values) - len(missing)
    if not all:
        return (1.0, "") if found else (0.0, "none found: " + ", ".join(map(show, values[:5])))
    detail = "missing: " + ", ".join(map(show, missing[:5])) if missing else ""
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


@builtin(
    "regex",
    {"pattern": STRING, "flags": STRING, "fullmatch": BOOL},
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


@builtin(
    "is_json",
    {"type": (lambda v: v in _JSON_TYPES, "one of " + ", ".join(_JSON_TYPES))},
)
def _is_json(inp: ScoreInput, *, type: str | None = None) -> ScoreValue:
    """1 if the output parses as JSON (of the given ``type`` when set)."""
    if inp.parsed is NOT_JSON:
        return 0.0, "output is not JSON"
    actual = json_type(inp.parsed)
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


@builtin(
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
    shown = [f"{error.json_path}: {clip(error.message, 100)}" for error in errors[:3]]
    return 0.0, "; ".join(shown) + ("; …" if len(errors) > 3 else "")


def _is_fields_option(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and k and NON_NEGATIVE[0](w) for k, w in value.items())
        and sum(value.values()) > 0
    )


@builtin(
    "json_fields",
    {
        "fields": (
            _is_fields_option,
            "a mapping of field path to weight >= 0 with a positive total",
        ),
        "numeric_tolerance": NON_NEGATIVE,
        "case_insensitive": BOOL,
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
                f"{json_type(expected)}; set option 'fields' or use 'exact'"
            )
        fields = dict.fromkeys(expected, 1.0)
    if not isinstance(inp.parsed, dict):
        return 0.0, f"output is a JSON {json_type(inp.parsed)}, not an object"
    if not fields:
        return 1.0, "no fields to compare"
    total, matched, mismatches = field_matches(
        expected, inp.parsed, fields, numeric_tolerance, case_insensitive
    )
    return (matched / total if total > 0 else 0.0), mismatch_detail(mismatches)


def field_matches(
    expected: Any,
    got: Any,
    fields: Mapping[str, float],
    tolerance: float = 0.0,
    fold_case: bool = False,
    *,
    prefix: str = "",
) -> tuple[float, float, list[str]]:
    """Weighted field comparison: (total weight, matched weight, mismatch descriptions),
    each description naming ``prefix + path``."""
    total = matched = 0.0
    mismatches: list[str] = []
    for path, weight in fields.items():
        total += weight
        want = get_field(expected, path)
        value = get_field(got, path)
        if want is MISSING:
            mismatches.append(f"{prefix}{path}: missing from expected")
        elif value is MISSING:
            mismatches.append(f"{prefix}{path}: missing")
        elif _json_match(want, value, tolerance, fold_case):
            matched += weight
        else:
            mismatches.append(f"{prefix}{path}: expected {show(want)}, got {show(value)}")
    return total, matched, mismatches


def mismatch_detail(mismatches: list[str], limit: int = 5) -> str:
    """The first ``limit`` mismatches joined, and how many more there are."""
    detail = "; ".join(mismatches[:limit])
    if len(mismatches) > limit:
        detail += f"; (+{len(mismatches) - limit} more)"
    return detail


@builtin(
    "numeric",
    {"abs_tol": NON_NEGATIVE, "rel_tol": NON_NEGATIVE},
)
def _numeric(inp: ScoreInput, *, abs_tol: float = 0.0, rel_tol: float = 1e-9) -> ScoreValue:
    """1 if the output number is close to the expected one (``math.isclose``)."""
    expected = _expected(inp)
    want = finite(expected, parse_text=True)
    if want is None:
        raise ScorerError(f"the expected value {show(expected)} is not a number")
    got = finite(inp.output if inp.parsed is NOT_JSON else inp.parsed, parse_text=True)
    if got is None:
        return 0.0, f"output is not a number: {show(inp.output)}"
    if math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol):
        return 1.0
    return 0.0, f"expected {want!r}, got {got!r}"


_FUZZY_METHODS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio")


@builtin(
    "fuzzy",
    {"method": (lambda v: v in _FUZZY_METHODS, "one of " + ", ".join(_FUZZY_METHODS))},
)
def _fuzzy(inp: ScoreInput, *, method: str = "ratio") -> ScoreValue:
    """rapidfuzz similarity (``method``: ratio, partial_ratio, token_*_ratio) divided by 100."""
    if method not in _FUZZY_METHODS:
        methods = ", ".join(_FUZZY_METHODS)
        raise ScorerError(f"unknown fuzzy method {method!r}; use one of {methods}")
    similarity = getattr(fuzz, method)
    return float(similarity(inp.output.strip(), as_text(_expected(inp)).strip())) / 100.0


@builtin("semantic")
def _semantic(inp: ScoreInput) -> ScoreValue:
    """Cosine similarity of wordllama embeddings of output and expected, clipped to [0, 1]."""
    got = inp.output.strip()
    want = as_text(_expected(inp)).strip()
    if not got or not want:
        return 1.0 if got == want else 0.0
    similarity = embeddings.similarity(got, want)
    return min(1.0, max(0.0, similarity)) if math.isfinite(similarity) else 0.0
