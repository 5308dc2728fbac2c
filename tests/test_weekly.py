"""The weekly run end to end, publishing, the index, and schedules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from workbench import weekly
from workbench.cli import main
from workbench.errors import ConfigError
from workbench.schedule import emit, on_calendar, parse_cron


@pytest.fixture(scope="module")
def weekly_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, weekly.WeeklyResult]:
    out = tmp_path_factory.mktemp("reports")
    config = weekly.parse_config(
        {
            "notebooks": [
                {
                    "name": "golden_eval-triage-v1",
                    "notebook": "golden_eval",
                    "parameters": {"model": "demo:triage-v1"},
                },
                {
                    "name": "golden_eval-triage-v2",
                    "notebook": "golden_eval",
                    "parameters": {"model": "demo:triage-v2"},
                },
                {
                    "name": "model_delta",
                    "notebook": "model_delta",
                    "parameters": {
                        "base_run": "${golden_eval-triage-v1.runs.0}",
                        "cand_run": "${golden_eval-triage-v2.runs.0}",
                    },
                },
                {
                    "name": "broken",
                    "notebook": "golden_eval",
                    "parameters": {"dataset": "no-such-dataset"},
                },
            ]
        }
    )
    return out, weekly.run_weekly(config, out, week="2026-W48")


def test_weekly_publishes_every_notebook_and_an_index(
    weekly_run: tuple[Path, weekly.WeeklyResult],
) -> None:
    out, _result = weekly_run
    folder = out / "2026-W48"
    for name in ("golden_eval-triage-v1", "golden_eval-triage-v2", "model_delta", "broken"):
        assert (folder / f"{name}.html").stat().st_size > 10_000
        assert (folder / f"{name}.summary.json").exists()
    index = (folder / "index.html").read_text()
    assert (out / "index.html").exists()
    for name in ("golden_eval-triage-v1", "model_delta", "broken"):
        assert f"2026-W48/{name}.html" in index
    assert "wb-bad" in index and "wb-ok" in index


def test_a_failing_notebook_is_published_with_its_error_and_the_rest_still_run(
    weekly_run: tuple[Path, weekly.WeeklyResult],
) -> None:
    out, result = weekly_run
    by_name = {r.name: r for r in result.reports}
    assert by_name["broken"].ok is False and "no-such-dataset" in (by_name["broken"].error or "")
    assert by_name["golden_eval-triage-v2"].ok and by_name["model_delta"].ok
    html = (out / "2026-W48" / "broken.html").read_text()
    assert "FAILED" in html and "no-such-dataset" in html
    assert not result.ok
    assert "broken" in result.table() and "FAILED" in result.table()


def test_reports_load_nothing_from_a_network(weekly_run: tuple[Path, weekly.WeeklyResult]) -> None:
    out, _ = weekly_run
    for path in (out / "2026-W48").glob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script[^>]+src=[\"']https?://", text), path.name
        assert not re.search(r"<link[^>]+href=[\"']https?://", text), path.name
        assert "require.min.js" not in text and "mathjax@" not in text.lower()


def test_reports_carry_provenance_and_hide_parameters_cell(
    weekly_run: tuple[Path, weekly.WeeklyResult],
) -> None:
    _out, result = weekly_run
    report = next(r for r in result.reports if r.name == "golden_eval-triage-v1")
    html = report.html.read_text()
    (run_id,) = report.summary["runs"]
    assert run_id in html and "support-triage@" in html
    assert "git commit" in html
    assert "summary_path" not in html  # the injected-parameters cell is removed
    assert "def " not in html or "<pre" in html  # code hidden by default


def test_model_delta_uses_the_runs_of_the_earlier_notebooks(
    weekly_run: tuple[Path, weekly.WeeklyResult],
) -> None:
    _, result = weekly_run
    by_name = {r.name: r for r in result.reports}
    runs = by_name["model_delta"].summary["runs"]
    assert runs == [
        by_name["golden_eval-triage-v1"].summary["runs"][0],
        by_name["golden_eval-triage-v2"].summary["runs"][0],
    ]
    html = by_name["model_delta"].html.read_text()
    assert "open this notebook in JupyterLab" in html  # the widget's static fallback
    assert "application/vnd.jupyter.widget-state+json" not in html


def test_model_output_is_escaped_in_reports(weekly_run: tuple[Path, weekly.WeeklyResult]) -> None:
    out, _ = weekly_run
    html = (out / "2026-W48" / "golden_eval-triage-v1.html").read_text()
    assert "<script>alert(1)</script>" not in html


def test_index_trends_accumulate_across_weeks(tmp_path: Path) -> None:
    for week, rate in (("2026-W46", 0.7), ("2026-W47", 0.75)):
        folder = tmp_path / week
        folder.mkdir()
        (folder / "golden.summary.json").write_text(
            json.dumps(
                {
                    "ok": True,
                    "headline": {"pass_rate": rate},
                    "budgets": [{"name": "pass_rate", "ok": rate > 0.72, "message": "m"}],
                }
            )
        )
    index = weekly.build_index(tmp_path, current="2026-W47").read_text()
    assert index.index("2026-W47") < index.index("2026-W46")  # newest first
    assert "golden: pass_rate" in index and "Plotly.newPlot" in index


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "'notebooks' must list"),
        (
            {"notebooks": [{"notebook": "x", "parameters": {"api_key": "sk-1"}}]},
            "secrets never go in parameters",
        ),
        ({"notebooks": ["a", "a"]}, "used twice"),
        ({"notebooks": ["a"], "colour": 1}, "unknown key 'colour'"),
        ({"notebooks": [{"notebook": "a", "timeout_s": -1}]}, "timeout_s"),
    ],
)
def test_bad_configs_are_refused(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        weekly.parse_config(doc)


def test_demo_config_is_the_default() -> None:
    config = weekly.load_config(None)
    assert [j.name for j in config.notebooks][:3] == [
        "golden_eval-triage-v1",
        "golden_eval-triage-v2",
        "model_delta",
    ]


def test_cron_parsing_and_systemd_calendar() -> None:
    assert parse_cron("17 6 * * 1") == ["17", "6", "*", "*", "1"]
    assert on_calendar("17 6 * * 1") == "Mon *-*-* 06:17:00"
    assert on_calendar("0 */2 1 * *") == "*-*-01 00/2:00:00"
    assert on_calendar("30 9 * * 1-5") == "Mon..Fri *-*-* 09:30:00"
    for bad in ("17 6 * *", "61 6 * * 1", "x 6 * * 1", "0 0 * * 8", "*/0 * * * *"):
        with pytest.raises(ConfigError):
            parse_cron(bad)


def test_emitters(tmp_path: Path) -> None:
    cron = emit("cron", "17 6 * * 1", workdir=tmp_path)
    assert (
        cron.splitlines()[1].startswith("17 6 * * 1 cd ")
        and "workbench weekly --out reports" in cron
    )
    workflow = yaml.safe_load(emit("github", "17 6 * * 1", workdir=tmp_path))
    on = workflow[True] if True in workflow else workflow["on"]
    assert on["schedule"] == [{"cron": "17 6 * * 1"}] and "workflow_dispatch" in on
    steps = workflow["jobs"]["weekly"]["steps"]
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in steps)
    systemd = emit("systemd", "17 6 * * 1", workdir=tmp_path)
    assert "OnCalendar=Mon *-*-* 06:17:00" in systemd and "[Install]" in systemd
    result = CliRunner().invoke(main, ["schedule", "--cron", "17 6 * * 1", "--emit", "github"])
    assert result.exit_code == 0 and "workflow_dispatch" in result.output


browser = pytest.importorskip("tests._browser")
needs_chromium = pytest.mark.skipif(
    browser.chromium() is None, reason="chromium is not installed (make installs it)"
)
CHARTS = "document.querySelectorAll('.plotly .main-svg').length"


@needs_chromium
def test_index_and_report_render_offline_in_chromium(
    weekly_run: tuple[Path, weekly.WeeklyResult],
) -> None:
    out, _ = weekly_run
    index = browser.visit(
        out / "2026-W48" / "index.html", {"charts": CHARTS, "links": "document.links.length"}
    )
    assert index.values["charts"] >= 1 and index.values["links"] >= 4
    assert index.external == []
    report = browser.visit(
        out / "2026-W48" / "golden_eval-triage-v1.html",
        {
            "charts": CHARTS,
            "title": "document.title",
            "tables": "document.querySelectorAll('table.dataframe').length",
        },
    )
    assert report.values["charts"] >= 1 and report.values["tables"] >= 4
    assert report.values["title"] == "golden_eval-triage-v1"
    assert report.external == [] and report.dialogs == []
