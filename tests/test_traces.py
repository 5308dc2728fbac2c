"""Trace ingest: formats, aliases, token normalisation, idempotency, bad input and helpers."""

from __future__ import annotations

import base64
import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import ConfigError, DatasetError, StoreError, WorkbenchError
from workbench.prices import Price, span_cost
from workbench.store import Store
from workbench.traces import MAX_ERRORS, IngestReport, ingest, render_text, spans_frame
from workbench.traces._mapping import _SPEC

TRACE = "5b8efff798038103d269b633813fc60c"
ROOT = "eee19b7ec3c1b174"
CHILD = "eee19b7ec3c1b173"
T0 = 1_700_000_000_000_000_000


# -- helpers ------------------------------------------------------------------------------


def any_value(v: Any) -> dict[str, Any]:
    """An OTLP AnyValue for a Python value (ints as decimal strings, as the spec says)."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {
            "kvlistValue": {"values": [{"key": k, "value": any_value(x)} for k, x in v.items()]}
        }
    return {"stringValue": v}


def otlp_span(
    span_id: str = ROOT,
    parent: str = "",
    attrs: dict[str, Any] | None = None,
    *,
    trace_id: str = TRACE,
    name: str = "span",
    kind: Any = 1,
    start: int = T0,
    ms: float = 10.0,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One OTLP JSON span."""
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(ms * 1e6)),
        "attributes": [{"key": k, "value": any_value(v)} for k, v in (attrs or {}).items()],
        "status": status or {},
    }


def traces_data(spans: list[dict[str, Any]], service: str = "triage-api") -> dict[str, Any]:
    """A TracesData object holding spans under one resource."""
    resource = {
        "attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "deployment.environment", "value": {"stringValue": "test"}},
        ]
    }
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}


def write_lines(path: Path, records: list[Any]) -> Path:
    """A JSON Lines file, one record per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rows(store: Store, where: str = "1", args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Spans as dicts, by span id."""
    cur = store.conn.execute(f"SELECT * FROM spans WHERE {where} ORDER BY span_id", args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]


def check(row: dict[str, Any], **expected: Any) -> None:
    """The row has these column values (a dict diff on failure)."""
    assert {k: row[k] for k in expected} == expected


def one(store: Store, span_id: str) -> dict[str, Any]:
    """The row of one span."""
    (row,) = rows(store, "span_id = ?", (span_id,))
    return row


def ingest_spans(store: Store, tmp_path: Path, *spans: dict[str, Any], **kw: Any) -> IngestReport:
    """Ingest spans written as one OTLP JSON line."""
    return ingest(store, [write_lines(tmp_path / "t.jsonl", [traces_data(list(spans))])], **kw)


def counts(store: Store) -> tuple[int, list[Any]]:
    """Rows in spans and the trace_files table, to compare before and after."""
    n = store.conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
    return n, store.conn.execute("SELECT * FROM trace_files ORDER BY sha256").fetchall()


LLM_ATTRS: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.top_p": 0.9,
    "gen_ai.request.max_tokens": 256,
    "gen_ai.request.seed": 7,
    "gen_ai.request.stream": True,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.response.time_to_first_chunk": 0.25,
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 80,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "session.id": "s1",
    "user.id": "u1",
    "tenant.id": "acme",
    "http.request.resend_count": 2,
}


# -- formats --------------------------------------------------------------------------------


def test_otlp_lines_round_trip_with_hex_ids_and_integer_enums(store: Store, tmp_path: Path) -> None:
    root = otlp_span(ROOT, kind=2, attrs={"http.route": "/v1/triage"}, ms=500)
    error = {"code": 2, "message": "boom"}
    child = otlp_span(CHILD, ROOT, LLM_ATTRS, kind=3, start=T0 + 1000, status=error)
    report = ingest_spans(store, tmp_path, root, child)

    assert (report.files, report.spans_read, report.stored, report.skipped) == (1, 2, 2, 0)
    r = one(store, ROOT)
    check(r, trace_id=TRACE, parent_span_id=None, kind="server", status_code="unset")
    check(r, start_ns=T0, end_ns=T0 + 500_000_000, duration_ms=500.0)
    check(r, service="triage-api", environment="test", route="/v1/triage", span_class="api")
    check(r, source=f"{tmp_path / 't.jsonl'}:1")
    assert json.loads(r["resource"]) == {
        "service.name": "triage-api",
        "deployment.environment": "test",
    }
    c = one(store, CHILD)
    check(c, parent_span_id=ROOT, kind="client", status_code="error", status_message="boom")
    check(c, operation="chat", provider="openai", request_model="gpt-4o-mini")
    check(c, response_model="gpt-4o-mini-2024-07-18", finish_reasons='["stop"]', ttft_ms=250.0)
    check(c, temperature=0.2, top_p=0.9, max_tokens=256, seed=7, stream=1)
    check(c, input_tokens=1200, output_tokens=80, cache_read_tokens=1024, cache_write_tokens=None)
    check(c, session_id="s1", user_id="u1", tenant="acme", retry_count=2)
    # gpt-4o-mini: 0.15 / 0.60 per million, cache reads at half the input price by default
    assert c["cost_usd"] == pytest.approx((176 * 0.15 + 1024 * 0.075 + 80 * 0.60) / 1e6)
    assert json.loads(c["attributes"])["gen_ai.usage.input_tokens"] == 1200


def test_base64_ids_and_enum_names_read_as_lowercase_hex(store: Store, tmp_path: Path) -> None:
    def b64(hex_id: str) -> str:
        return base64.b64encode(bytes.fromhex(hex_id)).decode()

    span = otlp_span(b64(CHILD), b64(ROOT), trace_id=b64(TRACE.upper()), kind="SPAN_KIND_CLIENT")
    span["status"] = {"code": "STATUS_CODE_OK"}
    span["startTimeUnixNano"] = T0  # 64-bit integers as numbers too
    span["endTimeUnixNano"] = T0 + 2_000_000
    ingest_spans(store, tmp_path, span)
    check(one(store, CHILD), trace_id=TRACE, parent_span_id=ROOT, kind="client", status_code="ok")
    check(one(store, CHILD), duration_ms=2.0)


def test_whole_pretty_printed_document_and_gzip(store: Store, tmp_path: Path) -> None:
    pretty = tmp_path / "doc.json"
    pretty.write_text(json.dumps(traces_data([otlp_span(ROOT)]), indent=2), encoding="utf-8")
    zipped = tmp_path / "lines.jsonl.gz"
    with gzip.open(zipped, "wt", encoding="utf-8") as f:
        f.write(json.dumps(traces_data([otlp_span(CHILD, ROOT)])) + "\n")
    report = ingest(store, [pretty, zipped])
    assert (report.files, report.stored, report.skipped) == (2, 2, 0)
    assert one(store, ROOT)["source"] == f"{pretty}:1"
    assert one(store, CHILD)["parent_span_id"] == ROOT


def test_document_that_is_an_array_of_records(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text(json.dumps([traces_data([otlp_span(ROOT)]), {"nope": 1}], indent=1))
    report = ingest(store, [path])
    assert report.stored == 1
    assert report.errors == [
        f"{path}:1: [1]: neither OTLP TracesData (resourceSpans) nor a span (trace_id, span_id)"
    ]


def test_plain_jsonl_spans_with_ns_and_iso_times(store: Store, tmp_path: Path) -> None:
    flat = [
        {
            "trace_id": TRACE,
            "span_id": ROOT,
            "name": "GET /health",
            "kind": "server",
            "start_ns": T0,
            "end_ns": T0 + 3_000_000,
            "status": "ok",
            "service": "svc",
            "attributes": {"http.route": "/health"},
        },
        {
            "trace_id": TRACE,
            "span_id": CHILD,
            "parent_span_id": ROOT,
            "kind": "INTERNAL",
            "start": "2023-11-14T22:13:20.000000001Z",
            "end": "2023-11-14T22:13:20.5+00:00",
            "status": {"code": "ERROR", "message": "x"},
            "attributes": {"workbench.cache.layer": "embedding", "workbench.cache.hit": True},
        },
        {"trace_id": TRACE, "span_id": "eee19b7ec3c1b172", "start_time_unix_nano": str(T0)},
    ]
    report = ingest(store, [write_lines(tmp_path / "flat.jsonl", flat)])
    assert (report.stored, report.skipped) == (3, 0)
    check(one(store, ROOT), kind="server", status_code="ok", service="svc", duration_ms=3.0)
    c = one(store, CHILD)
    check(c, start_ns=T0 + 1, end_ns=T0 + 500_000_000, status_code="error", status_message="x")
    check(c, span_class="cache", cache_hit=1, route="/health")  # the route of its root
    bare = one(store, "eee19b7ec3c1b172")
    check(bare, start_ns=T0, end_ns=None, kind="internal", status_code="unset")


# -- attribute aliases ------------------------------------------------------------------------------


def test_deprecated_genai_names_land_in_the_same_columns(store: Store, tmp_path: Path) -> None:
    old = {
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.prompt_tokens": 300,
        "gen_ai.usage.completion_tokens": 20,
        "gen_ai.usage.cache_read_input_tokens": 128,
        "gen_ai.server.time_to_first_token": 0.5,
        "workbench.route": "/v1/x",
        "workbench.tenant": "t9",
        "workbench.retry_count": 1,
        "deployment.environment.name": "prod",
        "error.type": "timeout",
    }
    ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=old))
    r = one(store, ROOT)
    check(r, provider="openai", request_model="gpt-4o", input_tokens=300, output_tokens=20)
    check(r, cache_read_tokens=128, ttft_ms=500.0, route="/v1/x", tenant="t9", retry_count=1)
    check(r, error_type="timeout", environment="test")  # the resource's environment wins
    check(r, span_class="llm")  # a model and completion tokens, no operation name


def test_new_names_win_over_old_ones_whatever_their_order(store: Store, tmp_path: Path) -> None:
    attrs = {"gen_ai.system": "old", "gen_ai.provider.name": "new", "gen_ai.usage.input_tokens": 5}
    attrs |= {"gen_ai.usage.prompt_tokens": 9}
    ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=attrs))
    check(one(store, ROOT), provider="new", input_tokens=5)


def test_openinference_attributes(store: Store, tmp_path: Path) -> None:
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.provider": "openai",
        "llm.invocation_parameters": json.dumps({"temperature": 0.7, "max_tokens": 64, "seed": 3}),
        "llm.token_count.prompt": 2000,
        "llm.token_count.completion": 50,
        "llm.token_count.total": 2050,
        "llm.token_count.prompt_details.cache_read": 1500,
        "llm.token_count.prompt_details.cache_write": 100,
        "session.id": "sess",
        "user.id": "me",
    }
    ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=attrs))
    r = one(store, ROOT)
    check(r, span_class="llm", provider="openai", request_model="gpt-4o-mini")
    check(r, response_model="gpt-4o-mini", temperature=0.7, max_tokens=64, seed=3)
    check(r, session_id="sess", user_id="me")
    # the prompt details are parts of the prompt count: nothing is added
    check(r, input_tokens=2000, output_tokens=50, cache_read_tokens=1500, cache_write_tokens=100)


def test_openllmetry_attributes(store: Store, tmp_path: Path) -> None:
    attrs = {
        "traceloop.span.kind": "task",
        "llm.request.type": "completion",
        "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.prompt_tokens": 100,
        "llm.usage.total_tokens": 130,
        "llm.is_streaming": True,
        "gen_ai.usage.cache_read_input_tokens": 0,
    }
    ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=attrs))
    r = one(store, ROOT)
    check(r, operation="text_completion", span_class="llm", provider="OpenAI", stream=1)
    check(r, input_tokens=100, output_tokens=30)  # the total fills the missing count
    check(r, cache_read_tokens=0, cache_write_tokens=None)  # 0 when said, NULL when absent


def test_application_cache_attributes(store: Store, tmp_path: Path) -> None:
    attrs = {
        "workbench.cache.layer": "response_semantic",
        "workbench.cache.key_hash": "ab12",
        "workbench.cache.hit": False,
        "workbench.cache.similarity": 0.93,
        "workbench.cache.obj_bytes": 2048,
        "workbench.cache.ttl_s": 3600,
    }
    ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=attrs))
    r = one(store, ROOT)
    check(
        r, cache_layer="response_semantic", cache_key_hash="ab12", cache_hit=0, span_class="cache"
    )
    check(r, cache_similarity=0.93, obj_bytes=2048, ttl_s=3600.0)


def test_every_mapped_column_exists_in_the_schema(store: Store, tmp_path: Path) -> None:
    table = {r[1] for r in store.conn.execute("PRAGMA table_info(spans)")}
    assert {column for column, _, _ in _SPEC} - {"_total"} <= table
    # a span carrying every alias at once stores fine
    values = {
        "_flag": True,
        "_reasons": ["stop"],
        "_text": "x",
        "_span_class": "other",
        "_operation": "chat",
    }
    attrs = {
        key: values.get(conv.__name__, 1.5 if conv.__name__ in ("_float", "_s_to_ms") else 3)
        for _, conv, keys in _SPEC
        for key in keys.split()
    }
    report = ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=attrs))
    assert (report.stored, report.errors) == (1, [])


def test_error_type_from_an_exception_event(store: Store, tmp_path: Path) -> None:
    span = otlp_span(ROOT, status={"code": 2})
    span["events"] = [
        {
            "name": "exception",
            "attributes": [{"key": "exception.type", "value": {"stringValue": "TimeoutError"}}],
        }
    ]
    ingest_spans(store, tmp_path, span)
    assert one(store, ROOT)["error_type"] == "TimeoutError"


# -- tokens and cost ----------------------------------------------------------------------------------


CALL = {"input": 5000, "read": 4000, "write": 600, "output": 300}  # one Claude call: 400 uncached


def test_openai_and_anthropic_style_records_of_one_call_agree(store: Store, tmp_path: Path) -> None:
    common = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4"}
    openai_style = common | {  # a gateway reporting OTel-style: input includes the cache
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": CALL["input"],
        "gen_ai.usage.output_tokens": CALL["output"],
        "gen_ai.usage.cache_read.input_tokens": CALL["read"],
        "gen_ai.usage.cache_creation.input_tokens": CALL["write"],
    }
    anthropic_style = common | {  # the Anthropic API's usage: input excludes the cache
        "gen_ai.system": "anthropic",
        "gen_ai.usage.input_tokens": CALL["input"] - CALL["read"] - CALL["write"],
        "gen_ai.usage.output_tokens": CALL["output"],
        "gen_ai.usage.cache_read_input_tokens": CALL["read"],
        "gen_ai.usage.cache_creation_input_tokens": CALL["write"],
    }
    ingest_spans(
        store,
        tmp_path,
        otlp_span(ROOT, attrs=openai_style),
        otlp_span(CHILD, attrs=anthropic_style),
    )
    a, b = one(store, ROOT), one(store, CHILD)
    tokens = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    assert [a[t] for t in tokens] == [b[t] for t in tokens] == [5000, 300, 4000, 600]
    assert a["cost_usd"] == pytest.approx(b["cost_usd"])
    # claude-sonnet-4: 3 / 15 per million, reads 0.30, writes 3.75
    assert a["cost_usd"] == pytest.approx((400 * 3 + 4000 * 0.30 + 600 * 3.75 + 300 * 15) / 1e6)


def test_anthropic_input_smaller_than_its_cache_is_normalised_whatever_the_names(
    store: Store, tmp_path: Path
) -> None:
    attrs = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-3-5-haiku-20241022",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.cache_read.input_tokens": 900,
    }
    # with OTel's names and a plausible input, the input is taken as including the cache
    plausible = attrs | {"gen_ai.usage.input_tokens": 1000}
    ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=attrs), otlp_span(CHILD, attrs=plausible))
    check(one(store, CHILD), input_tokens=1000, cache_read_tokens=900)
    r = one(store, ROOT)
    check(r, input_tokens=910, cache_read_tokens=900)
    assert r["cost_usd"] == pytest.approx(
        (10 * 0.80 + 900 * 0.08 + 5 * 4.0) / 1e6
    )  # dated name priced


def test_custom_prices_and_the_default_cache_rates(store: Store, tmp_path: Path) -> None:
    prices = {"my-model": Price(input=1.0, output=2.0), "claude-x": Price(10.0, 20.0)}
    attrs = {"gen_ai.request.model": "my-model", "gen_ai.usage.input_tokens": 1000}
    attrs |= {"gen_ai.usage.output_tokens": 100, "gen_ai.usage.cache_read.input_tokens": 1000}
    ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=attrs), prices=prices)
    assert one(store, ROOT)["cost_usd"] == pytest.approx((1000 * 0.5 + 100 * 2.0) / 1e6)
    # Claude-family defaults: reads 0.1x, writes 1.25x the input price
    assert span_cost("claude-x", 300, 0, 100, 100, prices=prices) == pytest.approx(
        (100 * 10 + 100 * 1.0 + 100 * 12.5) / 1e6
    )
    assert span_cost("unknown-model", 10, 10) is None


# -- idempotency, malformed records, strict mode -----------------------------------------------------


def test_ingesting_twice_adds_nothing(store: Store, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "t.jsonl", [traces_data([otlp_span(ROOT), otlp_span(CHILD, ROOT)])]
    )
    first = ingest(store, [path])
    before = counts(store)
    again = ingest(store, [path])
    assert counts(store) == before
    assert (first.stored, again.stored, again.duplicates, again.spans_read) == (2, 0, 2, 2)
    assert before[0] == 2 and len(before[1]) == 1
    sha, name, stored, skipped, _ = before[1][0]
    assert (len(sha), name, stored, skipped) == (64, str(path), 2, 0)


def test_malformed_records_are_reported_with_file_and_line_and_skipped(
    store: Store, tmp_path: Path
) -> None:
    bad_span = otlp_span(CHILD, ROOT, {"gen_ai.usage.input_tokens": "many"})
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(traces_data([otlp_span(ROOT)])),
                "{not json",
                "",
                json.dumps(traces_data([bad_span, otlp_span("eee19b7ec3c1b172", trace_id="abc")])),
                "[1, 2]",
                json.dumps(traces_data([otlp_span("eee19b7ec3c1b171")])),
            ]
        )
        + "\n"
    )
    report = ingest(store, [path])
    assert (report.stored, report.skipped, report.spans_read) == (2, 4, 4)
    prefix = f"{path}:4: resourceSpans[0].scopeSpans[0].spans"
    assert report.errors == [
        f"{path}:2: not valid JSON: Expecting property name enclosed in double quotes at column 2",
        f"{prefix}[0]: attribute gen_ai.usage.input_tokens: expected an integer, got 'many'",
        f"{prefix}[1]: trace id 'abc' is not 32 hex digits or 16 base64 bytes",
        f"{path}:5: expected a JSON object, got [1, 2]",
    ]
    assert store.conn.execute("SELECT skipped FROM trace_files").fetchone()[0] == 4
    text = render_text(report)
    assert text.startswith("ingested 1 file: 4 spans read, 2 stored, 0 duplicates, 4 skipped")
    assert f"{path}:2: not valid JSON" in text


def test_broken_documents_and_broken_first_lines(store: Store, tmp_path: Path) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(traces_data([otlp_span(ROOT)]), indent=2).replace('"name"', "name"))
    report = ingest(store, [doc])
    assert report.stored == 0
    (error,) = report.errors
    assert error.startswith(f"{doc}:") and "not valid JSON: Expecting property name" in error
    assert int(error.split(":")[1]) > 5  # the line of the mistake, deep in the document
    # JSON Lines whose first two lines are broken still read as lines
    lines = tmp_path / "lines.jsonl"
    lines.write_text("{oops\n\n{oops\n" + json.dumps(traces_data([otlp_span(ROOT)])) + "\n")
    report = ingest(store, [lines])
    assert (report.stored, report.skipped) == (1, 2)
    assert [e.split(": ")[0] for e in report.errors] == [f"{lines}:1", f"{lines}:3"]


def test_strict_mode_raises_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    ingest_spans(store, tmp_path, otlp_span(ROOT))
    before = counts(store)
    good = write_lines(tmp_path / "good.jsonl", [traces_data([otlp_span(CHILD, ROOT)])])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(traces_data([otlp_span("eee19b7ec3c1b172")])) + "\n{oops\n")
    with pytest.raises(
        DatasetError, match=rf"{bad}:2: not valid JSON.*strict: nothing was ingested"
    ):
        ingest(store, [good, bad], strict=True)
    assert counts(store) == before
    # the same files without strict keep what is good
    report = ingest(store, [good, bad])
    assert (report.stored, report.skipped, counts(store)[0]) == (2, 1, 3)


def test_a_value_sqlite_refuses_is_reported_not_fatal(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "surrogate.jsonl"
    spans = [otlp_span(CHILD, attrs={"x": 1}), otlp_span(ROOT, name="\ud800"), otlp_span("1" * 16)]
    path.write_text(json.dumps(traces_data(spans)) + "\n")
    report = ingest(store, [path])
    assert (report.stored, report.skipped, report.duplicates, counts(store)[0]) == (2, 1, 0, 2)
    assert report.errors[0].startswith(f"{path}:1: cannot store span")
    with pytest.raises(DatasetError, match="cannot store span"):
        ingest(store, [path], strict=True)


def test_bad_arguments_raise_config_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ingest(store, [tmp_path / "nope.jsonl"])
    with pytest.raises(ConfigError, match="is a folder"):
        ingest(store, [tmp_path])
    with pytest.raises(ConfigError, match="batch_size"):
        ingest(store, [], batch_size=0)


def test_errors_are_capped_but_all_counted(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_text("x\n" * 250)
    report = ingest(store, [path])
    assert (report.skipped, len(report.errors)) == (250, 100)
    assert render_text(report).endswith("... and 150 more malformed records")


# -- routes and classes ---------------------------------------------------------------------------------


def test_children_inherit_the_root_route_in_a_batch_across_batches_and_files(
    store: Store, tmp_path: Path
) -> None:
    root = otlp_span(ROOT, kind=2, attrs={"http.route": "/v1/a"})
    inner = otlp_span("eee19b7ec3c1b170", ROOT, {"http.route": "/inner"}, kind=2, start=T0 + 5)
    children = [otlp_span(f"00000000000000{i:02x}", ROOT, start=T0 + 10) for i in range(1, 5)]
    # children first, one span per batch: the UPDATE at the end of the file fills them
    path = write_lines(tmp_path / "a.jsonl", [traces_data([*children, inner, root])])
    ingest(store, [path], batch_size=1)
    assert {r["span_id"]: r["route"] for r in rows(store)} == {
        **{c["spanId"]: "/v1/a" for c in children},
        "eee19b7ec3c1b170": "/inner",
        ROOT: "/v1/a",
    }
    # a child in a later file than its root
    late = otlp_span("00000000000000ff", ROOT)
    ingest(store, [write_lines(tmp_path / "b.jsonl", [traces_data([late])])])
    assert one(store, "00000000000000ff")["route"] == "/v1/a"
    # another trace without any route stays NULL
    lone = otlp_span(ROOT, trace_id="1" * 32)
    ingest(store, [write_lines(tmp_path / "c.jsonl", [traces_data([lone])])])
    assert rows(store, "trace_id = ?", ("1" * 32,))[0]["route"] is None


@pytest.mark.parametrize(
    ("attrs", "kind", "expected"),
    [
        ({"gen_ai.operation.name": "chat"}, 3, "llm"),
        ({"gen_ai.operation.name": "text_completion"}, 3, "llm"),
        ({"openinference.span.kind": "LLM"}, 1, "llm"),
        ({"gen_ai.operation.name": "embeddings"}, 3, "embedding"),
        ({"openinference.span.kind": "EMBEDDING"}, 1, "embedding"),
        ({"openinference.span.kind": "RETRIEVER"}, 1, "retrieval"),
        ({"workbench.cache.layer": "prompt_template"}, 1, "cache"),
        ({"http.route": "/v1/x"}, 2, "api"),
        ({"http.route": "/v1/x"}, 3, "other"),  # a client call with a route is not our API
        ({"openinference.span.kind": "PROMPT"}, 1, "template"),
        ({"llm.prompt_template.template": "Hi {x}"}, 1, "template"),
        ({"traceloop.span.kind": "workflow"}, 1, "other"),
        ({"workbench.span_class": "Retrieval", "gen_ai.operation.name": "chat"}, 1, "retrieval"),
    ],
)
def test_span_class(
    store: Store, tmp_path: Path, attrs: dict[str, Any], kind: int, expected: str
) -> None:
    ingest_spans(store, tmp_path, otlp_span(ROOT, attrs=attrs, kind=kind))
    assert one(store, ROOT)["span_class"] == expected


def test_unknown_explicit_span_class_is_malformed(store: Store, tmp_path: Path) -> None:
    report = ingest_spans(store, tmp_path, otlp_span(ROOT, attrs={"workbench.span_class": "db"}))
    assert report.stored == 0
    assert "workbench.span_class: 'db' is not one of api, cache, embedding" in report.errors[0]


# -- analysis helper ----------------------------------------------------------------------------------


def test_spans_frame_filters_and_decodes(store: Store, tmp_path: Path) -> None:
    root = otlp_span(ROOT, kind=2, attrs={"http.route": "/v1/a"})
    llm = otlp_span(CHILD, ROOT, LLM_ATTRS, kind=3, start=T0 + 100)
    ingest_spans(store, tmp_path, root, llm)
    frame = spans_frame(store)
    assert list(frame["span_id"]) == [ROOT, CHILD]
    llms = spans_frame(store, span_class="llm", route="/v1/a")
    assert list(llms["span_id"]) == [CHILD]
    assert llms["finish_reasons"].iloc[0] == ["stop"]
    assert bool(llms["stream"].iloc[0]) is True
    assert len(spans_frame(store, since_ns=T0 + 1)) == 1
    assert len(spans_frame(store, until_ns=T0 + 1)) == 1


# -- fuzz -------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_FIELDS = ("traceId", "spanId", "parentSpanId", "kind", "startTimeUnixNano", "status", "attributes")


def _fuzz_ingest(data: bytes, strict: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "f.db") as store:
        path = Path(tmp) / "fuzz.jsonl"
        path.write_bytes(data)
        try:
            report = ingest(store, [path], strict=strict)
        except WorkbenchError:
            assert strict
            assert store.conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == 0
            return
        stored = store.conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
        assert report.stored == stored
        if strict:
            assert report.skipped == 0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=300) | st.binary(max_size=300).map(lambda b: b"\x1f\x8b" + b),
    strict=st.booleans(),
)
def test_fuzz_arbitrary_bytes_raise_only_workbench_errors(data: bytes, strict: bool) -> None:
    _fuzz_ingest(data, strict)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(_FIELDS),
    value=_json,
    attr_value=_json,
    prefix=st.sampled_from(["", "{", "[", "\n\n"]),
    strict=st.booleans(),
)
def test_fuzz_broken_spans_raise_only_workbench_errors(
    field: str, value: Any, attr_value: Any, prefix: str, strict: bool
) -> None:
    span = otlp_span(ROOT, attrs={"gen_ai.usage.input_tokens": 1})
    span[field] = value
    odd = otlp_span(CHILD)
    odd["attributes"] = [{"key": "gen_ai.request.temperature", "value": attr_value}]
    flat = {
        "trace_id": TRACE,
        "span_id": "eee19b7ec3c1b172",
        "attributes": {"gen_ai.request.seed": attr_value},
    }
    text = prefix + "\n".join(json.dumps(r) for r in (traces_data([span, odd]), flat, value)) + "\n"
    _fuzz_ingest(text.encode("utf-8", "surrogatepass"), strict)


def test_a_database_that_refuses_writes_is_a_store_error(store: Store, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [traces_data([otlp_span(ROOT)])])
    store.conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="cannot write spans"):
        ingest(store, [path])
    store.conn.execute("PRAGMA query_only = OFF")
    assert not store.conn.in_transaction
    assert ingest(store, [path]).stored == 1


def test_truncated_gzip_keeps_what_was_read(store: Store, tmp_path: Path) -> None:
    lines = [traces_data([otlp_span(f"00000000000000{i:02x}")]) for i in range(1, 200)]
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in lines).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    report = ingest(store, [path])
    assert 0 < report.stored < 199
    assert report.skipped == 1
    assert "cannot read further" in report.errors[0]
    with pytest.raises(DatasetError, match="cannot read further"):
        ingest(store, [path], strict=True)
    for batch_size in (1, 2, 3):  # two parser processes: the child of the last chunk reports it
        with Store(tmp_path / f"{batch_size}.db") as other:
            shared = ingest(other, [path], batch_size=batch_size, parallel=True)
            assert counts(other)[0] == report.stored
        assert (shared.stored, shared.skipped, shared.errors) == (
            report.stored,
            1,
            report.errors,
        )


# -- the fast paths keep the slow paths' answers ------------------------------------------------


def test_what_orjson_refuses_is_read_by_the_standard_decoder(store: Store, tmp_path: Path) -> None:
    attrs = {"note": "x", "gen_ai.usage.input_tokens": 5}
    line = json.dumps(traces_data([otlp_span(ROOT, attrs=attrs)]))
    # NaN (a bare word), a lone surrogate and an integer past 64 bits: orjson refuses each
    line = line.replace('{"stringValue": "x"}', '{"doubleValue": NaN}')
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n")  # and a byte-order mark
    report = ingest(store, [path])
    assert (report.stored, report.skipped) == (1, 0)
    assert json.loads(one(store, ROOT)["attributes"]) == {
        "note": "NaN",
        "gen_ai.usage.input_tokens": 5,
    }
    big = {"huge": str(2**70), "odd": "\ud800"}
    flat = {"trace_id": TRACE, "span_id": CHILD, "start_ns": T0, "attributes": big}
    report = ingest(store, [write_lines(tmp_path / "flat.jsonl", [flat])])
    assert report.skipped == 1 and "cannot store span" in report.errors[0]  # the surrogate
    flat["attributes"] = {"huge": 2**70 + 1, "gen_ai.usage.input_tokens": 2**70 + 1}
    report = ingest(store, [write_lines(tmp_path / "flat2.jsonl", [flat])])
    assert report.skipped == 1 and "out of the 64-bit range" in report.errors[0]


def test_a_bulk_load_rebuilds_the_indexes_and_keeps_unique_ones(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.traces import _ingest

    monkeypatch.setattr(_ingest, "_DEFER_MIN_SPANS", 1)  # every file is a bulk load
    store.conn.execute("CREATE INDEX mine ON spans(tenant)")
    store.conn.execute("CREATE UNIQUE INDEX mine_unique ON spans(span_id, trace_id)")
    schema = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
    before = store.conn.execute(schema).fetchall()
    spans = [otlp_span(ROOT, attrs={"http.route": "/r"}), otlp_span(CHILD, ROOT)]
    assert ingest_spans(store, tmp_path, *spans).stored == 2
    assert store.conn.execute(schema).fetchall() == before
    assert ingest_spans(store, tmp_path, *spans).duplicates == 2  # re-ingest is still a no-op
    assert one(store, CHILD)["route"] == "/r"
    plan = store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM spans WHERE route = '/r' ORDER BY start_ns"
    ).fetchall()
    assert "idx_spans_route" in str(plan)


# -- the parser process ---------------------------------------------------------------------------


def _mixed_files(folder: Path) -> list[Path]:
    """Files that exercise every path: routes across batches and files, malformed records,
    a duplicate, gzip, a whole document, flat spans and a value SQLite refuses."""
    trace2 = "6b8efff798038103d269b633813fc60c"
    first = [traces_data([otlp_span(f"{i + 1:016x}", ROOT) for i in range(7)])]
    first += [
        "not json",
        {"neither": 1},
        traces_data([otlp_span(ROOT, attrs={"http.route": "/r"})]),
    ]
    first.append(traces_data([otlp_span(CHILD, ROOT, dict(LLM_ATTRS)), {"spanId": "bad"}]))
    a = write_lines(folder / "a.jsonl", first)
    b = folder / "b.jsonl.gz"
    later = [otlp_span("00000000000000aa", ROOT), otlp_span(ROOT, attrs={"http.route": "/r"})]
    b.write_bytes(gzip.compress(json.dumps(traces_data(later), indent=2).encode()))
    flat = [
        {"trace_id": trace2, "span_id": ROOT, "start_ns": T0, "attributes": {"odd": "\ud800"}},
        {
            "trace_id": trace2,
            "span_id": CHILD,
            "parent_span_id": ROOT,
            "start": "2025-01-31T12:00:00Z",
        },
    ]
    c = write_lines(folder / "c.jsonl", flat)
    return [a, b, c]


def _everything(store: Store) -> tuple[Any, ...]:
    spans = store.conn.execute("SELECT * FROM spans ORDER BY trace_id, span_id").fetchall()
    files = store.conn.execute("SELECT sha256, path, spans, skipped FROM trace_files").fetchall()
    return spans, sorted(files)


def test_the_parser_process_gives_the_same_rows_and_report(tmp_path: Path) -> None:
    files = _mixed_files(tmp_path)
    results = []
    for parallel in (False, True):
        with Store(tmp_path / f"{parallel}.db") as store:
            report = ingest(store, files, batch_size=2, parallel=parallel)
            again = ingest(store, files, batch_size=2, parallel=parallel)
            results.append((report.seconds, _everything(store), report, again))
    (_, rows_serial, serial, again_serial), (_, rows_parallel, parallel, again_parallel) = results
    assert rows_parallel == rows_serial and len(rows_serial[0]) == 11
    for one_way, other in ((serial, parallel), (again_serial, again_parallel)):
        one_way.seconds = other.seconds = 0.0
        assert one_way == other
    assert serial.skipped == 4 and [e.split(": ")[0] for e in serial.errors] == [
        f"{files[0]}:2",
        f"{files[0]}:3",
        f"{files[0]}:5",
        f"{files[2]}:1",  # the lone surrogate SQLite refuses
    ]
    assert (again_parallel.stored, again_parallel.duplicates) == (0, 12)


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ((1, 0), r"a\.jsonl:2: expected a JSON object"),  # found by the parser process
        ((1, 2), r"c\.jsonl:1: cannot store span"),  # found by SQLite, in the parent
    ],
)
def test_the_parser_process_in_strict_mode_changes_nothing(
    store: Store, tmp_path: Path, order: tuple[int, int], message: str
) -> None:
    files = _mixed_files(tmp_path)
    before = counts(store)
    with pytest.raises(DatasetError, match=message + ".*strict: nothing was ingested"):
        ingest(store, [files[i] for i in order], strict=True, batch_size=2, parallel=True)
    assert counts(store) == before


def _child_that(monkeypatch: pytest.MonkeyPatch, after: int, how: str, part: int) -> list[Any]:
    """Make parser process ``part`` send ``after`` batches of rows, then fail ``how``;
    the children started, to check on afterwards."""
    from workbench.traces import _pipeline

    code = _pipeline._CHILD_CODE.replace(
        "from workbench.traces._pipeline import _child",
        f"""import os
from workbench.traces import _pipeline
real = _pipeline.batches
def failing(*args):
    sent = 0
    for batch in real(*args):
        if args[-1].part == {part} and sent == {after}:
            {how}
        sent += batch.rows > 0
        yield batch
_pipeline.batches = failing
_child = _pipeline._child""",
    )
    monkeypatch.setattr(_pipeline, "_CHILD_CODE", code)
    started: list[Any] = []
    start = _pipeline._Child.__init__

    def keep(self: Any, job: Any) -> None:
        start(self, job)
        started.append(self.proc)

    monkeypatch.setattr(_pipeline._Child, "__init__", keep)
    return started


@pytest.mark.parametrize(
    ("how", "part", "message"),
    [
        ("os._exit(3)", 0, "parser process exited with code 3"),
        ("os._exit(3)", 1, "parser process exited with code 3"),
        ("os.kill(os.getpid(), 9)", 1, "parser process was killed by signal 9"),
        ("raise MemoryError('out of memory')", 1, "parser process failed: MemoryError"),
    ],
)
def test_a_parser_process_crash_is_an_error_and_rolls_its_file_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, part: int, message: str
) -> None:
    spans = [otlp_span(f"{i + 1:016x}") for i in range(40)]
    path = write_lines(tmp_path / "t.jsonl", [traces_data([span]) for span in spans])
    started = _child_that(monkeypatch, after=2, how=how, part=part)
    with pytest.raises(WorkbenchError, match=message) as caught:
        ingest(store, [path], batch_size=2, parallel=True)
    assert "t.jsonl" in str(caught.value) and "rolled back" in str(caught.value)
    assert counts(store) == (0, [])  # batches of both children had been inserted: rolled back
    assert not store.conn.in_transaction
    assert len(started) == 2 and all(p.returncode is not None for p in started)  # none left
    monkeypatch.undo()
    assert ingest(store, [path], parallel=False).stored == 40


def test_parser_processes_that_cannot_start_leave_the_parsing_here(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second child fails to start: the first is stopped, the file is parsed in-process."""
    import subprocess

    from workbench.traces import _pipeline

    real = subprocess.Popen
    started: list[Any] = []

    def popen(*args: Any, **kw: Any) -> Any:
        if started:
            raise OSError(11, "Resource temporarily unavailable")
        started.append(real(*args, **kw))
        return started[-1]

    monkeypatch.setattr(_pipeline.subprocess, "Popen", popen)
    files = _mixed_files(tmp_path)
    report = ingest(store, files, batch_size=2, parallel=True)
    assert (report.stored, report.skipped) == (11, 4)
    assert len(started) == 1 and started[0].returncode is not None


def test_a_killed_parent_leaves_no_parser_process(tmp_path: Path) -> None:
    """kill -9 of the ingesting process: its parser processes exit when their pipes break."""
    import os
    import signal
    import subprocess
    import sys
    import time

    spans = [otlp_span(f"{i + 1:016x}", attrs={"pad": "x" * 2000}) for i in range(3000)]
    path = write_lines(tmp_path / "big.jsonl", [traces_data([s]) for s in spans])
    script = f"""
import sys, time
from workbench.store import Store
from workbench.traces import _ingest, _pipeline
start = _pipeline._Child.__init__
def started(self, *args):
    start(self, *args)
    print(self.proc.pid, flush=True)
_pipeline._Child.__init__ = started
_ingest._Writer.write = lambda self, batch: time.sleep(3600)  # stuck inserting
with Store({str(tmp_path / "k.db")!r}) as store:
    _ingest.ingest(store, [{str(path)!r}], batch_size=10, parallel=True)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    children = [int(parent.stdout.readline()) for _ in range(2)]
    time.sleep(1.0)  # the children fill their pipes and queues, then block writing

    def state(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return "gone"

    assert all(state(child) in ("S", "R", "D") for child in children)  # there, to be left
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(state(child) in ("Z", "gone") for child in children):  # exited (maybe unreaped)
            break
        time.sleep(0.1)
    else:
        for child in children:
            if state(child) not in ("Z", "gone"):
                os.kill(child, signal.SIGKILL)
        raise AssertionError("a parser process outlived its parent")


# -- two parser processes share a file ----------------------------------------------------------


def _lines_file(folder: Path, name: str, bad_at: set[int], n: int = 240) -> Path:
    """A JSON Lines file of ``n`` lines of various sizes; the lines in ``bad_at`` malformed
    in various ways, every 7th blank. Children sit in later lines than their roots."""
    out = []
    for i in range(1, n + 1):
        trace = f"{i // 5 + 1:032x}"
        if i in bad_at:
            out.append(
                ["{oops", "[1, 2]", '{"neither": 1}', json.dumps(traces_data([{"spanId": "x"}]))][
                    i % 4
                ]
            )
        elif i % 7 == 0:
            out.append("   ")
        elif i % 5 == 0:
            out.append(
                json.dumps(
                    traces_data(
                        [otlp_span(ROOT, attrs={"http.route": f"/r{i}"}, kind=2, trace_id=trace)]
                    )
                )
            )
        else:
            pad = {"pad": "y" * (i * 37 % 900)}
            out.append(json.dumps(traces_data([otlp_span(f"{i:016x}", ROOT, pad, trace_id=trace)])))
    path = folder / name
    path.write_text("\n".join(out) + "\n")
    return path


def test_two_parser_processes_give_the_serial_rows_and_report(tmp_path: Path) -> None:
    """Malformed lines early, in the middle (more than MAX_ERRORS in a row, so the cap falls in
    a chunk of either child) and last; plain and gzip; a batch or a chunk is a few lines."""
    bad = {2, 3, 17, 18, 19, 41} | set(range(60, 190)) | {239, 240}
    plain = _lines_file(tmp_path, "mixed.jsonl", bad)
    zipped = tmp_path / "mixed.jsonl.gz"
    zipped.write_bytes(gzip.compress(_lines_file(tmp_path, "other.jsonl", {1, 100}).read_bytes()))
    assert plain.stat().st_size > 40 * 3 * 500  # many chunks of batch_size=3 for each child
    results = []
    for parallel in (False, True):
        with Store(tmp_path / f"{parallel}.db") as store:
            report = ingest(store, [plain, zipped], batch_size=3, parallel=parallel)
            report.seconds = 0.0
            results.append((_everything(store), report))
            # a child whose root is in an earlier line, maybe another chunk or child
            assert one(store, f"{6:016x}")["route"] == "/r5"
    (rows_serial, serial), (rows_parallel, parallel_) = results
    assert rows_parallel == rows_serial and len(rows_serial[0]) > 150
    assert parallel_ == serial
    assert serial.skipped == len(bad) + 2 and len(serial.errors) == MAX_ERRORS
    lines = [int(e.split(":")[1]) for e in serial.errors]
    assert lines[:6] == [2, 3, 17, 18, 19, 41] and lines == sorted(lines)


@pytest.mark.parametrize("first_bad", [4, 30, 77, 150])
def test_two_parser_processes_in_strict_mode_stop_at_the_first_malformed_line(
    tmp_path: Path, first_bad: int
) -> None:
    path = _lines_file(tmp_path, "strict.jsonl", {first_bad, first_bad + 60, 200})
    messages = []
    for parallel in (False, True):
        with Store(tmp_path / f"{parallel}.db") as store:
            with pytest.raises(DatasetError) as caught:
                ingest(store, [path], strict=True, batch_size=3, parallel=parallel)
            assert counts(store) == (0, [])
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and f"strict.jsonl:{first_bad}:" in messages[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from("ggggbbxw"), max_size=40),
    sizes=st.lists(st.integers(0, 1500), min_size=40, max_size=40),
    batch_size=st.integers(1, 6),
    parts=st.integers(2, 3),
    strict=st.booleans(),
)
def test_shares_merged_in_chunk_order_are_the_serial_reading(
    kinds: list[str], sizes: list[int], batch_size: int, parts: int, strict: bool
) -> None:
    """The parent's merge of in-process children (``_messages``) against ``batches``: the same
    rows in the same order, the same counts and errors, the same strict error, one hash."""
    import hashlib

    from workbench.prices import PriceBook
    from workbench.traces import _pipeline
    from workbench.traces._read import Share, Strict, batches

    lines = []
    for i, (kind, size) in enumerate(zip(kinds, sizes, strict=False)):
        span = otlp_span(f"{i + 1:016x}", attrs={"pad": "z" * size})
        lines.append(
            {"g": json.dumps(traces_data([span])), "b": "{bad", "w": "  ", "x": "[3]"}[kind]
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.jsonl"
        path.write_text("".join(line + "\n" for line in lines))
        book = PriceBook(None)

        def read(make: Any) -> tuple[Any, ...]:
            report = IngestReport()
            got: list[Any] = []
            try:
                for batch in make(report):
                    got.extend(r for rows in batch.shapes.values() for r in rows)
            except Strict as exc:
                return ("strict", str(exc))
            return got, report

        digest = hashlib.sha256()
        serial = read(lambda r: batches(path, book, batch_size, strict, r, digest, Share()))
        parser = object.__new__(_pipeline.Parser)
        parser.sha256 = ""

        class Fake:
            def __init__(self, part: int) -> None:
                share = Share(part, parts, batch_size * _pipeline._CHUNK_BYTES_PER_ROW)
                self.messages = _pipeline._messages([str(path)], book, batch_size, strict, share)

            def receive(self, path: Path) -> Any:
                return next(self.messages)

        parser.children = [Fake(k) for k in range(parts)]  # type: ignore[list-item]
        shared = read(lambda r: parser.batches(path, r))
        assert shared == serial
        if serial[0] != "strict":
            assert parser.sha256 == digest.hexdigest()
