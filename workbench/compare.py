"""Model-version deltas: per-case transitions, field-level diffs, paired statistics, a gate.

Two runs on the same dataset are paired by (case, repeat). Each case gets one
transition (regression, fix, unchanged, changed output, error transitions); a
case whose verdict varies across repeats of either run is flaky and is kept out
of the regression verdict. Structured outputs are diffed field by field with
deepdiff; text fields get a word-level diff. Score, pass-rate, latency, token and
cost deltas come with paired (cluster) bootstrap intervals and an exact McNemar
test on the pass/fail flips.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from deepdiff import DeepDiff

from workbench import stats
from workbench.checks import Check, Provenance
from workbench.configfile import read_yaml
from workbench.errors import ConfigError, DatasetError, RunError
from workbench.prompts import PromptDiff, prompt_diff
from workbench.store import Store
from workbench.text import interval_text, percent, show, word_diff

if TYPE_CHECKING:
    from workbench.pairwise import Pairwise

__all__ = [
    "BLOCKING",
    "TRANSITIONS",
    "CaseDelta",
    "Comparison",
    "FieldChange",
    "compare",
    "field_changes",
    "latest_pair",
    "load_allowlist",
    "render_text",
    "word_diff",
]

TRANSITIONS = (
    "regression",
    "fix",
    "new_error",
    "error_fixed",
    "still_error",
    "changed",
    "unchanged_pass",
    "unchanged_fail",
)
BLOCKING = ("regression", "new_error")
_DIFF_CACHE_LIMIT = 50_000


@dataclass(frozen=True)
class FieldChange:
    """One changed path in a structured output: ``priority: 'p2' → 'P2'``."""

    path: str
    kind: str  # changed, type_changed, added, removed
    old: Any = None
    new: Any = None
    text_diff: str | None = None

    def describe(self) -> str:
        """A one-line human reading of the change."""
        if self.kind == "added":
            return f"{self.path}: added {show(self.new, 80)}"
        if self.kind == "removed":
            return f"{self.path}: removed (was {show(self.old, 80)})"
        if self.text_diff is not None:
            return f"{self.path}: {self.text_diff}"
        note = (
            f" ({type(self.old).__name__} → {type(self.new).__name__})"
            if self.kind == "type_changed"
            else ""
        )
        return f"{self.path}: {show(self.old, 80)} → {show(self.new, 80)}{note}"


@dataclass
class CaseDelta:
    """How one case moved from the baseline run to the candidate run."""

    case_id: str
    transition: str
    base_passed: float  # share of repeats that passed
    cand_passed: float
    base_score: float | None
    cand_score: float | None
    flaky: bool = False
    allowed: str | None = None
    base_output: str | None = None
    cand_output: str | None = None
    base_error: str | None = None
    cand_error: str | None = None
    expected: Any = None
    tags: tuple[str, ...] = ()
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """A regression that counts against the gate: not flaky, not allowed."""
        return self.transition in BLOCKING and not self.flaky and self.allowed is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        out = asdict(self)
        out["changes"] = [c.describe() for c in self.changes]
        out["blocking"] = self.blocking
        return out


@dataclass
class Comparison:
    """A baseline run against a candidate run."""

    base: dict[str, Any]
    cand: dict[str, Any]
    cases: list[CaseDelta]
    pairs: int
    shared_only: bool
    stats: dict[str, Any]
    flakiness: dict[str, Any]
    gate: list[Check]  # the gate's rules: regressions within the limit, no significant fall
    blocking: tuple[str, ...]  # regressions that count against the gate (not allowed, not flaky)
    unused_allow: list[str] = field(default_factory=list)
    base_cases: int = 0  # distinct cases each run has; more than len(cases) for a subset run
    cand_cases: int = 0
    pairwise: Pairwise | None = None  # a judge's A/B verdicts, both orders (compare --pairwise)
    prompt: PromptDiff | None = None  # how the candidate's prompt differs from the baseline's

    @property
    def coverage(self) -> str | None:
        """How many cases were compared when one run covers fewer than the other, else None."""
        n = len(self.cases)
        if n == self.base_cases == self.cand_cases:
            return None
        return (
            f"compared on the {n} cases both runs have "
            f"(base has {self.base_cases}, candidate {self.cand_cases})"
        )

    @property
    def ok(self) -> bool:
        """True when the gate passes."""
        return all(c.ok for c in self.checks())

    @property
    def reasons(self) -> list[str]:
        """Why the gate fails (empty when it passes)."""
        return [c.message for c in self.checks() if not c.ok]

    def checks(self) -> list[Check]:
        """The gate's rules: blocking regressions within the limit; no significant pass-rate
        fall; with a pairwise judge, a win rate whose interval reaches 50%."""
        return list(self.gate) + (self.pairwise.checks() if self.pairwise else [])

    def headline(self) -> dict[str, Any]:
        """Regressions, fixes, changed outputs and the pass-rate delta (and the pairwise win
        rate and position consistency when judged)."""
        counts = self.counts
        out = {
            **{k: counts[k] for k in ("regression", "fix", "changed")},
            "pass_rate_delta": self.stats["pass_rate"]["delta"]["estimate"],
        }
        if self.pairwise is not None:
            head = self.pairwise.headline()
            out["pairwise_win_rate"] = head["win_rate"]
            out["position_consistency"] = head["position_consistency"]
        return out

    def intervals(self) -> dict[str, tuple[float, float]]:
        """The 95% intervals of the headline's pass-rate delta (and pairwise win rate)."""
        delta = self.stats["pass_rate"]["delta"]
        out = {"pass_rate_delta": (delta["low"], delta["high"])}
        if self.pairwise is not None:
            out["pairwise_win_rate"] = (self.pairwise.win_rate.low, self.pairwise.win_rate.high)
        return out

    def provenance(self) -> Provenance:
        """The two runs and the dataset version of the baseline."""
        return Provenance(
            (self.base["id"], self.cand["id"]), {self.base["dataset"]: self.base["dataset_hash"]}
        )

    def render_text(self, *, limit: int = 10) -> str:
        """A terminal report: transitions, top regressions with field diffs, deltas, verdict."""
        return render_text(self, limit=limit)

    @property
    def counts(self) -> dict[str, int]:
        """Cases per transition (every transition present, zeros included)."""
        counter = Counter(c.transition for c in self.cases)
        return {t: counter.get(t, 0) for t in TRANSITIONS}

    def field_counts(self) -> list[tuple[str, int]]:
        """Which output fields changed in how many cases, most first."""
        counter: Counter[str] = Counter()
        for case in self.cases:
            counter.update({_top_path(c.path) for c in case.changes})
        return counter.most_common()

    def of(self, *transitions: str) -> list[CaseDelta]:
        """The cases with any of these transitions."""
        return [c for c in self.cases if c.transition in transitions]

    def to_dict(self, *, cases: bool = True) -> dict[str, Any]:
        """A JSON-ready form, as printed by ``workbench compare --json``."""
        out: dict[str, Any] = {
            "base": _run_brief(self.base),
            "cand": _run_brief(self.cand),
            "pairs": self.pairs,
            "compared_cases": len(self.cases),
            "base_cases": self.base_cases,
            "cand_cases": self.cand_cases,
            "coverage": self.coverage,
            "shared_only": self.shared_only,
            "counts": self.counts,
            "fields": dict(self.field_counts()),
            "stats": self.stats,
            "flakiness": self.flakiness,
            "verdict": {"ok": self.ok, "reasons": self.reasons, "blocking": list(self.blocking)},
            "checks": [c.to_dict() for c in self.checks()],
            "unused_allow": self.unused_allow,
            "pairwise": None if self.pairwise is None else self.pairwise.to_dict(),
            "prompt": None if self.prompt is None else self.prompt.to_dict(),
        }
        if cases:
            out["cases"] = [
                c.to_dict()
                for c in self.cases
                if c.transition not in ("unchanged_pass", "unchanged_fail")
            ]
        return out


def compare(
    store: Store,
    base_run: str,
    cand_run: str,
    *,
    shared_only: bool = False,
    allow: Mapping[str, str] | None = None,
    max_regressions: int = 0,
    alpha: float = 0.05,
    seed: int = 0,
    resamples: int = 2000,
    dataset: Any = None,
) -> Comparison:
    """Compare a candidate run with a baseline run, case by case."""
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")
    base, cand = store.get_run(base_run), store.get_run(cand_run)
    if _cases_of(base) != _cases_of(cand) and not shared_only:
        raise RunError(
            f"runs {base_run} and {cand_run} are over different cases "
            f"({base['dataset']} cases@{_cases_of(base)} vs {cand['dataset']} cases@{_cases_of(cand)}); "
            "pass --shared to compare on the case ids they share"
        )
    base_rows = _rows(store, base_run)
    cand_rows = _rows(store, cand_run)
    shared = sorted(set(base_rows) & set(cand_rows))
    if not shared:
        raise RunError(f"runs {base_run} and {cand_run} have no case in common")
    expected, tags = _case_info(dataset, base)
    allow = dict(allow or {})
    differ = _Differ()
    cases: list[CaseDelta] = []
    for case_id in shared:
        cases.append(
            _case_delta(
                case_id, base_rows[case_id], cand_rows[case_id], differ, allow, expected, tags
            )
        )
    pairs = _pairs(base_rows, cand_rows, shared)
    statistics = _statistics(store, base_run, cand_run, cases, pairs, shared, tags, seed, resamples)
    flakiness = _flakiness(base_rows, cand_rows, shared, cases)
    blocking = tuple(c.case_id for c in cases if c.blocking)
    unused = sorted(set(allow) - set(shared))
    return Comparison(
        base=base,
        cand=cand,
        cases=cases,
        pairs=len(pairs["case"]),
        shared_only=shared_only,
        stats=statistics,
        flakiness=flakiness,
        gate=_gate(blocking, statistics, max_regressions, alpha),
        blocking=blocking,
        unused_allow=unused,
        base_cases=len(base_rows),
        cand_cases=len(cand_rows),
        prompt=prompt_diff(base, cand),
    )


def _cases_of(run: Mapping[str, Any]) -> str | None:
    """The hash runs pair on: their cases' (their dataset's, for a run older than that)."""
    return run.get("cases_hash") or run.get("dataset_hash")


def latest_pair(store: Store, dataset: str) -> tuple[str, str]:
    """The two most recent finished runs of a dataset: (older, newer)."""
    runs = [r for r in store.runs(dataset=dataset, kind="eval") if r["status"] == "finished"]
    if len(runs) < 2:
        raise RunError(
            f"need two finished runs of {dataset!r} to compare, found {len(runs)}; "
            f"run workbench eval {dataset} --model ... first"
        )
    return runs[1]["id"], runs[0]["id"]


def load_allowlist(path: str | os.PathLike[str]) -> dict[str, str]:
    """Case ids allowed to regress, each with a reason: YAML/JSON mapping or list of {id, reason}."""
    file = Path(path)
    doc = read_yaml(file, "allowlist", empty={})
    text = file.read_text(encoding="utf-8")  # readable: read_yaml just read it
    entries: dict[str, str] = {}
    items: Iterable[tuple[Any, Any]]
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = []
        for i, item in enumerate(doc):
            if not isinstance(item, dict) or "id" not in item:
                raise ConfigError(f"{file}: entry {i + 1}: give {{id: <case id>, reason: <why>}}")
            items.append((item["id"], item.get("reason")))
    else:
        raise ConfigError(
            f"{file}: the allowlist maps case ids to reasons, e.g. 'st-0042: known label change'"
        )
    for key, reason in items:
        if not isinstance(reason, str) or not reason.strip():
            line = _line_of(text, str(key))
            raise ConfigError(f"{file}:{line}: {key}: every allowed case needs a reason")
        entries[str(key)] = reason.strip()
    return entries


# -- per case -------------------------------------------------------------------


@dataclass
class _Row:
    repeat: int
    output: str | None
    parsed: Any
    passed: bool
    score: float | None
    error: str | None
    latency_ms: float | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    calls: str | None = None  # the tool calls, as stored (JSON text)

    @property
    def said(self) -> tuple[str | None, str | None]:
        """What the model answered: its text and its tool calls."""
        return self.output, self.calls


def _rows(store: Store, run_id: str) -> dict[str, list[_Row]]:
    out: dict[str, list[_Row]] = {}
    cur = store.conn.execute(
        "SELECT case_id, repeat, output, parsed, passed, score, error, latency_ms, tokens_in, "
        "tokens_out, cost_usd, tool_calls FROM results WHERE run_id = ? ORDER BY case_id, repeat",
        (run_id,),
    )
    for case_id, repeat, output, parsed, passed, score, error, lat, tin, tout, cost, calls in cur:
        out.setdefault(case_id, []).append(
            _Row(repeat, output, parsed, bool(passed), score, error, lat, tin, tout, cost, calls)
        )
    return out


def _case_delta(
    case_id: str,
    base: list[_Row],
    cand: list[_Row],
    differ: _Differ,
    allow: Mapping[str, str],
    expected: Mapping[str, Any],
    tags: Mapping[str, tuple[str, ...]],
) -> CaseDelta:
    b_ok = [r for r in base if r.error is None]
    c_ok = [r for r in cand if r.error is None]
    b_rate = sum(r.passed for r in base) / len(base)
    c_rate = sum(r.passed for r in cand) / len(cand)
    b_pass, c_pass = b_rate >= 0.5, c_rate >= 0.5
    flaky = _is_flaky(base) or _is_flaky(cand)
    b_err, c_err = not b_ok, not c_ok  # every repeat errored
    b_first, c_first = base[0], cand[0]
    if b_err and c_err:
        transition = "still_error"
    elif c_err:
        transition = "new_error"
    elif b_err:
        transition = "error_fixed"
    elif b_pass and not c_pass:
        transition = "regression"
    elif c_pass and not b_pass:
        transition = "fix"
    elif [r.said for r in base] != [r.said for r in cand]:
        transition = "changed"
    else:
        transition = "unchanged_pass" if b_pass else "unchanged_fail"
    changes: list[FieldChange] = []
    if not b_err and not c_err and b_first.said != c_first.said:
        changes = differ.diff(b_first, c_first)
    return CaseDelta(
        case_id=case_id,
        transition=transition,
        base_passed=b_rate,
        cand_passed=c_rate,
        base_score=_mean([r.score for r in b_ok]),
        cand_score=_mean([r.score for r in c_ok]),
        flaky=flaky,
        allowed=allow.get(case_id),
        base_output=b_first.output,
        cand_output=c_first.output,
        base_error=b_first.error,
        cand_error=c_first.error,
        expected=expected.get(case_id),
        tags=tags.get(case_id, ()),
        changes=changes,
    )


def _is_flaky(rows: Sequence[_Row]) -> bool:
    verdicts = {r.passed for r in rows}
    return len(rows) > 1 and len(verdicts) > 1


class _Differ:
    """Field-level diffs with deepdiff, memoised on the pair of raw outputs."""

    def __init__(self) -> None:
        self.cache: dict[tuple[Any, Any], list[FieldChange]] = {}

    def diff(self, base: _Row, cand: _Row) -> list[FieldChange]:
        key = (base.said, cand.said)
        if key in self.cache:
            return self.cache[key]
        old = json.loads(base.parsed) if base.parsed else None
        new = json.loads(cand.parsed) if cand.parsed else None
        if base.calls or cand.calls:  # tool calls: diff the calls (and any text beside them)
            old, new = _with_calls(base, old), _with_calls(cand, new)
        if old is None or new is None:
            changes = [_text_change("output", base.output or "", cand.output or "")]
        else:
            changes = field_changes(old, new)
        if len(self.cache) < _DIFF_CACHE_LIMIT:
            self.cache[key] = changes
        return changes


def _with_calls(row: _Row, parsed: Any) -> dict[str, Any]:
    """A result as ``{tool_calls: [{name, arguments}], output?}`` for field diffs, so a changed
    argument reads ``tool_calls[0].arguments.priority``."""
    calls = json.loads(row.calls) if row.calls else []
    out: dict[str, Any] = {
        "tool_calls": [
            {"name": c.get("name"), "arguments": c.get("parsed", c.get("arguments"))} for c in calls
        ]
    }
    if row.output:
        out["output"] = parsed if parsed is not None else row.output
    return out


def field_changes(old: Any, new: Any) -> list[FieldChange]:
    """The paths that differ between two JSON values, with old and new values."""
    if old == new:
        return []
    if not isinstance(old, dict | list) or not isinstance(new, dict | list):
        if isinstance(old, str) and isinstance(new, str):
            return [_text_change("(root)", old, new)]
        kind = "type_changed" if type(old) is not type(new) else "changed"
        return [FieldChange("(root)", kind, old, new)]
    if isinstance(old, dict) and isinstance(new, dict) and _flat(old) and _flat(new):
        return _flat_changes(old, new)  # the common case, DeepDiff's answer without its cost
    tree = DeepDiff(old, new, view="tree", verbose_level=2)
    changes: list[FieldChange] = []
    kinds = {
        "values_changed": "changed",
        "type_changes": "type_changed",
        "dictionary_item_added": "added",
        "dictionary_item_removed": "removed",
        "iterable_item_added": "added",
        "iterable_item_removed": "removed",
    }
    for report, levels in tree.items():
        kind = kinds.get(report, report)
        for level in levels:
            path = _path(level.path(output_format="list"))
            old_v = None if kind == "added" else level.t1
            new_v = None if kind == "removed" else level.t2
            if kind == "changed" and isinstance(old_v, str) and isinstance(new_v, str):
                changes.append(_text_change(path, old_v, new_v))
            else:
                changes.append(FieldChange(path, kind, old_v, new_v))
    return sorted(changes, key=lambda c: c.path)


def _flat(value: dict[Any, Any]) -> bool:
    return all(
        isinstance(k, str) and not isinstance(v, dict | list | float) for k, v in value.items()
    )


def _flat_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    """Field changes of two dicts of strings, ints, bools and nulls, as DeepDiff reports them."""
    union, shared = old.keys() | new.keys(), old.keys() & new.keys()
    if len(union) > 1 and len(shared) / len(union) < 0.33:  # DeepDiff's threshold_to_diff_deeper
        return [FieldChange("(root)", "changed", old, new)]
    changes = []
    for key in union:
        path = _path([key])
        if key not in new:
            changes.append(FieldChange(path, "removed", old[key], None))
        elif key not in old:
            changes.append(FieldChange(path, "added", None, new[key]))
        elif type(old[key]) is not type(new[key]):
            changes.append(FieldChange(path, "type_changed", old[key], new[key]))
        elif old[key] != new[key]:
            a, b = old[key], new[key]
            change = (
                _text_change(path, a, b)
                if isinstance(a, str)
                else FieldChange(path, "changed", a, b)
            )
            changes.append(change)
    return sorted(changes, key=lambda c: c.path)


def _text_change(path: str, old: str, new: str) -> FieldChange:
    if " " not in old.strip() and " " not in new.strip():
        return FieldChange(path, "changed", old, new)
    return FieldChange(path, "changed", old, new, text_diff=word_diff(old, new))


def _path(parts: Sequence[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _top_path(path: str) -> str:
    return path.split("[", 1)[0].split(".", 1)[0]


# -- statistics -----------------------------------------------------------------


def _pairs(
    base: Mapping[str, list[_Row]], cand: Mapping[str, list[_Row]], shared: Sequence[str]
) -> dict[str, Any]:
    """Columns of paired (case, repeat) results, as numpy arrays."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "case",
            "b_pass",
            "c_pass",
            "b_score",
            "c_score",
            "b_lat",
            "c_lat",
            "b_tin",
            "c_tin",
            "b_tout",
            "c_tout",
            "b_cost",
            "c_cost",
        )
    }
    for case_id in shared:
        cand_by_repeat = {r.repeat: r for r in cand[case_id]}
        for b in base[case_id]:
            c = cand_by_repeat.get(b.repeat)
            if c is None:
                continue
            cols["case"].append(case_id)
            cols["b_pass"].append(b.passed)
            cols["c_pass"].append(c.passed)
            cols["b_score"].append(_nan(b.score))
            cols["c_score"].append(_nan(c.score))
            cols["b_lat"].append(_nan(b.latency_ms))
            cols["c_lat"].append(_nan(c.latency_ms))
            cols["b_tin"].append(_nan(b.tokens_in))
            cols["c_tin"].append(_nan(c.tokens_in))
            cols["b_tout"].append(_nan(b.tokens_out))
            cols["c_tout"].append(_nan(c.tokens_out))
            cols["b_cost"].append(_nan(b.cost_usd))
            cols["c_cost"].append(_nan(c.cost_usd))
    return {k: np.asarray(v) for k, v in cols.items()}


def _statistics(
    store: Store,
    base_run: str,
    cand_run: str,
    cases: Sequence[CaseDelta],
    pairs: Mapping[str, Any],
    shared: Sequence[str],
    tags: Mapping[str, tuple[str, ...]],
    seed: int,
    resamples: int,
) -> dict[str, Any]:
    clusters = pairs["case"]
    boot = {"seed": seed, "resamples": resamples, "clusters": clusters}

    def interval(b: Any, c: Any, statistic: str = "mean", **kw: Any) -> dict[str, Any]:
        return stats.paired_bootstrap(b, c, statistic=statistic, **{**boot, **kw}).to_dict()

    b_pass = pairs["b_pass"].astype(float)
    c_pass = pairs["c_pass"].astype(float)
    case_b = np.array([c.base_passed >= 0.5 for c in cases])
    case_c = np.array([c.cand_passed >= 0.5 for c in cases])
    out: dict[str, Any] = {
        "pass_rate": {
            "base": float(b_pass.mean()) if b_pass.size else None,
            "cand": float(c_pass.mean()) if c_pass.size else None,
            "delta": interval(b_pass, c_pass),
        },
        "mcnemar": stats.mcnemar_exact(case_b, case_c).to_dict(),
        "score": interval(pairs["b_score"], pairs["c_score"]),
        "latency_p50_ms": interval(pairs["b_lat"], pairs["c_lat"], "p50"),
        "latency_p95_ms": interval(pairs["b_lat"], pairs["c_lat"], "p95"),
        "tokens_in": interval(pairs["b_tin"], pairs["c_tin"]),
        "tokens_out": interval(pairs["b_tout"], pairs["c_tout"]),
        "cost_usd": interval(pairs["b_cost"], pairs["c_cost"]),
    }
    out["scorers"] = _scorer_deltas(store, base_run, cand_run, set(shared), boot)
    by_tag: dict[str, dict[str, Any]] = {}
    tag_of = (
        np.array([";".join(tags.get(c, ())) for c in clusters]) if len(clusters) else np.array([])
    )
    all_tags = sorted({t for c in shared for t in tags.get(c, ())})
    for tag in all_tags:
        mask = np.array([tag in t.split(";") for t in tag_of], dtype=bool)
        if mask.sum() < 2:
            continue
        by_tag[tag] = stats.paired_bootstrap(
            pairs["b_score"][mask],
            pairs["c_score"][mask],
            seed=seed,
            resamples=resamples,
            clusters=clusters[mask],
        ).to_dict()
    out["tags"] = by_tag
    return out


def _scorer_deltas(
    store: Store, base_run: str, cand_run: str, shared: set[str], boot: Mapping[str, Any]
) -> dict[str, Any]:
    rows = store.conn.execute(
        "SELECT b.scorer, b.case_id, b.score, c.score FROM scores b JOIN scores c "
        "ON c.case_id = b.case_id AND c.repeat = b.repeat AND c.scorer = b.scorer "
        "WHERE b.run_id = ? AND c.run_id = ? ORDER BY b.scorer, b.case_id, b.repeat",
        (base_run, cand_run),
    ).fetchall()
    grouped: dict[str, tuple[list[str], list[float], list[float]]] = {}
    for scorer, case_id, b, c in rows:
        if case_id not in shared:
            continue
        ids, bs, cs = grouped.setdefault(scorer, ([], [], []))
        ids.append(case_id)
        bs.append(b)
        cs.append(c)
    return {
        scorer: stats.paired_bootstrap(
            bs, cs, seed=boot["seed"], resamples=boot["resamples"], clusters=np.asarray(ids)
        ).to_dict()
        for scorer, (ids, bs, cs) in grouped.items()
    }


def _flakiness(
    base: Mapping[str, list[_Row]],
    cand: Mapping[str, list[_Row]],
    shared: Sequence[str],
    cases: Sequence[CaseDelta],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # per case these depend only on (n, passes, k) and the verdicts: thousands of cases share
    # a handful of values, so each is computed once
    at_k = functools.cache(stats.pass_at_k)
    hat_k = functools.cache(stats.pass_hat_k)
    agree = functools.cache(lambda verdicts: stats.consistency(list(verdicts)))
    for side, rows in (("base", base), ("cand", cand)):
        repeats = max(len(rows[c]) for c in shared)
        flaky = [c for c in shared if _is_flaky(rows[c])]
        pass_at: dict[str, float] = {}
        pass_hat: dict[str, float] = {}
        consistency = []
        for k in sorted({1, min(3, repeats), repeats}):
            values_at, values_hat = [], []
            for c in shared:
                n = len(rows[c])
                if n < k:
                    continue
                passed = sum(r.passed for r in rows[c])
                values_at.append(at_k(n, passed, k))
                values_hat.append(hat_k(n, passed, k))
            if values_at:
                pass_at[str(k)] = float(np.mean(values_at))
                pass_hat[str(k)] = float(np.mean(values_hat))
        for c in shared:
            consistency.append(agree(tuple(r.passed for r in rows[c])))
        out[side] = {
            "repeats": repeats,
            "flaky_cases": flaky,
            "flaky_share": len(flaky) / len(shared),
            "pass_at_k": pass_at,
            "pass_hat_k": pass_hat,
            "consistency": float(np.mean(consistency)),
        }
    out["excluded_from_verdict"] = sorted(
        c.case_id for c in cases if c.flaky and c.transition in BLOCKING
    )
    return out


def _gate(
    blocking: tuple[str, ...], statistics: Mapping[str, Any], max_regressions: int, alpha: float
) -> list[Check]:
    n = len(blocking)
    if n > max_regressions:
        shown = ", ".join(blocking[:10]) + (" …" if n > 10 else "")
        message = (
            f"{n} regression(s) not allowed and not flaky, "
            f"more than the {max_regressions} permitted: {shown}"
        )
    else:
        message = f"{n} blocking regression(s) (limit ≤ {max_regressions}): ok"
    regressions = Check(
        "regressions", n <= max_regressions, message, n, max_regressions, direction="max"
    )
    mc, rate = statistics["mcnemar"], statistics["pass_rate"]
    fell = mc["b"] > mc["c"] and mc["p_value"] < alpha
    if fell:
        message = (
            f"pass rate fell from {percent(rate['base'])} to {percent(rate['cand'])}: "
            f"{mc['b']} regressions vs {mc['c']} fixes, McNemar p = {mc['p_value']:.3g} < alpha {alpha}"
        )
    else:
        message = (
            f"pass rate {percent(rate['base'])} → {percent(rate['cand'])}: no significant fall "
            f"(McNemar p = {mc['p_value']:.3g}, alpha {alpha}): ok"
        )
    significance = Check("pass rate fall", not fell, message, mc["p_value"], alpha)
    return [regressions, significance]


# -- helpers ----------------------------------------------------------------------


def _case_info(
    dataset: Any, run: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """Expected outputs and tags by case id, from the dataset when it can be found."""
    from workbench.golden import load_dataset

    ds = dataset
    if ds is None:
        try:
            ds = load_dataset(run["dataset"])
        except DatasetError:
            return {}, {}
    return {c.id: c.expected for c in ds.cases}, {c.id: tuple(c.tags) for c in ds.cases}


def _run_brief(run: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "target",
        "dataset",
        "dataset_hash",
        "cases_hash",
        "prompt_hash",
        "prompt_name",
        "status",
        "started_at",
        "git_commit",
    )
    brief = {k: run.get(k) for k in keys}
    brief["parameters"] = {
        k: run.get("parameters", {}).get(k) for k in ("seed", "temperature", "repeats")
    }
    return brief


def _mean(values: Sequence[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return sum(clean) / len(clean) if clean else None


def _nan(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


def _line_of(text: str, key: str) -> int:
    for i, line in enumerate(text.splitlines(), start=1):
        if line.lstrip("- ").startswith(key):
            return i
    return 1


def render_text(cmp: Comparison, *, limit: int = 10) -> str:
    """A terminal report: transitions, top regressions with field diffs, deltas, verdict."""
    lines = [
        f"base {cmp.base['id']} ({cmp.base['target']})  →  cand {cmp.cand['id']} ({cmp.cand['target']})"
        + (f"  on {cmp.base['dataset']}" if cmp.base.get("dataset") else ""),
        f"{len(cmp.cases)} cases, {cmp.pairs} paired results"
        + (" (shared case ids only)" if cmp.shared_only else "")
        + (f"; {cmp.coverage}" if cmp.coverage else ""),
        "transitions: " + ", ".join(f"{k} {v}" for k, v in cmp.counts.items() if v),
    ]
    if cmp.prompt is not None and cmp.prompt.changed:
        lines[2:2] = [cmp.prompt.render_text()]
    for title, kinds in (("regressions", BLOCKING), ("fixes", ("fix", "error_fixed"))):
        items = cmp.of(*kinds)
        if not items:
            continue
        lines.append(f"{title} ({len(items)}):")
        for case in items[:limit]:
            marks = [
                m
                for m, on in (("flaky", case.flaky), (f"allowed: {case.allowed}", case.allowed))
                if on
            ]
            note = f"  [{'; '.join(marks)}]" if marks else ""
            lines.append(f"  {case.case_id} {case.transition}{note}")
            lines.extend(f"      {c.describe()}" for c in case.changes[:5])
            if case.cand_error:
                lines.append(f"      error: {case.cand_error[:160]}")
        if len(items) > limit:
            lines.append(f"  … {len(items) - limit} more")
    fields = cmp.field_counts()
    if fields:
        lines.append("fields changed most: " + ", ".join(f"{f} ({n})" for f, n in fields[:8]))
    s = cmp.stats
    rate, mc = s["pass_rate"], s["mcnemar"]
    lines.append(
        f"pass rate {percent(rate['base'])} → {percent(rate['cand'])}  Δ {interval_text(rate['delta'], pct=True)}"
        f"  McNemar p = {mc['p_value']:.3g} ({mc['b']} regressions, {mc['c']} fixes)"
    )
    for key, label in (
        ("score", "score"),
        ("latency_p50_ms", "p50 ms"),
        ("latency_p95_ms", "p95 ms"),
        ("tokens_out", "tokens out"),
        ("cost_usd", "cost USD"),
    ):
        lines.append(f"{label:>11} Δ {interval_text(s[key])}")
    for side in ("base", "cand"):
        f = cmp.flakiness[side]
        if f["repeats"] > 1:
            lines.append(
                f"{side}: {f['repeats']} repeats, {len(f['flaky_cases'])} flaky case(s), "
                f"consistency {f['consistency']:.3f}, pass@k {f['pass_at_k']}"
            )
    if cmp.pairwise is not None:
        lines.append(cmp.pairwise.render_text())
    if cmp.unused_allow:
        lines.append("allowlist entries not in these runs: " + ", ".join(cmp.unused_allow))
    verdict = "PASS" if cmp.ok else "FAIL"
    lines.append(f"verdict: {verdict}" + "".join(f"\n  - {r}" for r in cmp.reasons))
    return "\n".join(lines)
