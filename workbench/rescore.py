"""Re-scoring: a finished run's stored outputs scored again, with no call to the model.

A team that changes a rubric, a threshold or the judge wants the delta on the *same*
outputs: :func:`rescore` reads a run's results, scores each stored output with the (possibly
edited) card's scorers and judge, and writes a new run of kind ``rescore`` linked to the
original by ``source_run``. The model's own figures (latency, tokens, cost, errors) are
copied from the original, so a ``workbench compare`` of the two shows only what scoring
changed. Judge answers come from the store's cache when the same judgement was made before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from workbench import judges, scoring
from workbench.errors import ConfigError, DatasetError, RunError
from workbench.golden import Dataset, load_dataset, prompt_doc
from workbench.runner import RunSummary, _score_rows, run_sync, score_one, summarize
from workbench.store import ResultRow, Store

__all__ = ["rescore", "select_scorers"]

# What a rescored row keeps of the original: everything the model produced and cost.
_KEPT = (
    "seed",
    "output",
    "latency_ms",
    "ttft_ms",
    "tokens_in",
    "tokens_out",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "finish_reason",
    "error",
    "error_kind",
    "attempts",
    "tool_calls",
    "steps",
)


def select_scorers(
    specs: Sequence[scoring.ScorerSpec], names: Sequence[str] | None, *, dataset: str
) -> list[scoring.ScorerSpec]:
    """The card's scorers named by ``names`` (a name such as ``judge`` or a label such as
    ``judge[summary]``); all of them when ``names`` is empty."""
    if not names:
        return list(specs)
    known = {s.label for s in specs} | {s.name for s in specs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"{dataset}: no scorer {unknown[0]!r} in the card; its scorers are "
            + ", ".join(s.label for s in specs)
        )
    return [s for s in specs if s.name in names or s.label in names]


def rescore(
    run_id: str,
    *,
    store: Store,
    card: str | None = None,
    scorers: Sequence[str] | None = None,
    judge: str | None = None,
    allow_self_judge: bool = False,
    concurrency: int = 8,
    timeout_s: float = 60.0,
) -> RunSummary:
    """Score run ``run_id``'s stored outputs again into a new ``rescore`` run; its summary.

    ``card`` is a dataset folder or card to score with (default: the run's dataset as it is
    now), ``scorers`` limits scoring to some of its scorers, ``judge`` overrides its judge.
    """
    source = store.get_run(run_id)
    if source.get("kind", "eval") not in ("eval", "rescore"):
        raise RunError(f"run {run_id} is a {source['kind']} run; only eval runs can be rescored")
    if source["status"] == "running":
        raise RunError(f"run {run_id} is still running; rescore it once it has finished")
    if source["parameters"].get("redact"):
        raise RunError(
            f"run {run_id} stored redacted outputs; scoring them again would judge placeholders"
        )
    ds = load_dataset(card or source["dataset"])
    with contextlib.suppress(DatasetError):  # the outputs' prompt variant, if the card has it
        ds = ds.with_prompt(source.get("prompt_name"))
    specs = select_scorers(ds.card.scorers, scorers, dataset=ds.name)
    ds = dataclasses.replace(ds, card=dataclasses.replace(ds.card, scorers=tuple(specs)))
    rows = store.result_rows(run_id)
    if not rows:
        raise RunError(f"run {run_id} has no results to rescore")
    cases = {c.id: c for c in ds.cases}
    missing = sorted({r["case_id"] for r in rows} - set(cases))
    if missing:
        raise DatasetError(
            f"{ds.name}: run {run_id} has results for case(s) the dataset no longer has: "
            f"{', '.join(missing[:5])}; rescore with --card pointing at the set it ran on"
        )
    config = judges.judge_config(
        ds.card.judge,
        judge,
        dataset=ds.name,
        target=source["target"],
        specs=specs,
        allow_self_judge=allow_self_judge,
    )
    options = _Options(concurrency=concurrency, timeout_s=timeout_s)
    the_judge = judges.build_judge(config, store, options)
    parameters: dict[str, Any] = {
        "rescore_of": run_id,
        "scorers": [s.label for s in specs],
        "repeats": source["parameters"].get("repeats", 1),
        "max_tokens": source["parameters"].get("max_tokens"),
        **({"allow_self_judge": True} if allow_self_judge else {}),
        **(judges.run_parameters(config) if config else {}),
    }
    new_id = store.create_run(
        dataset=ds.name,
        dataset_hash=ds.hash,
        target=source["target"],
        model=source.get("model"),
        version=source.get("version"),
        parameters=parameters,
        base_url=source.get("base_url"),
        cases=source.get("cases"),
        repeats=source.get("repeats"),
        kind="rescore",
        source_run=run_id,
        cases_hash=ds.cases_hash,
        prompt_hash=ds.prompt_hash,
        prompt=prompt_doc(ds.card),
    )
    try:
        run_sync(_score_all(ds, rows, the_judge, store, new_id, concurrency))
    except BaseException as exc:
        store.finish_run(new_id, "failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    summary = summarize(store, new_id, ds, status="finished")
    store.finish_run(new_id, "finished", summary=summary.to_dict())
    return summary


@dataclasses.dataclass(frozen=True)
class _Options:
    concurrency: int
    timeout_s: float
    record: str | None = None
    replay: str | None = None


async def _score_all(
    ds: Dataset,
    rows: list[dict[str, Any]],
    judge: judges.Judge | judges.Panel | None,
    store: Store,
    run_id: str,
    concurrency: int,
) -> None:
    cases = {c.id: c for c in ds.cases}
    gate = asyncio.Semaphore(concurrency)

    async def one(source: dict[str, Any]) -> None:
        row = ResultRow(run_id=run_id, case_id=source["case_id"], repeat=source["repeat"])
        for name in _KEPT:
            value = source.get(name)
            if name in ("tool_calls", "steps") and isinstance(value, str):
                value = json.loads(value)  # stored as JSON text
            setattr(row, name, value)
        score_rows = []
        if not source.get("error") and source.get("output") is not None:
            async with gate:
                result, parsed = await score_one(
                    ds, cases[row.case_id], source["output"], judge, row
                )
            row.parsed = None if parsed is scoring.NOT_JSON else parsed
            row.passed, row.score = result.passed, result.score
            score_rows = _score_rows(result)
        store.record_result(row, score_rows)

    if judge is not None:
        await judge.start()
    try:
        await asyncio.gather(*(one(r) for r in rows))
    finally:
        if judge is not None:
            await judge.aclose()
