"""A headless Chromium driven over the DevTools protocol: what a reader's browser does."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--hide-scrollbars",
]


def chromium() -> str | None:
    """The Chromium binary, if installed."""
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


@dataclass
class PageVisit:
    """What happened when a page was opened."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def external(self) -> list[str]:
        """Requests that would leave the machine (anything but file:, data:, blob:, loopback)."""
        local = ("file:", "data:", "blob:", "about:", "http://127.0.0.1", "http://localhost")
        return [u for u in self.requests if not u.startswith(local)]


def visit(
    path: Path,
    expressions: dict[str, str],
    *,
    wait_s: float = 4.0,
    width: int = 1400,
    height: int = 900,
    screenshot: Path | None = None,
) -> PageVisit:
    """Open a file in headless Chromium, record every request and dialog, evaluate expressions.

    The page is laid out in a ``width`` × ``height`` window; ``screenshot`` saves a PNG of
    what the window shows there.
    """
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = tempfile.mkdtemp(prefix="wb-chromium-")
    proc = subprocess.Popen(
        [
            binary,
            *CHROMIUM_FLAGS,
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return asyncio.run(
            _drive(port, path.resolve().as_uri(), expressions, wait_s, (width, height), screenshot)
        )
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


async def _drive(
    port: int,
    url: str,
    expressions: dict[str, str],
    wait_s: float,
    size: tuple[int, int],
    screenshot: Path | None,
) -> PageVisit:
    result = PageVisit()
    async with aiohttp.ClientSession() as session:
        targets: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                    targets = [t for t in await r.json() if t.get("type") == "page"]
                if targets:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        if not targets:
            raise RuntimeError("chromium did not start")
        async with session.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 1_000_000))
            pending: dict[int, asyncio.Future[Any]] = {}
            background: list[asyncio.Future[Any]] = []

            async def send(method: str, **params: Any) -> Any:
                i = next(ids)
                fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                pending[i] = fut
                await ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
                return await asyncio.wait_for(fut, 30)

            async def reader() -> None:
                async for msg in ws:
                    data = json.loads(msg.data)
                    if "id" in data and data["id"] in pending:
                        pending.pop(data["id"]).set_result(data.get("result", data.get("error")))
                    elif data.get("method") == "Network.requestWillBeSent":
                        result.requests.append(data["params"]["request"]["url"])
                    elif data.get("method") == "Page.javascriptDialogOpening":
                        result.dialogs.append(data["params"].get("message", ""))
                        background.append(
                            asyncio.ensure_future(send("Page.handleJavaScriptDialog", accept=True))
                        )
                    elif data.get("method") == "Runtime.consoleAPICalled":
                        result.console.append(str(data["params"].get("args")))

            task = asyncio.create_task(reader())
            await send("Network.enable")
            await send("Page.enable")
            await send("Runtime.enable")
            await send(
                "Emulation.setDeviceMetricsOverride",
                width=size[0],
                height=size[1],
                deviceScaleFactor=1,
                mobile=False,
            )
            await send("Page.navigate", url=url)
            await asyncio.sleep(wait_s)
            for name, expr in expressions.items():
                value = await send("Runtime.evaluate", expression=expr, returnByValue=True)
                result.values[name] = (value or {}).get("result", {}).get("value")
            if screenshot is not None:
                shot = await send("Page.captureScreenshot", format="png")
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            task.cancel()
    return result
