"""The demo server over real HTTP on 127.0.0.1: OpenAI shapes, streaming, latency and faults."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from workbench.demo.__main__ import main
from workbench.demo.server import (
    KINDS,
    DemoServer,
    FaultSpec,
    LatencySpec,
)
from workbench.errors import ConfigError


@dataclass(frozen=True)
class FakeCompletion:
    """Stands in for workbench.demo.model.Completion."""

    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def fake_respond(
    version: str,
    messages: list[dict[str, Any]],
    *,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
) -> FakeCompletion:
    """Echo the last user message as JSON."""
    text = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    content = json.dumps({"echo": text, "version": version, "seed": seed})
    return FakeCompletion(content, "stop", 3 + len(text.split()), max(1, len(content) // 4))


def chat(text: str = "hello there, demo", **extra: Any) -> dict[str, Any]:
    """A chat-completion request body."""
    return {"model": "triage-v1", "messages": [{"role": "user", "content": text}], **extra}


Factory = Callable[..., DemoServer]


@pytest.fixture
def make_server() -> Iterator[Factory]:
    """Start DemoServers with the fake respond; stop them all afterwards."""
    started: list[DemoServer] = []

    def make(**kwargs: Any) -> DemoServer:
        kwargs.setdefault("respond", fake_respond)
        server = DemoServer(**kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Factory) -> DemoServer:
    """A fault-free, zero-latency server."""
    return make_server()


def client(server: DemoServer, timeout: float = 10.0) -> httpx.Client:
    """A sync httpx client on the server's base URL."""
    return httpx.Client(base_url=server.url, timeout=timeout)


def sse(response: httpx.Response) -> list[str]:
    """The data payloads of a server-sent event stream."""
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


# -- OpenAI shapes -----------------------------------------------------------------------


def test_models_list(server: DemoServer) -> None:
    with client(server) as c:
        body = c.get("/models").json()
        one = c.get("/models/triage-v2")
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["triage-v1", "triage-v2"]
    for m in body["data"]:
        assert m["object"] == "model" and m["owned_by"] == "workbench-demo"
        assert isinstance(m["created"], int)
    assert one.json()["id"] == "triage-v2"
    assert server.url == f"http://127.0.0.1:{server.port}/v1"


def test_completion_shape_and_usage(server: DemoServer) -> None:
    with client(server) as c:
        r = c.post("/chat/completions", json=chat("classify me please", seed=7, temperature=0.2))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "triage-v1"
    assert body["system_fingerprint"] == "fp_demo_triage-v1"
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert json.loads(choice["message"]["content"]) == {
        "echo": "classify me please",
        "version": "triage-v1",
        "seed": 7,
    }
    expected = fake_respond("triage-v1", chat("classify me please")["messages"], seed=7)
    usage = body["usage"]
    assert usage["prompt_tokens"] == expected.prompt_tokens
    assert usage["completion_tokens"] == expected.completion_tokens
    assert usage["total_tokens"] == expected.prompt_tokens + expected.completion_tokens
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0}


def test_options_reach_respond(make_server: Factory) -> None:
    seen: list[dict[str, Any]] = []

    def spy(version: str, messages: list[dict[str, Any]], **options: Any) -> FakeCompletion:
        seen.append(options)
        return FakeCompletion("ok", "stop", 1, 1)

    server = make_server(respond=spy)
    with client(server) as c:
        c.post("/chat/completions", json=chat(temperature=0.5, seed=3, max_completion_tokens=9))
        c.post("/chat/completions", json=chat(max_tokens=4))
        c.post("/chat/completions", json=chat())
    assert seen == [{"temperature": 0.5, "seed": 3, "max_tokens": 9}, {"max_tokens": 4}, {}]


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_reassembles_to_the_same_content(server: DemoServer, include_usage: bool) -> None:
    text = "my invoice was charged twice this month and I would like a refund please"
    with client(server) as c:
        plain = c.post("/chat/completions", json=chat(text)).json()
        options = {"include_usage": include_usage}
        body = chat(text, stream=True, stream_options=options)
        with c.stream("POST", "/chat/completions", json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["transfer-encoding"] == "chunked"
            events = sse(r)
        again = c.get("/models")  # the keep-alive connection is still in a clean state
    assert again.status_code == 200
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(ch["object"] == "chat.completion.chunk" for ch in chunks)
    assert len({ch["id"] for ch in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[0]["choices"][0]["finish_reason"] is None
    with_choices = [ch for ch in chunks if ch["choices"]]
    pieces = [ch["choices"][0]["delta"].get("content", "") for ch in with_choices]
    assert 4 <= sum(1 for p in pieces if p) <= 8
    assert "".join(pieces) == plain["choices"][0]["message"]["content"]
    assert with_choices[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    usage_chunks = [ch for ch in chunks if not ch["choices"]]
    if include_usage:
        assert chunks[-1] is usage_chunks[0]
        assert chunks[-1]["usage"] == plain["usage"]
        assert all(ch["usage"] is None for ch in chunks[:-1])
    else:
        assert usage_chunks == [] and all("usage" not in ch for ch in chunks)


def test_stream_latency_ttft_then_spread(make_server: Factory) -> None:
    server = make_server(latency=LatencySpec.parse("400"))
    with client(server) as c:
        c.get("/models")  # connect first so the timing below is the server's
        t0 = time.perf_counter()
        with c.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
            first_token = None
            for line in r.iter_lines():
                if first_token is None and '"content":"' in line and '"content":""' not in line:
                    first_token = time.perf_counter() - t0
        total = time.perf_counter() - t0
    assert first_token is not None
    assert 0.1 <= first_token <= 0.3  # about 30% of 400 ms
    assert total >= 0.39


def test_errors_use_the_openai_shape(server: DemoServer) -> None:
    with client(server) as c:
        unknown = c.post("/chat/completions", json={**chat(), "model": "gpt-nope"})
        bad_json = c.post("/chat/completions", content=b"{not json", headers={"content-type": "x"})
        no_messages = c.post("/chat/completions", json={"model": "triage-v1"})
        bad_seed = c.post("/chat/completions", json=chat(seed="x"))
        wrong_path = c.post("/completions", json=chat())
        after = c.post("/chat/completions", json=chat())
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    assert "gpt-nope" in unknown.json()["error"]["message"]
    for r in (bad_json, no_messages, bad_seed):
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert r.json()["error"]["message"]
    assert no_messages.json()["error"]["param"] == "messages"
    assert wrong_path.status_code == 404
    assert after.status_code == 200  # errors leave the keep-alive connection usable
    assert server.stats()["errors"] == 4  # the four rejected chat requests


def test_respond_errors_become_http_errors(make_server: Factory) -> None:
    def picky(version: str, messages: list[dict[str, Any]], **options: Any) -> FakeCompletion:
        if options.get("seed") == 1:
            raise ValueError("no tickets today")
        raise RuntimeError("model crashed")

    server = make_server(respond=picky)
    with client(server) as c:
        rejected = c.post("/chat/completions", json=chat(seed=1))
        crashed = c.post("/chat/completions", json=chat(seed=2))
    assert rejected.status_code == 400 and "no tickets today" in rejected.json()["error"]["message"]
    assert crashed.status_code == 500 and crashed.json()["error"]["type"] == "server_error"


def test_stats_endpoint_and_method_agree(server: DemoServer) -> None:
    with client(server) as c:
        for _ in range(3):
            c.post("/chat/completions", json=chat())
        c.get("/models")
        over_http = c.get("/stats").json()
    assert over_http == server.stats()
    assert over_http["requests"] == 4 and over_http["completions"] == 3
    assert set(over_http["faults"]) == set(KINDS) and sum(over_http["faults"].values()) == 0


# -- faults ------------------------------------------------------------------------------


def only(kind: str) -> FaultSpec:
    """Every chat request gets this fault."""
    return FaultSpec.parse(1.0, kind)


def test_fault_429_has_retry_after(make_server: Factory) -> None:
    server = make_server(faults=only("429"), retry_after_s=3)
    with client(server) as c:
        r = c.post("/chat/completions", json=chat())
        models = c.get("/models")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "3"
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert models.status_code == 200  # faults only hit chat completions
    assert server.stats()["faults"]["429"] == 1


def test_fault_500(make_server: Factory) -> None:
    server = make_server(faults=only("500"))
    with client(server) as c:
        r = c.post("/chat/completions", json=chat())
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"


@pytest.mark.parametrize("stream", [False, True])
def test_fault_malformed_is_not_json(make_server: Factory, stream: bool) -> None:
    server = make_server(faults=only("malformed"))
    with client(server) as c:
        if stream:
            with c.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
                events = sse(r)
            payloads = [e for e in events if e != "[DONE]"]
        else:
            r = c.post("/chat/completions", json=chat())
            payloads = [r.text]
    assert r.status_code == 200
    broken = 0
    for payload in payloads:
        try:
            json.loads(payload)
        except ValueError:
            broken += 1
    assert broken == 1


@pytest.mark.parametrize("stream", [False, True])
def test_fault_truncated_cuts_content_at_half(make_server: Factory, stream: bool) -> None:
    clean = make_server()
    server = make_server(faults=only("truncated"))
    with client(clean) as c:
        full = c.post("/chat/completions", json=chat()).json()["choices"][0]["message"]["content"]
    with client(server) as c:
        if stream:
            with c.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
                chunks = [json.loads(e) for e in sse(r)[:-1]]
            choices = [ch["choices"][0] for ch in chunks]
            content = "".join(ch["delta"].get("content", "") for ch in choices)
            finish = choices[-1]["finish_reason"]
        else:
            body = c.post("/chat/completions", json=chat()).json()
            content = body["choices"][0]["message"]["content"]
            finish = body["choices"][0]["finish_reason"]
    assert finish == "length"
    assert content == full[: len(full) // 2]


@pytest.mark.parametrize("stream", [False, True])
def test_fault_reset_is_a_transport_error(make_server: Factory, stream: bool) -> None:
    server = make_server(faults=only("reset"))
    with client(server) as c, pytest.raises(httpx.TransportError):
        if stream:
            with c.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
                sse(r)
        else:
            c.post("/chat/completions", json=chat())
    assert server.stats()["completions"] == 0


def test_fault_timeout_fires_client_timeouts(make_server: Factory) -> None:
    server = make_server(faults=only("timeout"), hang_s=2.0)
    t0 = time.perf_counter()
    with client(server, timeout=0.3) as c, pytest.raises(httpx.TimeoutException):
        c.post("/chat/completions", json=chat())
    assert time.perf_counter() - t0 < 1.5


def test_fault_timeout_answers_after_hang_s(make_server: Factory) -> None:
    server = make_server(faults=only("timeout"), hang_s=0.3)
    t0 = time.perf_counter()
    with client(server) as c:
        r = c.post("/chat/completions", json=chat())
    assert r.status_code == 200 and time.perf_counter() - t0 >= 0.29


def test_fault_slow_multiplies_latency(make_server: Factory) -> None:
    server = make_server(latency=LatencySpec.parse("60"), faults=only("slow"))
    with client(server) as c:
        c.get("/models")
        t0 = time.perf_counter()
        r = c.post("/chat/completions", json=chat())
    assert r.status_code == 200
    assert time.perf_counter() - t0 >= 5 * 0.06 - 0.01


def outcome(c: httpx.Client, body: dict[str, Any]) -> str:
    """What a client sees for one request: a status, 'malformed', 'truncated' or 'reset'."""
    try:
        r = c.post("/chat/completions", json=body)
    except httpx.TransportError:
        return "reset"
    if r.status_code != 200:
        return str(r.status_code)
    try:
        finish = r.json()["choices"][0]["finish_reason"]
    except ValueError:
        return "malformed"
    return "truncated" if finish == "length" else "ok"


def run_sequence(server: DemoServer, bodies: list[dict[str, Any]]) -> list[str]:
    """Outcomes of sending bodies one after another."""
    with client(server) as c:
        return [outcome(c, body) for body in bodies]


def test_fault_share_is_near_the_rate_and_deterministic(make_server: Factory) -> None:
    faults = FaultSpec.parse(0.3, "429,500,malformed,truncated,reset")
    bodies = [chat(f"ticket number {i}") for i in range(300)]
    first = make_server(faults=faults, seed=11)
    a = run_sequence(first, bodies)
    b = run_sequence(make_server(faults=faults, seed=11), bodies)
    other = run_sequence(make_server(faults=faults, seed=12), bodies)
    share = sum(o != "ok" for o in a) / len(a)
    assert 0.2 <= share <= 0.4
    assert a == b
    assert a != other
    assert set(a) == {"ok", "429", "500", "malformed", "truncated", "reset"}
    counted = first.stats()["faults"]
    assert sum(counted.values()) == sum(o != "ok" for o in a)
    assert counted["429"] == a.count("429") and counted["reset"] == a.count("reset")


def test_retrying_the_same_body_rolls_again(make_server: Factory) -> None:
    faults = FaultSpec.parse(0.5, "500")
    same = [chat("the very same ticket")] * 40
    a = run_sequence(make_server(faults=faults, seed=5), same)
    b = run_sequence(make_server(faults=faults, seed=5), same)
    assert a == b
    assert set(a) == {"ok", "500"}


# -- latency -----------------------------------------------------------------------------


def test_fixed_latency_is_applied(make_server: Factory) -> None:
    server = make_server(latency=LatencySpec.parse("120"))
    with client(server) as c:
        c.get("/models")
        t0 = time.perf_counter()
        c.post("/chat/completions", json=chat())
    assert time.perf_counter() - t0 >= 0.119


def test_64_concurrent_keep_alive_clients(make_server: Factory) -> None:
    server = make_server(latency=LatencySpec.parse("100"))

    async def burst() -> tuple[float, list[int]]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10) as c:
            await asyncio.gather(*(c.get("/models") for _ in range(64)))  # open 64 connections
            t0 = time.perf_counter()
            rs = await asyncio.gather(
                *(c.post("/chat/completions", json=chat()) for _ in range(64))
            )
            return time.perf_counter() - t0, [r.status_code for r in rs]

    wall, codes = asyncio.run(burst())
    assert codes == [200] * 64
    assert wall < 3.2  # concurrent: served one at a time it would take 64 x 100 ms = 6.4 s


# -- lifecycle ---------------------------------------------------------------------------


def test_stop_is_prompt_with_a_hung_request(make_server: Factory) -> None:
    server = make_server(faults=only("timeout"), hang_s=30.0)
    errors: list[BaseException] = []

    def hang() -> None:
        try:
            with client(server, timeout=60) as c:
                c.post("/chat/completions", json=chat())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=hang, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while server.stats()["faults"]["timeout"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.perf_counter()
    server.stop()
    assert time.perf_counter() - t0 < 2.0
    thread.join(timeout=2.0)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], httpx.TransportError)


def test_context_manager_and_refusal_of_other_hosts() -> None:
    with DemoServer(respond=fake_respond, models=["m1"]) as server:
        r = httpx.get(f"{server.url}/models")
        assert [m["id"] for m in r.json()["data"]] == ["m1"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/models", timeout=1)
    with pytest.raises(ConfigError):
        DemoServer("0.0.0.0", respond=fake_respond)


def test_cli_refuses_non_loopback_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["server", "--host", "0.0.0.0"])
    assert exc.value.code == 2
    assert "127.0.0.1 only" in capsys.readouterr().err


def test_server_module_re_exports_the_process_and_fault_types() -> None:
    from workbench.demo import faults, process, server

    assert server.DemoProcess is process.DemoProcess
    assert (server.FaultSpec, server.LatencySpec) == (faults.FaultSpec, faults.LatencySpec)
    assert (server.KINDS, server.DEFAULT_KINDS) == (faults.KINDS, faults.DEFAULT_KINDS)
