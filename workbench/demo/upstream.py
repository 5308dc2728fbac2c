"""The demo app's side of the model server: a keep-alive client, and AppError for what fails.

Every failed call becomes an :class:`AppError`: a 502 (``bad_gateway`` and its kinds) or, for a
timeout, a 504; the app's other refusals (bad input, protocol errors) use the same error.
"""

from __future__ import annotations

import http.client
import json
import select
import threading
from typing import Any
from urllib.parse import urlsplit

from workbench.errors import ConfigError, WorkbenchError

__all__ = ["AppError", "ModelClient", "bad_request", "upstream_message"]

_POOL_SIZE = 8


class AppError(WorkbenchError):
    """A request the app cannot answer; ``status`` is the HTTP status and ``code`` says why."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        code: str = "bad_gateway",
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.upstream_status = upstream_status

    def body(self) -> dict[str, Any]:
        """The JSON error body sent to the client."""
        error: dict[str, Any] = {"code": self.code, "message": str(self), "status": self.status}
        if self.upstream_status is not None:
            error["upstream_status"] = self.upstream_status
        return {"error": error}


def bad_request(message: str) -> AppError:
    """A 400 invalid_request AppError."""
    return AppError(message, status=400, code="invalid_request")


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when an idle keep-alive connection was closed by the server (EOF is readable)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class ModelClient:
    """POSTs chat completions over keep-alive http.client connections from a small shared pool.

    Each request checks out one connection, so a connection is only ever used by one thread at a
    time; idle ones go back to the pool (at most ``size`` kept).
    """

    def __init__(self, url: str, timeout_s: float, size: int = _POOL_SIZE) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"model_url {url!r}: expected the model server's OpenAI base URL, "
                "like http://127.0.0.1:8000/v1"
            )
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"model_url {url!r}: bad port") from None
        self.url = url
        self.timeout_s = timeout_s
        self._https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = port or (443 if self._https else 80)
        path = parts.path.rstrip("/")
        self.path = path if path.endswith("/chat/completions") else f"{path}/chat/completions"
        self._size = size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one request and return (status, body); transport failures raise AppError."""
        conn = self._acquire()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            conn.request("POST", self.path, body, headers)
            response = conn.getresponse()
            data = response.read()
        except TimeoutError:
            conn.close()
            raise AppError(
                f"the model server at {self.url} did not answer within {self.timeout_s:g} s",
                status=504,
                code="model_timeout",
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise AppError(
                f"the model server at {self.url} failed: {type(exc).__name__}: {exc}",
                code="model_connection",
            ) from None
        if response.will_close:
            conn.close()
        else:
            self._release(conn)
        return response.status, data

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _acquire(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
        if self._https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()


def upstream_message(data: bytes) -> str:
    """The message of an OpenAI-style error body, else the start of the body."""
    try:
        message = json.loads(data)["error"]["message"]
        if isinstance(message, str):
            return message
    except (ValueError, LookupError, TypeError):
        pass
    return repr(data[:120])
