"""Parser processes that read and map trace files while the caller inserts the rows.

Parsing and mapping take about two thirds of an ingest, SQLite the rest, and threads cannot
overlap them (the sqlite3 module binds each row holding the GIL). So for large inputs child
processes run ``batches`` over the files and send each batch, pickled, through their stdout;
the parent inserts batch k while the children map the next ones. Two children share each
JSON Lines file by chunks of whole lines (chunk k, of about ``batch_size`` spans, is child
k % 2's; both read every line, so line numbers hold), and the parent takes the chunks in file
order: rows, counts, errors (their order and cap) and the first malformed record of a strict
ingest are those of one serial reader. A whole document goes to child 0, which also hashes.

The children are fresh interpreters (``subprocess``, no fork: safe in a Jupyter kernel, under
pytest and with threads). They ignore Ctrl-C (the parent decides), hold at most a few batches
(a bounded queue in front of the pipe: constant memory), and exit when the pipe breaks, so a
parent killed with -9 leaves no orphan behind. The parent kills them on any error of its own.

Messages, one pickled tuple each, lengths first: ``("batch", Batch, *counts)`` and, at the end
of each file, ``("end", sha256, *counts)``, where counts are the spans read, records skipped
and their messages since the last message; or a last ``("strict", message)``,
``("oserror", errno, strerror, filename)`` or ``("crash", traceback)``.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from workbench.errors import WorkbenchError
from workbench.prices import PriceBook
from workbench.traces._read import Batch, NoDigest, Share, Strict, batches
from workbench.traces._report import MAX_ERRORS, IngestReport

_PARTS = 2  # parser processes: with the parent, enough to keep two cores busy
_QUEUE_BATCHES = 2  # batches a child keeps ready beyond the one in the pipe
_LENGTH = 8  # bytes of a message's length prefix
_CHUNK_BYTES_PER_ROW = 500  # a chunk of lines holds about batch_size spans

# Run by the child. The package __init__ files import the store, pandas and the runner (most
# of a second); the parser needs none of them, so the packages are set up bare.
_CHILD_CODE = """
import pickle, sys, types
path, packages = pickle.load(sys.stdin.buffer)
sys.path[:] = path
for name, where in packages:
    module = sys.modules[name] = types.ModuleType(name)
    module.__path__ = [where]
from workbench.traces._pipeline import _child
_child()
"""


def available() -> bool:
    """Whether parser processes can start here (POSIX, an interpreter path, two CPUs or more)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return os.name == "posix" and bool(sys.executable) and (cpus or 1) >= 2


class _Child:
    """One parser process and its pipe."""

    def __init__(self, job: tuple[Any, ...]) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
            )
        except BaseException:
            self.stderr.close()
            raise
        root = Path(__file__).resolve().parent
        packages = [("workbench", str(root.parent)), ("workbench.traces", str(root))]
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.out: IO[bytes] = self.proc.stdout
        try:
            with self.proc.stdin as stdin:
                stdin.write(pickle.dumps((sys.path, packages)))
                stdin.write(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError:
            pass  # the child died at start-up: reported by the first read

    def receive(self, path: Path) -> Any:
        """The next message; a WorkbenchError naming ``path`` if the child died."""
        head = self.out.read(_LENGTH)
        body = self.out.read(int.from_bytes(head, "little")) if len(head) == _LENGTH else b""
        if len(head) < _LENGTH or len(body) < int.from_bytes(head, "little"):
            raise WorkbenchError(f"{path}: {self._death()}; this file's spans were rolled back")
        return pickle.loads(body)

    def _death(self) -> str:
        try:
            code = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            return "the trace parser process closed its pipe"
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        return f"the trace parser process {how}" + (f" ({lines[-1]})" if lines else "")

    def close(self) -> None:
        """Stop the child if it still runs (an error in the parent) and release its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.out.close()
        self.stderr.close()


class Parser:
    """The parent's end: starts the children on ``files`` and yields each file's batches in
    file order."""

    def __init__(
        self, files: list[Path], book: PriceBook, batch_size: int, strict: bool, parts: int = _PARTS
    ) -> None:
        self.sha256 = ""
        names = [str(p) for p in files]
        chunk_bytes = batch_size * _CHUNK_BYTES_PER_ROW
        self.children: list[_Child] = []
        try:
            for part in range(parts):
                job = (names, book, batch_size, strict, Share(part, parts, chunk_bytes))
                self.children.append(_Child(job))
        except BaseException:
            self.close()
            raise

    def batches(self, path: Path, report: IngestReport) -> Iterator[Batch]:
        """The batches of ``path`` (the children's next file); counts go to ``report``."""
        children = self.children
        done = [False] * len(children)
        k = 0  # the child whose chunk comes next in the file
        while not all(done):
            message = children[k].receive(path)
            kind = message[0]
            if kind == "batch":
                _count(report, *message[2:])
                batch = message[1]
                if batch.rows:
                    yield batch
                if batch.ends_chunk:
                    k = _next(k, done)
            elif kind == "end":
                # A child ends when its next chunk would be the file's next: none is left.
                _count(report, *message[2:])
                self.sha256 = message[1] or self.sha256
                done[k] = True
                k = _next(k, done)
            elif kind == "strict":
                # A row SQLite refused, in an earlier chunk, came first in the file.
                raise Strict(report.errors[0] if report.skipped else message[1])
            elif kind == "oserror":
                raise OSError(*message[1:])
            else:
                last = message[1].strip().splitlines()[-1]
                raise WorkbenchError(
                    f"{path}: the trace parser process failed: {last}; this file's spans were "
                    "rolled back. Ingest with parallel=False to see where it happens."
                )

    def close(self) -> None:
        """Stop the children that still run (an error in the parent) and release their pipes."""
        for child in self.children:
            child.close()


def _next(k: int, done: list[bool]) -> int:
    """The child after ``k`` that has not finished the file (``k`` again if it is the last)."""
    for step in range(1, len(done) + 1):
        if not done[(k + step) % len(done)]:
            return (k + step) % len(done)
    return k


def _count(report: IngestReport, spans_read: int, skipped: int, errors: list[str]) -> None:
    report.spans_read += spans_read
    report.skipped += skipped
    report.errors.extend(errors[: MAX_ERRORS - len(report.errors)])


# -- the child ----------------------------------------------------------------------------------


def _child() -> None:
    """Parse the files named on stdin, sending batches on stdout (run by ``_CHILD_CODE``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, not into the messages
    gc.disable()  # parsed JSON makes no reference cycles
    ready: queue.Queue[bytes | None] = queue.Queue(_QUEUE_BATCHES)
    writer = threading.Thread(target=_send_all, args=(ready, out), daemon=True)
    writer.start()

    def send(message: tuple[Any, ...]) -> None:
        ready.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    try:
        for message in _messages(*pickle.load(sys.stdin.buffer)):
            send(message)
    except BaseException:
        send(("crash", traceback.format_exc()))
    ready.put(None)
    writer.join()


def _messages(
    names: list[str], book: PriceBook, batch_size: int, strict: bool, share: Share
) -> Iterator[tuple[Any, ...]]:
    """What a child sends for its share of ``names`` (crashes aside)."""
    try:
        for name in names:
            report = IngestReport()
            sha = hashlib.sha256() if share.part == 0 else None  # one child hashes
            news = _News(report)
            digest = sha or NoDigest()
            for batch in batches(Path(name), book, batch_size, strict, report, digest, share):
                yield ("batch", batch, *news.since())
            yield ("end", sha.hexdigest() if sha else "", *news.since())
    except Strict as exc:
        yield ("strict", str(exc))
    except OSError as exc:
        yield ("oserror", exc.errno, exc.strerror, exc.filename)


class _News:
    """What a file's report gained since the last message: spans read, skipped, errors."""

    def __init__(self, report: IngestReport) -> None:
        self.report = report
        self.sent = (0, 0, 0)

    def since(self) -> tuple[int, int, list[str]]:
        r = self.report
        read, skipped, errors = self.sent
        self.sent = (r.spans_read, r.skipped, len(r.errors))
        return r.spans_read - read, r.skipped - skipped, r.errors[errors:]


def _send_all(ready: queue.Queue[bytes | None], out: IO[bytes]) -> None:
    try:
        while (blob := ready.get()) is not None:
            out.write(len(blob).to_bytes(_LENGTH, "little"))
            out.write(blob)
            out.flush()
        out.close()
    except OSError:  # the parent is gone (killed, or stopped us): nobody to report to
        os._exit(1)
