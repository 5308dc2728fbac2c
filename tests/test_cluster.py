"""The Dask executor against a real dask.distributed LocalCluster (two worker processes on
loopback): the same verdicts as in-process, a killed worker or client loses and doubles nothing.

dask is imported at the top on purpose: without it this file fails to collect, loudly.
The three tests that start a cluster of their own for the demo target (the CLI's verdicts, a
killed worker, a killed client) take 15-40 s each; they are the issue's bars, so the default
suite runs them.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import distributed
import psutil
import pytest

from workbench import EvalOptions, RunSummary, run_eval
from workbench.demo.server import DemoServer
from workbench.errors import ConfigError
from workbench.store import Store

from .conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TRIAGE = "support-triage"
DEMO = "demo:triage-v1"
SLOW = {"latency_ms": "60"}
CLI = [
    sys.executable,
    "-m",
    "workbench.cli",
    "eval",
    TRIAGE,
    "--model",
    DEMO,
]  # long enough a run to kill something in the middle of it


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    """Two worker processes on loopback, shared by the tests that kill nothing."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
    ) as c:
        yield c


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A command in the project root, with this checkout on the path, its output captured."""
    return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def _on(cluster: distributed.LocalCluster, **fields: Any) -> EvalOptions:
    return EvalOptions(executor="dask", scheduler=cluster.scheduler_address, **fields)


def _verdicts(store: Store, run_id: str) -> dict[tuple[str, int], tuple[bool, float | None]]:
    return {
        (r["case_id"], r["repeat"]): (bool(r["passed"]), r["score"])
        for r in store.result_rows(run_id)
    }


def _scores(store: Store, run_id: str) -> set[tuple[Any, ...]]:
    rows = store.conn.execute(
        "SELECT case_id, repeat, scorer, score, passed FROM scores WHERE run_id = ?", (run_id,)
    )
    return {tuple(r) for r in rows}


def _one_row_each(db: Path, run_id: str, expected: int) -> None:
    with sqlite3.connect(db) as conn:
        keys = conn.execute(
            "SELECT case_id, repeat FROM results WHERE run_id = ?", (run_id,)
        ).fetchall()
    assert len(keys) == expected == len(set(keys))


def _results(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _wait_for_results(db: Path, rows: int, alive: Any, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while _results(db) < rows:
        assert alive(), "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"no {rows} results after {timeout_s} s"
        time.sleep(0.02)


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every process it started (by their ids)."""
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(tree, timeout=10)


def test_python_target_scores_the_same_on_the_cluster(
    cluster: distributed.LocalCluster, store: Store, tiny: Path
) -> None:
    target = "python:tests.echo_app:answer"
    local = run_eval(str(tiny), target, store=store, options=EvalOptions(repeats=3, seed=4))
    remote = run_eval(
        str(tiny), target, store=store, options=_on(cluster, repeats=3, seed=4, chunk_size=2)
    )
    assert (remote.status, remote.results, remote.passed) == ("finished", 18, 15)
    assert _verdicts(store, remote.run_id) == _verdicts(store, local.run_id)
    assert _scores(store, remote.run_id) == _scores(store, local.run_id)
    run = store.get_run(remote.run_id)["parameters"]
    assert run["executor"] == "dask" and run["scheduler"] == cluster.scheduler_address


# a LocalCluster of its own and the demo's servers per worker: 15-40 s
def test_the_cli_gives_the_same_verdicts_on_a_local_cluster(tmp_path: Path) -> None:
    """The bar: workbench eval support-triage --model demo:triage-v1 --executor dask-local."""
    base = [*CLI, "--json"]
    runs = {}
    for name, extra in (("local", []), ("dask", ["--executor", "dask-local", "--workers", "2"])):
        db = tmp_path / f"{name}.db"
        done = _run([*base, "--db", str(db), "--no-progress", *extra])
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout)
        with Store(db) as s:
            runs[name] = (summary, _verdicts(s, summary["run_id"]), _scores(s, summary["run_id"]))
    (local, lv, ls), (dask, dv, ds) = runs["local"], runs["dask"]
    assert dask["status"] == "finished" and dask["results"] == local["results"] >= 150
    assert dv == lv and ds == ls
    assert (dask["passed"], dask["judge"]["calls"]) == (local["passed"], local["judge"]["calls"])


# a LocalCluster of its own and the demo's servers per worker: 15-40 s
def test_a_killed_worker_loses_and_doubles_nothing(store: Store, tmp_path: Path) -> None:
    """The bar: SIGKILL one worker process mid-run; one row per (case, repeat) at the end."""
    # the dead worker's semaphore leases expire in 2 s, not 30 s (the workers get this config)
    expiry = {
        "distributed.scheduler.locks.lease-timeout": "2s",
        "distributed.scheduler.locks.lease-validation-interval": "0.5s",
    }
    with (
        dask.config.set(expiry),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1"
        ) as own,
        distributed.Client(own) as client,
    ):
        pids = list(client.run(os.getpid).values())
        opts = EvalOptions.from_flags(
            DEMO,
            server_options=SLOW,
            executor="dask",
            scheduler=own.scheduler_address,
            concurrency=4,
            repeats=2,
            limit=60,
            chunk_size=6,
        )
        box: dict[str, RunSummary] = {}
        run = threading.Thread(
            target=lambda: box.update(s=run_eval(TRIAGE, DEMO, store=store, options=opts))
        )
        run.start()
        _wait_for_results(store.path, 30, run.is_alive)
        _kill_tree(pids[0])  # the worker and the demo servers it started
        assert run.is_alive() and _results(store.path) < 120  # killed mid-run
        run.join(300)
        summary = box["s"]
        assert summary.status == "finished" and summary.errors == 0
        _one_row_each(store.path, summary.run_id, summary.expected_results)
        assert summary.results == summary.expected_results == 120
        assert pids[0] not in client.run(os.getpid).values()  # its nanny started another


# a LocalCluster of its own and the demo's servers per worker: 15-40 s
def test_resume_after_the_client_is_killed(tmp_path: Path) -> None:
    """SIGKILL the `workbench eval --executor dask-local` process mid-run, then --resume."""
    db = tmp_path / "crash.db"
    cmd = [*CLI, "--db", str(db), "--no-progress", "--executor", "dask-local", "--workers", "2"]
    cmd += ["--demo-latency-ms", SLOW["latency_ms"], "--concurrency", "4", "--limit", "80"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_results(db, 20, lambda: proc.poll() is None)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        _kill_tree(proc.pid)  # its LocalCluster's processes, orphaned, by their ids
    with sqlite3.connect(db) as conn:
        run_id, status = conn.execute("SELECT id, status FROM runs").fetchone()
    assert status == "running" and 20 <= _results(db) < 80
    resumed = _run([*cmd, "--resume", run_id, "--json"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)
    assert (summary["run_id"], summary["status"]) == (run_id, "finished")
    _one_row_each(db, run_id, summary["expected_results"])
    assert summary["results"] == summary["expected_results"] == 80


def test_record_on_the_cluster_then_replay_in_process(
    cluster: distributed.LocalCluster, store: Store, tiny: Path, tmp_path: Path
) -> None:
    snaps = tmp_path / "snaps"
    target = "python:tests.echo_app:answer"
    first = run_eval(str(tiny), target, store=store, options=_on(cluster, record=str(snaps)))
    lines = (snaps / "python_tests.echo_app_answer.jsonl").read_text().splitlines()
    assert len(lines) == 6 == len({json.loads(line)["key"] for line in lines})
    second = run_eval(str(tiny), target, store=store, options=EvalOptions(replay=str(snaps)))
    assert second.status == "finished" and second.errors == 0
    assert _verdicts(store, second.run_id) == _verdicts(store, first.run_id)
    third = run_eval(str(tiny), target, store=store, options=_on(cluster, replay=str(snaps)))
    assert third.status == "finished" and third.errors == 0
    assert _verdicts(store, third.run_id) == _verdicts(store, first.run_id)


def test_progress_lines_count_the_results_from_the_workers(
    cluster: distributed.LocalCluster, store: Store, tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = _on(cluster, repeats=2, chunk_size=3)
    s = run_eval(
        str(tiny), "python:tests.echo_app:answer", store=store, options=opts, progress="log"
    )
    err = capsys.readouterr().err
    assert f"eval {s.run_id}: started, 12 calls to python:tests.echo_app:answer" in err
    assert f"eval {s.run_id}: 12/12 done, 0 errors" in err


def test_the_circuit_breaker_fails_the_run_on_the_cluster(
    cluster: distributed.LocalCluster, store: Store
) -> None:
    server = DemoServer().start()
    url = server.url
    server.stop()
    opts = _on(cluster, base_url=url, concurrency=2, timeout_s=0.5)
    s = run_eval(TRIAGE, DEMO, store=store, options=opts)
    assert s.status == "failed" and "circuit breaker open" in (s.reason or "")
    assert f"--resume {s.run_id}" in (s.reason or "") and s.results < s.expected_results


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scheduler": "tcp://127.0.0.1:8786"}, "add --executor dask"),
        ({"executor": "dask"}, "needs --scheduler tcp://HOST:8786"),
        ({"workers": 2}, "add --executor dask-local"),
        ({"executor": "dask-local", "workers": 0}, "at least 1"),
        ({"executor": "spark"}, "choose local, dask, dask-local"),
    ],
)
def test_inconsistent_executor_options_are_refused(
    store: Store, tiny: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_eval(
            str(tiny), "python:tests.echo_app:answer", store=store, options=EvalOptions(**fields)
        )
    assert store.runs() == []


def test_an_unreachable_scheduler_is_a_clear_error(
    store: Store, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1.0)
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    opts = EvalOptions(executor="dask", scheduler=f"tcp://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="cannot reach a Dask scheduler there"):
        run_eval(str(tiny), "python:tests.echo_app:answer", store=store, options=opts)
    assert store.runs() == []


def test_the_cli_names_the_fix_for_a_scheduler_without_the_executor(tmp_path: Path) -> None:
    done = _run(
        [*CLI, "--db", str(tmp_path / "x.db"), "--scheduler", "tcp://127.0.0.1:8786"], timeout=60
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "is the address of a Dask scheduler for --executor dask" in done.stderr


def test_without_dask_the_executor_names_the_install(tmp_path: Path) -> None:
    code = "import sys; sys.modules['distributed'] = None\nfrom workbench.cli import main\nmain()\n"
    done = _run(
        [
            sys.executable,
            "-c",
            code,
            *CLI[3:],
            "--db",
            str(tmp_path / "x.db"),
            "--executor",
            "dask-local",
        ],
        timeout=60,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "pip install 'dask[distributed]>=2026.8.0'" in done.stderr
    assert not (tmp_path / "x.db").exists() or not Store(tmp_path / "x.db").runs()


def test_import_workbench_does_not_import_dask() -> None:
    code = "import sys, workbench, workbench.runner, workbench.cli\nprint('dask' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True
    )
    assert done.stdout.strip() == "False", done.stderr


class _Counting(http.server.BaseHTTPRequestHandler):
    """A chat-completions endpoint that answers after 50 ms and counts the calls in flight."""

    lock = threading.Lock()
    now = peak = calls = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        with cls.lock:
            cls.now += 1
            cls.calls += 1
            cls.peak = max(cls.peak, cls.now)
        time.sleep(0.05)
        with cls.lock:
            cls.now -= 1
        message = {"role": "assistant", "content": json.dumps({"answer": "word1"})}
        body = json.dumps({"choices": [{"message": message, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_http_calls_share_one_cap_across_the_workers(
    cluster: distributed.LocalCluster, store: Store, tiny: Path
) -> None:
    """Two workers, two chunks at a time each: still at most --concurrency calls in flight."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        opts = _on(cluster, base_url=url, concurrency=3, repeats=6, chunk_size=2)
        s = run_eval(str(tiny), "openai:counting", store=store, options=opts)
    finally:
        server.shutdown()
    assert (s.status, s.results, _Counting.calls) == ("finished", 36, 36)
    assert 2 <= _Counting.peak <= 3
