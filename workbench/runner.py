"""The runner: every (case, repeat) of a golden set through a provider, scored and stored.

Work runs on one asyncio loop with a fixed pool of workers (the concurrency).
Each result is committed the moment it is known, so a crash loses nothing
finished and ``resume`` runs only the (case, repeat) pairs still missing.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import threading
import time
from collections.abc import Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np

from workbench import budgets as budgets_mod
from workbench import judges, prices, providers, scoring
from workbench.checks import Check, Provenance
from workbench.errors import CircuitOpenError, ConfigError, ProviderError, ReplayMissError, RunError
from workbench.golden import (
    Card,
    Case,
    Dataset,
    Selection,
    json_schema_format,
    load_dataset,
    parameter_problem,
    prompt_doc,
)
from workbench.store import ResultRow, ScoreRow, Store
from workbench.text import milliseconds, percent, percentile
from workbench.tools import stored_calls

__all__ = [
    "DEFAULTS",
    "DEFAULT_MAX_TOKENS",
    "EXECUTORS",
    "PROGRESS_INTERVAL_S",
    "EvalOptions",
    "JudgeTotals",
    "RunSummary",
    "arun_eval",
    "calibration_text",
    "request_parameters",
    "run_eval",
    "run_judge",
    "run_sync",
    "score_one",
    "summarize",
]

T = TypeVar("T")


EXECUTORS = ("local", "dask", "dask-local")
# Executors in a module of their own, imported on first use (dask loads only then).
_EXECUTORS = {"dask": "workbench.cluster", "dask-local": "workbench.cluster"}
DEFAULT_MAX_TOKENS = 1024  # a small model that never stops would otherwise fill its context
DEFAULTS: dict[str, Any] = {"temperature": 0.0, "seed": 0, "max_tokens": DEFAULT_MAX_TOKENS}
PROGRESS_INTERVAL_S = 10.0


@dataclass(frozen=True)
class EvalOptions:
    """How to run an eval: sampling parameters, repeats, concurrency, case selection, snapshots.

    ``seed``, ``temperature``, ``max_tokens`` and ``structured_output`` left at None take the
    dataset card's value, else the default (seed 0, temperature 0, at most 1,024 output tokens);
    a value given here overrides the card. Repeat ``r`` is sent with seed ``seed + r``.
    """

    concurrency: int = 8
    seed: int | None = None
    temperature: float | None = None
    repeats: int = 1
    max_tokens: int | None = None
    structured_output: bool | None = None
    selection: Selection | None = None
    base_url: str | None = None
    timeout_s: float = 60.0
    stream: bool = False
    record: str | None = None
    replay: str | None = None
    provider_options: Mapping[str, Any] = field(default_factory=dict)
    redact: bool = False  # store outputs, errors, score details redacted; scored on the original
    progress_interval_s: float = PROGRESS_INTERVAL_S
    judge: str | None = None  # the judge target, over the card's judge
    allow_self_judge: bool = False
    prompt: str | None = None  # the card's prompt variant (default: its first)
    # where the (case, repeat) pairs run: "local" (this process's event loop), "dask" (the
    # workers of the Dask scheduler at ``scheduler``) or "dask-local" (a LocalCluster of
    # ``workers`` processes); see workbench.cluster
    executor: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    chunk_size: int | None = None  # pairs per Dask task (default: see cluster.chunk_size)

    @classmethod
    def from_flags(
        cls,
        target: str,
        *,
        case_ids: tuple[str, ...] = (),
        tags: tuple[str, ...] = (),
        sample: int | None = None,
        limit: int | None = None,
        server_options: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> EvalOptions:
        """Options from ``workbench eval``'s flags: the selection flags become a
        :class:`Selection` (a sample is seeded by ``seed``), and ``server_options`` (an API
        key's variable, the demo server's latency and faults) go to the target's provider
        when it takes them (see :func:`providers.options_for`)."""
        provider_options = providers.options_for(
            target,
            dict(server_options or {}),
            base_url=fields.get("base_url"),
            replay=bool(fields.get("replay")),
        )
        selection = Selection(case_ids, tags, sample, limit, fields.get("seed") or 0)
        return cls(selection=selection, provider_options=provider_options, **fields)

    def overrides(self) -> dict[str, Any]:
        """The sampling parameters this run sets over the card's."""
        given = {
            "seed": self.seed,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "structured_output": self.structured_output,
        }
        return {k: v for k, v in given.items() if v is not None}

    def parameters(self) -> dict[str, Any]:
        """The parameters recorded on the run (no secrets: keys never pass through here)."""
        return {
            "seed": self.seed,
            "temperature": self.temperature,
            "repeats": self.repeats,
            "max_tokens": self.max_tokens,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout_s,
            "stream": self.stream,
            "record": self.record,
            "replay": self.replay,
            "provider_options": dict(self.provider_options),
            **({"redact": True} if self.redact else {}),
            **({"allow_self_judge": True} if self.allow_self_judge else {}),
            **({"prompt": self.prompt} if self.prompt else {}),
            **(self._executor_parameters() if self.executor != "local" else {}),
        }

    def _executor_parameters(self) -> dict[str, Any]:
        out: dict[str, Any] = {"executor": self.executor}
        if self.scheduler:
            out["scheduler"] = self.scheduler
        if self.executor == "dask-local":
            out["workers"] = self.workers or 2
        return out

    def executor_problem(self) -> str | None:
        """What is wrong with the executor options (the fix included), or None."""
        if self.executor not in EXECUTORS:
            return f"--executor {self.executor!r}: not an executor; choose {', '.join(EXECUTORS)}"
        if self.scheduler and self.executor != "dask":
            return (
                f"--scheduler {self.scheduler} is the address of a Dask scheduler for "
                "--executor dask; add --executor dask (or drop --scheduler)"
            )
        if self.executor == "dask" and not self.scheduler:
            return (
                "--executor dask needs --scheduler tcp://HOST:8786 (a running `dask scheduler`); "
                "or run a cluster on this machine with --executor dask-local --workers N"
            )
        if self.workers is not None and self.executor != "dask-local":
            return (
                f"--workers {self.workers} is the size of the LocalCluster of --executor "
                "dask-local; add --executor dask-local (a scheduler's workers are its own)"
            )
        if self.workers is not None and self.workers < 1:
            return f"--workers must be at least 1, got {self.workers}"
        if self.chunk_size is not None and self.chunk_size < 1:
            return f"chunk_size must be at least 1, got {self.chunk_size}"
        return None


def request_parameters(card: Card, options: EvalOptions) -> dict[str, Any]:
    """The sampling parameters every request of a run carries: the run's, the card's, defaults.

    A card value of null means "do not send it" (no seed, no output cap).
    """
    params: dict[str, Any] = {**DEFAULTS, **card.parameters}
    if _structured(card, options):
        if card.output_schema is None:
            raise ConfigError(
                f"{card.name}: structured output sends the card's output_schema as the "
                "json_schema response format, and the card has none; add an output_schema"
            )
        params["response_format"] = json_schema_format(card.name, card.output_schema)
    for name, value in options.overrides().items():
        if name != "structured_output":
            params[name] = value
    return {k: params[k] for k in providers.SAMPLING_PARAMETERS if params.get(k) is not None}


def run_judge(ds: Dataset, target: str, options: EvalOptions) -> scoring.AnyJudge | None:
    """The judge a run of ``target`` on ``ds`` with these options uses, or None."""
    return judges.judge_config(
        ds.card.judge,
        options.judge,
        dataset=ds.name,
        target=target,
        specs=ds.card.scorers,
        allow_self_judge=options.allow_self_judge,
    )


def _structured(card: Card, options: EvalOptions) -> bool:
    """Whether a run sends the output schema as the response format (the run's say, else the card's)."""
    if options.structured_output is None:
        return card.structured_output
    return options.structured_output


def _run_parameters(
    ds: Dataset,
    opts: EvalOptions,
    request: Mapping[str, Any],
    selected: int,
    judge: scoring.AnyJudge | None = None,
) -> dict[str, Any]:
    """What a run records: the effective parameters, where they came from, the selection."""
    out = opts.parameters()
    if judge is not None:
        out.update(judges.run_parameters(judge))
    out.update(
        seed=request.get("seed"),
        temperature=request.get("temperature"),
        max_tokens=request.get("max_tokens"),
        structured_output=_structured(ds.card, opts),
        request=dict(request),
        card={**ds.card.parameters, "structured_output": ds.card.structured_output},
        overrides=opts.overrides(),
    )
    if opts.selection:
        out["selection"] = {**opts.selection.to_dict(), "selected": selected}
    if ds.card.tools:  # which tools the card offers (a case may offer its own)
        out["tools"] = [t["function"]["name"] for t in ds.card.tools]
        out["tool_choice"] = ds.card.tool_choice
    return out


@dataclass
class RunSummary:
    """The headline figures of a run and its budget verdicts."""

    run_id: str
    status: str
    reason: str | None
    dataset: str
    dataset_hash: str
    target: str
    cases: int
    repeats: int
    expected_results: int
    results: int
    passed: int
    pass_rate: float | None
    errors: int
    error_rate: float | None
    mean_score: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p95_ttft_ms: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    scorer_means: dict[str, float | None]
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    max_tokens: int | None = None
    length_cutoffs: int = 0  # outputs that stopped at max_tokens (finish_reason "length")
    notes: list[str] = field(default_factory=list)
    budgets: list[Check] = field(default_factory=list)
    judge: JudgeTotals | None = None  # what judging cost, never in the figures above
    prompt: str | None = None  # the card's prompt variant, when it has several

    @property
    def budget_ok(self) -> bool:
        """True when every budget holds and the run finished."""
        return not self.broken()

    def broken(self) -> list[Check]:
        """The checks that failed: a run that did not finish, and each broken budget."""
        return [c for c in self.checks() if not c.ok]

    def checks(self) -> list[Check]:
        """The card's budgets, after a failing check for a run that did not finish."""
        if self.status == "finished":
            return list(self.budgets)
        status = Check("run", False, f"run {self.status}: {self.reason}")
        return [status, *self.budgets]

    def headline(self) -> dict[str, Any]:
        """Results, pass rate, errors, p95 latency, cost, cut-offs and cached tokens (and
        the judge's calls and cost, apart, on a judged run)."""
        out = {k: getattr(self, k) for k in _HEADLINE}
        if self.judge is not None:
            out["judge_calls"] = self.judge.calls
            out["judge_cost_usd"] = self.judge.cost_usd
        return out

    def provenance(self) -> Provenance:
        """The run and the dataset version it ran on."""
        return Provenance((self.run_id,), {self.dataset: self.dataset_hash})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as printed by ``workbench eval --json``."""
        out = asdict(self)
        out["budgets"] = [b.to_dict() for b in self.budgets]
        out["budget_ok"] = self.budget_ok
        return out

    def render_text(self) -> str:
        """The terminal report of ``workbench eval``: figures, notes, budgets."""
        lines = [
            f"run {self.run_id}  {self.status}  {self.target} on {self.dataset} ({self.dataset_hash})"
            + (f"  prompt {self.prompt}" if self.prompt else ""),
            f"  results {self.results}/{self.expected_results}  passed {self.passed}"
            f" ({percent(self.pass_rate)})  errors {self.errors} ({percent(self.error_rate)})",
            f"  latency p50 {milliseconds(self.p50_latency_ms)}  p95 {milliseconds(self.p95_latency_ms)}"
            f"  tokens {self.tokens_in:,} in ({self.cached_tokens:,} cached) / {self.tokens_out:,} out"
            + (f" ({self.reasoning_tokens:,} reasoning)" if self.reasoning_tokens else "")
            + ("" if self.cost_usd is None else f"  cost ${self.cost_usd:,.4f}"),
        ]
        if self.judge is not None:
            lines.append("  " + self.judge.render_text())
        if self.reason:
            lines.append(f"  reason: {self.reason}")
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.append("budgets:")
        lines.extend(f"  {'ok ' if b.ok else 'BAD'} {b.message}" for b in self.budgets)
        return "\n".join(lines)


@dataclass
class JudgeTotals:
    """A judged run's judge: who, and what judging cost, counted apart from the model."""

    target: str
    prompt_hash: str | None
    calls: int
    cached: int
    tokens_in: int
    tokens_out: int
    latency_ms: float
    cost_usd: float | None
    errors: int  # judge scores that are errors (no answer, or one that did not parse)
    # per judge scorer label: its latest calibration (kappa, low, high, labels, run_id,
    # floor), or None when this judge and rubric were never calibrated
    calibrations: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def render_text(self) -> str:
        """The judge, its calls (cached), tokens, cost and errors; then each judge scorer's
        calibration (``judge κ = 0.71 [0.58, 0.82] on 60 labels``) or its absence."""
        cost = "" if self.cost_usd is None else f"  cost ${self.cost_usd:,.4f}"
        errors = f"  judge errors {self.errors}" if self.errors else ""
        lines = [
            f"judge {self.target}  calls {self.calls:,} ({self.cached:,} cached)"
            f"  tokens {self.tokens_in:,} in / {self.tokens_out:,} out{cost}{errors}"
            "  (apart from the model's)"
        ]
        for label, cal in self.calibrations.items():
            lines.append(f"  {label}: {calibration_text(cal)}")
        return "\n  ".join(lines)


def calibration_text(cal: Mapping[str, Any] | None) -> str:
    """A judge scorer's trust, as shown beside its scores: kappa, interval, labels, floor."""
    if cal is None:
        return "judge not calibrated (workbench judge calibrate DATASET --labels LABELS.jsonl)"
    shown = judges.kappa_text(cal["kappa"], cal.get("low"), cal.get("high"), cal["labels"])
    below = "  BELOW the floor {:.2f}: not trusted".format(cal["floor"])
    return (
        shown + (below if cal["kappa"] < cal["floor"] else "") + f" (calibration {cal['run_id']})"
    )


_HEADLINE = (
    "results",
    "pass_rate",
    "errors",
    "p95_latency_ms",
    "cost_usd",
    "length_cutoffs",
    "cached_tokens",
)


def run_eval(
    dataset: Dataset | str,
    target: str,
    *,
    store: Store,
    options: EvalOptions | None = None,
    resume: str | None = None,
    progress: bool | str = False,
) -> RunSummary:
    """Run (or resume) an eval and return its summary; works inside Jupyter's loop too."""
    return run_sync(
        arun_eval(dataset, target, store=store, options=options, resume=resume, progress=progress)
    )


async def arun_eval(
    dataset: Dataset | str,
    target: str,
    *,
    store: Store,
    options: EvalOptions | None = None,
    resume: str | None = None,
    progress: bool | str = False,
) -> RunSummary:
    """Run (or resume) an eval on the current event loop."""
    opts = options or EvalOptions()
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    ds = ds.with_prompt(opts.prompt)
    if opts.repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {opts.repeats}")
    if opts.concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {opts.concurrency}")
    if problem := opts.executor_problem():
        raise ConfigError(problem)
    for name, value in opts.overrides().items():
        if name != "structured_output" and (problem := parameter_problem(name, value)):
            raise ConfigError(f"{name}: {problem}")
    run_id: str | None = None
    if resume:
        run_id, opts, ds = _prepare_resume(store, resume, ds, target, opts)
    selected = opts.selection.apply(ds) if opts.selection else ds.cases
    if not selected:
        raise ConfigError(f"{ds.name}: the selection {opts.selection} matches no case")
    request_params = request_parameters(ds.card, opts)
    judge_config = run_judge(ds, target, opts)
    provider_options: dict[str, Any] = dict(opts.provider_options)
    if not opts.replay:  # the provider takes those of the run's options it declares
        offered = dict(concurrency=opts.concurrency, timeout_s=opts.timeout_s, stream=opts.stream)
        for name, value in providers.options_for(target, offered).items():
            provider_options.setdefault(name, value)
        provider_options.update(providers.options_for(target, {"base_url": opts.base_url or None}))
    provider = providers.build(target, record=opts.record, replay=opts.replay, **provider_options)
    model = provider.model
    judge = judges.build_judge(
        judge_config, store, opts
    )  # before the run: a bad judge writes nothing
    executor = _executor(opts.executor)
    if executor is not None and opts.record and judge_config is not None:
        raise ConfigError(
            f"--record with a judge runs on --executor local only (the judge's snapshots are "
            f"written where it is called); record once with --executor local, then replay on "
            f"--executor {opts.executor}"
        )
    if executor is not None:  # an unreachable scheduler writes nothing
        await executor.check(opts)
    if run_id is None:
        run_id = store.create_run(
            dataset=ds.name,
            dataset_hash=ds.hash,
            cases_hash=ds.cases_hash,
            prompt_hash=ds.prompt_hash,
            prompt=prompt_doc(ds.card),
            target=target,
            model=model,
            version=model,
            parameters=_run_parameters(ds, opts, request_params, len(selected), judge_config),
            base_url=opts.base_url,
            cases=len(selected),
            repeats=opts.repeats,
        )
    done = store.done_keys(run_id)
    work = [(case, r) for r in range(opts.repeats) for case in selected if (case.id, r) not in done]
    state = _RunState()
    try:
        if executor is not None:  # the workers start their own providers and judges
            await executor.drive(
                work,
                ds,
                target,
                provider,
                judge_config,
                provider_options,
                store,
                run_id,
                opts,
                request_params,
                state,
                progress,
            )
        else:
            await provider.start()
            try:
                if judge is not None:
                    await judge.start()
                await _drive(
                    work, ds, provider, judge, store, run_id, opts, request_params, state, progress
                )
            finally:
                try:
                    if judge is not None:
                        await judge.aclose()
                finally:
                    await provider.aclose()
    except (KeyboardInterrupt, asyncio.CancelledError):
        store.finish_run(
            run_id, "interrupted", reason="interrupted; resume with --resume " + run_id
        )
        raise
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        store.finish_run(run_id, "failed", reason=why)
        raise RunError(
            f"run {run_id} failed: {why}; finished results are kept, resume with --resume {run_id}"
        ) from exc
    reason: str | None
    if state.abort_reason:
        status, reason = "failed", state.abort_reason + f"; resume with --resume {run_id}"
    elif state.replay_misses:
        status, reason = (
            "failed",
            f"{state.replay_misses} case(s) had no snapshot to replay; re-record",
        )
    else:
        status, reason = "finished", None
    summary = summarize(store, run_id, ds, status=status, reason=reason)
    store.finish_run(run_id, status, reason=reason, summary=summary.to_dict())
    return summary


@dataclass
class _RunState:
    abort_reason: str | None = None
    replay_misses: int = 0
    completed: int = 0
    errors: int = 0

    def record(self, store: Store, row: ResultRow, scores: list[ScoreRow]) -> None:
        """Write one answered (case, repeat) and count it."""
        store.record_result(row, scores)
        self.completed += 1
        self.errors += bool(row.error)
        self.replay_misses += row.error_kind == "replay_miss"


class _Progress:
    """A tqdm bar on a terminal; elsewhere a one-line record to stderr every ``interval_s``.

    The records keep a CI log showing that a slow run is alive: done/total, errors,
    retries, rate and ETA, printed even while no case finishes. They come from a thread
    of their own, so scoring or a slow write on the event loop cannot hold them back.
    """

    def __init__(
        self, mode: str, total: int, run_id: str, provider: Any, state: _RunState, interval_s: float
    ) -> None:
        self.mode, self.total, self.run_id = mode, total, run_id
        self.provider, self.state, self.interval_s = provider, state, interval_s
        self.started = time.monotonic()
        self.bar = _progress_bar(total, run_id) if mode == "bar" else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.mode != "log":
            return
        target = getattr(self.provider, "target", "")
        self._print(f"eval {self.run_id}: started, {self.total} calls to {target}")
        self._thread = threading.Thread(target=self._tick, name="workbench-progress", daemon=True)
        self._thread.start()

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def line(self) -> str:
        done, elapsed = self.state.completed, time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - done) / rate:,.0f}s" if rate > 0 else "?"
        retries = int(getattr(self.provider, "retries", 0) or 0)
        return (
            f"eval {self.run_id}: {done}/{self.total} done, {self.state.errors} errors, "
            f"{retries} retries, {rate:.2f} cases/s, elapsed {elapsed:,.0f}s, ETA {eta}"
        )

    def _print(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._print(self.line())

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._print(self.line())
        if self.bar is not None:
            self.bar.close()


async def _drive(
    work: list[tuple[Case, int]],
    ds: Dataset,
    provider: providers.Provider,
    judge: judges.Judge | judges.Panel | None,
    store: Store,
    run_id: str,
    opts: EvalOptions,
    params: Mapping[str, Any],
    state: _RunState,
    progress: bool | str,
) -> None:
    queue: asyncio.Queue[tuple[Case, int]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    mode = "bar" if progress is True else progress or ""
    bar = _Progress(mode, len(work), run_id, provider, state, opts.progress_interval_s)
    ctx = _CaseWork(ds, provider, judge, run_id, params, opts.redact)

    async def one(case: Case, repeat: int) -> None:
        try:
            row, score_rows = await ctx.answer(case, repeat)
        except CircuitOpenError as exc:
            state.abort_reason = state.abort_reason or str(exc)
            return
        state.record(store, row, score_rows)
        bar.update()

    async def worker() -> None:
        while not queue.empty() and state.abort_reason is None:
            case, repeat = queue.get_nowait()
            await one(case, repeat)

    bar.start()  # before the scorers load: a cold start can take seconds
    try:
        if work:  # load validators and embedding models now, not inside the first timed calls
            _warm_scorers(ds, work[0][0])
        workers = [
            asyncio.create_task(worker()) for _ in range(min(opts.concurrency, max(1, len(work))))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
    finally:
        bar.close()


def _warm_scorers(ds: Dataset, case: Case) -> None:
    """Load the card's validators and embedding models now, not inside the first timed calls
    (the judges are skipped: they are providers, started apart)."""
    specs = ds.card.scorers
    skip = {s.label: (0.0, "", False) for s in judges.judge_specs(specs)}
    scoring.score_output(
        specs,
        json.dumps(case.expected),
        case.expected,
        case=case,
        schema=ds.card.output_schema,
        precomputed=skip,
    )


class _CaseWork:
    """What answering one (case, repeat) needs: the target's provider, the judge, the request's
    parameters. The in-process runner and the Dask workers both answer through it."""

    def __init__(
        self,
        ds: Dataset,
        provider: providers.Provider,
        judge: judges.Judge | judges.Panel | None,
        run_id: str,
        params: Mapping[str, Any],
        redact: bool,
    ) -> None:
        self.ds, self.provider, self.judge, self.run_id = ds, provider, judge, run_id
        self.redact = redact
        self.base_seed = params.get("seed")
        self.sampling = {k: v for k, v in params.items() if k != "seed"}

    def request(self, case: Case, repeat: int) -> providers.Request:
        """The request of a (case, repeat): the case's messages and tools, seed + repeat."""
        seed = None if self.base_seed is None else self.base_seed + repeat
        tools, tool_choice = self.ds.tools(case)
        return providers.Request(
            messages=self.ds.messages(case),
            seed=seed,
            case_id=case.id,
            input=case.input,
            tools=tools,
            tool_choice=tool_choice,
            **self.sampling,
        )

    async def answer(self, case: Case, repeat: int) -> tuple[ResultRow, list[ScoreRow]]:
        """Call the target and score its answer; a provider's failure is the row's error.

        Raises CircuitOpenError, for the caller to stop the run.
        """
        request = self.request(case, repeat)
        return await self.answer_request(case, repeat, request)

    async def answer_request(
        self, case: Case, repeat: int, request: providers.Request
    ) -> tuple[ResultRow, list[ScoreRow]]:
        """:meth:`answer` for a request already built."""
        ds, provider = self.ds, self.provider
        row = ResultRow(run_id=self.run_id, case_id=case.id, repeat=repeat, seed=request.seed)
        score_rows: list[ScoreRow] = []
        try:
            response = await provider.complete(request)
        except CircuitOpenError:
            raise
        except ReplayMissError as exc:
            row.error, row.error_kind, row.attempts = str(exc), "replay_miss", 1
        except ProviderError as exc:
            row.error, row.error_kind, row.attempts = str(exc), "provider", exc.attempts
        else:
            row.tool_calls = stored_calls(response.tool_calls)
            result, parsed = await score_one(ds, case, response.text, self.judge, row)
            row.output = response.text
            row.parsed = None if parsed is scoring.NOT_JSON else parsed
            row.passed, row.score = result.passed, result.score
            row.latency_ms, row.ttft_ms = response.latency_ms, response.ttft_ms
            row.tokens_in, row.tokens_out = response.tokens_in, response.tokens_out
            row.cached_tokens = response.cached_tokens
            row.reasoning_tokens = response.reasoning_tokens
            row.cost_usd = prices.cost_usd(
                provider.model, response.tokens_in, response.tokens_out, response.cached_tokens
            )
            row.finish_reason, row.attempts = response.finish_reason, response.attempts
            row.steps = response.steps
            score_rows = _score_rows(result)
        if self.redact:
            row, score_rows = _redacted(row, score_rows)
        return row, score_rows


async def score_one(
    ds: Dataset, case: Case, text: str, judge: judges.Judge | judges.Panel | None, row: ResultRow
) -> tuple[scoring.ScoreResult, Any]:
    """Score one output with the card's scorers, the judge's first; the judge's usage goes
    on ``row``. Returns the result and the output's JSON parse (NOT_JSON when not JSON)."""
    specs, schema = ds.card.scorers, ds.card.output_schema
    parsed = scoring.parse_output(text)
    precomputed = None
    if judge is not None:
        inp = scoring.ScoreInput(text, parsed, case.expected, case, schema)
        judged = await judges.score_case(
            judge, specs, inp, input_text=judges.input_text(ds.messages(case)), case_id=case.id
        )
        precomputed = judged.scores
        usage = judged.usage
        row.judge_calls, row.judge_cached = usage.calls, usage.cached
        row.judge_tokens_in, row.judge_tokens_out = usage.tokens_in, usage.tokens_out
        row.judge_latency_ms, row.judge_cost_usd = usage.latency_ms, usage.cost_usd
    tools, _ = ds.tools(case)
    result = scoring.score_output(
        specs,
        text,
        case.expected,
        case=case,
        schema=schema,
        parsed=parsed,
        precomputed=precomputed,
        tool_calls=row.tool_calls,
        tools=tools,
    )
    return result, parsed


def _score_rows(result: scoring.ScoreResult) -> list[ScoreRow]:
    return [
        ScoreRow(label, value, result.passed_by[label], result.details.get(label, ""))
        for label, value in result.scores.items()
    ]


def _redacted(row: ResultRow, scores: list[ScoreRow]) -> tuple[ResultRow, list[ScoreRow]]:
    """A result and its scores with personal data and secrets replaced by placeholders."""
    from workbench.redact import redact, redact_json

    row.output = None if row.output is None else redact(row.output)
    row.parsed = None if row.parsed is None else redact_json(row.parsed)
    row.error = None if row.error is None else redact(row.error)
    if row.tool_calls:
        row.tool_calls = [
            {
                **call,
                "arguments": redact(call["arguments"]),
                **({"parsed": redact_json(call["parsed"])} if "parsed" in call else {}),
            }
            for call in row.tool_calls
        ]
    if row.steps:
        row.steps = [redact_json(step) for step in row.steps]
    return row, [
        ScoreRow(s.scorer, s.score, s.passed, redact(s.detail)) if s.detail else s for s in scores
    ]


def _prepare_resume(
    store: Store, run_id: str, ds: Dataset, target: str, opts: EvalOptions
) -> tuple[str, EvalOptions, Dataset]:
    run = store.get_run(run_id)
    ds = ds.with_prompt(run.get("prompt_name"))  # the run's prompt variant, whatever was asked
    if run["dataset_hash"] != ds.hash:
        raise RunError(
            f"cannot resume {run_id}: dataset {ds.name} changed since it started "
            f"(hash {run['dataset_hash']} then, {ds.hash} now); start a new run"
        )
    if run["target"] != target:
        raise RunError(f"cannot resume {run_id}: it ran {run['target']}, not {target}")
    p = run["parameters"]
    resumed = EvalOptions(
        concurrency=opts.concurrency,
        seed=p.get("seed"),
        temperature=p.get("temperature"),
        repeats=int(p.get("repeats") or 1),
        max_tokens=p.get("max_tokens"),
        structured_output=p.get("structured_output"),
        selection=Selection.from_dict(p.get("selection")) if p.get("selection") else None,
        base_url=opts.base_url,
        timeout_s=opts.timeout_s,
        stream=bool(p.get("stream", opts.stream)),
        record=p.get("record") or opts.record,
        replay=p.get("replay") or opts.replay,
        provider_options=opts.provider_options,
        redact=bool(p.get("redact", opts.redact)),
        progress_interval_s=opts.progress_interval_s,
        judge=(p.get("judge") or {}).get("target") or opts.judge,
        allow_self_judge=bool(p.get("allow_self_judge", opts.allow_self_judge)),
        prompt=run.get("prompt_name"),
        executor=opts.executor,
        scheduler=opts.scheduler,
        workers=opts.workers,
        chunk_size=opts.chunk_size,
    )
    store.reopen_run(run_id)
    return run_id, resumed, ds


def summarize(
    store: Store,
    run_id: str,
    dataset: Dataset | None = None,
    *,
    status: str | None = None,
    reason: str | None = None,
) -> RunSummary:
    """Compute a run's headline figures and budget verdicts from the store."""
    run = store.get_run(run_id)
    ds = (dataset or load_dataset(run["dataset"])).with_prompt(run.get("prompt_name"))
    rows = store.result_rows(run_id)
    repeats = int(run.get("repeats") or run["parameters"].get("repeats") or 1)
    cases = int(run.get("cases") or len(ds.cases))
    max_tokens = run["parameters"].get("max_tokens")
    n = len(rows)
    errors = sum(1 for r in rows if r["error"])
    passed = sum(1 for r in rows if r["passed"])
    ok_rows = [r for r in rows if not r["error"]]
    latencies = np.array(
        [r["latency_ms"] for r in ok_rows if r["latency_ms"] is not None], dtype=float
    )
    ttfts = np.array([r["ttft_ms"] for r in ok_rows if r["ttft_ms"] is not None], dtype=float)
    scores = [r["score"] for r in ok_rows if r["score"] is not None]
    costs = [r["cost_usd"] for r in ok_rows if r["cost_usd"] is not None]
    scorer_means: dict[str, float | None] = {}
    scorer_shares: dict[str, float | None] = {}
    for spec in ds.card.scorers:
        mean, share = store.conn.execute(
            "SELECT AVG(score), AVG(passed) FROM scores WHERE run_id = ? AND scorer = ?",
            (run_id, spec.label),
        ).fetchone()
        scorer_means[spec.label] = None if mean is None else float(mean)
        if spec.threshold is not None:
            scorer_shares[spec.label] = None if share is None else float(share)
    summary = RunSummary(
        run_id=run_id,
        status=status or run["status"],
        reason=reason if status else run.get("reason"),
        dataset=ds.name,
        dataset_hash=run["dataset_hash"],
        target=run["target"],
        cases=cases,
        repeats=repeats,
        expected_results=cases * repeats,
        results=n,
        passed=passed,
        pass_rate=passed / n if n else None,
        errors=errors,
        error_rate=errors / n if n else None,
        mean_score=float(np.mean(scores)) if scores else None,
        p50_latency_ms=percentile(latencies, 50),
        p95_latency_ms=percentile(latencies, 95),
        p95_ttft_ms=percentile(ttfts, 95),
        tokens_in=int(sum(r["tokens_in"] or 0 for r in rows)),
        tokens_out=int(sum(r["tokens_out"] or 0 for r in rows)),
        cost_usd=float(sum(costs)) if costs else None,
        scorer_means=scorer_means,
        cached_tokens=int(sum(r.get("cached_tokens") or 0 for r in rows)),
        reasoning_tokens=int(sum(r.get("reasoning_tokens") or 0 for r in rows)),
        max_tokens=max_tokens,
        length_cutoffs=sum(1 for r in ok_rows if r["finish_reason"] == "length"),
        prompt=run.get("prompt_name"),
    )
    summary.judge = _judge_totals(store, run_id, run["parameters"], rows)
    if summary.judge is not None:
        summary.judge.calibrations = _calibrations(store, ds, run["parameters"])
    summary.notes = _notes(summary, len(ok_rows), run["parameters"])
    figures = {
        "p50_latency_ms": summary.p50_latency_ms,
        "p95_latency_ms": summary.p95_latency_ms,
        "error_rate": summary.error_rate,
        "pass_rate": summary.pass_rate,
        "mean_score": summary.mean_score,
    }
    summary.budgets = budgets_mod.check(figures, ds.card.budgets, scorer_shares)
    if summary.judge is not None:
        summary.budgets += _kappa_checks(summary.judge)
    return summary


def _calibrations(
    store: Store, ds: Dataset, parameters: Mapping[str, Any]
) -> dict[str, dict[str, Any] | None]:
    """The latest calibration of each of the card's judge scorers with this run's judge."""
    config = scoring.judge_from_dict(parameters["judge"])
    floor = float(ds.card.budgets.get("judge_kappa", judges.DEFAULT_FLOOR))
    out: dict[str, dict[str, Any] | None] = {}
    for spec in judges.judge_specs(ds.card.scorers):
        found = judges.latest_calibration(store, judges.calibration_key(ds.name, spec, config))
        out[spec.label] = None
        if found is not None:
            k = found["kappa"]
            out[spec.label] = {
                "kappa": k["estimate"],
                "low": k.get("low"),
                "high": k.get("high"),
                "labels": found["labels"],
                "run_id": found["run_id"],
                "floor": floor,
            }
    return out


def _kappa_checks(totals: JudgeTotals) -> list[Check]:
    checks = []
    for label, cal in totals.calibrations.items():
        if cal is not None:
            shown = judges.kappa_text(cal["kappa"], cal.get("low"), cal.get("high"), cal["labels"])
            checks.append(judges.kappa_check(label, shown, cal["kappa"], cal["floor"]))
    return checks


def _judge_totals(
    store: Store, run_id: str, parameters: Mapping[str, Any], rows: list[dict[str, Any]]
) -> JudgeTotals | None:
    judge = parameters.get("judge")
    if not judge:
        return None
    costs = [r["judge_cost_usd"] for r in rows if r.get("judge_cost_usd") is not None]
    (errors,) = store.conn.execute(
        "SELECT COUNT(*) FROM scores WHERE run_id = ? AND passed = 0 AND "
        "(detail LIKE 'judge error:%' OR detail LIKE 'judge answer not understood%')",
        (run_id,),
    ).fetchone()
    return JudgeTotals(
        target=judge["target"],
        prompt_hash=parameters.get("judge_prompt_hash"),
        calls=int(sum(r.get("judge_calls") or 0 for r in rows)),
        cached=int(sum(r.get("judge_cached") or 0 for r in rows)),
        tokens_in=int(sum(r.get("judge_tokens_in") or 0 for r in rows)),
        tokens_out=int(sum(r.get("judge_tokens_out") or 0 for r in rows)),
        latency_ms=float(sum(r.get("judge_latency_ms") or 0.0 for r in rows)),
        cost_usd=float(sum(costs)) if costs else None,
        errors=int(errors),
    )


def _notes(summary: RunSummary, answered: int, parameters: Mapping[str, Any]) -> list[str]:
    """What a reader of the run should know beyond its figures."""
    notes = []
    if summary.length_cutoffs:
        cap = f" ({summary.max_tokens:,} tokens)" if summary.max_tokens else ""
        notes.append(
            f"{summary.length_cutoffs} of {answered} outputs were cut at max_tokens{cap}; "
            "raise --max-tokens or the card's parameters.max_tokens if they need more room"
        )
    selection = parameters.get("selection")
    if selection:
        notes.append(
            f"a subset: {selection.get('selected')} of the dataset's cases "
            f"({', '.join(f'{k} {v}' for k, v in selection.items() if k != 'selected')})"
        )
    if summary.results < summary.expected_results and summary.status == "finished":
        notes.append(f"{summary.expected_results - summary.results} results missing")
    return notes


def _executor(name: str) -> Any:
    """The module of a distributed executor (its ``drive``), or None for the local one."""
    if name not in _EXECUTORS:
        return None
    module = importlib.import_module(_EXECUTORS[name])
    module.require()  # before the run is created: a missing engine writes nothing
    return module


def _progress_bar(total: int, run_id: str) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, desc=f"eval {run_id}", unit="case", file=sys.stderr, dynamic_ncols=True
    )


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, or in a thread of its own when a loop already runs (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="workbench-run")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
