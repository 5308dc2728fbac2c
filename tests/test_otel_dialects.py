"""Spans of three real instrumentations of the openai client, in files and live over OTLP/HTTP.

``tests/data/otel/LIB.jsonl`` are real spans (made by ``tests/otel_capture.py`` against the
demo server): the official openai-v2, OpenLLMetry and OpenInference each name the model,
tokens, streaming, finish reasons and errors their own way, and each must land in the same
columns. The live tests run the same script with the real ``openai`` client, the library's
instrumentor and the real ``OTLPSpanExporter`` (protobuf) against ``Receiver``, and check the
store against what the server answered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from workbench.demo.server import DemoServer
from workbench.store import Store
from workbench.traces import Receiver, ingest

HERE = Path(__file__).parent
DATA = HERE / "data" / "otel"
LIBS = ("openai-v2", "openllmetry", "openinference")
# OpenLLMetry flags every call; OpenInference's invocation parameters say stream or not; the
# official instrumentation records no streaming flag at all.
STREAM_KNOWN = {"openai-v2": False, "openllmetry": True, "openinference": True}
# The first-token events: OpenLLMetry's chunk events, OpenInference's "First Token Stream Event".
TTFT_KNOWN = {"openai-v2": False, "openllmetry": True, "openinference": True}


def llm_rows(store: Store) -> list[dict[str, Any]]:
    store.conn.row_factory = None
    cursor = store.conn.execute("SELECT * FROM spans WHERE span_class = 'llm' ORDER BY start_ns")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def check(store: Store, lib: str, expected: dict[str, Any]) -> None:
    """The store holds what the server answered, in the same columns whichever library."""
    total = store.conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    assert total == expected["spans_ended"]
    rows = llm_rows(store)
    assert len(rows) == expected["calls"]
    ok = [r for r in rows if r["status_code"] != "error"]
    failed = [r for r in rows if r["status_code"] == "error"]
    assert (len(ok), len(failed)) == (expected["ok"], expected["errors"])
    assert sum(r["input_tokens"] for r in ok) == expected["input_tokens"]
    assert sum(r["output_tokens"] for r in ok) == expected["output_tokens"]
    assert {r["operation"] for r in rows} == {"chat"}
    assert {r["response_model"] or r["request_model"] for r in ok} == set(expected["models"])
    # the failed call: its model (OpenInference has it only in the invocation parameters)
    # and the error type, the same string from all three
    assert [(r["request_model"], r["error_type"]) for r in failed] == [
        ("no-such-model", "openai.NotFoundError")
    ]
    assert all(json.loads(r["finish_reasons"]) == ["stop"] for r in ok)
    # routes come from the app's server spans
    routes = sorted(r["route"] for r in rows)
    assert routes == ["/api/search"] * expected["streamed"] + ["/api/triage"] * (
        expected["calls"] - expected["streamed"]
    )
    streamed = [r for r in ok if r["route"] == "/api/search"]
    plain = [r for r in rows if r["route"] == "/api/triage"]
    if STREAM_KNOWN[lib]:
        assert [r["stream"] for r in streamed] == [1] * expected["streamed"]
        assert {r["stream"] for r in plain} == {0}
    else:
        assert {r["stream"] for r in rows} == {None}
    if TTFT_KNOWN[lib]:
        assert all(0 < r["ttft_ms"] <= r["duration_ms"] for r in streamed)
    assert {r["ttft_ms"] for r in plain} == {None}


@pytest.mark.parametrize("lib", LIBS)
def test_real_spans_from_a_file_land_in_the_same_columns(lib: str, tmp_path: Path) -> None:
    expected = json.loads((DATA / f"{lib}.expected.json").read_text())
    with Store(tmp_path / "wb.db") as store:
        report = ingest(store, [DATA / f"{lib}.jsonl"])
        assert (report.stored, report.skipped) == (expected["spans_ended"], 0)
        check(store, lib, expected)


@pytest.fixture(scope="module")
def model_server() -> Any:
    with DemoServer() as server:
        yield server


@pytest.mark.parametrize("lib", LIBS)
def test_the_real_client_instrumented_exports_live_to_the_receiver(
    lib: str, tmp_path: Path, model_server: DemoServer
) -> None:
    db = tmp_path / "wb.db"
    with Receiver(db, port=0) as receiver:
        done = subprocess.run(
            [
                sys.executable,
                str(HERE / "otel_capture.py"),
                lib,
                "--base-url",
                model_server.url,
                "--otlp",
                receiver.endpoint,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        stats = receiver.stats
    answered = json.loads(done.stdout.strip().splitlines()[-1])
    assert (answered["calls"], answered["ok"], answered["streamed"]) == (6, 5, 2)
    assert (stats.stored, stats.rejected, dict(stats.refused)) == (answered["spans_ended"], 0, {})
    with Store(db) as store:
        check(store, lib, answered)
        sources = {s for (s,) in store.conn.execute("SELECT DISTINCT source FROM spans")}
        assert all(s.startswith("otlp 127.0.0.1 ") for s in sources), sources
