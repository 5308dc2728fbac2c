"""Golden sets: strict loading with file:line: field errors, hashing, rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import DatasetError
from workbench.golden import load_dataset, render_messages

from .conftest import TINY_CARD, tiny_cases, write_dataset


def test_loads_cases_card_and_hash(tiny: Path) -> None:
    ds = load_dataset(tiny)
    assert ds.name == "tiny"
    assert [c.id for c in ds.cases] == [f"c{i:03d}" for i in range(6)]
    assert ds.cases[2].line == 3
    assert len(ds.hash) == 16
    assert [s.label for s in ds.card.scorers] == ["json_schema", "json_fields"]
    assert ds.card.budgets["pass_rate"] == 0.5


def test_demo_dataset_loads_by_name() -> None:
    ds = load_dataset("support-triage")
    assert len(ds) >= 150
    assert len({c.expected["category"] for c in ds.cases}) >= 6


def test_hash_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    a = load_dataset(write_dataset(tmp_path / "a", tiny_cases()))
    text = (
        "\n".join(json.dumps(c, indent=None, separators=(", ", " : ")) for c in tiny_cases())
        + "\n\n"
    )
    b = load_dataset(write_dataset(tmp_path / "b", text))
    assert a.hash == b.hash
    changed = tiny_cases()
    changed[0]["expected"] = {"answer": "other"}
    c = load_dataset(write_dataset(tmp_path / "c", changed))
    assert c.hash != a.hash


def test_render_template_and_messages(tiny: Path) -> None:
    ds = load_dataset(tiny)
    msgs = render_messages(ds.card, ds.cases[1])
    assert msgs == [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "Q: word1"},
    ]


def test_case_with_own_messages_gets_card_system(tmp_path: Path) -> None:
    case = {
        "id": "m1",
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "expected": None,
    }
    ds = load_dataset(write_dataset(tmp_path / "m", [case]))
    assert [m["role"] for m in ds.messages(ds.cases[0])] == ["system", "user"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            '{"id": "a", "input": {"question": "x"}, "expected": 1}\n{"id": "b", "input": ',
            ":2: not valid JSON",
        ),
        ('{"input": {"question": "x"}, "expected": 1}\n', ":1: id: missing"),
        (
            '{"id": "a", "input": {"question": "x"}, "expected": 1}\n'
            '{"id": "a", "input": {"question": "y"}, "expected": 2}\n',
            ":2: id: duplicate 'a' (first on line 1)",
        ),
        (
            '{"id": 7, "input": {"question": "x"}, "expected": 1}\n',
            ":1: id: must be a non-empty string",
        ),
        ('{"id": "a", "input": "x", "expected": 1}\n', ":1: input: must be an object"),
        (
            '{"id": "a", "input": {"question": "x"}, "expected": 1, "tags": "t"}\n',
            ":1: tags: must be a list",
        ),
        ('{"id": "a", "input": {"other": "x"}, "expected": 1}\n', ":1: input.question: missing"),
        ('{"id": "a", "input": {"question": "x"}}\n', ":1: expected: missing"),
        ('{"id": "a", "input": {"question": NaN}, "expected": 1}\n', ":1: not valid JSON"),
        (
            '{"id": "a", "input": {"question": "x"}, "expected": 1, "colour": 1}\n',
            ":1: colour: unknown key",
        ),
    ],
)
def test_bad_cases_name_file_line_and_field(tmp_path: Path, lines: str, expected: str) -> None:
    folder = write_dataset(tmp_path / "bad", lines)
    with pytest.raises(DatasetError) as err:
        load_dataset(folder)
    assert f"{folder / 'cases.jsonl'}{expected}" in str(err.value)


def test_non_utf8_bytes_are_reported_with_line(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "enc", tiny_cases(2))
    with (folder / "cases.jsonl").open("ab") as fh:
        fh.write(b'{"id": "z", "input": {"question": "caf\xe9"}, "expected": 1}\n')
    with pytest.raises(
        DatasetError, match=r"cases\.jsonl:3: not valid UTF-8.*save the file as UTF-8"
    ):
        load_dataset(folder)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = '{"id": "a"}\n{"id": "b", "input": {"question": "x"}, "expected": 1}\n{bad\n'
    with pytest.raises(DatasetError) as err:
        load_dataset(write_dataset(tmp_path / "many", text))
    message = str(err.value)
    assert message.startswith("2 problems")
    assert "cases.jsonl:1: input: missing" in message and "cases.jsonl:3: not valid JSON" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"scorers": [{"name": "no_such_scorer"}]}, "scorers[0].name"),
        (
            {"scorers": [{"name": "exact", "threshold": 2}]},
            "scorers[0].threshold: must be a number between 0 and 1",
        ),
        (
            {"budgets": {"p95_latency_ms": "fast"}},
            "budgets.p95_latency_ms: must be a non-negative number",
        ),
        ({"budgets": {"p99": 3}}, "budgets.p99: unknown budget"),
        ({"output_schema": {"type": "objekt"}}, "output_schema: not a valid JSON Schema"),
        ({"prompt": {"user": "{{ unclosed"}}, "prompt.user: template does not parse"),
        ({"colour": "blue"}, "colour: unknown key"),
    ],
)
def test_bad_card_names_field_and_line(tmp_path: Path, change: dict, expected: str) -> None:
    card = {**TINY_CARD, **change}
    folder = write_dataset(tmp_path / "card", tiny_cases(1), card=card)
    with pytest.raises(DatasetError) as err:
        load_dataset(folder)
    message = str(err.value)
    assert expected in message
    assert f"{folder / 'dataset.yaml'}:" in message
    key = next(iter(change))
    line = next(
        i
        for i, text in enumerate((folder / "dataset.yaml").read_text().splitlines(), 1)
        if text.startswith(f"{key}:")
    )
    assert (
        f"dataset.yaml:{line}:" in message
        or f"dataset.yaml:{line + 1}:" in message
        or f"dataset.yaml:{line + 2}:" in message
    )


def test_unparsable_yaml_card(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "y", tiny_cases(1))
    (folder / "dataset.yaml").write_text("name: x\nprompt: [unclosed\n")
    with pytest.raises(DatasetError, match=r"dataset\.yaml:\d+: not valid YAML"):
        load_dataset(folder)


def test_unknown_dataset_lists_known_ones() -> None:
    with pytest.raises(DatasetError, match="known datasets: .*support-triage"):
        load_dataset("no-such-dataset")


def test_json_card_is_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "j"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps(TINY_CARD))
    (folder / "cases.jsonl").write_text(json.dumps(tiny_cases(1)[0]) + "\n")
    assert load_dataset(folder).card.output_schema == TINY_CARD["output_schema"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_load_or_raise_dataset_error(tmp_path: Path, data: bytes) -> None:
    folder = write_dataset(tmp_path / "fuzz", "")
    (folder / "cases.jsonl").write_bytes(data)
    try:
        ds = load_dataset(folder)
    except DatasetError as exc:
        assert "cases.jsonl" in str(exc)
    else:
        assert len({c.id for c in ds.cases}) == len(ds.cases)


def test_yaml_fixture_round_trip(tiny: Path) -> None:
    card = yaml.safe_load((tiny / "dataset.yaml").read_text())
    assert card["name"] == "tiny"
