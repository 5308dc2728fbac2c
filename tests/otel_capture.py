"""Capture the real spans an OpenAI-client instrumentation emits, for committed fixtures.

Run one instrumentation per process (each patches the ``openai`` module globally)::

    .venv/bin/python tests/otel_capture.py LIB --base-url URL [--otlp URL | --out FILE]

``LIB`` is ``openai-v2`` (opentelemetry-instrumentation-openai-v2), ``openllmetry``
(opentelemetry-instrumentation-openai) or ``openinference``
(openinference-instrumentation-openai). ``URL`` is an OpenAI-compatible base URL such as the
demo model server's (``workbench.demo.server.DemoServer(...).url``, which ends in ``/v1``).

The script builds an SDK TracerProvider (resource ``service.name`` = ``otel-capture-app``),
turns on message-content capture where the library offers it, instruments the client and
runs a fixed scenario, each call inside a SERVER span of its own with an ``http.route``:

* 3 chat completions of ``triage-v1`` (``POST /api/triage``), temperature 0 and a seed;
* 2 streamed ones (``POST /api/search``) with ``stream_options={"include_usage": True}``,
  every chunk consumed;
* 1 call of the unknown model ``no-such-model`` (``POST /api/triage``), which the server
  answers 404: the ``openai.NotFoundError`` is caught and the SERVER span set to ERROR.

Spans go to an OTLP/HTTP endpoint (``--otlp``, e.g. http://127.0.0.1:4318/v1/traces) or to
an OTLP JSON Lines file (``--out``, replaced if it exists). At the end the provider is shut
down (flushing the spans) and one JSON line summarising what the server answered is printed:
``lib``, ``calls``, ``ok``, ``errors``, ``streamed``, ``input_tokens`` / ``output_tokens``
(``usage.prompt_tokens`` / ``usage.completion_tokens`` summed over successful calls),
``models`` (the distinct ``model`` values of successful responses, sorted) and
``spans_ended`` (every span the provider ended, SERVER spans included).

The API key sent is the placeholder ``not-a-secret``; nothing secret is read or written.

The fixtures in ``tests/data/otel/`` (``LIB.jsonl`` and the summary line as
``LIB.expected.json``) were made against the demo server without faults and with a fixed
40 ms latency, one process per library::

    .venv/bin/python -m workbench.demo server --latency-ms 40 --fault-rate 0   # prints its URL
    for lib in openai-v2 openllmetry openinference; do
        .venv/bin/python tests/otel_capture.py $lib --base-url URL \
            --out tests/data/otel/$lib.jsonl > tests/data/otel/$lib.expected.json
    done

Span and trace ids, timestamps, response ids, the server's port and the
``service.instance.id`` differ from run to run; the rest is deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

LIBS = ("openai-v2", "openllmetry", "openinference")
SERVICE = "otel-capture-app"
API_KEY = "not-a-secret"
MODEL = "triage-v1"
MISSING_MODEL = "no-such-model"
SEED = 7
SYSTEM = (
    "You triage customer support tickets. Answer with a JSON object with the keys "
    "category, priority, needs_human and summary."
)
TRIAGE_TICKETS = (
    "My invoice is wrong: I was charged twice for the Pro plan this month.",
    "I cannot log in since the last update, the password reset email never arrives.",
    "My order has not arrived and the tracking number has not updated in a week.",
)
SEARCH_TICKETS = (
    "It would be great if you could add a dark mode to the dashboard.",
    "The whole site is down for everyone, all requests fail with 503 errors.",
)
MISSING_TICKET = "My invoice is wrong"


class CountingProcessor(SpanProcessor):
    """Counts the spans that end."""

    def __init__(self) -> None:
        self.ended = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Count one ended span."""
        self.ended += 1


@dataclass
class Tally:
    """What the server answered over the scenario."""

    calls: int = 0
    ok: int = 0
    errors: int = 0
    streamed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    models: set[str] = field(default_factory=set)

    def success(self, model: str, usage: Any) -> None:
        """Record one successful call, its response model and its usage (if any)."""
        self.ok += 1
        self.models.add(model)
        if usage is not None:
            self.input_tokens += usage.prompt_tokens
            self.output_tokens += usage.completion_tokens


def enable_content_capture(lib: str) -> None:
    """Turn on prompt and completion capture where the library reads it from the environment.

    Set before instrumenting, without overriding a value already in the environment.
    OpenInference captures content unless told not to (``OPENINFERENCE_HIDE_*``).
    """
    if lib == "openai-v2":
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
        os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    elif lib == "openllmetry":
        os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")


def instrument(lib: str, provider: TracerProvider) -> None:
    """Instrument the openai client with ``lib``, its spans going to ``provider``."""
    if lib == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OpenAIV2

        OpenAIV2().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    elif lib == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry

        OpenLLMetry().instrument(tracer_provider=provider)
    elif lib == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference

        OpenInference().instrument(tracer_provider=provider)
    else:
        raise ValueError(f"unknown instrumentation {lib!r}; known: {', '.join(LIBS)}")


def make_exporter(otlp: str | None, out: Path | None) -> SpanExporter:
    """The real OTLP/HTTP exporter, or an OTLP JSON Lines file exporter (file replaced)."""
    if otlp is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=otlp)
    assert out is not None
    from workbench.demo.telemetry import OTLPJsonLinesExporter

    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # the exporter appends; a fixture holds one run
    return OTLPJsonLinesExporter(out)


def messages(ticket: str) -> list[ChatCompletionMessageParam]:
    """The chat messages for one ticket."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"<ticket>{ticket}</ticket>"},
    ]


class Scenario:
    """The fixed scenario: 3 plain calls, 2 streamed ones, 1 call of an unknown model."""

    def __init__(self, client: openai.OpenAI, tracer: Tracer) -> None:
        self.client = client
        self.tracer = tracer
        self.tally = Tally()

    def run(self) -> Tally:
        """Make every call, each inside its own SERVER span."""
        for ticket in TRIAGE_TICKETS:
            with self._server_span("/api/triage"):
                self.plain(ticket)
        for ticket in SEARCH_TICKETS:
            with self._server_span("/api/search"):
                self.streamed(ticket)
        with self._server_span("/api/triage") as span:
            self.missing(span)
        return self.tally

    def _server_span(self, route: str) -> AbstractContextManager[trace.Span]:
        return self.tracer.start_as_current_span(
            f"POST {route}",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.route": route},
        )

    def plain(self, ticket: str) -> None:
        """One non-streaming chat completion."""
        self.tally.calls += 1
        response = self.client.chat.completions.create(
            model=MODEL, messages=messages(ticket), temperature=0, seed=SEED
        )
        self.tally.success(response.model, response.usage)

    def streamed(self, ticket: str) -> None:
        """One streamed chat completion, every chunk consumed; usage comes in the last."""
        self.tally.calls += 1
        stream = self.client.chat.completions.create(
            model=MODEL,
            messages=messages(ticket),
            temperature=0,
            seed=SEED,
            stream=True,
            stream_options={"include_usage": True},
        )
        model, usage = "", None
        for chunk in stream:
            model = chunk.model or model
            usage = chunk.usage or usage
        self.tally.streamed += 1
        self.tally.success(model, usage)

    def missing(self, server_span: trace.Span) -> None:
        """One call of a model the server does not serve: 404, caught, span set to ERROR."""
        self.tally.calls += 1
        try:
            response = self.client.chat.completions.create(
                model=MISSING_MODEL, messages=messages(MISSING_TICKET), temperature=0, seed=SEED
            )
        except openai.NotFoundError as exc:
            self.tally.errors += 1
            server_span.set_status(
                Status(StatusCode.ERROR, f"model call failed with HTTP {exc.status_code}")
            )
        else:  # not expected: the server serves no such model
            self.tally.success(response.model, response.usage)


def served_models(base_url: str) -> list[str]:
    """The model ids the server lists (GET /v1/models), asked before instrumenting."""
    with openai.OpenAI(base_url=base_url, api_key=API_KEY) as client:
        return sorted(model.id for model in client.models.list())


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, capture the spans of one library and print the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lib", choices=LIBS, help="the instrumentation to capture")
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible base URL (…/v1)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--otlp", help="OTLP/HTTP traces endpoint, e.g. …:4318/v1/traces")
    target.add_argument("--out", type=Path, help="OTLP JSON Lines file to write (replaced)")
    args = parser.parse_args(argv)

    served = served_models(args.base_url)
    if MODEL not in served:
        parser.error(f"{args.base_url} does not serve {MODEL!r} (it serves {', '.join(served)})")

    counter = CountingProcessor()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(counter)
    provider.add_span_processor(BatchSpanProcessor(make_exporter(args.otlp, args.out)))
    enable_content_capture(args.lib)
    instrument(args.lib, provider)

    tracer = provider.get_tracer("otel-capture")
    with openai.OpenAI(base_url=args.base_url, api_key=API_KEY, max_retries=0) as client:
        tally = Scenario(client, tracer).run()
    provider.shutdown()

    summary = {
        "lib": args.lib,
        "calls": tally.calls,
        "ok": tally.ok,
        "errors": tally.errors,
        "streamed": tally.streamed,
        "input_tokens": tally.input_tokens,
        "output_tokens": tally.output_tokens,
        "models": sorted(tally.models),
        "spans_ended": counter.ended,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
