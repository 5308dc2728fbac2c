"""A tamper-evident run log: each finished run appends an entry chained to the one before.

An entry holds the run id, a hash of the run's stored results and the hash of the
previous entry; its own hash covers all of them. ``verify`` recomputes every link and
every run's results hash and reports the first entry that no longer matches, so an
edited result, a deleted row or a rewritten log entry is found.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GENESIS",
    "Problem",
    "append",
    "results_hash",
    "verify",
]

GENESIS = "0" * 64
# The rows that make up a run's results, by run kind, in a stable order.
_RESULT_QUERIES = (
    "SELECT case_id, repeat, seed, output, passed, score, latency_ms, tokens_in, tokens_out, "
    "error, attempts FROM results WHERE run_id = ? ORDER BY case_id, repeat",
    "SELECT case_id, repeat, scorer, score, passed, detail FROM scores WHERE run_id = ? "
    "ORDER BY case_id, repeat, scorer",
    "SELECT stack, samples FROM profile_stacks WHERE run_id = ? ORDER BY stack",
    "SELECT function, self_samples, total_samples FROM profile_functions WHERE run_id = ? "
    "ORDER BY function",
    "SELECT seq, endpoint, phase, latency_ms, status, error FROM load_results WHERE run_id = ? "
    "ORDER BY seq",
)


@dataclass(frozen=True)
class Problem:
    """The first entry of the log that no longer matches."""

    seq: int
    run_id: str
    reason: str


def results_hash(conn: sqlite3.Connection, run_id: str) -> str:
    """SHA-256 over every stored row of a run's results, in a canonical order."""
    digest = hashlib.sha256(run_id.encode())
    for query in _RESULT_QUERIES:
        for row in conn.execute(query, (run_id,)):
            digest.update(json.dumps(row, separators=(",", ":"), default=str).encode())
            digest.update(b"\n")
        digest.update(b"|")
    return digest.hexdigest()


def _entry_hash(prev: str, run_id: str, kind: str, finished_at: str, results: str) -> str:
    material = "\x1f".join((prev, run_id, kind, finished_at, results))
    return hashlib.sha256(material.encode()).hexdigest()


def append(conn: sqlite3.Connection, run_id: str, kind: str, finished_at: str) -> str:
    """Append a run's entry to the log (atomically, safe across processes); its hash."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT entry_hash FROM run_log ORDER BY seq DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS
        results = results_hash(conn, run_id)
        entry = _entry_hash(prev, run_id, kind, finished_at, results)
        conn.execute(
            "INSERT INTO run_log (run_id, kind, finished_at, results_hash, prev_hash, entry_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, kind, finished_at, results, prev, entry),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return entry


def verify(conn: sqlite3.Connection) -> tuple[int, Problem | None]:
    """Check the whole chain and every run's latest results hash: (entries, first problem)."""
    rows: list[Any] = conn.execute(
        "SELECT seq, run_id, kind, finished_at, results_hash, prev_hash, entry_hash "
        "FROM run_log ORDER BY seq"
    ).fetchall()
    latest = {run_id: seq for seq, run_id, *_ in rows}
    prev = GENESIS
    for seq, run_id, kind, finished_at, results, prev_hash, entry in rows:
        if prev_hash != prev:
            return len(rows), Problem(
                seq, run_id, "chain broken: previous hash does not match the entry before"
            )
        if _entry_hash(prev_hash, run_id, kind, finished_at, results) != entry:
            return len(rows), Problem(
                seq, run_id, "entry altered: its hash does not match its contents"
            )
        if latest[run_id] == seq and results_hash(conn, run_id) != results:
            return len(rows), Problem(seq, run_id, "results changed since the run finished")
        prev = entry
    return len(rows), None
