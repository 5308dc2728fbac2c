"""Profiling: real py-spy and scalene runs of a tiny workload, pins, week-over-week diffs, errors."""

from __future__ import annotations

import json
import re
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench import profiling
from workbench.errors import ConfigError, RunError
from workbench.profiling import Pin, ProfileRun
from workbench.store import Store

RATE = 100

WORKLOAD = """\
import sys
import time

HOT_UNITS = {hot}
COLD_SIZE = {cold}


def hot(n):
    total = 0
    for i in range(n * HOT_UNITS):
        total += i * i
    return total


def cold(n):
    total = 0
    for i in range(n):
        total += i
    return total


def main():
    mode, amount = sys.argv[1], float(sys.argv[2])
    end = time.perf_counter() + amount
    rounds = 0
    while time.perf_counter() < end if mode == "seconds" else rounds < amount:
        hot(20_000)
        if COLD_SIZE:
            cold(COLD_SIZE)
        rounds += 1


if __name__ == "__main__":
    main()
"""


def write_workload(folder: Path, *, hot: int = 1, cold: int = 10_000) -> Path:
    """The workload script: ``work.py seconds S`` or ``work.py rounds N``; ``cold=0`` drops cold."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "work.py"
    script.write_text(WORKLOAD.format(hot=hot, cold=cold), encoding="utf-8")
    return script


@dataclass
class Weeks:
    """Profiles shared by the tests of this module (py-spy runs are seconds each)."""

    store: Store
    folder: Path
    timed: ProfileRun  # a 10 s workload stopped by py-spy after 2 s
    base: ProfileRun  # hot x1, cold about as costly
    grown: ProfileRun  # hot x3: same command, next "week" (a wide margin over sampling noise)
    no_cold: ProfileRun  # hot x2, cold removed


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weeks]:
    folder = tmp_path_factory.mktemp("profiling")
    store = Store(folder / "workbench.db")
    common = {"rate_hz": RATE, "cwd": folder, "artifacts_dir": folder / "profiles"}
    write_workload(folder)
    timed = profiling.profile(store, "python work.py seconds 10", duration_s=2, **common)
    weekly = "python work.py rounds 500"
    write_workload(folder, cold=40_000)
    base = profiling.profile(store, weekly, duration_s=10, label="weekly", **common)
    write_workload(folder, hot=3, cold=40_000)
    grown = profiling.profile(store, weekly, duration_s=10, label="weekly", **common)
    write_workload(folder, hot=2, cold=0)
    no_cold = profiling.profile(store, weekly, duration_s=10, label="weekly", **common)
    yield Weeks(store, folder, timed, base, grown, no_cold)
    store.close()


def stat(run: ProfileRun, name: str) -> profiling.FunctionStat:
    found = run.function(name)
    assert found is not None, f"{name} not sampled in {sorted(run.stacks)}"
    return found


# -- one run ----------------------------------------------------------------------------


def test_hot_function_dominates(weeks: Weeks) -> None:
    run = weeks.timed
    hot, cold = stat(run, "hot"), stat(run, "cold")
    assert hot.function == "hot (work.py)"
    assert hot.total_share > 0.6
    assert hot.total_share > 2 * cold.total_share
    leaves = [
        f for f in run.functions if f.function not in ("<module> (work.py)", "main (work.py)")
    ]
    assert max(leaves, key=lambda f: f.total_share) == hot
    assert max(run.functions, key=lambda f: f.self_share) == hot


def test_shares_and_seconds_add_up(weeks: Weeks) -> None:
    run = weeks.timed
    assert run.samples == sum(run.stacks.values()) > 0
    for f in run.functions:
        assert 0.0 <= f.self_share <= f.total_share <= 1.0
        assert f.self_s == pytest.approx(f.self_samples / RATE)
        assert f.total_s == pytest.approx(f.total_samples / RATE)
    assert sum(f.self_share for f in run.functions) == pytest.approx(1.0)
    assert sum(f.self_s for f in run.functions) == pytest.approx(run.seconds)
    # py-spy stopped the 10 s workload after 2 s; samples ÷ rate is the time sampled
    assert 0.6 * 2 <= run.seconds <= 1.1 * 2
    assert run.wall_s is not None and run.wall_s < 5


def test_stacks_are_normalised(weeks: Weeks) -> None:
    for run in (weeks.timed, weeks.base):
        for stack in run.stacks:
            for frame in stack.split(";"):
                assert not frame.startswith(("process ", "thread ")), frame
                assert not re.search(r":\d+\)$", frame), frame
                assert re.fullmatch(r".+ \([^()]+\)", frame), frame
                assert not frame.endswith(("(<string>)", "(<frozen runpy>)")), frame
                assert "(/" not in frame, frame  # no absolute paths
    assert "<module> (work.py);main (work.py);hot (work.py)" in weeks.timed.stacks


def test_run_is_stored(weeks: Weeks) -> None:
    store, run = weeks.store, weeks.timed
    row = store.get_run(run.run_id)
    assert (row["kind"], row["status"], row["target"]) == ("profile", "finished", run.workload)
    assert row["parameters"]["tool"] == "py-spy"
    assert row["parameters"]["rate_hz"] == RATE
    assert row["parameters"]["duration_s"] == 2
    assert row["python_version"] == sys.version.split()[0]
    assert row["summary"]["samples"] == run.samples
    assert row["summary"]["artifacts"] == run.artifacts
    profile_row = next(store.db.query("SELECT * FROM profiles WHERE run_id = ?", [run.run_id]))
    assert profile_row["tool"] == "py-spy"
    assert profile_row["label"] == "default"
    assert profile_row["samples"] == run.samples
    assert json.loads(profile_row["artifacts"]) == run.artifacts
    assert profiling.load_stacks(store, run.run_id) == run.stacks
    assert profiling.load_profile(store, run.run_id).functions == run.functions


def test_hot_paths_frame(weeks: Weeks) -> None:
    frame = profiling.hot_paths(weeks.store, weeks.timed.run_id, top=3)
    assert len(frame) == 3
    assert list(frame["total_samples"]) == sorted(frame["total_samples"], reverse=True)
    by_self = profiling.hot_paths(weeks.store, weeks.timed.run_id, top=1, by="self")
    assert by_self["function"].tolist() == ["hot (work.py)"]
    assert set(frame.columns) >= {"function", "self_share", "total_share", "self_s", "total_s"}
    with pytest.raises(RunError, match="no run"):
        profiling.hot_paths(weeks.store, "nope")


def test_artifacts(weeks: Weeks) -> None:
    artifacts = {k: Path(v) for k, v in weeks.timed.artifacts.items()}
    assert set(artifacts) == {"raw", "flamegraph", "speedscope"}
    assert all(p.is_file() for p in artifacts.values())
    svg = ET.parse(artifacts["flamegraph"]).getroot()
    titles = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("hot (work.py)") for t in titles)
    doc = json.loads(artifacts["speedscope"].read_text())
    profile = doc["profiles"][0]
    assert profile["type"] == "sampled"
    assert len(profile["samples"]) == len(profile["weights"])
    assert sum(profile["weights"]) * RATE == pytest.approx(weeks.timed.samples)
    names = {f["name"] for f in doc["shared"]["frames"]}
    assert {"hot", "cold", "main"} <= names
    # the raw file is py-spy's own output, before normalisation
    assert "(<string>)" in artifacts["raw"].read_text()


# -- week over week ---------------------------------------------------------------------


def test_previous_profile_is_same_workload_and_label(weeks: Weeks) -> None:
    assert profiling.previous_profile(weeks.store, weeks.grown.run_id) == weeks.base.run_id
    assert profiling.previous_profile(weeks.store, weeks.no_cold.run_id) == weeks.grown.run_id
    assert profiling.previous_profile(weeks.store, weeks.base.run_id) is None
    assert profiling.previous_profile(weeks.store, weeks.timed.run_id) is None


def test_diff_hot_function_grew(weeks: Weeks) -> None:
    diff = profiling.diff_profiles(weeks.store, None, weeks.grown.run_id)
    assert diff.base_run == weeks.base.run_id
    hot = diff.function("hot")
    assert hot is not None and hot.status == "both"
    assert hot.delta_total_share > 0.1  # about 0.5 -> 0.75
    assert hot.delta_total_s > 0.3 * stat(weeks.base, "hot").total_s
    cold = diff.function("cold")
    assert cold is not None and cold.delta_total_share < 0
    assert diff.cand_s > diff.base_s
    frame = diff.frame()
    assert {"delta_total_share", "delta_total_s", "status"} <= set(frame.columns)
    assert json.dumps(diff.to_dict())


def test_diff_lists_vanished_stacks(weeks: Weeks) -> None:
    diff = profiling.diff_profiles(weeks.store, weeks.grown.run_id, weeks.no_cold.run_id)
    assert any(s.endswith("cold (work.py)") for s in diff.vanished_stacks)
    assert not any("cold" in s for s in diff.new_stacks)
    cold = diff.function("cold")
    assert cold is not None and cold.status == "vanished"
    assert cold.cand_total_s == 0 and cold.delta_total_s < 0
    text = profiling.render_text(weeks.no_cold, (), diff)
    assert f"vs {weeks.grown.run_id}" in text
    assert re.search(r"vanished stacks: [1-9]", text)


def test_diff_without_a_baseline(weeks: Weeks) -> None:
    with pytest.raises(RunError, match="no earlier finished py-spy profile"):
        profiling.diff_profiles(weeks.store, None, weeks.base.run_id)


# -- pins -------------------------------------------------------------------------------


def write_pins(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pins.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_pins_breached_and_passing(weeks: Weeks, tmp_path: Path) -> None:
    pins = profiling.load_pins(
        write_pins(
            tmp_path,
            """\
            pins:
              - function: hot           # tight: must break
                max_total_share: 0.05
              - function: hot
                name: hot-loose
                max_total_share: 0.99
                max_total_s: 100
              - pattern: "work.c*"      # dotted module.function
                max_self_share: 0.9
              - regex: "^nothing_like_this"
                max_total_s: 1
            """,
        )
    )
    results = profiling.check_pins(weeks.store, weeks.base.run_id, pins)
    verdicts = {r.name: r for r in results}
    assert set(verdicts) == {
        "hot total_share",
        "hot-loose total_share",
        "hot-loose total_s",
        "work.c* self_share",
        "^nothing_like_this total_s",
    }
    tight = verdicts["hot total_share"]
    assert not tight.ok
    assert tight.limit == 0.05
    assert tight.actual == pytest.approx(stat(weeks.base, "hot").total_share)
    assert "BROKEN" in tight.message and "5.0%" in tight.message
    assert verdicts["hot-loose total_share"].ok and verdicts["hot-loose total_s"].ok
    assert verdicts["work.c* self_share"].matched == ("cold (work.py)",)
    assert verdicts["work.c* self_share"].actual == pytest.approx(
        stat(weeks.base, "cold").self_share
    )
    unseen = verdicts["^nothing_like_this total_s"]
    assert unseen.ok and unseen.actual == 0 and "not sampled" in unseen.message
    assert tight.to_dict()["ok"] is False
    text = profiling.render_text(weeks.base, results)
    assert "pins: 4 ok, 1 broken" in text


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "pins:\n  - function: hot\n    max_total_share: 0.3\n    colour: red\n",
            4,
            "colour: unknown key",
        ),
        ("pins:\n  - function: hot\n  - pattern: x\n    max_total_s: 1\n", 2, "no threshold"),
        ("pins:\n  - function: hot\n    max_total_share: lots\n", 3, "'lots' is not a number"),
        ("pins:\n  - function: hot\n    max_total_share: 30\n", 3, "between 0 and 1"),
        ("pins:\n  - function: hot\n    max_total_s: -1\n", 3, "≥ 0 seconds"),
        ("pins:\n  - max_total_s: 1\n", 2, "give a function, pattern or regex"),
        ("pins:\n  - function: hot\n    pattern: h*\n    max_total_s: 1\n", 3, "not both"),
        ("pins:\n  - regex: '('\n    max_total_s: 1\n", 2, "not a valid regular expression"),
        ("pins:\n  - function: hot\n    max_total_s: [1\n", 4, "not valid YAML"),
        ("pins: hot\n", 1, "expected 'pins:'"),
        ("pin:\n  - function: hot\n", 1, "unknown key"),
    ],
)
def test_bad_pins_name_file_and_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write_pins(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        profiling.load_pins(path)
    assert f"{path}:{line}:" in str(info.value)
    assert fragment in str(info.value)


def test_pin_matching() -> None:
    frame = "validate (jsonschema/validators.py)"
    assert Pin("pattern", "jsonschema.*", {}).matches(frame)
    assert Pin("pattern", "*(jsonschema/*", {}).matches(frame)
    assert Pin("function", "validate", {}).matches(frame)
    assert Pin("function", "jsonschema.validators.validate", {}).matches(frame)
    assert not Pin("function", "valid", {}).matches(frame)
    assert Pin("regex", r"schema/valid", {}).matches(frame)
    stacks = {
        "main (app.py);validate (jsonschema/validators.py);validate (jsonschema/validators.py)": 3,
        "main (app.py)": 1,
    }
    [result] = profiling.pin_results(stacks, 10, [Pin("function", "validate", {"max_total_s": 1})])
    assert result.actual == pytest.approx(0.3)  # recursion counts once per stack


# -- other targets and tools --------------------------------------------------------------


def test_entry_point_target(store: Store, tmp_path: Path) -> None:
    write_workload(tmp_path)
    (tmp_path / "entry.py").write_text(
        "import work\n\ndef run():\n    work.hot(20_000)\n    for _ in range(400):\n        work.hot(20_000)\n"
    )
    run = profiling.profile(
        store, "entry:run", duration_s=5, cwd=tmp_path, artifacts_dir=tmp_path / "p"
    )
    assert stat(run, "hot").total_share > 0.8
    assert run.stacks["run (entry.py);hot (work.py)"] > 0.8 * run.samples  # no launcher frames
    assert run.workload == "entry:run"


def test_scalene_run(store: Store, tmp_path: Path) -> None:
    write_workload(tmp_path)
    run = profiling.profile(
        store,
        "python work.py seconds 1.5",
        tool="scalene",
        duration_s=10,
        cwd=tmp_path,
        artifacts_dir=tmp_path / "p",
        profile_only="work.py",
    )
    assert run.tool == "scalene"
    assert Path(run.artifacts["scalene"]).is_file()
    assert run.samples > 0
    assert stat(run, "hot").total_share > 0.5
    functions = profiling.hot_paths(store, run.run_id, top=50).set_index("function")
    hot = functions.loc["hot (work.py)"]
    assert hot["cpu_python_pct"] > 0
    assert hot["cpu_python_pct"] + hot["cpu_native_pct"] + hot["cpu_system_pct"] <= 100.5
    lines = list(store.db.query("SELECT * FROM profile_lines WHERE run_id = ?", [run.run_id]))
    assert lines and {r["file"] for r in lines} == {"work.py"}
    hottest = max(lines, key=lambda r: r["cpu_python_pct"] or 0)
    assert hottest["source"].strip() in ("for i in range(n * HOT_UNITS):", "total += i * i")
    for stack in run.stacks:
        assert not re.search(r":\d+\)", stack) and "(/" not in stack


# -- errors -----------------------------------------------------------------------------


def test_missing_script(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"script nope\.py not found"):
        profiling.profile(store, "python nope.py", cwd=tmp_path)
    assert store.runs() == []


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("-m no_such_module_here", "'no_such_module_here' is not importable"),
        ("no_such_module_here:main", "'no_such_module_here' is not importable"),
        ("python -c 'print(1)'", "-c code cannot be profiled"),
        ("ls -l", "give 'python script.py ARGS'"),
        ("", "empty profile target"),
    ],
)
def test_bad_targets(store: Store, tmp_path: Path, target: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        profiling.profile(store, target, cwd=tmp_path)


def test_missing_function(store: Store, tmp_path: Path) -> None:
    write_workload(tmp_path)
    with pytest.raises(ConfigError, match="'work' has no 'nothing'"):
        profiling.profile(store, "work:nothing", cwd=tmp_path, artifacts_dir=tmp_path / "p")


def test_workload_exits_non_zero(store: Store, tmp_path: Path) -> None:
    (tmp_path / "fail.py").write_text(
        "import sys\nprint('first line', file=sys.stderr)\nprint('the real reason', file=sys.stderr)\nsys.exit(3)\n"
    )
    with pytest.raises(RunError) as info:
        profiling.profile(store, "python fail.py", cwd=tmp_path, artifacts_dir=tmp_path / "p")
    message = str(info.value)
    assert "exited with status 3" in message and "the real reason" in message
    assert "py-spy>" not in message
    [run] = store.runs()
    assert run["status"] == "failed" and "status 3" in run["reason"]


def test_workload_raises(store: Store, tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("raise ValueError('kaboom')\n")
    with pytest.raises(RunError, match=r"(?s)status 1.*ValueError: kaboom"):
        profiling.profile(store, "python boom.py", cwd=tmp_path, artifacts_dir=tmp_path / "p")


def test_too_short_to_sample(store: Store, tmp_path: Path) -> None:
    (tmp_path / "instant.py").write_text("x = 1\n")
    # At 1 Hz the first sample comes a second in: only an interpreter that takes a whole
    # second to start (not a slow CI disk, which took 10-50 ms at 100 Hz) is ever sampled.
    with pytest.raises(RunError, match=r"0 samples at 1 Hz.*increase --duration"):
        profiling.profile(
            store, "python instant.py", cwd=tmp_path, artifacts_dir=tmp_path / "p", rate_hz=1
        )
    assert store.runs()[0]["status"] == "failed"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"tool": "perf"}, "unknown profiler 'perf'"),
        ({"duration_s": 0}, "duration must be a positive"),
        ({"rate_hz": 99.5}, "whole number of samples per second"),
    ],
)
def test_bad_options(
    store: Store, tmp_path: Path, options: dict[str, object], fragment: str
) -> None:
    write_workload(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        profiling.profile(store, "python work.py seconds 1", cwd=tmp_path, **options)


def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, py_spy: str | None) -> None:
    """Point the profiler lookup at a folder holding only a fake py-spy (or none)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    if py_spy is not None:
        exe = folder / "py-spy"
        exe.write_text(f"#!/bin/sh\n{py_spy}\n")
        exe.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(folder / "python"))
    monkeypatch.setenv("PATH", str(folder))


def test_profiler_missing(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_workload(tmp_path)
    fake_bin(tmp_path, monkeypatch, None)
    with pytest.raises(ConfigError, match="pip install py-spy"):
        profiling.profile(store, "python work.py seconds 1", cwd=tmp_path)


def test_profiler_not_permitted(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_workload(tmp_path)
    message = "Error: Permission Denied: Try running again with elevated permissions"
    fake_bin(tmp_path, monkeypatch, f"echo '{message}' >&2; exit 1")
    with pytest.raises(RunError, match=r"(?s)Permission Denied.*SYS_PTRACE"):
        profiling.profile(
            store, "python work.py seconds 1", cwd=tmp_path, artifacts_dir=tmp_path / "p"
        )


# -- normalisation (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("hot (work.py:12)", "hot (work.py)"),
        ("hot (work.py)", "hot (work.py)"),
        ('process 4242:"python work.py"', None),
        ("thread (0x7f01)", None),
        (
            "validate (/venv/lib/python3.11/site-packages/jsonschema/validators.py:300)",
            "validate (jsonschema/validators.py)",
        ),
        ("loads (/usr/lib/python3.12/json/__init__.py:1)", "loads (json/__init__.py)"),
        ("embed (/home/ci/project/app/embed.py:7)", "embed (app/embed.py)"),
        ("<module> (<frozen runpy>)", "<module> (<frozen runpy>)"),
    ],
)
def test_normalize_frame(frame: str, expected: str | None) -> None:
    assert profiling.normalize_frame(frame, roots=["/home/ci/project"]) == expected


def test_paths_outside_the_roots_start_at_their_package(tmp_path: Path) -> None:
    package = tmp_path / "lib" / "pkg" / "sub"
    package.mkdir(parents=True)
    for folder in (package, package.parent):
        (folder / "__init__.py").write_text("")
    (package / "mod.py").write_text("")
    (tmp_path / "lib" / "loose.py").write_text("")
    assert profiling.relative_path(str(package / "mod.py")) == "pkg/sub/mod.py"
    assert profiling.relative_path(str(tmp_path / "lib" / "loose.py")) == "loose.py"
    assert profiling.relative_path("/gone/away.py") == "/gone/away.py"  # nothing to go by


def test_normalize_stacks_strips_process_thread_and_launcher() -> None:
    raw = {
        'process 1:"python -c import a; b";thread (0x1);<module> (<string>:3);run_path (<frozen runpy>:291);<module> (w.py:9);hot (w.py:3)': 5,
        "<module> (<string>);_find_and_load (<frozen importlib._bootstrap>);<module> (json/__init__.py)": 2,
        "_find_and_load (<frozen importlib._bootstrap>);<module> (<frozen site>)": 1,
        "<module> (w.py:10);hot (w.py:4)": 1,
    }
    stacks, dropped = profiling.normalize_stacks(raw, launched=True)
    assert stacks == {"<module> (w.py);hot (w.py)": 5}
    assert dropped == 4
    native = {
        "0x7f96 (libc.so.6);<module> (<string>);<module> (w.py:9);hot (w.py:3);PyNumber_Add (libpython3.11.so)": 2,
        "0x7f96 (libc.so.6);gc_collect_main (libpython3.11.so)": 1,
    }
    assert profiling.normalize_stacks(native, launched=True) == (
        {"<module> (w.py);hot (w.py);PyNumber_Add (libpython3.11.so)": 2},
        1,
    )
    assert profiling.normalize_frame("0x7f964624524a (libc.so.6)") == "[unknown] (libc.so.6)"
    loose, _ = profiling.normalize_stacks(raw)
    assert loose["<module> (w.py);hot (w.py)"] == 6  # line numbers no longer split stacks


def test_function_stats_count_recursion_once() -> None:
    stats = {f.function: f for f in profiling.function_stats({"a;b;a;b": 3, "a;c": 1}, 10)}
    assert stats["a"].total_samples == 4 and stats["a"].self_samples == 0
    assert stats["b"].total_samples == 3 and stats["b"].self_share == 0.75
    assert stats["c"].total_s == pytest.approx(0.1)
