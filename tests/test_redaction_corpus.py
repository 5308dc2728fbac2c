"""Tests for tests/redaction_corpus.py and `workbench.redact` judged on it: well-formed splits,
the issue's bars (precision >= 0.98, recall >= 0.97 per kind) on every split, and idempotence."""

from __future__ import annotations

import ipaddress
import re
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.redact import KINDS, find, redact

from . import redaction_corpus as rc

_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn(digits: str) -> bool:
    """Whether a digit string passes the Luhn check (written here, not taken from redact)."""
    total = sum(_LUHN_DOUBLE[int(d)] if i % 2 else int(d) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def _shaped(kind: str, value: str) -> bool:
    """Whether a labelled value has its kind's shape; a label one character off has not."""
    if not value or value != value.strip():
        return False
    if kind == "IP":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True
    if kind == "CARD":
        return bool(re.fullmatch(r"\d+(?:[ -]\d+)*", value)) and _luhn(re.sub(r"\D", "", value))
    if kind == "PHONE":
        digits = sum(c.isdigit() for c in value)
        return digits >= 6 and (value[0].isdigit() or value[0] in "+(") and value[-1].isdigit()
    if kind == "EMAIL":
        return "@" in value or "at" in value
    return not any(c.isspace() for c in value) and value[0] not in "\"'" and value[-1] not in "\"'"


# --- the splits are well-formed --------------------------------------------------------------


@pytest.mark.parametrize("split", rc.SPLITS)
def test_split_labels_are_exact_spans(split: str) -> None:
    for row in rc.corpus(split):
        assert all(k in KINDS and 0 <= a < b <= len(row.text) for k, a, b in row.spans), row
        assert all(x[2] <= y[1] for x, y in pairwise(row.spans)), row  # sorted, disjoint
        for kind, start, end in row.spans:
            assert _shaped(kind, row.text[start:end]), (kind, row.text[start:end], row.text)


def test_fixed_hard_cases_label_their_values() -> None:
    rows = [row for row in rc.corpus("tuning") if row.source == "hard:fixed"]
    assert len(rows) == len(rc.HARD_CASES)
    for row, (text, items) in zip(rows, rc.HARD_CASES, strict=True):
        assert row.text == text
        assert [(k, text[a:b]) for k, a, b in row.spans] == list(items)


@pytest.mark.parametrize("split", rc.SPLITS)
def test_every_split_has_every_kind_and_negatives(split: str) -> None:
    rows = rc.corpus(split)
    score = rc.score(rows)
    assert all(score.labelled[kind] >= 200 for kind in KINDS), dict(score.labelled)
    negatives = [row for row in rows if row.source.startswith("negative:")]
    assert len(negatives) >= 0.1 * len(rows) and all(not row.spans for row in negatives)
    assert any(row.source.startswith("hard:") for row in rows)


def test_splits_are_disjoint_in_seeds_locales_and_templates() -> None:
    rounds = {split: rc._ROUNDS[split] for split in rc.SPLITS}
    seeds = [{seed for seed, *_ in rounds[split]} for split in rc.SPLITS]
    assert all(not a & b for i, a in enumerate(seeds) for b in seeds[i + 1 :]), seeds
    tuned_on = [r for split in ("tuning", "reviewed") for r in rounds[split]]
    (held_out,) = rounds["held_out"]
    # The held-out locales and its template round are in no split the detectors were tuned on.
    assert not set(rc.HELD_OUT_LOCALES) & {loc for _, locales, *_ in tuned_on for loc in locales}
    assert set(rc.HELD_OUT_LOCALES) <= set(held_out[1])
    assert all(round_ < held_out[2] for _, _, round_, _ in tuned_on)
    # A template belongs to its language's list ("password: {pw}" is Italian and Filipino).
    languages = {loc.split("_")[0] for loc in held_out[1]}
    held_out_only = {(lang, t) for lang in languages for t in rc._templates(lang, held_out[2])}
    held_out_only -= {
        (lang, t) for lang in languages for r in tuned_on for t in rc._templates(lang, r[2])
    }
    assert {(lang, t) for lang, ts in rc._TEMPLATES_5.items() for t in ts} <= held_out_only
    negatives_tuned = {t for r in tuned_on for t in rc._negatives(r[2])}
    assert not set(rc._NEGATIVES_5) & negatives_tuned
    # Tuning never sees every fourth template of the first lists.
    for lang, templates in rc._TEMPLATES.items():
        kept = set(rc._templates(lang, 0))
        assert all((t in kept) != rc._held_out_template(i) for i, t in enumerate(templates))


# --- the bars ---------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["tuning", "reviewed"])
def test_tuned_splits_meet_the_bars(split: str) -> None:
    score = rc.score(rc.corpus(split))
    assert not score.shortfalls(), f"{split}: {score.shortfalls()}\n{score.table()}"


def test_held_out_split_meets_the_bars() -> None:
    score = rc.score(rc.corpus("held_out"))
    assert not score.shortfalls(), (
        f"held-out split below P >= {rc.PRECISION_BAR}, R >= {rc.RECALL_BAR}: "
        f"{score.shortfalls()}\n{score.table()}"
    )


# --- idempotence ------------------------------------------------------------------------------


@pytest.mark.parametrize("split", rc.SPLITS)
def test_redact_is_a_fixed_point_on_corpus_texts(split: str) -> None:
    # Every held-out text, and every fifth text of the larger splits.
    rows = rc.corpus(split)[:: 1 if split == "held_out" else 5]
    for row in rows:
        once = redact(row.text)
        assert redact(once) == once, row.text
        assert find(once) == [], row.text


def _values() -> list[str]:
    """Every distinct labelled value of the held-out split, in a fixed order."""
    rows = rc.corpus("held_out")
    return sorted({row.text[a:b] for row in rows for _, a, b in row.spans})


_PIECES = st.one_of(
    st.text(max_size=12),
    st.sampled_from([" ", "\n", ", ", ": ", "=", "@", "+", "(", ")", "-", ".", "[PHONE]"]),
    st.sampled_from(["password ", "Tel. ", "call ", "order ", "IP ", "card ", "token="]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.sampled_from(_values())), min_size=1, max_size=12))
def test_redact_is_a_fixed_point_on_random_text_with_corpus_values(parts: list[str]) -> None:
    text = "".join(parts)
    once = redact(text)
    assert redact(once) == once
    assert find(once) == []
