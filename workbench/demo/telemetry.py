"""OpenTelemetry for the demo: an OTLP JSON Lines exporter and a simulated provider prompt cache.

The exporter writes what an OpenTelemetry Collector's file exporter writes: one OTLP/JSON
``TracesData`` object per line (``resourceSpans`` -> ``scopeSpans`` -> ``spans``), with hex
trace and span ids, integer enums, 64-bit integers as decimal strings and typed attribute
values (https://opentelemetry.io/docs/specs/otel/protocol/file-exporter/), encoded by the
OpenTelemetry SDK's own OTLP encoder. :class:`ShiftedExporter` replays spans at another time
through any exporter (this file's, or OTLP/HTTP). The helpers at the end build the
attributes the demo app puts on its spans: ``workbench.cache.*`` for each cache lookup and
the GenAI response and usage attributes of a chat call.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

from google.protobuf.json_format import MessageToDict
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.util import BoundedList

from workbench.errors import ConfigError

__all__ = [
    "PROVIDER",
    "SCOPE",
    "SERVICE",
    "OTLPJsonLinesExporter",
    "PrefixCache",
    "PrefixUse",
    "ShiftedExporter",
    "cache_attributes",
    "chat_response_attributes",
    "key_hash",
    "tracer_provider",
    "traces_data",
]

SERVICE = "workbench-demo-app"
SCOPE = "workbench.demo.app"
PROVIDER = "workbench-demo"
# Big enough that a fast single-threaded run never outpaces the export thread and drops spans.
_QUEUE_SIZE = 65_536
_PREFIX_TTL_S = 300.0
_PREFIX_MIN_TOKENS = 1024
_PREFIX_STEP_TOKENS = 128
_PREFIX_MAX_KEYS = 100_000
_KEY_HASH_CHARS = 16
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _shifted(span: ReadableSpan, shift_ns: int) -> ReadableSpan:
    """A copy of ``span`` with its start, end and event times moved by ``shift_ns``.

    ReadableSpan reads its dropped counts off bounded containers: the copy gets ones that
    carry the original's counts.
    """
    attributes = BoundedAttributes(attributes=span.attributes)
    attributes.dropped = span.dropped_attributes
    events = BoundedList.from_seq(
        None, (Event(e.name, e.attributes, e.timestamp + shift_ns) for e in span.events)
    )
    events.dropped = span.dropped_events
    links = BoundedList.from_seq(None, span.links)
    links.dropped = span.dropped_links
    return ReadableSpan(
        name=span.name,
        context=span.get_span_context(),
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=span.status,
        start_time=None if span.start_time is None else span.start_time + shift_ns,
        end_time=None if span.end_time is None else span.end_time + shift_ns,
        instrumentation_scope=span.instrumentation_scope,
    )


def _shift(spans: Sequence[ReadableSpan], shift_ns: int) -> Sequence[ReadableSpan]:
    """``spans`` with every timestamp moved by ``shift_ns`` (copies; the spans themselves for 0)."""
    return [_shifted(span, shift_ns) for span in spans] if shift_ns else spans


class ShiftedExporter(SpanExporter):
    """Forwards every batch to ``inner`` with its timestamps moved by ``shift_ns``.

    To replay traffic as if it ran at another time, through any exporter.
    """

    def __init__(self, inner: SpanExporter, shift_ns: int) -> None:
        self.inner = inner
        self.shift_ns = shift_ns

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export time-shifted copies of the batch."""
        return self.inner.export(_shift(spans, self.shift_ns))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the inner exporter."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()

    def __repr__(self) -> str:
        return f"ShiftedExporter({self.inner!r}, shift_ns={self.shift_ns})"


def traces_data(spans: Sequence[ReadableSpan], *, shift_ns: int = 0) -> dict[str, Any]:
    """One OTLP/JSON TracesData object: spans grouped by resource, then instrumentation scope.

    The OpenTelemetry SDK's own protobuf encoding in protobuf's JSON mapping, with the ids
    turned from base64 into the hex OTLP/JSON wants. ``shift_ns`` moves every timestamp, to
    replay traffic as if it ran at another time.
    """
    request = encode_spans(_shift(spans, shift_ns))
    data: dict[str, Any] = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in data.setdefault("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for item in (span, *span.get("links", ())):
                    for field in _ID_FIELDS:
                        if field in item:
                            item[field] = base64.b64decode(item[field]).hex()
    return data


class OTLPJsonLinesExporter(SpanExporter):
    """Appends each export batch as one OTLP/JSON TracesData line; gzip when the path ends .gz.

    ``shift_ns`` moves every timestamp written (see :func:`traces_data`).
    """

    def __init__(self, path: Path | str, *, shift_ns: int = 0) -> None:
        self.path = Path(path)
        self.shift_ns = shift_ns
        self.spans_written = 0
        self.lines_written = 0
        self._gzip = self.path.suffix == ".gz"
        self._lock = threading.Lock()
        try:
            # Kept open across exports; shutdown() closes it.
            if self._gzip:
                self._file: IO[str] | None = gzip.open(self.path, "at", encoding="utf-8")  # noqa: SIM115
            else:
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot open the trace file for writing: {exc}"
            ) from None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the batch as one line (nothing for an empty batch)."""
        if not spans:
            return SpanExportResult.SUCCESS
        line = json.dumps(
            traces_data(spans, shift_ns=self.shift_ns), separators=(",", ":"), ensure_ascii=False
        )
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            try:
                self._file.write(line + "\n")
                if not self._gzip:  # a reader tailing a plain file sees whole lines
                    self._file.flush()
            except OSError:
                return SpanExportResult.FAILURE
            self.spans_written += len(spans)
            self.lines_written += 1
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the file."""
        with self._lock:
            if self._file is not None:
                self._file.flush()
        return True

    def shutdown(self) -> None:
        """Flush and close the file; later exports fail."""
        with self._lock:
            file, self._file = self._file, None
        if file is not None:
            file.close()

    def __repr__(self) -> str:
        return f"OTLPJsonLinesExporter({str(self.path)!r}, spans_written={self.spans_written})"


def tracer_provider(
    target: Path | str | SpanExporter,
    *,
    service: str = SERVICE,
    environment: str = "demo",
    batch: bool = True,
) -> TracerProvider:
    """A TracerProvider exporting to an OTLP JSON Lines file (or the given exporter).

    ``batch=False`` exports each span as it ends (SimpleSpanProcessor): slower, but the file
    is complete without a flush, which suits tests. Call ``shutdown()`` to flush and close.
    """
    exporter = target if isinstance(target, SpanExporter) else OTLPJsonLinesExporter(target)
    resource = Resource.create(
        {
            "service.name": service,
            "deployment.environment": environment,
            "deployment.environment.name": environment,  # the newer semconv name
        }
    )
    provider = TracerProvider(resource=resource)
    if batch:
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=_QUEUE_SIZE))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


class PrefixUse(NamedTuple):
    """One request's use of the provider prompt cache."""

    key_hash: str  # of the whole prefix sent
    hit: bool  # some of it was read from the cache
    read: int  # tokens read from the cache
    written: int  # tokens written to it


class PrefixCache:
    """A simulated provider prompt cache: the longest prefix sent within ``ttl_s`` is read.

    A prompt offers its prefixes as nested segments (for the demo: the card's system prompt,
    then the whole system message with the retrieved articles). The longest one sent before,
    within the TTL, is read from the cache; the tokens after it are written. A simplification
    of OpenAI's rule (prompts of 1024+ tokens, hits in 128-token steps): a read of 1024 tokens
    or more is rounded down to a multiple of 128, a shorter one counts in full (the demo's
    prompts are short, and a cache that never hits would leave nothing to analyse). Each use
    restarts the TTL of every prefix sent, as providers do.
    """

    def __init__(
        self, ttl_s: float = _PREFIX_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.hits = 0
        self.lookups = 0
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def use(self, prefixes: Sequence[tuple[str, int]]) -> PrefixUse:
        """Send nested prefixes, shortest first, each as (text, tokens up to its end)."""
        if not prefixes:
            raise ValueError("PrefixCache.use() needs at least one prefix")
        keys = [
            hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            for text, _ in prefixes
        ]
        now = self._clock()
        matched = 0
        with self._lock:
            for key, (_, tokens) in zip(keys, prefixes, strict=True):
                last = self._seen.get(key)
                if last is not None and now - last <= self.ttl_s:
                    matched = tokens
                self._seen[key] = now
            self.lookups += 1
            self.hits += matched > 0
            if len(self._seen) > _PREFIX_MAX_KEYS:
                self._seen = {k: t for k, t in self._seen.items() if now - t <= self.ttl_s}
        read = matched
        if read >= _PREFIX_MIN_TOKENS:
            read -= read % _PREFIX_STEP_TOKENS
        total = prefixes[-1][1]
        return PrefixUse(keys[-1][:_KEY_HASH_CHARS], matched > 0, read, max(0, total - matched))

    def __repr__(self) -> str:
        return f"PrefixCache(ttl_s={self.ttl_s:g}, hits={self.hits}, lookups={self.lookups})"


def key_hash(*parts: str) -> str:
    """A cache key as spans carry it (``workbench.cache.key_hash``): 16 hex digits of a SHA-256."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:_KEY_HASH_CHARS]


def cache_attributes(
    layer: str, key_hash: str, hit: bool, obj_bytes: int | None = None
) -> dict[str, Any]:
    """The ``workbench.cache.*`` attributes of one cache lookup."""
    attributes: dict[str, Any] = {
        "workbench.cache.layer": layer,
        "workbench.cache.key_hash": key_hash,
        "workbench.cache.hit": hit,
    }
    if obj_bytes is not None:
        attributes["workbench.cache.obj_bytes"] = obj_bytes
    return attributes


def chat_response_attributes(
    payload: Mapping[str, Any],
    finish: Any,
    prefixes: Sequence[tuple[str, int]],
    cache: PrefixCache,
) -> dict[str, Any]:
    """GenAI response and usage attributes of a chat completion, with its prompt-cache share.

    Cache reads are the server's ``usage.prompt_tokens_details.cached_tokens`` when it reports
    any, else what ``cache`` (the simulated provider cache) reads of the prompt's nested
    ``prefixes``; the cache lookup is recorded as layer ``provider``. Following the GenAI
    conventions, ``gen_ai.usage.input_tokens`` stays the total, cache reads included.
    """
    attributes: dict[str, Any] = {}
    if isinstance(finish, str):
        attributes["gen_ai.response.finish_reasons"] = [finish]
    for field, name in (("model", "gen_ai.response.model"), ("id", "gen_ai.response.id")):
        if isinstance(payload.get(field), str):
            attributes[name] = payload[field]
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return attributes
    input_tokens, output_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(output_tokens, int):
        attributes["gen_ai.usage.output_tokens"] = output_tokens
    if not isinstance(input_tokens, int):
        return attributes
    attributes["gen_ai.usage.input_tokens"] = input_tokens
    details = usage.get("prompt_tokens_details")
    reported = details.get("cached_tokens") if isinstance(details, dict) else None
    reported = reported if isinstance(reported, int) and reported > 0 else 0
    read = written = 0
    if prefixes:
        use = cache.use(prefixes)
        read, written = (reported, 0) if reported else (use.read, use.written)
        attributes.update(cache_attributes("provider", use.key_hash, read > 0))
        attributes["workbench.cache.ttl_s"] = cache.ttl_s
    else:
        read = reported
    if read:
        attributes["gen_ai.usage.cache_read.input_tokens"] = min(read, input_tokens)
    if written:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = min(written, input_tokens)
    return attributes
