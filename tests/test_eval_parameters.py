"""Eval parameters end to end: card parameters and run overrides on every request, structured
output, case selection, progress lines, length cut-offs, cached and reasoning tokens."""

from __future__ import annotations

import copy
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner, Result

from tests import param_probe
from workbench import EvalOptions, Selection, run_eval
from workbench import prices as prices_mod
from workbench.cli import main
from workbench.compare import compare, render_text
from workbench.demo import model as demo_model
from workbench.demo.server import DemoServer
from workbench.errors import ConfigError, DatasetError
from workbench.golden import json_schema_format, load_dataset, parse_card
from workbench.runner import DEFAULT_MAX_TOKENS, request_parameters, summarize
from workbench.store import MIGRATIONS, SCHEMA_VERSION, ResultRow, Store

from .conftest import ROOT, TINY_CARD, tiny_cases, write_dataset

RECORD = "python:tests.param_probe:record"
ALL_PARAMETERS: dict[str, Any] = {
    "temperature": 0.7,
    "top_p": 0.9,
    "seed": 42,
    "max_tokens": 256,
    "stop": ["\n\n", "END"],
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "response_format": {"type": "json_object"},
}


@pytest.fixture(autouse=True)
def _fresh_calls() -> Iterator[None]:
    param_probe.CALLS.clear()
    yield
    param_probe.CALLS.clear()


def card(**changes: Any) -> dict[str, Any]:
    """TINY_CARD with top-level keys set (a value of None removes the key)."""
    doc = copy.deepcopy(TINY_CARD)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def dataset(tmp_path: Path, n: int = 6, folder: str = "ds", **changes: Any) -> Path:
    """A dataset of n tiny cases whose card is TINY_CARD with these changes."""
    return write_dataset(tmp_path / folder, tiny_cases(n), card(**changes))


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def cli_json(*args: str) -> dict[str, Any]:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def sent(store: Store, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    """The sampling parameters each (case, repeat) was sent with, as echoed in its output."""
    return {
        (r["case_id"], r["repeat"]): json.loads(r["output"])["params"]
        for r in store.result_rows(run_id)
    }


# -- 1. card parameters, run overrides, what a run records ------------------------------------


def test_card_parameters_reach_every_request_and_repeat_r_gets_seed_plus_r(
    store: Store, tmp_path: Path
) -> None:
    ds = dataset(tmp_path, parameters=ALL_PARAMETERS)
    s = run_eval(str(ds), RECORD, store=store, options=EvalOptions(repeats=3))
    assert (s.status, s.results, s.errors) == ("finished", 18, 0)
    params = sent(store, s.run_id)
    assert len(params) == 18
    for (case_id, repeat), got in params.items():
        assert got == {**ALL_PARAMETERS, "seed": 42 + repeat}, (case_id, repeat)
    assert {(r["repeat"], r["seed"]) for r in store.result_rows(s.run_id)} == {
        (0, 42),
        (1, 43),
        (2, 44),
    }
    assert len(param_probe.CALLS) == 18
    assert {c["case_id"] for c in param_probe.CALLS} == {f"c{i:03d}" for i in range(6)}
    assert all(
        c["input"] == {"question": f"word{int(c['case_id'][1:])}"} for c in param_probe.CALLS
    )
    recorded = store.get_run(s.run_id)["parameters"]
    assert recorded["request"] == ALL_PARAMETERS
    assert recorded["card"] == {**ALL_PARAMETERS, "structured_output": False}
    assert recorded["overrides"] == {}
    assert (recorded["seed"], recorded["temperature"], recorded["max_tokens"]) == (42, 0.7, 256)
    assert recorded["structured_output"] is False


def test_eval_options_override_the_card_and_both_are_recorded(store: Store, tmp_path: Path) -> None:
    ds = dataset(tmp_path, parameters=ALL_PARAMETERS)
    opts = EvalOptions(seed=1, temperature=0.2, max_tokens=64)
    s = run_eval(str(ds), RECORD, store=store, options=opts)
    expected = {**ALL_PARAMETERS, "seed": 1, "temperature": 0.2, "max_tokens": 64}
    assert set(map(json.dumps, sent(store, s.run_id).values())) == {json.dumps(expected)}
    recorded = store.get_run(s.run_id)["parameters"]
    assert recorded["overrides"] == {"seed": 1, "temperature": 0.2, "max_tokens": 64}
    assert recorded["card"] == {**ALL_PARAMETERS, "structured_output": False}
    assert recorded["request"] == expected
    assert (recorded["seed"], recorded["temperature"], recorded["max_tokens"]) == (1, 0.2, 64)


def test_cli_flags_override_the_card_and_structured_output_replaces_its_format(
    tmp_path: Path,
) -> None:
    ds = dataset(tmp_path, parameters=ALL_PARAMETERS)
    db = str(tmp_path / "cli.db")
    doc = cli_json(
        "eval",
        str(ds),
        "--model",
        RECORD,
        "--db",
        db,
        "--seed",
        "3",
        "--temperature",
        "1.5",
        "--max-tokens",
        "10",
        "--structured-output",
    )
    schema_format = json_schema_format("tiny", TINY_CARD["output_schema"])
    expected = {
        **ALL_PARAMETERS,
        "seed": 3,
        "temperature": 1.5,
        "max_tokens": 10,
        "response_format": schema_format,
    }
    with Store(db) as store:
        assert all(p == expected for p in sent(store, doc["run_id"]).values())
        recorded = store.get_run(doc["run_id"])["parameters"]
    assert recorded["overrides"] == {
        "seed": 3,
        "temperature": 1.5,
        "max_tokens": 10,
        "structured_output": True,
    }
    assert recorded["card"]["response_format"] == {"type": "json_object"}
    assert recorded["card"]["structured_output"] is False
    assert recorded["structured_output"] is True
    assert recorded["request"] == expected
    assert doc["max_tokens"] == 10


def test_no_structured_output_flag_turns_the_cards_off(tmp_path: Path) -> None:
    ds = dataset(tmp_path, structured_output=True)
    db = str(tmp_path / "cli.db")
    on = cli_json("eval", str(ds), "--model", RECORD, "--db", db)
    off = cli_json("eval", str(ds), "--model", RECORD, "--db", db, "--no-structured-output")
    with Store(db) as store:
        assert all("response_format" in p for p in sent(store, on["run_id"]).values())
        assert all("response_format" not in p for p in sent(store, off["run_id"]).values())
        recorded = store.get_run(off["run_id"])["parameters"]
    assert recorded["structured_output"] is False
    assert recorded["overrides"] == {"structured_output": False}
    assert recorded["card"]["structured_output"] is True


def test_structured_output_on_a_card_without_schema_is_refused(
    store: Store, tmp_path: Path
) -> None:
    ds = dataset(tmp_path, output_schema=None, scorers=[{"name": "json_fields"}])
    with pytest.raises(ConfigError, match="output_schema"):
        run_eval(str(ds), RECORD, store=store, options=EvalOptions(structured_output=True))
    assert store.runs() == [] and param_probe.CALLS == []
    result = cli(
        "eval", str(ds), "--model", RECORD, "--db", str(tmp_path / "x.db"), "--structured-output"
    )
    assert result.exit_code != 0 and "output_schema" in result.output


def test_defaults_apply_when_neither_card_nor_run_sets_them(store: Store, tiny: Path) -> None:
    assert DEFAULT_MAX_TOKENS == 1024
    s = run_eval(str(tiny), RECORD, store=store, options=EvalOptions(repeats=2))
    for (_, repeat), got in sent(store, s.run_id).items():
        assert got == {"temperature": 0.0, "seed": repeat, "max_tokens": 1024}
    recorded = store.get_run(s.run_id)["parameters"]
    assert (recorded["seed"], recorded["temperature"], recorded["max_tokens"]) == (0, 0.0, 1024)
    assert recorded["overrides"] == {} and recorded["structured_output"] is False
    assert s.max_tokens == 1024


def test_card_null_sends_no_cap_and_no_seed_unless_the_run_sets_them(
    store: Store, tmp_path: Path
) -> None:
    ds = dataset(tmp_path, parameters={"max_tokens": None, "seed": None})
    s = run_eval(str(ds), RECORD, store=store, options=EvalOptions(repeats=2))
    assert all(p == {"temperature": 0.0} for p in sent(store, s.run_id).values())
    assert {r["seed"] for r in store.result_rows(s.run_id)} == {None}
    recorded = store.get_run(s.run_id)["parameters"]
    assert recorded["max_tokens"] is None and recorded["seed"] is None
    assert recorded["request"] == {"temperature": 0.0}
    s2 = run_eval(str(ds), RECORD, store=store, options=EvalOptions(max_tokens=7, seed=2))
    assert all(
        p == {"temperature": 0.0, "seed": 2, "max_tokens": 7}
        for p in sent(store, s2.run_id).values()
    )


@pytest.mark.parametrize("option", [{"max_tokens": 0}, {"temperature": 3.0}])
def test_bad_eval_options_are_refused_before_any_request(
    store: Store, tiny: Path, option: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match=next(iter(option))):
        run_eval(str(tiny), RECORD, store=store, options=EvalOptions(**option))
    assert param_probe.CALLS == []


def test_resume_sends_what_the_interrupted_run_sent(store: Store, tmp_path: Path) -> None:
    ds = dataset(tmp_path, parameters={**ALL_PARAMETERS, "max_tokens": None})
    s = run_eval(str(ds), RECORD, store=store, options=EvalOptions(seed=5, temperature=1.0))
    first = sent(store, s.run_id)
    _drop_results(store, s.run_id, ["c001", "c004"])
    param_probe.CALLS.clear()
    # a resume with other options keeps the run's own
    resumed = run_eval(
        str(ds), RECORD, store=store, options=EvalOptions(seed=99, max_tokens=3), resume=s.run_id
    )
    assert sorted(c["case_id"] for c in param_probe.CALLS) == ["c001", "c004"]
    assert resumed.results == 6 and sent(store, s.run_id) == first
    assert all(c["params"] == first[("c001", 0)] for c in param_probe.CALLS)


# -- 2. structured output and card validation --------------------------------------------------


def test_structured_output_sends_the_output_schema_as_strict_json_schema(
    store: Store, tmp_path: Path
) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **TINY_CARD["output_schema"],
    }
    ds = dataset(tmp_path, name="tiny set/v2", output_schema=schema, structured_output=True)
    s = run_eval(str(ds), RECORD, store=store)
    body = {k: v for k, v in schema.items() if k != "$schema"}
    expected = {
        "type": "json_schema",
        "json_schema": {"name": "tiny_set_v2", "schema": body, "strict": True},
    }
    formats = [p["response_format"] for p in sent(store, s.run_id).values()]
    assert len(formats) == 6 and all(f == expected for f in formats)
    assert request_parameters(load_dataset(ds).card, EvalOptions())["response_format"] == expected
    recorded = store.get_run(s.run_id)["parameters"]
    assert recorded["structured_output"] is True and recorded["overrides"] == {}
    # turning it on changes what is evaluated, so it changes the dataset hash
    plain = write_dataset(
        tmp_path / "plain", tiny_cases(), card(name="tiny set/v2", output_schema=schema)
    )
    assert load_dataset(plain).hash != load_dataset(ds).hash


def _line_of(text: str, key: str) -> int:
    return next(
        i for i, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith(key + ":")
    )


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        (
            {
                "output_schema": None,
                "scorers": [{"name": "json_fields"}],
                "structured_output": True,
            },
            "structured_output",
            "needs an output_schema",
        ),
        (
            {"structured_output": True, "parameters": {"response_format": {"type": "json_object"}}},
            "structured_output",
            "both set the response format",
        ),
        ({"structured_output": "yes"}, "structured_output", "must be true or false"),
        ({"structured_output": 1}, "structured_output", "must be true or false"),
        ({"parameters": {"temperature": 3}}, "temperature", "must be a number from 0 to 2, got 3"),
        ({"parameters": {"max_tokens": 0}}, "max_tokens", "must be at least 1, got 0"),
        ({"parameters": {"max_tokens": True}}, "max_tokens", "must be an integer"),
        ({"parameters": {"seed": "x"}}, "seed", "must be an integer"),
        ({"parameters": {"stop": 5}}, "stop", "must be a string or a list of strings"),
        ({"parameters": {"stop": []}}, "stop", "must be a string or a list of strings"),
        ({"parameters": {"top_p": 0}}, "top_p", "above 0 and at most 1"),
        ({"parameters": {"presence_penalty": 3}}, "presence_penalty", "from -2 to 2"),
        (
            {"parameters": {"response_format": {"type": "xml"}}},
            "response_format",
            "type is one of text, json_object, json_schema",
        ),
        (
            {"parameters": {"response_format": {"type": "json_schema"}}},
            "response_format",
            "needs json_schema",
        ),
        ({"parameters": {"top_k": 40}}, "top_k", "unknown; known: frequency_penalty"),
    ],
)
def test_bad_cards_are_refused_with_file_line_and_field(
    tmp_path: Path, changes: dict[str, Any], key: str, message: str
) -> None:
    folder = dataset(tmp_path, **changes)
    path = folder / "dataset.yaml"
    text = path.read_text()
    where = f"{path}:{_line_of(text, key)}: "
    field_name = key if key == "structured_output" else f"parameters.{key}"
    with pytest.raises(DatasetError) as caught:
        load_dataset(folder)
    assert where + field_name + ": " in str(caught.value)
    assert message in str(caught.value)
    with pytest.raises(DatasetError, match=re.escape(message)):
        parse_card(text.encode(), path)


def test_every_parameter_accepts_its_good_values(tmp_path: Path) -> None:
    good = {
        "temperature": 0,
        "top_p": 1,
        "seed": -3,
        "max_tokens": 1,
        "stop": "END",
        "presence_penalty": -2,
        "frequency_penalty": 2,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
        },
    }
    assert dict(load_dataset(dataset(tmp_path, parameters=good)).card.parameters) == good
    nulls = dict.fromkeys(good)
    assert (
        dict(load_dataset(dataset(tmp_path, folder="n", parameters=nulls)).card.parameters) == nulls
    )


# -- 3. case selection -------------------------------------------------------------------------


def _tagged_cases(n: int = 20) -> list[dict[str, Any]]:
    cases = tiny_cases(n)
    for i, case in enumerate(cases):
        case["tags"] = ["even" if i % 2 == 0 else "odd"] + (["five"] if i % 5 == 0 else [])
    return cases


@pytest.fixture
def twenty(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "twenty", _tagged_cases())


def _ids(store: Store, run_id: str) -> list[str]:
    return sorted({r["case_id"] for r in store.result_rows(run_id)})


def _drop_results(store: Store, run_id: str, case_ids: list[str]) -> None:
    """Make a run partial, as a kill would leave it."""
    marks = ",".join("?" * len(case_ids))
    store.conn.execute(
        f"DELETE FROM scores WHERE run_id = ? AND case_id IN ({marks})", (run_id, *case_ids)
    )
    store.conn.execute(
        f"DELETE FROM results WHERE run_id = ? AND case_id IN ({marks})", (run_id, *case_ids)
    )
    store.conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))


def test_limit_runs_exactly_the_first_n_cases_and_is_recorded(tmp_path: Path, twenty: Path) -> None:
    db = str(tmp_path / "cli.db")
    doc = cli_json("eval", str(twenty), "--model", RECORD, "--db", db, "--limit", "5")
    assert (doc["cases"], doc["results"], doc["expected_results"]) == (5, 5, 5)
    assert len(param_probe.CALLS) == 5
    with Store(db) as store:
        assert _ids(store, doc["run_id"]) == [f"c{i:03d}" for i in range(5)]
        run = store.get_run(doc["run_id"])
    assert run["cases"] == 5
    assert run["parameters"]["selection"] == {"limit": 5, "selected": 5}
    assert "a subset: 5 of the dataset's cases (limit 5)" in doc["notes"]
    assert not any("missing" in note for note in doc["notes"])


def test_tags_and_cases_select_what_they_name_and_combine_as_a_union(
    store: Store, twenty: Path
) -> None:
    by_tag = run_eval(
        str(twenty), RECORD, store=store, options=EvalOptions(selection=Selection(tags=("five",)))
    )
    assert _ids(store, by_tag.run_id) == ["c000", "c005", "c010", "c015"]
    assert by_tag.cases == by_tag.expected_results == 4
    both = run_eval(
        str(twenty),
        RECORD,
        store=store,
        options=EvalOptions(selection=Selection(cases=("c001", "c003"), tags=("five",))),
    )
    assert _ids(store, both.run_id) == ["c000", "c001", "c003", "c005", "c010", "c015"]
    assert store.get_run(both.run_id)["parameters"]["selection"] == {
        "cases": ["c001", "c003"],
        "tags": ["five"],
        "selected": 6,
    }


def test_cli_case_and_tag_are_repeatable(tmp_path: Path, twenty: Path) -> None:
    db = str(tmp_path / "cli.db")
    doc = cli_json(
        "eval",
        str(twenty),
        "--model",
        RECORD,
        "--db",
        db,
        "--case",
        "c007",
        "--case",
        "c019",
        "--tag",
        "five",
        "--tag",
        "five",
    )
    with Store(db) as store:
        assert _ids(store, doc["run_id"]) == ["c000", "c005", "c007", "c010", "c015", "c019"]
    assert doc["cases"] == 6
    only_cases = cli_json(
        "eval", str(twenty), "--model", RECORD, "--db", db, "--case", "c002", "--case", "c011"
    )
    with Store(db) as store:
        assert _ids(store, only_cases["run_id"]) == ["c002", "c011"]


def test_sample_is_deterministic_for_a_seed_and_differs_across_seeds(
    tmp_path: Path, twenty: Path
) -> None:
    ds = load_dataset(twenty)

    def pick(seed: int) -> list[str]:
        return [c.id for c in Selection(sample=5, seed=seed).apply(ds)]

    assert all(len(pick(seed)) == 5 and pick(seed) == pick(seed) for seed in range(6))
    assert len({tuple(pick(seed)) for seed in range(6)}) > 1
    assert pick(0) != pick(1) or pick(0) != pick(2)
    db = str(tmp_path / "cli.db")
    a = cli_json("eval", str(twenty), "--model", RECORD, "--db", db, "--sample", "5", "--seed", "3")
    b = cli_json("eval", str(twenty), "--model", RECORD, "--db", db, "--sample", "5", "--seed", "3")
    with Store(db) as store:
        assert _ids(store, a["run_id"]) == _ids(store, b["run_id"]) == sorted(pick(3))
        run = store.get_run(a["run_id"])
        assert {p["seed"] for p in sent(store, a["run_id"]).values()} == {3}
    assert run["parameters"]["selection"] == {"sample": 5, "sample_seed": 3, "selected": 5}
    assert a["cases"] == 5
    # the limit takes the first N of the sample
    limited = [c.id for c in Selection(sample=5, limit=2, seed=3).apply(ds)]
    assert limited == pick(3)[:2]
    # a sample as large as the dataset is the dataset
    assert len(Selection(sample=50, seed=3).apply(ds)) == 20


def test_unknown_case_or_tag_is_an_error_naming_it(
    store: Store, tmp_path: Path, twenty: Path
) -> None:
    ds = load_dataset(twenty)
    with pytest.raises(DatasetError, match="no case with id 'c999'"):
        Selection(cases=("c001", "c999")).apply(ds)
    with pytest.raises(DatasetError, match=r"no case is tagged 'nope'; tags: even, five, odd"):
        Selection(tags=("five", "nope")).apply(ds)
    with pytest.raises(DatasetError, match="c999"):
        run_eval(ds, RECORD, store=store, options=EvalOptions(selection=Selection(cases=("c999",))))
    assert store.runs() == [] and param_probe.CALLS == []
    db = str(tmp_path / "cli.db")
    result = cli("eval", str(twenty), "--model", RECORD, "--db", db, "--tag", "nope")
    assert result.exit_code != 0 and "'nope'" in result.output
    result = cli("eval", str(twenty), "--model", RECORD, "--db", db, "--case", "zz-1")
    assert result.exit_code != 0 and "'zz-1'" in result.output
    with Store(db) as s:
        assert s.runs() == []


def test_resume_of_a_partial_subset_runs_only_its_missing_selected_cases(
    store: Store, twenty: Path
) -> None:
    opts = EvalOptions(repeats=2, selection=Selection(tags=("five",), limit=3))
    s = run_eval(str(twenty), RECORD, store=store, options=opts)
    assert _ids(store, s.run_id) == ["c000", "c005", "c010"] and s.results == 6
    _drop_results(store, s.run_id, ["c005"])
    for table in ("scores", "results"):  # scores first: they reference their result
        store.conn.execute(
            f"DELETE FROM {table} WHERE run_id = ? AND case_id = 'c010' AND repeat = 1",
            (s.run_id,),
        )
    assert summarize(store, s.run_id, load_dataset(twenty)).results == 3
    param_probe.CALLS.clear()
    resumed = run_eval(str(twenty), RECORD, store=store, resume=s.run_id)
    assert sorted((c["case_id"], c["params"]["seed"]) for c in param_probe.CALLS) == [
        ("c005", 0),
        ("c005", 1),
        ("c010", 1),
    ]
    assert resumed.run_id == s.run_id and resumed.status == "finished"
    assert (resumed.cases, resumed.results, resumed.expected_results) == (3, 6, 6)
    assert _ids(store, s.run_id) == ["c000", "c005", "c010"]
    assert not any("missing" in note for note in resumed.notes)


def test_cli_resume_of_a_limited_run_keeps_its_limit(tmp_path: Path, twenty: Path) -> None:
    db = str(tmp_path / "cli.db")
    doc = cli_json("eval", str(twenty), "--model", RECORD, "--db", db, "--limit", "4")
    with Store(db) as store:
        _drop_results(store, doc["run_id"], ["c001", "c002"])
    param_probe.CALLS.clear()
    again = cli_json("eval", str(twenty), "--model", RECORD, "--db", db, "--resume", doc["run_id"])
    assert sorted(c["case_id"] for c in param_probe.CALLS) == ["c001", "c002"]
    assert (again["run_id"], again["cases"], again["results"]) == (doc["run_id"], 4, 4)


def test_compare_a_subset_run_with_a_full_run_says_how_many_cases_it_compared(
    tmp_path: Path, tiny: Path
) -> None:
    db = str(tmp_path / "cli.db")
    full = cli_json("eval", str(tiny), "--model", RECORD, "--db", db)
    part = cli_json("eval", str(tiny), "--model", RECORD, "--db", db, "--limit", "3")
    result = cli("compare", full["run_id"], part["run_id"], "--db", db)
    assert result.exit_code == 0, result.output
    assert "3 cases, 3 paired results" in result.stdout
    assert "compared on the 3 cases both runs have (base has 6, candidate 3)" in result.stdout
    assert "verdict: PASS" in result.stdout
    doc = cli_json("compare", full["run_id"], part["run_id"], "--db", db)
    assert (doc["compared_cases"], doc["base_cases"], doc["cand_cases"], doc["pairs"]) == (
        3,
        6,
        3,
        3,
    )
    assert "base has 6, candidate 3" in doc["coverage"]
    assert doc["shared_only"] is False
    with Store(db) as store:
        same = compare(store, full["run_id"], full["run_id"])
    assert same.coverage is None and "compared on" not in render_text(same)


# -- 4. progress lines -------------------------------------------------------------------------

_LINE = re.compile(
    r"^eval (?P<run>\S+): (?P<done>\d+)/(?P<total>\d+) done, (?P<errors>\d+) errors, "
    r"(?P<retries>\d+) retries, [\d.]+ cases/s, elapsed [\d,]+s, ETA (?P<eta>\S+)$"
)


def test_progress_log_prints_a_start_line_periodic_lines_and_a_final_line(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = dataset(tmp_path, n=5)
    opts = EvalOptions(concurrency=1, progress_interval_s=0.2)
    s = run_eval(
        str(ds), "python:tests.param_probe:slow", store=store, options=opts, progress="log"
    )
    assert s.results == 5
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines[0] == f"eval {s.run_id}: started, 5 calls to python:tests.param_probe:slow"
    matches = [_LINE.match(line) for line in lines[1:]]
    assert all(matches), lines
    parsed = [m.groupdict() for m in matches if m]
    assert {(p["run"], p["total"], p["errors"], p["retries"]) for p in parsed} == {
        (s.run_id, "5", "0", "0")
    }
    done = [int(p["done"]) for p in parsed]
    assert done == sorted(done) and len(done) >= 4
    between = [p for p in parsed if 1 <= int(p["done"]) <= 4]
    assert between and all(re.fullmatch(r"[\d,]+s", p["eta"]) for p in between)
    assert parsed[-1]["done"] == "5" and parsed[-1]["eta"] == "0s"


def test_progress_lines_count_errors(
    store: Store, tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = run_eval(
        str(tiny),
        "python:tests.echo_app:explode",
        store=store,
        options=EvalOptions(progress_interval_s=0.05),
        progress="log",
    )
    last = _LINE.match(capsys.readouterr().err.strip().splitlines()[-1])
    assert last and (last["done"], last["total"], last["errors"]) == ("6", "6", "6")
    assert s.errors == 6


def test_no_progress_prints_nothing(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = dataset(tmp_path, n=5)
    opts = EvalOptions(concurrency=5, progress_interval_s=0.05)
    run_eval(str(ds), "python:tests.param_probe:slow", store=store, options=opts, progress=False)
    assert capsys.readouterr() == ("", "")


def test_cli_off_a_terminal_logs_progress_to_stderr_only(tmp_path: Path, tiny: Path) -> None:
    result = cli("eval", str(tiny), "--model", RECORD, "--db", str(tmp_path / "x.db"), "--json")
    assert result.exit_code == 0
    run_id = json.loads(result.stdout)["run_id"]
    err = result.stderr.splitlines()
    assert err[0] == f"eval {run_id}: started, 6 calls to {RECORD}"
    assert (m := _LINE.match(err[-1])) and m["done"] == "6"
    quiet = cli(
        "eval", str(tiny), "--model", RECORD, "--db", str(tmp_path / "x.db"), "--no-progress"
    )
    assert quiet.exit_code == 0 and quiet.stderr == ""


# -- 5. length cut-offs ------------------------------------------------------------------------

CUT = "python:tests.param_probe:cut"


def test_length_cutoffs_are_counted_and_noted(store: Store, tiny: Path) -> None:
    s = run_eval(str(tiny), CUT, store=store)
    assert s.length_cutoffs == 3 and s.max_tokens == 1024
    notes = [n for n in s.notes if "cut at max_tokens" in n]
    assert notes == [
        "3 of 6 outputs were cut at max_tokens (1,024 tokens); raise --max-tokens or the "
        "card's parameters.max_tokens if they need more room"
    ]
    assert store.get_run(s.run_id)["summary"]["length_cutoffs"] == 3
    clean = run_eval(str(tiny), RECORD, store=store)
    assert clean.length_cutoffs == 0 and clean.notes == []


def test_length_cutoffs_in_cli_json_and_text(tmp_path: Path, tiny: Path) -> None:
    db = str(tmp_path / "cli.db")
    doc = cli_json("eval", str(tiny), "--model", CUT, "--db", db, "--max-tokens", "2048")
    assert doc["length_cutoffs"] == 3 and doc["max_tokens"] == 2048
    assert any(
        n.startswith("3 of 6 outputs were cut at max_tokens (2,048 tokens)") for n in doc["notes"]
    )
    text = cli("eval", str(tiny), "--model", CUT, "--db", db)
    assert text.exit_code == 0
    assert "  note: 3 of 6 outputs were cut at max_tokens (1,024 tokens);" in text.stdout


def test_length_note_without_a_cap_names_none(store: Store, tmp_path: Path) -> None:
    ds = dataset(tmp_path, parameters={"max_tokens": None})
    s = run_eval(str(ds), CUT, store=store)
    assert s.max_tokens is None
    assert any(n.startswith("3 of 6 outputs were cut at max_tokens; raise") for n in s.notes)


def test_demo_server_end_to_end_parameters_structured_output_and_cutoffs(tmp_path: Path) -> None:
    """A real loopback demo server: the request body carries the parameters, cut-offs count."""
    db, snaps = str(tmp_path / "cli.db"), tmp_path / "snaps"
    doc = cli_json(
        "eval",
        "support-triage",
        "--model",
        "demo:triage-v1",
        "--db",
        db,
        "--limit",
        "3",
        "--structured-output",
        "--max-tokens",
        "5",
        "--temperature",
        "0.3",
        "--seed",
        "9",
        "--record",
        str(snaps),
    )
    assert (doc["status"], doc["cases"], doc["results"], doc["errors"]) == ("finished", 3, 3, 0)
    assert doc["length_cutoffs"] == 3
    assert any("3 of 3 outputs were cut at max_tokens (5 tokens)" in n for n in doc["notes"])
    entries = [
        json.loads(line) for line in (snaps / "demo_triage-v1.jsonl").read_text().splitlines()
    ]
    schema = load_dataset("support-triage").card.output_schema
    assert schema is not None and "$schema" in schema
    expected_format = json_schema_format("support-triage", schema)
    assert "$schema" not in expected_format["json_schema"]["schema"]
    assert len(entries) == 3
    for entry in entries:
        request = entry["request"]
        assert (request["max_tokens"], request["temperature"], request["seed"]) == (5, 0.3, 9)
        assert request["response_format"] == expected_format


def test_demo_server_receives_card_parameters_and_seed_per_repeat(
    store: Store, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []

    def respond(version: str, messages: list[dict[str, Any]], **options: Any) -> Any:
        seen.append(options)
        return demo_model.respond(version, messages, **options)

    triage = load_dataset("support-triage")
    folder = tmp_path / "triage"
    folder.mkdir()
    card_doc = yaml.safe_load((triage.path / "dataset.yaml").read_text())
    card_doc["parameters"] = {"temperature": 0.4, "seed": 20, "max_tokens": 300}
    (folder / "dataset.yaml").write_text(yaml.safe_dump(card_doc, sort_keys=False))
    lines = (triage.path / "cases.jsonl").read_text().splitlines()[:2]
    (folder / "cases.jsonl").write_text("\n".join(lines) + "\n")
    with DemoServer(respond=respond, models=tuple(demo_model.VERSIONS)) as server:
        opts = EvalOptions(base_url=server.url, repeats=2)
        s = run_eval(str(folder), "demo:triage-v1", store=store, options=opts)
    assert (s.results, s.errors) == (4, 0)
    assert sorted(o["seed"] for o in seen) == [20, 20, 21, 21]
    assert {(o["temperature"], o["max_tokens"]) for o in seen} == {(0.4, 300)}


class _Capture(BaseHTTPRequestHandler):
    """A chat-completions endpoint that keeps every body; c001 and c003 stop at the cap."""

    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        word = body["messages"][-1]["content"].removeprefix("Q: ")
        cut_off = word in ("word1", "word3")
        doc = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps({"answer": word})},
                    "finish_reason": "length" if cut_off else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": 10,
                "total_tokens": 110,
                "prompt_tokens_details": {"cached_tokens": 80},
                "completion_tokens_details": {"reasoning_tokens": 4},
            },
        }
        raw = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_openai_wire_body_carries_every_parameter_and_usage_details_are_read(
    store: Store, tmp_path: Path
) -> None:
    ds = dataset(tmp_path, parameters=ALL_PARAMETERS)
    _Capture.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    prices_mod.set_price("capture-model", 1.0, 2.0, cache_read=0.25)
    try:
        opts = EvalOptions(base_url=f"http://127.0.0.1:{server.server_port}/v1", repeats=2)
        s = run_eval(str(ds), "openai:capture-model", store=store, options=opts)
    finally:
        server.shutdown()
        server.server_close()
        prices_mod._LIST_PRICES.pop("capture-model", None)
        prices_mod._BOOK.clear()
    assert (s.results, s.errors) == (12, 0)
    assert len(_Capture.bodies) == 12
    seeds = sorted(b.pop("seed") for b in _Capture.bodies)
    assert seeds == [42] * 6 + [43] * 6
    for body in _Capture.bodies:
        assert {k: v for k, v in body.items() if k not in ("model", "messages")} == {
            k: v for k, v in ALL_PARAMETERS.items() if k != "seed"
        }
    assert (s.length_cutoffs, s.cached_tokens, s.reasoning_tokens) == (4, 960, 48)
    assert s.cost_usd == pytest.approx(12 * (20 * 1.0 + 10 * 2.0 + 80 * 0.25) / 1e6)
    assert any(n.startswith("4 of 12 outputs were cut at max_tokens (256 tokens)") for n in s.notes)


# -- 6. cached and reasoning tokens ------------------------------------------------------------

CACHED = "python:tests.param_probe:cached"
CACHED_MODEL = "tests.param_probe:cached"  # a python target's model is its spec


@pytest.fixture
def priced() -> Iterator[None]:
    prices_mod.set_price(CACHED_MODEL, 1.0, 2.0, cache_read=0.25)
    yield
    prices_mod._LIST_PRICES.pop(CACHED_MODEL, None)
    prices_mod._BOOK.clear()


def test_cached_and_reasoning_tokens_are_stored_summed_and_priced(
    store: Store, tiny: Path, priced: None
) -> None:
    s = run_eval(str(tiny), CACHED, store=store)
    rows = store.result_rows(s.run_id)
    assert {(r["cached_tokens"], r["reasoning_tokens"]) for r in rows} == {(80, 4)}
    # 20 uncached input tokens at $1, 10 output at $2, 80 cache reads at $0.25 per million
    per_call = (20 * 1.0 + 10 * 2.0 + 80 * 0.25) / 1e6
    assert all(r["cost_usd"] == pytest.approx(per_call) for r in rows)
    assert per_call != pytest.approx((100 * 1.0 + 10 * 2.0) / 1e6)
    assert (s.tokens_in, s.tokens_out, s.cached_tokens, s.reasoning_tokens) == (600, 60, 480, 24)
    assert s.cost_usd == pytest.approx(6 * per_call)
    frame = store.results_frame(s.run_id)
    assert frame["cached_tokens"].sum() == 480 and frame["reasoning_tokens"].sum() == 24
    assert store.get_run(s.run_id)["summary"]["cached_tokens"] == 480


def test_unset_cache_rate_prices_reads_at_half_the_input_rate(store: Store, tiny: Path) -> None:
    prices_mod.set_price(CACHED_MODEL, 1.0, 2.0)
    try:
        s = run_eval(str(tiny), CACHED, store=store)
    finally:
        prices_mod._LIST_PRICES.pop(CACHED_MODEL, None)
        prices_mod._BOOK.clear()
    assert s.cost_usd == pytest.approx(6 * (20 * 1.0 + 10 * 2.0 + 80 * 0.5) / 1e6)


def test_cli_text_shows_cached_and_reasoning_tokens_and_cost(
    tmp_path: Path, tiny: Path, priced: None
) -> None:
    result = cli("eval", str(tiny), "--model", CACHED, "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 0
    assert "tokens 600 in (480 cached) / 60 out (24 reasoning)  cost $0.0004" in result.stdout


def test_unpriced_model_has_no_cost(store: Store, tiny: Path) -> None:
    s = run_eval(str(tiny), CACHED, store=store)
    assert s.cost_usd is None and s.cached_tokens == 480


def test_a_version_6_database_gains_the_usage_columns(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 7
    path = tmp_path / "v6.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for version, script in enumerate(MIGRATIONS[:6], start=1):
        conn.executescript(script)
        conn.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01')", (version,))
    conn.execute(
        "INSERT INTO runs (id, status, dataset, target, started_at) "
        "VALUES ('old', 'finished', 'd', 'demo:x', '2026-01-01')"
    )
    conn.execute(
        "INSERT INTO results (run_id, case_id, repeat, passed, tokens_in, created_at) "
        "VALUES ('old', 'c1', 0, 1, 50, '2026-01-01')"
    )
    conn.commit()
    columns = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
    conn.close()
    assert "cached_tokens" not in columns and "reasoning_tokens" not in columns
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert {"cached_tokens", "reasoning_tokens"} <= set(s.db["results"].columns_dict)
        old = s.result_rows("old")[0]
        assert (old["tokens_in"], old["cached_tokens"], old["reasoning_tokens"]) == (50, None, None)
        s.record_result(ResultRow("old", "c2", 0, tokens_in=9, cached_tokens=7, reasoning_tokens=2))
        new = {r["case_id"]: r for r in s.result_rows("old")}["c2"]
        assert (new["cached_tokens"], new["reasoning_tokens"]) == (7, 2)
    schema_doc = (ROOT / "docs" / "schema.md").read_text()
    assert "cached_tokens" in schema_doc and "reasoning_tokens" in schema_doc
