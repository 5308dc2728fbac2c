"""The tamper-evident run log and workbench verify."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from workbench import audit, run_eval
from workbench.cli import main
from workbench.store import Store


def _two_runs(store: Store, tiny: Path) -> tuple[str, str]:
    a = run_eval(str(tiny), "python:tests.echo_app:answer", store=store).run_id
    b = run_eval(str(tiny), "python:tests.echo_app:answer_async", store=store).run_id
    return a, b


def test_each_finished_run_appends_a_chained_entry(store: Store, tiny: Path) -> None:
    a, b = _two_runs(store, tiny)
    rows = store.conn.execute(
        "SELECT run_id, prev_hash, entry_hash FROM run_log ORDER BY seq"
    ).fetchall()
    assert [r[0] for r in rows] == [a, b]
    assert rows[0][1] == audit.GENESIS and rows[1][1] == rows[0][2]
    assert audit.verify(store.conn) == (2, None)


def test_an_edited_result_is_found(store: Store, tiny: Path) -> None:
    a, _ = _two_runs(store, tiny)
    store.conn.execute("UPDATE results SET passed = 1 WHERE run_id = ? AND case_id = 'c003'", (a,))
    _entries, problem = audit.verify(store.conn)
    assert problem is not None and problem.run_id == a and problem.seq == 1
    assert "results changed" in problem.reason


def test_a_deleted_score_is_found(store: Store, tiny: Path) -> None:
    _, b = _two_runs(store, tiny)
    store.conn.execute("DELETE FROM scores WHERE run_id = ? AND case_id = 'c001'", (b,))
    _, problem = audit.verify(store.conn)
    assert problem is not None and problem.run_id == b


def test_a_rewritten_entry_breaks_the_chain(store: Store, tiny: Path) -> None:
    _two_runs(store, tiny)
    store.conn.execute("UPDATE run_log SET results_hash = 'x' WHERE seq = 1")
    _, problem = audit.verify(store.conn)
    assert problem is not None and problem.seq == 1 and "entry altered" in problem.reason
    store.conn.execute("DELETE FROM run_log WHERE seq = 1")
    _, problem = audit.verify(store.conn)
    assert problem is not None and problem.seq == 2 and "chain broken" in problem.reason


def test_verify_command_exit_codes(store: Store, tiny: Path) -> None:
    a, _ = _two_runs(store, tiny)
    ok = CliRunner().invoke(main, ["verify", "--db", str(store.path)])
    assert ok.exit_code == 0 and "2 entries verified" in ok.output
    store.conn.execute(
        "UPDATE results SET output = 'forged' WHERE run_id = ? AND case_id = 'c000'", (a,)
    )
    bad = CliRunner().invoke(main, ["verify", "--db", str(store.path)])
    assert bad.exit_code == 1 and a in bad.output
