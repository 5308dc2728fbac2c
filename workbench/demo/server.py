"""An OpenAI-compatible chat-completions server on 127.0.0.1 with latency and fault injection.

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``
(plain JSON or ``stream: true`` server-sent events) and the non-OpenAI ``GET /v1/stats``.

Faults are rolled per chat-completion request from ``sha256(seed, sha256(body), n)``, where
``n`` counts earlier requests with the identical body, so a run is reproducible given the
seed and the request sequence, and a client's retry of the same request rolls again.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import itertools
import json
import logging
import math
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from workbench.errors import ConfigError

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "DemoProcess",
    "DemoServer",
    "FaultSpec",
    "LatencySpec",
    "serve",
]

KINDS = ("429", "500", "timeout", "malformed", "truncated", "reset", "slow")
DEFAULT_KINDS = ("429", "500", "timeout", "malformed", "truncated")

_LOG = logging.getLogger(__name__)
_Z95 = 1.645
_SLOW_FACTOR = 5.0
# Without any configured latency a 5x slowdown would be invisible; this keeps "slow" observable.
_SLOW_FLOOR_S = 0.25
_TTFT_SHARE = 0.3
_MAX_BODY = 16 * 1024 * 1024
_POLL_S = 0.05
_OWNER = "workbench-demo"
_LISTENING = "workbench demo server listening on"
_LOOPBACK = ("127.0.0.1", "localhost")
# The demo model's versions, used when a respond callable is injected without model names.
_DEFAULT_MODELS = ("triage-v1", "triage-v2")


class _CompletionLike(Protocol):
    """What a respond callable returns: workbench.demo.model.Completion or a look-alike."""

    @property
    def content(self) -> str: ...
    @property
    def finish_reason(self) -> str: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...


Respond = Callable[..., _CompletionLike]


def _fmt(x: float) -> str:
    """Render a number without a trailing .0 so parse(str(spec)) round-trips."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _number(text: str, what: str) -> float:
    """Parse one finite number or raise ConfigError naming the option."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what}: {text!r} must be finite")
    return value


@dataclass(frozen=True)
class LatencySpec:
    """Per-request latency in ms: none (0), fixed, or lognormal from a median and a p95."""

    median_ms: float = 0.0
    p95_ms: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.median_ms) or self.median_ms < 0:
            raise ConfigError(f"latency median must be >= 0 ms, got {self.median_ms!r}")
        if self.p95_ms is None:
            return
        if not math.isfinite(self.p95_ms) or self.p95_ms < self.median_ms:
            raise ConfigError(
                f"latency p95 ({self.p95_ms!r} ms) must be >= the median ({self.median_ms!r} ms)"
            )
        if self.p95_ms == self.median_ms:
            object.__setattr__(self, "p95_ms", None)
        elif self.median_ms == 0:
            raise ConfigError("a lognormal latency needs a median > 0 ms, e.g. '80,400'")

    @classmethod
    def parse(cls, text: str | float) -> LatencySpec:
        """Parse "0" (none), "50" (fixed 50 ms) or "80,400" (median 80 ms, p95 400 ms)."""
        if isinstance(text, int | float):
            return cls(float(text))
        parts = [p.strip() for p in str(text).split(",")]
        if len(parts) not in (1, 2) or not all(parts):
            raise ConfigError(
                f"latency {text!r}: expected '0', a fixed '50' or a 'median,p95' pair like '80,400'"
            )
        median = _number(parts[0], "latency median")
        p95 = _number(parts[1], "latency p95") if len(parts) == 2 else None
        return cls(median, p95)

    @property
    def sigma(self) -> float:
        """Sigma of the underlying normal: ln(p95 / median) / 1.645 (0 when fixed)."""
        if self.p95_ms is None or self.median_ms == 0:
            return 0.0
        return math.log(self.p95_ms / self.median_ms) / _Z95

    def sample(self, rng: random.Random) -> float:
        """Draw one latency in seconds."""
        if self.p95_ms is None:
            return self.median_ms / 1000.0
        return rng.lognormvariate(math.log(self.median_ms), self.sigma) / 1000.0

    def __str__(self) -> str:
        if self.p95_ms is None:
            return _fmt(self.median_ms)
        return f"{_fmt(self.median_ms)},{_fmt(self.p95_ms)}"


@dataclass(frozen=True)
class FaultSpec:
    """Fault rates per kind; at most one fault per request. Kinds are kept in KINDS order."""

    rates: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        seen: dict[str, float] = {}
        for kind, rate in self.rates:
            if kind not in KINDS:
                raise ConfigError(f"unknown fault kind {kind!r}; known kinds: {', '.join(KINDS)}")
            if kind in seen:
                raise ConfigError(f"fault kind {kind!r} given twice")
            if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
                raise ConfigError(f"fault rate for {kind!r} must be in [0, 1], got {rate!r}")
            seen[kind] = float(rate)
        if sum(seen.values()) > 1.0 + 1e-9:
            raise ConfigError(f"fault rates add up to {sum(seen.values()):g}, more than 1")
        ordered = tuple((k, seen[k]) for k in KINDS if seen.get(k))
        object.__setattr__(self, "rates", ordered)

    @classmethod
    def parse(cls, rate: float | str = 0.0, kinds: str | None = None) -> FaultSpec:
        """Split a total rate evenly over kinds ("429,timeout"), or read "429=0.05,500=0.02"."""
        if isinstance(rate, str) and kinds is None and "=" in rate:
            kinds, rate = rate, 0.0
        total = _number(str(rate), "fault rate")
        if not 0.0 <= total <= 1.0:
            raise ConfigError(f"fault rate must be in [0, 1], got {rate!r}")
        entries = [e.strip() for e in (kinds or "").split(",") if e.strip()]
        if any("=" in e for e in entries):
            if not all("=" in e for e in entries):
                raise ConfigError(
                    f"faults {kinds!r}: give every kind a rate ('429=0.05,500=0.02') or none"
                )
            pairs = []
            for entry in entries:
                kind, _, value = entry.partition("=")
                pairs.append((kind.strip(), _number(value.strip(), f"fault rate for {kind!r}")))
            spec = cls(tuple(pairs))
            if total and abs(total - spec.total) > 1e-9:
                raise ConfigError(
                    f"fault rate {total:g} disagrees with per-kind rates {kinds!r} "
                    f"(total {spec.total:g}); give one or the other"
                )
            return spec
        names = tuple(entries) or DEFAULT_KINDS
        return cls(tuple((k, total / len(names)) for k in names))

    @property
    def total(self) -> float:
        """Probability that a request gets any fault."""
        return sum(r for _, r in self.rates)

    def rate(self, kind: str) -> float:
        """The rate of one kind (0 when not configured)."""
        return dict(self.rates).get(kind, 0.0)

    def pick(self, u: float) -> str | None:
        """Map a uniform draw in [0, 1) to a fault kind, or None for a clean request."""
        edge = 0.0
        for kind, rate in self.rates:
            edge += rate
            if u < edge:
                return kind
        return None

    def __str__(self) -> str:
        return ",".join(f"{k}={_fmt(r)}" for k, r in self.rates)


class _HTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer tuned for many keep-alive clients, quiet about vanished peers."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], owner: DemoServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a getfqdn() lookup we neither need nor want to wait on.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away, or stop() closed the connection
        _LOG.exception("demo server: unhandled error serving %s", client_address)


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """An OpenAI error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _invalid(message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An OpenAI invalid_request_error body."""
    return _error(message, "invalid_request_error", code, param)


def _pieces(content: str) -> list[str]:
    """Split content into 4-8 pieces (fewer for tiny strings) that concatenate back to it."""
    n = min(len(content), max(4, min(8, len(content) // 24)))
    return [content[i * len(content) // n : (i + 1) * len(content) // n] for i in range(n)]


def _dumps(payload: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class _BadRequest(Exception):
    """A request the server answers with an OpenAI invalid_request_error body."""

    def __init__(
        self, status: int, message: str, code: str | None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = _invalid(message, code, param)


@dataclass(frozen=True)
class _Chat:
    """A validated chat-completion request."""

    model: str
    messages: list[dict[str, Any]]
    options: dict[str, Any]
    stream: bool
    include_usage: bool


def _is_int(value: Any) -> bool:
    """True for a JSON integer (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_chat(raw: bytes, models: Sequence[str]) -> _Chat:
    """Validate a chat-completion body or raise _BadRequest."""
    try:
        req = json.loads(raw)
    except ValueError:
        req = None
    if not isinstance(req, dict):
        raise _BadRequest(400, "We could not parse the JSON body of your request.", "invalid_json")
    model, messages = req.get("model"), req.get("messages")
    if not isinstance(model, str) or not model:
        raise _BadRequest(400, "Missing required parameter: 'model'.", "missing_parameter", "model")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest(
            400, "Missing required parameter: 'messages'.", "missing_parameter", "messages"
        )
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise _BadRequest(
            400, "Each of 'messages' must be an object with a 'role'.", "invalid_type", "messages"
        )
    if model not in models:
        raise _BadRequest(
            404,
            f"The model `{model}` does not exist. Available: {', '.join(models)}.",
            "model_not_found",
            "model",
        )
    max_tokens = req.get("max_completion_tokens", req.get("max_tokens"))
    checks: tuple[tuple[str, Any, Callable[[Any], bool]], ...] = (
        ("temperature", req.get("temperature"), lambda v: _is_int(v) or isinstance(v, float)),
        ("seed", req.get("seed"), _is_int),
        ("max_tokens", max_tokens, lambda v: _is_int(v) and v >= 1),
    )
    options: dict[str, Any] = {}
    for name, value, ok in checks:
        if value is not None and not ok(value):
            raise _BadRequest(400, f"Invalid value for '{name}': {value!r}.", "invalid_value", name)
        if value is not None:
            options[name] = value
    stream_options = req.get("stream_options") or {}
    return _Chat(
        model=model,
        messages=messages,
        options=options,
        stream=req.get("stream") is True,
        include_usage=isinstance(stream_options, dict)
        and bool(stream_options.get("include_usage")),
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes requests to the owning DemoServer's state."""

    protocol_version = "HTTP/1.1"
    server_version = "workbench-demo/0.1"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the demo server never writes access logs."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol errors (bad request line, unknown method) in the OpenAI JSON shape."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        self._send_json(code, _invalid(f"{text} ({explain})" if explain else text, None))

    # -- plumbing -------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        fields = [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers]
        self.wfile.write(self._head(status, fields) + body)

    def _head(self, status: int, fields: Sequence[tuple[str, str]]) -> bytes:
        """Status line and headers, to send in the same write as the body (one packet)."""
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            *(f"{name}: {value}" for name, value in fields),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_json(
        self, status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self._send(status, _dumps(payload), headers)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send_json(411, _invalid("Send the body with a Content-Length header.", None))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.close_connection = True
            self._send_json(
                413, _invalid(f"Bad or too large Content-Length (max {_MAX_BODY}).", None)
            )
            return None
        return self.rfile.read(length)

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/")

    def _not_found(self) -> None:
        self._send_json(
            404, _invalid(f"Unknown request URL: {self.command} {self._path()}.", "unknown_url")
        )

    def _reset(self) -> None:
        """Close the socket with SO_LINGER 0 so the peer sees a reset, not a response."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    # -- routes ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        """Serve the model list, one model, or the stats."""
        owner = self.server.owner
        path = self._path()
        if path == "/v1/stats":
            self._send_json(200, owner.stats())
            return
        owner._count("requests")
        if path == "/v1/models":
            models = [owner._model(m) for m in owner.models]
            self._send_json(200, {"object": "list", "data": models})
        elif (name := path.removeprefix("/v1/models/")) in owner.models:
            self._send_json(200, owner._model(name))
        elif path.startswith("/v1/models/"):
            text = f"The model `{name}` does not exist."
            self._send_json(404, _invalid(text, "model_not_found", "model"))
        else:
            self._not_found()

    def do_POST(self) -> None:
        """Serve chat completions, with the configured latency and faults."""
        owner = self.server.owner
        owner._count("requests")
        raw = self._read_body()
        if raw is None:
            return
        if self._path() != "/v1/chat/completions":
            self._not_found()
            return
        try:
            chat = _parse_chat(raw, owner.models)
        except _BadRequest as exc:
            owner._count("errors")
            self._send_json(exc.status, exc.body)
            return
        kind = owner._roll(raw)
        if kind == "429":
            wait = str(owner.retry_after_s)
            text = f"Rate limit reached (injected fault). Please try again in {wait}s."
            self._send_json(
                429,
                _error(text, "rate_limit_error", "rate_limit_exceeded"),
                [("Retry-After", wait)],
            )
            return
        if kind == "timeout" and owner._stopping.wait(owner.hang_s):
            self._reset()
            return
        latency = owner._sample_latency()
        if kind == "slow":
            latency = max(latency * _SLOW_FACTOR, _SLOW_FLOOR_S)
        if kind == "500":
            time.sleep(latency)
            text = "The server had an error processing your request (injected fault)."
            self._send_json(500, _error(text, "server_error", None))
            return
        try:
            completion = owner.respond(chat.model, chat.messages, **chat.options)
        except Exception as exc:
            # The model rejects bad input with ValueError; anything else is a bug in respond().
            owner._count("errors")
            bad_input = isinstance(exc, ValueError)
            if not bad_input:
                _LOG.exception("demo server: respond() failed")
            kind_ = "invalid_request_error" if bad_input else "server_error"
            self._send_json(400 if bad_input else 500, _error(f"respond(): {exc}", kind_, None))
            return
        content = completion.content
        finish_reason = completion.finish_reason
        completion_tokens = completion.completion_tokens
        if kind == "truncated":
            content = content[: len(content) // 2]
            finish_reason = "length"
            completion_tokens = max(1, completion_tokens // 2) if completion_tokens else 0
        usage = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": completion.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        head = {
            "id": f"chatcmpl-{owner._id_prefix}{next(owner._ids):010x}",
            "created": int(time.time()),
            "model": chat.model,
            "system_fingerprint": f"fp_demo_{chat.model}",
        }
        if chat.stream:
            self._stream(head, content, finish_reason, usage, chat.include_usage, latency, kind)
            return
        time.sleep(latency)
        if kind == "reset":
            self._reset()
            return
        reply = {"role": "assistant", "content": content}
        choice = {"index": 0, "message": reply, "finish_reason": finish_reason}
        payload = {"id": head["id"], "object": "chat.completion", **head}
        data = _dumps({**payload, "choices": [choice], "usage": usage})
        if kind == "malformed":
            data = data[: len(data) // 2]
        owner._count(
            "completions"
        )  # before the reply, so a client reading stats() after it sees it
        self._send(200, data)

    def _stream(
        self,
        head: dict[str, Any],
        content: str,
        finish_reason: str,
        usage: dict[str, Any],
        include_usage: bool,
        latency: float,
        kind: str | None,
    ) -> None:
        """Answer as server-sent events over chunked transfer encoding."""
        chunked = self.request_version == "HTTP/1.1"

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {"id": head["id"], "object": "chat.completion.chunk", **head}
            payload["choices"] = choices
            if include_usage:
                payload["usage"] = None  # OpenAI sends usage: null until the usage chunk
            return b"data: " + _dumps({**payload, **extra}) + b"\n\n"

        def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
            return chunk([{"index": 0, "delta": d, "finish_reason": finish}])

        def frame(*events: bytes) -> bytes:
            data = b"".join(events)
            return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data

        pieces = _pieces(content)
        time.sleep(latency * _TTFT_SHARE)
        if not chunked:
            self.close_connection = True
        fields = [
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache"),
        ]
        if chunked:
            fields.append(("Transfer-Encoding", "chunked"))
        preamble = self._head(200, fields)
        first = [delta({"role": "assistant", "content": ""})]
        if pieces:
            first.append(delta({"content": pieces[0]}))
        self.wfile.write(preamble + frame(*first))
        if kind == "reset":
            self._reset()
            return
        rest = latency * (1.0 - _TTFT_SHARE)
        gaps = max(1, len(pieces) - 1)
        for piece in pieces[1:]:
            time.sleep(rest / gaps)
            self.wfile.write(frame(delta({"content": piece})))
        if len(pieces) <= 1:
            time.sleep(rest)
        tail = [delta({}, finish_reason)]
        if kind == "malformed":
            tail[0] = tail[0][: len(tail[0]) // 2] + b"\n\n"
        if include_usage:
            tail.append(chunk([], usage=usage))
        tail.append(b"data: [DONE]\n\n")
        self.server.owner._count("completions")
        self.wfile.write(frame(*tail) + (b"0\r\n\r\n" if chunked else b""))


class DemoServer:
    """The demo chat-completions server; start() runs it on a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: LatencySpec | None = None,
        faults: FaultSpec | None = None,
        seed: int = 0,
        retry_after_s: int = 1,
        hang_s: float = 30.0,
        respond: Respond | None = None,
        models: Sequence[str] | None = None,
    ) -> None:
        if host not in _LOOPBACK:
            raise ConfigError(f"the demo server binds to 127.0.0.1 only, not {host!r}")
        if respond is None:
            from workbench.demo import model

            respond = model.respond
            models = tuple(model.VERSIONS) if models is None else models
        models = _DEFAULT_MODELS if models is None else models
        if not models:
            raise ConfigError("the demo server needs at least one model name")
        self.models: tuple[str, ...] = tuple(models)
        self.respond: Respond = respond
        self.latency = latency or LatencySpec()
        self.faults = faults or FaultSpec()
        self.seed = seed
        self.retry_after_s = int(retry_after_s)
        self.hang_s = float(hang_s)
        self._created = int(time.time())
        self._id_prefix = secrets.token_hex(7)
        self._ids = itertools.count(1)  # next() on a count is atomic under the GIL
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._lock = threading.Lock()
        self._counts = {"requests": 0, "completions": 0, "errors": 0}
        self._faults = dict.fromkeys(KINDS, 0)
        self._seen: dict[bytes, int] = {}
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._looping = threading.Event()
        self._closed = False
        self._httpd = _HTTPServer(("127.0.0.1", port), self)

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:8000/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> DemoServer:
        """Serve on a daemon thread; the socket is already listening when this returns."""
        if self._closed:
            raise RuntimeError("this DemoServer was stopped; create a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, name=f"demo-server-{self.port}", daemon=True
            )
            self._thread.start()
            self._looping.wait(5.0)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until stop() (or KeyboardInterrupt)."""
        self._looping.set()
        try:
            self._httpd.serve_forever(poll_interval=_POLL_S)
        finally:
            self._looping.clear()

    def stop(self) -> None:
        """Stop promptly: wake hung handlers, close the listener and every open connection."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        if self._looping.is_set() and threading.current_thread() is not self._thread:
            self._httpd.shutdown()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def warm_up(self) -> None:
        """Answer one request per model so the first real ones do not pay for loading."""
        for name in self.models:
            self.respond(name, [{"role": "user", "content": "<ticket>warm-up</ticket>"}])

    def stats(self) -> dict[str, Any]:
        """Requests (not /v1/stats), completions, rejected chat requests, faults per kind."""
        with self._lock:
            return {**self._counts, "faults": dict(self._faults)}

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DemoServer(url={self.url!r}, latency='{self.latency}', faults='{self.faults}')"

    # -- used by the handler ------------------------------------------------------------------

    def _model(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self._created, "owned_by": _OWNER}

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _roll(self, body: bytes) -> str | None:
        """Decide this request's fault from the seed, the body and its repeat count."""
        if not self.faults.rates:
            return None
        digest = hashlib.sha256(body).digest()
        with self._lock:
            n = self._seen.get(digest, 0)
            self._seen[digest] = n + 1
        h = hashlib.sha256(b"%d:%s:%d" % (self.seed, digest.hex().encode(), n)).digest()
        kind = self.faults.pick(int.from_bytes(h[:8], "big") / 2.0**64)
        if kind is not None:
            with self._lock:
                self._faults[kind] += 1
        return kind

    def _sample_latency(self) -> float:
        if self.latency.p95_ms is None:
            return self.latency.median_ms / 1000.0
        with self._rng_lock:
            return self.latency.sample(self._rng)

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    latency: LatencySpec | None = None,
    faults: FaultSpec | None = None,
    seed: int = 0,
    retry_after_s: int = 1,
    hang_s: float = 30.0,
    respond: Respond | None = None,
    models: Sequence[str] | None = None,
) -> None:
    """Print the one "listening on URL" line, then serve until SIGINT or SIGTERM."""
    server = DemoServer(
        host,
        port,
        latency=latency,
        faults=faults,
        seed=seed,
        retry_after_s=retry_after_s,
        hang_s=hang_s,
        respond=respond,
        models=models,
    )

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    server.warm_up()
    print(f"{_LISTENING} {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)


class DemoProcess:
    """The demo server as a child process, for targets that need it for a whole run."""

    def __init__(
        self,
        *,
        latency_ms: str = "0",
        fault_rate: float = 0.0,
        faults: str | None = None,
        seed: int = 0,
    ) -> None:
        self.latency_ms = str(latency_ms)
        self.fault_rate = fault_rate
        self.faults = faults
        self.seed = seed
        self._url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The child's OpenAI base URL (after start())."""
        if self._url is None:
            raise RuntimeError("DemoProcess is not running; call start() first")
        return self._url

    def command(self) -> list[str]:
        """The child's command line."""
        cmd = [
            sys.executable,
            "-m",
            "workbench.demo.server",
            "--port",
            "0",
            "--latency-ms",
            self.latency_ms,
            "--fault-rate",
            repr(float(self.fault_rate)),
            "--seed",
            str(self.seed),
        ]
        if self.faults is not None:
            cmd += ["--faults", self.faults]
        return cmd

    def start(self, timeout: float = 30.0) -> DemoProcess:
        """Launch the child and wait for its "listening on URL" line."""
        if self._proc is not None:
            return self
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        line = self._first_line(timeout)
        match = re.search(rf"{_LISTENING} (http://\S+)", line)
        if match is None:
            stderr = self._stderr_text()
            code = self._proc.poll()
            self.close()
            why = f"exited with code {code}" if code is not None else f"silent for {timeout:g} s"
            raise RuntimeError(
                f"demo server child process {why}; command: {' '.join(self.command())}\n"
                f"stdout: {line.strip()!r}\nstderr:\n{stderr.strip()}"
            )
        self._url = match.group(1)
        return self

    def close(self) -> None:
        """Terminate the child, waiting and killing it if it will not go."""
        proc, self._proc, self._url = self._proc, None, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5.0)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> DemoProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _first_line(self, timeout: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return lines[0].decode(errors="replace") if lines else ""

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")


def _main(argv: Sequence[str] | None = None) -> int:
    """Command line: parse options, then serve()."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench.demo.server",
        description="OpenAI-compatible demo chat-completions server with latency and faults.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 only")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument(
        "--latency-ms", default="0", help="'0', fixed '50', or lognormal 'median,p95' like '80,400'"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="total fault probability, split evenly over --faults kinds",
    )
    parser.add_argument(
        "--faults",
        default=None,
        help=f"kinds ({','.join(KINDS)}; default {','.join(DEFAULT_KINDS)}) "
        "or per-kind rates like '429=0.05,500=0.02'",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds for 429")
    parser.add_argument("--hang-s", type=float, default=30.0, help="how long 'timeout' hangs")
    args = parser.parse_args(argv)
    if args.host not in _LOOPBACK:
        parser.error(f"--host {args.host!r}: the demo server binds to 127.0.0.1 only")
    try:
        latency = LatencySpec.parse(args.latency_ms)
        faults = FaultSpec.parse(args.fault_rate, args.faults)
        serve(
            args.host,
            args.port,
            latency=latency,
            faults=faults,
            seed=args.seed,
            retry_after_s=args.retry_after,
            hang_s=args.hang_s,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
