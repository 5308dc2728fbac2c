"""Writing spans: one transaction per file (or per call, or per OTLP request), batched
inserts, deferred indexes."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, DatasetError, StoreError
from workbench.prices import Price, PriceBook
from workbench.store import Store, now
from workbench.text import show_repr
from workbench.traces import _pipeline, _proto
from workbench.traces._mapping import loads, record_rows
from workbench.traces._proto import Undecodable
from workbench.traces._read import Batch, Strict, _batch, batches, gzipped
from workbench.traces._report import MAX_ERRORS, IngestReport

_CACHE_KIB = 64 * 1024  # SQLite page cache while ingesting
# A bulk load (at least as many spans as the table holds, and this many) defers the indexes.
_DEFER_MIN_SPANS = 10_000
# Inputs of about this many spans are parsed in child processes (they take ~0.1 s to start).
_PARALLEL_MIN_SPANS = 30_000
_BYTES_PER_SPAN = 500  # an OTLP span with GenAI attributes takes about 600 bytes, a flat one 400
_GZIP_BYTES_PER_SPAN = 60


class _Writer:
    """Batched inserts into ``spans`` inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection, report: IngestReport) -> None:
        self.conn = conn
        self.report = report
        self.added = self.stored = self.failed = 0
        self.sql: dict[tuple[str, ...], str] = {}

    def write(self, batch: Batch) -> None:
        """Insert a batch (duplicates ignored), noting its traces still without a route."""
        self.added += batch.rows
        conn = self.conn
        if batch.traces:
            conn.executemany("INSERT OR IGNORE INTO temp.wb_ingest_traces VALUES (?)", batch.traces)
        conn.execute("SAVEPOINT wb_batch")
        stored = 0
        try:
            for shape, values in batch.shapes.items():
                stored += conn.executemany(self._sql(shape), values).rowcount
        except _BIND_ERRORS:
            # A value SQLite cannot take (e.g. a lone surrogate): find it row by row.
            conn.execute("ROLLBACK TO wb_batch")
            stored = 0
            for shape, values in batch.shapes.items():
                sql, source = self._sql(shape), shape.index("source")
                for row in values:
                    try:
                        stored += conn.execute(sql, row).rowcount
                    except _BIND_ERRORS as exc:
                        self.failed += 1
                        self.report._error(
                            f"{row[source]}: cannot store span: {show_repr(str(exc))}"
                        )
        conn.execute("RELEASE wb_batch")
        self.stored += stored

    def _sql(self, shape: tuple[str, ...]) -> str:
        sql = self.sql.get(shape)
        if sql is None:
            sql = self.sql[shape] = (
                f"INSERT OR IGNORE INTO spans ({', '.join(shape)}) "
                f"VALUES ({', '.join('?' * len(shape))})"
            )
        return sql


_BIND_ERRORS = (sqlite3.InterfaceError, sqlite3.DataError, OverflowError, UnicodeError)


_ROUTE_UPDATE = """
UPDATE spans SET route = (
    SELECT r.route FROM spans AS r
    WHERE r.trace_id = spans.trace_id AND r.route IS NOT NULL
    ORDER BY r.parent_span_id IS NOT NULL, r.start_ns LIMIT 1)
WHERE rowid IN (
    SELECT s.rowid FROM temp.wb_ingest_traces AS t CROSS JOIN spans AS s
    WHERE s.trace_id = t.trace_id AND s.route IS NULL
      AND EXISTS (SELECT 1 FROM spans AS r WHERE r.trace_id = t.trace_id AND r.route IS NOT NULL))
"""


def ingest(
    store: Store,
    paths: Iterable[str | Path] | str | Path,
    *,
    strict: bool = False,
    batch_size: int = 5000,
    prices: Mapping[str, Price] | None = None,
    parallel: bool | None = None,
) -> IngestReport:
    """Ingest trace files into ``spans``; malformed records are skipped, or raise with ``strict``.

    Args:
        paths: OTLP JSON (lines or one document) or flat JSONL spans, plain or gzip.
        strict: raise DatasetError at the first malformed record, leaving the database as it was.
        batch_size: rows per batch of inserts.
        prices: per-model prices over the built-in table (``workbench.prices``).
        parallel: parse in two child processes while this one inserts; by default when the
            files hold about 30,000 spans or more and the machine has two CPUs. Same result
            either way.
    """
    store.require_sqlite("traces")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise ConfigError(f"{path}: {what}; pass trace files (.jsonl, .json, .gz)")
    report = IngestReport()
    book = PriceBook(prices)
    conn = store.conn
    started = time.perf_counter()
    if parallel is None:
        parallel = _pipeline.available() and _estimate(files) >= _PARALLEL_MIN_SPANS
    parser = None
    if parallel:
        try:
            parser = _pipeline.Parser(files, book, batch_size, strict)
        except OSError:  # no interpreter to start: parse here, with the same result
            parser = None
    # Parsed JSON makes millions of short-lived containers and no reference cycles; the
    # cyclic collector would only rescan them (about a fifth of the parse time).
    collecting = gc.isenabled()
    gc.disable()
    # A bigger page cache for the random-order primary key inserts; restored afterwards.
    cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
    try:
        conn.execute(f"PRAGMA cache_size = {-_CACHE_KIB}")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS wb_ingest_traces (trace_id TEXT PRIMARY KEY)")
        try:
            if strict:  # one transaction for the whole call: all files or nothing
                with _transaction(conn, files):
                    for path in files:
                        _ingest_file(conn, path, report, book, batch_size, strict, parser)
            else:  # one transaction per file: never half a file
                for path in files:
                    with _transaction(conn, [path]):
                        _ingest_file(conn, path, report, book, batch_size, strict, parser)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except Strict as exc:
        raise DatasetError(f"{exc} (strict: nothing was ingested)") from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{store.path}: cannot write spans: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"{exc.filename or 'trace file'}: cannot read: {exc.strerror}") from None
    finally:
        if parser is not None:
            parser.close()
        conn.execute(f"PRAGMA cache_size = {int(cache_size)}")
        if collecting:
            gc.enable()
    report.seconds = time.perf_counter() - started
    return report


def ingest_request(
    store: Store,
    body: bytes,
    protobuf: bool,
    *,
    source: str,
    book: PriceBook,
    batch_size: int = 5000,
) -> IngestReport:
    """Store the spans of one OTLP/HTTP request body in one transaction, as ``ingest`` does a
    file: the same mapping, routes and ``INSERT OR IGNORE``, so a retried request is a no-op.

    Args:
        body: an ``ExportTraceServiceRequest``, binary (``protobuf``) or OTLP JSON, decompressed.
        source: the rows' ``source`` and the prefix of error locations.

    Raises:
        Undecodable: the body is not such a message; nothing was written.
        sqlite3.OperationalError: the database is busy or cannot be written; nothing was.
    """
    store.require_sqlite("traces")
    started = time.perf_counter()
    collecting = gc.isenabled()
    gc.disable()  # as in ingest(): many short-lived containers, no cycles
    try:
        report = _request(store, body, protobuf, source, book, batch_size)
    finally:
        if collecting:
            gc.enable()
    report.seconds = time.perf_counter() - started
    return report


def _request(
    store: Store, body: bytes, protobuf: bool, source: str, book: PriceBook, batch_size: int
) -> IngestReport:
    report = IngestReport()
    rows: list[dict[str, Any]] = []
    if protobuf:
        _proto.request_rows(_proto.decode(body), source, source, book, report, rows.append)
    else:
        try:
            doc = loads(body) if body.strip() else {}
        except (ValueError, RecursionError) as exc:
            raise Undecodable(f"not valid JSON: {show_repr(str(exc))}") from None
        if type(doc) is not dict:
            raise Undecodable(f"expected an ExportTraceServiceRequest object, got {show_repr(doc)}")
        if "resourceSpans" in doc:  # else no spans (unknown fields are ignored, as OTLP says)
            record_rows(doc, source, source, book, report, rows.append)
    conn = store.conn
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS wb_ingest_traces (trace_id TEXT PRIMARY KEY)")
    writer = _Writer(conn, report)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM temp.wb_ingest_traces")
        for at in range(0, len(rows), batch_size):
            writer.write(_batch(rows[at : at + batch_size]))
        conn.execute(_ROUTE_UPDATE)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    report.stored = writer.stored
    report.duplicates = writer.added - writer.failed - writer.stored
    return report


def _estimate(files: list[Path]) -> int:
    """About how many spans the files hold, from their sizes."""
    return sum(
        p.stat().st_size // (_GZIP_BYTES_PER_SPAN if gzipped(p) else _BYTES_PER_SPAN) for p in files
    )


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, files: list[Path]) -> Iterator[None]:
    """One write transaction for ``files``; a bulk load rebuilds the secondary indexes at the end.

    Keeping three indexes up to date costs about twice as much per span as building them
    afresh, so when the files hold at least as many spans as the table (estimated from their
    size), the indexes are dropped and created again inside the same transaction: a crash or
    an error rolls the drop back with the rows. The primary key, which makes re-ingest a
    no-op, and any unique index are always kept.
    """
    conn.execute("BEGIN IMMEDIATE")
    estimate = _estimate(files)
    deferred = (
        _drop_indexes(conn) if estimate >= _DEFER_MIN_SPANS and estimate >= _span_rows(conn) else []
    )
    yield
    for sql in deferred:
        conn.execute(sql)
    conn.execute("COMMIT")


def _span_rows(conn: sqlite3.Connection) -> int:
    """About how many rows ``spans`` holds (its largest rowid: no table scan)."""
    return int(conn.execute("SELECT max(rowid) FROM spans").fetchone()[0] or 0)


def _drop_indexes(conn: sqlite3.Connection) -> list[str]:
    """Drop the plain (non-unique) indexes of ``spans``; the SQL that creates them again."""
    plain = [
        name
        for _, name, unique, origin, _ in conn.execute("PRAGMA index_list(spans)")
        if not unique and origin == "c"
    ]
    found: list[str] = []
    for name in plain:
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
        ).fetchone()
        conn.execute(f'DROP INDEX "{name.replace(chr(34), chr(34) * 2)}"')
        found.append(sql)
    return found


def _ingest_file(
    conn: sqlite3.Connection,
    path: Path,
    report: IngestReport,
    book: PriceBook,
    batch_size: int,
    strict: bool,
    parser: _pipeline.Parser | None,
) -> None:
    mine = IngestReport()  # this file's counts, merged into the call's below
    writer = _Writer(conn, mine)
    conn.execute("DELETE FROM temp.wb_ingest_traces")
    if parser is None:
        digest = hashlib.sha256()
        for batch in batches(path, book, batch_size, strict, mine, digest):
            writer.write(batch)
        sha256 = digest.hexdigest()
    else:
        for batch in parser.batches(path, mine):
            writer.write(batch)
        sha256 = parser.sha256
    if strict and mine.skipped:  # a row SQLite refused
        raise Strict(mine.errors[0])
    conn.execute(_ROUTE_UPDATE)
    conn.execute(
        "INSERT OR IGNORE INTO trace_files (sha256, path, spans, skipped, ingested_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (sha256, str(path), writer.stored, mine.skipped, now()),
    )
    report.files += 1
    report.spans_read += mine.spans_read
    report.stored += writer.stored
    report.duplicates += writer.added - writer.failed - writer.stored
    report.skipped += mine.skipped
    report.errors.extend(mine.errors[: MAX_ERRORS - len(report.errors)])
