"""The demo app over HTTP: AppServer serves a TriageApp's endpoints on 127.0.0.1 (keep-alive).

The routes and their JSON bodies are listed in :mod:`workbench.demo.app`; every error is an
:class:`~workbench.demo.upstream.AppError` body ``{"error": {"code", "message", "status"}}``.
``serve()`` runs it as a process: ``python -m workbench.demo app``. This module imports the
app, never the other way round.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from workbench.demo.app import AppConfig, TriageApp
from workbench.demo.httpd import (
    LOOPBACK,
    JSONHandler,
    LoopbackServer,
    check_loopback,
    until_interrupted,
)
from workbench.demo.upstream import AppError, bad_request
from workbench.errors import ConfigError

__all__ = ["AppServer", "add_arguments", "command", "serve"]

# The app's logger, so that its HTTP errors are logged where they always were.
_LOG = logging.getLogger("workbench.demo.app")
_LISTENING = "workbench demo app listening on"
_MAX_BODY = 1024 * 1024
_IDLE_TIMEOUT_S = 60.0


class _Handler(JSONHandler["AppServer"]):
    """Routes requests to the owning AppServer's TriageApp."""

    server_version = "workbench-demo-app/0.1"
    max_body = _MAX_BODY
    timeout = _IDLE_TIMEOUT_S  # an idle keep-alive connection is closed after this

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol errors (bad request line, unknown method) with a JSON body."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        self._send_error(AppError(text, status=code, code="protocol_error"))

    def do_GET(self) -> None:
        """Serve /healthz and /api/stats."""
        path = self._path()
        if path == "/healthz":
            self._send_json(200, {"status": "ok"})
        elif path == "/api/stats":
            self._send_json(200, self.server.owner.app.stats())
        elif path in ("/api/search", "/api/triage"):
            error = AppError(f"use POST for {path}", status=405, code="method_not_allowed")
            self._send_error(error, [("Allow", "POST")])
        else:
            self._not_found()

    def do_POST(self) -> None:
        """Serve /api/search and /api/triage."""
        app = self.server.owner.app
        body = self._read_json()
        if body is None:
            return
        path = self._path()
        # The app checks the types; a missing field arrives as None and is a 400.
        get: Any = body.get
        try:
            if path == "/api/search":
                result = app.search(get("query"), get("k"))
            elif path == "/api/triage":
                result = app.triage(get("ticket"), get("channel", "email"))
            else:
                self._not_found()
                return
        except AppError as exc:
            self._send_error(exc)
            return
        except Exception as exc:
            _LOG.exception("demo app: %s failed", path)
            self._send_error(AppError(f"{type(exc).__name__}: {exc}", status=500, code="internal"))
            return
        self._send_json(200, result)

    # -- plumbing -------------------------------------------------------------------------

    def _not_found(self) -> None:
        message = (
            f"no route {self.command} {self._path() or '/'}; "
            "try /api/search, /api/triage, /api/stats"
        )
        self._send_error(AppError(message, status=404, code="not_found"))

    def _refuse_body(self, status: int) -> None:
        if status == 411:
            message = "send the body with a Content-Length header"
            self._send_error(AppError(message, status=411, code="length_required"))
        else:
            message = f"bad or too large Content-Length (max {_MAX_BODY} bytes)"
            self._send_error(AppError(message, status=413, code="too_large"))

    def _read_json(self) -> dict[str, Any] | None:
        raw = self._read_body()
        if raw is None:
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send_error(bad_request("the body must be a JSON object"))
            return None
        return body

    def _send_error(self, exc: AppError, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send_json(exc.status, exc.body(), headers)


class AppServer(LoopbackServer):
    """Serves a TriageApp over HTTP on 127.0.0.1; start() runs it on a background thread."""

    label = "demo app"
    logger = _LOG

    def __init__(self, app: TriageApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        super().__init__(_Handler, host, port)

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:8080."""
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"AppServer(url={self.url!r}, model_url={self.app.config.model_url!r})"


def serve(config: AppConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
    """Print the one "listening on URL" line, then serve until SIGINT or SIGTERM.

    Without ``config.model_url`` a demo model server runs as a child process for as long as
    the app does.
    """
    from workbench.demo.process import DemoProcess

    config = config or AppConfig()
    check_loopback(host, AppServer.label)
    child: DemoProcess | None = None
    app: TriageApp | None = None
    server: AppServer | None = None
    with until_interrupted():
        try:
            if not config.model_url:
                child = DemoProcess().start()
                config = dataclasses.replace(config, model_url=child.url)
            app = TriageApp(config)
            server = AppServer(app, host, port)
            print(f"{_LISTENING} {server.url}", flush=True)
            server.serve_forever()
        finally:
            if server is not None:
                server.stop()
            if app is not None:
                app.close()
            if child is not None:
                child.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m workbench.demo app``."""
    parser.add_argument(
        "--model-url",
        default=None,
        help="OpenAI base URL of the model server; omitted: start a demo server child process",
    )
    parser.add_argument("--model", default=AppConfig.model, help="model name sent upstream")
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 only")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--template-cache", type=int, default=AppConfig.template_cache)
    parser.add_argument("--embedding-cache", type=int, default=AppConfig.embedding_cache)
    parser.add_argument("--response-cache", type=int, default=AppConfig.response_cache)
    parser.add_argument(
        "--timeout", type=float, default=AppConfig.model_timeout_s, help="model call timeout, s"
    )


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``python -m workbench.demo app``: serve() with the parsed options."""
    if args.host not in LOOPBACK:
        parser.error(f"--host {args.host!r}: the demo app binds to 127.0.0.1 only")
    try:
        config = AppConfig(
            model_url=args.model_url,
            model=args.model,
            template_cache=args.template_cache,
            embedding_cache=args.embedding_cache,
            response_cache=args.response_cache,
            model_timeout_s=args.timeout,
        )
        serve(config, host=args.host, port=args.port)
    except ConfigError as exc:
        parser.error(str(exc))
    except RuntimeError as exc:  # the demo server child did not start
        print(f"demo app: {exc}", file=sys.stderr)
        return 1
    return 0
