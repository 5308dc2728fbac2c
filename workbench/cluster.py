"""The Dask executor: a run's (case, repeat) pairs answered and scored on a dask.distributed cluster.

``EvalOptions(executor="dask", scheduler="tcp://HOST:8786")`` sends the work to a running
scheduler's workers; ``executor="dask-local"`` starts a ``LocalCluster`` of ``workers``
processes for the run. The client cuts the work into chunks of (case, repeat) pairs and
submits one task per chunk. On each worker the first chunk of a run opens a session that
lives until the run ends: the target's provider (started once), the judge, and the card's
scorers and embedding models, loaded once. A chunk answers its pairs concurrently, scores
them and returns its rows; the client writes them to the store as each chunk completes.

Only the client writes the store, and a result is keyed by (run, case, repeat), so a chunk
whose worker died is re-run by the scheduler elsewhere and nothing is duplicated or lost.
For HTTP targets (``openai:`` and ``demo:``) each in-flight case holds a lease of a
``distributed.Semaphore`` of ``concurrency`` leases named after the run, so the whole cluster
keeps the run's concurrency to the provider, not each worker. (A lease is held by a chunk's
lane while it takes cases, not per call: two scheduler round trips per call cost more than
the calls on a loopback endpoint.) Recording is done by the client (the workers
send the responses back), so one process writes a snapshot file.

dask is imported only here, and only when a run uses this executor. The runner reaches this
module through its executor registry (``workbench.runner._EXECUTORS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench import judges, providers, scoring
from workbench.errors import CircuitOpenError, ConfigError
from workbench.golden import Case, Dataset
from workbench.runner import EvalOptions, _CaseWork, _Progress, _RunState, _warm_scorers
from workbench.store import ResultRow, ScoreRow, Store

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_LOCAL_WORKERS",
    "INSTALL_HINT",
    "check",
    "chunk_size",
    "drive",
    "require",
]

DEFAULT_LOCAL_WORKERS = 2
CONNECT_TIMEOUT_S = 10.0
INSTALL_HINT = "pip install 'dask[distributed]>=2026.8.0'"
_MAX_CHUNKS_PER_WORKER = 8  # enough chunks to balance and stream; few enough to be cheap


def chunk_size(pairs: int, workers: int, concurrency: int, given: int | None = None) -> int:
    """Pairs per chunk: about eight chunks per worker, at most two rounds of the concurrency
    (a chunk's results reach the store when it completes, so chunks stay small)."""
    if given is not None:
        return max(1, given)
    per_worker = math.ceil(pairs / (max(1, workers) * _MAX_CHUNKS_PER_WORKER))
    return max(1, min(per_worker, 2 * concurrency))


# -- the client -------------------------------------------------------------------------


async def drive(
    work: list[tuple[Case, int]],
    ds: Dataset,
    target: str,
    provider: providers.Provider,
    judge_config: scoring.AnyJudge | None,
    provider_options: Mapping[str, Any],
    store: Store,
    run_id: str,
    opts: EvalOptions,
    params: Mapping[str, Any],
    state: _RunState,
    progress: bool | str,
) -> None:
    """Answer ``work`` on the cluster and store each result as its chunk comes back."""
    distributed = _distributed()
    snapshots = getattr(provider, "snapshots", None) if opts.record else None
    if snapshots is not None:  # as RecordingProvider.start: the file exists even if unused
        snapshots.folder.mkdir(parents=True, exist_ok=True)
        snapshots.path.touch(exist_ok=True)
    remote = _Remote(target)
    mode = "bar" if progress is True else progress or ""
    bar = _Progress(mode, len(work), run_id, remote, state, opts.progress_interval_s)
    bar.start()
    try:
        async with _connect(distributed, opts) as client:
            info = client.scheduler_info().get("workers", {})
            workers = len(info)
            size = chunk_size(len(work), workers, opts.concurrency, opts.chunk_size)
            capped = _capped(provider)
            # HTTP targets: the run's concurrency spread over the chunks that run at once (one
            # per worker thread), so that no lane waits on the semaphore while others work
            slots = sum(int(w.get("nthreads") or 1) for w in info.values()) or 1
            lanes = math.ceil(opts.concurrency / slots) if capped else opts.concurrency
            token = f"{run_id}-{uuid.uuid4().hex[:8]}"
            recipe = _Recipe(
                ds=ds,
                target=target,
                options=dataclasses.replace(opts, record=None),
                provider_options=dict(provider_options),
                params=dict(params),
                judge=judge_config,
                run_id=run_id,
                record=snapshots is not None,
                cap=f"workbench-cap-{token}" if capped else None,
                lanes=lanes,
            )
            [shared] = await client.scatter([recipe], broadcast=True, hash=False)
            chunks = [
                [(case.id, repeat) for case, repeat in work[i : i + size]]
                for i in range(0, len(work), size)
            ]
            futures = [
                client.submit(
                    _run_chunk, token, shared, chunk, key=f"workbench-{token}-{i}", pure=False
                )
                for i, chunk in enumerate(chunks)
            ]
            try:
                async for future in distributed.as_completed(futures):
                    if future.cancelled():
                        continue
                    try:
                        done: _ChunkResult = await future
                    except Exception as exc:
                        if (fixed := _environment_error(exc, opts)) is None:
                            raise
                        raise fixed from exc
                    for row, scores in done.rows:
                        state.record(store, row, scores)
                        bar.update()
                    for key, request, response in done.snapshots:
                        assert snapshots is not None
                        snapshots.add(key, request, response)
                    remote.retries_by_worker[done.worker] = done.retries
                    if done.abort and state.abort_reason is None:
                        state.abort_reason = done.abort
                        await client.cancel([f for f in futures if not f.done()])
            finally:
                await client.cancel([f for f in futures if not f.done()])
                with contextlib.suppress(Exception):  # a worker that left has nothing to close
                    await client.run(_close_session, token)
    finally:
        bar.close()
        if snapshots is not None:
            snapshots.compact()


def _environment_error(exc: Exception, opts: EvalOptions) -> ConfigError | None:
    """A worker or the scheduler that cannot load the work, as the fix: the same environment."""
    text = str(exc)
    if isinstance(exc, ImportError) or "No module named" in text or "deserializ" in text:
        where = opts.scheduler or "the LocalCluster"
        return ConfigError(
            f"the Dask cluster at {where} cannot load this run's work "
            f"({type(exc).__name__}: {text.splitlines()[0] if text else ''}); the scheduler and "
            "every worker need this client's environment: the same workbench installed, and "
            "the module of a python: target importable"
        )
    return None


def require() -> None:
    """Raise ConfigError, naming the install command, when dask.distributed is missing."""
    _distributed()


async def check(opts: EvalOptions) -> None:
    """Before a run is created: raise ConfigError when its scheduler cannot be reached (a
    LocalCluster of the run's own is started by the run; a scheduler without workers is
    refused by the run's client after a wait, as workers may be joining)."""
    if opts.executor != "dask":
        return
    d = _distributed()
    try:  # one request to the scheduler, cheaper than a client
        async with d.rpc(opts.scheduler, timeout=CONNECT_TIMEOUT_S) as scheduler:
            await asyncio.wait_for(scheduler.identity(), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise _unreachable(opts.scheduler, exc) from None


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            f"the Dask executor needs dask.distributed, which is not installed ({exc}); "
            f"{INSTALL_HINT}, or run with --executor local"
        ) from None
    return distributed


def _capped(provider: providers.Provider) -> bool:
    """Whether the run's cases hold leases of a cluster-wide semaphore: an HTTP endpoint's."""
    inner = getattr(provider, "inner", provider)  # a RecordingProvider's target
    return isinstance(inner, providers.OpenAIProvider)


def _unreachable(address: str | None, exc: BaseException) -> ConfigError:
    why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ConfigError(
        f"--scheduler {address}: cannot reach a Dask scheduler there within "
        f"{CONNECT_TIMEOUT_S:g} s ({why}); start one with "
        "`dask scheduler` and workers with `dask worker ADDRESS`, or use "
        "--executor dask-local --workers N"
    )


class _connect:
    """An asynchronous dask client: to ``opts.scheduler``, or to a LocalCluster of its own."""

    def __init__(self, distributed: Any, opts: EvalOptions) -> None:
        self.distributed, self.opts = distributed, opts
        self.cluster: Any = None
        self.client: Any = None

    async def __aenter__(self) -> Any:
        d, opts = self.distributed, self.opts
        if opts.executor == "dask-local":
            self.cluster = await d.LocalCluster(
                n_workers=opts.workers or DEFAULT_LOCAL_WORKERS,
                threads_per_worker=2,  # a second chunk starts while the first one's tail ends
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                asynchronous=True,
            )
            address = self.cluster.scheduler_address
        else:
            address = opts.scheduler
        try:
            self.client = await d.Client(address, asynchronous=True, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            await self._close_cluster()
            raise _unreachable(address, exc) from None
        try:
            await self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S * 3)
        except (OSError, TimeoutError):
            await self.__aexit__()
            raise ConfigError(
                f"the Dask scheduler at {address} has no workers after "
                f"{CONNECT_TIMEOUT_S * 3:g} s; start some with `dask worker {address}`"
            ) from None
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.client is not None:
                await self.client.close()
        finally:
            await self._close_cluster()

    async def _close_cluster(self) -> None:
        if self.cluster is not None:
            await self.cluster.close()
            self.cluster = None


@dataclass
class _Remote:
    """What the progress line reads of a provider, gathered from the workers' sessions."""

    target: str
    retries_by_worker: dict[str, int] = field(default_factory=dict)

    @property
    def retries(self) -> int:
        return sum(self.retries_by_worker.values())


# -- the workers ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipe:
    """Everything a worker needs to answer a run's pairs (scattered once to every worker)."""

    ds: Dataset
    target: str
    options: EvalOptions
    provider_options: dict[str, Any]
    params: dict[str, Any]
    judge: scoring.AnyJudge | None
    run_id: str
    record: bool
    cap: str | None  # the name of the run's semaphore for HTTP targets, or None
    lanes: int  # the cases a chunk runs at once


@dataclass
class _ChunkResult:
    """A chunk's answered pairs, the responses to record, and why it stopped early, if it did."""

    worker: str
    rows: list[tuple[ResultRow, list[ScoreRow]]]
    snapshots: list[tuple[str, providers.Request, providers.Response]]
    abort: str | None
    retries: int


_captured: contextvars.ContextVar[list[tuple[str, providers.Request, providers.Response]]] = (
    contextvars.ContextVar("workbench_captured")
)


class _WorkerProvider:
    """The target on a worker, its responses captured to record (the client writes the
    snapshots)."""

    def __init__(self, inner: providers.Provider, record: bool) -> None:
        self.inner, self.record = inner, record
        self.target, self.model = inner.target, inner.model
        self.kind = getattr(inner, "kind", inner.target.partition(":")[0])

    @property
    def retries(self) -> int:
        return int(getattr(self.inner, "retries", 0) or 0)

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def complete(self, request: providers.Request) -> providers.Response:
        response = await self.inner.complete(request)
        if self.record:
            key = providers.snapshot_key(self.kind, self.model, request)
            _captured.get().append((key, request, response))
        return response


@dataclass
class _Session:
    """A run's state on one worker: opened by its first chunk, closed when the run ends."""

    work: _CaseWork
    provider: _WorkerProvider
    cases: dict[str, Case]
    lanes: int
    cap: Any  # the run's distributed.Semaphore (HTTP targets), or None


_SESSIONS: dict[str, asyncio.Task[_Session]] = {}


async def _open_session(recipe: _Recipe) -> _Session:
    opts = recipe.options
    inner = providers.build(recipe.target, replay=opts.replay, **recipe.provider_options)
    cap = None
    if recipe.cap is not None:
        from distributed import Semaphore

        cap = Semaphore(max_leases=opts.concurrency, name=recipe.cap)  # type: ignore[no-untyped-call]
    provider = _WorkerProvider(inner, recipe.record)
    judge = judges.build_judge(recipe.judge, None, opts)
    await provider.start()
    if judge is not None:
        await judge.start()
    ds = recipe.ds
    _warm_scorers(ds, ds.cases[0])
    work = _CaseWork(ds, provider, judge, recipe.run_id, recipe.params, opts.redact)
    return _Session(work, provider, {c.id: c for c in ds.cases}, recipe.lanes, cap)


async def _run_chunk(token: str, recipe: _Recipe, pairs: list[tuple[str, int]]) -> _ChunkResult:
    """Answer and score a chunk's pairs (on the worker's event loop), return their rows."""
    from distributed import get_worker

    if token not in _SESSIONS:
        _SESSIONS[token] = asyncio.ensure_future(_open_session(recipe))
    session = await _SESSIONS[token]
    captured: list[tuple[str, providers.Request, providers.Response]] = []
    _captured.set(captured)
    result = _ChunkResult(get_worker().address, [], captured, None, 0)
    queue = list(reversed(pairs))

    async def drain() -> None:
        while queue and result.abort is None:
            case_id, repeat = queue.pop()
            try:
                result.rows.append(await session.work.answer(session.cases[case_id], repeat))
            except CircuitOpenError as exc:
                result.abort = result.abort or str(exc)

    async def lane() -> None:
        # A lane is one of the run's in-flight cases, as a worker task of the in-process
        # runner is; it holds one lease of the run's semaphore while it takes cases, not one
        # per call: a lease costs two round trips to the scheduler.
        if session.cap is None:
            await drain()
        elif queue:
            async with session.cap:
                await drain()

    await asyncio.gather(*(lane() for _ in range(min(session.lanes, len(pairs)))))
    result.retries = session.provider.retries
    return result


async def _close_session(token: str) -> None:
    """Close a run's provider and judge on this worker (run by the client at the end)."""
    task = _SESSIONS.pop(token, None)
    if task is None:
        return
    session = await task
    try:
        if session.work.judge is not None:
            await session.work.judge.aclose()
    finally:
        await session.provider.aclose()
