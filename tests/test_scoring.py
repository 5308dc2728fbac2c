"""Tests for workbench.scoring: the registry, each built-in scorer and score_output."""

from __future__ import annotations

import copy
import json
import math
import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import ScorerError
from workbench.golden import Case
from workbench.scoring import (
    NOT_JSON,
    ScoreInput,
    ScorerSpec,
    _builtins,
    _registry,
    get,
    names,
    parse_output,
    register,
    score_output,
    validate_spec,
)

BUILTINS = [
    "contains",
    "exact",
    "fuzzy",
    "is_json",
    "json_fields",
    "json_schema",
    "normalized_exact",
    "numeric",
    "regex",
    "semantic",
]

SCHEMA = {
    "type": "object",
    "required": ["priority", "category", "summary"],
    "properties": {
        "priority": {"enum": ["p1", "p2", "p3"]},
        "category": {"type": "string"},
        "summary": {"type": "string", "maxLength": 40},
    },
    "additionalProperties": False,
}
TICKET = {"priority": "p2", "category": "billing", "summary": "Customer was charged twice"}


def one(name: str, output: str, expected: Any, **kwargs: Any) -> tuple[float, str, bool]:
    """Score with a single spec; return (score, detail, passed)."""
    spec = ScorerSpec(name, **kwargs)
    result = score_output([spec], output, expected, schema=SCHEMA)
    return result.scores[spec.label], result.details[spec.label], result.passed


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test register scorers without leaking them into other tests."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    monkeypatch.setattr(_registry, "_CHECKS", dict(_registry._CHECKS))


@pytest.fixture
def custom_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module on sys.path holding custom scorers; yields its name."""
    name = "wb_test_custom_scorers"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def starts_with(inp, *, prefix="", bonus=0.0):
                ok = inp.output.startswith(prefix)
                return (min(1.0, float(ok) + bonus), f"prefix {prefix!r}")

            def anything(inp, **options):
                return 1.0

            NOT_A_FUNCTION = 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


# --- parse_output -----------------------------------------------------------------------------


def test_parse_output_parses_json_and_fenced_json() -> None:
    assert parse_output('{"a": [1, 2.5, true]}') == {"a": [1, 2.5, True]}
    assert parse_output('Here you go:\n```json\n{"a": 1}\n```\nThanks') == {"a": 1}
    assert parse_output('```\n["x"]\n```') == ["x"]
    assert parse_output("null") is None  # a JSON null is not "not JSON"


@pytest.mark.parametrize(
    "text", ["", "Paris", "{'a': 1}", "NaN", '{"a": Infinity}', "[-Infinity]", "```json\n{\n```"]
)
def test_parse_output_returns_not_json(text: str) -> None:
    assert parse_output(text) is NOT_JSON


def test_parse_output_survives_deep_nesting() -> None:
    assert parse_output("[" * 100_000) is NOT_JSON


@given(st.text())
def test_parse_output_never_raises(text: str) -> None:
    parse_output(text)
    parse_output(f"```json\n{text}\n```")


def test_not_json_survives_pickling() -> None:
    assert pickle.loads(pickle.dumps(NOT_JSON)) is NOT_JSON
    assert copy.deepcopy(NOT_JSON) is NOT_JSON


# --- registry ---------------------------------------------------------------------------------


def test_builtins_are_registered() -> None:
    assert names() == sorted(names())
    assert set(BUILTINS) <= set(names())


def test_unknown_scorer_lists_known_names_and_dotted_hint() -> None:
    with pytest.raises(ScorerError) as err:
        get("exactt")
    message = str(err.value)
    assert "'exactt'" in message and "did you mean 'exact'" in message
    assert ", ".join(names()) in message
    assert "mypkg.scorers:my_scorer" in message


@pytest.mark.usefixtures("registry")
def test_register_refuses_duplicates_unless_replace() -> None:
    register("always_half", lambda inp: 0.5)
    with pytest.raises(ScorerError, match=r"already registered.*replace=True"):
        register("always_half", lambda inp: 0.25)
    register("always_half", lambda inp: 0.25, replace=True)
    assert one("always_half", "x", "y")[0] == 0.25
    with pytest.raises(ScorerError, match="callable"):
        register("bad", "not a function")  # type: ignore[arg-type]


def test_register_does_not_leak_between_tests() -> None:
    assert "always_half" not in names()


@pytest.mark.parametrize("sep", [":", "."])
def test_custom_scorer_by_dotted_path(custom_module: str, sep: str) -> None:
    spec = ScorerSpec(f"{custom_module}{sep}starts_with", options={"prefix": "ok"})
    validate_spec(spec)
    result = score_output([spec], "ok then", None)
    assert result.scores == {spec.label: 1.0}
    assert result.details == {spec.label: "prefix 'ok'"}
    assert score_output([spec], "no", None).scores[spec.label] == 0.0


def test_custom_scorer_options_are_checked_against_its_signature(custom_module: str) -> None:
    with pytest.raises(
        ScorerError, match=r"unknown option 'prefx'.*allowed options: bonus, prefix"
    ):
        validate_spec(ScorerSpec(f"{custom_module}:starts_with", options={"prefx": "a"}))
    validate_spec(ScorerSpec(f"{custom_module}:anything", options={"whatever": 1}))


def test_custom_scorer_lookup_errors_name_the_module_and_attribute(custom_module: str) -> None:
    with pytest.raises(ScorerError, match="cannot import module 'no_such_mod_xyz'"):
        get("no_such_mod_xyz:fn")
    with pytest.raises(ScorerError, match=f"module '{custom_module}' has no attribute 'missing'"):
        get(f"{custom_module}:missing")
    with pytest.raises(ScorerError, match="not a callable"):
        get(f"{custom_module}.NOT_A_FUNCTION")


# --- validate_spec ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ScorerSpec("contains", options={"vaule": "x"}), "unknown option 'vaule'.*all, case_sen"),
        (ScorerSpec("exact", options={"x": 1}), "unknown option 'x'; allowed options: none"),
        (ScorerSpec("contains", options={"all": "yes"}), "option 'all' must be true or false"),
        (ScorerSpec("regex"), "option 'pattern' is required"),
        (ScorerSpec("regex", options={"pattern": "(unclosed"}), "invalid regex '\\(unclosed'"),
        (ScorerSpec("regex", options={"pattern": "a", "flags": "q"}), "unknown regex flag 'q'"),
        (ScorerSpec("is_json", options={"type": "dict"}), "option 'type' must be one of object"),
        (ScorerSpec("fuzzy", options={"method": "wratio"}), "option 'method' must be one of"),
        (ScorerSpec("numeric", options={"abs_tol": -1}), "option 'abs_tol' must be a number"),
        (ScorerSpec("json_fields", options={"fields": {}}), "option 'fields' must be a mapping"),
        (ScorerSpec("json_schema", options={"schema": {"type": 5}}), "not a valid JSON Schema"),
        (ScorerSpec("json_schema", field="summary"), "give options.schema for the field"),
        (ScorerSpec("exact", threshold=1.5), "threshold must be a number in \\[0, 1\\]"),
        (ScorerSpec("exact", threshold=math.nan), "threshold must be a number in \\[0, 1\\]"),
        (ScorerSpec("exact", weight=-1), "weight must be a number >= 0"),
        (ScorerSpec("exact", field="a..b"), "field must be a key or dotted path"),
        (ScorerSpec("nope"), "unknown scorer 'nope'"),
    ],
)
def test_validate_spec_rejects_bad_specs(spec: ScorerSpec, message: str) -> None:
    with pytest.raises(ScorerError, match=message):
        validate_spec(spec)


def test_validate_spec_accepts_good_specs() -> None:
    for spec in [
        ScorerSpec("regex", threshold=1, options={"pattern": "^p[1-3]$", "flags": "i,m"}),
        ScorerSpec("contains", weight=0, options={"value": ["a", "b"], "all": False}),
        ScorerSpec("json_fields", options={"fields": {"priority": 2, "customer.tier": 1}}),
        ScorerSpec("json_schema", field="summary", options={"schema": {"type": "string"}}),
        ScorerSpec("semantic", threshold=0.0),
    ]:
        validate_spec(spec)


def test_spec_label_and_hash() -> None:
    assert ScorerSpec("exact").label == "exact"
    assert ScorerSpec("exact", field="a.b").label == "exact[a.b]"
    assert hash(ScorerSpec("contains", options={"value": "x"})) == hash(ScorerSpec("contains"))


# --- built-in scorers -------------------------------------------------------------------------


def test_exact() -> None:
    assert one("exact", "  Paris\n", "Paris")[0] == 1.0
    assert one("exact", "paris", "Paris")[:2] == (0.0, "expected 'Paris', got 'paris'")
    assert one("exact", '{"b": [1, 2], "a": null}', {"a": None, "b": [1, 2]})[0] == 1.0
    assert one("exact", '{"a": true}', {"a": 1})[0] == 0.0  # JSON true is not 1
    assert one("exact", "2.0", 2)[0] == 1.0  # the same JSON number
    assert one("exact", "{not json", {"a": 1})[:2] == (0.0, "output is not JSON")


def test_normalized_exact() -> None:
    assert one("normalized_exact", "  The  ANSWER\tis:  Paris! ", "the answer is: paris")[0] == 1
    assert one("normalized_exact", "ＰＡＲＩＳ", "paris")[0] == 1.0  # NFKC folds full-width
    assert one("normalized_exact", "«Straße.»", "STRASSE")[0] == 1.0
    assert one("normalized_exact", "- Paris .", "paris")[0] == 1.0  # spaces between end marks
    assert one("normalized_exact", "Paris!", "paris", options={"ignore_punctuation": False})[0] == 0
    assert one("normalized_exact", "Paris, France", "paris france")[0] == 0.0


_CASE_STABLE = st.characters(codec="utf-8", exclude_categories=("Cs",)).filter(
    lambda c: c.upper().casefold() == c.casefold() == c.lower().casefold()
)


@given(
    words=st.lists(st.text(_CASE_STABLE, min_size=1), max_size=6),
    gaps=st.lists(st.sampled_from([" ", "  ", "\t", "\n", " \r\n "]), min_size=1, max_size=5),
    upper=st.booleans(),
)
def test_normalized_exact_ignores_case_and_whitespace(
    words: list[str], gaps: list[str], upper: bool
) -> None:
    words = " ".join(words).split()  # words without whitespace inside
    original = " ".join(words)
    changed = gaps[-1] + "".join(w + gaps[i % len(gaps)] for i, w in enumerate(words))
    changed = changed.upper() if upper else changed.lower()
    assert one("normalized_exact", changed, original)[0] == 1.0


def test_contains() -> None:
    assert one("contains", "Refund issued", "refund")[0] == 1.0  # default value: expected
    score, detail, _ = one("contains", "Refund issued", None, options={"value": ["refund", "x"]})
    assert (score, detail) == (0.5, "missing: 'x'")
    options = {"value": ["refund", "x"], "all": False}
    assert one("contains", "Refund issued", None, options=options)[0] == 1.0
    options = {"value": ["y", "x"], "all": False}
    assert one("contains", "Refund issued", None, options=options)[:2] == (
        0.0,
        "none found: 'y', 'x'",
    )
    strict = {"value": "refund", "case_sensitive": True}
    assert one("contains", "Refund", None, options=strict)[0] == 0.0


def test_regex() -> None:
    ignore_case = {"pattern": r"p[1-3]", "flags": "i"}
    assert one("regex", "ticket P2 opened", None, options=ignore_case)[0] == 1.0
    assert one("regex", "ticket P2", None, options={"pattern": r"p[1-3]"})[:2] == (
        0.0,
        "no match for /p[1-3]/",
    )
    full = {"pattern": r"p[1-3]", "fullmatch": True}
    assert one("regex", "p2\n", None, options=full)[0] == 1.0
    assert one("regex", "p2 or p3", None, options=full)[:2] == (0.0, "no full match for /p[1-3]/")
    assert one("regex", "a\nB", None, options={"pattern": "^b$", "flags": "im"})[0] == 1.0


def test_is_json() -> None:
    assert one("is_json", '{"a": 1}', None)[0] == 1.0
    assert one("is_json", "nope", None)[:2] == (0.0, "output is not JSON")
    assert one("is_json", "[1]", None, options={"type": "object"})[:2] == (
        0.0,
        "expected a JSON object, got array",
    )
    assert one("is_json", "3", None, options={"type": "number"})[0] == 1.0


def test_json_schema() -> None:
    assert one("json_schema", json.dumps(TICKET), None)[0] == 1.0
    bad = {"priority": "P2", "category": 3, "summary": "x" * 50, "extra": 1}
    score, detail, passed = one("json_schema", json.dumps(bad), None, threshold=1.0)
    assert (score, passed) == (0.0, False)
    shown = detail.split("; ")
    assert len(shown) == 4 and shown[-1] == "…"  # the first 3 errors, then an ellipsis
    assert "$.priority: 'P2' is not one of ['p1', 'p2', 'p3']" in shown
    assert one("json_schema", "oops", None)[:2] == (0.0, "output is not JSON")


def test_json_schema_prefers_option_schema_and_reports_missing_schema() -> None:
    spec = ScorerSpec("json_schema", options={"schema": {"type": "array"}})
    assert score_output([spec], "[1]", None, schema=SCHEMA).scores["json_schema"] == 1.0
    result = score_output([ScorerSpec("json_schema")], "{}", None)
    assert (result.scores["json_schema"], result.details["json_schema"]) == (
        0.0,
        "no schema to check against",
    )


def test_json_schema_validators_are_cached_by_content() -> None:
    assert _builtins._validator(SCHEMA) is _builtins._validator(copy.deepcopy(SCHEMA))


def test_json_fields() -> None:
    output = json.dumps({"priority": "P2", "category": "billing"})
    score, detail, _ = one("json_fields", output, TICKET)
    assert score == pytest.approx(1 / 3)
    assert detail == "priority: expected 'p2', got 'P2'; summary: missing"
    options = {"fields": {"priority": 3, "category": 1}, "case_insensitive": True}
    assert one("json_fields", output, TICKET, options=options)[0] == 1.0
    options = {"fields": {"priority": 3, "category": 1}}
    assert one("json_fields", output, TICKET, options=options)[0] == 0.25


def test_json_fields_paths_tolerance_and_failures() -> None:
    expected = {"customer": {"tier": "gold", "spend": 100.0}, "tags": ["a", "b"]}
    output = json.dumps({"customer": {"tier": "gold", "spend": 100.4}, "tags": ["a", "b"]})
    options = {"fields": {"customer.tier": 1, "customer.spend": 1, "tags.1": 1}}
    assert one("json_fields", output, expected, options=options)[0] == pytest.approx(2 / 3)
    tolerant = {**options, "numeric_tolerance": 0.5}
    assert one("json_fields", output, expected, options=tolerant)[0] == 1.0
    assert one("json_fields", "nope", expected)[:2] == (0.0, "output is not JSON")
    assert one("json_fields", "[1]", expected)[:2] == (0.0, "output is a JSON array, not an object")
    score, detail, passed = one("json_fields", "{}", "a string")
    assert (score, passed) == (0.0, False)
    assert detail.startswith("error: ScorerError: json_fields compares objects")


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6))
def test_json_fields_is_one_when_output_equals_expected(expected: dict[str, Any]) -> None:
    assert one("json_fields", json.dumps(expected), expected)[0] == 1.0


def test_numeric() -> None:
    assert one("numeric", "42", 42)[0] == 1.0
    assert one("numeric", "41.6", 42, options={"abs_tol": 0.5})[0] == 1.0
    assert one("numeric", "41.6", 42, options={"rel_tol": 0.001})[:2] == (
        0.0,
        "expected 42.0, got 41.6",
    )
    assert one("numeric", '"42"', "42")[0] == 1.0  # numeric strings count
    assert one("numeric", "forty-two", 42)[0] == 0.0
    assert one("numeric", "true", 1)[0] == 0.0  # a boolean is not a number
    score, detail, passed = one("numeric", "1", "many")
    assert (score, passed) == (0.0, False) and "is not a number" in detail


def test_fuzzy() -> None:
    assert one("fuzzy", "refund the customer", "refund the customer")[0] == 1.0
    assert 0.5 < one("fuzzy", "refund the customer", "refund customer")[0] < 1.0
    reordered = ("customer the refund", "refund the customer")
    assert one("fuzzy", *reordered)[0] < 1.0
    assert one("fuzzy", *reordered, options={"method": "token_sort_ratio"})[0] == 1.0


def test_semantic() -> None:
    expected = "The cat sat on the mat."
    similar = one("semantic", "A cat was sitting on the mat.", expected)[0]
    unrelated = one("semantic", "Quarterly revenue grew by eight percent.", expected)[0]
    assert 0.0 <= unrelated < similar <= 1.0
    assert similar > 0.5
    assert one("semantic", "", "")[0] == 1.0
    assert one("semantic", " ", expected)[0] == 0.0


# --- score_output -----------------------------------------------------------------------------


def test_field_narrowing() -> None:
    output = json.dumps({**TICKET, "priority": "p2 ", "customer": {"tier": "gold"}})
    expected = {**TICKET, "customer": {"tier": "gold"}}
    specs = [
        ScorerSpec("exact", field="priority"),
        ScorerSpec("exact", field="customer.tier"),
        ScorerSpec("contains", field="summary", options={"value": "twice"}),
    ]
    result = score_output(specs, output, expected)
    assert result.scores == {
        "exact[priority]": 1.0,
        "exact[customer.tier]": 1.0,
        "contains[summary]": 1.0,
    }


@pytest.mark.usefixtures("registry")
def test_field_narrowing_hands_the_scorer_the_field() -> None:
    seen: list[ScoreInput] = []
    register("spy", lambda inp: seen.append(inp) or 1.0)
    case = Case(id="c1", input={}, expected=None)
    score_output([ScorerSpec("spy", field="n")], '{"n": [1, 2]}', {"n": "x"}, case=case)
    assert seen == [ScoreInput(output="[1, 2]", parsed=[1, 2], expected="x", case=case)]
    score_output([ScorerSpec("spy", field="n")], '{"n": 1}', {"other": 1})
    assert seen[-1].expected is NOT_JSON


def test_field_narrowing_missing_field() -> None:
    spec = ScorerSpec("exact", field="summary", threshold=0.5)
    result = score_output([spec], '{"priority": "p2"}', TICKET)
    assert result.scores == {"exact[summary]": 0.0}
    assert result.details == {"exact[summary]": "field 'summary' missing"}
    assert result.passed is False
    result = score_output([spec], "not json", TICKET)
    assert result.details["exact[summary]"] == "output is not JSON, so field 'summary' is missing"
    result = score_output([ScorerSpec("exact", field="summary")], '{"summary": "x"}', {"a": 1})
    assert result.details["exact[summary]"].startswith("error: ScorerError: no expected value")


def test_weights_and_thresholds_combine() -> None:
    specs = [
        ScorerSpec("exact", weight=3, threshold=1.0),
        ScorerSpec("contains", weight=1, threshold=None, options={"value": "zzz"}),
    ]
    result = score_output(specs, "Paris", "Paris")
    assert result.scores == {"exact": 1.0, "contains": 0.0}
    assert result.score == pytest.approx(0.75)
    assert result.passed_by == {"exact": True, "contains": True}  # None: informational
    assert result.passed is True
    result = score_output(specs, "Lyon", "Paris")
    assert (result.score, result.passed, result.passed_by["exact"]) == (0.0, False, False)


def test_zero_total_weight_and_no_specs() -> None:
    assert score_output([ScorerSpec("exact", weight=0)], "a", "a").score == 0.0
    result = score_output([], "a", "a")
    assert (result.score, result.passed, result.scores) == (0.0, True, {})


def test_threshold_tolerates_float_rounding() -> None:
    fields = {"a": 0.7, "b": 0.1, "c": 0.2}  # 0.7 + 0.1 sums to 0.7999999999999999
    spec = ScorerSpec("json_fields", threshold=0.8, options={"fields": fields})
    result = score_output([spec], '{"a": 1, "b": 1, "c": 0}', {"a": 1, "b": 1, "c": 1})
    assert result.scores["json_fields"] < 0.8
    assert result.passed is True


def test_duplicate_labels_are_rejected() -> None:
    with pytest.raises(ScorerError, match="share the label 'exact'"):
        score_output([ScorerSpec("exact"), ScorerSpec("exact", weight=2)], "a", "a")


def _boom(inp: ScoreInput) -> float:
    raise ValueError("boom")


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize(
    ("scorer", "score", "detail", "passed"),
    [
        (_boom, 0.0, "error: ValueError: boom", False),
        (lambda inp: 1.7, 1.0, "score 1.7 clipped to [0, 1]", True),
        (lambda inp: (-0.5, "low"), 0.0, "low; score -0.5 clipped to [0, 1]", True),
        (lambda inp: math.nan, 0.0, "scorer returned NaN; counted as 0", True),
        (lambda inp: "0.5", 0.0, "error: scorer returned '0.5' (str), not a float", False),
        (
            lambda inp: 10**400,
            0.0,
            f"error: scorer returned 1{'0' * 58}… (int), not a float",
            False,
        ),
        (lambda inp: True, 1.0, "", True),
    ],
)
def test_misbehaving_scorers_do_not_crash_the_run(
    scorer: Any, score: float, detail: str, passed: bool
) -> None:
    register("odd", scorer)
    result = score_output([ScorerSpec("odd"), ScorerSpec("exact")], "a", "a")
    assert result.scores["odd"] == score
    assert result.details["odd"] == detail
    assert result.passed is passed
    assert result.scores["exact"] == 1.0


def test_precomputed_parsed_is_used() -> None:
    result = score_output([ScorerSpec("is_json")], "not json", None, parsed={"a": 1})
    assert result.scores["is_json"] == 1.0


EVERY_BUILTIN = [
    ScorerSpec("exact"),
    ScorerSpec("normalized_exact"),
    ScorerSpec("contains"),
    ScorerSpec("regex", options={"pattern": r"\w+\s"}),
    ScorerSpec("is_json", options={"type": "object"}),
    ScorerSpec("json_schema"),
    ScorerSpec("json_fields", options={"fields": {"priority": 1, "a.b": 2}}),
    ScorerSpec("numeric", options={"abs_tol": 1}),
    ScorerSpec("fuzzy", options={"method": "partial_ratio"}),
    ScorerSpec("semantic"),
]


def test_every_builtin_is_covered_by_the_property_test() -> None:
    assert sorted(spec.name for spec in EVERY_BUILTIN) == BUILTINS


@settings(max_examples=60, deadline=None)
@given(output=st.text(max_size=80), expected=JSON_VALUES)
def test_scores_are_always_within_unit_interval(output: str, expected: Any) -> None:
    result = score_output(EVERY_BUILTIN, output, expected, schema=SCHEMA)
    assert 0.0 <= result.score <= 1.0
    assert all(0.0 <= value <= 1.0 for value in result.scores.values())
    errors = {label for label, detail in result.details.items() if detail.startswith("error:")}
    assert errors <= {"numeric", "json_fields"}  # these need a number / an object expected
