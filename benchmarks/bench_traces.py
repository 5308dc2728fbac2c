"""Trace ingest benchmark: spans/s for ``workbench.traces.ingest`` against JSON parsing alone.

Usage: ``python benchmarks/bench_traces.py [--spans N] [--per-line K] [--runs R] [--gzip] [--flat]
[--serial]``

Writes a synthetic OTLP JSON Lines file (the Collector file exporter layout: one TracesData
per line, K spans per line) in a temporary folder. Each trace is an API request: a server span
with ``http.route``, an exact-cache lookup, an embedding call, a retrieval, a prompt template
and a chat call with OTel GenAI attributes (model, sampling, tokens with provider cache reads,
finish reasons, time to first chunk). Then times, each the median of R runs:

- JSON only: reading the file and ``json.loads`` of every line (the floor for a pure-Python
  reader);
- ingest: ``traces.ingest`` into a fresh on-disk store (parsing, mapping, costing, inserting,
  route inheritance, file hash).

With ``--flat`` the same spans are written in the plain JSONL format, one per line; with
``--serial`` the file is parsed in the ingesting process instead of two parser processes. The
target is 50,000 spans/s of ingest, wall time; CPU time (all processes) is printed too, as the
machine may be shared: with the parser processes, CPU spans/s is below wall spans/s when they
overlap. The machine's speed drifts from minute to minute, so compare the ratio to JSON alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.store import Store  # noqa: E402
from workbench.traces import ingest  # noqa: E402

TARGET = 50_000
ROUTES = ("/v1/triage", "/v1/search", "/v1/summarise", "/v1/chat")
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
TENANTS = tuple(f"tenant-{i}" for i in range(20))


def _a(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list):
        return {
            "key": key,
            "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}},
        }
    return {"key": key, "value": {"stringValue": value}}


def _span(
    trace: str, span: str, parent: str, name: str, kind: int, t0: int, ms: float, attrs: list[Any]
) -> dict[str, Any]:
    return {
        "traceId": trace,
        "spanId": span,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(t0),
        "endTimeUnixNano": str(t0 + int(ms * 1e6)),
        "attributes": attrs,
        "status": {},
    }


def _trace(rng: random.Random, t0: int) -> list[dict[str, Any]]:
    trace = f"{rng.getrandbits(128):032x}"
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(6)]
    route, model, tenant = rng.choice(ROUTES), rng.choice(MODELS), rng.choice(TENANTS)
    hit = rng.random() < 0.3
    prompt = rng.randint(300, 4000)
    cached = (prompt // 128) * 128 if rng.random() < 0.4 else 0
    spans = [
        _span(
            trace,
            ids[0],
            "",
            f"POST {route}",
            2,
            t0,
            rng.uniform(50, 900),
            [
                _a("http.route", route),
                _a("http.request.method", "POST"),
                _a("http.response.status_code", 200),
                _a("tenant.id", tenant),
                _a("workbench.span_class", "api"),
            ],
        ),
        _span(
            trace,
            ids[1],
            ids[0],
            "cache.lookup response_exact",
            1,
            t0 + 100_000,
            rng.uniform(0.1, 2),
            [
                _a("workbench.cache.layer", "response_exact"),
                _a("workbench.cache.key_hash", f"{rng.getrandbits(64):016x}"),
                _a("workbench.cache.hit", hit),
                _a("workbench.cache.obj_bytes", rng.randint(200, 8000)),
                _a("workbench.cache.ttl_s", 3600.0),
            ],
        ),
        _span(
            trace,
            ids[2],
            ids[0],
            "embeddings text-embedding-3-small",
            3,
            t0 + 2_000_000,
            rng.uniform(5, 40),
            [
                _a("gen_ai.operation.name", "embeddings"),
                _a("gen_ai.provider.name", "openai"),
                _a("gen_ai.request.model", "text-embedding-3-small"),
                _a("gen_ai.usage.input_tokens", rng.randint(10, 200)),
            ],
        ),
        _span(
            trace,
            ids[3],
            ids[0],
            "retrieve",
            1,
            t0 + 40_000_000,
            rng.uniform(2, 20),
            [_a("openinference.span.kind", "RETRIEVER"), _a("retrieval.top_k", 5)],
        ),
        _span(
            trace,
            ids[4],
            ids[0],
            "render prompt",
            1,
            t0 + 60_000_000,
            rng.uniform(0.05, 1),
            [_a("workbench.span_class", "template"), _a("workbench.template.id", "triage@3")],
        ),
        _span(
            trace,
            ids[5],
            ids[0],
            f"chat {model}",
            3,
            t0 + 61_000_000,
            rng.uniform(200, 800),
            [
                _a("gen_ai.operation.name", "chat"),
                _a("gen_ai.provider.name", "openai"),
                _a("gen_ai.request.model", model),
                _a("gen_ai.response.model", f"{model}-2024-07-18"),
                _a("gen_ai.request.temperature", 0.2),
                _a("gen_ai.request.max_tokens", 512),
                _a("gen_ai.request.seed", 7),
                _a("gen_ai.request.stream", True),
                _a("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):x}"),
                _a("gen_ai.response.finish_reasons", ["stop"]),
                _a("gen_ai.response.time_to_first_chunk", rng.uniform(0.1, 0.6)),
                _a("gen_ai.usage.input_tokens", prompt),
                _a("gen_ai.usage.output_tokens", rng.randint(20, 400)),
                _a("gen_ai.usage.cache_read.input_tokens", cached),
                _a("http.request.resend_count", 0),
            ],
        ),
    ]
    return spans


def _lines(n_spans: int, per_line: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    t0 = 1_760_000_000_000_000_000
    resource = {
        "attributes": [
            _a("service.name", "triage-api"),
            _a("deployment.environment", "bench"),
            _a("telemetry.sdk.language", "python"),
        ]
    }
    batch: list[dict[str, Any]] = []
    made = 0
    while made < n_spans:
        for span in _trace(rng, t0):
            if made == n_spans:
                break
            batch.append(span)
            made += 1
        t0 += rng.randint(1_000_000, 50_000_000)
        if len(batch) >= per_line or made == n_spans:
            doc = {
                "resourceSpans": [
                    {
                        "resource": resource,
                        "scopeSpans": [{"scope": {"name": "workbench.demo"}, "spans": batch}],
                    }
                ]
            }
            yield json.dumps(doc, separators=(",", ":"))
            batch = []


def _plain(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue as a plain JSON value."""
    kind, x = next(iter(value.items()))
    if kind == "arrayValue":
        return [_plain(v) for v in x["values"]]
    return int(x) if kind == "intValue" else x


def _flat(span: dict[str, Any]) -> dict[str, Any]:
    """The same span in the plain JSONL format."""
    attrs = {a["key"]: _plain(a["value"]) for a in span["attributes"]}
    return {
        "trace_id": span["traceId"],
        "span_id": span["spanId"],
        "parent_span_id": span["parentSpanId"] or None,
        "name": span["name"],
        "kind": span["kind"],
        "start_ns": int(span["startTimeUnixNano"]),
        "end_ns": int(span["endTimeUnixNano"]),
        "service": "triage-api",
        "attributes": attrs,
    }


def write_file(folder: Path, n_spans: int, per_line: int, compress: bool, flat: bool) -> Path:
    """A synthetic trace file of n_spans spans: OTLP JSON Lines, or flat spans."""
    path = folder / ("spans.jsonl.gz" if compress else "spans.jsonl")
    with gzip.open(path, "wb") if compress else open(path, "wb") as f:
        for line in _lines(n_spans, per_line):
            if flat:
                for span in json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]:
                    f.write(json.dumps(_flat(span), separators=(",", ":")).encode() + b"\n")
            else:
                f.write(line.encode() + b"\n")
    return path


def time_json(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds to read the file and json.loads every line."""
    started, cpu = time.perf_counter(), time.process_time()
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        for line in f:
            json.loads(line)
    return time.perf_counter() - started, time.process_time() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_ingest(
    path: Path, folder: Path, run: int, parallel: bool | None
) -> tuple[float, float, int]:
    """Wall and CPU seconds (with the parser processes') to ingest the file into a fresh store,
    and the spans stored."""
    with Store(folder / f"bench-{run}.db") as store:
        cpu = time.process_time() + _children_cpu()
        report = ingest(store, [path], parallel=parallel)
        cpu = time.process_time() + _children_cpu() - cpu
    if report.skipped:
        raise SystemExit(f"benchmark file has malformed records: {report.errors[:3]}")
    return report.seconds, cpu, report.stored


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--per-line", type=int, default=60, help="spans per TracesData line")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gzip", action="store_true", help="compress the file")
    parser.add_argument("--flat", action="store_true", help="plain JSONL, one span per line")
    parser.add_argument(
        "--serial", action="store_true", help="parse in the ingesting process (no parser process)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-traces-") as tmp:
        folder = Path(tmp)
        path = write_file(folder, args.spans, args.per_line, args.gzip, args.flat)
        size_mb = path.stat().st_size / 1e6
        parses = [time_json(path) for _ in range(args.runs)]
        parallel = False if args.serial else None
        ingests = [time_ingest(path, folder, run, parallel) for run in range(args.runs)]

    n = args.spans
    json_wall = statistics.median(w for w, _ in parses)
    json_cpu = statistics.median(c for _, c in parses)
    wall = statistics.median(w for w, _, _ in ingests)
    cpu = statistics.median(c for _, c, _ in ingests)
    rate = n / wall
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load} (a busy machine reads slow: compare CPU figures)\n"
        f"file: {n:,} spans, {'flat, 1' if args.flat else args.per_line} per line, {size_mb:.1f} MB"
        f"{' gzip' if args.gzip else ''}; median of {args.runs} runs; "
        f"{ingests[0][2]:,} stored\n"
        f"json.loads only: {n / json_wall:>9,.0f} spans/s wall, {n / json_cpu:>9,.0f} spans/s CPU\n"
        f"ingest:          {rate:>9,.0f} spans/s wall, {n / cpu:>9,.0f} spans/s CPU "
        f"({wall:.2f} s wall, {cpu:.2f} s CPU of all processes"
        f"{', --serial' if args.serial else ''})\n"
        f"ratio ingest / json-only: {json_wall / wall:.3f} wall, {json_cpu / cpu:.3f} CPU\n"
        f"target >= {TARGET:,} spans/s (wall): {'PASS' if rate >= TARGET else 'MISS'}"
    )


if __name__ == "__main__":
    main()
