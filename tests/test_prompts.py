"""Prompt versions: named variants, the cases and prompt hashes, prompt diffs in compare."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import EvalOptions, run_eval
from workbench.cli import main
from workbench.compare import compare
from workbench.errors import DatasetError, RunError
from workbench.golden import Selection, load_dataset
from workbench.prompts import prompt_diff
from workbench.store import MIGRATIONS, SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "golden" / "support-triage"
FIVE = EvalOptions(selection=Selection(limit=5))


def copy_demo(tmp_path: Path, name: str, edit: tuple[str, str] | None = None) -> Path:
    folder = tmp_path / name
    shutil.copytree(DEMO, folder)
    if edit is not None:
        card = folder / "dataset.yaml"
        text = card.read_text()
        assert edit[0] in text
        card.write_text(text.replace(edit[0], edit[1], 1))
    return folder


def cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_one_word_prompt_edit_compares_without_shared_and_shows_the_word(tmp_path: Path) -> None:
    a = copy_demo(tmp_path, "a")
    b = copy_demo(tmp_path, "b", ("a support-ticket triage", "a meticulous support-ticket triage"))
    db = str(tmp_path / "w.db")
    for folder in (a, b):
        result = CliRunner().invoke(
            main, ["eval", str(folder), "--model", "demo:triage-v1", "--limit", "8", "--db", db]
        )
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["compare", "--latest", "support-triage", "--db", db])
    assert result.exit_code == 0, result.output
    assert "{+meticulous+}" in result.output
    out = (
        CliRunner()
        .invoke(main, ["compare", "--latest", "support-triage", "--db", db, "--json"])
        .output
    )
    doc = json.loads(out)
    assert doc["prompt"]["changed"] is True
    assert "+You are a meticulous support-ticket" in doc["prompt"]["templates"]["system"]
    assert doc["prompt"]["parameters"] == {} and doc["prompt"]["contract"] == []
    assert doc["base"]["cases_hash"] == doc["cand"]["cases_hash"]
    assert doc["base"]["prompt_hash"] != doc["cand"]["prompt_hash"]


def test_runs_over_different_cases_still_need_shared(tmp_path: Path, store: Store) -> None:
    b = copy_demo(tmp_path, "b")
    lines = (b / "cases.jsonl").read_text().splitlines()
    (b / "cases.jsonl").write_text("\n".join(lines[1:]) + "\n")  # one case fewer
    first = run_eval(str(DEMO), "demo:triage-v1", store=store, options=FIVE)
    second = run_eval(str(b), "demo:triage-v1", store=store, options=FIVE)
    with pytest.raises(RunError, match="different cases.*--shared"):
        compare(store, first.run_id, second.run_id)
    assert compare(store, first.run_id, second.run_id, shared_only=True).shared_only


def test_the_demo_card_variants_share_cases_and_keep_the_old_dataset_hash(tmp_path: Path) -> None:
    v1, terse = load_dataset(DEMO), load_dataset(DEMO, prompt="terse")
    assert v1.prompt_name == "v1" and terse.prompt_name == "terse"
    assert v1.cases_hash == terse.cases_hash
    assert v1.prompt_hash != terse.prompt_hash and v1.hash != terse.hash
    assert "money is at stake" in v1.card.system and "money is at stake" not in terse.card.system
    # without the prompts block the card hashes as before: v1 is the card's own prompt
    plain = copy_demo(tmp_path, "plain")
    card = (plain / "dataset.yaml").read_text()
    start, end = card.index("# Named prompt variants"), card.index("output_schema:")
    (plain / "dataset.yaml").write_text(card[:start] + card[end:])
    old = load_dataset(plain)
    assert old.prompt_name is None
    assert (old.hash, old.prompt_hash, old.cases_hash) == (v1.hash, v1.prompt_hash, v1.cases_hash)


def test_a_variant_run_records_its_prompt_and_summarizes_and_resumes_with_it(store: Store) -> None:
    s = run_eval(
        str(DEMO),
        "demo:triage-v1",
        store=store,
        options=EvalOptions(selection=Selection(limit=6), prompt="terse"),
    )
    run = store.get_run(s.run_id)
    assert run["prompt_name"] == "terse" and s.prompt == "terse"
    assert run["prompt"]["system"].startswith("You triage Tallyhub support tickets.")
    assert run["prompt_hash"] == load_dataset(DEMO, prompt="terse").prompt_hash
    assert run["parameters"]["prompt"] == "terse"
    # a resume keeps the run's variant whatever the dataset was loaded with
    store.conn.execute("DELETE FROM scores WHERE run_id = ? AND case_id = 'st-0001'", (s.run_id,))
    store.conn.execute("DELETE FROM results WHERE run_id = ? AND case_id = 'st-0001'", (s.run_id,))
    store.conn.commit()
    resumed = run_eval(str(DEMO), "demo:triage-v1", store=store, resume=s.run_id)
    assert resumed.results == 6 and resumed.prompt == "terse"
    assert resumed.dataset_hash == load_dataset(DEMO, prompt="terse").hash


def test_the_terse_prompt_is_cheaper_and_gets_p2_tickets_wrong(store: Store) -> None:
    opts = EvalOptions(selection=Selection(limit=40))
    v1 = run_eval(str(DEMO), "demo:triage-v1", store=store, options=opts)
    terse = run_eval(
        str(DEMO),
        "demo:triage-v1",
        store=store,
        options=EvalOptions(selection=Selection(limit=40), prompt="terse"),
    )
    assert terse.tokens_in < 0.7 * v1.tokens_in
    cmp = compare(store, v1.run_id, terse.run_id)
    moved = {c.path for case in cmp.cases for c in case.changes}
    assert moved == {"priority"}
    assert all(c.base_output and '"p2"' in c.base_output for c in cmp.cases if c.changes)


def test_prompt_files_beside_the_card_are_variants(tmp_path: Path) -> None:
    folder = copy_demo(tmp_path, "files")
    (folder / "prompts").mkdir()
    (folder / "prompts" / "polite.yaml").write_text(
        "system: Be polite. Answer with the JSON object.\nparameters: {temperature: 0.3}\n"
    )
    ds = load_dataset(folder, prompt="polite")
    assert ds.card.system == "Be polite. Answer with the JSON object."
    assert ds.card.user == load_dataset(folder).card.user  # not given: the card's
    assert ds.card.parameters["temperature"] == 0.3
    assert [v.name for v in ds.card.prompts] == ["v1", "terse", "polite"]
    (folder / "prompts" / "terse.yaml").write_text("system: again\n")
    with pytest.raises(DatasetError, match=r"terse\.yaml:1: prompt 'terse' is also defined"):
        load_dataset(folder)


def test_bad_variants_name_file_line_and_field(tmp_path: Path) -> None:
    folder = copy_demo(tmp_path, "bad")
    card = folder / "dataset.yaml"
    card.write_text(
        card.read_text().replace("  v1: {}", "  v1: {sytem: x, parameters: {temprature: 1}}")
    )
    with pytest.raises(DatasetError) as err:
        load_dataset(folder)
    text = str(err.value)
    assert "dataset.yaml:" in text and "prompts.v1.sytem: unknown key" in text
    assert "prompts.v1.parameters.temprature: unknown" in text
    with pytest.raises(DatasetError, match="no prompt variant 'v9'; known: v1, terse"):
        load_dataset(DEMO, prompt="v9")
    (folder / "prompts").mkdir()
    (folder / "prompts" / "x.yaml").write_text("user: '{{ unclosed'\n")
    card.write_text((DEMO / "dataset.yaml").read_text())
    with pytest.raises(DatasetError, match=r"prompts/x\.yaml:1: user: template does not parse"):
        load_dataset(folder)


def test_a_card_with_one_prompt_refuses_a_name(tmp_path: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "dataset.yaml").write_text("name: one\nprompt: {user: '{{ q }}'}\n")
    (folder / "cases.jsonl").write_text('{"id": "a", "input": {"q": "hi"}, "expected": null}\n')
    assert load_dataset(folder).prompt_name is None
    with pytest.raises(DatasetError, match="no prompt variant 'v2'; the card has one prompt"):
        load_dataset(folder, prompt="v2")


def test_a_version_9_database_gets_hashes_from_the_dataset_hash(tmp_path: Path) -> None:
    path = tmp_path / "v9.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for version, script in enumerate(MIGRATIONS[:9], start=1):
        conn.executescript(script)
        conn.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01')", (version,))
    for run_id in ("old1", "old2"):
        conn.execute(
            "INSERT INTO runs (id, status, dataset, dataset_hash, target, started_at) "
            "VALUES (?, 'finished', 'd', 'abc', 'demo:x', '2026-01-01')",
            (run_id,),
        )
        conn.execute(
            "INSERT INTO results (run_id, case_id, repeat, passed, output, created_at) "
            "VALUES (?, 'c1', 0, 1, 'x', '2026-01-01')",
            (run_id,),
        )
    conn.commit()
    conn.close()
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        old = s.get_run("old1")
        assert (old["cases_hash"], old["prompt_hash"], old["prompt"]) == ("abc", "abc", {})
        cmp = compare(s, "old1", "old2")  # the same dataset version: they still pair
        assert len(cmp.cases) == 1 and cmp.prompt is not None and not cmp.prompt.changed


def test_prompt_diff_of_parameters_and_contract() -> None:
    base = {
        "prompt_hash": "a",
        "prompt_name": "v1",
        "prompt": {"system": "s", "user": "u", "parameters": {"temperature": 0}, "scorers": [1]},
    }
    cand = {
        "prompt_hash": "b",
        "prompt_name": "v2",
        "prompt": {
            "system": "s",
            "user": "u",
            "parameters": {"temperature": 0.7, "top_p": 0.9},
            "scorers": [2],
        },
    }
    diff = prompt_diff(base, cand)
    assert diff.templates == {} and diff.contract == ["scorers"]
    assert diff.parameters == {"temperature": [0, 0.7], "top_p": [None, 0.9]}
    assert "parameters.temperature: 0 → 0.7" in diff.render_text()
    unknown = prompt_diff({"prompt_hash": "a"}, {"prompt_hash": "b"})
    assert unknown.changed and not unknown.recorded
    assert "predates prompt records" in unknown.render_text()


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_cases_hash_ignores_the_prompt_and_prompt_hash_follows_it(a: str, b: str) -> None:
    import dataclasses

    ds = load_dataset(DEMO)
    one = dataclasses.replace(ds, card=dataclasses.replace(ds.card, system=a))
    two = dataclasses.replace(ds, card=dataclasses.replace(ds.card, system=b))
    assert one.cases_hash == two.cases_hash == ds.cases_hash
    assert (one.prompt_hash == two.prompt_hash) == (a == b)
