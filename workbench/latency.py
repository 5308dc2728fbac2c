"""Latency budgets: a synthetic-load driver for loopback endpoints, percentiles and verdicts.

Load is open-loop: requests arrive at a seeded Poisson rate per phase (``steady``, then
``spike``), capped by a maximum number in flight, and bounded in count and in time.
Each request's latency (and time to first token for streaming endpoints) is stored in
``load_results``; per endpoint the run reports p50/p95/p99, error rate and p95 TTFT
against its budget: p95 ≤ 300 ms for API core, ≤ 1.5 s for LLM endpoints, errors ≤ 0.5%.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import ipaddress
import json
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from workbench.checks import Check, Provenance, limit_check
from workbench.configfile import check_keys, read_yaml, short
from workbench.errors import ConfigError
from workbench.store import Store
from workbench.text import finite

__all__ = [
    "DEFAULT_BUDGETS",
    "DEFAULT_PHASES",
    "MAX_REQUESTS",
    "MAX_SECONDS",
    "Endpoint",
    "EndpointStats",
    "LatencyBudget",
    "LoadRun",
    "Phase",
    "bodies_from_json",
    "check_loopback",
    "load_endpoints",
    "phases_from",
    "render_text",
    "run_load",
    "summarize_load",
]

MAX_REQUESTS = 20_000
MAX_SECONDS = 600.0


@dataclass(frozen=True)
class LatencyBudget:
    """Limits for one endpoint."""

    p95_ms: float
    error_rate: float = 0.005
    p99_ms: float | None = None
    ttft_p95_ms: float | None = None

    def checks(self, figures: Mapping[str, Any]) -> list[Check]:
        """Checks on ``figures`` (p95_ms, error_rate, p99_ms, ttft_p95_ms; missing or NaN: n/a)."""

        def value(name: str) -> float | None:
            v = figures.get(name)
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        out = [
            limit_check("p95_latency_ms", value("p95_ms"), self.p95_ms, "max", "ms"),
            limit_check("error_rate", value("error_rate"), self.error_rate, "max", "%"),
        ]
        if self.p99_ms is not None:
            out.append(limit_check("p99_latency_ms", value("p99_ms"), self.p99_ms, "max", "ms"))
        if self.ttft_p95_ms is not None:
            out.append(
                limit_check("ttft_p95_ms", value("ttft_p95_ms"), self.ttft_p95_ms, "max", "ms")
            )
        return out


DEFAULT_BUDGETS = {
    "api": LatencyBudget(p95_ms=300.0),
    "llm": LatencyBudget(p95_ms=1500.0),
}


@dataclass(frozen=True)
class Endpoint:
    """One endpoint under load: an HTTP URL on loopback, or ``python:<module>:<function>``."""

    name: str
    url: str
    kind: str = "api"  # "api" or "llm": picks the default budget
    method: str = "POST"
    bodies: tuple[Any, ...] = ()
    stream: bool = False
    weight: float = 1.0
    budget: LatencyBudget | None = None

    @property
    def limits(self) -> LatencyBudget:
        """This endpoint's budget: its own, or the default for its kind."""
        return self.budget or DEFAULT_BUDGETS[self.kind]


@dataclass(frozen=True)
class Phase:
    """A stretch of load at a fixed arrival rate."""

    name: str
    rps: float
    duration_s: float


DEFAULT_PHASES = (Phase("steady", 20.0, 10.0), Phase("spike", 60.0, 3.0))


@dataclass
class EndpointStats:
    """Percentiles, error rate and budget verdicts for one endpoint in a load run."""

    endpoint: str
    kind: str
    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p95_ms: float | None
    by_phase: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    budgets: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every budget of this endpoint holds."""
        return all(b.ok for b in self.budgets)


@dataclass
class LoadRun:
    """A finished load run."""

    run_id: str
    endpoints: list[EndpointStats]
    duration_s: float
    requests: int
    stopped_by: str | None = None

    @property
    def ok(self) -> bool:
        """True when every endpoint met its budgets."""
        return all(e.ok for e in self.endpoints)

    def checks(self) -> list[Check]:
        """Every endpoint's budgets, named ``<endpoint> <budget>``."""
        return [b.renamed(f"{e.endpoint} {b.name}") for e in self.endpoints for b in e.budgets]

    def headline(self) -> dict[str, Any]:
        """Each endpoint's p95 latency."""
        return {f"{e.endpoint}_p95_ms": e.p95_ms for e in self.endpoints}

    def provenance(self) -> Provenance:
        """The load run."""
        return Provenance((self.run_id,))

    def render_text(self) -> str:
        """A terminal report: per endpoint its figures and budgets."""
        return render_text(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        out = {
            "run_id": self.run_id,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "stopped_by": self.stopped_by,
            "ok": self.ok,
            "endpoints": [],
        }
        for e in self.endpoints:
            d = asdict(e)
            d["budgets"] = [b.to_dict() for b in e.budgets]
            d["ok"] = e.ok
            out["endpoints"].append(d)  # type: ignore[attr-defined]
        return out


def check_loopback(url: str) -> None:
    """Refuse any target that is not on this machine's loopback."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ConfigError(
        f"load target {url!r} is not on loopback; the driver only sends to 127.0.0.1/::1"
    )


def load_endpoints(path: str | Path) -> list[Endpoint]:
    """Endpoints from a YAML file: ``endpoints: [{name, url, kind, method, stream, bodies, budget}]``."""
    file = Path(path)
    doc = read_yaml(file, "endpoints file")
    items = doc.get("endpoints") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{file}: expected 'endpoints:' with a list of {{name, url, kind}}")
    return [_endpoint(item, f"{file}: endpoints[{i}]", i) for i, item in enumerate(items)]


_ENDPOINT_KEYS = {"name", "url", "kind", "method", "stream", "bodies", "body", "weight", "budget"}


def _endpoint(item: Any, where: str, i: int) -> Endpoint:
    """One checked entry of an endpoints file; ``where`` names the file and the entry."""
    if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
        raise ConfigError(f"{where}: needs at least a url")
    check_keys(item, _ENDPOINT_KEYS, where)
    kind = item.get("kind", "api")
    if not isinstance(kind, str) or kind not in DEFAULT_BUDGETS:
        raise ConfigError(f"{where}.kind: {short(kind)}; use 'api' or 'llm'")
    budget = None
    if "budget" in item:
        budget = _budget(item["budget"], DEFAULT_BUDGETS[kind], f"{where}.budget")
    if "bodies" in item and not isinstance(item["bodies"], list):
        raise ConfigError(f"{where}.bodies: must be a list of request bodies")
    bodies = item.get("bodies") or ([item["body"]] if "body" in item else [])
    try:
        json.dumps(bodies, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{where}.bodies: not sendable as JSON: {str(exc)[:200]}") from None
    weight = item.get("weight", 1.0)
    if finite(weight) is None or weight <= 0:
        raise ConfigError(f"{where}.weight: must be a number > 0, got {short(weight)}")
    for key in ("name", "method"):
        if isinstance(item.get(key), dict | list):
            raise ConfigError(f"{where}.{key}: must be a string, got {short(item[key])}")
    if not isinstance(item.get("stream", False), bool):
        raise ConfigError(f"{where}.stream: must be true or false, got {short(item['stream'])}")
    return Endpoint(
        name=str(item.get("name", f"endpoint{i}")),
        url=item["url"],
        kind=kind,
        method=str(item.get("method", "POST")).upper(),
        bodies=tuple(bodies),
        stream=item.get("stream", False),
        weight=float(weight),
        budget=budget,
    )


def _budget(raw: Any, default: LatencyBudget, where: str) -> LatencyBudget:
    """An endpoint's budget: its own limits over the defaults of its kind."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping such as {{p95_ms: 300, error_rate: 0.005}}")
    limits = asdict(default)
    for key, value in raw.items():
        if key not in limits:
            raise ConfigError(
                f"{where}: unknown limit {short(key)}; allowed: {', '.join(sorted(limits))}"
            )
        if value is None and key != "p95_ms" and key != "error_rate":
            limits[key] = None
        elif finite(value) is None or value < 0 or (key == "error_rate" and value > 1):
            bound = "a fraction between 0 and 1" if key == "error_rate" else "a number >= 0 (ms)"
            raise ConfigError(f"{where}.{key}: must be {bound}, got {short(value)}")
        else:
            limits[key] = float(value)
    return LatencyBudget(**limits)


def run_load(
    store: Store,
    endpoints: Sequence[Endpoint],
    *,
    phases: Sequence[Phase] = DEFAULT_PHASES,
    max_in_flight: int = 64,
    max_requests: int = MAX_REQUESTS,
    max_seconds: float = MAX_SECONDS,
    timeout_s: float = 10.0,
    seed: int = 0,
    label: str = "default",
) -> LoadRun:
    """Drive load at the endpoints, store every request, and judge each endpoint's budget."""
    store.require_sqlite("load tests")
    if not endpoints:
        raise ConfigError("give at least one endpoint")
    for ep in endpoints:
        if not ep.url.startswith("python:"):
            check_loopback(ep.url)
    if max_requests < 1 or max_requests > MAX_REQUESTS:
        raise ConfigError(f"max_requests must be 1..{MAX_REQUESTS}")
    max_seconds = min(max_seconds, MAX_SECONDS)
    run_id = store.create_run(
        dataset=None,
        dataset_hash=None,
        target=",".join(ep.name for ep in endpoints),
        kind="load",
        parameters={
            "label": label,
            "phases": [asdict(p) for p in phases],
            "endpoints": [
                {"name": e.name, "url": e.url, "kind": e.kind, "stream": e.stream}
                for e in endpoints
            ],
            "max_in_flight": max_in_flight,
            "max_requests": max_requests,
            "seed": seed,
        },
    )
    from workbench.runner import run_sync

    try:
        rows, elapsed, stopped = run_sync(
            _drive(endpoints, phases, max_in_flight, max_requests, max_seconds, timeout_s, seed)
        )
    except BaseException as exc:
        store.finish_run(run_id, "failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    with store.conn:
        store.conn.executemany(
            "INSERT INTO load_results (run_id, seq, endpoint, phase, offset_ms, latency_ms, ttft_ms, "
            "status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, *row) for row in rows],
        )
    result = LoadRun(run_id, summarize_load(store, run_id, endpoints), elapsed, len(rows), stopped)
    store.finish_run(run_id, "finished", summary=result.to_dict())
    return result


async def _drive(
    endpoints: Sequence[Endpoint],
    phases: Sequence[Phase],
    max_in_flight: int,
    max_requests: int,
    max_seconds: float,
    timeout_s: float,
    seed: int,
) -> tuple[list[tuple[Any, ...]], float, str | None]:
    import aiohttp

    rng = random.Random(seed)
    weights = [ep.weight for ep in endpoints]
    rows: list[tuple[Any, ...]] = []
    limit = asyncio.Semaphore(max_in_flight)
    tasks: list[asyncio.Task[None]] = []
    counters = {ep.name: 0 for ep in endpoints}
    stopped: str | None = None
    callables = {ep.name: _import(ep.url) for ep in endpoints if ep.url.startswith("python:")}
    t0 = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)
    ) as session:

        async def fire(seq: int, ep: Endpoint, phase: str, body: Any) -> None:
            async with limit:
                start = time.perf_counter()
                offset = (start - t0) * 1000
                status: int | None = None
                error: str | None = None
                ttft: float | None = None
                try:
                    if ep.name in callables:
                        fn = callables[ep.name]
                        value = fn(body) if not inspect.iscoroutinefunction(fn) else await fn(body)
                        if inspect.isawaitable(value):
                            await value
                        status = 200
                    else:
                        kwargs = {"json": body} if body is not None and ep.method != "GET" else {}
                        async with session.request(ep.method, ep.url, **kwargs) as r:
                            status = r.status
                            if ep.stream:
                                async for _chunk in r.content.iter_any():
                                    if ttft is None:
                                        ttft = (time.perf_counter() - start) * 1000
                            else:
                                await r.read()
                            if r.status >= 400:
                                error = f"HTTP {r.status}"
                except TimeoutError:
                    error = f"timeout after {timeout_s:g}s"
                except aiohttp.ClientError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                except Exception as exc:  # a python: endpoint that raised
                    error = f"{type(exc).__name__}: {exc}"
                latency = (time.perf_counter() - start) * 1000
                rows.append((seq, ep.name, phase, offset, latency, ttft, status, error))

        seq = 0
        phase_start = 0.0
        for phase in phases:
            if phase.rps <= 0:
                continue
            next_at = phase_start
            end = phase_start + phase.duration_s
            while True:
                next_at += rng.expovariate(phase.rps)
                if next_at >= end:
                    break
                if seq >= max_requests:
                    stopped = f"max_requests {max_requests}"
                    break
                if next_at >= max_seconds:
                    stopped = f"max_seconds {max_seconds:g}"
                    break
                delay = next_at - (time.perf_counter() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)
                ep = rng.choices(endpoints, weights)[0]
                body = ep.bodies[counters[ep.name] % len(ep.bodies)] if ep.bodies else None
                counters[ep.name] += 1
                tasks.append(asyncio.create_task(fire(seq, ep, phase.name, body)))
                seq += 1
            if stopped:
                break
            phase_start = end
        if tasks:
            await asyncio.gather(*tasks)
    rows.sort(key=lambda r: r[0])
    return rows, time.perf_counter() - t0, stopped


def summarize_load(store: Store, run_id: str, endpoints: Sequence[Endpoint]) -> list[EndpointStats]:
    """Per-endpoint percentiles, error rate and budget verdicts from the stored requests."""
    out = []
    for ep in endpoints:
        rows = store.conn.execute(
            "SELECT phase, latency_ms, ttft_ms, error FROM load_results WHERE run_id = ? AND endpoint = ?",
            (run_id, ep.name),
        ).fetchall()
        stats = _figures(rows)
        by_phase = {
            phase: _figures([r for r in rows if r[0] == phase])
            for phase in sorted({r[0] for r in rows})
        }
        limits = ep.limits
        budgets = limits.checks(stats)
        out.append(
            EndpointStats(
                endpoint=ep.name,
                kind=ep.kind,
                requests=int(stats["requests"] or 0),
                errors=int(stats["errors"] or 0),
                error_rate=float(stats["error_rate"] or 0.0),
                p50_ms=stats["p50_ms"],
                p95_ms=stats["p95_ms"],
                p99_ms=stats["p99_ms"],
                ttft_p95_ms=stats["ttft_p95_ms"],
                by_phase=by_phase,
                budgets=budgets,
            )
        )
    return out


def _figures(rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    ok = np.array([r[1] for r in rows if r[3] is None and r[1] is not None], dtype=float)
    ttft = np.array([r[2] for r in rows if r[3] is None and r[2] is not None], dtype=float)
    errors = sum(1 for r in rows if r[3] is not None)

    def pct(values: Any, q: float) -> float | None:
        return float(np.percentile(values, q)) if values.size else None

    return {
        "requests": len(rows),
        "errors": errors,
        "error_rate": errors / len(rows) if rows else None,
        "p50_ms": pct(ok, 50),
        "p95_ms": pct(ok, 95),
        "p99_ms": pct(ok, 99),
        "ttft_p95_ms": pct(ttft, 95),
    }


def render_text(run: LoadRun) -> str:
    """A terminal report of a load run."""
    lines = [
        f"load run {run.run_id}: {run.requests} requests in {run.duration_s:.1f} s"
        + (f" (stopped by {run.stopped_by})" if run.stopped_by else "")
    ]
    for e in run.endpoints:

        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v:,.0f}"

        lines.append(
            f"  {e.endpoint} ({e.kind}): {e.requests} requests, errors {e.error_rate:.2%}, "
            f"p50 {ms(e.p50_ms)} ms, p95 {ms(e.p95_ms)} ms, p99 {ms(e.p99_ms)} ms"
            + (f", TTFT p95 {ms(e.ttft_p95_ms)} ms" if e.ttft_p95_ms is not None else "")
        )
        lines.extend(f"      {'ok ' if b.ok else 'BAD'} {b.message}" for b in e.budgets)
    lines.append("budgets: " + ("all met" if run.ok else "BROKEN"))
    return "\n".join(lines)


def _import(spec: str) -> Any:
    module_name, _, attr = spec.removeprefix("python:").rpartition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"load target {spec!r}: cannot import: {exc}") from None
    return fn


def phases_from(spec: str) -> list[Phase]:
    """Phases from text such as ``steady:20rps:10s,spike:60rps:3s``."""
    out = []
    for part in spec.split(","):
        try:
            name, rps, dur = part.strip().split(":")
            out.append(Phase(name, float(rps.removesuffix("rps")), float(dur.removesuffix("s"))))
        except ValueError:
            raise ConfigError(
                f"phase {part!r}: write name:RATErps:SECONDSs, e.g. steady:20rps:10s"
            ) from None
    return out


def bodies_from_json(text: str) -> tuple[Any, ...]:
    """Request bodies from a JSON value (a list is cycled through)."""
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else (value,)
