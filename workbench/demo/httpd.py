"""HTTP plumbing shared by the demo model server and the demo app: loopback, keep-alive, JSON.

:class:`LoopbackServer` runs a threaded HTTP server on 127.0.0.1, tracks open connections so
that ``stop()`` ends keep-alive clients promptly, and starts on a daemon thread.
:class:`JSONHandler` is the request handler base: quiet, HTTP/1.1, replies written in one
packet, bodies read by Content-Length with a size limit. :func:`until_interrupted` is how a
command-line ``serve()`` runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from types import FrameType, TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import urlsplit

from workbench.errors import ConfigError

__all__ = [
    "LOOPBACK",
    "JSONHandler",
    "LoopbackHTTPServer",
    "LoopbackServer",
    "check_loopback",
    "dumps",
    "until_interrupted",
]

LOOPBACK = ("127.0.0.1", "localhost")
_POLL_S = 0.05

OwnerT = TypeVar("OwnerT", bound="LoopbackServer")


def dumps(payload: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def check_loopback(host: str, what: str) -> None:
    """Refuse any host but 127.0.0.1 (or localhost)."""
    if host not in LOOPBACK:
        raise ConfigError(f"the {what} binds to 127.0.0.1 only, not {host!r}")


class LoopbackHTTPServer(http.server.ThreadingHTTPServer, Generic[OwnerT]):
    """ThreadingHTTPServer tuned for many keep-alive clients, quiet about vanished peers."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(
        self, address: tuple[str, int], handler: type[JSONHandler[OwnerT]], owner: OwnerT
    ) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a getfqdn() lookup we neither need nor want to wait on.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away, or stop() closed the connection
        self.owner.logger.exception(
            "%s: unhandled error serving %s", self.owner.label, client_address
        )


class JSONHandler(http.server.BaseHTTPRequestHandler, Generic[OwnerT]):
    """A quiet HTTP/1.1 handler that answers in JSON; ``self.server.owner`` is the server."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    disable_nagle_algorithm = True
    max_body = 1024 * 1024
    server: LoopbackHTTPServer[OwnerT]

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the demo servers write no access log."""

    def _refuse_body(self, status: int) -> None:
        """Answer 411 (chunked body) or 413 (bad or too large Content-Length)."""
        raise NotImplementedError

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/")

    def _read_body(self) -> bytes | None:
        """The body by Content-Length, or None after a 411 or 413 answer (and closing)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._refuse_body(411)
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= self.max_body:
            self.close_connection = True
            self._refuse_body(413)
            return None
        return self.rfile.read(length)

    def _head(self, status: int, fields: Sequence[tuple[str, str]]) -> bytes:
        """Status line and headers, to send in the same write as the body (one packet)."""
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            *(f"{name}: {value}" for name, value in fields),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(
        self,
        status: int,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        fields = [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers]
        # Head and body in one write: one packet, no Nagle/delayed-ACK stall.
        self.wfile.write(self._head(status, fields) + body)

    def _send_json(
        self, status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self._send(status, dumps(payload), headers)


class LoopbackServer:
    """An HTTP server on 127.0.0.1; start() runs it on a background thread, stop() ends it."""

    label: ClassVar[str] = "demo http server"  # in errors, logs and the thread's name
    logger: ClassVar[logging.Logger] = logging.getLogger(__name__)

    def __init__(self, handler: type[JSONHandler[Any]], host: str, port: int) -> None:
        check_loopback(host, self.label)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._looping = threading.Event()
        self._closed = False
        self._httpd = LoopbackHTTPServer(("127.0.0.1", port), handler, self)

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._httpd.server_address[1])

    def start(self) -> Self:
        """Serve on a daemon thread; the socket is already listening when this returns."""
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} was stopped; create a new one")
        if self._thread is None:
            name = f"{self.label.replace(' ', '-')}-{self.port}"
            self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
            self._thread.start()
            self._looping.wait(5.0)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until stop() (or KeyboardInterrupt)."""
        self._looping.set()
        try:
            self._httpd.serve_forever(poll_interval=_POLL_S)
        finally:
            self._looping.clear()

    def stop(self) -> None:
        """Stop promptly: close the listener and every open keep-alive connection."""
        if self._closed:
            return
        self._closed = True
        self._on_stop()
        if self._looping.is_set() and threading.current_thread() is not self._thread:
            self._httpd.shutdown()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._httpd.server_close()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _on_stop(self) -> None:
        """Called once when stop() begins, before the listener closes: wake hung handlers."""

    def _track(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)


@contextlib.contextmanager
def until_interrupted() -> Iterator[None]:
    """Run the block until it ends or SIGINT or SIGTERM interrupts it, which ends it quietly.

    In the main thread SIGTERM raises KeyboardInterrupt while the block runs; the previous
    handler is restored afterwards.
    """

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
