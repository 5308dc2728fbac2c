"""Realistic demo traffic through an instrumented TriageApp, its traces to a file or OTLP/HTTP.

One single-threaded client drives an in-process :class:`~workbench.demo.app.TriageApp` whose
model server runs as a child process with injected faults (429, 500, timeouts, malformed and
truncated bodies). Requests follow a Zipf popularity over the golden support-triage tickets
(so every cache has repeats), come from a skewed mix of tenants, and split about 70/30
between ``/api/triage`` and ``/api/search``. The response cache is on. A failed triage
request (502 or 504) is retried at once, up to ``retry_limit`` times, each retry a new root
span with ``http.request.resend_count``.

The traces go to an OTLP JSON Lines file, or live to an OTLP/HTTP endpoint (a Collector, or
``workbench traces serve``). The request sequence, the faults and therefore every count
depend only on the seed; span timings and trace ids do not. Timeouts hang for 2 s on the
server and give up after 1 s on the client, and the model answers in 10 ms median (40 ms
p95), so runs stay short.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import random
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from workbench.demo.app import AppConfig, AppError, TriageApp, triage_dataset
from workbench.demo.server import DemoProcess
from workbench.demo.telemetry import (
    SCOPE,
    OTLPJsonLinesExporter,
    ShiftedExporter,
    tracer_provider,
)
from workbench.errors import ConfigError
from workbench.golden import Case
from workbench.store import Store, now
from workbench.traces import TOKEN_ENV, Receiver, ingest, render_text

__all__ = [
    "LAYERS",
    "ROUTES",
    "TENANTS",
    "TrafficReport",
    "add_arguments",
    "command",
    "generate",
    "ingest_with_demo",
    "receive_demo",
    "week_shift_ns",
]

TENANTS = ("acme", "globex", "initech", "umbrella")
ROUTES = ("/api/triage", "/api/search")
LAYERS = ("prompt_template", "embedding", "response_exact", "provider")
_TRIAGE_SHARE = 0.7  # the rest are searches
_LATENCY_MS = "10,40"
# Far above the model's latency even on a busy machine, so only injected faults time out.
_TIMEOUT_S = 1.0
_HANG_S = 2.0
_OTLP_PATH = "/v1/traces"
_OTLP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TrafficReport:
    """What a traffic run did, with figures measured on the app side to cross-check the traces.

    ``errors`` counts failed attempts (root spans with ``error.type``), ``failed`` the
    requests still failing after their retries. ``p95_ms`` is per route over every attempt,
    timed around the app call; ``cache`` holds per layer the hits and lookups counted from
    the app's own cache counters (one ``prompt_template`` lookup per prompt render).
    ``spans`` counts the spans the exporter reported written (or, with ``otlp``, accepted),
    ``failed_spans`` those of batches it failed to export.
    """

    path: Path | None
    otlp: str | None
    requests: int
    attempts: int
    retries: int
    errors: int
    failed: int
    spans: int
    failed_spans: int
    seconds: float
    routes: dict[str, int]
    tenants: dict[str, int]
    p95_ms: dict[str, float]
    cache: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return {**asdict(self), "path": None if self.path is None else str(self.path)}


@dataclass(frozen=True)
class _Request:
    route: str
    text: str
    channel: str
    tenant: str


class _ModelProcess(DemoProcess):
    """The demo model server child, whose injected timeouts hang briefly instead of 30 s."""

    def __init__(self, *, hang_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hang_s = hang_s

    def command(self) -> list[str]:
        """The child's command line, with --hang-s."""
        return [*super().command(), "--hang-s", repr(float(self.hang_s))]


class _Counted(SpanExporter):
    """Forwards to ``inner``, counting the spans of batches it exported and of those it failed."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.exported = 0
        self.failed = 0
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export the batch and count its spans by the result."""
        try:
            result = self.inner.export(spans)
        except Exception:
            with self._lock:
                self.failed += len(spans)
            raise
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the inner exporter."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()


def generate(
    out: Path | str | None = None,
    *,
    otlp: str | None = None,
    requests: int,
    seed: int = 0,
    fault_rate: float = 0.03,
    tenants: Sequence[str] = TENANTS,
    zipf_s: float = 1.1,
    retry_limit: int = 2,
    week: str | None = None,
) -> TrafficReport:
    """Run the traffic and send its traces to ``out`` or ``otlp``, exactly one of them.

    ``out`` is an OTLP JSON Lines file (replaced; gzip when it ends .gz). ``otlp`` is an
    OTLP/HTTP endpoint, a base URL such as ``http://127.0.0.1:4318`` or the full
    ``.../v1/traces``; with ``WORKBENCH_OTLP_TOKEN`` set, each request carries it as a bearer
    token. ``week`` (an ISO week such as ``2026-W49``) replays the traffic as if it ran then:
    every timestamp moves by whole weeks from now, keeping the day and time of the week.
    """
    if (out is None) == (otlp is None):
        raise ConfigError(
            "give exactly one of out (an OTLP JSON Lines file) or otlp (an OTLP/HTTP URL such "
            f"as http://127.0.0.1:4318), got out={out!r}, otlp={otlp!r}"
        )
    _check(requests, fault_rate, tenants, zipf_s, retry_limit)
    shift_ns = week_shift_ns(week) if week else 0
    path = None if out is None else Path(out)
    if path is not None and path.is_dir():
        raise ConfigError(
            f"{path} is a folder; give the trace file's path, like {path}/traces.jsonl"
        )
    endpoint = None if otlp is None else _endpoint(otlp)
    plan = _plan(triage_dataset().cases, requests, seed, tuple(tenants), zipf_s)
    durations: dict[str, list[float]] = {route: [] for route in ROUTES}
    cache = {layer: {"hits": 0, "lookups": 0} for layer in LAYERS}
    retries = errors = failed = 0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
    start = time.perf_counter()
    with ExitStack() as stack:
        child = stack.enter_context(
            _ModelProcess(hang_s=_HANG_S, latency_ms=_LATENCY_MS, fault_rate=fault_rate, seed=seed)
        )
        exporter = _Counted(_exporter(path, endpoint))
        provider = tracer_provider(ShiftedExporter(exporter, shift_ns))
        stack.callback(provider.shutdown)
        tracer = provider.get_tracer(SCOPE, _version())
        config = AppConfig(model_url=child.url, model_timeout_s=_TIMEOUT_S)
        app = stack.enter_context(TriageApp(config, tracer=tracer))
        for request in plan:
            for attempt in range(retry_limit + 1):
                retries += attempt > 0
                before = _counters(app)
                began = time.perf_counter()
                try:
                    if request.route == "/api/triage":
                        app.triage(
                            request.text, request.channel, tenant=request.tenant, attempt=attempt
                        )
                    else:
                        app.search(request.text, tenant=request.tenant, attempt=attempt)
                    error: AppError | None = None
                except AppError as exc:
                    error = exc
                durations[request.route].append((time.perf_counter() - began) * 1000.0)
                _tally(cache, before, _counters(app))
                if error is None:
                    break
                errors += 1
                if error.status < 500 or attempt == retry_limit:
                    failed += 1
                    break
    seconds = time.perf_counter() - start
    return TrafficReport(
        path=path,
        otlp=endpoint,
        requests=requests,
        attempts=requests + retries,
        retries=retries,
        errors=errors,
        failed=failed,
        spans=exporter.exported,
        failed_spans=exporter.failed,
        seconds=round(seconds, 3),
        routes={route: len(times) for route, times in durations.items()},
        tenants={t: sum(r.tenant == t for r in plan) for t in tenants},
        p95_ms={
            route: round(float(np.percentile(times, 95)), 3)
            for route, times in durations.items()
            if times
        },
        cache=cache,
    )


def _endpoint(otlp: str) -> str:
    """The OTLP/HTTP traces URL for a base URL (``/v1/traces`` appended) or the full one."""
    parts = urlsplit(otlp)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"otlp must be an http(s) URL such as http://127.0.0.1:4318, got {otlp!r}"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(_OTLP_PATH):
        path += _OTLP_PATH
    return urlunsplit(parts._replace(path=path))


def _exporter(path: Path | None, endpoint: str | None) -> SpanExporter:
    """The file exporter for ``path``, else the OTLP/HTTP one for ``endpoint``."""
    if path is not None:
        return OTLPJsonLinesExporter(path)
    token = os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=_OTLP_TIMEOUT_S)


def ingest_with_demo(
    store: Store,
    traces: Sequence[str | Path] = (),
    *,
    requests: int = 0,
    seed: int = 0,
    week: str | None = None,
) -> str:
    """Ingest trace files and, with ``requests``, receive this week's demo traffic live; what
    was ingested and received, as text.

    The shared first step of the trace notebooks: a team passes its own files and
    ``requests=0``; the demo's weekly run passes none and lets the demo traffic fill the store
    through :func:`receive_demo`.
    """
    parts = []
    if traces:
        parts.append(render_text(ingest(store, [Path(p) for p in traces])))
    if requests:
        parts.append(receive_demo(store, requests=requests, seed=seed, week=week))
    if not parts:
        return "no trace files given: analysing the spans already in the store"
    return "\n".join(parts)


def receive_demo(store: Store, *, requests: int, seed: int = 0, week: str | None = None) -> str:
    """Run the demo traffic once per (week, requests, seed) into ``store``, exported live over
    OTLP/HTTP to a :class:`~workbench.traces.Receiver` started on the store's file for the run.

    The run is noted in ``trace_files`` (as ``otlp: demo traffic ...``), so a re-run, or a
    second notebook of the same weekly run, receives nothing twice. A run with spans that did
    not arrive is not noted, and runs again next time (its spans stored twice are ignored).
    """
    store.require_sqlite("traces")
    if str(store.path) == ":memory:":
        raise ConfigError("the demo traffic is received into the store's file: open one on a file")
    week = week or _this_week()
    what = f"demo traffic of {week} ({requests:,} requests, seed {seed})"
    key = hashlib.sha256(f"otlp: {what}".encode()).hexdigest()
    seen = store.conn.execute("SELECT spans FROM trace_files WHERE sha256 = ?", (key,)).fetchone()
    if seen is not None:
        return f"{what} already received: {seen[0]:,} spans"
    with Receiver(store.path, port=0) as receiver:
        report = generate(otlp=receiver.url, requests=requests, seed=seed, week=week)
    stats = receiver.stats
    lines = [f"{what} exported live to {report.otlp}", stats.render()]
    if report.failed_spans:
        lines.append(f"{report.failed_spans:,} spans did not arrive; the next run sends it again")
    else:
        store.conn.execute(
            "INSERT OR IGNORE INTO trace_files (sha256, path, spans, skipped, ingested_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (key, f"otlp: {what}", stats.stored, stats.rejected, now()),
        )
    return "\n".join(lines)


def _this_week() -> str:
    year, number, _ = dt.datetime.now(dt.UTC).date().isocalendar()
    return f"{year}-W{number:02d}"


def week_shift_ns(week: str, today: dt.date | None = None) -> int:
    """Nanoseconds from this ISO week to ``week`` (e.g. ``2026-W49``), a whole number of weeks."""
    try:
        year, number = week.split("-W")
        target = dt.date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise ConfigError(f"week must look like 2026-W49, got {week!r}") from None
    today = today or dt.datetime.now(dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    return (target - monday).days * 86_400 * 1_000_000_000


def _check(
    requests: int, fault_rate: float, tenants: Sequence[str], zipf_s: float, retry_limit: int
) -> None:
    """Raise ConfigError naming the first bad argument."""
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ConfigError(f"requests must be an integer >= 1, got {requests!r}")
    if not 0.0 <= fault_rate <= 1.0:
        raise ConfigError(f"fault_rate must be between 0 and 1, got {fault_rate!r}")
    if (
        isinstance(tenants, str)
        or not tenants
        or not all(isinstance(t, str) and t for t in tenants)
    ):
        raise ConfigError(f"tenants must be a non-empty list of names, got {tenants!r}")
    if len(set(tenants)) != len(tenants):
        raise ConfigError(f"tenants must be unique, got {list(tenants)!r}")
    if not zipf_s >= 0.0:
        raise ConfigError(f"zipf_s must be >= 0 (0 = uniform), got {zipf_s!r}")
    if isinstance(retry_limit, bool) or not isinstance(retry_limit, int) or retry_limit < 0:
        raise ConfigError(f"retry_limit must be an integer >= 0, got {retry_limit!r}")


def _plan(
    cases: Sequence[Case], requests: int, seed: int, tenants: tuple[str, ...], zipf_s: float
) -> list[_Request]:
    """The request sequence: Zipf-popular tickets and queries, a skewed tenant mix."""
    if not cases:
        raise ConfigError("the traffic needs at least one golden case")
    rng = random.Random(seed)
    tickets = [(str(c.input["ticket"]), str(c.input.get("channel", "email"))) for c in cases]
    queries = [_query(c) for c in cases]
    rng.shuffle(tickets)
    rng.shuffle(queries)
    # The r-th item of each shuffled list is drawn with weight 1/r^s; tenant r with 1/r.
    popular = list(itertools.accumulate(1.0 / (r + 1) ** zipf_s for r in range(len(cases))))
    skew = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(tenants))))
    plan = []
    for _ in range(requests):
        tenant = rng.choices(tenants, cum_weights=skew)[0]
        if rng.random() < _TRIAGE_SHARE:
            ticket, channel = rng.choices(tickets, cum_weights=popular)[0]
            plan.append(_Request("/api/triage", ticket, channel, tenant))
        else:
            query = rng.choices(queries, cum_weights=popular)[0]
            plan.append(_Request("/api/search", query, "", tenant))
    return plan


def _query(case: Case) -> str:
    """A search query for a case: its expected summary, else its ticket."""
    expected = case.expected
    if isinstance(expected, dict) and isinstance(expected.get("summary"), str):
        return str(expected["summary"])
    return str(case.input["ticket"])


def _counters(app: TriageApp) -> dict[str, tuple[int, int]]:
    """(hits, misses) of each cache layer, from the app's counters."""
    prefix = app.prefix_cache
    return {
        "prompt_template": (app.templates.hits, app.templates.misses),
        "embedding": (app.embeddings.hits, app.embeddings.misses),
        "response_exact": (app.responses.hits, app.responses.misses),
        "provider": (prefix.hits, prefix.lookups - prefix.hits),
    }


def _tally(
    cache: dict[str, dict[str, int]],
    before: dict[str, tuple[int, int]],
    after: dict[str, tuple[int, int]],
) -> None:
    """Count one lookup per layer the request touched: a hit when it missed nothing there."""
    for layer, (hits, misses) in after.items():
        hits0, misses0 = before[layer]
        if hits + misses > hits0 + misses0:
            cache[layer]["lookups"] += 1
            cache[layer]["hits"] += misses == misses0


def _version() -> str | None:
    try:
        return metadata.version("workbench")
    except metadata.PackageNotFoundError:
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m workbench.demo traffic``."""
    parser.add_argument("--requests", type=int, required=True, help="client requests to send")
    parser.add_argument("--seed", type=int, default=0)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="OTLP JSON Lines file (.jsonl, or .jsonl.gz)")
    target.add_argument(
        "--otlp",
        metavar="URL",
        help=f"OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 (bearer token from ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.03, help="share of model calls with a fault"
    )
    parser.add_argument("--retry-limit", type=int, default=2, help="retries per failed triage")
    parser.add_argument("--zipf-s", type=float, default=1.1, help="ticket popularity skew")
    parser.add_argument(
        "--tenants", default=",".join(TENANTS), help="comma-separated, most active first"
    )
    parser.add_argument("--week", help="replay as if in this ISO week, e.g. 2026-W49")


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``python -m workbench.demo traffic``: generate(), print the report as one JSON line."""
    try:
        report = generate(
            args.out,
            otlp=args.otlp,
            requests=args.requests,
            seed=args.seed,
            fault_rate=args.fault_rate,
            tenants=tuple(t.strip() for t in args.tenants.split(",")),
            zipf_s=args.zipf_s,
            retry_limit=args.retry_limit,
            week=args.week,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    except RuntimeError as exc:  # the demo server child did not start
        print(f"traffic: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict()), flush=True)
    return 0
