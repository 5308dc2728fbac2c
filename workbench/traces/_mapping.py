"""OTLP and flat span records as ``spans`` rows: ids, times, enums, attribute aliases, costs."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from workbench.prices import PriceBook
from workbench.text import show_repr
from workbench.traces._report import IngestReport

_INT64 = (-(2**63), 2**63 - 1)


class _Bad(Exception):
    """A malformed record; the message says what is wrong."""


def _text(v: Any, key: str) -> str:
    if type(v) is str:
        return v
    if type(v) is int or type(v) is float:
        return str(v)
    raise _Bad(f"attribute {key}: expected a string, got {show_repr(v)}")


def _as_int(v: Any) -> int | None:
    """An int from an int, a decimal string or an integral float (OTLP writes all three)."""
    if type(v) is int:
        return v
    if type(v) is str or (type(v) is float and v.is_integer()):
        try:
            return int(v)
        except ValueError:
            return None
    return None


def _int(v: Any, key: str) -> int:
    if type(v) is int and _INT64[0] <= v <= _INT64[1]:
        return v  # the common case, first
    n = _as_int(v)
    if n is None:
        raise _Bad(f"attribute {key}: expected an integer, got {show_repr(v)}")
    if not _INT64[0] <= n <= _INT64[1]:
        raise _Bad(f"attribute {key}: {n} is out of the 64-bit range")
    return n


def _count(v: Any, key: str) -> int:
    if type(v) is int and 0 <= v <= _INT64[1]:
        return v  # the common case, first
    n = _int(v, key)
    if n < 0:
        raise _Bad(f"attribute {key}: a count cannot be negative ({n})")
    return n


def _float(v: Any, key: str) -> float:
    if type(v) is float or type(v) is int:
        x = float(v)
    elif type(v) is str:
        try:
            x = float(v)
        except ValueError:
            raise _Bad(f"attribute {key}: expected a number, got {show_repr(v)}") from None
    else:
        raise _Bad(f"attribute {key}: expected a number, got {show_repr(v)}")
    if not math.isfinite(x):
        raise _Bad(f"attribute {key}: expected a finite number, got {show_repr(v)}")
    return x


def _flag(v: Any, key: str) -> int:
    if v is True or v is False or (type(v) is int and v in (0, 1)):
        return int(v)
    if type(v) is str and v.lower() in ("true", "false"):
        return int(v.lower() == "true")
    raise _Bad(f"attribute {key}: expected a boolean, got {show_repr(v)}")


def _reasons(v: Any, key: str) -> str:
    if type(v) is str:
        return json.dumps([v])
    if type(v) is list and all(type(x) is str for x in v):
        return json.dumps(v)
    raise _Bad(f"attribute {key}: expected a list of strings, got {show_repr(v)}")


def _s_to_ms(v: Any, key: str) -> float:
    return _float(v, key) * 1000.0


_CLASS_REPR = re.compile(r"<class '([^']+)'>")


def _error_type(v: Any, key: str) -> str:
    """An error type, ``<class 'openai.NotFoundError'>`` (a Python class's repr, as some
    instrumentations write it) read as ``openai.NotFoundError``."""
    text = _text(v, key)
    m = _CLASS_REPR.fullmatch(text)
    return m.group(1) if m else text


def _operation(v: Any, key: str) -> str:
    op = _text(v, key)
    return _OPERATIONS.get(op, op) if key == "llm.request.type" else op


def _span_class(v: Any, key: str) -> str:
    cls = _text(v, key).lower()
    if cls not in _SPAN_CLASSES:
        raise _Bad(
            f"attribute {key}: {show_repr(v)} is not one of {', '.join(sorted(_SPAN_CLASSES))}"
        )
    return cls


_Conv = Callable[[Any, str], Any]
# column, converter, attribute keys: earlier keys win when several are present. For the cache
# counts, the second key is the raw Anthropic API naming (input excludes the cache when the
# provider is Anthropic); OTel's (first) and OpenInference's prompt "details" (third) are
# parts of the input count by definition. "_total" is no column: it fills a missing count.
_SPEC: tuple[tuple[str, _Conv, str], ...] = (
    ("route", _text, "http.route workbench.route"),
    ("span_class", _span_class, "workbench.span_class"),
    ("tenant", _text, "tenant.id workbench.tenant"),
    ("session_id", _text, "session.id gen_ai.conversation.id"),
    ("user_id", _text, "user.id enduser.id"),
    ("operation", _operation, "gen_ai.operation.name llm.request.type"),
    ("provider", _text, "gen_ai.provider.name gen_ai.system llm.provider llm.system"),
    ("request_model", _text, "gen_ai.request.model llm.request.model"),
    ("response_model", _text, "gen_ai.response.model llm.response.model"),
    ("temperature", _float, "gen_ai.request.temperature llm.request.temperature"),
    ("top_p", _float, "gen_ai.request.top_p llm.request.top_p llm.top_p"),
    ("max_tokens", _int, "gen_ai.request.max_tokens llm.request.max_tokens"),
    ("seed", _int, "gen_ai.request.seed"),
    ("stream", _flag, "gen_ai.request.stream llm.is_streaming gen_ai.is_streaming"),
    ("ttft_ms", _s_to_ms, "gen_ai.response.time_to_first_chunk gen_ai.server.time_to_first_token"),
    ("finish_reasons", _reasons, "gen_ai.response.finish_reasons llm.finish_reason"),
    ("error_type", _error_type, "error.type"),
    ("input_tokens", _count, "gen_ai.usage.input_tokens gen_ai.usage.prompt_tokens"),
    ("input_tokens", _count, "llm.token_count.prompt"),
    ("output_tokens", _count, "gen_ai.usage.output_tokens gen_ai.usage.completion_tokens"),
    ("output_tokens", _count, "llm.token_count.completion"),
    ("_total", _count, "gen_ai.usage.total_tokens llm.usage.total_tokens llm.token_count.total"),
    ("cache_read_tokens", _count, "gen_ai.usage.cache_read.input_tokens"),
    ("cache_read_tokens", _count, "gen_ai.usage.cache_read_input_tokens"),
    ("cache_read_tokens", _count, "llm.token_count.prompt_details.cache_read"),
    ("cache_write_tokens", _count, "gen_ai.usage.cache_creation.input_tokens"),
    ("cache_write_tokens", _count, "gen_ai.usage.cache_creation_input_tokens"),
    ("cache_write_tokens", _count, "llm.token_count.prompt_details.cache_write"),
    ("reasoning_tokens", _count, "gen_ai.usage.reasoning.output_tokens"),
    ("reasoning_tokens", _count, "gen_ai.usage.reasoning_tokens"),
    ("reasoning_tokens", _count, "llm.token_count.completion_details.reasoning"),
    ("cache_layer", _text, "workbench.cache.layer"),
    ("cache_key_hash", _text, "workbench.cache.key_hash"),
    ("cache_hit", _flag, "workbench.cache.hit"),
    ("cache_similarity", _float, "workbench.cache.similarity"),
    ("obj_bytes", _count, "workbench.cache.obj_bytes"),
    ("ttl_s", _float, "workbench.cache.ttl_s"),
    ("retry_count", _count, "http.request.resend_count workbench.retry_count"),
    ("environment", _text, "deployment.environment.name deployment.environment"),
    ("service", _text, "service.name"),
)
_RAW_ANTHROPIC_RANK = 1  # rank of gen_ai.usage.cache_read_input_tokens and ..._creation_...


def _aliases() -> dict[str, tuple[str, int, _Conv]]:
    """attribute key -> (column, rank, converter); rank 0 is the preferred key of a column."""
    table: dict[str, tuple[str, int, _Conv]] = {}
    ranks: dict[str, int] = {}
    for column, conv, keys in _SPEC:
        for key in keys.split():
            table[key] = (column, ranks.get(column, 0), conv)
            ranks[column] = ranks.get(column, 0) + 1
    return table


_ALIASES = _aliases()
_OPERATIONS = {"completion": "text_completion", "embedding": "embeddings"}  # OpenLLMetry
_OPENINFERENCE_OPS = {"LLM": "chat", "EMBEDDING": "embeddings"}  # openinference.span.kind
_LLM_OPS = frozenset(("chat", "text_completion", "generate_content"))
_SPAN_CLASSES = frozenset(("api", "llm", "embedding", "retrieval", "template", "cache", "other"))
# OpenInference keeps sampling parameters in one JSON attribute (lowest precedence).
_INVOCATION: tuple[tuple[str, _Conv, tuple[str, ...]], ...] = (
    ("temperature", _float, ("temperature",)),
    ("top_p", _float, ("top_p",)),
    ("max_tokens", _int, ("max_tokens", "max_completion_tokens", "max_output_tokens")),
    ("seed", _int, ("seed",)),
    ("stream", _flag, ("stream",)),
    ("request_model", _text, ("model",)),  # failed calls have no llm.model_name
)
# Events whose first occurrence marks the first token of a streamed response: OpenLLMetry
# emits one per chunk, OpenInference one at the first token.
_FIRST_TOKEN_EVENTS = frozenset(("gen_ai.content.completion.chunk", "First Token Stream Event"))

_KINDS: dict[Any, str] = {}
for _i, _k in enumerate(("internal", "internal", "server", "client", "producer", "consumer")):
    _KINDS.update({_i: _k, _k: _k, _k.upper(): _k, f"SPAN_KIND_{_k.upper()}": _k})
_KINDS.update({"SPAN_KIND_UNSPECIFIED": "internal", "unspecified": "internal"})
_STATUSES: dict[Any, str] = {}
for _i, _k in enumerate(("unset", "ok", "error")):
    _STATUSES.update({_i: _k, _k: _k, _k.upper(): _k, f"STATUS_CODE_{_k.upper()}": _k})

_EMPTY: dict[str, Any] = {}
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_ISO = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:?\d\d)?")
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":")).encode
# NaN and Infinity stay strings: SQLite's JSON functions refuse them as numbers.
_DECODE = json.JSONDecoder(parse_constant=str).decode


def loads(raw: bytes) -> Any:
    """orjson for speed; what it refuses (NaN, a BOM, lone surrogates, deep nesting, bad
    UTF-8) goes to the standard decoder, which accepts the first three and names the error."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _DECODE(raw.decode("utf-8-sig"))


def _dumps(value: Any) -> str:
    """Compact JSON text; the standard encoder takes what orjson refuses (ints over 64 bits,
    lone surrogates, deep nesting)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _ENCODE(value)


# -- OTLP values -------------------------------------------------------------------------


def _any_value(v: Any) -> Any:
    """An OTLP AnyValue as a plain Python value."""
    if type(v) is not dict:
        raise _Bad(f"attribute value must be an AnyValue object, got {show_repr(v)}")
    for kind, x in v.items():
        if kind == "stringValue" or kind == "boolValue" or kind == "bytesValue":
            return x
        if kind == "intValue":
            return int(x) if type(x) is str else x
        if kind == "doubleValue":
            return x
        if kind == "arrayValue":
            return [_any_value(e) for e in (x or {}).get("values") or ()]
        if kind == "kvlistValue":
            return _otlp_attributes((x or {}).get("values"))
        raise _Bad(f"unknown AnyValue type {kind!r}")
    return None


def _otlp_attributes(items: Any) -> dict[str, Any]:
    """An OTLP attribute list ``[{key, value}]`` as a flat dict."""
    if not items:
        return {}
    if type(items) is not list:
        raise _Bad(f"attributes must be a list of {{key, value}}, got {show_repr(items)}")
    out: dict[str, Any] = {}
    try:
        for kv in items:
            value = kv.get("value")
            if not value:
                out[kv["key"]] = None
                continue
            # the common cases inlined: strings, then integers (decimal strings in OTLP JSON)
            x = value.get("stringValue")
            if x is None:
                x = value.get("intValue")
                if x is None:
                    x = _any_value(value)
                elif type(x) is str:
                    x = int(x)
            out[kv["key"]] = x
    except (KeyError, TypeError, AttributeError):
        raise _Bad(f"attribute {show_repr(kv)} is not a {{key, value}} object") from None
    except ValueError:
        raise _Bad(f"attribute {show_repr(kv)}: not a valid number") from None
    return out


def _trace_id(v: Any, what: str = "trace id") -> str:
    if type(v) is not str:
        raise _Bad(f"{what} {show_repr(v)} is not a string" if v is not None else f"no {what}")
    if len(v) == 32 and _HEX32.fullmatch(v):
        s = v.lower()
    elif len(v) in (22, 24):
        s = _b64(v, 16, what)
    else:
        raise _Bad(f"{what} {show_repr(v)} is not 32 hex digits or 16 base64 bytes")
    if s == "0" * 32:
        raise _Bad(f"{what} is all zeros")
    return s


_cached_trace_id = functools.lru_cache(maxsize=4096)(_trace_id)  # a trace's spans travel together


def _span_id(v: Any, what: str = "span id", *, zero_ok: bool = False) -> str:
    if type(v) is not str:
        raise _Bad(f"{what} {show_repr(v)} is not a string" if v is not None else f"no {what}")
    if len(v) == 16 and _HEX16.fullmatch(v):
        s = v.lower()
    elif len(v) in (11, 12):
        s = _b64(v, 8, what)
    else:
        raise _Bad(f"{what} {show_repr(v)} is not 16 hex digits or 8 base64 bytes")
    if s == "0" * 16 and not zero_ok:
        raise _Bad(f"{what} is all zeros")
    return s


def _b64(v: str, nbytes: int, what: str) -> str:
    try:
        raw = base64.b64decode(
            v.replace("-", "+").replace("_", "/") + "=" * (-len(v) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise _Bad(f"{what} {show_repr(v)} is neither hex nor base64") from None
    if len(raw) != nbytes:
        raise _Bad(f"{what} {show_repr(v)} decodes to {len(raw)} bytes, not {nbytes}")
    return raw.hex()


def _ns(v: Any, what: str) -> int:
    n = _as_int(v)
    if n is None:
        raise _Bad(f"{what} {show_repr(v)} is not an integer of nanoseconds")
    if not 0 <= n <= _INT64[1]:
        raise _Bad(f"{what} {n} is out of range")
    return n


def _iso_ns(v: Any, what: str) -> int:
    m = _ISO.fullmatch(v) if type(v) is str else None
    if m is None:
        raise _Bad(f"{what} {show_repr(v)} is not an ISO 8601 time such as 2025-01-31T12:00:00.5Z")
    base, frac, tz = m.groups()
    try:
        moment = datetime.fromisoformat(base + ("+00:00" if tz in (None, "Z") else tz))
    except ValueError:
        raise _Bad(f"{what} {show_repr(v)} is not a valid time") from None
    seconds = int(moment.timestamp())
    if seconds < 0:
        raise _Bad(f"{what} {show_repr(v)} is before 1970")
    return seconds * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


def _enum(table: dict[Any, str], v: Any, what: str) -> str:
    found = table.get(v) if type(v) is int or type(v) is str else None
    if found is None:
        raise _Bad(f"{what} {show_repr(v)} is not one of {', '.join(sorted(set(table.values())))}")
    return found


# -- spans -> rows ------------------------------------------------------------------------


@dataclass
class _Resource:
    """The resource shared by a group of spans, encoded once."""

    json: str | None = None
    service: str | None = None
    environment: str | None = None


_NO_RESOURCE = _Resource()


def _resource(attrs: dict[str, Any]) -> _Resource:
    if not attrs:
        return _NO_RESOURCE
    service = attrs.get("service.name")
    env = attrs.get("deployment.environment.name", attrs.get("deployment.environment"))
    return _Resource(
        _dumps(attrs),
        _text(service, "service.name") if service is not None else None,
        _text(env, "deployment.environment") if env is not None else None,
    )


def _head(
    trace_id: Any,
    span_id: Any,
    parent: Any,
    name: Any,
    kind: str,
    start: int | None,
    end: int | None,
    status: str,
    message: Any,
) -> dict[str, Any]:
    """The identity, timing and status columns of a row (only those that are set)."""
    row: dict[str, Any] = {
        "trace_id": _cached_trace_id(trace_id) if type(trace_id) is str else _trace_id(trace_id),
        "span_id": _span_id(span_id),
    }
    if parent is not None and parent != "":
        parent = _span_id(parent, "parent span id", zero_ok=True)
        if parent != "0" * 16:  # all zeros: no parent, as some exporters write it
            row["parent_span_id"] = parent
    if name is not None:
        if type(name) is not str:
            raise _Bad(f"span name {show_repr(name)} is not a string")
        row["name"] = name
    row["kind"] = kind
    if start is not None:
        row["start_ns"] = start
    if end is not None:
        row["end_ns"] = end
        if start is not None:
            if end < start:
                raise _Bad(f"span ends ({end}) before it starts ({start})")
            row["duration_ms"] = (end - start) / 1e6
    row["status_code"] = status
    if message is not None and message != "":
        row["status_message"] = _text(message, "status.message")
    return row


def _row(
    row: dict[str, Any],
    attrs: dict[str, Any],
    res: _Resource,
    source: str,
    book: PriceBook,
    events: Any = None,
) -> dict[str, Any]:
    """Complete a row from the span's flat attributes: aliases, tokens, cost, class."""
    ranks: dict[str, int] = {}  # only for columns set from a fallback key (rank > 0)
    aliases = _ALIASES
    for key, v in attrs.items():
        spec = aliases.get(key)
        if spec is None or v is None:
            continue
        column, rank, conv = spec
        if column in row and ranks.get(column, 0) <= rank:
            continue
        if rank or column in ranks:
            ranks[column] = rank
        row[column] = conv(v, key)
    get = attrs.get
    if res.service is not None:
        row["service"] = res.service
    if res.environment is not None:
        row["environment"] = res.environment
    if (model := get("llm.model_name")) is not None:  # OpenInference: one name for both
        row.setdefault("request_model", _text(model, "llm.model_name"))
        row.setdefault("response_model", row["request_model"])
    if (params := get("llm.invocation_parameters")) is not None:
        _invocation(params, row)
    if "operation" not in row and (oi := get("openinference.span.kind")) is not None:
        op = _OPENINFERENCE_OPS.get(str(oi).upper())
        if op == "chat" and get("llm.prompts") is not None:  # the legacy completions API
            op = "text_completion"
        if op is not None:
            row["operation"] = op
    if "ttft_ms" not in row and events and "start_ns" in row:
        first = _first_token_ns(events)
        if first is not None and first >= row["start_ns"]:
            row["ttft_ms"] = (first - row["start_ns"]) / 1e6

    inp = row.get("input_tokens")
    out = row.get("output_tokens")
    if "_total" in row:  # a total fills in the one missing count
        total = row.pop("_total")
        if out is None and inp is not None and total >= inp:
            out = row["output_tokens"] = total - inp
        elif inp is None and out is not None and total >= out:
            inp = row["input_tokens"] = total - out
    # input_tokens includes the cache (OTel); Anthropic-style counts exclude it: add it
    read = row.get("cache_read_tokens")
    write = row.get("cache_write_tokens")
    if inp is not None and (read or write):
        cached = (read or 0) + (write or 0)
        provider = row.get("provider")
        if inp < cached or (  # impossible for a count that includes the cache
            provider is not None
            and "anthropic" in provider.lower()
            and _RAW_ANTHROPIC_RANK
            in (ranks.get("cache_read_tokens"), ranks.get("cache_write_tokens"))
        ):
            inp = row["input_tokens"] = inp + cached
    model = row.get("response_model") or row.get("request_model")
    if model is not None and (inp is not None or out is not None):
        cost = book.cost(model, inp, out, read, write)
        if cost is not None:
            row["cost_usd"] = cost

    if row["status_code"] == "error" and events:
        # The exception event names the class in full (openai.NotFoundError); an error.type
        # of its bare name (NotFoundError, as OpenLLMetry writes it) takes the full one.
        found = _exception_type(events)
        given = row.get("error_type")
        if found is not None and (given is None or found.endswith(f".{given}")):
            row["error_type"] = found
    if "finish_reasons" not in row and (messages := get("gen_ai.output.messages")) is not None:
        reasons = _message_finish_reasons(messages)
        if reasons:
            row["finish_reasons"] = json.dumps(reasons)
    if "span_class" not in row:
        row["span_class"] = _infer_class(row, get)
    if attrs:
        row["attributes"] = _dumps(attrs)
    if res.json is not None:
        row["resource"] = res.json
    row["source"] = source
    return row


def _invocation(params: Any, row: dict[str, Any]) -> None:
    if type(params) is str:
        try:
            params = json.loads(params)
        except (ValueError, RecursionError):
            return  # not ours to validate: the raw attribute is kept
    if type(params) is not dict:
        return
    for column, conv, keys in _INVOCATION:
        if column in row:
            continue
        for key in keys:
            if (v := params.get(key)) is not None:
                row[column] = conv(v, f"llm.invocation_parameters.{key}")
                break
    # The parameters are the call's arguments, and the OpenAI API streams only when asked.
    row.setdefault("stream", 0)


def _message_finish_reasons(messages: Any) -> list[str]:
    """The ``finish_reason`` of each output message (``gen_ai.output.messages``, a JSON list),
    which openai-v2 writes on streamed calls instead of ``gen_ai.response.finish_reasons``."""
    if type(messages) is str:
        try:
            messages = json.loads(messages)
        except (ValueError, RecursionError):
            return []
    if type(messages) is not list:
        return []
    return [
        m["finish_reason"]
        for m in messages
        if type(m) is dict and type(m.get("finish_reason")) is str
    ]


def _exception_type(events: Any) -> str | None:
    """``exception.type`` of the first exception event, if any (events are not validated)."""
    for event in events if type(events) is list else ():
        if type(event) is dict and event.get("name") == "exception":
            attrs = event.get("attributes")
            try:
                flat = _otlp_attributes(attrs) if type(attrs) is list else attrs
            except _Bad:
                continue
            if type(flat) is dict and type(flat.get("exception.type")) is str:
                return _error_type(flat["exception.type"], "exception.type")
    return None


def _first_token_ns(events: Any) -> int | None:
    """The time of the earliest first-token event (see ``_FIRST_TOKEN_EVENTS``), if any."""
    first = None
    for event in events if type(events) is list else ():
        if type(event) is dict and event.get("name") in _FIRST_TOKEN_EVENTS:
            at = _as_int(event.get("timeUnixNano"))
            if at is not None and (first is None or at < first):
                first = at
    return first


def _infer_class(row: dict[str, Any], get: Callable[[str], Any]) -> str:
    op = row.get("operation")
    oi = get("openinference.span.kind")
    oi = oi.upper() if type(oi) is str else None
    if op in _LLM_OPS or oi == "LLM":
        return "llm"
    if op == "embeddings" or oi == "EMBEDDING":
        return "embedding"
    if op in ("retrieval", "rerank") or oi in ("RETRIEVER", "RERANKER"):
        return "retrieval"
    if "cache_layer" in row:
        return "cache"
    if (
        op is None
        and "output_tokens" in row
        and ("request_model" in row or "response_model" in row)
    ):
        return "llm"  # a model and completion tokens but no operation name (older emitters)
    if row["kind"] == "server" and "route" in row:
        return "api"
    if oi == "PROMPT" or get("llm.prompt_template.template") is not None:
        return "template"
    return "other"


def _otlp_span(span: Any, res: _Resource, source: str, book: PriceBook) -> dict[str, Any]:
    if type(span) is not dict:
        raise _Bad(f"span must be an object, got {show_repr(span)}")
    get = span.get
    status = get("status") or _EMPTY
    if type(status) is not dict:
        raise _Bad(f"status {show_repr(status)} is not an object")
    start = get("startTimeUnixNano")
    end = get("endTimeUnixNano")
    row = _head(
        get("traceId"),
        get("spanId"),
        get("parentSpanId"),
        get("name"),
        _enum(_KINDS, get("kind", 0), "span kind"),
        None if start is None else _ns(start, "startTimeUnixNano"),
        None if end is None else _ns(end, "endTimeUnixNano"),
        _enum(_STATUSES, status.get("code", 0), "status code"),
        status.get("message"),
    )
    return _row(row, _otlp_attributes(get("attributes")), res, source, book, get("events"))


def _flat_span(rec: dict[str, Any], source: str, book: PriceBook) -> dict[str, Any]:
    status = rec.get("status")
    message = rec.get("status_message")
    if type(status) is dict:
        message = status.get("message", message)
        status = status.get("code")
    attrs = rec.get("attributes") or {}
    if type(attrs) is list:
        attrs = _otlp_attributes(attrs)
    elif type(attrs) is not dict:
        raise _Bad(f"attributes must be an object, got {show_repr(attrs)}")
    res_attrs = rec.get("resource") or {}
    if type(res_attrs) is not dict:
        raise _Bad(f"resource must be an object, got {show_repr(res_attrs)}")
    if (service := rec.get("service")) is not None:
        res_attrs = {"service.name": service, **res_attrs}
    row = _head(
        rec.get("trace_id"),
        rec.get("span_id"),
        rec.get("parent_span_id"),
        rec.get("name"),
        _enum(_KINDS, rec.get("kind", "internal"), "kind"),
        _time(rec, "start"),
        _time(rec, "end"),
        _enum(_STATUSES, "unset" if status is None else status, "status"),
        message,
    )
    return _row(row, attrs, _resource(res_attrs), source, book, rec.get("events"))


def _time(rec: dict[str, Any], which: str) -> int | None:
    for key in (f"{which}_time_unix_nano", f"{which}_ns"):
        if (v := rec.get(key)) is not None:
            return _ns(v, key)
    v = rec.get(which)
    return None if v is None else _iso_ns(v, which)


# -- records -> rows ------------------------------------------------------------------------

_MALFORMED = (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError)


_Add = Callable[[dict[str, Any]], None]


def record_rows(
    rec: Any, where: str, source: str, book: PriceBook, report: IngestReport, add: _Add
) -> None:
    """Add the rows of one JSON record (a TracesData, an OTLP span or a flat span)."""
    if type(rec) is not dict:
        report._error(f"{where}: expected a JSON object, got {show_repr(rec)}")
        return
    if "resourceSpans" in rec:
        _traces_data(rec, where, source, book, report, add)
        return
    if not ("traceId" in rec or "spanId" in rec or "trace_id" in rec or "span_id" in rec):
        report._error(
            f"{where}: neither OTLP TracesData (resourceSpans) nor a span (trace_id, span_id)"
        )
        return
    report.spans_read += 1
    try:
        if "traceId" in rec or "spanId" in rec:
            row = _otlp_span(rec, _NO_RESOURCE, source, book)
        else:
            row = _flat_span(rec, source, book)
    except _Bad as exc:
        report._error(f"{where}: {exc}")
    except _MALFORMED as exc:
        report._error(f"{where}: malformed span: {type(exc).__name__}: {show_repr(str(exc))}")
    else:
        add(row)


def _traces_data(
    doc: dict[str, Any], where: str, source: str, book: PriceBook, report: IngestReport, add: _Add
) -> None:
    groups = doc["resourceSpans"]
    if type(groups) is not list:
        report._error(f"{where}: resourceSpans must be a list")
        return
    for g, group in enumerate(groups):
        here = f"{where}: resourceSpans[{g}]"
        try:
            if type(group) is not dict:
                raise _Bad("must be an object")
            resource = group.get("resource") or {}
            if type(resource) is not dict:
                raise _Bad("resource must be an object")
            res = _resource(_otlp_attributes(resource.get("attributes")))
            scopes = group.get("scopeSpans", group.get("instrumentationLibrarySpans")) or []
            if type(scopes) is not list:
                raise _Bad("scopeSpans must be a list")
        except _Bad as exc:
            report._error(f"{here}: {exc}", _group_spans(group, report))
            continue
        except _MALFORMED as exc:
            report._error(
                f"{here}: malformed resource: {type(exc).__name__}: {show_repr(str(exc))}",
                _group_spans(group, report),
            )
            continue
        for s, scope in enumerate(scopes):
            spans = scope.get("spans") if type(scope) is dict else None
            if type(spans) is not list:
                if spans is not None or type(scope) is not dict:
                    report._error(f"{here}.scopeSpans[{s}]: spans must be a list")
                continue
            report.spans_read += len(spans)
            for i, span in enumerate(spans):
                try:
                    add(_otlp_span(span, res, source, book))
                except _Bad as exc:
                    report._error(f"{here}.scopeSpans[{s}].spans[{i}]: {exc}")
                except _MALFORMED as exc:
                    report._error(
                        f"{here}.scopeSpans[{s}].spans[{i}]: malformed span: "
                        f"{type(exc).__name__}: {show_repr(str(exc))}"
                    )


def _group_spans(group: Any, report: IngestReport) -> int:
    """How many records a resource group refused whole counts as skipped: its spans (read),
    at least 1 (a group without spans is still a malformed record)."""
    scopes = (
        group.get("scopeSpans", group.get("instrumentationLibrarySpans"))
        if type(group) is dict
        else None
    )
    if type(scopes) is not list:
        return 1
    n = sum(len(sc["spans"]) for sc in scopes if type(sc) is dict and type(sc.get("spans")) is list)
    report.spans_read += n
    return max(1, n)
