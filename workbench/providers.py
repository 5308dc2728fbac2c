"""Providers: where model outputs come from, in a registry keyed by target prefix.

``openai:<model>``
    An OpenAI-compatible chat-completions endpoint over async HTTP, with bounded
    concurrency, per-request timeouts, retries with exponential backoff and full
    jitter that honour ``Retry-After``, and a circuit breaker.
``demo:<version>``
    The bundled demo model server, started on a free loopback port for the
    duration of a run, spoken to through the same ``openai`` code path. It lives in
    the ``demo`` package and is registered on first lookup (see ``_PLUGINS``).
``python:<module>:<function>``
    A team's own sync or async callable, so the whole app can be evaluated.

Each registered provider declares the run options it takes (``options``), and the
options of the server it starts itself when a run gives it no ``base_url``
(``server_options``); the CLI and the runner offer theirs through ``options_for``.

Any provider can be wrapped to record its responses into committable JSONL
snapshots, and a run can be replayed from those snapshots with no network.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import importlib
import inspect
import json
import os
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

import aiohttp

from workbench.errors import (
    CircuitOpenError,
    ConfigError,
    ProviderError,
    ReplayMissError,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class Request:
    """One model call: the messages and the sampling parameters that shape its output."""

    messages: list[dict[str, Any]]
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    response_format: Mapping[str, Any] | None = None
    case_id: str | None = None
    input: Mapping[str, Any] | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI function definitions offered
    tool_choice: str | dict[str, Any] | None = None  # none | auto | required | a named function

    def params(self) -> dict[str, Any]:
        """The sampling parameters and tools that are set (they are part of the snapshot key)."""
        out: dict[str, Any] = {}
        for name in (*SAMPLING_PARAMETERS, *TOOL_PARAMETERS):
            value = getattr(self, name)
            if value is not None:
                out[name] = dict(value) if isinstance(value, Mapping) else value
        return out


TOOL_PARAMETERS = ("tools", "tool_choice")
SAMPLING_PARAMETERS = (
    "temperature",
    "top_p",
    "seed",
    "max_tokens",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
)


@dataclass
class Response:
    """A model's answer with what it cost: tokens, latency, time to first token, attempts.

    ``cached_tokens`` (of ``tokens_in``, read from the provider's prompt cache) and
    ``reasoning_tokens`` (of ``tokens_out``) come from the usage details when reported.
    """

    text: str
    finish_reason: str | None = "stop"
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    attempts: int = 1
    replayed: bool = False
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    # the calls the model made, in order: {"id", "name", "arguments"} with the arguments as
    # the raw JSON text the model wrote (parsed and checked by the scorers, not here)
    tool_calls: list[dict[str, str]] | None = None
    # a multi-step app's trajectory: the assistant and tool messages of its steps, each
    # optionally with "latency_ms", "tokens_in" and "tokens_out"
    steps: list[dict[str, Any]] | None = None


class Provider(Protocol):
    """What the runner needs from a provider."""

    target: str
    model: str

    async def start(self) -> None:
        """Acquire resources (clients, child servers); called once before the first call."""

    async def complete(self, request: Request) -> Response:
        """Answer one request, or raise ProviderError after the retries are spent."""

    async def aclose(self) -> None:
        """Release what start() acquired."""


Factory = Callable[..., Provider]


@dataclass(frozen=True)
class _Entry:
    factory: Factory
    options: frozenset[str]
    server_options: frozenset[str]


_REGISTRY: dict[str, _Entry] = {}

# Providers that live in a package of their own: on the first lookup of the prefix the
# package is imported and its ``register()`` registers it here. This is the one hook
# through which the library reaches the bundled demo (its ``register()``).
_PLUGINS = {"demo": "workbench.demo"}


def register(
    prefix: str,
    factory: Factory,
    *,
    options: Iterable[str] = ("concurrency",),
    server_options: Iterable[str] = (),
    replace: bool = False,
) -> None:
    """Register a provider factory for targets ``<prefix>:<rest>``.

    Args:
        options: the run options the factory takes when a run offers them
            (``concurrency``, ``timeout_s``, ``stream``, ``base_url``, ``api_key_env``);
            by default only ``concurrency``.
        server_options: options of the server the provider starts itself; offered
            only when the run gives no ``base_url`` and does not replay.
    """
    if prefix in _REGISTRY and not replace:
        raise ConfigError(f"a provider named {prefix!r} is already registered")
    _REGISTRY[prefix] = _Entry(factory, frozenset(options), frozenset(server_options))


def names() -> list[str]:
    """The provider prefixes: those registered and those registered on first lookup."""
    return sorted({*_REGISTRY, *_PLUGINS})


def _entry(prefix: str) -> _Entry | None:
    if prefix not in _REGISTRY and prefix in _PLUGINS:
        importlib.import_module(_PLUGINS[prefix]).register()
    return _REGISTRY.get(prefix)


def get(target: str, **options: Any) -> Provider:
    """Build the provider for a target such as ``openai:gpt-4o-mini`` or ``demo:triage-v1``."""
    prefix, sep, rest = target.partition(":")
    if not sep or not rest:
        raise ConfigError(
            f"target {target!r} is not of the form <provider>:<model>; "
            f"providers: {', '.join(names())} (e.g. demo:triage-v1, openai:gpt-4o-mini)"
        )
    entry = _entry(prefix)
    if entry is None:
        raise ConfigError(f"no provider named {prefix!r}; known providers: {', '.join(names())}")
    return entry.factory(rest, target=target, **options)


def options_for(
    target: str,
    offered: Mapping[str, Any],
    *,
    base_url: str | None = None,
    replay: bool = False,
) -> dict[str, Any]:
    """The options of ``offered`` that the provider for ``target`` takes (None ones left out).

    Its server options are included only when it will start its own server: the run gives
    no ``base_url`` and does not replay. A target with no provider takes nothing here;
    ``get`` says what exists.
    """
    prefix, _, rest = target.partition(":")
    entry = _entry(prefix) if rest else None
    if entry is None:
        return {}
    takes = set(entry.options)
    if not base_url and not replay:
        takes |= entry.server_options
    return {k: v for k, v in offered.items() if k in takes and v is not None}


# -- retries and the circuit breaker ---------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring Retry-After up to a cap."""

    max_attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        backoff = rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))
        if retry_after is not None:
            return min(max(retry_after, backoff), self.max_retry_after_s)
        return backoff


class CircuitBreaker:
    """Opens when nearly every recent attempt failed; lets one probe through after a cool-down.

    The breaker looks at the last ``window`` attempts: once at least ``failure_threshold``
    of them are recorded and ``failure_ratio`` of them failed, it opens. A flaky provider
    failing half its calls keeps being retried; one that is down is left alone.
    """

    def __init__(
        self,
        failure_threshold: int = 20,
        reset_after_s: float = 10.0,
        *,
        window: int = 40,
        failure_ratio: float = 0.95,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.failure_ratio = failure_ratio
        self.recent: deque[bool] = deque(maxlen=max(window, failure_threshold))
        self.opened_at: float | None = None
        self.times_opened = 0
        self.last_error = ""

    @property
    def failures(self) -> int:
        """Failed attempts among the recent ones."""
        return sum(1 for ok in self.recent if not ok)

    @property
    def is_open(self) -> bool:
        """True while calls are refused."""
        if self.opened_at is None:
            return False
        return time.monotonic() - self.opened_at < self.reset_after_s

    def before_call(self) -> None:
        """Raise CircuitOpenError while open; after the cool-down, allow a probe."""
        if self.is_open:
            raise CircuitOpenError(
                f"circuit breaker open: {self.failures} of the last {len(self.recent)} attempts "
                f"failed (last: {self.last_error}); retrying in {self.reset_after_s:g}s",
                retryable=False,
            )

    def record_success(self) -> None:
        """A call succeeded: close the breaker."""
        if self.opened_at is not None:
            self.recent.clear()
        self.recent.append(True)
        self.opened_at = None

    def record_failure(self, error: str) -> None:
        """A call failed: count it, and open the breaker when failures dominate the window."""
        self.recent.append(False)
        self.last_error = error
        if self.opened_at is not None and not self.is_open:  # the probe after a cool-down failed
            self.opened_at = time.monotonic()
            self.times_opened += 1
            return
        enough = len(self.recent) >= self.failure_threshold
        if enough and self.failures >= self.failure_ratio * len(self.recent) and not self.is_open:
            self.opened_at = time.monotonic()
            self.times_opened += 1


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# -- openai-compatible ------------------------------------------------------------


class OpenAIProvider:
    """An OpenAI-compatible chat-completions endpoint over async HTTP (aiohttp)."""

    kind = "openai"

    def __init__(
        self,
        model: str,
        *,
        target: str | None = None,
        base_url: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        stream: bool = False,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        seed: int = 0,
        **unknown: Any,
    ) -> None:
        _refuse_unknown(unknown, "openai")
        self.model = model
        self.target = target or f"openai:{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.api_key_env = api_key_env
        self.concurrency = max(1, concurrency)
        self.timeout_s = timeout_s
        self.stream = stream
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self._rng = random.Random(seed)
        self._session: aiohttp.ClientSession | None = None
        self._headers: dict[str, str] = {}
        self._limit: asyncio.Semaphore | None = None
        self.retries = 0  # attempts after the first, as they happen (progress reads it)
        self.reconnects = 0  # requests re-sent at once after a stale pooled connection

    async def start(self) -> None:
        """Open the HTTP session; the API key is read from the environment only."""
        key = os.environ.get(self.api_key_env)
        if not key and self.base_url == DEFAULT_BASE_URL:
            raise ConfigError(
                f"{self.target}: no API key; set the environment variable {self.api_key_env} "
                "(keys are never taken from parameters)"
            )
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency),
            timeout=self._timeout(),
            headers=self._headers,
            json_serialize=_dumps,
        )
        self._limit = asyncio.Semaphore(self.concurrency)

    def _timeout(self) -> aiohttp.ClientTimeout:
        """The whole answer within ``timeout_s``; a stream only each next chunk.

        A stream that keeps sending tokens is alive however long the answer (as with the
        openai client, whose timeouts are per read); one that stalls for ``timeout_s`` is not.
        """
        if self.stream:
            return aiohttp.ClientTimeout(
                total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
            )
        return aiohttp.ClientTimeout(total=self.timeout_s)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, request: Request) -> Response:
        """One chat completion with retries, backoff and the circuit breaker."""
        if self._session is None or self._limit is None:
            await self.start()
        assert self._limit is not None
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            **request.params(),
        }
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            self.breaker.before_call()
            retry_after: float | None = None
            try:
                async with self._limit:
                    response = await self._call(body)
            except _Retryable as exc:
                last, retry_after = str(exc), exc.retry_after
            except ProviderError as exc:
                self.breaker.record_success()  # the endpoint answered; the request is at fault
                exc.attempts = attempt
                raise
            else:
                self.breaker.record_success()
                response.attempts = attempt
                return response
            self.breaker.record_failure(last)
            if attempt < self.retry.max_attempts:
                self.retries += 1
                await asyncio.sleep(self.retry.delay(attempt, retry_after, self._rng))
        elapsed = (time.perf_counter() - started) * 1000
        raise ProviderError(
            f"{self.target}: gave up after {self.retry.max_attempts} attempts "
            f"in {elapsed:.0f} ms: {last}",
            attempts=self.retry.max_attempts,
            retryable=True,
        )

    async def _call(self, body: dict[str, Any]) -> Response:
        assert self._session is not None
        # A pooled connection the server already closed fails before any answer (llama.cpp's
        # server closes its end after every streamed response, though it says keep-alive).
        # Nothing reached the model, so the request is sent again at once on another
        # connection, without spending an attempt or a backoff on it.
        for reconnect in range(self.concurrency + 1):
            t0 = time.perf_counter()
            answered = False
            try:
                async with self._session.post(f"{self.base_url}/chat/completions", json=body) as r:
                    answered = True
                    if r.status >= 400:
                        await self._raise_for_status(r)
                    if self.stream:
                        return await self._read_stream(r, t0)
                    raw = await r.read()
                    break
            except TimeoutError:
                raise _Retryable(f"timeout after {self.timeout_s:g}s") from None
            except aiohttp.ClientError as exc:
                stale = isinstance(
                    exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError
                ) and not isinstance(exc, aiohttp.ClientConnectorError)
                if stale and not answered and reconnect < self.concurrency:
                    self.reconnects += 1
                    continue
                raise _Retryable(f"transport error: {type(exc).__name__}: {exc}") from None
        latency = (time.perf_counter() - t0) * 1000
        try:
            doc = json.loads(raw)
            choice = doc["choices"][0]
            text = choice["message"].get("content") or ""
            calls = tool_calls_of(choice["message"].get("tool_calls"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _Retryable(f"malformed response body (HTTP {r.status}): {raw[:80]!r}") from None
        return Response(
            text=text,
            finish_reason=choice.get("finish_reason"),
            latency_ms=latency,
            tool_calls=calls,
            **_usage(doc.get("usage")),
        )

    async def _read_stream(self, r: aiohttp.ClientResponse, t0: float) -> Response:
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] = {}
        ttft: float | None = None
        done = False
        calls = _ToolCallAssembler()
        async for raw in r.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True  # read on to the end of the body so the connection is reused
                continue
            try:
                chunk = json.loads(data)
            except ValueError:
                raise _Retryable(f"malformed stream chunk: {data[:80]!r}") from None
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                piece = delta.get("content")
                if (piece or delta.get("tool_calls")) and ttft is None:
                    ttft = (time.perf_counter() - t0) * 1000
                if piece:
                    parts.append(piece)
                if delta.get("tool_calls"):
                    try:
                        calls.add(delta["tool_calls"])
                    except (KeyError, TypeError, ValueError, AttributeError):
                        raise _Retryable(f"malformed tool-call delta: {data[:80]!r}") from None
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        if not done and finish is None:
            raise _Retryable("stream ended before [DONE]")
        return Response(
            text="".join(parts),
            finish_reason=finish,
            latency_ms=(time.perf_counter() - t0) * 1000,
            ttft_ms=ttft,
            tool_calls=calls.result(),
            **_usage(usage),
        )

    async def _raise_for_status(self, r: aiohttp.ClientResponse) -> None:
        raw = await r.read()
        message = _error_message(raw, r.reason or "")
        if r.status == 429 or r.status >= 500 or r.status == 408:
            raise _Retryable(f"HTTP {r.status}: {message}", _retry_after(r.headers))
        raise ProviderError(f"{self.target}: HTTP {r.status}: {message}")


def tool_calls_of(raw: Any) -> list[dict[str, str]] | None:
    """A message's ``tool_calls`` as ``[{"id", "name", "arguments"}]`` (None when it has none).

    Arguments stay the text the model wrote: a call whose arguments are not JSON is kept as
    it came, for the scorers to judge, not dropped here.
    """
    if not raw:
        return None
    out = []
    for call in raw:
        fn = call.get("function") or {}
        arguments = fn.get("arguments")
        out.append(
            {
                "id": str(call.get("id") or ""),
                "name": str(fn.get("name") or ""),
                "arguments": arguments
                if isinstance(arguments, str)
                else json.dumps(arguments, ensure_ascii=False),
            }
        )
    return out


class _ToolCallAssembler:
    """Streamed ``delta.tool_calls`` fragments into whole calls, as the OpenAI client does:
    by ``index``, the id, type and name from the first fragment that has them, the
    argument text concatenated in order."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}

    def add(self, fragments: list[dict[str, Any]]) -> None:
        for fragment in fragments:
            index = int(fragment["index"])
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if fragment.get("id"):
                call["id"] = str(fragment["id"])
            fn = fragment.get("function") or {}
            if fn.get("name"):
                call["name"] += str(fn["name"])
            if fn.get("arguments"):
                call["arguments"] += str(fn["arguments"])

    def result(self) -> list[dict[str, str]] | None:
        return [self.calls[i] for i in sorted(self.calls)] or None


class _Usage(TypedDict):
    tokens_in: int | None
    tokens_out: int | None
    cached_tokens: int | None
    reasoning_tokens: int | None


def _usage(usage: Any) -> _Usage:
    """Token counts from an OpenAI ``usage`` object, its details included when reported."""
    if not isinstance(usage, Mapping):
        usage = {}
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    return {
        "tokens_in": _count(usage.get("prompt_tokens")),
        "tokens_out": _count(usage.get("completion_tokens")),
        "cached_tokens": _count(prompt.get("cached_tokens"))
        if isinstance(prompt, Mapping)
        else None,
        "reasoning_tokens": (
            _count(completion.get("reasoning_tokens")) if isinstance(completion, Mapping) else None
        ),
    }


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _error_message(raw: bytes, reason: str) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace") or reason


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _refuse_unknown(unknown: Mapping[str, Any], provider: str) -> None:
    if unknown:
        raise ConfigError(f"{provider} provider: unknown option(s) {', '.join(sorted(unknown))}")


# -- python callables ---------------------------------------------------------------


class PythonProvider:
    """A user's own callable ``fn(request) -> str | dict | Response``, sync or async."""

    kind = "python"

    def __init__(self, spec: str, *, target: str | None = None, **unknown: Any) -> None:
        unknown.pop("concurrency", None)
        unknown.pop("seed", None)
        _refuse_unknown(unknown, "python")
        self.target = target or f"python:{spec}"
        self.model = spec
        self.fn = _import_callable(spec)

    async def start(self) -> None:
        """Nothing to start."""

    async def aclose(self) -> None:
        """Nothing to close."""

    async def complete(self, request: Request) -> Response:
        """Call the function (sync ones in a worker thread) and time it."""
        t0 = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(self.fn):
                value = await self.fn(request)
            else:
                value = await asyncio.to_thread(self.fn, request)
                if inspect.isawaitable(value):
                    value = await value
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(f"{self.target}: {type(exc).__name__}: {exc}") from exc
        latency = (time.perf_counter() - t0) * 1000
        if isinstance(value, Response):
            if value.latency_ms is None:
                value.latency_ms = latency
            if value.steps and value.tool_calls is None:
                value.tool_calls = _trajectory_calls(value.steps)
            return value
        if isinstance(value, str):
            text = value
        else:
            try:
                text = json.dumps(value, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise ProviderError(
                    f"{self.target}: returned {type(value).__name__}, which is not JSON-serialisable; "
                    "return a str, a JSON value or a workbench.Response"
                ) from exc
        return Response(text=text, latency_ms=latency)


def _trajectory_calls(steps: list[dict[str, Any]]) -> list[dict[str, str]] | None:
    """Every tool call of a trajectory's assistant steps, in order."""
    calls: list[dict[str, str]] = []
    for step in steps:
        if step.get("role") == "assistant":
            calls.extend(tool_calls_of(step.get("tool_calls")) or [])
    return calls or None


def _import_callable(spec: str) -> Callable[..., Any]:
    module_name, sep, attr = spec.rpartition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(
            f"python target {spec!r} must be <module>:<function>, e.g. python:myapp.eval:answer"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"python target: cannot import module {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"python target: {module_name!r} has no callable {attr!r}")
    return fn  # type: ignore[no-any-return]


# -- record and replay -------------------------------------------------------------


_SNAPSHOT_FIELDS = ("text", "finish_reason", "tokens_in", "tokens_out")
# written only when reported (a snapshot without tool calls reads as it did before them)
_SNAPSHOT_DETAILS = ("cached_tokens", "reasoning_tokens", "tool_calls", "steps")


def snapshot_key(provider_kind: str, model: str, request: Request) -> str:
    """Stable hash of (provider, model, messages, parameters): the snapshot key."""
    material = {
        "provider": provider_kind,
        "model": model,
        "messages": request.messages,
        "params": request.params(),
    }
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _snapshot_problem(entry: Any) -> str | None:
    """What is wrong with a parsed snapshot line, or None for a usable entry."""
    if not isinstance(entry, dict):
        return f"a JSON object, not {type(entry).__name__}"
    if not isinstance(entry.get("key"), str) or not entry["key"]:
        return "key: missing or not a string"
    response = entry.get("response")
    if not isinstance(response, dict):
        return "response: missing or not an object"
    if not isinstance(response.get("text"), str):
        return "response.text: missing or not a string"
    if not isinstance(response.get("finish_reason"), str | None):
        return "response.finish_reason: not a string"
    calls = response.get("tool_calls")
    if calls is not None and not (
        isinstance(calls, list)
        and all(
            isinstance(c, dict)
            and all(isinstance(c.get(k), str) for k in ("id", "name", "arguments"))
            for c in calls
        )
    ):
        return "response.tool_calls: not a list of {id, name, arguments} strings"
    if response.get("steps") is not None and not isinstance(response.get("steps"), list):
        return "response.steps: not a list"
    for field_name in ("tokens_in", "tokens_out", "cached_tokens", "reasoning_tokens"):
        value = response.get(field_name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return f"response.{field_name}: not an integer"
    return None


class Snapshots:
    """Committable JSONL snapshots of responses for one target, one file per target.

    ``role`` names a file apart for the same target in another role: a judge's calls are
    kept in ``judge@TARGET.jsonl``, so a model judging itself never shares a file.
    """

    def __init__(
        self, folder: str | os.PathLike[str], target: str, *, role: str | None = None
    ) -> None:
        self.folder = Path(folder)
        self.target = target
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", target)
        self.path = self.folder / ((f"{role}@{stem}" if role else stem) + ".jsonl")
        self.entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        from workbench.errors import DatasetError

        with self.path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                problem: str | None
                try:
                    entry = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    problem = f"not valid UTF-8 at byte {exc.start}"
                except ValueError as exc:
                    problem = f"not valid JSON: {str(exc)[:200]}"
                except RecursionError:
                    problem = "JSON nested too deeply"
                else:
                    problem = _snapshot_problem(entry)
                if problem:
                    raise DatasetError(
                        f"{self.path}:{lineno}: not a snapshot entry ({problem}); "
                        "fix or delete the line and re-record"
                    )
                self.entries[entry["key"]] = entry

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry for a key, or None."""
        return self.entries.get(key)

    def add(self, key: str, request: Request, response: Response) -> None:
        """Store a response and append it to the file at once (nothing is lost on a crash)."""
        entry = {
            "key": key,
            "target": self.target,
            "case_id": request.case_id,
            "request": {"messages": request.messages, **request.params()},
            # Only what the model said: timings differ on every recording and would
            # make every re-record a diff of every line.
            "response": {
                k: v
                for k, v in asdict(response).items()
                if k in _SNAPSHOT_FIELDS or (k in _SNAPSHOT_DETAILS and v is not None)
            },
        }
        self.entries[key] = entry
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        self._dirty = True

    def compact(self) -> None:
        """Rewrite the file sorted by key with one line per key, atomically (stable diffs)."""
        if not self._dirty:
            return
        tmp = self.path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for key in sorted(self.entries):
                fh.write(json.dumps(self.entries[key], ensure_ascii=False, sort_keys=True) + "\n")
        os.replace(tmp, self.path)
        self._dirty = False


class RecordingProvider:
    """Wrap a provider and write every response it returns to snapshots."""

    def __init__(
        self, inner: Provider, folder: str | os.PathLike[str], *, role: str | None = None
    ) -> None:
        self.inner = inner
        self.target = inner.target
        self.model = inner.model
        self.kind = getattr(inner, "kind", inner.target.partition(":")[0])
        self.snapshots = Snapshots(folder, inner.target, role=role)

    @property
    def retries(self) -> int:
        """The wrapped provider's retries so far."""
        return int(getattr(self.inner, "retries", 0))

    async def start(self) -> None:
        """Start the wrapped provider, creating its snapshot file: a recording in which this
        target was never called (a judge with nothing to judge) still replays."""
        self.snapshots.folder.mkdir(parents=True, exist_ok=True)
        self.snapshots.path.touch(exist_ok=True)
        await self.inner.start()

    async def aclose(self) -> None:
        """Close the wrapped provider and compact the snapshot file."""
        try:
            await self.inner.aclose()
        finally:
            self.snapshots.compact()

    async def complete(self, request: Request) -> Response:
        """Call the wrapped provider and record its response."""
        response = await self.inner.complete(request)
        self.snapshots.add(snapshot_key(self.kind, self.model, request), request, response)
        return response


class ReplayProvider:
    """Serve responses from snapshots with no network; a missing key is an error."""

    def __init__(
        self, target: str, folder: str | os.PathLike[str], *, role: str | None = None
    ) -> None:
        self.target = target
        self.kind, _, self.model = target.partition(":")
        if self.kind == "python":
            self.model = target.partition(":")[2]
        self.snapshots = Snapshots(folder, target, role=role)
        if not self.snapshots.path.exists():
            raise ConfigError(
                f"replay: no snapshot file {self.snapshots.path} for {target}; "
                f"record one first with --record {folder}"
            )

    async def start(self) -> None:
        """Nothing to start."""

    async def aclose(self) -> None:
        """Nothing to close."""

    async def complete(self, request: Request) -> Response:
        """The recorded response for this request."""
        key = snapshot_key(self.kind, self.model, request)
        entry = self.snapshots.get(key)
        if entry is None:
            raise ReplayMissError(
                f"replay: no snapshot for case {request.case_id!r} (key {key[:12]}) in "
                f"{self.snapshots.path}; the prompt, model or parameters changed since it was "
                "recorded: re-record with --record"
            )
        stored = entry["response"]
        return Response(
            text=stored["text"],
            finish_reason=stored.get("finish_reason"),
            tokens_in=stored.get("tokens_in"),
            tokens_out=stored.get("tokens_out"),
            cached_tokens=stored.get("cached_tokens"),
            reasoning_tokens=stored.get("reasoning_tokens"),
            tool_calls=stored.get("tool_calls"),
            steps=stored.get("steps"),
            replayed=True,
        )


def build(
    target: str,
    *,
    record: str | os.PathLike[str] | None = None,
    replay: str | os.PathLike[str] | None = None,
    role: str | None = None,
    **options: Any,
) -> Provider:
    """The provider for a run: replay from snapshots, or the live target (recording if asked).

    ``role`` (such as ``judge``) keeps the target's snapshots in a file of their own.
    """
    if record and replay:
        raise ConfigError("--record and --replay are exclusive: record once, then replay")
    if replay:
        return ReplayProvider(target, replay, role=role)
    provider = get(target, **options)
    return RecordingProvider(provider, record, role=role) if record else provider


register(
    "openai",
    OpenAIProvider,
    options=("concurrency", "timeout_s", "stream", "base_url", "api_key_env"),
)
register("python", PythonProvider, options=("concurrency",))

__all__ = [
    "TOOL_PARAMETERS",
    "CircuitBreaker",
    "OpenAIProvider",
    "Provider",
    "PythonProvider",
    "RecordingProvider",
    "ReplayProvider",
    "Request",
    "Response",
    "RetryPolicy",
    "Snapshots",
    "build",
    "get",
    "names",
    "options_for",
    "register",
    "snapshot_key",
    "tool_calls_of",
]
