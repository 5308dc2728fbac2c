"""Properties of the receiver's decoding: one mapping, whichever encoding the spans came in.

For random ``ExportTraceServiceRequest`` messages (any attribute value type, ids of any
length, any kind and status, events), the binary body and its OTLP JSON (protobuf's JSON
mapping with hex ids, as exporters write it) store the same rows, and the rows a file of that
JSON gives through ``traces ingest``. Random bytes are refused as ``Undecodable`` or stored,
never anything else.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from workbench.prices import PriceBook
from workbench.store import Store
from workbench.traces import ingest, ingest_request
from workbench.traces._proto import Undecodable

EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
KEYS = st.sampled_from(
    [
        "http.route",
        "gen_ai.request.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.is_streaming",
        "gen_ai.response.finish_reasons",
        "llm.invocation_parameters",
        "llm.finish_reason",
        "error.type",
        "openinference.span.kind",
        "workbench.cache.hit",
        "custom.thing",
    ]
)
scalars = st.one_of(
    st.text(max_size=20).map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: AnyValue(int_value=n)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: AnyValue(double_value=x)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
)


def _array(values: list[AnyValue]) -> AnyValue:
    value = AnyValue()
    value.array_value.values.extend(values)
    return value


values = st.one_of(scalars, st.lists(scalars, max_size=3).map(_array))


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        group = message.resource_spans.add()
        group.resource.attributes.append(KeyValue(key="service.name", value=draw(scalars)))
        spans = group.scope_spans.add().spans
        for _ in range(draw(st.integers(0, 4))):
            span = spans.add()
            span.trace_id = draw(st.sampled_from([b"\x01" * 16, b"\x02" * 16, b"", b"\x03" * 5]))
            span.span_id = draw(st.binary(min_size=7, max_size=8))
            span.parent_span_id = draw(st.sampled_from([b"", b"\x09" * 8]))
            span.name = draw(st.text(max_size=10))
            span.kind = draw(st.integers(0, 5))
            span.start_time_unix_nano = draw(st.integers(0, 2**62))
            span.end_time_unix_nano = span.start_time_unix_nano + draw(st.integers(0, 10**9))
            span.status.code = draw(st.integers(0, 2))
            span.status.message = draw(st.text(max_size=10))
            for key in draw(st.lists(KEYS, max_size=5, unique=True)):
                span.attributes.append(KeyValue(key=key, value=draw(values)))
            for name in draw(st.lists(st.sampled_from(["exception", "First Token Stream Event"]))):
                event = span.events.add()
                event.name = name
                event.time_unix_nano = span.start_time_unix_nano + draw(st.integers(0, 10**6))
    return message


def otlp_json(message: ExportTraceServiceRequest) -> dict[str, Any]:
    """Protobuf's JSON mapping, with the hex ids OTLP JSON uses."""
    doc: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    for group in doc.get("resourceSpans", []):
        for scope in group.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return doc


def rows(store: Store) -> list[tuple[Any, ...]]:
    store.conn.row_factory = None
    cursor = store.conn.execute("SELECT * FROM spans ORDER BY trace_id, span_id")
    names = [d[0] for d in cursor.description]
    keep = [i for i, n in enumerate(names) if n != "source"]
    return [tuple(row[i] for i in keep) for row in cursor]


@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@EXAMPLES
@given(message=requests())
def test_protobuf_json_and_file_store_the_same_rows(
    folder: Path, message: ExportTraceServiceRequest
) -> None:
    book = PriceBook(None)
    doc = otlp_json(message)
    found = []
    for name in ("proto", "json", "file"):
        db = folder / f"{name}-{id(message)}.db"
        with Store(db) as store:
            if name == "proto":
                report = ingest_request(
                    store, message.SerializeToString(), True, source="x", book=book
                )
            elif name == "json":
                report = ingest_request(
                    store, json.dumps(doc).encode(), False, source="x", book=book
                )
            else:
                path = folder / f"{id(message)}.jsonl"
                path.write_text(json.dumps(doc) + "\n")
                report = ingest(store, [path])
            found.append((rows(store), report.stored, report.skipped))
    assert found[0] == found[1] == found[2]


@EXAMPLES
@given(body=st.binary(max_size=200), protobuf=st.booleans())
def test_random_bodies_are_refused_or_stored_never_anything_else(
    folder: Path, body: bytes, protobuf: bool
) -> None:
    db = folder / "random.db"
    with Store(db) as store:
        before = store.conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        try:
            report = ingest_request(store, body, protobuf, source="x", book=PriceBook(None))
        except Undecodable:
            assert store.conn.execute("SELECT count(*) FROM spans").fetchone()[0] == before
        else:
            after = store.conn.execute("SELECT count(*) FROM spans").fetchone()[0]
            assert after - before == report.stored
        assert not store.conn.in_transaction
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
