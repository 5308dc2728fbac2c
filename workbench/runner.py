"""The runner: every (case, repeat) of a golden set through a provider, scored and stored.

Work runs on one asyncio loop with a fixed pool of workers (the concurrency).
Each result is committed the moment it is known, so a crash loses nothing
finished and ``resume`` runs only the (case, repeat) pairs still missing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np

from workbench import budgets as budgets_mod
from workbench import prices, providers, scoring
from workbench.errors import CircuitOpenError, ConfigError, ProviderError, ReplayMissError, RunError
from workbench.golden import Case, Dataset, load_dataset
from workbench.store import ResultRow, ScoreRow, Store

T = TypeVar("T")


@dataclass(frozen=True)
class EvalOptions:
    """How to run an eval: sampling parameters, repeats, concurrency, snapshots."""

    concurrency: int = 8
    seed: int | None = 0
    temperature: float | None = 0.0
    repeats: int = 1
    max_tokens: int | None = None
    base_url: str | None = None
    timeout_s: float = 60.0
    stream: bool = False
    record: str | None = None
    replay: str | None = None
    provider_options: Mapping[str, Any] = field(default_factory=dict)
    redact: bool = False  # store outputs, errors, score details redacted; scored on the original

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
        }


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
    budgets: list[budgets_mod.BudgetResult] = field(default_factory=list)

    @property
    def budget_ok(self) -> bool:
        """True when every budget holds and the run finished."""
        return self.status == "finished" and all(b.ok for b in self.budgets)

    def broken(self) -> list[budgets_mod.BudgetResult]:
        """The budgets that broke."""
        return [b for b in self.budgets if not b.ok]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as printed by ``workbench eval --json``."""
        out = asdict(self)
        out["budgets"] = [b.to_dict() for b in self.budgets]
        out["budget_ok"] = self.budget_ok
        return out


def run_eval(
    dataset: Dataset | str,
    target: str,
    *,
    store: Store,
    options: EvalOptions | None = None,
    resume: str | None = None,
    progress: bool = False,
) -> RunSummary:
    """Run (or resume) an eval and return its summary; works inside Jupyter's loop too."""
    return _run_sync(
        arun_eval(dataset, target, store=store, options=options, resume=resume, progress=progress)
    )


async def arun_eval(
    dataset: Dataset | str,
    target: str,
    *,
    store: Store,
    options: EvalOptions | None = None,
    resume: str | None = None,
    progress: bool = False,
) -> RunSummary:
    """Run (or resume) an eval on the current event loop."""
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    opts = options or EvalOptions()
    if opts.repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {opts.repeats}")
    if opts.concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {opts.concurrency}")
    run_id: str | None = None
    if resume:
        run_id, opts = _prepare_resume(store, resume, ds, target, opts)
    provider_options: dict[str, Any] = dict(opts.provider_options)
    if not opts.replay:
        provider_options.setdefault("concurrency", opts.concurrency)
        if target.startswith(("openai:", "demo:")):
            provider_options.setdefault("timeout_s", opts.timeout_s)
            provider_options.setdefault("stream", opts.stream)
            if opts.base_url:
                provider_options["base_url"] = opts.base_url
    provider = providers.build(target, record=opts.record, replay=opts.replay, **provider_options)
    model = provider.model
    if run_id is None:
        run_id = store.create_run(
            dataset=ds.name,
            dataset_hash=ds.hash,
            target=target,
            model=model,
            version=model,
            parameters=opts.parameters(),
            base_url=opts.base_url,
            cases=len(ds.cases),
            repeats=opts.repeats,
        )
    done = store.done_keys(run_id)
    work = [(case, r) for r in range(opts.repeats) for case in ds.cases if (case.id, r) not in done]
    state = _RunState()
    try:
        await provider.start()
        try:
            await _drive(work, ds, provider, store, run_id, opts, state, progress)
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


async def _drive(
    work: list[tuple[Case, int]],
    ds: Dataset,
    provider: providers.Provider,
    store: Store,
    run_id: str,
    opts: EvalOptions,
    state: _RunState,
    progress: bool,
) -> None:
    queue: asyncio.Queue[tuple[Case, int]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    bar = _progress_bar(len(work), run_id) if progress else None
    specs = ds.card.scorers
    schema = ds.card.output_schema
    if work:  # load validators and embedding models now, not inside the first timed calls
        case = work[0][0]
        scoring.score_output(
            specs, json.dumps(case.expected), case.expected, case=case, schema=schema
        )
    max_tokens = (
        opts.max_tokens if opts.max_tokens is not None else ds.card.parameters.get("max_tokens")
    )

    async def one(case: Case, repeat: int) -> None:
        seed = None if opts.seed is None else opts.seed + repeat
        request = providers.Request(
            messages=ds.messages(case),
            temperature=opts.temperature,
            seed=seed,
            max_tokens=max_tokens,
            case_id=case.id,
            input=case.input,
        )
        row = ResultRow(run_id=run_id, case_id=case.id, repeat=repeat, seed=seed)
        score_rows: list[ScoreRow] = []
        try:
            response = await provider.complete(request)
        except CircuitOpenError as exc:
            state.abort_reason = state.abort_reason or str(exc)
            return
        except ReplayMissError as exc:
            state.replay_misses += 1
            row.error, row.error_kind, row.attempts = str(exc), "replay_miss", 1
        except ProviderError as exc:
            row.error, row.error_kind, row.attempts = str(exc), "provider", exc.attempts
        else:
            parsed = scoring.parse_output(response.text)
            result = scoring.score_output(
                specs, response.text, case.expected, case=case, schema=schema, parsed=parsed
            )
            row.output = response.text
            row.parsed = None if parsed is scoring.NOT_JSON else parsed
            row.passed, row.score = result.passed, result.score
            row.latency_ms, row.ttft_ms = response.latency_ms, response.ttft_ms
            row.tokens_in, row.tokens_out = response.tokens_in, response.tokens_out
            row.cost_usd = prices.cost_usd(provider.model, response.tokens_in, response.tokens_out)
            row.finish_reason, row.attempts = response.finish_reason, response.attempts
            score_rows = [
                ScoreRow(label, value, result.passed_by[label], result.details.get(label, ""))
                for label, value in result.scores.items()
            ]
        if opts.redact:
            row, score_rows = _redacted(row, score_rows)
        store.record_result(row, score_rows)
        state.completed += 1
        if bar is not None:
            bar.update(1)

    async def worker() -> None:
        while not queue.empty() and state.abort_reason is None:
            case, repeat = queue.get_nowait()
            await one(case, repeat)

    try:
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
        if bar is not None:
            bar.close()


def _redacted(row: ResultRow, scores: list[ScoreRow]) -> tuple[ResultRow, list[ScoreRow]]:
    """A result and its scores with personal data and secrets replaced by placeholders."""
    from workbench.redact import redact, redact_json

    row.output = None if row.output is None else redact(row.output)
    row.parsed = None if row.parsed is None else redact_json(row.parsed)
    row.error = None if row.error is None else redact(row.error)
    return row, [
        ScoreRow(s.scorer, s.score, s.passed, redact(s.detail)) if s.detail else s for s in scores
    ]


def _prepare_resume(
    store: Store, run_id: str, ds: Dataset, target: str, opts: EvalOptions
) -> tuple[str, EvalOptions]:
    run = store.get_run(run_id)
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
        base_url=opts.base_url,
        timeout_s=opts.timeout_s,
        stream=bool(p.get("stream", opts.stream)),
        record=p.get("record") or opts.record,
        replay=p.get("replay") or opts.replay,
        provider_options=opts.provider_options,
        redact=bool(p.get("redact", opts.redact)),
    )
    store.reopen_run(run_id)
    return run_id, resumed


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
    ds = dataset or load_dataset(run["dataset"])
    rows = store.result_rows(run_id)
    repeats = int(run.get("repeats") or run["parameters"].get("repeats") or 1)
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
        cases=len(ds.cases),
        repeats=repeats,
        expected_results=len(ds.cases) * repeats,
        results=n,
        passed=passed,
        pass_rate=passed / n if n else None,
        errors=errors,
        error_rate=errors / n if n else None,
        mean_score=float(np.mean(scores)) if scores else None,
        p50_latency_ms=_pct(latencies, 50),
        p95_latency_ms=_pct(latencies, 95),
        p95_ttft_ms=_pct(ttfts, 95),
        tokens_in=int(sum(r["tokens_in"] or 0 for r in rows)),
        tokens_out=int(sum(r["tokens_out"] or 0 for r in rows)),
        cost_usd=float(sum(costs)) if costs else None,
        scorer_means=scorer_means,
    )
    figures = {
        "p50_latency_ms": summary.p50_latency_ms,
        "p95_latency_ms": summary.p95_latency_ms,
        "error_rate": summary.error_rate,
        "pass_rate": summary.pass_rate,
        "mean_score": summary.mean_score,
    }
    summary.budgets = budgets_mod.check(figures, ds.card.budgets, scorer_shares)
    return summary


def _pct(values: np.ndarray[Any, Any], q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def _progress_bar(total: int, run_id: str) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, desc=f"eval {run_id}", unit="case", file=sys.stderr, dynamic_ncols=True
    )


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
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
