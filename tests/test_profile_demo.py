"""Profiling the demo workload: its real hot path, week-over-week growth, pins, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import profiling
from workbench.cli import main
from workbench.errors import ConfigError
from workbench.store import Store

WORKLOAD = "-m workbench.demo workload --duration {d}"


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, str, str]:
    folder = tmp_path_factory.mktemp("prof")
    store = Store(folder / "p.db")
    base = profiling.profile(
        store, WORKLOAD.format(d=7), duration_s=7, label="demo", artifacts_dir=folder
    )
    cand = profiling.profile(
        store,
        WORKLOAD.format(d=7) + " --embedding-cache 0",
        duration_s=7,
        label="demo",
        artifacts_dir=folder,
    )
    return store, base.run_id, cand.run_id


def _embedding(frame: str) -> bool:
    return frame.startswith(("embed_many (workbench/embeddings.py)", "TriageApp._embed ("))


def test_the_same_workload_and_label_is_the_default_baseline(
    profiled: tuple[Store, str, str], tmp_path: Path
) -> None:
    store, _base, _ = profiled
    again = profiling.profile(
        store, WORKLOAD.format(d=2), duration_s=2, label="demo", artifacts_dir=tmp_path
    )
    assert profiling.previous_profile(store, again.run_id) is None  # a different workload string
    third = profiling.profile(
        store, WORKLOAD.format(d=2), duration_s=2, label="demo", artifacts_dir=tmp_path
    )
    assert profiling.previous_profile(store, third.run_id) == again.run_id


def test_the_app_hot_path_is_in_the_profile(profiled: tuple[Store, str, str]) -> None:
    store, base, _ = profiled
    top = profiling.hot_paths(store, base, top=25)
    functions = list(top["function"])
    assert any(f.startswith("TriageApp.triage (") for f in functions)
    assert any(
        f.startswith(("TriageApp.call_model (", "TriageApp.validate (", "TriageApp._embed ("))
        for f in functions
    )
    assert ((top["total_share"] >= 0) & (top["total_share"] <= 1)).all()
    run = profiling.load_profile(store, base)
    self_sum = sum(
        s.self_share
        for s in profiling.function_stats(profiling.load_stacks(store, base), run.rate_hz)
    )
    assert self_sum == pytest.approx(1.0, abs=0.01)
    assert run.samples / run.rate_hz <= 7 * 1.1  # seconds = samples / rate, within the duration


def test_switching_the_embedding_cache_off_grows_the_embedding_path(
    profiled: tuple[Store, str, str],
) -> None:
    store, base, cand = profiled
    diff = profiling.diff_profiles(store, base, cand)
    grown = [d for d in diff.functions if _embedding(d.function)]
    assert grown, "the embedding path should be in both profiles"
    for d in grown:
        assert d.delta_total_share > 0 and d.delta_total_s > 0, d


def test_pins_tight_breach_loose_pass(profiled: tuple[Store, str, str], tmp_path: Path) -> None:
    store, base, _ = profiled
    pins = tmp_path / "pins.yaml"
    pins.write_text(
        "pins:\n"
        "  - {name: triage tight, function: TriageApp.triage, max_total_share: 0.01}\n"
        "  - {name: triage loose, function: TriageApp.triage, max_total_share: 0.99, max_total_s: 100}\n"
    )
    results = profiling.check_pins(store, base, profiling.load_pins(pins))
    tight = [r for r in results if r.pin == "triage tight"]
    loose = [r for r in results if r.pin == "triage loose"]
    assert tight and not all(r.ok for r in tight)
    assert loose and all(r.ok for r in loose)


def test_profile_cli_with_pins_and_gate(tmp_path: Path) -> None:
    pins = tmp_path / "pins.yaml"
    pins.write_text("pins:\n  - {function: TriageApp.triage, max_total_share: 0.01}\n")
    args = [
        "profile",
        "--target",
        WORKLOAD.format(d=3),
        "--duration",
        "30",  # a cap: the workload stops itself after 3 s of work, however slow its imports
        "--db",
        str(tmp_path / "p.db"),
        "--artifacts",
        str(tmp_path / "art"),
        "--pins",
        str(pins),
        "--gate",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "hot paths" in result.output and "TriageApp.triage" in result.output
    assert list((tmp_path / "art").glob("*/flamegraph.svg"))


def test_profile_report_is_the_run_its_pins_and_its_diff(
    profiled: tuple[Store, str, str], tmp_path: Path
) -> None:
    store, base, _ = profiled
    pins = tmp_path / "pins.yaml"
    pins.write_text("pins:\n  - {function: TriageApp.triage, max_total_share: 0.01}\n")
    report = profiling.profile_report(
        store,
        WORKLOAD.format(d=2),
        pins=pins,
        baseline=base,
        duration_s=30,
        label="report",
        artifacts_dir=tmp_path,
    )
    (pin,) = report.checks()
    assert pin.name == "TriageApp.triage total_share" and not pin.ok and pin.matched
    assert report.diff is not None and report.diff.base_run == base == report.baseline
    assert report.headline()["samples"] == report.run.samples > 0
    assert report.provenance().runs == (report.run.run_id,)
    assert set(report.provenance().artifacts or {}) >= {"flamegraph", "speedscope"}
    doc = report.to_dict()
    assert doc["pins"][0]["pin"] == "TriageApp.triage" and doc["pins"][0]["ok"] is False
    assert "pins: 0 ok, 1 broken" in report.render_text()
    # The first run of a new label has no baseline; bad pins fail before anything runs.
    runs = len(store.runs())
    with pytest.raises(ConfigError, match="cannot read the pins"):
        profiling.profile_report(store, WORKLOAD.format(d=2), pins=tmp_path / "none.yaml")
    assert len(store.runs()) == runs
