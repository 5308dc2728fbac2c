"""Judge calibration on the demo: people's labels against demo:judge, kappa and its uses."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from workbench.calibration import calibrate, latest_calibration, read_labels
from workbench.cli import main
from workbench.errors import DatasetError
from workbench.golden import load_dataset
from workbench.runner import EvalOptions, run_eval
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "golden" / "support-triage"
LABELS = DEMO / "judge-labels.jsonl"


def label_lines() -> list[dict[str, object]]:
    return [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]


def write_labels(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_the_demo_labels_are_enough_and_cover_both_models_outputs() -> None:
    rows = label_lines()
    assert len(rows) >= 60
    assert {r["labeller"] for r in rows} == {"support-lead", "qa-reviewer"}
    scores = [r["score"] for r in rows]
    assert set(scores) >= {1, 2, 3, 4, 5}
    assert sum(s <= 2 for s in scores) >= 20 and sum(s >= 4 for s in scores) >= 20
    assert all(isinstance(r["note"], str) and r["note"] for r in rows)
    ds = load_dataset(DEMO)
    spec = next(s for s in ds.card.scorers if s.name == "judge")
    assert len(read_labels(LABELS, ds, spec)) == len(rows)


def test_calibrate_on_the_demo_labels_reports_kappa_with_an_interval(store: Store) -> None:
    cal = calibrate(DEMO, LABELS, store=store)
    assert cal.n_labels == len(label_lines()) and cal.judge_errors == 0
    k = cal.kappa
    assert -1 <= k.low < k.estimate < k.high <= 1
    assert cal.kappa_kind.startswith("quadratic-weighted on the 1-5 scale")
    # the demo judge is good but not perfect: it agrees with people, with real misses
    assert 0.4 < k.estimate < 0.95
    assert 0 < len(cal.disagreements) < cal.n_labels / 2
    assert cal.fail.tp > 0 and cal.fail.precision is not None and cal.fail.recall is not None
    assert int(cal.confusion.to_numpy().sum()) == cal.n_labels
    assert set(cal.by_tag["tag"]) >= {"en", "de", "adversarial"}
    # stored as a calibration run, found again by its judge + rubric key
    run = store.get_run(cal.run_id or "")
    assert run["kind"] == "calibration" and run["status"] == "finished"
    found = latest_calibration(store, cal.key)
    assert found is not None and found["kappa"]["estimate"] == pytest.approx(k.estimate)
    assert cal.usage.calls == cal.n_labels  # one judgement per label, none repeated
    text = cal.render_text()
    assert (
        f"judge κ = {k.estimate:.2f} [{k.low:.2f}, {k.high:.2f}] on {cal.n_labels} labels" in text
    )


def test_labels_that_are_the_judges_own_verdicts_give_kappa_1(tmp_path: Path, store: Store) -> None:
    first = calibrate(DEMO, LABELS, store=store)
    own = [
        {**row, "score": int(item.judge)}
        for row, item in zip(label_lines(), first.items.itertuples(), strict=True)
    ]
    cal = calibrate(DEMO, write_labels(tmp_path / "own.jsonl", own), store=store)
    assert cal.kappa.estimate == pytest.approx(1.0)
    assert (cal.kappa.low, cal.kappa.high) == (pytest.approx(1.0), pytest.approx(1.0))
    assert cal.agreement == 1.0 and cal.disagreements.empty
    assert cal.usage.calls == 0 and cal.usage.cached == cal.n_labels  # the same judgements


def test_shuffled_labels_give_kappa_near_zero(tmp_path: Path, store: Store) -> None:
    rows = label_lines()
    kappas = []
    for seed in range(5):
        scores = [r["score"] for r in rows]
        random.Random(seed).shuffle(scores)
        shuffled = [{**r, "score": s} for r, s in zip(rows, scores, strict=True)]
        path = write_labels(tmp_path / f"shuffled-{seed}.jsonl", shuffled)
        cal = calibrate(DEMO, path, store=store, resamples=500)
        kappas.append(cal.kappa.estimate)
        assert cal.kappa.low < 0.35
    assert abs(sum(kappas) / len(kappas)) < 0.15


def test_repeats_measure_flips_with_fresh_judge_calls(store: Store, tmp_path: Path) -> None:
    rows = label_lines()[:10]
    cal = calibrate(DEMO, write_labels(tmp_path / "ten.jsonl", rows), store=store, repeats=3)
    assert cal.repeats == 3 and cal.flip_share == 0.0  # the demo judge is deterministic
    assert cal.usage.calls == 30  # the repeats are asked again, never answered by the cache
    again = calibrate(DEMO, write_labels(tmp_path / "ten.jsonl", rows), store=store, repeats=3)
    assert again.usage.cached == 10 and again.usage.calls == 20


def test_bad_labels_name_the_file_line_and_field(tmp_path: Path) -> None:
    good = label_lines()[0]
    rows = [
        good,
        {**good, "case": "st-9999"},
        {k: v for k, v in good.items() if k != "labeller"},
        {**good, "score": 7},
        {**good, "score": 3, "verdict": "pass"},
        {**good, "scroe": 3},
    ]
    path = write_labels(tmp_path / "bad.jsonl", rows)
    with path.open("a") as fh:
        fh.write("{not json\n")
    ds = load_dataset(DEMO)
    spec = next(s for s in ds.card.scorers if s.name == "judge")
    with pytest.raises(DatasetError) as err:
        read_labels(path, ds, spec)
    message = str(err.value)
    assert "7 bad label(s)" not in message and "6 bad label(s)" in message
    for expected in (
        f"{path}:2: case: 'st-9999' is not a case of support-triage",
        f"{path}:3: labeller: missing",
        f"{path}:4: score: 7 is not a number in 1-5",
        f"{path}:5: give exactly one of score (1-5) and verdict",
        f"{path}:6: scroe: unknown field",
        f"{path}:7: not JSON",
    ):
        assert expected in message


def test_pass_fail_verdict_labels_give_cohens_kappa(tmp_path: Path, store: Store) -> None:
    rows = [
        {
            **{k: v for k, v in r.items() if k != "score"},
            "verdict": "pass" if r["score"] >= 3 else "fail",
        }  # type: ignore[operator]
        for r in label_lines()
    ]
    cal = calibrate(DEMO, write_labels(tmp_path / "verdicts.jsonl", rows), store=store)
    assert cal.kappa_kind == "Cohen's on pass/fail" and cal.scale is None
    assert cal.kappa.estimate == pytest.approx(cal.verdict_kappa.estimate)


def test_an_eval_shows_the_judges_kappa_and_the_gate_holds_the_floor(
    tmp_path: Path, store: Store
) -> None:
    cal = calibrate(DEMO, LABELS, store=store)
    opts = EvalOptions.from_flags("demo:triage-v2", limit=20)
    s = run_eval(str(DEMO), "demo:triage-v2", store=store, options=opts)
    assert s.judge is not None
    shown = s.judge.calibrations["judge[summary]"]
    assert shown is not None and shown["run_id"] == cal.run_id
    assert f"judge κ = {cal.kappa.estimate:.2f}" in s.render_text()
    check = next(c for c in s.budgets if c.name == "judge_kappa:judge[summary]")
    assert check.ok and check.limit == 0.6
    # a stricter floor on the card: the same judge is no longer trusted, and the gate says so
    strict = tmp_path / "support-triage"
    shutil.copytree(DEMO, strict)
    card = yaml.safe_load((strict / "dataset.yaml").read_text())
    card["budgets"]["judge_kappa"] = 0.95
    (strict / "dataset.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    s2 = run_eval(str(strict), "demo:triage-v2", store=store, options=opts)
    bad = [c for c in s2.broken() if c.name == "judge_kappa:judge[summary]"]
    assert bad and "BROKEN" in bad[0].message
    assert "BELOW the floor 0.95" in s2.render_text()


def test_an_uncalibrated_judge_says_so_and_does_not_fail_the_gate(store: Store) -> None:
    opts = EvalOptions.from_flags("demo:triage-v2", limit=5)
    s = run_eval(str(DEMO), "demo:triage-v2", store=store, options=opts)
    assert s.judge is not None and s.judge.calibrations == {"judge[summary]": None}
    assert "judge not calibrated" in s.render_text()
    assert not any(c.name.startswith("judge_kappa") for c in s.budgets)


def test_cli_judge_calibrate_prints_kappa_and_gates(tmp_path: Path) -> None:
    db = tmp_path / "wb.db"
    runner = CliRunner()
    out = runner.invoke(
        main, ["judge", "calibrate", str(DEMO), "--labels", str(LABELS), "--db", str(db)]
    )
    assert out.exit_code == 0, out.output
    assert "judge κ = " in out.output and "on 80 labels" in out.output
    assert "confusion (rows: people, columns: judge)" in out.output
    gated = runner.invoke(
        main,
        [
            "judge",
            "calibrate",
            str(DEMO),
            "--labels",
            str(LABELS),
            "--db",
            str(db),
            "--kappa-floor",
            "0.99",
            "--gate",
            "--json",
        ],
    )
    assert gated.exit_code == 1
    doc = json.loads(gated.stdout)
    assert doc["labels"] == 80 and doc["checks"][0]["ok"] is False
    assert doc["usage"]["calls"] == 0  # the second calibration is answered by the cache
