"""Bring your own data: importing CSV, JSONL and Parquet tables, init and check."""

from __future__ import annotations

import csv
import json
import shlex
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import golden
from workbench.cli import main
from workbench.dataset_import import check_dataset, import_table
from workbench.errors import DatasetError
from workbench.golden import load_dataset

from .conftest import write_dataset


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    # on success stdout alone: an eval's progress lines go to stderr
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def cli(line: str) -> tuple[int, str]:
    """Run a command line (its paths hold no spaces: they are pytest's tmp_path)."""
    return invoke(*shlex.split(line))


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cases_of(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "cases.jsonl").read_bytes().decode("utf-8").split("\n")  # as golden does
    return [json.loads(line) for line in lines if line]


def card_of(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((folder / "dataset.yaml").read_text(encoding="utf-8"))
    return doc


def upper(request: Any) -> str:
    """A python: target answering with the question in capitals."""
    return str(request.input["question"]).upper()


def triage(request: Any) -> dict[str, str]:
    """A python: target answering a label and a priority from keywords."""
    text = str(request.input["ticket"])
    return {"label": "billing" if "charge" in text else "bug", "priority": "p3"}


# -- round trips ------------------------------------------------------------------------------


def test_csv_import_round_trips_and_loads(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "qa.csv",
        [
            ["id", "question", "context", "answer", "tags"],
            ["q1", "What is 2+2?", "", "4", "math; easy"],
            ["q2", "Capital of France?", "geo quiz", "Paris", "geo|easy"],
        ],
    )
    code, out = cli(
        f"dataset import {src} --name qa --input question,context --expected answer"
        f" --id id --tags tags --out {tmp_path / 'golden'}"
    )
    assert code == 0, out
    folder = tmp_path / "golden" / "qa"
    assert "imported qa from" in out and "2 cases" in out and str(folder) in out
    assert cases_of(folder) == [
        {
            "id": "q1",
            "input": {"question": "What is 2+2?", "context": ""},
            "expected": "4",
            "tags": ["math", "easy"],
        },
        {
            "id": "q2",
            "input": {"question": "Capital of France?", "context": "geo quiz"},
            "expected": "Paris",
            "tags": ["geo", "easy"],
        },
    ]
    ds = load_dataset(folder)
    assert ds.name == "qa" and len(ds) == 2
    assert ds.card.user is not None
    assert "{{ question }}" in ds.card.user and "{{ context }}" in ds.card.user
    assert ds.card.system
    assert [s.name for s in ds.card.scorers] == ["exact"]
    text = (folder / "dataset.yaml").read_text()
    assert "# output_schema:" in text and "replace it with the system prompt" in text
    assert sorted(p.name for p in (tmp_path / "golden").iterdir()) == ["qa"]  # no temp left


def test_csv_cells_that_hold_json_become_json(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "t.csv",
        [
            ["ticket", "want"],
            ["card charged twice", '{"label": "billing", "priority": "p3"}'],
            ["app crashes", '{"label": "bug", "priority": "p3"}'],
            ["x", "[not json"],
        ],
    )
    report = import_table(src, "t", inputs="ticket", expected="want", out=tmp_path)
    cases = cases_of(report.path)
    assert cases[0]["expected"] == {"label": "billing", "priority": "p3"}
    assert cases[2]["expected"] == "[not json"
    assert [c["id"] for c in cases] == ["t-0001", "t-0002", "t-0003"]


def test_jsonl_import_keeps_types_and_makes_an_object_of_several_expected(
    tmp_path: Path,
) -> None:
    src = write_jsonl(
        tmp_path / "tickets.jsonl",
        [
            {"ticket": "card charged twice", "n": 1, "label": "billing", "priority": "p2"}
            | {"tags": ["money"], "note": '{"kept": "as text"}'},
            {"ticket": "app crashes", "n": float("nan"), "label": "bug", "priority": "p3"}
            | {"tags": []},
        ],
    )
    report = import_table(
        src,
        "tickets",
        inputs=["ticket", "n", "note"],
        expected="label,priority",
        tags_column="tags",
        out=tmp_path / "golden",
    )
    assert report.ok and report.cases == 2
    cases = cases_of(report.path)
    assert cases[0]["input"] == {
        "ticket": "card charged twice",
        "n": 1,
        "note": '{"kept": "as text"}',
    }
    assert cases[1]["input"] == {"ticket": "app crashes", "n": None, "note": None}
    assert cases[0]["expected"] == {"label": "billing", "priority": "p2"}
    assert [c["tags"] for c in cases] == [["money"], []]
    scorers = card_of(report.path)["scorers"]
    assert scorers == [
        {
            "name": "json_fields",
            "threshold": 1.0,
            "options": {"fields": {"label": 1, "priority": 1}},
        }
    ]
    assert report.tags == {"money": 1} and report.untagged == 1


def test_parquet_import_converts_values(tmp_path: Path) -> None:
    table = pa.table(
        {
            "case": pa.array([7, 8], pa.int64()),
            "question": ["ping", None],
            "score": pa.array([1.5, None], pa.float64()),
            "answer": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
            "labels": [["x", "y"], None],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    code, out = cli(
        f"dataset import {tmp_path / 't.parquet'} --name pq --input question,score"
        f" --expected answer --id case --tags labels --out {tmp_path}"
    )
    assert code == 0, out
    assert cases_of(tmp_path / "pq") == [
        {
            "id": "7",
            "input": {"question": "ping", "score": 1.5},
            "expected": {"a": 1, "b": "x"},
            "tags": ["x", "y"],
        },
        {
            "id": "8",
            "input": {"question": None, "score": None},
            "expected": {"a": 2, "b": "y"},
            "tags": [],
        },
    ]
    assert load_dataset(tmp_path / "pq").cases[0].input == {"question": "ping", "score": 1.5}


def test_a_dataframe_with_numpy_values_imports_as_plain_json(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "question": ["a", "b"],
            "count": np.array([1, 2], dtype=np.int64),
            "ratio": [0.5, np.nan],
            "answer": np.array([3.0, 4.5]),
        }
    )
    report = import_table(
        frame, "df", inputs="question,count,ratio", expected="answer", out=tmp_path
    )
    cases = cases_of(report.path)
    assert cases[0]["input"] == {"question": "a", "count": 1, "ratio": 0.5}
    assert cases[1]["input"] == {"question": "b", "count": 2, "ratio": None}
    assert [c["expected"] for c in cases] == [3.0, 4.5]
    assert card_of(report.path)["scorers"][0]["name"] == "numeric"
    assert report.source == "DataFrame"


def test_the_scorer_suits_the_expected_values(tmp_path: Path) -> None:
    long_text = "A paragraph that is clearly longer than a label, so it is scored by similarity."
    src = write_csv(tmp_path / "long.csv", [["q", "a"], ["x", long_text]])
    report = import_table(src, "long", inputs="q", expected="a", out=tmp_path)
    assert card_of(report.path)["scorers"] == [
        {"name": "fuzzy", "threshold": 0.8, "options": {"method": "token_sort_ratio"}}
    ]


def test_odd_column_names_are_renamed_for_the_template(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "odd.csv",
        [["first name", "in", "messages", "2nd", "yes: no"], ["Ann", "x", "m", "y", "z"]],
    )
    report = import_table(
        src, "1.0", inputs="first name,in,messages,2nd", expected="yes: no", out=tmp_path
    )
    assert report.renamed == {"first name": "first_name", "messages": "messages_", "2nd": "col_2nd"}
    ds = load_dataset(report.path)
    assert ds.name == "1.0"
    assert set(ds.cases[0].input.values()) == {"Ann", "x", "m", "y"}
    assert "messages" not in ds.cases[0].input  # it would switch the case to chat messages
    rendered = ds.messages(ds.cases[0])[-1]["content"]
    for value in ("Ann", "x", "m", "y"):
        assert f": {value}" in rendered


# -- the imported set runs ------------------------------------------------------------------


def test_an_imported_csv_runs_with_eval(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "shout.csv",
        [["question", "answer"], ["hello", "HELLO"], ["ping", "PING"], ["ok", "nope"]],
    )
    code, out = cli(
        f"dataset import {src} --name shout --input question --expected answer --out {tmp_path}"
    )
    assert code == 0, out
    code, out = cli(
        f"eval {tmp_path / 'shout'} --model python:tests.test_dataset_import:upper"
        f" --db {tmp_path / 'x.db'} --json"
    )
    assert code == 0, out
    doc = json.loads(out)
    assert (doc["cases"], doc["passed"], doc["errors"]) == (3, 2, 0)


def test_an_imported_jsonl_with_object_expected_runs_with_eval(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"ticket": "card charged twice", "label": "billing", "priority": "p3"},
            {"ticket": "app crashes", "label": "bug", "priority": "p3"},
            {"ticket": "where is my reader", "label": "shipping", "priority": "p3"},
        ],
    )
    import_table(src, "t", inputs="ticket", expected="label,priority", out=tmp_path)
    code, out = cli(
        f"eval {tmp_path / 't'} --model python:tests.test_dataset_import:triage"
        f" --db {tmp_path / 'x.db'} --json"
    )
    assert code == 0, out
    assert (json.loads(out)["cases"], json.loads(out)["passed"]) == (3, 2)


# -- refusals: named, located, and nothing written -------------------------------------------


def test_a_missing_expected_column_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "qa.csv", [["question", "answr"], ["a", "b"]])
    out_dir = tmp_path / "golden"
    code, out = cli(
        f"dataset import {src} --name qa --input question --expected answer --out {out_dir}"
    )
    assert code == 1
    assert f"{src}:1: --expected column 'answer' not found (did you mean 'answr'?)" in out
    assert "the file has columns: 'question', 'answr'" in out
    assert not out_dir.exists()


def test_duplicate_ids_name_both_rows(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "d.csv", [["id", "q", "a"], ["x", "1", "1"], ["y", "2", "2"], ["x", "3", "3"]]
    )
    with pytest.raises(DatasetError) as err:
        import_table(src, "d", inputs="q", expected="a", id_column="id", out=tmp_path / "g")
    assert f"{src}:4: id: duplicate id 'x' (also at {src}:2)" in str(err.value)
    assert "leave out --id" in str(err.value)
    assert not (tmp_path / "g").exists()


def test_empty_ids_are_refused(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "e.jsonl", [{"id": "a", "q": 1}, {"id": " ", "q": 2}, {"q": 3}])
    with pytest.raises(DatasetError) as err:
        import_table(src, "e", inputs="q", expected="q", id_column="id", out=tmp_path / "g")
    message = str(err.value)
    assert message.startswith("2 problems:")
    assert f"{src}:2: id: empty id" in message and f"{src}:3: id: empty id" in message
    assert not (tmp_path / "g").exists()


def test_a_jsonl_row_that_is_not_an_object_is_refused_with_its_line(tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text('{"q": 1, "a": 2}\n\n[1, 2]\n{"q": \n', encoding="utf-8")
    with pytest.raises(DatasetError) as err:
        import_table(src, "r", inputs="q", expected="a", out=tmp_path / "g")
    assert f"{src}:3: a row must be a JSON object" in str(err.value)
    assert f"{src}:4: not valid JSON" in str(err.value)


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("latin1.csv", b"q,a\nok,ok\ncaf\xe9,x\n", ":3: not valid UTF-8"),
        ("empty.csv", b"", ": the file is empty; a CSV needs a header row"),
        ("blank.jsonl", b"\n \n", ": the file is empty; give one JSON object per line"),
        ("header.csv", b"q,a\n", ":1: no rows after the header"),
        ("short.csv", b"q,a\n1,2\n3\n", ":3: the row has 1 cell but the header has 2 columns"),
        ("quote.csv", b'q,a\n1,"2\n', "not valid CSV"),
        ("bad.parquet", b"not parquet at all", ": not a Parquet file pyarrow can read"),
        ("table.xlsx", b"PK", "unknown format '.xlsx'; give a .csv, .jsonl, .parquet file"),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, name: str, data: bytes, problem: str) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    with pytest.raises(DatasetError) as err:
        import_table(src, "x", inputs="q", expected="a", out=tmp_path / "g")
    assert str(err.value).startswith(str(src))
    assert problem in str(err.value)
    assert not (tmp_path / "g").exists()


def test_an_existing_folder_is_refused_unless_forced(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "qa.csv", [["q", "a"], ["1", "1"]])
    import_table(src, "qa", inputs="q", expected="a", out=tmp_path)
    before = (tmp_path / "qa" / "cases.jsonl").read_text()
    write_csv(src, [["q", "a"], ["1", "1"], ["2", "2"]])
    code, out = cli(f"dataset import {src} --name qa --input q --expected a --out {tmp_path}")
    assert code != 0 and "already exists" in out and "--force" in out
    assert (tmp_path / "qa" / "cases.jsonl").read_text() == before
    report = import_table(src, "qa", inputs="q", expected="a", out=tmp_path, force=True)
    assert report.cases == 2 and len(load_dataset(tmp_path / "qa")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qa", "qa.csv"]


def test_force_does_not_replace_a_folder_holding_other_files(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "qa.csv", [["q", "a"], ["1", "1"]])
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    with pytest.raises(DatasetError, match="thesis.tex besides a dataset"):
        import_table(src, "notes", inputs="q", expected="a", out=tmp_path, force=True)
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "precious"


def test_a_dataset_that_fails_to_load_back_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Any) -> Any:
        raise DatasetError(f"{path}: simulated")

    monkeypatch.setattr("workbench.dataset_import.load_dataset", broken)
    src = write_csv(tmp_path / "qa.csv", [["q", "a"], ["1", "1"]])
    with pytest.raises(DatasetError, match="simulated"):
        import_table(src, "qa", inputs="q", expected="a", out=tmp_path / "new" / "golden")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qa.csv"]


def test_a_bad_name_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "qa.csv", [["q", "a"], ["1", "1"]])
    with pytest.raises(DatasetError, match="e.g. --name my-set-v2"):
        import_table(src, "my set/v2", inputs="q", expected="a", out=tmp_path)


# -- tags and ids -----------------------------------------------------------------------------


def test_csv_tags_split_on_commas_semicolons_and_bars(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "t.csv",
        [["q", "a", "tags"], ["1", "1", "a, b;c|d"], ["2", "2", ""], ["3", "3", "a;;a"]],
    )
    report = import_table(src, "t", inputs="q", expected="a", tags_column="tags", out=tmp_path)
    assert [c["tags"] for c in cases_of(report.path)] == [["a", "b", "c", "d"], [], ["a"]]
    assert report.tags == {"a": 2, "b": 1, "c": 1, "d": 1} and report.untagged == 1


def test_generated_ids_are_zero_padded_in_row_order(tmp_path: Path) -> None:
    rows = [["q", "a"], *([str(i), str(i)] for i in range(12_000))]
    src = write_csv(tmp_path / "many.csv", rows, delimiter=";")
    report = import_table(src, "many", inputs="q", expected="a", out=tmp_path)
    ids = [c["id"] for c in cases_of(report.path)]
    assert ids[0] == "many-00001" and ids[-1] == "many-12000" and ids == sorted(ids)


def test_default_out_is_the_golden_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_GOLDEN_DIR", str(tmp_path / "golden"))
    src = write_csv(tmp_path / "qa.csv", [["q", "a"], ["1", "1"]])
    code, out = invoke(
        "dataset", "import", str(src), "--name", "qa", "--input", "q", "--expected", "a"
    )
    assert code == 0, out
    assert load_dataset("qa").path == tmp_path / "golden" / "qa"


# -- init and check ---------------------------------------------------------------------------


def test_init_then_check_passes(tmp_path: Path) -> None:
    code, out = invoke("dataset", "init", "mine", "--out", str(tmp_path))
    assert code == 0 and "created mine: 1 case" in out
    text = (tmp_path / "mine" / "dataset.yaml").read_text()
    for key in golden._CARD_KEYS:  # every card key is explained, even the commented-out ones
        assert f"{key}:" in text, key
    code, out = invoke("dataset", "check", str(tmp_path / "mine"))
    assert code == 0, out
    assert "checked mine: 1 case" in out and "tags: example 1" in out and "hash " in out
    code, out = invoke("dataset", "check", str(tmp_path / "mine"), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["cases"] == 1 and len(doc["hash"]) == 16
    code, out = invoke("dataset", "init", "mine", "--out", str(tmp_path))
    assert code != 0 and "already exists" in out


def test_check_a_broken_dataset_prints_file_and_line(tmp_path: Path) -> None:
    folder = write_dataset(
        tmp_path / "broken",
        '{"id": "a", "input": {"question": "q"}, "expected": 1}\n'
        '{"id": "a", "input": {"question": "q"}, "expected": 1}\n'
        "not json\n",
    )
    code, out = invoke("dataset", "check", str(folder))
    assert code == 1
    assert "does not load: 2 problems" in out
    assert f"{folder / 'cases.jsonl'}:2: id: duplicate 'a'" in out
    assert f"{folder / 'cases.jsonl'}:3: not valid JSON" in out
    code, out = invoke("dataset", "check", str(folder), "--json")
    doc = json.loads(out)
    assert code == 1 and not doc["ok"] and len(doc["errors"]) == 2


def test_check_an_unknown_name_says_what_exists(tmp_path: Path) -> None:
    report = check_dataset("no-such-set")
    assert (
        not report.ok and "not found" in report.errors[0] and "support-triage" in report.errors[0]
    )


# -- the round-trip property ------------------------------------------------------------------

_column = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
_columns = st.lists(_column, min_size=2, max_size=4, unique=True)
_cell = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), columns=_columns)
def test_any_csv_of_strings_imports_with_inputs_equal_to_the_cells(
    data: st.DataObject, columns: list[str]
) -> None:
    row = st.lists(_cell, min_size=len(columns), max_size=len(columns))
    rows = data.draw(st.lists(row, min_size=1, max_size=5))
    with tempfile.TemporaryDirectory() as tmp:
        src = write_csv(Path(tmp) / "t.csv", [columns, *rows])
        inputs, expected = columns[:-1], columns[-1]
        report = import_table(src, "prop", inputs=inputs, expected=expected, out=tmp)
        cases = cases_of(report.path)
        assert len(cases) == len(rows) == len(load_dataset(report.path))
        for case, row in zip(cases, rows, strict=True):
            keys = [report.renamed.get(c, c) for c in inputs]
            assert case["input"] == dict(zip(keys, row[:-1], strict=True))
