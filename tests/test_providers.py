"""Providers against a real loopback server: retries, Retry-After, breaker, streaming, snapshots."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench import providers
from workbench.demo.server import DemoServer, FaultSpec
from workbench.errors import CircuitOpenError, ConfigError, ProviderError, ReplayMissError
from workbench.providers import (
    CircuitBreaker,
    OpenAIProvider,
    Request,
    RetryPolicy,
    Snapshots,
    snapshot_key,
)


class Echo:
    """A fake model: answers with the last user message wrapped in JSON."""

    def __call__(self, version: str, messages: list[dict[str, Any]], **kw: Any) -> Any:
        from workbench.demo.model import Completion

        content = json.dumps({"echo": messages[-1]["content"], "seed": kw.get("seed")})
        return Completion(content, "stop", 11, 7)


@pytest.fixture
def server() -> Iterator[DemoServer]:
    with DemoServer(respond=Echo(), models=["m1"]) as s:
        yield s


def _complete(provider: Any, request: Request) -> Any:
    async def go() -> Any:
        await provider.start()
        try:
            return await provider.complete(request)
        finally:
            await provider.aclose()

    return asyncio.run(go())


REQ = Request(
    messages=[{"role": "user", "content": "hello"}], temperature=0.0, seed=4, case_id="c1"
)


def test_registry_lists_known_providers() -> None:
    with pytest.raises(ConfigError, match="known providers: demo, openai, python"):
        providers.get("nope:x")
    with pytest.raises(ConfigError, match="<provider>:<model>"):
        providers.get("gpt-4o")


def test_providers_take_the_run_options_they_declare() -> None:
    offered = {"api_key_env": "KEY", "latency_ms": "5", "fault_rate": 0.1, "timeout_s": 3.0}
    assert providers.options_for("openai:m", offered) == {"api_key_env": "KEY", "timeout_s": 3.0}
    demo_own_server = {"latency_ms": "5", "fault_rate": 0.1, "timeout_s": 3.0}
    assert providers.options_for("demo:triage-v1", offered) == demo_own_server
    # The demo server's options only when the provider starts one.
    assert providers.options_for("demo:triage-v1", offered, base_url="http://h/v1") == {
        "timeout_s": 3.0
    }
    assert providers.options_for("demo:triage-v1", offered, replay=True) == {"timeout_s": 3.0}
    assert providers.options_for("python:tests.echo_app:answer", {"concurrency": 2, **offered}) == {
        "concurrency": 2
    }
    assert providers.options_for("nope:x", offered) == {}
    assert providers.options_for("gpt-4o", offered) == {}
    assert providers.options_for("openai:m", {"base_url": None}) == {}


def test_the_demo_provider_is_registered_through_its_hook_on_first_lookup() -> None:
    code = (
        "import sys\n"
        "from workbench import cache, cli, latency, providers, runner, weekly\n"
        "assert not [m for m in sys.modules if m.startswith('workbench.demo')], 'imported early'\n"
        "assert 'demo' in providers.names()\n"
        "p = providers.get('demo:triage-v1', base_url='http://127.0.0.1:9/v1')\n"
        "assert type(p).__module__ == 'workbench.demo.provider', type(p)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("stream", [False, True])
def test_openai_provider_plain_and_streaming(server: DemoServer, stream: bool) -> None:
    p = OpenAIProvider("m1", base_url=server.url, stream=stream)
    r = _complete(p, REQ)
    assert json.loads(r.text) == {"echo": "hello", "seed": 4}
    assert (r.tokens_in, r.tokens_out, r.finish_reason, r.attempts) == (11, 7, "stop", 1)
    assert r.latency_ms is not None and r.latency_ms > 0
    assert (r.ttft_ms is not None) is stream


def test_retry_after_is_honoured_then_gives_up() -> None:
    with DemoServer(
        respond=Echo(), models=["m1"], faults=FaultSpec.parse(0, "429=1.0"), retry_after_s=1
    ) as s:
        p = OpenAIProvider(
            "m1", base_url=s.url, retry=RetryPolicy(max_attempts=3, base_delay_s=0.01)
        )
        t0 = time.perf_counter()
        with pytest.raises(ProviderError, match="gave up after 3 attempts.*HTTP 429") as err:
            _complete(p, REQ)
        assert time.perf_counter() - t0 >= 1.9  # two waits of Retry-After: 1
        assert err.value.attempts == 3
        assert s.stats()["faults"]["429"] == 3


def test_retries_recover_from_transient_faults() -> None:
    faults = FaultSpec.parse(0, "500=0.2,malformed=0.15,reset=0.1")
    with DemoServer(respond=Echo(), models=["m1"], faults=faults, seed=1) as s:
        p = OpenAIProvider(
            "m1",
            base_url=s.url,
            retry=RetryPolicy(max_attempts=30, base_delay_s=0.001, max_delay_s=0.01),
            breaker=CircuitBreaker(100),
        )

        async def go() -> list[Any]:
            await p.start()
            try:
                reqs = [
                    Request(messages=[{"role": "user", "content": f"q{i}"}], case_id=str(i))
                    for i in range(20)
                ]
                return await asyncio.gather(*(p.complete(r) for r in reqs))
            finally:
                await p.aclose()

        results = asyncio.run(go())
    assert [json.loads(r.text)["echo"] for r in results] == [f"q{i}" for i in range(20)]
    assert sum(r.attempts for r in results) > 20  # some needed retries


def test_timeout_is_retried_and_reported() -> None:
    with DemoServer(
        respond=Echo(), models=["m1"], faults=FaultSpec.parse(0, "timeout=1.0"), hang_s=2
    ) as s:
        p = OpenAIProvider(
            "m1",
            base_url=s.url,
            timeout_s=0.2,
            retry=RetryPolicy(max_attempts=2, base_delay_s=0.01),
        )
        with pytest.raises(ProviderError, match="timeout after 0.2s"):
            _complete(p, REQ)


def test_client_errors_are_not_retried(server: DemoServer) -> None:
    p = OpenAIProvider("unknown-model", base_url=server.url)
    with pytest.raises(ProviderError, match="HTTP 404") as err:
        _complete(p, REQ)
    assert err.value.attempts == 1
    assert server.stats()["completions"] == 0


def test_circuit_breaker_opens_and_stops_calls() -> None:
    s = DemoServer(respond=Echo(), models=["m1"]).start()
    url = s.url
    s.stop()  # nothing listens any more: connection refused
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=30)
    p = OpenAIProvider(
        "m1", base_url=url, retry=RetryPolicy(max_attempts=2, base_delay_s=0.001), breaker=breaker
    )

    async def go() -> list[BaseException]:
        await p.start()
        errors: list[BaseException] = []
        try:
            for _ in range(3):
                try:
                    await p.complete(REQ)
                except ProviderError as exc:
                    errors.append(exc)
        finally:
            await p.aclose()
        return errors

    errors = asyncio.run(go())
    assert not isinstance(errors[0], CircuitOpenError)
    assert isinstance(errors[-1], CircuitOpenError)
    assert "3 of the last 3 attempts failed" in str(errors[-1])
    assert breaker.times_opened == 1


def test_breaker_half_opens_after_cooldown() -> None:
    b = CircuitBreaker(failure_threshold=2, reset_after_s=0.05)
    b.record_failure("x")
    b.record_failure("x")
    with pytest.raises(CircuitOpenError):
        b.before_call()
    time.sleep(0.06)
    b.before_call()  # a probe is allowed
    b.record_success()
    assert not b.is_open and b.failures == 0


def test_breaker_stays_closed_for_a_flaky_provider_and_opens_for_a_dead_one() -> None:
    b = CircuitBreaker()
    for i in range(400):  # every other attempt fails
        if i % 2:
            b.record_failure("x")
        else:
            b.record_success()
    assert not b.is_open and b.times_opened == 0
    for _ in range(40):
        b.record_failure("down")
    assert b.is_open and b.times_opened == 1


def test_retry_delay_honours_retry_after_and_caps() -> None:
    import random

    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0, max_retry_after_s=5)
    rng = random.Random(0)
    assert all(
        0 <= policy.delay(a, None, rng) <= min(1.0, 0.1 * 2 ** (a - 1)) for a in range(1, 10)
    )
    assert policy.delay(1, 3.0, rng) == 3.0
    assert policy.delay(1, 99.0, rng) == 5


def test_api_key_comes_from_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    p = OpenAIProvider("gpt-4o-mini")
    with pytest.raises(ConfigError, match="set the environment variable OPENAI_API_KEY"):
        asyncio.run(p.start())
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    p = OpenAIProvider("gpt-4o-mini", api_key_env="MY_KEY")

    async def headers() -> str:
        await p.start()
        assert p._session is not None
        value = p._session.headers["Authorization"]
        await p.aclose()
        return value

    assert asyncio.run(headers()) == "Bearer sk-test-123"


def test_python_provider_sync_async_and_errors() -> None:
    req = Request(messages=[{"role": "user", "content": "Q: word1"}])
    assert json.loads(_complete(providers.get("python:tests.echo_app:answer"), req).text) == {
        "answer": "word1"
    }
    assert json.loads(_complete(providers.get("python:tests.echo_app:answer_async"), req).text) == {
        "answer": "word1"
    }
    with pytest.raises(ProviderError, match="RuntimeError: app crashed"):
        _complete(providers.get("python:tests.echo_app:explode"), req)
    with pytest.raises(ConfigError, match="cannot import module"):
        providers.get("python:no_such_module:f")
    with pytest.raises(ConfigError, match="has no callable"):
        providers.get("python:tests.echo_app:missing")


def test_record_then_replay_without_server(tmp_path: Path) -> None:
    with DemoServer(respond=Echo(), models=["m1"]) as s:
        live = providers.build("openai:m1", record=tmp_path, base_url=s.url)
        recorded = _complete(live, REQ)
    replay = providers.build("openai:m1", replay=tmp_path)
    again = _complete(replay, REQ)
    assert again.text == recorded.text and again.replayed
    assert again.tokens_in == recorded.tokens_in
    other = Request(messages=[{"role": "user", "content": "new"}], case_id="c9")
    with pytest.raises(ReplayMissError, match="no snapshot for case 'c9'"):
        _complete(replay, other)


def test_snapshot_file_is_sorted_and_deduplicated(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path, "demo:triage-v1")
    reqs = [Request(messages=[{"role": "user", "content": str(i)}]) for i in (3, 1, 2, 1)]
    for r in reqs:
        snaps.add(snapshot_key("demo", "triage-v1", r), r, providers.Response(text="x"))
    snaps.compact()
    lines = snaps.path.read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert keys == sorted(set(keys)) and len(keys) == 3
    assert snaps.path.name == "demo_triage-v1.jsonl"


def test_snapshot_key_depends_on_params_not_case_id() -> None:
    a = Request(messages=[{"role": "user", "content": "x"}], seed=1, case_id="a")
    b = Request(messages=[{"role": "user", "content": "x"}], seed=1, case_id="b")
    c = Request(messages=[{"role": "user", "content": "x"}], seed=2)
    assert (
        snapshot_key("demo", "m", a) == snapshot_key("demo", "m", b) != snapshot_key("demo", "m", c)
    )
    assert snapshot_key("demo", "m", a) != snapshot_key("demo", "m2", a)


def test_corrupt_snapshot_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "demo_triage-v1.jsonl").write_text(
        '{"key": "k", "response": {"text": "x"}}\nnot json\n'
    )
    from workbench.errors import DatasetError

    with pytest.raises(DatasetError, match=r"demo_triage-v1\.jsonl:2: not a snapshot entry"):
        providers.build("demo:triage-v1", replay=tmp_path)


# -- what real OpenAI-compatible servers do -------------------------------------------


class _RawServer:
    """An HTTP/1.1 server on loopback that streams SSE chunks ``gap_s`` apart, then closes
    its end while having said keep-alive (as llama.cpp's server does after a stream)."""

    def __init__(self, *, gap_s: float = 0.0, chunks: int = 3, usage: dict[str, Any] | None = None):
        self.gap_s, self.chunks, self.usage = gap_s, chunks, usage
        self.requests = 0

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        self.requests += 1
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nKeep-Alive: timeout=5, max=100\r\n\r\n"
        )

        def chunk(doc: Any) -> bytes:
            data = (
                b"data: " + (doc if isinstance(doc, bytes) else json.dumps(doc).encode()) + b"\n\n"
            )
            return b"%x\r\n%s\r\n" % (len(data), data)

        for i in range(self.chunks):
            writer.write(chunk({"choices": [{"index": 0, "delta": {"content": f"t{i} "}}]}))
            await writer.drain()
            await asyncio.sleep(self.gap_s)
        final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
        writer.write(chunk({**final, "usage": self.usage} if self.usage else final))
        writer.write(chunk(b"[DONE]") + b"0\r\n\r\n")
        await writer.drain()
        writer.close()  # despite keep-alive


def test_a_server_closing_after_each_stream_costs_no_retries() -> None:
    async def go() -> tuple[list[Any], OpenAIProvider, int]:
        raw = _RawServer()
        async with raw as url:
            p = OpenAIProvider("m", base_url=url, stream=True, concurrency=2)
            await p.start()
            try:
                out = [await p.complete(REQ) for _ in range(6)]
            finally:
                await p.aclose()
        return out, p, raw.requests

    results, provider, requests = asyncio.run(go())
    assert [r.text for r in results] == ["t0 t1 t2 "] * 6
    assert {r.attempts for r in results} == {1} and provider.retries == 0
    assert provider.reconnects >= 4 and requests == 6  # nothing reached the model twice


def test_a_stream_that_keeps_sending_outlives_the_timeout_one_that_stalls_does_not() -> None:
    async def go(gap_s: float) -> Any:
        async with _RawServer(gap_s=gap_s, chunks=6) as url:
            p = OpenAIProvider(
                "m", base_url=url, stream=True, timeout_s=0.5, retry=RetryPolicy(max_attempts=1)
            )
            await p.start()
            try:
                return await p.complete(REQ)
            finally:
                await p.aclose()

    flowing = asyncio.run(go(0.2))  # 1.2 s in all, each chunk within 0.5 s
    assert flowing.text == "t0 t1 t2 t3 t4 t5 " and flowing.latency_ms > 1000
    with pytest.raises(ProviderError, match="timeout after 0.5s"):
        asyncio.run(go(0.8))


def test_usage_details_are_read_from_a_stream_and_stored_in_snapshots(tmp_path: Path) -> None:
    usage = {
        "prompt_tokens": 62,
        "completion_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 61},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }

    async def go() -> Any:
        async with _RawServer(usage=usage) as url:
            p = providers.build("openai:m", base_url=url, stream=True, record=str(tmp_path))
            await p.start()
            try:
                return await p.complete(REQ)
            finally:
                await p.aclose()

    r = asyncio.run(go())
    assert (r.tokens_in, r.tokens_out, r.cached_tokens, r.reasoning_tokens) == (62, 9, 61, 4)
    assert r.finish_reason == "length"
    replayed = _complete(providers.build("openai:m", replay=str(tmp_path)), REQ)
    assert (replayed.cached_tokens, replayed.reasoning_tokens) == (61, 4)
