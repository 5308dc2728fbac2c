"""OTLP protobuf (``ExportTraceServiceRequest``) as ``spans`` rows, through the same mapping.

The messages are walked directly (no conversion to JSON first): ids are bytes, times and
enums integers, attribute values typed. Each span then goes through ``_mapping._head`` and
``_mapping._row``, as an OTLP JSON span does, so the same span sent either way gives the same
row. A time of 0 is an unset field (protobuf has no presence), as the JSON of the same message
leaves it out.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from workbench.prices import PriceBook
from workbench.text import show_repr
from workbench.traces._mapping import (
    _KINDS,
    _MALFORMED,
    _STATUSES,
    _Add,
    _Bad,
    _enum,
    _head,
    _resource,
    _row,
)
from workbench.traces._report import IngestReport


class Undecodable(Exception):
    """A request body that is not the message its content type says."""


def decode(body: bytes) -> Any:
    """An ``ExportTraceServiceRequest`` from its binary encoding; Undecodable if it is not one."""
    try:
        return ExportTraceServiceRequest.FromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:  # upb raises DecodeError
        raise Undecodable(f"not an OTLP ExportTraceServiceRequest: {exc}") from None


def span_count(request: Any) -> int:
    """How many spans a decoded request holds."""
    return sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)


def request_rows(
    request: Any, where: str, source: str, book: PriceBook, report: IngestReport, add: _Add
) -> None:
    """Add the rows of a decoded request; malformed spans go to ``report``."""
    for g, group in enumerate(request.resource_spans):
        here = f"{where}: resourceSpans[{g}]"
        try:
            res = _resource(_attributes(group.resource.attributes))
        except _Bad as exc:
            n = sum(len(s.spans) for s in group.scope_spans)
            report.spans_read += n
            report._error(f"{here}: {exc}", max(1, n))  # as the JSON path counts
            continue
        for s, scope in enumerate(group.scope_spans):
            report.spans_read += len(scope.spans)
            for i, span in enumerate(scope.spans):
                try:
                    add(_span(span, res, source, book))
                except _Bad as exc:
                    report._error(f"{here}.scopeSpans[{s}].spans[{i}]: {exc}")
                except _MALFORMED as exc:
                    report._error(
                        f"{here}.scopeSpans[{s}].spans[{i}]: malformed span: "
                        f"{type(exc).__name__}: {show_repr(str(exc))}"
                    )


def _span(span: Any, res: Any, source: str, book: PriceBook) -> dict[str, Any]:
    status = span.status
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    row = _head(
        _id(span.trace_id, 16, "trace id"),
        _id(span.span_id, 8, "span id"),
        _id(span.parent_span_id, 8, "parent span id") if span.parent_span_id else None,
        span.name or None,  # no presence in protobuf: "" is unset, as JSON leaves it out
        _enum(_KINDS, span.kind, "span kind"),
        start or None,
        end or None,
        _enum(_STATUSES, status.code, "status code"),
        status.message,
    )
    events = [_event(e) for e in span.events] if span.events else None
    return _row(row, _attributes(span.attributes), res, source, book, events)


def _id(raw: bytes, size: int, what: str) -> str:
    if len(raw) != size:
        raise _Bad(f"no {what}" if not raw else f"{what} is {len(raw)} bytes, not {size}")
    return raw.hex()


def _event(event: Any) -> dict[str, Any]:
    """An event as the mapping reads it: name and time; attributes only for exceptions."""
    out: dict[str, Any] = {"name": event.name, "timeUnixNano": event.time_unix_nano}
    if event.name == "exception":
        out["attributes"] = _attributes(event.attributes)
    return out


def _attributes(items: Any) -> dict[str, Any]:
    """A repeated KeyValue as a flat dict (values as OTLP JSON reads them: bytes as base64)."""
    out: dict[str, Any] = {}
    for kv in items:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":  # the common case first
            out[kv.key] = value.string_value
        elif kind is None:
            out[kv.key] = None
        else:
            out[kv.key] = _value(value, kind)
    return out


def _value(value: Any, kind: str | None) -> Any:
    if kind == "array_value":
        return [_value(v, v.WhichOneof("value")) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return None
    return getattr(value, kind)
