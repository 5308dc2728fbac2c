"""The ``demo:<version>`` provider: the demo model server, spoken to as an OpenAI endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from workbench.providers import OpenAIProvider

__all__ = ["OPTIONS", "SERVER_OPTIONS", "DemoProvider"]

# The run options a demo target takes; no API key: the demo server needs none.
OPTIONS = ("concurrency", "timeout_s", "stream", "base_url")
# The options of the demo server it starts when a run gives no base_url.
SERVER_OPTIONS = ("latency_ms", "fault_rate")


class DemoProvider(OpenAIProvider):
    """The bundled demo server, started as a child process unless a base URL is given."""

    kind = "demo"

    def __init__(
        self,
        version: str,
        *,
        target: str | None = None,
        base_url: str | None = None,
        latency_ms: str = "0",
        fault_rate: float = 0.0,
        faults: str | None = None,
        server_seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(
            version,
            target=target or f"demo:{version}",
            base_url=base_url or "http://127.0.0.1:0/v1",
            **options,
        )
        self._spawn = base_url is None
        self._demo_options: dict[str, Any] = {
            "latency_ms": latency_ms,
            "fault_rate": fault_rate,
            "faults": faults,
            "seed": server_seed,
        }
        self._process: Any = None

    async def start(self) -> None:
        """Start the demo server on a free port (if no base URL was given), then the client."""
        if self._spawn and self._process is None:
            from workbench.demo.process import DemoProcess

            self._process = await asyncio.to_thread(
                lambda: DemoProcess(**self._demo_options).start()
            )
            self.base_url = self._process.url
        await super().start()

    async def aclose(self) -> None:
        """Close the client and stop the child server."""
        await super().aclose()
        if self._process is not None:
            await asyncio.to_thread(self._process.close)
            self._process = None
