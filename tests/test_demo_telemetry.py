"""The demo's OTLP encoding against the SDK's spans: hex ids, shifted times, the ingest's rows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from workbench.demo.telemetry import (
    SCOPE,
    OTLPJsonLinesExporter,
    ShiftedExporter,
    tracer_provider,
    traces_data,
)
from workbench.store import Store
from workbench.traces import ingest

SHIFT = 3 * 7 * 86_400 * 10**9  # three weeks
OTLP_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}


def finished_spans(provider: TracerProvider | None = None) -> list[ReadableSpan]:
    """A SERVER root with typed attributes, a failing CLIENT child with an event, and a
    CONSUMER span linked to the root, as the SDK hands them to an exporter."""
    memory = InMemorySpanExporter()
    if provider is None:
        provider = tracer_provider(memory, environment="test", batch=False)
    else:
        provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(SCOPE, "9.9")
    with tracer.start_as_current_span("POST /x", kind=SpanKind.SERVER) as root:
        root.set_attributes({"s": "text", "i": 2**62, "f": 0.25, "b": True, "ints": [1, 2]})
        with tracer.start_as_current_span("chat m", kind=SpanKind.CLIENT) as child:
            child.add_event("retry", {"attempt": 1})
            child.set_status(StatusCode.ERROR, "boom")
    link = Link(root.get_span_context(), {"why": "follows"})
    with tracer.start_as_current_span("consume", kind=SpanKind.CONSUMER, links=[link]) as span:
        span.set_status(StatusCode.OK)
    provider.shutdown()
    return list(memory.get_finished_spans())


def otlp_spans(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The spans of a TracesData object by their span id."""
    return {
        span["spanId"]: span
        for resource_spans in data["resourceSpans"]
        for scope_spans in resource_spans["scopeSpans"]
        for span in scope_spans["spans"]
    }


def test_file_lines_are_otlp_json_with_hex_ids_and_shifted_times(tmp_path: Path) -> None:
    spans = finished_spans()
    exporter = OTLPJsonLinesExporter(tmp_path / "t.jsonl.gz", shift_ns=SHIFT)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    with gzip.open(tmp_path / "t.jsonl.gz", "rt", encoding="utf-8") as file:
        (line,) = file.read().splitlines()
    data = json.loads(line)
    assert data == traces_data(spans, shift_ns=SHIFT)
    encoded = otlp_spans(data)
    assert len(encoded) == len(spans) == 3
    for span in spans:
        context = span.get_span_context()
        assert context is not None and span.start_time and span.end_time
        out = encoded[f"{context.span_id:016x}"]
        assert out["traceId"] == f"{context.trace_id:032x}"
        if span.parent is None:
            assert "parentSpanId" not in out
        else:
            assert out["parentSpanId"] == f"{span.parent.span_id:016x}"
        assert out["name"] == span.name
        assert out["kind"] == OTLP_KINDS[span.kind]
        assert out["startTimeUnixNano"] == str(span.start_time + SHIFT)
        assert out["endTimeUnixNano"] == str(span.end_time + SHIFT)
        assert out["status"].get("code", 0) == span.status.status_code.value
        assert [(e["name"], e["timeUnixNano"]) for e in out.get("events", [])] == [
            (e.name, str(e.timestamp + SHIFT)) for e in span.events
        ]
        assert [(k["traceId"], k["spanId"]) for k in out.get("links", [])] == [
            (f"{k.context.trace_id:032x}", f"{k.context.span_id:016x}") for k in span.links
        ]
    root = next(s for s in encoded.values() if s["name"] == "POST /x")
    assert root["attributes"] == [
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "i", "value": {"intValue": str(2**62)}},  # 64-bit ints as decimal strings
        {"key": "f", "value": {"doubleValue": 0.25}},
        {"key": "b", "value": {"boolValue": True}},
        {
            "key": "ints",
            "value": {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": "2"}]}},
        },
    ]
    child = next(s for s in encoded.values() if s["name"] == "chat m")
    assert child["status"] == {"code": 2, "message": "boom"}
    assert child["events"][0]["attributes"] == [{"key": "attempt", "value": {"intValue": "1"}}]


def test_the_ingest_stores_the_file_spans_shifted_with_their_attributes(
    store: Store, tmp_path: Path
) -> None:
    spans = finished_spans()
    path = tmp_path / "t.jsonl"
    exporter = ShiftedExporter(OTLPJsonLinesExporter(path), SHIFT)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    report = ingest(store, [path])
    assert (report.stored, report.skipped) == (3, 0)
    cur = store.conn.execute("SELECT * FROM spans ORDER BY start_ns")
    names = [d[0] for d in cur.description]
    rows = {row["span_id"]: row for row in (dict(zip(names, r, strict=True)) for r in cur)}
    for span in spans:
        context = span.get_span_context()
        assert context is not None and span.start_time and span.end_time
        row = rows[f"{context.span_id:016x}"]
        assert row["trace_id"] == f"{context.trace_id:032x}"
        assert row["parent_span_id"] == (span.parent and f"{span.parent.span_id:016x}")
        assert (row["start_ns"], row["end_ns"]) == (span.start_time + SHIFT, span.end_time + SHIFT)
        assert row["kind"] == span.kind.name.lower()
        assert row["status_code"] == span.status.status_code.name.lower()
        assert row["service"] == "workbench-demo-app" and row["environment"] == "test"
    root = next(r for r in rows.values() if r["name"] == "POST /x")
    assert json.loads(root["attributes"]) == {
        "s": "text",
        "i": 2**62,
        "f": 0.25,
        "b": True,
        "ints": [1, 2],
    }
    assert next(r for r in rows.values() if r["name"] == "chat m")["status_message"] == "boom"


def test_shifted_exporter_forwards_shifted_copies_keeping_everything_else() -> None:
    limits = SpanLimits(max_span_attributes=3, max_events=1, max_links=1)
    provider = TracerProvider(span_limits=limits)
    tracer = provider.get_tracer("limited")
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    other = tracer.start_span("other")
    other.end()
    links = [Link(other.get_span_context()), Link(other.get_span_context(), {"n": 2})]
    with tracer.start_as_current_span("busy", links=links) as span:
        span.set_attributes({"a": 1, "b": 2, "c": 3, "d": 4})
        span.add_event("one")
        span.add_event("two", {"x": 1})
    original = memory.get_finished_spans()[-1]
    assert (original.dropped_attributes, original.dropped_events, original.dropped_links) == (
        1,
        1,
        1,
    )
    inner = InMemorySpanExporter()
    exporter = ShiftedExporter(inner, SHIFT)
    assert exporter.export([original]) is SpanExportResult.SUCCESS
    (copy,) = inner.get_finished_spans()
    assert copy is not original
    assert original.start_time and original.end_time
    assert (copy.start_time, copy.end_time) == (
        original.start_time + SHIFT,
        original.end_time + SHIFT,
    )
    assert [(e.name, e.timestamp, dict(e.attributes or {})) for e in copy.events] == [
        (e.name, e.timestamp + SHIFT, dict(e.attributes or {})) for e in original.events
    ]
    same = (
        "name",
        "context",
        "parent",
        "resource",
        "kind",
        "status",
        "links",
        "instrumentation_scope",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
    )
    assert {f: getattr(copy, f) for f in same} == {f: getattr(original, f) for f in same}
    assert dict(copy.attributes or {}) == dict(original.attributes or {})
    assert copy.to_json() != original.to_json()  # only the times differ, and they do
    # Shifting by nothing forwards the spans themselves; shutdown reaches the inner exporter.
    ShiftedExporter(inner, 0).export([original])
    assert inner.get_finished_spans()[-1] is original
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert exporter.export([original]) is SpanExportResult.FAILURE


@pytest.mark.parametrize("shift_ns", [0, SHIFT, -SHIFT])
def test_the_file_exporter_and_the_shifted_exporter_write_the_same(
    tmp_path: Path, shift_ns: int
) -> None:
    spans = finished_spans()
    direct = OTLPJsonLinesExporter(tmp_path / "a.jsonl", shift_ns=shift_ns)
    wrapped = ShiftedExporter(OTLPJsonLinesExporter(tmp_path / "b.jsonl"), shift_ns)
    for exporter in (direct, wrapped):
        exporter.export(spans)
        exporter.shutdown()
    text = (tmp_path / "a.jsonl").read_text(encoding="utf-8")
    assert text == (tmp_path / "b.jsonl").read_text(encoding="utf-8")
    assert f'"startTimeUnixNano":"{spans[0].start_time + shift_ns}"' in text  # type: ignore[operator]
