"""Fuzzing the trace loaders: mutated records never raise anything but a WorkbenchError.

Each loader (OTLP JSON Lines, whole OTLP documents, gzip files, plain JSONL spans) gets valid
records with random structural mutations: fields dropped or retyped, ids of the wrong length
or bad base64, enum names and integers out of range, huge integers, NaN and Infinity, deep
nesting, huge lines, invalid UTF-8, UTF-16 and latin-1 files, duplicate span ids. Property:
an ingest succeeds or reports each bad record (with the file's name) in its IngestReport, or,
in strict mode, raises a WorkbenchError and leaves the database as it was.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.traces import ingest

EXAMPLES = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DEEP = "__deep__"  # replaced in the JSON text by nesting too deep to build as Python values

TRACE, SPAN, PARENT = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173"

nasty = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, -1, 0, 7, 99]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "\ud800",
            "0" * 32,
            "0" * 16,
            "abc",
            "5b8efff798038103d269b633813fc60",  # 31 hex digits
            "5b8efff798038103d269b633813fc60cc",  # 33
            "eee19b7ec3c1b17",
            "W47/95gDgQPSabYzgT/GDA==",  # base64 of 16 bytes
            "W47/95gDgQPSabYzgT/GDA",
            "7uGbfsPBsXQ=",  # base64 of 8 bytes
            "7uGbfsPBsX!=",
            "!!!!!!!!!!!!!!!!!!!!!!",
            "SPAN_KIND_SERVER",
            "SPAN_KIND_NOPE",
            "STATUS_CODE_ERROR",
            "STATUS_CODE_MAYBE",
            "2025-01-31T12:00:00.5Z",
            "1969-12-31T23:59:59Z",
            "2025-02-30T12:00:00Z",
            "NaN",
            "1e400",
            "9" * 5000,
            DEEP,
        ]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just({"stringValue": 1}),
    st.just({"intValue": "12x"}),
    st.just({"arrayValue": {"values": [{"boolValue": "yes"}]}}),
    st.just({"kvlistValue": {"values": [{"key": "k"}]}}),
    st.just({"bytesValue": "not base64"}),
    st.just({"mystery": 1}),
    st.just({}),
)


def _attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def otlp_span(i: int) -> dict[str, Any]:
    """A valid OTLP span with GenAI attributes."""
    return {
        "traceId": TRACE,
        "spanId": f"{i + 1:016x}",
        "parentSpanId": PARENT if i else "",
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": str(1_760_000_000_000_000_000 + i),
        "endTimeUnixNano": str(1_760_000_000_500_000_000 + i),
        "status": {"code": 1},
        "attributes": [
            _attr("http.route", {"stringValue": "/v1/chat"}),
            _attr("gen_ai.operation.name", {"stringValue": "chat"}),
            _attr("gen_ai.provider.name", {"stringValue": "anthropic"}),
            _attr("gen_ai.request.model", {"stringValue": "claude-sonnet-4"}),
            _attr("gen_ai.request.temperature", {"doubleValue": 0.2}),
            _attr("gen_ai.usage.input_tokens", {"intValue": "1200"}),
            _attr("gen_ai.usage.output_tokens", {"intValue": 80}),
            _attr("gen_ai.usage.cache_read_input_tokens", {"intValue": "900"}),
            _attr(
                "gen_ai.response.finish_reasons",
                {"arrayValue": {"values": [{"stringValue": "stop"}]}},
            ),
            _attr("workbench.cache.hit", {"boolValue": False}),
            _attr("extra", {"kvlistValue": {"values": [_attr("a", {"intValue": "1"})]}}),
        ],
        "events": [
            {"name": "exception", "attributes": [_attr("exception.type", {"stringValue": "E"})]}
        ],
    }


def traces_data(n: int) -> dict[str, Any]:
    """A valid TracesData with n spans."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", {"stringValue": "api"})]},
                "scopeSpans": [
                    {"scope": {"name": "fuzz"}, "spans": [otlp_span(i) for i in range(n)]}
                ],
            }
        ]
    }


def flat_span(i: int) -> dict[str, Any]:
    """A valid span in the plain JSONL format."""
    return {
        "trace_id": TRACE,
        "span_id": f"{i + 1:016x}",
        "parent_span_id": PARENT if i else None,
        "name": "embeddings",
        "kind": "client",
        "start": "2025-01-31T12:00:00.5Z",
        "end_ns": 1_738_324_801_000_000_000,
        "status": {"code": "error", "message": "boom"},
        "service": "api",
        "resource": {"deployment.environment": "test"},
        "attributes": {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 12,
            "llm.invocation_parameters": '{"temperature": 0.1, "seed": 3}',
            "workbench.cache.similarity": 0.93,
        },
    }


def _slots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) inside a JSON value, parents before children."""
    if isinstance(value, dict):
        for key in list(value):
            yield value, key
            yield from _slots(value[key])
    elif isinstance(value, list):
        for i in range(len(value)):
            yield value, i
            yield from _slots(value[i])


@st.composite
def mutated(draw: st.DrawFn, record: Any) -> Any:
    """``record`` with a few random fields dropped, retyped or duplicated."""
    for _ in range(draw(st.integers(0, 3))):
        slots = list(_slots(record))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["drop", "retype", "retype", "dup"]))
        if op == "drop":
            del container[key]
        elif op == "retype":
            container[key] = copy.deepcopy(draw(nasty))  # st.just values are shared
        elif isinstance(container, list):
            container.append(
                copy.deepcopy(container[key])
            )  # a duplicate (e.g. the same span id twice)
    return record


def to_json(record: Any, draw: st.DrawFn, indent: int | None = None) -> bytes:
    """JSON text (NaN and Infinity as bare words), deep nesting spliced in, maybe a huge string."""
    text = json.dumps(record, indent=indent, allow_nan=True)
    if DEEP in text:
        depth = draw(st.sampled_from([300, 1100, 5000]))
        kind = draw(st.sampled_from(["[", '{"kvlistValue":{"values":[{"key":"k","value":']))
        close = "]" if kind == "[" else "}]}}"
        text = text.replace(f'"{DEEP}"', kind * depth + "1" + close * depth)
    if draw(st.integers(0, 40)) == 0:
        text = text.replace('"/v1/chat"', '"' + "x" * 2_000_000 + '"')  # a huge line
    return text.encode()


@st.composite
def garbled(draw: st.DrawFn, data: bytes) -> bytes:
    """The bytes of a file, sometimes re-encoded, cut short or with invalid UTF-8 inside."""
    op = draw(
        st.sampled_from(["none", "none", "none", "utf16", "latin1", "bad-utf8", "cut", "bom"])
    )
    if op == "utf16":
        return data.decode().encode("utf-16")
    if op == "latin1":
        return data.decode().replace("api", "apí").encode("latin-1", "replace")
    if op == "bad-utf8":
        at = draw(st.integers(0, len(data)))
        return (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
            + data[at:]
        )
    if op == "cut":
        return data[: draw(st.integers(0, len(data)))]
    if op == "bom":
        return b"\xef\xbb\xbf" + data
    return data


@st.composite
def otlp_lines(draw: st.DrawFn) -> bytes:
    lines = [
        to_json(draw(mutated(traces_data(draw(st.integers(1, 3))))), draw)
        for _ in range(draw(st.integers(1, 3)))
    ]
    return draw(garbled(b"\n".join(lines) + b"\n"))


@st.composite
def otlp_document(draw: st.DrawFn) -> bytes:
    doc: Any = traces_data(draw(st.integers(1, 3)))
    if draw(st.booleans()):
        doc = [doc, traces_data(1)]
    return draw(garbled(to_json(draw(mutated(doc)), draw, indent=2)))


@st.composite
def flat_lines(draw: st.DrawFn) -> bytes:
    lines = [to_json(draw(mutated(flat_span(i))), draw) for i in range(draw(st.integers(1, 4)))]
    return draw(garbled(b"\n".join(lines) + b"\n"))


@st.composite
def gzip_files(draw: st.DrawFn) -> bytes:
    inner = draw(st.one_of(otlp_lines(), otlp_document(), flat_lines()))
    data = gzip.compress(inner, compresslevel=1)
    op = draw(st.sampled_from(["none", "none", "cut", "flip"]))
    if op == "cut":  # a truncated stream
        return data[: draw(st.integers(2, len(data)))]
    if op == "flip":  # a corrupt byte past the magic
        at = draw(st.integers(2, len(data) - 1))
        return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1 :]
    return data


@pytest.fixture(scope="module")
def fuzz_store() -> Iterator[tuple[Store, Path]]:
    """One store and folder for every example of the module (a fresh one each would be slow)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-traces-") as tmp, Store(Path(tmp) / "f.db") as s:
        yield s, Path(tmp)


def _snapshot(store: Store) -> tuple[int, int, str]:
    conn = store.conn
    spans = conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(span_id)), 0) FROM spans").fetchone()
    files = conn.execute("SELECT COUNT(*) FROM trace_files").fetchone()[0]
    digest = hashlib.sha256(repr(conn.execute("SELECT MAX(rowid) FROM spans").fetchone()).encode())
    return spans[0], files, digest.hexdigest()


def check(fuzz_store: tuple[Store, Path], data: bytes, strict: bool, suffix: str) -> None:
    """The property: a report naming the file for bad records, or a WorkbenchError in strict mode."""
    store, folder = fuzz_store
    name = hashlib.sha256(data + bytes([strict])).hexdigest()[:16]
    path = folder / f"{name}{suffix}"
    path.write_bytes(data)
    before = _snapshot(store)
    try:
        report = ingest(store, [path], strict=strict)
    except WorkbenchError as exc:
        assert strict, f"a non-strict ingest raised {exc!r}"
        assert str(path) in str(exc)
        assert _snapshot(store) == before  # strict: a bad file changes nothing
        event(f"strict refused: {str(exc).removeprefix(str(path))[:28]}")
        return
    finally:
        path.unlink()
    assert report.files == 1
    assert report.skipped >= len(report.errors)
    for error in report.errors:
        assert error.startswith(f"{path}:"), error
    if strict:
        assert report.skipped == 0
    event("clean" if not report.skipped else f"reported: {report.errors[0].split(': ', 1)[1][:24]}")
    assert not store.conn.in_transaction
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"


@EXAMPLES
@given(data=otlp_lines(), strict=st.booleans())
def test_fuzz_otlp_json_lines(fuzz_store: tuple[Store, Path], data: bytes, strict: bool) -> None:
    check(fuzz_store, data, strict, ".jsonl")


@EXAMPLES
@given(data=otlp_document(), strict=st.booleans())
def test_fuzz_otlp_documents(fuzz_store: tuple[Store, Path], data: bytes, strict: bool) -> None:
    check(fuzz_store, data, strict, ".json")


@EXAMPLES
@given(data=gzip_files(), strict=st.booleans())
def test_fuzz_gzip_files(fuzz_store: tuple[Store, Path], data: bytes, strict: bool) -> None:
    check(fuzz_store, data, strict, ".jsonl.gz")


@EXAMPLES
@given(data=flat_lines(), strict=st.booleans())
def test_fuzz_plain_jsonl_spans(fuzz_store: tuple[Store, Path], data: bytes, strict: bool) -> None:
    check(fuzz_store, data, strict, ".jsonl")
