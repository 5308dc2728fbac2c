"""A panel of judges voting: card forms, votes, self-judging, and agreement among judges."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench import golden, judges, scoring
from workbench.calibration import calibrate, labels_path
from workbench.errors import ConfigError, DatasetError
from workbench.runner import EvalOptions, run_eval
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "golden" / "support-triage"
ASCII = "python:tests.panel_judges:ascii_judge"
LENIENT = "python:tests.panel_judges:lenient_judge"


def with_judge(tmp_path: Path, judge: Any) -> Path:
    folder = tmp_path / "support-triage"
    shutil.copytree(DEMO, folder)
    card = yaml.safe_load((folder / "dataset.yaml").read_text())
    card["judge"] = judge
    (folder / "dataset.yaml").write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
    return folder


def test_a_card_names_a_panel_as_a_list_or_with_its_vote(tmp_path: Path) -> None:
    listed = golden.load_dataset(with_judge(tmp_path / "a", ["demo:judge", ASCII])).card.judge
    assert isinstance(listed, scoring.JudgePanel) and listed.vote == "majority"
    assert listed.target == f"demo:judge+{ASCII}"
    voted = golden.load_dataset(
        with_judge(tmp_path / "b", {"panel": ["demo:judge", {"model": ASCII}], "vote": "mean"})
    ).card.judge
    assert isinstance(voted, scoring.JudgePanel) and voted.vote == "mean"
    assert scoring.judge_from_dict(voted.to_dict()) == voted


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        (["demo:judge"], "at least two judges"),
        (["demo:judge", "demo:judge"], "each judge once"),
        ({"panel": ["demo:judge", ASCII], "vote": "loudest"}, "vote: 'loudest'"),
        (["demo:judge", {"model": "nope"}], "panel[1].model: must be a target"),
    ],
)
def test_bad_panels_are_card_errors(tmp_path: Path, judge: Any, message: str) -> None:
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        golden.load_dataset(with_judge(tmp_path, judge))


def test_majority_is_the_median_and_mean_the_mean() -> None:
    spec = scoring.ScorerSpec("judge", field="summary", options={"criteria": "x"})
    votes = [judges.Verdict(v, f"{v}", False, 1 + 4 * v) for v in (0.0, 0.75, 1.0)]
    panel = scoring.JudgePanel(
        tuple(scoring.JudgeConfig(t) for t in ("a:x", "b:y", "c:z")), "majority"
    )
    voted = judges._vote(panel, spec, ["a:x", "b:y", "c:z"], votes)
    assert voted.value == 0.75 and voted.raw == 4.0 and len(voted.members) == 3
    mean = judges._vote(
        scoring.JudgePanel(panel.members, "mean"), spec, ["a:x", "b:y", "c:z"], votes
    )
    assert mean.value == pytest.approx(1.75 / 3)
    failed = judges.Verdict(0.0, "judge error: down", True)
    one_left = judges._vote(panel, spec, ["a:x", "b:y"], [failed, votes[2]])
    assert one_left.value == 1.0 and not one_left.errored
    none_left = judges._vote(panel, spec, ["a:x", "b:y"], [failed, failed])
    assert none_left.errored and "every judge failed" in none_left.detail


def test_a_panel_judges_an_eval_and_each_judge_is_called(tmp_path: Path, store: Store) -> None:
    folder = with_judge(tmp_path, ["demo:judge", ASCII, LENIENT])
    s = run_eval(
        str(folder),
        "demo:triage-v2",
        store=store,
        options=EvalOptions.from_flags("demo:triage-v2", limit=12),
    )
    assert s.judge is not None and s.judge.target == f"demo:judge+{ASCII}+{LENIENT}"
    assert s.judge.calls == 3 * 12  # every judge on every output
    details = store.scores_frame(s.run_id).query("scorer == 'judge[summary]'")["detail"]
    assert all(d.startswith("majority of 3 judge(s)") for d in details)
    assert all("demo:judge: " in d and "lenient_judge: 4/5" in d for d in details)
    run = store.get_run(s.run_id)
    assert [m["target"] for m in run["parameters"]["judge"]["panel"]] == [
        "demo:judge",
        ASCII,
        LENIENT,
    ]


def test_a_panel_with_the_model_under_test_in_it_is_refused(tmp_path: Path, store: Store) -> None:
    folder = with_judge(tmp_path, ["demo:judge", "demo:triage-v2"])
    with pytest.raises(ConfigError, match="allow-self-judge"):
        run_eval(
            str(folder),
            "demo:triage-v2",
            store=store,
            options=EvalOptions.from_flags("demo:triage-v2", limit=2),
        )
    with pytest.raises(ConfigError, match="allow-self-judge"):
        run_eval(
            str(DEMO),
            "demo:triage-v2",
            store=store,
            options=EvalOptions.from_flags(
                "demo:triage-v2", limit=2, judge="demo:judge,demo:triage-v2"
            ),
        )


def test_calibrating_a_panel_reports_each_judge_and_their_agreement(
    tmp_path: Path, store: Store
) -> None:
    alone = calibrate(DEMO, labels_path(DEMO), store=store)
    folder = with_judge(tmp_path, ["demo:judge", ASCII, LENIENT])
    cal = calibrate(folder, labels_path(folder), store=store)
    assert set(cal.member_kappas) == {"demo:judge", ASCII, LENIENT}
    # a member's kappa is what that judge alone gets: the panel adds nothing to it
    assert cal.member_kappas["demo:judge"] == pytest.approx(alone.verdict_kappa.estimate)
    assert cal.member_kappas[LENIENT] == pytest.approx(0.0)  # passes all: chance agreement
    assert len(cal.member_agreement) == 3 and cal.fleiss is not None and -1 <= cal.fleiss <= 1
    assert cal.key != alone.key  # another judge, another calibration
    text = cal.render_text()
    assert "panel: each judge against people" in text and "Fleiss' kappa" in text
    doc = json.loads(json.dumps(cal.to_dict()))
    assert doc["member_kappas"][ASCII] == pytest.approx(cal.member_kappas[ASCII])
