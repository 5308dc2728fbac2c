"""OTLP/HTTP receiver benchmark: spans/s through ``workbench traces serve`` against file ingest.

Usage: ``python benchmarks/bench_otlp.py [--spans N] [--batch K] [--senders S] [--runs R]``

The spans are those of ``bench_traces.py`` (six-span API requests with GenAI, cache and
retrieval attributes), in batches of K spans (512: the BatchSpanProcessor's export batch).
Each batch is written once as an OTLP JSON Lines file (one TracesData per line, as the
Collector's file exporter writes) and once as the protobuf ``ExportTraceServiceRequest`` an
``OTLPSpanExporter`` sends. Then, each the median of R runs into a fresh on-disk store:

- file ingest: ``workbench.traces.ingest`` of the file (the reference, in this run);
- OTLP/HTTP: ``workbench traces serve`` in a child process, sent every request body by S
  keep-alive HTTP clients in this process (1: one exporter), timed from the first request
  to the last answer; every answer must be 200 and every span stored.

The ratio is OTLP/HTTP spans/s over file ingest spans/s; the target is 0.8 or more.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402
from bench_traces import _lines  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)

from workbench.store import Store  # noqa: E402
from workbench.traces import ingest  # noqa: E402

TARGET = 0.8


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode("ascii")


def protobuf_body(line: str) -> bytes:
    """The OTLP JSON TracesData line as a binary ExportTraceServiceRequest (ids hex -> bytes)."""
    doc: dict[str, Any] = json.loads(line)
    for group in doc["resourceSpans"]:
        for scope in group["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = _b64(span[key])
    message = json_format.ParseDict(doc, ExportTraceServiceRequest())
    return message.SerializeToString()


def time_file(path: Path, folder: Path, n: int) -> float:
    db = folder / f"file-{time.monotonic_ns()}.db"
    with Store(db) as store:
        started = time.perf_counter()
        report = ingest(store, [path])
        seconds = time.perf_counter() - started
    assert report.stored == n, report
    return seconds


def time_receiver(bodies: list[bytes], folder: Path, n: int, senders: int) -> float:
    db = folder / f"otlp-{time.monotonic_ns()}.db"
    Store(db).close()
    child = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "traces", "serve", "--port", "0", "--db", str(db)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stderr is not None
    endpoint = child.stderr.readline().split(" at ")[1].split()[0]
    sessions = [requests.Session() for _ in range(senders)]
    for session in sessions:  # connect before the clock starts
        session.post(endpoint, data=b"", headers={"Content-Type": "application/x-protobuf"})

    def send(k: int) -> None:
        session = sessions[k]
        for body in bodies[k::senders]:
            answer = session.post(
                endpoint, data=body, headers={"Content-Type": "application/x-protobuf"}
            )
            assert answer.status_code == 200, answer.content

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, range(senders)))
    seconds = time.perf_counter() - started
    child.terminate()
    child.wait(30)
    conn = sqlite3.connect(db)
    stored = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    conn.close()
    assert stored == n, (stored, n)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = list(_lines(args.spans, args.batch))
        path = folder / "spans.jsonl"
        path.write_text("".join(line + "\n" for line in lines))
        bodies = [protobuf_body(line) for line in lines]
        n = args.spans
        file_s, otlp_s = [], []
        for _ in range(args.runs):  # interleaved, so drift in the machine's speed hits both
            file_s.append(time_file(path, folder, n))
            otlp_s.append(time_receiver(bodies, folder, n, args.senders))
        file_rate = n / statistics.median(file_s)
        otlp_rate = n / statistics.median(otlp_s)
        ratio = otlp_rate / file_rate
        mib = sum(map(len, bodies)) / 2**20
        print(
            f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
        )
        print(
            f"{n:,} spans in {len(bodies)} requests of {args.batch} ({mib:.1f} MiB protobuf, "
            f"{path.stat().st_size / 2**20:.1f} MiB OTLP JSON), {args.senders} sender(s), "
            f"median of {args.runs}"
        )
        print(f"file ingest (reference):  {file_rate:10,.0f} spans/s")
        print(f"OTLP/HTTP protobuf:       {otlp_rate:10,.0f} spans/s")
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(f"ratio {ratio:.2f}x of file ingest (target >= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
