"""An OTLP/HTTP trace receiver: ``POST /v1/traces`` into the store, one transaction per request.

It answers as the OTLP/HTTP specification says
(https://opentelemetry.io/docs/specs/otlp/#otlphttp): 200 with an ``ExportTraceServiceResponse``
in the request's encoding (``partial_success`` counting the spans refused, and why), 400 with
a ``google.rpc.Status`` for a body that does not decode, 401 without the bearer token when
one is required, 413 above the size limit (before or after gzip), 415 for another content
type or encoding, 429 with ``Retry-After`` when more requests wait for the database than it
queues, 503 with ``Retry-After`` while another writer holds the database. Exporters retry
429 and 503 and give up on the others, which is what those bodies deserve.

Each request is decoded, mapped (``_mapping``, the same code as ``traces ingest``) and
committed in one transaction before the 200: a retried request (same span ids) stores
nothing new, and a kill -9 loses at most the requests not yet answered. One thread writes;
the event loop only reads requests and answers, so 429s stay prompt under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import socket
import sqlite3
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from workbench.errors import ConfigError
from workbench.prices import Price, PriceBook
from workbench.store import Store
from workbench.traces._ingest import ingest_request
from workbench.traces._proto import Undecodable
from workbench.traces._report import IngestReport

TOKEN_ENV = "WORKBENCH_OTLP_TOKEN"
DEFAULT_PORT = 4318  # OTLP/HTTP's registered port
MAX_BODY_BYTES = 20 * 1024 * 1024  # as the Collector's default max_request_body_size
MAX_PENDING = 16  # requests waiting for the writer before the next gets 429
RETRY_AFTER_S = 1  # a 429: the writer catches up quickly
BUSY_RETRY_AFTER_S = 5  # a 503: another process holds the database
BUSY_TIMEOUT_S = 5.0
_MAX_MESSAGES = 20
# The writer leaves checkpoints to a thread of their own (`_Checkpointer`), which copies the
# WAL into the database between requests; only a WAL of this many pages (~200 MB: the
# checkpointer fell behind) is checkpointed by the writer itself.
_CHECKPOINT_PAGES = 50_000
_CHECKPOINT_EVERY_S = 0.25
_LOOPBACK = frozenset(("127.0.0.1", "::1", "localhost"))
_PROTOBUF = frozenset(("application/x-protobuf", "application/protobuf"))
_JSON = "application/json"
# google.rpc.Code values for the Status bodies
_CODES = {400: 3, 401: 16, 413: 3, 415: 3, 429: 8, 500: 13, 503: 14}


@dataclass
class ReceiverStats:
    """What a receiver has taken in since it started."""

    requests: int = 0  # answered 200
    spans: int = 0  # in those requests
    stored: int = 0
    duplicates: int = 0  # already stored (a retried request)
    rejected: int = 0  # malformed spans, counted in partial_success
    refused: Counter[int] = field(default_factory=Counter)  # requests by status, not 200
    messages: list[str] = field(default_factory=list)  # the first reasons for both

    def add(self, report: IngestReport) -> None:
        """Count one accepted request."""
        self.requests += 1
        self.spans += report.spans_read
        self.stored += report.stored
        self.duplicates += report.duplicates
        self.rejected += report.skipped
        self._note(report.errors)

    def refuse(self, status: int, message: str) -> None:
        """Count one refused request."""
        self.refused[status] += 1
        self._note([f"{status}: {message}"])

    def _note(self, messages: list[str]) -> None:
        room = _MAX_MESSAGES - len(self.messages)
        if room > 0:
            self.messages.extend(messages[:room])

    def render(self) -> str:
        """One line of counts, then the refusals by status."""
        line = (
            f"received {self.requests:,} request{'' if self.requests == 1 else 's'}, "
            f"{self.spans:,} spans: {self.stored:,} stored, {self.duplicates:,} duplicates, "
            f"{self.rejected:,} rejected"
        )
        if self.refused:
            shown = ", ".join(f"{n:,} x {status}" for status, n in sorted(self.refused.items()))
            line += f"; refused {shown}"
        return line


class _TooLarge(Exception):
    pass


class _Checkpointer(threading.Thread):
    """Copies the WAL into the database on a connection of its own, beside the writer.

    A passive checkpoint never waits for the writer and never makes it wait; each runs in
    one call into SQLite, which releases the GIL for all of it. The last one, at stop,
    truncates the WAL.
    """

    def __init__(self, db: Path, busy_ms: int) -> None:
        super().__init__(name="otlp-checkpointer", daemon=True)
        self._db = db
        self._busy_ms = busy_ms
        self._done = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self._db, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            while not self._done.wait(_CHECKPOINT_EVERY_S):
                with contextlib.suppress(sqlite3.Error):  # busy or locked: the next one
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()

    def finish(self) -> None:
        """Checkpoint what is left and stop (after the writer has stopped)."""
        self._done.set()
        self.join(60)


class Receiver:
    """``POST /v1/traces`` on ``host:port`` into the store at ``db``, on a background thread.

    Use as a context manager (or ``start()``/``stop()``). ``port=0`` picks a free port; read
    ``url`` after ``start()``. A host other than loopback needs a ``token`` (by default the
    ``WORKBENCH_OTLP_TOKEN`` environment variable), which every request must then send as
    ``Authorization: Bearer <token>``; a token set for loopback is required too.
    A request that waits ``busy_timeout_s`` for another writer of the database gets 503
    (sooner than an exporter's own timeout, 10 s by default, so it retries).
    ``log`` gets a line every ``log_every_s`` seconds in which requests arrived.
    """

    def __init__(
        self,
        db: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        prices: Mapping[str, Price] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_pending: int = MAX_PENDING,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        log: Callable[[str], None] | None = None,
        log_every_s: float = 10.0,
    ) -> None:
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if host not in _LOOPBACK and token is None:
            raise ConfigError(
                f"binding {host} exposes the receiver beyond this machine: set {TOKEN_ENV} "
                f"to a secret the exporters send as 'Authorization: Bearer <token>' "
                f"(e.g. OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>), "
                f"or bind 127.0.0.1"
            )
        if max_body_bytes < 1 or max_pending < 1:
            raise ConfigError("max_body_bytes and max_pending must be at least 1")
        self.db = Path(db)
        self.host = host
        self.port = port
        self.stats = ReceiverStats()
        self._token = token.encode() if token else None
        self._book = PriceBook(prices)
        self._max_body = max_body_bytes
        self._max_pending = max_pending
        self._busy_ms = int(busy_timeout_s * 1000)
        self._log = log
        self._log_every_s = log_every_s
        self._pending = 0
        self._store: Store | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._reporter: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # stats, between the writer and readers of stats
        self._checkpointer: _Checkpointer | None = None

    @property
    def url(self) -> str:
        """The base URL exporters are given, e.g. ``http://127.0.0.1:4318``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The traces endpoint, ``<url>/v1/traces`` (``OTLPSpanExporter(endpoint=...)``)."""
        return f"{self.url}/v1/traces"

    def start(self) -> Self:
        """Bind, open the store and serve on a background thread; return at once."""
        if self._thread is not None:
            raise RuntimeError("the receiver is already running")
        sock = self._bind()
        try:
            self._store = Store(self.db)
            if self._store.engine != "sqlite":
                self._store.close()
                self._store.require_sqlite("traces")
            self._store.conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            # A checkpoint on the writer's path (with its fsyncs) every few requests would
            # cost each request a third of its time; the checkpointer does it beside it.
            self._store.conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
        except BaseException:
            sock.close()
            raise
        self._checkpointer = _Checkpointer(self.db, self._busy_ms)
        self._checkpointer.start()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="otlp-writer")
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve(sock))
            except BaseException as exc:  # reported to start()
                failed.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="otlp-receiver", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            self._close()
            raise failed[0]
        return self

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}"
                + (" (another receiver or collector?); pass --port" if self.port else "")
            ) from None
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=self._max_body)
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            auto_decompress=False,
            shutdown_timeout=30.0,  # for the requests in flight
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        if self._log is not None:
            self._reporter = asyncio.get_running_loop().create_task(self._report_every())

    async def _shutdown(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
        await self._runner.cleanup()  # waits for the requests in flight

    async def _report_every(self) -> None:
        shown = 0
        while True:
            await asyncio.sleep(self._log_every_s)
            with self._lock:
                seen = self.stats.requests + sum(self.stats.refused.values())
                line = self.stats.render()
            if seen != shown and self._log is not None:
                shown = seen
                self._log(line)

    def stop(self) -> None:
        """Stop taking requests, let those in flight commit, close the store."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already stopped
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        self._close()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self._checkpointer is not None:
            self._checkpointer.finish()
            self._checkpointer = None
        if self._store is not None:
            self._store.close()
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        self._writer = self._store = self._loop = self._thread = self._runner = None
        self._reporter = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Receiver({self.endpoint!r}, db={str(self.db)!r})"

    # -- one request ------------------------------------------------------------------

    async def _traces(self, request: Any) -> Any:
        from aiohttp import web

        protobuf = request.content_type in _PROTOBUF
        if self._token is not None and not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), b"Bearer " + self._token
        ):
            return self._refuse(
                401, "send Authorization: Bearer <token>", protobuf, {"WWW-Authenticate": "Bearer"}
            )
        if not protobuf and request.content_type != _JSON:
            return self._refuse(
                415,
                f"Content-Type {request.content_type or '(none)'} is not supported; "
                "send application/x-protobuf or application/json",
                protobuf,
            )
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("gzip", "identity", ""):
            return self._refuse(
                415, f"Content-Encoding {encoding} is not supported; send gzip or none", protobuf
            )
        if request.content_length is not None and request.content_length > self._max_body:
            return self._too_large(protobuf)
        if self._pending >= self._max_pending:
            return self._refuse(
                429,
                f"{self._pending} requests are waiting for the database; retry",
                protobuf,
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        self._pending += 1
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return self._too_large(protobuf)
            source = f"otlp {request.remote or '?'} {_moment()}"
            loop = asyncio.get_running_loop()
            report = await loop.run_in_executor(
                self._writer, self._ingest, body, encoding == "gzip", protobuf, source
            )
        except Undecodable as exc:
            return self._refuse(400, str(exc), protobuf)
        except _TooLarge:
            return self._too_large(protobuf)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return self._refuse(
                    503,
                    f"the database is busy: {exc}",
                    protobuf,
                    {"Retry-After": str(BUSY_RETRY_AFTER_S)},
                )
            return self._refuse(500, f"cannot write spans: {exc}", protobuf)
        except sqlite3.DatabaseError as exc:
            return self._refuse(500, f"cannot write spans: {exc}", protobuf)
        finally:
            self._pending -= 1
        return self._accepted(report, protobuf)

    def _ingest(self, body: bytes, gzipped: bool, protobuf: bool, source: str) -> IngestReport:
        """Decompress, decode and commit one request (on the writer thread)."""
        if gzipped:
            body = self._gunzip(body)
        assert self._store is not None
        report = ingest_request(self._store, body, protobuf, source=source, book=self._book)
        with self._lock:
            self.stats.add(report)
        return report

    def _gunzip(self, body: bytes) -> bytes:
        inflate = zlib.decompressobj(wbits=31)
        try:
            out = inflate.decompress(body, self._max_body + 1)
        except zlib.error as exc:
            raise Undecodable(f"Content-Encoding gzip, but the body is not gzip: {exc}") from None
        if len(out) > self._max_body or inflate.unconsumed_tail:
            raise _TooLarge
        if not inflate.eof:
            raise Undecodable("Content-Encoding gzip, but the gzip stream is cut short")
        return out

    def _accepted(self, report: IngestReport, protobuf: bool) -> Any:
        rejected = report.skipped
        message = "; ".join(report.errors[:3]) if rejected else ""
        if protobuf:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTracePartialSuccess,
                ExportTraceServiceResponse,
            )

            response = ExportTraceServiceResponse()
            if rejected:
                response.partial_success.CopyFrom(
                    ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
                )
            return _response(200, response.SerializeToString(), protobuf)
        doc = (
            {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}
            if rejected
            else {}
        )
        return _response(200, _json(doc), protobuf)

    def _too_large(self, protobuf: bool) -> Any:
        return self._refuse(
            413, f"the body is over {self._max_body:,} bytes; send smaller batches", protobuf
        )

    def _refuse(
        self, status: int, message: str, protobuf: bool, headers: Mapping[str, str] | None = None
    ) -> Any:
        with self._lock:
            self.stats.refuse(status, message)
        code = _CODES.get(status, 2)
        if protobuf:
            from google.rpc.status_pb2 import Status

            body = Status(code=code, message=message).SerializeToString()
        else:
            body = _json({"code": code, "message": message})
        return _response(status, body, protobuf, headers)


def _response(
    status: int, body: bytes, protobuf: bool, headers: Mapping[str, str] | None = None
) -> Any:
    from aiohttp import web

    return web.Response(
        status=status,
        body=body,
        content_type="application/x-protobuf" if protobuf else _JSON,
        headers=dict(headers or {}),
    )


def _json(doc: Any) -> bytes:
    import orjson

    return orjson.dumps(doc)


def _moment() -> str:
    """Now as an ISO time to the millisecond, for a request's ``source``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def serve(receiver: Receiver, echo: Callable[[str], None], stop: threading.Event) -> ReceiverStats:
    """Run ``receiver`` until ``stop`` is set (the CLI sets it on SIGINT or SIGTERM)."""
    with receiver:
        echo(
            f"receiving OTLP/HTTP traces at {receiver.endpoint} into {receiver.db} "
            f"(protobuf or JSON, gzip or not){' with a bearer token' if receiver._token else ''}"
        )
        while not stop.wait(0.5):
            pass
    echo(receiver.stats.render())
    return receiver.stats
