"""The OTLP/HTTP receiver: the real OTLPSpanExporter in, rows out, and every answer the spec names."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace import Status as SpanStatus

from workbench.demo.telemetry import traces_data
from workbench.errors import ConfigError
from workbench.store import Store
from workbench.traces import TOKEN_ENV, Receiver, ingest

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def make_spans(traces: int = 3) -> list[ReadableSpan]:
    """Real SDK spans of a small app: a routed server span, a chat call, a failed call, a
    streamed call with chunk events; children end (and are exported) before their root."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "receiver-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(traces):
        with tracer.start_as_current_span(
            "POST /api/triage", kind=SpanKind.SERVER, attributes={"http.route": "/api/triage"}
        ):
            with tracer.start_as_current_span("chat triage-v1", kind=SpanKind.CLIENT) as span:
                span.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 100 + i,
                        "gen_ai.usage.output_tokens": 10 + i,
                        "gen_ai.response.finish_reasons": ["stop"],
                    }
                )
            with tracer.start_as_current_span("openai.chat", kind=SpanKind.CLIENT) as span:
                span.set_attributes(
                    {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.is_streaming": True}
                )
                for n in range(3):
                    span.add_event("gen_ai.content.completion.chunk", {"n": n})
                span.set_attribute("gen_ai.usage.output_tokens", 7)
            with tracer.start_as_current_span("chat missing", kind=SpanKind.CLIENT) as span:
                span.set_attributes(
                    {"gen_ai.request.model": "no-such-model", "error.type": "NotFoundError"}
                )
                span.set_status(SpanStatus(StatusCode.ERROR, "model not found"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def body_of(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def span_rows(db: Path) -> list[dict[str, Any]]:
    """Every row of spans but its provenance, in a stable order."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM spans ORDER BY trace_id, span_id")]
    finally:
        conn.close()
    for row in rows:
        del row["source"]
    return rows


def count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "wb.db"
    Store(path).close()
    return path


@pytest.fixture
def receiver(db: Path) -> Iterator[Receiver]:
    with Receiver(db, port=0) as r:
        yield r


def test_the_real_exporter_stores_every_span_once_even_sent_twice(
    receiver: Receiver, db: Path
) -> None:
    spans = make_spans()
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # a retry of the same batch
    exporter.shutdown()
    rows = span_rows(db)
    assert len(rows) == len(spans) == 12
    llm = [r for r in rows if r["span_class"] == "llm"]
    assert sum(r["input_tokens"] or 0 for r in llm) == 100 + 101 + 102
    assert sum(r["output_tokens"] or 0 for r in llm) == 10 + 11 + 12 + 3 * 7
    assert {r["route"] for r in rows} == {"/api/triage"}  # children arrived before their root
    assert receiver.stats.requests == 2
    assert (receiver.stats.stored, receiver.stats.duplicates) == (12, 12)
    streamed = [r for r in rows if r["name"] == "openai.chat"]
    assert all(r["stream"] == 1 and r["ttft_ms"] is not None for r in streamed)
    failed = [r for r in rows if r["status_code"] == "error"]
    assert [r["error_type"] for r in failed] == ["NotFoundError"] * 3


def test_a_json_body_gives_the_same_rows_as_the_protobuf_body(tmp_path: Path) -> None:
    spans = make_spans()
    dbs = []
    for name, body, headers in (
        ("proto.db", body_of(spans), PROTOBUF),
        ("json.db", json.dumps(traces_data(spans)).encode(), JSON),
        ("gzip.db", gzip.compress(body_of(spans)), {**PROTOBUF, "Content-Encoding": "gzip"}),
    ):
        path = tmp_path / name
        with Receiver(path, port=0) as r:
            answer = requests.post(r.endpoint, data=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.content
        dbs.append(path)
    assert span_rows(dbs[0]) == span_rows(dbs[1]) == span_rows(dbs[2])
    # and the file path: the same spans as an OTLP JSON Lines file, through traces ingest
    trace_file = tmp_path / "spans.jsonl"
    trace_file.write_text(json.dumps(traces_data(spans)) + "\n")
    with Store(tmp_path / "file.db") as store:
        ingest(store, [trace_file])
    assert span_rows(tmp_path / "file.db") == span_rows(dbs[0])


def test_the_answers_are_encoded_as_asked(receiver: Receiver) -> None:
    ok = requests.post(receiver.endpoint, data=body_of(make_spans(1)), headers=PROTOBUF)
    assert ok.headers["Content-Type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(ok.content) == ExportTraceServiceResponse()
    ok = requests.post(receiver.endpoint, data=b'{"resourceSpans": []}', headers=JSON)
    assert (ok.status_code, ok.json()) == (200, {})
    empty = requests.post(receiver.endpoint, data=b"", headers=PROTOBUF)
    assert empty.status_code == 200  # an empty message is a valid, empty request


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, "not an OTLP ExportTraceServiceRequest"),
        (b"not json", JSON, "not valid JSON"),
        (b"[1, 2]", JSON, "expected an ExportTraceServiceRequest object"),
        (b"\x1f\x8b\x08garbage", {**PROTOBUF, "Content-Encoding": "gzip"}, "not gzip"),
    ],
)
def test_an_undecodable_body_gets_400_and_changes_nothing(
    receiver: Receiver, db: Path, body: bytes, headers: dict[str, str], reason: str
) -> None:
    requests.post(receiver.endpoint, data=body_of(make_spans(1)), headers=PROTOBUF)
    before = span_rows(db)
    answer = requests.post(receiver.endpoint, data=body, headers=headers, timeout=10)
    assert answer.status_code == 400
    if headers["Content-Type"] == PROTOBUF["Content-Type"]:
        message = Status.FromString(answer.content).message
    else:
        message = answer.json()["message"]
    assert reason in message
    assert span_rows(db) == before
    assert receiver.stats.refused[400] == 1


def test_a_truncated_protobuf_body_gets_400(receiver: Receiver, db: Path) -> None:
    body = body_of(make_spans(1))
    answer = requests.post(receiver.endpoint, data=body[: len(body) // 2], headers=PROTOBUF)
    assert answer.status_code == 400
    assert count(db) == 0


def test_malformed_spans_are_counted_in_partial_success(receiver: Receiver, db: Path) -> None:
    request = encode_spans(make_spans(1))
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].span_id = b"\x01\x02\x03"  # 3 bytes: not a span id
    spans[1].trace_id = b""
    answer = requests.post(receiver.endpoint, data=request.SerializeToString(), headers=PROTOBUF)
    assert answer.status_code == 200
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 2
    assert "span id is 3 bytes, not 8" in partial.error_message
    assert "spans[1]: no trace id" in partial.error_message
    assert count(db) == 2
    json_answer = requests.post(
        receiver.endpoint,
        data=b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
        headers=JSON,
    )
    assert json_answer.json()["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Content-Type": "text/plain"}, "Content-Type text/plain is not supported"),
        ({**PROTOBUF, "Content-Encoding": "br"}, "Content-Encoding br is not supported"),
    ],
)
def test_other_content_types_and_encodings_get_415(
    receiver: Receiver, headers: dict[str, str], reason: str
) -> None:
    answer = requests.post(receiver.endpoint, data=b"x", headers=headers, timeout=10)
    assert answer.status_code == 415
    assert reason in answer.content.decode("utf-8", "replace")


def test_bodies_over_the_limit_get_413_before_and_after_gzip(db: Path) -> None:
    body = body_of(make_spans(3))
    with Receiver(db, port=0, max_body_bytes=len(body) - 1) as r:
        assert requests.post(r.endpoint, data=body, headers=PROTOBUF).status_code == 413
        bomb = gzip.compress(body)  # small on the wire, too big once inflated
        assert len(bomb) < len(body) - 1
        answer = requests.post(
            r.endpoint, data=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}
        )
        assert answer.status_code == 413
        assert "send smaller batches" in Status.FromString(answer.content).message
        # a chunked body (no Content-Length) is cut off at the limit as well
        chunked = requests.post(r.endpoint, data=iter([body[:100], body[100:]]), headers=PROTOBUF)
        assert chunked.status_code == 413
    assert count(db) == 0


def test_a_busy_database_gets_503_and_a_full_queue_429_both_with_retry_after(
    db: Path,
) -> None:
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
    answers: list[requests.Response] = []
    with Receiver(db, port=0, max_pending=1, busy_timeout_s=1.0) as r:
        body = body_of(make_spans(1))
        waiting = threading.Thread(
            target=lambda: answers.append(requests.post(r.endpoint, data=body, headers=PROTOBUF))
        )
        waiting.start()
        deadline = time.monotonic() + 5
        while r._pending == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        throttled = requests.post(r.endpoint, data=body, headers=PROTOBUF)
        waiting.join()
        holder.execute("ROLLBACK")
        retried = requests.post(r.endpoint, data=body, headers=PROTOBUF)
    holder.close()
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "1")
    assert (answers[0].status_code, answers[0].headers["Retry-After"]) == (503, "5")
    assert "the database is busy" in Status.FromString(answers[0].content).message
    assert retried.status_code == 200
    assert count(db) == 4


def test_the_exporter_retries_a_503_until_the_database_is_free(db: Path) -> None:
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(1.5, lambda: holder.execute("ROLLBACK"))
    with Receiver(db, port=0, busy_timeout_s=0.5) as r:
        release.start()
        exporter = OTLPSpanExporter(endpoint=r.endpoint, timeout=30)
        assert exporter.export(make_spans(1)) is SpanExportResult.SUCCESS
        release.join()
        assert r.stats.refused[503] >= 1
    holder.close()
    assert count(db) == 4


def test_a_token_is_required_when_set_and_beyond_loopback(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"binding 0.0.0.0 exposes the receiver.*{TOKEN_ENV}"):
        Receiver(db, "0.0.0.0", port=0)
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token")
    body = body_of(make_spans(1))
    with Receiver(db, port=0) as r:
        bare = requests.post(r.endpoint, data=body, headers=PROTOBUF)
        wrong = requests.post(
            r.endpoint, data=body, headers={**PROTOBUF, "Authorization": "Bearer nope"}
        )
        exporter = OTLPSpanExporter(
            endpoint=r.endpoint, headers={"Authorization": "Bearer s3cret-token"}
        )
        assert exporter.export(make_spans(1)) is SpanExportResult.SUCCESS
        assert "s3cret-token" not in repr(r) + r.stats.render()
    assert (bare.status_code, wrong.status_code) == (401, 401)
    assert bare.headers["WWW-Authenticate"] == "Bearer"
    assert count(db) == 4


def test_a_port_in_use_is_a_clear_error(receiver: Receiver, db: Path) -> None:
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{receiver.port}.*--port"):
        Receiver(db, port=receiver.port).start()


def _serve(db: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``workbench traces serve`` in a child process; its endpoint, from the first line."""
    child = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "traces", "serve", "--port", "0", "--db", str(db)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stderr is not None
    line = child.stderr.readline()
    assert " at http://127.0.0.1:" in line, line
    return child, line.split(" at ")[1].split()[0]


def test_serve_stops_cleanly_on_sigterm_and_prints_what_it_received(db: Path) -> None:
    child, endpoint = _serve(db)
    exporter = OTLPSpanExporter(endpoint=endpoint)
    assert exporter.export(make_spans(2)) is SpanExportResult.SUCCESS
    requests.post(endpoint, data=b"junk", headers=PROTOBUF)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert "received 1 request, 8 spans: 8 stored, 0 duplicates, 0 rejected; refused 1 x 400" in err
    assert count(db) == 8


def test_a_kill_9_loses_nothing_already_answered(db: Path) -> None:
    child, endpoint = _serve(db)
    exporter = OTLPSpanExporter(endpoint=endpoint)
    sent = 0
    for _ in range(20):
        assert exporter.export(make_spans(2)) is SpanExportResult.SUCCESS
        sent += 8
    child.kill()
    child.wait(timeout=30)
    assert count(db) == sent
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_requests_for_other_paths_and_methods_are_refused(receiver: Receiver) -> None:
    assert (
        requests.post(f"{receiver.url}/v1/metrics", data=b"", headers=PROTOBUF).status_code == 404
    )
    assert requests.get(receiver.endpoint).status_code == 405


def test_decode_matches_the_messages_in_the_store(receiver: Receiver, db: Path) -> None:
    spans = make_spans(1)
    request = ExportTraceServiceRequest.FromString(body_of(spans))
    requests.post(receiver.endpoint, data=request.SerializeToString(), headers=PROTOBUF)
    sent = {s.span_id.hex() for s in request.resource_spans[0].scope_spans[0].spans}
    assert {r["span_id"] for r in span_rows(db)} == sent


def test_the_wal_is_checkpointed_beside_the_writer_and_truncated_at_stop(db: Path) -> None:
    wal = db.with_name(db.name + "-wal")
    empty = db.stat().st_size  # the schema alone
    with Receiver(db, port=0) as receiver:
        for i in range(20):
            spans = make_spans(traces=5)
            body = body_of(spans)
            answer = requests.post(receiver.endpoint, data=body, headers=PROTOBUF, timeout=10)
            assert answer.status_code == 200, i
        time.sleep(0.6)  # a few of the checkpointer's rounds
        assert db.stat().st_size > empty + 200_000  # the spans reached the database file,
        # though the writer checkpoints only a WAL of 50,000 pages
        assert count(db) == 20 * 20  # and every committed span reads at once
    assert not wal.exists() or wal.stat().st_size == 0  # truncated when the receiver stopped
    assert count(db) == 400
