"""The demo app on loopback over a demo model server child, and its endpoints for load tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workbench.demo.app import AppConfig, TriageApp
from workbench.demo.appserver import AppServer
from workbench.demo.process import DemoProcess
from workbench.golden import load_dataset
from workbench.latency import Endpoint, LoadRun, run_load
from workbench.store import Store

__all__ = ["app_endpoints", "app_stack", "load_app"]


@contextmanager
def app_stack(
    *, fault_rate: float = 0.0, latency_ms: str = "30,120", seed: int = 0
) -> Iterator[str]:
    """The demo app on loopback, backed by a demo model server child; yields the app URL."""
    faults = "429,500,timeout,malformed" if fault_rate else None
    with DemoProcess(
        latency_ms=latency_ms, fault_rate=fault_rate, faults=faults, seed=seed
    ) as model:
        app = TriageApp(AppConfig(model_url=model.url, model_timeout_s=5.0))
        try:
            with AppServer(app) as server:
                yield server.url
        finally:
            app.close()


def app_endpoints(app_url: str, *, tickets: int = 60) -> list[Endpoint]:
    """The demo app's API-core search and LLM triage endpoints, fed with golden tickets."""
    cases = load_dataset("support-triage").cases[:tickets]
    triage = tuple(
        {"ticket": c.input["ticket"], "channel": c.input.get("channel", "email")} for c in cases
    )
    search = tuple({"query": c.expected["summary"], "k": 3} for c in cases)
    return [
        Endpoint("search", f"{app_url}/api/search", kind="api", bodies=search, weight=0.4),
        Endpoint("triage", f"{app_url}/api/triage", kind="llm", bodies=triage, weight=0.6),
    ]


def load_app(store: Store, *, fault_rate: float = 0.0, seed: int = 0, **options: Any) -> LoadRun:
    """A load run (``options`` go to :func:`~workbench.latency.run_load`) against the demo app."""
    with app_stack(fault_rate=fault_rate, seed=seed) as url:
        return run_load(store, app_endpoints(url), seed=seed, **options)
