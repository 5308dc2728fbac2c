"""Trace files as batches of rows: plain or gzip, JSON Lines or one document, routes filled."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from workbench.prices import PriceBook
from workbench.text import show_repr
from workbench.traces._mapping import loads, record_rows
from workbench.traces._report import MAX_ERRORS, IngestReport


def gzipped(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open(path: Path) -> io.BufferedIOBase:
    if gzipped(path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _parses(line: bytes) -> bool:
    try:
        loads(line)
    except (ValueError, RecursionError):
        return False
    return True


class Share(NamedTuple):
    """Which lines of a JSON Lines file one of ``parts`` parsers reads: chunk k of about
    ``chunk_bytes`` (whole lines) goes to parser k % parts. Whole documents go to parser 0."""

    part: int = 0
    parts: int = 1
    chunk_bytes: int = 0  # 0: one chunk


_WHOLE = Share()


class NoDigest:
    """Stands in for the sha256 in parsers that do not hash the file (another one does)."""

    def update(self, data: bytes) -> None:
        pass


def _records(
    path: Path, report: IngestReport, digest: Any, share: Share = _WHOLE
) -> Iterator[tuple[str, str, Any] | None]:
    """(where, source, JSON) per record of a file, hashing what is read; bad lines reported.

    With a share of the file, only the records of its chunks, and None after each chunk.
    Every parser reads (and counts) every line, so line numbers stay those of the file.
    """
    name = str(path)
    lineno = 0
    part, parts, chunk_bytes = share
    with _open(path) as f:
        # The chunk being read: its index, its bytes so far, whether it is ours.
        chunk = filled = 0
        mine = part == 0
        try:
            # The first two non-blank lines tell JSON Lines from one (pretty-printed) document.
            seen: list[bytes] = []
            head: list[tuple[int, bytes]] = []
            for raw in f:
                lineno += 1
                digest.update(raw)
                seen.append(raw)
                if raw.strip():
                    head.append((lineno, raw))
                    if len(head) == 2:
                        break
            first = head[0][1].strip() if head else b""
            if (
                first[:1] in (b"{", b"[")
                and not _parses(first)
                and (len(head) < 2 or not _parses(head[1][1]))
            ):
                if mine:
                    rest = f.read()
                    digest.update(rest)
                    yield from _document(name, head[0][0], b"".join(seen) + rest, report)
                return
            if parts == 1:  # the whole file: the plain loop
                for n, raw in head:
                    yield from _line(name, n, raw, report)
                for raw in f:
                    lineno += 1
                    digest.update(raw)
                    if not raw.isspace():
                        yield from _line(name, lineno, raw, report)
                return
            lineno = 0
            for raw in _lines(seen, f, digest):
                lineno += 1
                if mine and not raw.isspace():
                    yield from _line(name, lineno, raw, report)
                filled += len(raw)
                if filled >= chunk_bytes:
                    if mine:
                        yield None
                    chunk += 1
                    filled = 0
                    mine = chunk % parts == part
        except (OSError, EOFError, zlib.error) as exc:
            if mine:  # the chunk where reading stops reports it
                report._error(f"{name}:{lineno + 1}: cannot read further: {_reason(exc)}")


def _lines(seen: list[bytes], rest: Iterator[bytes], digest: Any) -> Iterator[bytes]:
    """The lines already read, then the others, hashed as they are read."""
    yield from seen
    for raw in rest:
        digest.update(raw)
        yield raw


def _document(
    name: str, start: int, data: bytes, report: IngestReport
) -> Iterator[tuple[str, str, Any]]:
    """The records of a whole-file document, or of its lines when it is not one."""
    source = f"{name}:{start}"
    try:
        doc = loads(data)
    except (ValueError, RecursionError) as exc:
        # Not one document: JSON Lines whose first lines are broken, or a broken document.
        lines = IngestReport()
        records = [
            record
            for n, raw in enumerate(data.split(b"\n"), start=1)
            if raw.strip()
            for record in _line(name, n, raw, lines)
        ]
        if any(type(rec) is dict for _, _, rec in records):
            report.skipped += lines.skipped
            report.errors.extend(lines.errors[: MAX_ERRORS - len(report.errors)])
            yield from records
        else:
            at = getattr(exc, "lineno", start)
            report._error(f"{name}:{at}: not valid JSON: {_reason(exc)}")
        return
    if type(doc) is list:
        for i, rec in enumerate(doc):
            yield f"{source}: [{i}]", source, rec
    else:
        yield source, source, doc


def _line(
    name: str, lineno: int, raw: bytes, report: IngestReport
) -> Iterator[tuple[str, str, Any]]:
    try:
        rec = loads(raw)
    except (ValueError, RecursionError) as exc:
        report._error(f"{name}:{lineno}: not valid JSON: {_reason(exc)}")
        return
    where = f"{name}:{lineno}"
    yield where, where, rec


def _reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return show_repr(str(exc) or type(exc).__name__)


class Strict(Exception):
    """The first malformed record of a strict ingest."""


@dataclass
class Batch:
    """Rows ready to insert, grouped by the columns they set, and the traces whose routes are
    settled at the end of the transaction: those left without one, and those that got one
    (their children may have been stored before, without it).

    Binding only the columns a row sets saves binding None, which is slow in CPython's sqlite3;
    a file has few shapes of rows (one or two per kind of span). ``ends_chunk``: the last batch
    of a chunk of a shared file (it may hold no rows).
    """

    shapes: dict[tuple[str, ...], list[tuple[Any, ...]]]
    traces: list[tuple[str]]
    rows: int
    ends_chunk: bool = False


def batches(
    path: Path,
    book: PriceBook,
    batch_size: int,
    strict: bool,
    report: IngestReport,
    digest: Any,
    share: Share = _WHOLE,
) -> Iterator[Batch]:
    """The rows of one file (or of its share) in batches; counts and malformed records go to
    ``report``. With ``strict``, raises Strict at the first malformed record.
    """
    rows: list[dict[str, Any]] = []
    add = rows.append
    for record in _records(path, report, digest, share):
        if record is None:  # the end of a chunk of a shared file
            batch = _batch(rows)
            batch.ends_chunk = True
            yield batch
            rows = []
            add = rows.append
            continue
        where, source, rec = record
        record_rows(rec, where, source, book, report, add)
        if strict and report.skipped:
            raise Strict(report.errors[0])
        if len(rows) >= batch_size:
            yield _batch(rows)
            rows = []
            add = rows.append
    if strict and report.skipped:  # a read error after the last record
        raise Strict(report.errors[0])
    if rows:
        yield _batch(rows)


def _batch(rows: list[dict[str, Any]]) -> Batch:
    traces = _inherit_routes(rows)
    shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        shape = tuple(row)
        group = shapes.get(shape)
        if group is None:
            group = shapes[shape] = []
        group.append(tuple(row.values()))
    return Batch(shapes, traces, len(rows))


def _inherit_routes(rows: list[dict[str, Any]]) -> list[tuple[str]]:
    """Fill routes from the batch's root (or earliest routed) spans; return the traces left
    open and those with a route."""
    best: dict[str, tuple[bool, int, str]] = {}
    for row in rows:
        route = row.get("route")
        if route is not None:
            key = ("parent_span_id" in row, row.get("start_ns", 0), route)
            tid = row["trace_id"]
            if tid not in best or key < best[tid]:
                best[tid] = key
    pending: set[str] = set()
    for row in rows:
        if "route" not in row:
            found = best.get(row["trace_id"])
            if found is None:
                pending.add(row["trace_id"])
            else:
                row["route"] = found[2]
    pending.update(best)
    return [(tid,) for tid in pending]
