"""The store: runs, per-case results and per-scorer scores, with numbered migrations.

One database (default ``./workbench.db``, or ``$WORKBENCH_DB``) holds every run: a SQLite
file, the embedded default, or a PostgreSQL database a team shares (``--db
postgresql://USER@HOST:PORT/DATABASE``), through the same schema, migrations and API; what
differs between the two engines lives in ``workbench._dialect``. Each result is committed
the moment it is known, keyed by (run, case, repeat), so a crash loses nothing finished
and a resume never duplicates a row.
The tables are documented in ``docs/schema.md``.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sqlite3
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlite_utils

from workbench import _dialect, audit
from workbench.errors import RunError, StoreError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DEFAULT_DB",
    "MIGRATIONS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "ResultRow",
    "ScoreRow",
    "Store",
    "default_db",
    "default_db_path",
    "git_commit",
    "new_run_id",
    "now",
    "package_versions",
]

T = TypeVar("T")

DEFAULT_DB = "workbench.db"
BUSY_TIMEOUT_MS = 30_000
RUN_STATUSES = ("running", "finished", "failed", "interrupted")
_PACKAGES = ("workbench", "aiohttp", "jsonschema", "rapidfuzz", "wordllama", "pandas", "papermill")

# Each step moves the schema one version up. Never edit a released step: add a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: runs and results
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL DEFAULT 'eval',
        status TEXT NOT NULL,
        reason TEXT,
        dataset TEXT,
        dataset_hash TEXT,
        model TEXT,
        version TEXT,
        target TEXT,
        parameters TEXT,
        git_commit TEXT,
        package_versions TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE TABLE results (
        run_id TEXT NOT NULL REFERENCES runs(id),
        case_id TEXT NOT NULL,
        repeat INTEGER NOT NULL,
        output TEXT,
        parsed TEXT,
        passed INTEGER,
        score REAL,
        latency_ms REAL,
        ttft_ms REAL,
        tokens_in INTEGER,
        tokens_out INTEGER,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, case_id, repeat)
    );
    """,
    # 2: per-scorer scores, finish reason, seed, cost and error kind per result
    """
    CREATE TABLE scores (
        run_id TEXT NOT NULL,
        case_id TEXT NOT NULL,
        repeat INTEGER NOT NULL,
        scorer TEXT NOT NULL,
        score REAL NOT NULL,
        passed INTEGER NOT NULL,
        detail TEXT,
        PRIMARY KEY (run_id, case_id, repeat, scorer),
        FOREIGN KEY (run_id, case_id, repeat) REFERENCES results(run_id, case_id, repeat)
    );
    ALTER TABLE results ADD COLUMN seed INTEGER;
    ALTER TABLE results ADD COLUMN finish_reason TEXT;
    ALTER TABLE results ADD COLUMN error_kind TEXT;
    ALTER TABLE results ADD COLUMN cost_usd REAL;
    """,
    # 3: run-level provenance and summary, lookup indexes
    """
    ALTER TABLE runs ADD COLUMN python_version TEXT;
    ALTER TABLE runs ADD COLUMN base_url TEXT;
    ALTER TABLE runs ADD COLUMN cases INTEGER;
    ALTER TABLE runs ADD COLUMN repeats INTEGER;
    ALTER TABLE runs ADD COLUMN summary TEXT;
    CREATE INDEX idx_runs_dataset ON runs(dataset, started_at);
    CREATE INDEX idx_scores_scorer ON scores(run_id, scorer);
    """,
    # 4: profiles (runs.kind = 'profile') and load tests (runs.kind = 'load')
    """
    CREATE TABLE profiles (
        run_id TEXT PRIMARY KEY REFERENCES runs(id),
        tool TEXT NOT NULL,
        workload TEXT NOT NULL,
        label TEXT,
        duration_s REAL,
        rate_hz REAL,
        samples INTEGER,
        artifacts TEXT
    );
    CREATE TABLE profile_stacks (
        run_id TEXT NOT NULL REFERENCES runs(id),
        stack TEXT NOT NULL,
        samples INTEGER NOT NULL,
        PRIMARY KEY (run_id, stack)
    );
    CREATE TABLE profile_functions (
        run_id TEXT NOT NULL REFERENCES runs(id),
        function TEXT NOT NULL,
        self_samples INTEGER,
        total_samples INTEGER,
        self_share REAL,
        total_share REAL,
        self_s REAL,
        total_s REAL,
        cpu_python_pct REAL,
        cpu_native_pct REAL,
        cpu_system_pct REAL,
        peak_mb REAL,
        malloc_mb REAL,
        PRIMARY KEY (run_id, function)
    );
    CREATE TABLE profile_lines (
        run_id TEXT NOT NULL REFERENCES runs(id),
        file TEXT NOT NULL,
        line INTEGER NOT NULL,
        source TEXT,
        cpu_python_pct REAL,
        cpu_native_pct REAL,
        cpu_system_pct REAL,
        peak_mb REAL,
        malloc_mb REAL,
        PRIMARY KEY (run_id, file, line)
    );
    CREATE TABLE load_results (
        run_id TEXT NOT NULL REFERENCES runs(id),
        seq INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        phase TEXT NOT NULL,
        offset_ms REAL NOT NULL,
        latency_ms REAL,
        ttft_ms REAL,
        status INTEGER,
        error TEXT,
        PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX idx_runs_kind ON runs(kind, started_at);
    """,
    # 5: request traces (OpenTelemetry spans) and the files they came from
    """
    CREATE TABLE spans (
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT,
        name TEXT,
        kind TEXT,
        start_ns INTEGER,
        end_ns INTEGER,
        duration_ms REAL,
        status_code TEXT,
        status_message TEXT,
        error_type TEXT,
        service TEXT,
        environment TEXT,
        route TEXT,
        span_class TEXT,
        tenant TEXT,
        session_id TEXT,
        user_id TEXT,
        operation TEXT,
        provider TEXT,
        request_model TEXT,
        response_model TEXT,
        temperature REAL,
        top_p REAL,
        max_tokens INTEGER,
        seed INTEGER,
        stream INTEGER,
        ttft_ms REAL,
        finish_reasons TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cache_read_tokens INTEGER,
        cache_write_tokens INTEGER,
        reasoning_tokens INTEGER,
        cost_usd REAL,
        cache_layer TEXT,
        cache_key_hash TEXT,
        cache_hit INTEGER,
        cache_similarity REAL,
        obj_bytes INTEGER,
        ttl_s REAL,
        retry_count INTEGER,
        attributes TEXT,
        resource TEXT,
        source TEXT,
        PRIMARY KEY (trace_id, span_id)
    );
    CREATE INDEX idx_spans_route ON spans(route, start_ns);
    CREATE INDEX idx_spans_class ON spans(span_class, start_ns);
    CREATE INDEX idx_spans_cache ON spans(cache_layer, start_ns);
    CREATE TABLE trace_files (
        sha256 TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        spans INTEGER NOT NULL,
        skipped INTEGER NOT NULL,
        ingested_at TEXT NOT NULL
    );
    """,
    # 6: the tamper-evident run log
    """
    CREATE TABLE run_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        results_hash TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        entry_hash TEXT NOT NULL
    );
    """,
    # 7: usage details per result (prompt-cache reads, reasoning tokens)
    """
    ALTER TABLE results ADD COLUMN cached_tokens INTEGER;
    ALTER TABLE results ADD COLUMN reasoning_tokens INTEGER;
    """,
    # 8: model-graded scoring: judge usage per result, the judge answer cache, rescore links
    """
    ALTER TABLE results ADD COLUMN judge_calls INTEGER;
    ALTER TABLE results ADD COLUMN judge_cached INTEGER;
    ALTER TABLE results ADD COLUMN judge_tokens_in INTEGER;
    ALTER TABLE results ADD COLUMN judge_tokens_out INTEGER;
    ALTER TABLE results ADD COLUMN judge_latency_ms REAL;
    ALTER TABLE results ADD COLUMN judge_cost_usd REAL;
    ALTER TABLE runs ADD COLUMN source_run TEXT;
    CREATE TABLE judge_cache (
        key TEXT PRIMARY KEY,
        judge TEXT NOT NULL,
        kind TEXT NOT NULL,
        answer TEXT NOT NULL,
        usage TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 9: tool calls per result (id, name, raw arguments, parsed arguments or the parse error)
    # and a multi-step app's trajectory (its assistant and tool messages)
    """
    ALTER TABLE results ADD COLUMN tool_calls TEXT;
    ALTER TABLE results ADD COLUMN steps TEXT;
    """,
    # 10: prompt versions. A run's cases hash (ids, inputs, expected, tags) and prompt hash
    # (templates, parameters, tools, scorers), its prompt variant's name and the prompt itself
    # (for diffs). Earlier runs take their dataset hash for both: runs that shared a dataset
    # version still pair, and a prompt change before this version still needs --shared.
    """
    ALTER TABLE runs ADD COLUMN cases_hash TEXT;
    ALTER TABLE runs ADD COLUMN prompt_hash TEXT;
    ALTER TABLE runs ADD COLUMN prompt_name TEXT;
    ALTER TABLE runs ADD COLUMN prompt TEXT;
    UPDATE runs SET cases_hash = dataset_hash, prompt_hash = dataset_hash
        WHERE cases_hash IS NULL AND dataset_hash IS NOT NULL;
    CREATE INDEX runs_by_cases ON runs (cases_hash, prompt_hash, target);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_RESULT_COLUMNS = (
    "run_id",
    "case_id",
    "repeat",
    "seed",
    "output",
    "parsed",
    "passed",
    "score",
    "latency_ms",
    "ttft_ms",
    "tokens_in",
    "tokens_out",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "finish_reason",
    "error",
    "error_kind",
    "attempts",
    "judge_calls",
    "judge_cached",
    "judge_tokens_in",
    "judge_tokens_out",
    "judge_latency_ms",
    "judge_cost_usd",
    "tool_calls",
    "steps",
    "created_at",
)
_INSERT_RESULT = (
    f"INSERT INTO results ({', '.join(_RESULT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_RESULT_COLUMNS))}) "
    "ON CONFLICT(run_id, case_id, repeat) DO NOTHING"
)
_INSERT_SCORE = (
    "INSERT INTO scores (run_id, case_id, repeat, scorer, score, passed, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


@dataclass
class ResultRow:
    """One case result, as written to the ``results`` table."""

    run_id: str
    case_id: str
    repeat: int
    seed: int | None = None
    output: str | None = None
    parsed: Any = None
    passed: bool = False
    score: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    finish_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 1
    judge_calls: int | None = None
    judge_cached: int | None = None
    judge_tokens_in: int | None = None
    judge_tokens_out: int | None = None
    judge_latency_ms: float | None = None
    judge_cost_usd: float | None = None
    tool_calls: list[dict[str, Any]] | None = None  # see workbench.tools.stored_calls
    steps: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ScoreRow:
    """One scorer's verdict on one result."""

    scorer: str
    score: float
    passed: bool
    detail: str = ""


def default_db_path() -> Path:
    """The database path: ``$WORKBENCH_DB`` or ``./workbench.db``."""
    return Path(os.environ.get("WORKBENCH_DB") or DEFAULT_DB)


def default_db() -> str:
    """The database: ``$WORKBENCH_DB`` (a path or a ``postgresql://`` URL) or ``./workbench.db``."""
    return os.environ.get("WORKBENCH_DB") or DEFAULT_DB


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261123-103012-a1b2c3``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class Store:
    """A workbench database: open (creating or migrating it) and read or write runs.

    ``path`` is a SQLite file (or ``:memory:``) or a ``postgresql://`` URL; None reads
    ``$WORKBENCH_DB``. On PostgreSQL ``path`` is the URL with any password redacted."""

    engine: str
    path: Path | str

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        target = os.fspath(path) if path is not None else default_db()
        if not _dialect.is_postgres(target) and target.lower().startswith(
            ("postgresql:", "postgres:")
        ):
            raise StoreError(
                f"{target}: not a PostgreSQL URL (a Path folds its //); "
                "pass the URL as a str: postgresql://USER@HOST:PORT/DATABASE"
            )
        if _dialect.is_postgres(target):
            self.engine = "postgresql"
            self.path = _dialect.redact(str(target))
            self.conn: Any = _dialect.connect(str(target))
            self._db: sqlite_utils.Database | None = None
        else:
            self.engine = "sqlite"
            self._open_sqlite(Path(target))
        self._integrity, self._operational, self._database_errors = _dialect.errors(self.engine)
        try:
            self.migrate()
        except BaseException:
            self.conn.close()
            raise

    def _open_sqlite(self, path: Path) -> None:
        self.path = path
        memory = str(self.path) == ":memory:"
        if not memory and self.path.parent and not self.path.parent.exists():
            raise StoreError(
                f"{self.path}: folder {self.path.parent} does not exist; create it or pass another --db"
            )
        try:
            conn = sqlite3.connect(
                ":memory:" if memory else str(self.path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not memory:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open as SQLite: {exc}") from None
        self.conn = conn
        self._db = sqlite_utils.Database(conn)

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils view of a SQLite store (StoreError on PostgreSQL)."""
        if self._db is None:
            raise StoreError(
                f"{self.path}: this needs a SQLite store (sqlite-utils) for now: use --db PATH.db"
            )
        return self._db

    def require_sqlite(self, what: str) -> None:
        """StoreError unless this is a SQLite store: for the parts not ported to PostgreSQL."""
        if self.engine != "sqlite":
            raise StoreError(
                f"{what} need a SQLite store for now: use --db PATH.db "
                f"(this store is PostgreSQL, {self.path})"
            )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a query (SQLite SQL, translated on PostgreSQL) as dicts."""
        if self._db is not None:
            return list(self._db.query(sql, params))
        cur = self.conn.execute(sql, tuple(params))
        names = [c[0] for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Rows of a query as a DataFrame, the same on either engine."""
        return _dialect.read_frame(self.conn, self.engine, sql, params)

    # -- schema -------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The schema version of this database (0 for an empty file)."""
        if not _dialect.table_exists(self.conn, self.engine, "schema_migrations"):
            return 0
        row = self.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Apply the numbered migrations this database lacks, each in its own transaction.

        On PostgreSQL a session advisory lock makes processes that start at once migrate
        one after another (the later ones find nothing left to do)."""
        if self.engine == "postgresql":
            try:
                _dialect.pg_lock(self.conn, _dialect.MIGRATION_LOCK)
            except self._database_errors as exc:
                raise StoreError(f"{self.path}: cannot lock for migrations: {exc}") from None
            try:
                self._migrate(target)
            finally:
                _dialect.pg_unlock(self.conn, _dialect.MIGRATION_LOCK)
        else:
            self._migrate(target)

    def _migrate(self, target: int) -> None:
        try:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = self.schema_version
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {current} is newer than this workbench "
                    f"({SCHEMA_VERSION}); upgrade workbench"
                )
            for version in range(current + 1, target + 1):
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    if self.schema_version >= version:  # another process got there first
                        self.conn.execute("ROLLBACK")
                        continue
                    step = MIGRATIONS[version - 1]
                    if self.engine == "postgresql":
                        step = _dialect.ddl(step)
                    for statement in _statements(step):
                        self.conn.execute(statement)
                    self.conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                        (version, now()),
                    )
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
        except self._database_errors as exc:
            raise StoreError(f"{self.path}: cannot migrate the schema: {exc}") from None

    # -- runs ---------------------------------------------------------------

    def create_run(
        self,
        *,
        dataset: str | None,
        dataset_hash: str | None,
        target: str,
        model: str | None = None,
        version: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        base_url: str | None = None,
        cases: int | None = None,
        repeats: int | None = None,
        kind: str = "eval",
        run_id: str | None = None,
        source_run: str | None = None,
        cases_hash: str | None = None,
        prompt_hash: str | None = None,
        prompt: Mapping[str, Any] | None = None,
    ) -> str:
        """Insert a new run in status ``running`` with its provenance; return its id.

        ``cases_hash`` and ``prompt_hash`` default to ``dataset_hash`` (a run that knows only
        one hash); ``prompt`` is the prompt as sent (templates, parameters, scorers), kept for
        diffs between prompt versions."""
        run_id = run_id or new_run_id()
        row = {
            "id": run_id,
            "kind": kind,
            "status": "running",
            "dataset": dataset,
            "dataset_hash": dataset_hash,
            "cases_hash": cases_hash or dataset_hash,
            "prompt_hash": prompt_hash or dataset_hash,
            "prompt_name": (prompt or {}).get("name"),
            "prompt": json.dumps(dict(prompt), sort_keys=True) if prompt is not None else None,
            "model": model,
            "version": version,
            "target": target,
            "base_url": base_url,
            "parameters": json.dumps(dict(parameters or {}), sort_keys=True),
            "git_commit": git_commit(),
            "package_versions": json.dumps(package_versions(), sort_keys=True),
            "python_version": platform.python_version(),
            "cases": cases,
            "repeats": repeats,
            "source_run": source_run,
            "started_at": now(),
        }
        sql = f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        self._write(lambda: self.conn.execute(sql, tuple(row.values())))
        return run_id

    def reopen_run(self, run_id: str) -> dict[str, Any]:
        """Mark an existing run ``running`` again (for a resume) and return it."""
        run = self.get_run(run_id)
        self._write(
            lambda: self.conn.execute(
                "UPDATE runs SET status = 'running', reason = NULL, finished_at = NULL WHERE id = ?",
                (run_id,),
            )
        )
        return run

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        reason: str | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> None:
        """Close a run with a final status, an optional reason and its summary."""
        if status not in RUN_STATUSES:
            raise StoreError(f"unknown run status {status!r}; use one of {', '.join(RUN_STATUSES)}")
        finished_at = now()
        self._write(
            lambda: self.conn.execute(
                "UPDATE runs SET status = ?, reason = ?, finished_at = ?, summary = ? WHERE id = ?",
                (
                    status,
                    reason,
                    finished_at,
                    json.dumps(summary, sort_keys=True) if summary else None,
                    run_id,
                ),
            )
        )
        if status == "finished":
            kind = self.conn.execute("SELECT kind FROM runs WHERE id = ?", (run_id,)).fetchone()
            self._write(
                lambda: audit.append(self.conn, run_id, kind[0] if kind else "eval", finished_at)
            )

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run's row with JSON columns decoded; RunError naming recent runs if missing."""
        rows = self.query("SELECT * FROM runs WHERE id = ?", [run_id])
        if not rows:
            recent = [r["id"] for r in self.runs(limit=5)]
            hint = f"; recent runs: {', '.join(recent)}" if recent else "; the database has no runs"
            raise RunError(f"no run {run_id!r} in {self.path}{hint}")
        return _decode_run(rows[0])

    def runs(
        self, *, dataset: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Runs, newest first, optionally of one dataset or kind."""
        where, args = [], []
        if dataset:
            where.append("dataset = ?")
            args.append(dataset)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_decode_run(r) for r in self.query(sql, args)]

    # -- results ------------------------------------------------------------

    def record_result(self, row: ResultRow, scores: Iterable[ScoreRow] = ()) -> bool:
        """Write one result and its scores atomically; False if it was already there."""
        values = (
            row.run_id,
            row.case_id,
            row.repeat,
            row.seed,
            row.output,
            None if row.parsed is None else json.dumps(row.parsed, ensure_ascii=False),
            int(bool(row.passed)),
            row.score,
            row.latency_ms,
            row.ttft_ms,
            row.tokens_in,
            row.tokens_out,
            row.cached_tokens,
            row.reasoning_tokens,
            row.cost_usd,
            row.finish_reason,
            row.error,
            row.error_kind,
            row.attempts,
            row.judge_calls,
            row.judge_cached,
            row.judge_tokens_in,
            row.judge_tokens_out,
            row.judge_latency_ms,
            row.judge_cost_usd,
            None if row.tool_calls is None else json.dumps(row.tool_calls, ensure_ascii=False),
            None if row.steps is None else json.dumps(row.steps, ensure_ascii=False),
            now(),
        )
        score_values = [
            (row.run_id, row.case_id, row.repeat, s.scorer, s.score, int(s.passed), s.detail)
            for s in scores
        ]

        def write() -> bool:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                inserted: bool = self.conn.execute(_INSERT_RESULT, values).rowcount == 1
                if inserted and score_values:
                    self.conn.executemany(_INSERT_SCORE, score_values)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return inserted

        return self._write(write)

    def done_keys(self, run_id: str) -> set[tuple[str, int]]:
        """The (case id, repeat) pairs that already have a result in a run."""
        cur = self.conn.execute("SELECT case_id, repeat FROM results WHERE run_id = ?", (run_id,))
        return {(case_id, repeat) for case_id, repeat in cur}

    def result_rows(self, run_id: str) -> list[dict[str, Any]]:
        """A run's results as dicts, ordered by case and repeat."""
        return self.query(
            "SELECT * FROM results WHERE run_id = ? ORDER BY case_id, repeat", [run_id]
        )

    def results_frame(self, run_id: str) -> pd.DataFrame:
        """A run's results as a DataFrame, with ``passed`` as bool and the JSON columns
        (``parsed``, ``tool_calls``, ``steps``) decoded.

        Column types do not depend on which values are missing: numbers are numeric with
        NaN for NULL, text is object with None for NULL (pandas 3 would read NaN, which is
        truthy), and ``parsed`` is None where the output was not JSON or the call errored.
        """
        import pandas as pd

        frame = self.frame(
            "SELECT * FROM results WHERE run_id = ? ORDER BY case_id, repeat", (run_id,)
        )
        kinds = (
            self._db["results"].columns_dict
            if self._db is not None
            else _dialect.column_kinds(self.conn, "results")
        )
        for name, kind in kinds.items():
            column = frame[name]
            if name == "passed":
                frame[name] = pd.to_numeric(column).fillna(0).astype(bool)
            elif name in ("parsed", "tool_calls", "steps"):
                frame[name] = column.map(lambda v: json.loads(v) if isinstance(v, str) else None)
            elif kind is float:
                frame[name] = pd.to_numeric(column).astype(float)
            elif kind is int:
                frame[name] = pd.to_numeric(column)
            else:
                frame[name] = column.astype(object).where(column.notna(), None)
        return frame

    def scores_frame(self, run_id: str) -> pd.DataFrame:
        """A run's per-scorer scores as a DataFrame."""
        frame = self.frame(
            "SELECT * FROM scores WHERE run_id = ? ORDER BY case_id, repeat, scorer", (run_id,)
        )
        frame["passed"] = frame["passed"].astype(bool)
        return frame

    # -- judge answers -------------------------------------------------------

    def judge_answer(self, key: str) -> str | None:
        """A cached judge answer by its content key, or None."""
        row = self.conn.execute("SELECT answer FROM judge_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def save_judge_answer(
        self, key: str, judge: str, kind: str, answer: str, usage: Mapping[str, Any]
    ) -> None:
        """Cache a judge answer under its content key (the first answer stays)."""

        def write() -> None:
            self.conn.execute(
                "INSERT INTO judge_cache (key, judge, kind, answer, usage, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                (key, judge, kind, answer, json.dumps(dict(usage)), now()),
            )

        self._write(write)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._integrity as exc:
            raise StoreError(f"{self.path}: write refused: {exc}") from None
        except self._operational as exc:
            raise StoreError(f"{self.path}: write failed: {exc}") from None


def _statements(script: str) -> Sequence[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _decode_run(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("parameters", "package_versions", "summary", "prompt"):
        value = out.get(key)
        out[key] = json.loads(value) if value else {}
    return out


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The current git commit (with ``-dirty`` when the tree has changes), or None."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a run's results."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
