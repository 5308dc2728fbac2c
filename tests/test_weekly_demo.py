"""The demo's weekly habit over two weeks: every job kind, a same-week re-run, the week after.

One config with the demo config's jobs at smaller sizes runs for this ISO week, again for
this week (everything kept: no new runs, no rewritten reports), then for the next week
(demo traffic replayed a week later): the index lists both weeks, the profile is diffed
against last week's and the budgets notebook compares the two windows of traffic.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench import weekly
from workbench.store import Store

THIS_WEEK = weekly.iso_week()
NEXT_WEEK = weekly.iso_week(dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7))
CONFIG = {
    "fail_on_budget": False,
    "notebooks": [
        {
            "name": "golden_eval",
            "notebook": "golden_eval",
            "parameters": {"model": "demo:triage-v1"},
        },
        {
            "name": "profile_hot_paths",
            "notebook": "profile_hot_paths",
            "parameters": {
                "label": "weekly-test",
                "duration": 3,
                "target": "-m workbench.demo workload --duration 3",
                "load_phases": None,
            },
        },
        {
            "name": "latency_budgets",
            "notebook": "latency_budgets",
            "parameters": {"demo_requests": 300, "week": "${week}"},
        },
        {
            "name": "cache_effectiveness",
            "notebook": "cache_effectiveness",
            "parameters": {"demo_requests": 300, "week": "${week}"},
        },
    ],
}


def config_for(traces: Path) -> weekly.WeeklyConfig:
    doc = json.loads(json.dumps(CONFIG).replace("${traces}", str(traces)))
    return weekly.parse_config(doc, "test config")


@pytest.fixture(scope="module")
def two_weeks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("weekly-demo")
    out, db = root / "reports", root / "workbench.db"
    config = config_for(root / "traces")
    first = weekly.run_weekly(config, out, week=THIS_WEEK, db=db)
    with Store(db) as store:
        runs_after_first = store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        spans_after_first = store.conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / THIS_WEEK).iterdir()}
    again = weekly.run_weekly(config, out, week=THIS_WEEK, db=db)
    with Store(db) as store:
        runs_after_again = store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        spans_after_again = store.conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
    restamps = {
        p.name: p.stat().st_mtime_ns for p in (out / THIS_WEEK).iterdir() if p.name != "index.html"
    }
    second = weekly.run_weekly(config, out, week=NEXT_WEEK, db=db)
    yield {
        "out": out,
        "first": first,
        "again": again,
        "second": second,
        "runs": (runs_after_first, runs_after_again),
        "spans": (spans_after_first, spans_after_again),
        "stamps": ({k: v for k, v in stamps.items() if k != "index.html"}, restamps),
    }


def test_every_job_kind_publishes_in_both_weeks(two_weeks: dict) -> None:
    for result in (two_weeks["first"], two_weeks["second"]):
        assert [r.name for r in result.reports] == [j["name"] for j in CONFIG["notebooks"]]
        assert all(r.ok for r in result.reports), [r.error for r in result.reports]
        assert all(r.html.is_file() for r in result.reports)
    index = (two_weeks["out"] / "index.html").read_text(encoding="utf-8")
    assert THIS_WEEK in index and NEXT_WEEK in index
    week = (two_weeks["out"] / NEXT_WEEK / "index.html").read_text(encoding="utf-8")
    links = [week.index(f"/{job['name']}.html'") for job in CONFIG["notebooks"]]
    assert links == sorted(links)  # in the order they ran


def test_a_second_run_in_the_same_week_keeps_everything(two_weeks: dict) -> None:
    again = two_weeks["again"]
    assert all(r.kept for r in again.reports)
    assert "kept" in again.table()
    before, after = two_weeks["runs"]
    assert before == after  # no eval, profile or load run added
    assert two_weeks["spans"][0] == two_weeks["spans"][1]
    assert two_weeks["stamps"][0] == two_weeks["stamps"][1]  # no report rewritten


def test_the_next_week_diffs_the_profile_against_last_week(two_weeks: dict) -> None:
    profile = {r.name: r for r in two_weeks["second"].reports}["profile_hot_paths"]
    text = profile.html.read_text(encoding="utf-8")
    assert "no earlier run of this workload" not in text
    assert "baseline: " in text and "data:image/svg+xml;base64," in text  # the differential SVG


def test_profile_artifacts_sit_next_to_the_report_and_are_linked(two_weeks: dict) -> None:
    profile = {r.name: r for r in two_weeks["second"].reports}["profile_hot_paths"]
    artifacts = profile.summary["artifacts"]
    assert {"flamegraph", "speedscope"} <= set(artifacts)
    text = profile.html.read_text(encoding="utf-8")
    for link in artifacts.values():
        assert link.startswith("profile_hot_paths.files/")
        assert (profile.html.parent / link).is_file()
        assert f'href="{link}"' in text or f"href='{link}'" in text


def test_the_next_week_compares_traffic_with_last_week(two_weeks: dict) -> None:
    latency = {r.name: r for r in two_weeks["second"].reports}["latency_budgets"]
    drift = [b for b in latency.summary["budgets"] if b["name"].endswith(" drift")]
    assert drift and not any("none before" in b["message"] for b in drift)
    first = {r.name: r for r in two_weeks["first"].reports}["latency_budgets"]
    assert all(
        "none before" in b["message"]
        for b in first.summary["budgets"]
        if b["name"].endswith(" drift")
    )


def test_changed_parameters_run_the_notebook_again(two_weeks: dict, tmp_path: Path) -> None:
    folder = two_weeks["out"] / NEXT_WEEK
    job = weekly.parse_config({"notebooks": [CONFIG["notebooks"][0]]}).notebooks[0]
    kept = {r.name: r for r in two_weeks["second"].reports}["golden_eval"]
    params = kept.summary["parameters"]
    assert weekly._finished(folder, job, params) is not None
    assert weekly._finished(folder, job, {**params, "model": "demo:triage-v2"}) is None


@pytest.mark.parametrize("text", ["[1, 2]", "{", "[" * 100_000, '{"ok": true}'])
def test_a_bad_summary_runs_the_notebook_again(tmp_path: Path, text: str) -> None:
    job = weekly.parse_config({"notebooks": ["golden_eval"]}).notebooks[0]
    for suffix in (".html", ".ipynb"):
        (tmp_path / f"golden_eval{suffix}").write_text("x")
    (tmp_path / "golden_eval.summary.json").write_text(text)
    assert weekly._finished(tmp_path, job, {"db": "x"}) is None


def test_the_index_of_two_weeks_draws_two_points_per_key_figure(two_weeks: dict) -> None:
    index = (two_weeks["out"] / NEXT_WEEK / "index.html").read_text(encoding="utf-8")
    notebooks = index[index.index("<h2>Notebooks</h2>") : index.index("<h2>What got worse</h2>")]
    points = re.findall(r"data-points='(\d+)'", notebooks)
    keyed = sum(len(r.summary.get("key") or []) for r in two_weeks["second"].reports)
    assert keyed >= 8 and len(points) == keyed  # every key figure has its line
    assert set(points) == {"2"}  # two weeks, two points; never a chart of one
    assert "Plotly" not in index
    first = (two_weeks["out"] / THIS_WEEK / "index.html").read_text(encoding="utf-8")
    assert "<svg" not in first  # a week on its own draws no line


def test_each_report_of_the_next_week_opens_with_its_change_since_last_week(
    two_weeks: dict,
) -> None:
    for report in two_weeks["second"].reports:
        page = report.html.read_text(encoding="utf-8").replace('"', "'")
        start = page.index("<section class='wb-summary'")
        box = page[start : page.index("</section>", start)]
        assert start < page.index("class='wb-header'"), report.name  # the first section
        assert f"since {THIS_WEEK}" in box and "data-judgement=" in box, report.name
        assert "First run" not in box, report.name
