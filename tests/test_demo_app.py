"""The demo support-triage app: search, triage, caches, model faults, HTTP and the workload."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from workbench.demo import workload
from workbench.demo.app import (
    AppConfig,
    AppError,
    TriageApp,
    load_kb,
    triage_dataset,
)
from workbench.demo.appserver import AppServer
from workbench.demo.server import DemoServer, FaultSpec
from workbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CATEGORY = {a.id: a.category for a in load_kb()}
BILLING_TICKET = (
    "I was charged twice this month for our Pro subscription. Please refund the duplicate."
)
SCHEMA = triage_dataset().card.output_schema


@dataclass(frozen=True)
class FakeCompletion:
    """Stands in for workbench.demo.model.Completion."""

    content: str
    finish_reason: str = "stop"
    prompt_tokens: int = 10
    completion_tokens: int = 10


@pytest.fixture(scope="module")
def model_server() -> Iterator[DemoServer]:
    """The real demo model, in a thread, on 127.0.0.1."""
    with DemoServer() as server:
        yield server


@pytest.fixture
def app(model_server: DemoServer) -> Iterator[TriageApp]:
    """A TriageApp with default caches against the demo model."""
    with TriageApp(AppConfig(model_url=model_server.url)) as triage_app:
        yield triage_app


def completions(server: DemoServer) -> int:
    """How many chat completions the server has answered."""
    return int(server.stats()["completions"])


# -- search and triage ----------------------------------------------------------------------


def test_search_finds_a_billing_article_for_a_refund_query(app: TriageApp) -> None:
    result = app.search("How do I get a refund for a payment?", k=3)
    articles = result["articles"]
    assert len(articles) == 3
    assert set(articles[0]) == {"id", "title", "score"}
    assert CATEGORY[articles[0]["id"]] == "billing"
    scores = [a["score"] for a in articles]
    assert scores == sorted(scores, reverse=True)
    assert result["cached"] is False


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("I forgot my password and cannot sign in", "account"),
        ("where is my parcel, the tracking number has not updated", "shipping"),
        ("the whole app is down with 503 errors", "outage"),
        ("someone signed in to our account from another country", "security"),
    ],
)
def test_search_ranks_the_relevant_category_first(
    app: TriageApp, query: str, category: str
) -> None:
    top = app.search(query, k=1)["articles"]
    assert [CATEGORY[a["id"]] for a in top] == [category]


@pytest.mark.parametrize(("query", "k"), [("", 3), ("   ", 3), ("refund", 0), ("refund", 41)])
def test_search_rejects_bad_arguments_with_400(app: TriageApp, query: str, k: int) -> None:
    with pytest.raises(AppError) as info:
        app.search(query, k)
    assert info.value.status == 400
    assert app.stats()["errors"]["search"] == 1


def test_triage_returns_schema_valid_json_and_kb_articles(app: TriageApp) -> None:
    result = app.triage(BILLING_TICKET, "email")
    assert list(Draft202012Validator(SCHEMA).iter_errors(result["triage"])) == []
    assert result["triage"]["category"] == "billing"
    assert len(result["articles"]) == app.config.kb_top_k
    assert CATEGORY[result["articles"][0]["id"]] == "billing"
    assert result["cached"] == {"template": False, "embedding": False, "response": False}


def test_triage_sends_the_card_prompt_with_the_articles_as_context(
    app: TriageApp,
) -> None:
    vectors, _ = app.embed_ticket(BILLING_TICKET)
    hits = app.retrieve(vectors, 2)
    messages, _ = app.render_prompt(BILLING_TICKET, "chat", [a for a, _ in hits])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith("You are a support-ticket triage assistant")
    assert all(f"[{a.id}] {a.title}" in messages[0]["content"] for a, _ in hits)
    assert "Channel: chat" in messages[1]["content"]
    assert f"<ticket>\n{BILLING_TICKET}\n</ticket>" in messages[1]["content"]


# -- caches ---------------------------------------------------------------------------------


def test_repeated_triage_hits_every_cache_and_skips_the_model(
    app: TriageApp, model_server: DemoServer
) -> None:
    before = completions(model_server)
    first = app.triage(BILLING_TICKET)
    second = app.triage(BILLING_TICKET)
    assert second["cached"] == {"template": True, "embedding": True, "response": True}
    assert second["triage"] == first["triage"]
    assert completions(model_server) - before == 1
    caches = app.stats()["caches"]
    assert caches["response"] | {"hit_rate": 0} == {
        "maxsize": 1024,
        "size": 1,
        "hits": 1,
        "misses": 1,
        "evictions": 0,
        "hit_rate": 0,
    }
    assert (caches["embedding"]["hits"], caches["embedding"]["misses"]) == (1, 1)
    assert (caches["template"]["hits"], caches["template"]["misses"]) == (3, 3)


def test_repeated_search_hits_the_embedding_cache(app: TriageApp) -> None:
    assert app.search("refund my card payment")["cached"] is False
    assert app.search("refund my card payment")["cached"] is True
    assert app.search("Refund my card payment")["cached"] is False  # keyed by exact text
    assert app.stats()["caches"]["embedding"]["hits"] == 1


def test_disabled_caches_record_nothing_and_every_request_calls_the_model(
    model_server: DemoServer,
) -> None:
    config = AppConfig(
        model_url=model_server.url, template_cache=0, embedding_cache=0, response_cache=0
    )
    before = completions(model_server)
    with TriageApp(config) as off:
        results = [off.triage(BILLING_TICKET) for _ in range(2)]
        off.search("refund")
        caches = off.stats()["caches"]
    assert all(
        r["cached"] == dict.fromkeys(("template", "embedding", "response"), False) for r in results
    )
    assert results[0]["triage"] == results[1]["triage"]
    assert completions(model_server) - before == 2
    for stats in caches.values():
        assert stats == {
            "maxsize": 0,
            "size": 0,
            "hits": 0,
            "misses": 0,
            "evictions": 0,
            "hit_rate": 0.0,
        }


# -- model-server failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "code"),
    [
        ("500=1.0", "model_http_500"),
        ("429=1.0", "model_rate_limited"),
        ("malformed=1.0", "model_bad_response"),
        ("truncated=1.0", "model_truncated"),
    ],
)
def test_model_faults_are_502_without_retries(faults: str, code: str) -> None:
    with DemoServer(faults=FaultSpec.parse(0, faults)) as faulty:
        with TriageApp(AppConfig(model_url=faulty.url)) as bad:
            with pytest.raises(AppError) as info:
                bad.triage(BILLING_TICKET)
            assert bad.stats()["error_codes"] == {code: 1}
            assert bad.stats()["caches"]["response"]["size"] == 0  # failures are not cached
        assert faulty.stats()["requests"] == 1  # no retry
    assert (info.value.status, info.value.code) == (502, code)


def test_a_model_timeout_is_504() -> None:
    with DemoServer(faults=FaultSpec.parse(0, "timeout=1.0"), hang_s=5.0) as hung:
        config = AppConfig(model_url=hung.url, model_timeout_s=0.2)
        with TriageApp(config) as slow, pytest.raises(AppError) as info:
            slow.triage(BILLING_TICKET)
    assert (info.value.status, info.value.code) == (504, "model_timeout")


def test_an_unreachable_model_server_is_502() -> None:
    with DemoServer() as gone:
        url = gone.url
    with TriageApp(AppConfig(model_url=url)) as orphan, pytest.raises(AppError) as info:
        orphan.triage(BILLING_TICKET)
    assert (info.value.status, info.value.code) == (502, "model_connection")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            '{"category": "weather", "priority": "p3", "needs_human": false, "summary": "x"}',
            "category",
        ),
        ('{"category": "bug", "priority": "p3", "needs_human": false}', "summary"),
        ("Sure! Here is the triage: category bug.", "not JSON"),
        ('["bug", "p3"]', "object"),
    ],
)
def test_invalid_model_output_is_502(content: str, needle: str) -> None:
    def respond(version: str, messages: list[dict[str, Any]], **options: Any) -> FakeCompletion:
        return FakeCompletion(content)

    with (
        DemoServer(respond=respond, models=("triage-v1",)) as fake,
        TriageApp(AppConfig(model_url=fake.url)) as bad,
        pytest.raises(AppError) as info,
    ):
        bad.triage(BILLING_TICKET)
    assert (info.value.status, info.value.code) == (502, "invalid_output")
    assert needle in str(info.value)


def test_triage_v2_shouting_breaks_the_schema(model_server: DemoServer) -> None:
    config = AppConfig(model_url=model_server.url, model="triage-v2")
    with TriageApp(config) as v2, pytest.raises(AppError) as info:
        v2.triage("URGENT!!! We were charged twice for our subscription, fix this ASAP")
    assert info.value.code == "invalid_output"
    assert "priority" in str(info.value)


# -- HTTP -----------------------------------------------------------------------------------


@pytest.fixture
def http_app(app: TriageApp) -> Iterator[tuple[AppServer, httpx.Client]]:
    """The app served on 127.0.0.1 and an HTTP client for it."""
    with AppServer(app) as server, httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield server, client


def test_http_endpoints(http_app: tuple[AppServer, httpx.Client]) -> None:
    server, client = http_app
    assert server.url.startswith("http://127.0.0.1:")
    assert client.get("/healthz").json() == {"status": "ok"}

    search = client.post("/api/search", json={"query": "How do I get a refund?", "k": 2})
    assert search.status_code == 200
    assert search.headers["content-type"] == "application/json"
    assert len(search.json()["articles"]) == 2
    assert CATEGORY[search.json()["articles"][0]["id"]] == "billing"

    triage = client.post("/api/triage", json={"ticket": BILLING_TICKET, "channel": "chat"})
    assert triage.status_code == 200
    body = triage.json()
    assert list(Draft202012Validator(SCHEMA).iter_errors(body["triage"])) == []
    assert len(body["articles"]) == 3
    again = client.post("/api/triage", json={"ticket": BILLING_TICKET, "channel": "chat"})
    assert again.json()["cached"] == {"template": True, "embedding": True, "response": True}

    stats = client.get("/api/stats").json()
    assert stats["requests"] == {"search": 1, "triage": 2}
    assert stats["caches"]["response"]["hits"] == 1


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("POST", "/api/triage", {"channel": "email"}, 400),
        ("POST", "/api/search", {"query": "refund", "k": "three"}, 400),
        ("POST", "/api/search", [1, 2], 400),
        ("GET", "/api/triage", None, 405),
        ("GET", "/nope", None, 404),
        ("POST", "/nope", {}, 404),
    ],
)
def test_http_errors_are_json(
    http_app: tuple[AppServer, httpx.Client],
    method: str,
    path: str,
    payload: Any,
    status: int,
) -> None:
    _, client = http_app
    response = client.request(method, path, json=payload)
    assert response.status_code == status
    assert response.json()["error"]["status"] == status
    assert client.get("/healthz").status_code == 200  # the connection is still usable


def test_http_model_fault_is_a_502_json_error() -> None:
    with (
        DemoServer(faults=FaultSpec.parse(0, "500=1.0")) as faulty,
        TriageApp(AppConfig(model_url=faulty.url)) as bad,
        AppServer(bad) as server,
    ):
        response = httpx.post(f"{server.url}/api/triage", json={"ticket": BILLING_TICKET})
        stats = httpx.get(f"{server.url}/api/stats").json()
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["code"], error["upstream_status"]) == ("model_http_500", 500)
    assert "HTTP 500" in error["message"]
    assert stats["errors"]["triage"] == 1


def test_http_handles_concurrent_clients(http_app: tuple[AppServer, httpx.Client]) -> None:
    server, _ = http_app
    statuses: list[int] = []

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            for i in range(5):
                ticket = f"My card reader order #TH-{n}{i} has not arrived yet."
                statuses.append(client.post("/api/triage", json={"ticket": ticket}).status_code)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 20


def test_app_server_binds_loopback_only(app: TriageApp) -> None:
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1"):
        AppServer(app, host="0.0.0.0")


def test_app_needs_a_model_url() -> None:
    with pytest.raises(ConfigError, match="model_url"):
        TriageApp(AppConfig())


def test_app_cli_serves_until_sigterm(model_server: DemoServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.demo", "app", "--model-url", model_server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("workbench demo app listening on http://127.0.0.1:")
        url = line.split()[-1]
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        response = httpx.post(f"{url}/api/search", json={"query": "refund"})
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- workload -------------------------------------------------------------------------------


def test_workload_run_returns_consistent_counts(model_server: DemoServer) -> None:
    config = AppConfig(model_url=model_server.url, response_cache=0)
    result = workload.run(1.0, config, seed=3)
    n = result["requests"]
    endpoints = result["endpoints"]
    caches = result["cache"]
    assert n > 20
    assert result["errors"] == 0
    assert endpoints["triage"] + endpoints["search"] == n
    assert 0.9 <= result["duration_s"] < 2.0
    assert result["per_second"] == pytest.approx(n / result["duration_s"], rel=0.01)
    # Every request looks up its text embedding once; every triage renders 3 templates.
    assert caches["embedding"]["hits"] + caches["embedding"]["misses"] == n
    assert caches["embedding"]["size"] == caches["embedding"]["misses"]
    assert caches["embedding"]["hits"] > 0  # the Zipf-like repetition
    assert caches["template"]["hits"] + caches["template"]["misses"] == 3 * endpoints["triage"]
    assert caches["template"]["misses"] == 3
    assert caches["response"]["hits"] + caches["response"]["misses"] == 0


def test_workload_schedule_is_deterministic_and_skewed() -> None:
    cases = triage_dataset().cases
    first = list(itertools.islice(workload.schedule(cases, seed=7), 600))
    assert first == list(itertools.islice(workload.schedule(cases, seed=7), 600))
    assert first != list(itertools.islice(workload.schedule(cases, seed=8), 600))
    triage = [text for kind, text, _ in first if kind == "triage"]
    assert 0.6 < len(triage) / len(first) < 0.8
    assert len(set(triage)) < len(triage) / 2  # hot tickets repeat
    only_search = itertools.islice(workload.schedule(cases, 0, {"search": 1.0}), 50)
    assert {kind for kind, _, _ in only_search} == {"search"}


@pytest.mark.parametrize("mix", ["triage=0.7,chat=0.3", "triage", "triage=x", "triage=0,search=0"])
def test_workload_rejects_bad_mixes(mix: str) -> None:
    with pytest.raises(ConfigError, match="mix"):
        workload.parse_mix(mix)


def test_workload_parses_mixes() -> None:
    assert workload.parse_mix("triage=3,search=1") == {"triage": 0.75, "search": 0.25}
    assert workload.parse_mix("search=2") == {"triage": 0.0, "search": 1.0}


def test_workload_cli_prints_one_json_line(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.demo",
            "workload",
            "--duration",
            "1",
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert {"requests", "per_second", "errors", "duration_s", "cache"} <= set(result)
    assert result["requests"] > 0
    assert result["errors"] == 0
    assert result["config"]["response_cache"] == 0  # the workload's default
    assert json.loads(out.read_text()) == result


def test_app_module_re_exports_its_parts() -> None:
    from workbench.demo import app, kb, lru, upstream

    assert app.AppError is upstream.AppError
    assert (app.Article, app.load_kb, app.LRUCache) == (kb.Article, kb.load_kb, lru.LRUCache)
