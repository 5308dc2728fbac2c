"""An OpenAI-compatible chat-completions server on 127.0.0.1 with latency and fault injection.

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``
(plain JSON or ``stream: true`` server-sent events) and the non-OpenAI ``GET /v1/stats``.
By default it serves the triage versions (``workbench.demo.model``) and the judge model
``judge`` (``workbench.demo.judge``), which reads the request's ``response_format``.

Faults are rolled per chat-completion request from ``sha256(seed, sha256(body), n)``, where
``n`` counts earlier requests with the identical body, so a run is reproducible given the
seed and the request sequence, and a client's retry of the same request rolls again.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import random
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from workbench.demo.faults import DEFAULT_KINDS, KINDS, FaultSpec, LatencySpec
from workbench.demo.httpd import (
    LOOPBACK,
    JSONHandler,
    LoopbackServer,
    check_loopback,
    dumps,
    until_interrupted,
)
from workbench.demo.process import LISTENING, DemoProcess
from workbench.errors import ConfigError

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "DemoProcess",
    "DemoServer",
    "FaultSpec",
    "LatencySpec",
    "add_arguments",
    "command",
    "serve",
]

_LOG = logging.getLogger(__name__)
_SLOW_FACTOR = 5.0
# Without any configured latency a 5x slowdown would be invisible; this keeps "slow" observable.
_SLOW_FLOOR_S = 0.25
_TTFT_SHARE = 0.3
_MAX_BODY = 16 * 1024 * 1024
_OWNER = "workbench-demo"
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
    response_format = req.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict):
            raise _BadRequest(
                400,
                f"Invalid value for 'response_format': {response_format!r}.",
                "invalid_value",
                "response_format",
            )
        options["response_format"] = response_format
    tools, tool_choice = req.get("tools"), req.get("tool_choice")
    if tools is not None:
        names = (
            [(t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)]
            if isinstance(tools, list)
            else []
        )
        if not isinstance(tools, list) or not tools or not all(isinstance(n, str) for n in names):
            raise _BadRequest(
                400,
                "Invalid 'tools': expected a non-empty array of {type: 'function', function: "
                "{name, parameters}}.",
                "invalid_value",
                "tools",
            )
        options["tools"] = tools
    if tool_choice is not None:
        named = isinstance(tool_choice, dict) and (tool_choice.get("function") or {}).get("name")
        if tools is None:
            raise _BadRequest(
                400,
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified.",
                "invalid_value",
                "tool_choice",
            )
        if tool_choice not in ("none", "auto", "required") and named not in names:
            raise _BadRequest(
                400,
                f"Invalid value for 'tool_choice': {tool_choice!r}.",
                "invalid_value",
                "tool_choice",
            )
        options["tool_choice"] = tool_choice
    stream_options = req.get("stream_options") or {}
    return _Chat(
        model=model,
        messages=messages,
        options=options,
        stream=req.get("stream") is True,
        include_usage=isinstance(stream_options, dict)
        and bool(stream_options.get("include_usage")),
    )


class _Handler(JSONHandler["DemoServer"]):
    """Routes requests to the owning DemoServer's state."""

    server_version = "workbench-demo/0.1"
    max_body = _MAX_BODY

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol errors (bad request line, unknown method) in the OpenAI JSON shape."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        self._send_json(code, _invalid(f"{text} ({explain})" if explain else text, None))

    # -- plumbing -------------------------------------------------------------------------

    def _refuse_body(self, status: int) -> None:
        if status == 411:
            self._send_json(411, _invalid("Send the body with a Content-Length header.", None))
        else:
            self._send_json(
                413, _invalid(f"Bad or too large Content-Length (max {_MAX_BODY}).", None)
            )

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
        calls = [dict(c) for c in getattr(completion, "tool_calls", ()) or ()]
        if kind == "truncated":
            content = content[: len(content) // 2]
            if calls:  # a cut-off call: its arguments end half-way
                last = calls[-1]["function"]
                calls[-1] = {
                    **calls[-1],
                    "function": {
                        **last,
                        "arguments": last["arguments"][: len(last["arguments"]) // 2],
                    },
                }
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
            self._stream(
                head, content, finish_reason, usage, chat.include_usage, latency, kind, calls
            )
            return
        time.sleep(latency)
        if kind == "reset":
            self._reset()
            return
        reply: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            reply = {"role": "assistant", "content": None, "tool_calls": calls}
        choice = {"index": 0, "message": reply, "finish_reason": finish_reason}
        payload = {"id": head["id"], "object": "chat.completion", **head}
        data = dumps({**payload, "choices": [choice], "usage": usage})
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
        calls: list[dict[str, Any]] | None = None,
    ) -> None:
        """Answer as server-sent events over chunked transfer encoding; tool calls come as
        ``delta.tool_calls`` fragments (the first with index, id, type and name, then the
        arguments in pieces), as the OpenAI API streams them."""
        chunked = self.request_version == "HTTP/1.1"

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {"id": head["id"], "object": "chat.completion.chunk", **head}
            payload["choices"] = choices
            if include_usage:
                payload["usage"] = None  # OpenAI sends usage: null until the usage chunk
            return b"data: " + dumps({**payload, **extra}) + b"\n\n"

        def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
            return chunk([{"index": 0, "delta": d, "finish_reason": finish}])

        def frame(*events: bytes) -> bytes:
            data = b"".join(events)
            return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data

        pieces: list[Any] = _pieces(content)
        first_delta: dict[str, Any] = {"role": "assistant", "content": ""}
        if calls:
            first_delta = {"role": "assistant", "content": None}
            pieces = []
            for i, call in enumerate(calls):
                opening = {
                    "index": i,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                pieces.append({"tool_calls": [opening]})
                pieces.extend(
                    {"tool_calls": [{"index": i, "function": {"arguments": part}}]}
                    for part in _pieces(call["function"]["arguments"])
                )
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
        first = [delta(first_delta)]
        if pieces:
            first.append(delta(pieces[0] if calls else {"content": pieces[0]}))
        self.wfile.write(preamble + frame(*first))
        if kind == "reset":
            self._reset()
            return
        rest = latency * (1.0 - _TTFT_SHARE)
        gaps = max(1, len(pieces) - 1)
        for piece in pieces[1:]:
            time.sleep(rest / gaps)
            self.wfile.write(frame(delta(piece if calls else {"content": piece})))
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


def _demo_respond(name: str, messages: list[dict[str, Any]], **options: Any) -> _CompletionLike:
    """The bundled models: ``judge`` grades (workbench.demo.judge), the others triage."""
    from workbench.demo import judge, model, tools

    if name == judge.MODEL:  # a grader, not an agent: it answers in text whatever is offered
        options.pop("tools", None)
        options.pop("tool_choice", None)
        return judge.respond(messages, **options)
    if options.get("tools"):
        return tools.respond(name, messages, **options)
    options.pop("tool_choice", None)
    return model.respond(name, messages, **options)


class DemoServer(LoopbackServer):
    """The demo chat-completions server; start() runs it on a background thread."""

    label = "demo server"
    logger = _LOG

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
        check_loopback(host, self.label)
        if respond is None:
            from workbench.demo import judge, model

            respond = _demo_respond
            models = (*model.VERSIONS, judge.MODEL) if models is None else models
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
        self._stopping = threading.Event()
        super().__init__(_Handler, host, port)

    @property
    def url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:8000/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def warm_up(self) -> None:
        """Answer one request per model so the first real ones do not pay for loading."""
        for name in self.models:
            self.respond(name, [{"role": "user", "content": "<ticket>warm-up</ticket>"}])

    def stats(self) -> dict[str, Any]:
        """Requests (not /v1/stats), completions, rejected chat requests, faults per kind."""
        with self._lock:
            return {**self._counts, "faults": dict(self._faults)}

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

    def _on_stop(self) -> None:
        self._stopping.set()


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
    with until_interrupted():
        try:
            server.warm_up()
            print(f"{LISTENING} {server.url}", flush=True)
            server.serve_forever()
        finally:
            server.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m workbench.demo server``."""
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


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``python -m workbench.demo server``: serve() with the parsed options."""
    if args.host not in LOOPBACK:
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
