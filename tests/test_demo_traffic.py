"""The demo's OpenTelemetry traces: the OTLP JSON Lines exporter, the app's spans, the traffic
(to a file, and live over OTLP/HTTP to a receiver on loopback)."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from workbench.cli import main as cli_main
from workbench.demo import traffic
from workbench.demo.__main__ import main as demo_main
from workbench.demo.app import AppConfig, AppError, TriageApp
from workbench.demo.server import DemoServer
from workbench.demo.telemetry import (
    SCOPE,
    OTLPJsonLinesExporter,
    PrefixCache,
    tracer_provider,
)
from workbench.errors import ConfigError
from workbench.store import Store
from workbench.traces import TOKEN_ENV

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
DECIMAL = re.compile(r"[0-9]+")
BILLING_TICKET = (
    "I was charged twice this month for our Pro subscription. Please refund the duplicate."
)
CLASSES = {
    "embed ticket": "embedding",
    "embed query": "embedding",
    "retrieve": "retrieval",
    "render_prompt": "template",
    "response_cache": "cache",
    "chat triage-v1": "llm",
    "validate": "other",
}
LAYERS = {
    "embed ticket": "embedding",
    "embed query": "embedding",
    "render_prompt": "prompt_template",
    "response_cache": "response_exact",
}


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of an OTLP JSON Lines file (gzip or plain), parsed."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def value(typed: dict[str, Any]) -> Any:
    """The Python value of an OTLP/JSON AnyValue."""
    ((kind, raw),) = typed.items()
    if kind == "intValue":
        assert isinstance(raw, str) and DECIMAL.fullmatch(raw.lstrip("-")), typed
        return int(raw)
    if kind == "arrayValue":
        return [value(v) for v in raw["values"]]
    assert kind in ("stringValue", "boolValue", "doubleValue"), typed
    return raw


def attributes(item: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a span, resource or event as a dict."""
    return {a["key"]: value(a["value"]) for a in item.get("attributes", [])}


def spans_of(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every span of the file, with its decoded attributes under "attrs", in start order."""
    spans = []
    for line in lines:
        for resource_spans in line["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                spans.extend(scope_spans["spans"])
    for span in spans:
        span["attrs"] = attributes(span)
    return sorted(spans, key=lambda s: int(s["startTimeUnixNano"]))


def duration_ms(span: dict[str, Any]) -> float:
    return (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6


# -- the exporter ---------------------------------------------------------------------------


def make_spans(provider_target: Any) -> Any:
    """A root SERVER span with typed attributes and a failing CLIENT child with an event."""
    provider = tracer_provider(provider_target, environment="test", batch=False)
    tracer = provider.get_tracer(SCOPE, "9.9")
    with tracer.start_as_current_span("POST /x", kind=SpanKind.SERVER) as root:
        root.set_attributes(
            {
                "s": "text",
                "i": 2**62,
                "f": 0.25,
                "b": True,
                "strs": ["a", "b"],
                "ints": [1, 2],
            }
        )
        with tracer.start_as_current_span("chat m", kind=SpanKind.CLIENT) as child:
            child.add_event("retry", {"attempt": 1})
            child.set_status(StatusCode.ERROR, "boom")
        with tracer.start_as_current_span("inner"):
            pass
    return provider


def test_exporter_writes_otlp_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    make_spans(path).shutdown()
    lines = read_lines(path)
    assert len(lines) == 3  # SimpleSpanProcessor: one export, so one line, per span
    for line in lines:
        assert list(line) == ["resourceSpans"]
        (block,) = line["resourceSpans"]
        resource = attributes(block["resource"])
        assert resource["service.name"] == "workbench-demo-app"
        assert resource["deployment.environment"] == "test"
        (scope_spans,) = block["scopeSpans"]
        assert scope_spans["scope"] == {"name": SCOPE, "version": "9.9"}
    child, inner, root = (line["resourceSpans"][0]["scopeSpans"][0]["spans"][0] for line in lines)
    for span in (root, child, inner):
        assert HEX32.fullmatch(span["traceId"]) and HEX16.fullmatch(span["spanId"])
        assert span["traceId"] == root["traceId"]
        for field in ("startTimeUnixNano", "endTimeUnixNano"):
            assert isinstance(span[field], str) and DECIMAL.fullmatch(span[field])
        assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
    assert "parentSpanId" not in root
    assert child["parentSpanId"] == inner["parentSpanId"] == root["spanId"]
    assert (root["kind"], child["kind"], inner["kind"]) == (2, 3, 1)
    # UNSET is the default, which protobuf's JSON mapping (like the Collector) leaves out.
    assert root["status"] == {} and inner["status"] == {}
    assert child["status"] == {"code": 2, "message": "boom"}
    assert root["attributes"][:2] == [
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "i", "value": {"intValue": str(2**62)}},
    ]
    assert attributes(root) == {
        "s": "text",
        "i": 2**62,
        "f": 0.25,
        "b": True,
        "strs": ["a", "b"],
        "ints": [1, 2],
    }
    (event,) = child["events"]
    assert event["name"] == "retry" and DECIMAL.fullmatch(event["timeUnixNano"])
    assert event["attributes"] == [{"key": "attempt", "value": {"intValue": "1"}}]


def test_exporter_writes_one_gzip_line_per_batch_and_fails_after_shutdown(
    tmp_path: Path,
) -> None:
    memory = InMemorySpanExporter()
    make_spans(memory).shutdown()
    finished = memory.get_finished_spans()
    exporter = OTLPJsonLinesExporter(tmp_path / "t.jsonl.gz")
    assert exporter.export(finished) is SpanExportResult.SUCCESS
    assert exporter.export(finished[:1]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert exporter.export(finished) is SpanExportResult.FAILURE
    first, second = read_lines(tmp_path / "t.jsonl.gz")
    assert len(first["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 3
    assert len(second["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 1
    assert (exporter.spans_written, exporter.lines_written) == (4, 2)


def test_exporter_appends_whole_lines_from_many_threads(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    make_spans(memory).shutdown()
    finished = memory.get_finished_spans()
    exporter = OTLPJsonLinesExporter(tmp_path / "t.jsonl")

    def export() -> None:
        for _ in range(50):
            exporter.export(finished)

    threads = [threading.Thread(target=export) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    exporter.shutdown()
    lines = read_lines(tmp_path / "t.jsonl")
    assert len(lines) == 400
    assert len(spans_of(lines)) == exporter.spans_written == 1200


def test_exporter_names_an_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open the trace file"):
        OTLPJsonLinesExporter(tmp_path / "missing" / "t.jsonl")


# -- the prefix cache -------------------------------------------------------------------------


def test_prefix_cache_reads_the_longest_prefix_sent_within_the_ttl() -> None:
    now = [0.0]
    cache = PrefixCache(ttl_s=300, clock=lambda: now[0])
    first = cache.use([("sys", 100), ("sys+a", 400)])
    assert (first.hit, first.read, first.written) == (False, 0, 400)
    other = cache.use([("sys", 100), ("sys+b", 350)])
    assert (other.hit, other.read, other.written) == (True, 100, 250)
    now[0] = 299.0
    again = cache.use([("sys", 100), ("sys+a", 400)])
    assert (again.hit, again.read, again.written) == (True, 400, 0)
    assert again.key_hash == first.key_hash != other.key_hash
    now[0] = 600.0  # 301 s after the last use: expired
    assert cache.use([("sys", 100), ("sys+a", 400)]).hit is False
    assert (cache.hits, cache.lookups) == (2, 4)


def test_prefix_cache_reads_long_prefixes_in_128_token_steps() -> None:
    cache = PrefixCache()
    cache.use([("long", 1500)])
    assert cache.use([("long", 1500)]).read == 1408
    cache.use([("short", 1000)])
    assert cache.use([("short", 1000)]).read == 1000


# -- the app's spans --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_server() -> Iterator[DemoServer]:
    with DemoServer() as server:
        yield server


def test_tracing_off_leaves_results_identical(model_server: DemoServer) -> None:
    memory = InMemorySpanExporter()
    provider = tracer_provider(memory, batch=False)
    config = AppConfig(model_url=model_server.url)
    tickets = [BILLING_TICKET, "I forgot my password and cannot sign in", BILLING_TICKET]
    results = []
    for tracer in (None, provider.get_tracer(SCOPE)):
        with TriageApp(config, tracer=tracer) as app:
            out = [app.triage(t, "chat", tenant="acme") for t in tickets]
            out += [app.search(t, 2, attempt=1) for t in tickets]
            with pytest.raises(AppError):
                app.triage(" ")
            results.append((out, app.stats()))
    assert results[0] == results[1]
    assert len(memory.get_finished_spans()) > 0


def test_a_rejected_request_is_an_unset_root_with_error_type(model_server: DemoServer) -> None:
    memory = InMemorySpanExporter()
    provider = tracer_provider(memory, batch=False)
    config = AppConfig(model_url=model_server.url)
    with TriageApp(config, tracer=provider.get_tracer(SCOPE)) as app, pytest.raises(AppError):
        app.triage("", tenant="acme", attempt=2)
    (root,) = memory.get_finished_spans()
    assert root.name == "POST /api/triage" and root.kind is SpanKind.SERVER
    assert root.status.status_code is StatusCode.UNSET  # a 4xx is the client's error
    assert dict(root.attributes or {}) == {
        "workbench.span_class": "api",
        "http.request.method": "POST",
        "http.route": "/api/triage",
        "tenant.id": "acme",
        "http.request.resend_count": 2,
        "error.type": "invalid_request",
        "http.response.status_code": 400,
    }


# -- the traffic --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[traffic.TrafficReport, list[Any]]:
    """200 requests with 10% model faults, and the spans of the file written."""
    out = tmp_path_factory.mktemp("traffic") / "traces.jsonl"
    report = traffic.generate(out, requests=200, seed=1, fault_rate=0.1)
    return report, spans_of(read_lines(out))


def traces(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        by_trace[span["traceId"]].append(span)
    return by_trace


def test_traffic_writes_one_root_span_per_attempt(run: tuple[Any, list[Any]]) -> None:
    report, spans = run
    assert report.spans == len(spans)
    assert report.attempts == report.requests + report.retries == 200 + report.retries
    roots = [s for s in spans if "parentSpanId" not in s]
    assert len(roots) == len(traces(spans)) == report.attempts
    assert Counter(s["attrs"]["http.route"] for s in roots) == report.routes
    assert set(report.routes) == {"/api/triage", "/api/search"}
    assert report.routes["/api/triage"] > report.routes["/api/search"] > 20
    for root in roots:
        assert root["kind"] == 2 and root["attrs"]["workbench.span_class"] == "api"
        assert root["name"] == f"POST {root['attrs']['http.route']}"
    tenants = Counter(
        s["attrs"]["tenant.id"] for s in roots if "http.request.resend_count" not in s["attrs"]
    )
    assert tenants == report.tenants
    assert set(tenants) == set(traffic.TENANTS)
    assert tenants.most_common(1)[0][0] == "acme"


def test_traffic_child_spans_have_classes_and_cache_layers(run: tuple[Any, list[Any]]) -> None:
    _, spans = run
    names: Counter[tuple[str, ...]] = Counter()
    for trace in traces(spans).values():
        root, *children = trace
        assert "parentSpanId" not in root
        assert all(c["parentSpanId"] == root["spanId"] for c in children)
        names[tuple(c["name"] for c in children)] += 1
        for child in children:
            attrs = child["attrs"]
            assert attrs["workbench.span_class"] == CLASSES[child["name"]]
            assert child["kind"] == (3 if child["name"].startswith("chat") else 1)
            if child["name"] in LAYERS:
                assert attrs["workbench.cache.layer"] == LAYERS[child["name"]]
                assert HEX16.fullmatch(attrs["workbench.cache.key_hash"])
                assert isinstance(attrs["workbench.cache.hit"], bool)
            if child["name"].startswith("embed"):
                size = attrs["workbench.cache.obj_bytes"]
                assert size > 0 and size % attrs["workbench.embedding.passages"] == 0
            if child["name"] == "retrieve":
                top_k = attrs["workbench.retrieval.top_k"]
                assert len(attrs["workbench.retrieval.document_ids"]) == top_k
    search = ("embed query", "retrieve")
    hit = ("embed ticket", "retrieve", "render_prompt", "response_cache")
    miss = (*hit, "chat triage-v1", "validate")
    assert set(names) <= {search, hit, miss, (*hit, "chat triage-v1")}
    assert names[search] and names[hit] and names[miss]


def test_traffic_retries_failed_triage_requests_with_resend_counts(
    run: tuple[Any, list[Any]],
) -> None:
    report, spans = run
    roots = [s for s in spans if "parentSpanId" not in s]
    failed = [r for r in roots if r["status"].get("code") == 2]
    retried = [r for r in roots if "http.request.resend_count" in r["attrs"]]
    assert len(failed) == report.errors > 0
    assert len(retried) == report.retries > 0
    assert {r["attrs"]["http.request.resend_count"] for r in retried} <= {1, 2}
    # Every retry follows a failure of the same route, and nothing but a 5xx is retried.
    for before, after in itertools.pairwise(roots):
        if "http.request.resend_count" in after["attrs"]:
            assert before["status"].get("code") == 2
            assert before["attrs"]["http.route"] == after["attrs"]["http.route"] == "/api/triage"
            assert before["attrs"]["tenant.id"] == after["attrs"]["tenant.id"]
            assert (
                after["attrs"]["http.request.resend_count"]
                == before["attrs"].get("http.request.resend_count", 0) + 1
            )
    by_trace = traces(spans)
    for root in failed:
        assert root["attrs"]["http.response.status_code"] in (502, 504)
        (culprit,) = [c for c in by_trace[root["traceId"]][1:] if c["status"].get("code") == 2]
        assert culprit["attrs"]["error.type"] == root["attrs"]["error.type"]
        assert culprit["status"]["message"] == root["status"]["message"]
    kinds = {r["attrs"]["error.type"] for r in failed}
    assert "model_timeout" in kinds or len(kinds) >= 2


def test_traffic_model_spans_carry_genai_usage_and_provider_cache_reads(
    run: tuple[Any, list[Any]],
) -> None:
    _, spans = run
    chats = [s for s in spans if s["name"] == "chat triage-v1"]
    answered = [s for s in chats if "gen_ai.usage.input_tokens" in s["attrs"]]
    assert len(answered) > 20
    reads = 0
    for span in answered:
        attrs = span["attrs"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "workbench-demo"
        assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == "triage-v1"
        assert attrs["gen_ai.request.temperature"] == 0.0
        assert attrs["gen_ai.response.finish_reasons"] in (["stop"], ["length"])
        assert attrs["gen_ai.usage.output_tokens"] > 0
        read = attrs.get("gen_ai.usage.cache_read.input_tokens", 0)
        written = attrs.get("gen_ai.usage.cache_creation.input_tokens", 0)
        # input_tokens counts the cached prefix too, and the user turn is never cached.
        assert 0 < read + written < attrs["gen_ai.usage.input_tokens"]
        assert attrs["workbench.cache.layer"] == "provider"
        assert attrs["workbench.cache.hit"] is (read > 0)
        reads += read > 0
    assert 0 < reads < len(answered)
    # A system message sent again is read whole: nothing is written, the count is the same.
    seen: dict[str, int] = {}
    for span in answered:
        attrs = span["attrs"]
        key = attrs["workbench.cache.key_hash"]
        if key in seen:
            assert "gen_ai.usage.cache_creation.input_tokens" not in attrs
            assert attrs["gen_ai.usage.cache_read.input_tokens"] == seen[key]
        seen.setdefault(
            key,
            attrs.get("gen_ai.usage.cache_read.input_tokens", 0)
            + attrs.get("gen_ai.usage.cache_creation.input_tokens", 0),
        )
    assert len(seen) < len(answered)  # some system message was sent twice
    truncated = [s for s in answered if s["attrs"]["gen_ai.response.finish_reasons"] == ["length"]]
    assert all(s["attrs"]["error.type"] == "model_truncated" for s in truncated)


def test_traffic_report_matches_the_file(run: tuple[Any, list[Any]]) -> None:
    report, spans = run
    counted = {
        layer: {
            "hits": sum(
                s["attrs"].get("workbench.cache.layer") == layer
                and s["attrs"]["workbench.cache.hit"]
                for s in spans
            ),
            "lookups": sum(s["attrs"].get("workbench.cache.layer") == layer for s in spans),
        }
        for layer in traffic.LAYERS
    }
    assert counted == report.cache
    assert all(0 < c["hits"] < c["lookups"] for c in counted.values())
    for route, p95 in report.p95_ms.items():
        roots = [
            duration_ms(s)
            for s in spans
            if "parentSpanId" not in s and s["attrs"]["http.route"] == route
        ]
        # The root span sits inside the call the report timed.
        assert 0.3 * p95 <= float(np.percentile(roots, 95)) <= p95 + 1.0


def test_traffic_counts_depend_only_on_the_seed(tmp_path: Path) -> None:
    a = traffic.generate(tmp_path / "a.jsonl", requests=60, seed=7, fault_rate=0.2)
    b = traffic.generate(tmp_path / "b.jsonl", requests=60, seed=7, fault_rate=0.2)
    timeless = ("path", "seconds", "p95_ms")
    assert {k: v for k, v in a.to_dict().items() if k not in timeless} == {
        k: v for k, v in b.to_dict().items() if k not in timeless
    }


def test_traffic_cli_prints_the_report_and_writes_gzip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.jsonl.gz"
    argv = ["--requests", "15", "--seed", "2", "--out", str(out), "--fault-rate", "0"]
    assert demo_main(["traffic", *argv]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(out) and report["errors"] == 0
    assert len(spans_of(read_lines(out))) == report["spans"] > 15


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"requests": 0}, "requests"),
        ({"requests": 5, "fault_rate": 1.5}, "fault_rate"),
        ({"requests": 5, "tenants": ()}, "tenants"),
        ({"requests": 5, "tenants": ("a", "a")}, "unique"),
        ({"requests": 5, "retry_limit": -1}, "retry_limit"),
    ],
)
def test_traffic_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        traffic.generate(tmp_path / "t.jsonl", **kwargs)
    assert not (tmp_path / "t.jsonl").exists()


def test_traffic_needs_exactly_one_of_a_file_and_an_otlp_url(tmp_path: Path) -> None:
    for kwargs in ({}, {"out": tmp_path / "t.jsonl", "otlp": "http://127.0.0.1:4318"}):
        with pytest.raises(ConfigError, match="exactly one of out .* or otlp"):
            traffic.generate(requests=5, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="otlp must be an http"):
        traffic.generate(otlp="127.0.0.1:4318", requests=5)
    assert not (tmp_path / "t.jsonl").exists()


def test_both_traffic_command_lines_need_one_of_out_and_otlp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out", str(tmp_path / "t.jsonl")]
    otlp = ["--otlp", "http://127.0.0.1:4318"]
    for extra in ([], [*out, *otlp]):
        result = CliRunner().invoke(cli_main, ["demo", "traffic", "--requests", "5", *extra])
        assert result.exit_code == 2
        assert "give exactly one of --out FILE or --otlp URL" in result.output
        with pytest.raises(SystemExit) as exit_info:
            demo_main(["traffic", "--requests", "5", *extra])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert "--out" in error and "--otlp" in error
    assert not (tmp_path / "t.jsonl").exists()


class Receiver:
    """A minimal OTLP/HTTP traces endpoint on loopback: decodes each protobuf request and
    counts its spans, answering ``status`` (200 with an empty ExportTraceServiceResponse)."""

    def __init__(self) -> None:
        self.status = 200
        self.spans = 0
        self.start_ns: list[int] = []
        self.authorization: list[str | None] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                assert self.path == "/v1/traces"
                assert self.headers["Content-Type"] == "application/x-protobuf"
                request = ExportTraceServiceRequest.FromString(body)
                spans = [
                    span
                    for resource_spans in request.resource_spans
                    for scope_spans in resource_spans.scope_spans
                    for span in scope_spans.spans
                ]
                with receiver._lock:
                    receiver.authorization.append(self.headers.get("Authorization"))
                    if receiver.status == 200:
                        receiver.spans += len(spans)
                        receiver.start_ns += [span.start_time_unix_nano for span in spans]
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    thread.join()


def test_traffic_over_otlp_reaches_a_real_receiver_shifted_with_the_token(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token")
    week = "2026-W01"
    before = time.time_ns() + traffic.week_shift_ns(week)
    report = traffic.generate(otlp=receiver.url, requests=12, seed=4, fault_rate=0, week=week)
    after = time.time_ns() + traffic.week_shift_ns(week)
    assert receiver.spans == report.spans > 12 and report.failed_spans == 0
    assert report.path is None and report.otlp == receiver.url + "/v1/traces"
    assert receiver.authorization and set(receiver.authorization) == {"Bearer s3cret-token"}
    assert before <= min(receiver.start_ns) and max(receiver.start_ns) <= after
    as_dict = report.to_dict()
    assert as_dict["path"] is None and as_dict["otlp"] == report.otlp
    assert "s3cret" not in json.dumps(as_dict)


def test_traffic_cli_over_otlp_without_a_token_sends_no_authorization(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    argv = ["--requests", "8", "--otlp", receiver.url + "/v1/traces", "--fault-rate", "0"]
    assert demo_main(["traffic", *argv]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] is None and report["otlp"] == receiver.url + "/v1/traces"
    assert report["spans"] == receiver.spans > 8 and report["failed_spans"] == 0
    assert receiver.authorization and set(receiver.authorization) == {None}


def test_traffic_counts_the_spans_of_refused_batches_as_failed(receiver: Receiver) -> None:
    receiver.status = 400  # not retried: the exporter reports the batch failed at once
    argv = ["demo", "traffic", "--requests", "8", "--otlp", receiver.url, "--fault-rate", "0"]
    result = CliRunner().invoke(cli_main, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["spans"] == receiver.spans == 0
    assert report["failed_spans"] > 8 and len(receiver.authorization) >= 1


def test_the_demo_traffic_is_received_live_once_per_week_requests_and_seed(
    tmp_path: Path,
) -> None:
    """The trace notebooks' path: a receiver on the store's file, the real OTLP exporter,
    one run per (week, requests, seed), however many notebooks ask."""
    with Store(tmp_path / "wb.db") as store:
        first = traffic.ingest_with_demo(store, requests=40, seed=3, week="2026-W49")
        spans = store.conn.execute("SELECT count(*), count(route) FROM spans").fetchone()
        again = traffic.receive_demo(store, requests=40, seed=3, week="2026-W49")
        assert store.conn.execute("SELECT count(*) FROM spans").fetchone()[0] == spans[0]
        other = traffic.receive_demo(store, requests=40, seed=4, week="2026-W49")
        (sources,) = store.conn.execute(
            "SELECT count(DISTINCT source) FROM spans WHERE source LIKE 'otlp 127.0.0.1 %'"
        ).fetchone()
    assert spans[0] > 40 and spans[0] == spans[1]  # every span has its request's route
    assert (
        "demo traffic of 2026-W49 (40 requests, seed 3) exported live to http://127.0.0.1:" in first
    )
    assert f"{spans[0]:,} stored, 0 duplicates, 0 rejected" in first
    assert (
        again
        == f"demo traffic of 2026-W49 (40 requests, seed 3) already received: {spans[0]:,} spans"
    )
    assert "exported live" in other and sources >= 2
    with Store(":memory:") as memory, pytest.raises(ConfigError, match="store's file"):
        traffic.receive_demo(memory, requests=1)
