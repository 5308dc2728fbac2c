"""Many-way comparison: a grid of targets × prompt variants, as a leaderboard against a baseline.

:func:`run_matrix` runs each (target, prompt) cell of a golden set — reusing a finished run
with the same cases, prompt, target and sampling parameters instead of running it again — and
:func:`matrix_of` builds the :class:`Matrix` of any stored runs over the same cases (what
``workbench compare BASE CAND1 CAND2 ...`` prints). Each cell is compared with the baseline cell
case by case (:func:`workbench.compare.compare`): regressions and fixes, and a paired 95%
interval for every figure; cost per passed case gets its own paired bootstrap. The Pareto
front holds the cells no other cell beats on quality, cost and latency at once.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.checks import Check, Provenance
from workbench.compare import Comparison, compare
from workbench.errors import ConfigError, RunError
from workbench.golden import Dataset, load_dataset
from workbench.prompts import PromptDiff, prompt_diff, run_prompt_label
from workbench.runner import EvalOptions, request_parameters, run_eval, run_judge, summarize
from workbench.store import Store
from workbench.text import interval_text, milliseconds, percent

__all__ = ["Cell", "Matrix", "find_run", "matrix_of", "render_text", "run_key", "run_matrix"]

_RESAMPLES = 2000
_CHUNK = 250  # bootstrap resamples drawn at once (memory: chunk x cases)


@dataclass(frozen=True)
class Cell:
    """One run of the grid: its target, prompt, run and whether an earlier run was reused."""

    label: str
    target: str
    prompt: str | None
    run_id: str
    reused: bool = False


@dataclass
class Matrix:
    """Cells over the same cases, each against the baseline cell (the first)."""

    dataset: str
    cells: list[Cell]
    runs: dict[str, dict[str, Any]]  # run id -> run row
    summaries: dict[str, dict[str, Any]]  # run id -> summary figures
    comparisons: dict[str, Comparison]  # candidate label -> comparison with the baseline
    cost_per_pass: dict[str, dict[str, Any]]  # label -> {value, delta interval}
    pareto: list[str]  # labels on the quality / cost / latency front
    scorers: list[str] = field(default_factory=list)
    source: Dataset | None = field(default=None, repr=False)  # the golden set, when known

    @property
    def baseline(self) -> Cell:
        """The cell every other is compared with."""
        return self.cells[0]

    def cell(self, label: str) -> Cell:
        """The cell with this label."""
        for cell in self.cells:
            if cell.label == label:
                return cell
        raise ConfigError(f"no cell {label!r}; cells: {', '.join(c.label for c in self.cells)}")

    # -- the Result contract -------------------------------------------------

    def checks(self) -> list[Check]:
        """Each candidate cell's gate against the baseline (blocking regressions, no
        significant pass-rate fall), named by cell."""
        out = []
        for label, cmp in self.comparisons.items():
            for check in cmp.checks():
                out.append(
                    dataclasses.replace(
                        check, name=f"{label}: {check.name}", message=f"{label}: {check.message}"
                    )
                )
        return out

    def headline(self) -> dict[str, Any]:
        """Cells, the best pass rate and its cell, the cells on the Pareto front."""
        rows = self.leaderboard()
        best = max(rows, key=lambda r: _nan_low(r["pass_rate"]))
        return {
            "cells": len(self.cells),
            "best_cell": best["cell"],
            "best_pass_rate": best["pass_rate"],
            "baseline_pass_rate": rows[0]["pass_rate"],
            "pareto_cells": len(self.pareto),
            "reused_runs": sum(c.reused for c in self.cells),
        }

    def provenance(self) -> Provenance:
        """Every cell's run and the baseline's dataset version."""
        base = self.runs[self.baseline.run_id]
        return Provenance(
            tuple(c.run_id for c in self.cells), {base["dataset"]: base["dataset_hash"]}
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as printed by ``workbench matrix --json``."""
        return {
            "dataset": self.dataset,
            "baseline": self.baseline.label,
            "cells": [dataclasses.asdict(c) for c in self.cells],
            "leaderboard": self.leaderboard(),
            "pareto": list(self.pareto),
            "prompts": {
                label: diff.to_dict() for label, diff in self.prompt_diffs().items() if diff.changed
            },
            "comparisons": {
                label: cmp.to_dict(cases=False) for label, cmp in self.comparisons.items()
            },
            "checks": [c.to_dict() for c in self.checks()],
        }

    def render_text(self) -> str:
        """The terminal leaderboard: one line per cell, deltas with intervals, the front."""
        return render_text(self)

    # -- tables ----------------------------------------------------------------

    def leaderboard(self) -> list[dict[str, Any]]:
        """One row per cell: its figures, and for candidates each figure's paired delta
        against the baseline with a 95% interval, and its regressions and fixes."""
        out = []
        for cell in self.cells:
            s = self.summaries[cell.run_id]
            passed = s.get("passed") or 0
            row: dict[str, Any] = {
                "cell": cell.label,
                "target": cell.target,
                "prompt": cell.prompt,
                "run": cell.run_id,
                "reused": cell.reused,
                "results": s.get("results"),
                "pass_rate": s.get("pass_rate"),
                "mean_score": s.get("mean_score"),
                "scorers": dict(s.get("scorer_means") or {}),
                "p50_latency_ms": s.get("p50_latency_ms"),
                "p95_latency_ms": s.get("p95_latency_ms"),
                "tokens_in": s.get("tokens_in"),
                "tokens_out": s.get("tokens_out"),
                "cost_usd": s.get("cost_usd"),
                "cost_per_pass_usd": self.cost_per_pass[cell.label]["value"],
                "errors": s.get("errors"),
                "passed": passed,
                "pareto": cell.label in self.pareto,
            }
            cmp = self.comparisons.get(cell.label)
            if cmp is not None:
                st = cmp.stats
                row["regressions"] = cmp.counts["regression"] + cmp.counts["new_error"]
                row["fixes"] = cmp.counts["fix"] + cmp.counts["error_fixed"]
                row["deltas"] = {
                    "pass_rate": st["pass_rate"]["delta"],
                    "mean_score": st["score"],
                    "p50_latency_ms": st["latency_p50_ms"],
                    "p95_latency_ms": st["latency_p95_ms"],
                    "tokens_in": st["tokens_in"],
                    "tokens_out": st["tokens_out"],
                    "cost_usd": st["cost_usd"],
                    "cost_per_pass_usd": self.cost_per_pass[cell.label]["delta"],
                    "scorers": dict(st["scorers"]),
                }
                row["mcnemar_p"] = st["mcnemar"]["p_value"]
                row["gate_ok"] = cmp.ok
            out.append(row)
        return out

    def leaderboard_frame(self) -> pd.DataFrame:
        """The leaderboard as a table in grid order (the baseline first), intervals as text."""
        rows = []
        for r in self.leaderboard():
            d = r.get("deltas") or {}
            rows.append(
                {
                    "cell": r["cell"],
                    "pass rate": r["pass_rate"],
                    "Δ pass rate": _fmt(d.get("pass_rate"), pct=True),
                    "mean score": r["mean_score"],
                    "Δ score": _fmt(d.get("mean_score")),
                    **{f"{k}": v for k, v in r["scorers"].items()},
                    "p50 ms": r["p50_latency_ms"],
                    "p95 ms": r["p95_latency_ms"],
                    "Δ p95 ms": _fmt(d.get("p95_latency_ms")),
                    "tokens in": r["tokens_in"],
                    "tokens out": r["tokens_out"],
                    "cost USD": r["cost_usd"],
                    "cost / pass USD": r["cost_per_pass_usd"],
                    "Δ cost / pass": _fmt(d.get("cost_per_pass_usd")),
                    "regressions": r.get("regressions", "baseline"),
                    "fixes": r.get("fixes", ""),
                    "Pareto": "yes" if r["pareto"] else "",
                }
            )
        frame = pd.DataFrame(rows).set_index("cell")
        return frame

    def verdict_frame(self, store: Store) -> pd.DataFrame:
        """Case × cell share of repeats passed (NaN for an errored result), hardest cases first."""
        parts = {}
        for cell in self.cells:
            rows = store.conn.execute(
                "SELECT case_id, AVG(CASE WHEN error IS NOT NULL THEN NULL ELSE passed END) "
                "FROM results WHERE run_id = ? GROUP BY case_id",
                (cell.run_id,),
            ).fetchall()
            parts[cell.label] = pd.Series({c: v for c, v in rows}, dtype=float)
        frame = pd.DataFrame(parts)
        order = frame.mean(axis=1, skipna=True).fillna(-1).sort_values(kind="stable")
        frame = frame.loc[order.index]
        frame.index.name = "case"
        return frame

    def junit_suites(self, store: Store) -> list[Any]:
        """JUnit suites: the baseline cell's cases and budgets, then each candidate cell's
        comparison with the baseline (a blocking regression fails), suites named by cell."""
        from workbench import junit

        def named(suite: Any, label: str) -> Any:
            extra = f" · {suite.name}" if suite.name in ("budgets", "gate") else ""
            return dataclasses.replace(suite, name=label + extra)

        base = self.baseline
        summary = summarize(store, base.run_id, self.source)
        suites = [
            named(s, base.label) for s in junit.eval_suites(store, base.run_id, summary=summary)
        ]
        for label, cmp in self.comparisons.items():
            suites += [named(s, f"{label} vs baseline") for s in junit.compare_suites(cmp)]
        return suites

    def prompt_diffs(self) -> dict[str, PromptDiff]:
        """Each candidate cell's prompt against the baseline's."""
        base = self.runs[self.baseline.run_id]
        return {c.label: prompt_diff(base, self.runs[c.run_id]) for c in self.cells[1:]}


# -- building ----------------------------------------------------------------------


def run_key(ds: Dataset, target: str, options: EvalOptions) -> dict[str, Any]:
    """What makes two runs interchangeable: cases, prompt, target, request, repeats, case
    selection, judge and endpoint. Concurrency, timeouts and snapshots do not count."""
    config = run_judge(ds, target, options)
    selection = options.selection.to_dict() if options.selection else {}
    return {
        "cases_hash": ds.cases_hash,
        "prompt_hash": ds.prompt_hash,
        "target": target,
        "base_url": options.base_url or None,
        "request": request_parameters(ds.card, options),
        "repeats": options.repeats,
        "selection": selection,
        "judge": None if config is None else config.to_dict(),
    }


def _recorded_key(run: Mapping[str, Any]) -> dict[str, Any]:
    p = run.get("parameters") or {}
    selection = {k: v for k, v in (p.get("selection") or {}).items() if k != "selected"}
    return {
        "cases_hash": run.get("cases_hash"),
        "prompt_hash": run.get("prompt_hash"),
        "target": run.get("target"),
        "base_url": run.get("base_url") or None,
        "request": p.get("request"),
        "repeats": int(p.get("repeats") or 1),
        "selection": selection,
        "judge": p.get("judge"),
    }


def find_run(store: Store, ds: Dataset, target: str, options: EvalOptions) -> str | None:
    """The newest finished eval run interchangeable with this one (see :func:`run_key`)."""
    key = run_key(ds, target, options)
    rows = store.conn.execute(
        "SELECT id FROM runs WHERE kind = 'eval' AND status = 'finished' AND cases_hash = ? "
        "AND prompt_hash = ? AND target = ? ORDER BY started_at DESC, id DESC",
        (ds.cases_hash, ds.prompt_hash, target),
    ).fetchall()
    for (run_id,) in rows:
        if _recorded_key(store.get_run(run_id)) == key:
            return str(run_id)
    return None


def run_matrix(
    dataset: str | Dataset,
    targets: Sequence[str],
    *,
    store: Store,
    prompts: Sequence[str | None] = (None,),
    options: EvalOptions | None = None,
    options_for: Callable[[str], EvalOptions] | None = None,
    reuse: bool = True,
    progress: bool | str = False,
    echo: Callable[[str], None] | None = None,
    seed: int = 0,
    resamples: int = _RESAMPLES,
) -> Matrix:
    """Run the grid targets × prompts (the first cell is the baseline) and build its Matrix.

    ``options_for(target)`` gives each target its options (provider options differ per
    target); else ``options`` serves all. A cell whose run already exists is reused."""
    if not targets:
        raise ConfigError("a matrix needs at least one target (--model)")
    base_ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    prompts = list(prompts) or [None]
    if len(set(targets)) != len(targets) or len(set(prompts)) != len(prompts):
        raise ConfigError("each --model and each --prompt may be given once")
    say = echo or (lambda text: print(text, file=sys.stderr))
    cells: list[Cell] = []
    total = len(targets) * len(prompts)
    for target in targets:
        for prompt in prompts:
            ds = base_ds.with_prompt(prompt)
            opts = options_for(target) if options_for else (options or EvalOptions())
            opts = dataclasses.replace(opts, prompt=ds.prompt_name)
            label = _label(target, ds.prompt_name, ds.prompt_hash)
            found = find_run(store, ds, target, opts) if reuse else None
            n = len(cells) + 1
            if found:
                say(f"cell {n}/{total} {label}: reusing run {found}")
                cells.append(Cell(label, target, ds.prompt_name, found, reused=True))
                continue
            say(f"cell {n}/{total} {label}: running")
            summary = run_eval(ds, target, store=store, options=opts, progress=progress)
            if summary.status != "finished":
                raise RunError(
                    f"cell {label}: run {summary.run_id} {summary.status}: {summary.reason}"
                )
            cells.append(Cell(label, target, ds.prompt_name, summary.run_id))
    return _build(store, cells, dataset=base_ds, seed=seed, resamples=resamples)


def matrix_of(
    store: Store,
    run_ids: Sequence[str],
    *,
    shared_only: bool = False,
    seed: int = 0,
    resamples: int = _RESAMPLES,
    dataset: Dataset | None = None,
) -> Matrix:
    """The Matrix of stored runs, the first as the baseline (``compare BASE CAND1 CAND2 ...``)."""
    if len(run_ids) < 2:
        raise ConfigError("a many-way comparison needs a baseline run and at least one more")
    if len(set(run_ids)) != len(run_ids):
        raise ConfigError("a run appears twice in the comparison")
    runs = [store.get_run(r) for r in run_ids]
    labels = [_label(r["target"], r.get("prompt_name"), r.get("prompt_hash")) for r in runs]
    cells = []
    for run, label in zip(runs, labels, strict=True):
        if labels.count(label) > 1:
            label = f"{label} ({run['id']})"
        cells.append(Cell(label, run["target"], run.get("prompt_name"), run["id"], reused=True))
    return _build(
        store, cells, dataset=dataset, shared_only=shared_only, seed=seed, resamples=resamples
    )


def _build(
    store: Store,
    cells: list[Cell],
    *,
    dataset: Dataset | None,
    shared_only: bool = False,
    seed: int,
    resamples: int,
) -> Matrix:
    runs = {c.run_id: store.get_run(c.run_id) for c in cells}
    summaries = {}
    for c in cells:
        stored = runs[c.run_id].get("summary") or {}
        summaries[c.run_id] = stored if stored else summarize(store, c.run_id, dataset).to_dict()
    base = cells[0]
    comparisons = {
        c.label: compare(
            store,
            base.run_id,
            c.run_id,
            shared_only=shared_only,
            seed=seed,
            resamples=resamples,
            dataset=dataset,
        )
        for c in cells[1:]
    }
    per_case = {c.run_id: _per_case(store, c.run_id) for c in cells}
    cost_per_pass = {
        c.label: _cost_per_pass(
            per_case[base.run_id], per_case[c.run_id], c is base, seed, resamples
        )
        for c in cells
    }
    scorers = sorted({k for s in summaries.values() for k in (s.get("scorer_means") or {})})
    pareto = _pareto(cells, summaries)
    return Matrix(
        dataset=runs[base.run_id]["dataset"],
        cells=cells,
        runs=runs,
        summaries=summaries,
        comparisons=comparisons,
        cost_per_pass=cost_per_pass,
        pareto=pareto,
        scorers=scorers,
        source=dataset,
    )


def _label(target: str, prompt: str | None, prompt_hash: str | None) -> str:
    if prompt is None and prompt_hash is None:
        return target
    return f"{target} · {run_prompt_label({'prompt_name': prompt, 'prompt_hash': prompt_hash})}"


def _per_case(store: Store, run_id: str) -> dict[str, tuple[float, float]]:
    """Per case: summed cost and passes over its repeats (errored results pass nothing)."""
    rows = store.conn.execute(
        "SELECT case_id, SUM(COALESCE(cost_usd, 0)), SUM(CASE WHEN passed <> 0 THEN 1 ELSE 0 END), "
        "COUNT(cost_usd) FROM results WHERE run_id = ? GROUP BY case_id",
        (run_id,),
    ).fetchall()
    known = sum(r[3] for r in rows)
    return {r[0]: (float(r[1]) if known else math.nan, float(r[2])) for r in rows}


def _cost_per_pass(
    base: Mapping[str, tuple[float, float]],
    cand: Mapping[str, tuple[float, float]],
    is_base: bool,
    seed: int,
    resamples: int,
) -> dict[str, Any]:
    """Total cost over passes, and its paired delta (case-resampled bootstrap, 95%)."""
    shared = sorted(set(base) & set(cand))
    value = _ratio(np.array([cand[c][0] for c in cand]), np.array([cand[c][1] for c in cand]))
    if is_base:
        return {"value": value, "delta": None}
    bc = np.array([base[c][0] for c in shared])
    bp = np.array([base[c][1] for c in shared])
    cc = np.array([cand[c][0] for c in shared])
    cp = np.array([cand[c][1] for c in shared])
    estimate = _ratio(cc, cp) - _ratio(bc, bp)
    delta: dict[str, Any] = {"estimate": estimate, "low": None, "high": None, "n": len(shared)}
    if len(shared) >= 2 and math.isfinite(estimate) and resamples > 0:
        rng = np.random.default_rng(seed)
        draws = []
        for start in range(0, resamples, _CHUNK):
            idx = rng.integers(
                0, len(shared), size=(min(_CHUNK, resamples - start), len(shared)), dtype=np.int32
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                d = cc[idx].sum(1) / cp[idx].sum(1) - bc[idx].sum(1) / bp[idx].sum(1)
            draws.append(d)
        flat = np.concatenate(draws)
        flat = flat[np.isfinite(flat)]
        if flat.size:
            delta["low"], delta["high"] = (float(v) for v in np.percentile(flat, [2.5, 97.5]))
    return {"value": value, "delta": delta}


def _ratio(cost: np.ndarray, passes: np.ndarray) -> float:
    total, n = float(np.sum(cost)), float(np.sum(passes))
    return total / n if n and math.isfinite(total) else math.nan


def _pareto(cells: Sequence[Cell], summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Cells no other cell dominates: at least the quality (pass rate, then mean score on a
    tie), at most the cost per result and the p95 latency, one strictly better. An unknown cost
    or latency counts as equal."""

    def point(c: Cell) -> tuple[tuple[float, float], float, float]:
        s = summaries[c.run_id]
        results = s.get("results") or 0
        cost = s.get("cost_usd")
        per = cost / results if cost is not None and results else math.nan
        quality = (_nan_low(s.get("pass_rate")), _nan_low(s.get("mean_score")))
        return (quality, per, _nan(s.get("p95_latency_ms")))

    points = {c.label: point(c) for c in cells}

    def le(a: float, b: float) -> bool:  # a no worse than b (lower is better)
        return math.isnan(a) or math.isnan(b) or a <= b

    def lt(a: float, b: float) -> bool:
        return not (math.isnan(a) or math.isnan(b)) and a < b

    front = []
    for label, (q, cost, lat) in points.items():
        dominated = any(
            other != label
            and oq >= q
            and le(oc, cost)
            and le(ol, lat)
            and (oq > q or lt(oc, cost) or lt(ol, lat))
            for other, (oq, oc, ol) in points.items()
        )
        if not dominated:
            front.append(label)
    return front


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _nan_low(value: Any) -> float:
    return -math.inf if value is None or value != value else float(value)


def _fmt(d: Mapping[str, Any] | None, *, pct: bool = False) -> str:
    return interval_text(d, pct=pct) if d else ""


def render_text(m: Matrix) -> str:
    """The leaderboard for a terminal: each cell's figures and its deltas with intervals."""
    rows = m.leaderboard()
    lines = [f"matrix on {m.dataset}: {len(m.cells)} cells, baseline {m.baseline.label}"]
    for r in rows:
        d = r.get("deltas")
        mark = "*" if r["pareto"] else " "
        reused = " (reused)" if r["reused"] else ""
        lines.append(f"{mark} {r['cell']}  run {r['run']}{reused}")
        cost = r["cost_usd"]
        lines.append(
            f"    pass {percent(r['pass_rate'])}  score {_num(r['mean_score'])}"
            f"  p50 {milliseconds(r['p50_latency_ms'])}  p95 {milliseconds(r['p95_latency_ms'])}"
            f"  tokens {r['tokens_in'] or 0:,}/{r['tokens_out'] or 0:,}"
            + ("" if cost is None else f"  cost ${cost:,.4f}")
            + (
                ""
                if r["cost_per_pass_usd"] is None or math.isnan(r["cost_per_pass_usd"])
                else f"  ${r['cost_per_pass_usd']:.5f}/pass"
            )
        )
        if not d:
            lines.append("    baseline")
            continue
        lines.append(
            f"    vs baseline: {r['regressions']} regressions, {r['fixes']} fixes;"
            f" pass Δ {_fmt(d['pass_rate'], pct=True)}  score Δ {_fmt(d['mean_score'])}"
        )
        lines.append(
            f"    p50 Δ {_fmt(d['p50_latency_ms'])} ms  p95 Δ {_fmt(d['p95_latency_ms'])} ms"
            f"  tokens out Δ {_fmt(d['tokens_out'])}  cost Δ {_fmt(d['cost_usd'])}"
            f"  cost/pass Δ {_fmt(d['cost_per_pass_usd'])}"
        )
        scorers = "  ".join(f"{k} Δ {_fmt(v)}" for k, v in sorted(d["scorers"].items()))
        if scorers:
            lines.append(f"    scorers: {scorers}")
    for label, diff in m.prompt_diffs().items():
        if diff.changed:
            lines.append(f"{label}: " + diff.render_text())
    lines.append("* Pareto front (pass rate vs cost and p95 latency): " + ", ".join(m.pareto))
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"
