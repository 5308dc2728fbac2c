"""Judge calibration: how far a judge agrees with people, measured on labels they wrote.

``workbench judge calibrate DATASET --labels LABELS.jsonl`` has the card's judge scorer grade
each labelled output, then compares the two: agreement, Cohen's kappa (weighted kappa when
the labels are scores on an ordinal scale) with a bootstrap 95% interval, precision and
recall of the judge's *fail* verdicts, a confusion table, agreement per tag, and, with
``--repeats``, the share of outputs whose verdict changes from one asking to the next.

A labels file holds one JSON object per line::

    {"case": "st-0001", "output": "<what the model returned>", "score": 4, "labeller": "ana"}

``output`` is the model's whole output (text, or the JSON object itself), narrowed to the
scorer's field as in an eval; ``score`` is on the rubric's scale (1-5 unless the card says
otherwise) or, in place of a score, ``verdict`` is ``pass`` or ``fail`` (for
``judge_reference``, a score in [0, 1] or one of equal, superset, subset, contradicts,
unrelated). ``note`` and ``tags`` are optional. Each calibration is stored as a run of kind
``calibration`` under a key of judge, prompts and rubric, so every later score by the same
judge and rubric is shown with its kappa, and one below the floor fails the gate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from workbench import agreement, judges, scoring
from workbench.agreement import FailPrecisionRecall
from workbench.checks import Check, Provenance
from workbench.errors import ConfigError, DatasetError
from workbench.golden import Dataset, load_dataset
from workbench.judges import (
    DEFAULT_FLOOR,
    calibration_key,
    kappa_check,
    kappa_text,
    latest_calibration,
)
from workbench.runner import run_sync
from workbench.stats import Interval
from workbench.store import Store
from workbench.text import clip

__all__ = [
    "DEFAULT_FLOOR",
    "Calibration",
    "Label",
    "calibrate",
    "calibration_key",
    "kappa_check",
    "kappa_text",
    "labels_path",
    "latest_calibration",
    "pick_scorer",
    "read_labels",
]

WEIGHTS: Final = "quadratic"  # for ordinal scales: a 1 against a 5 costs more than a 4 against a 5
LABELS_FILE: Final = "judge-labels.jsonl"
_KEYS: Final = ("case", "output", "score", "verdict", "labeller", "note", "tags")
_VERDICTS: Final = ("pass", "fail")


@dataclasses.dataclass(frozen=True)
class Label:
    """One person's grade of one output: a score on the scorer's scale or a verdict."""

    case: str
    output: str
    labeller: str
    line: int
    score: float | None = None
    verdict: str | None = None  # pass / fail, or a reference verdict
    note: str = ""


def read_labels(path: str | Path, ds: Dataset, spec: scoring.ScorerSpec) -> list[Label]:
    """The labels of ``path`` for scorer ``spec`` on ``ds``; DatasetError naming the line,
    the field and the fix for each problem (all of them, not only the first)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such labels file; write one label per line as JSON")
    kind = judges.spec_kind(spec)
    low, high = _scale(spec)
    known = {c.id for c in ds.cases}
    problems: list[str] = []
    labels: list[Label] = []
    seen: dict[tuple[str, str, str], int] = {}
    text = path.read_text(encoding="utf-8")
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg}); write one JSON object per line")
            continue
        if not isinstance(doc, dict):
            problems.append(f"{where}: a label is a JSON object, got {type(doc).__name__}")
            continue
        unknown = sorted(k for k in doc if k not in _KEYS)
        if unknown:
            problems.append(f"{where}: {unknown[0]}: unknown field; known: {', '.join(_KEYS)}")
            continue
        case = doc.get("case")
        if not isinstance(case, str) or not case:
            problems.append(f"{where}: case: missing; name the golden case id, e.g. st-0001")
            continue
        if case not in known:
            problems.append(f"{where}: case: {case!r} is not a case of {ds.name}")
            continue
        output = doc.get("output")
        if isinstance(output, dict | list):
            output = json.dumps(output, ensure_ascii=False)
        if not isinstance(output, str):
            problems.append(f"{where}: output: missing; copy the model's output being graded")
            continue
        labeller = doc.get("labeller")
        if not isinstance(labeller, str) or not labeller.strip():
            problems.append(f"{where}: labeller: missing; name who wrote the label")
            continue
        score, verdict = doc.get("score"), doc.get("verdict")
        if (score is None) == (verdict is None):
            problems.append(f"{where}: give exactly one of score ({low}-{high}) and verdict")
            continue
        if score is not None:
            ok_range = (0, 1) if kind == "reference" else (low, high)
            if (
                not isinstance(score, int | float)
                or isinstance(score, bool)
                or not ok_range[0] <= score <= ok_range[1]
            ):
                problems.append(
                    f"{where}: score: {score!r} is not a number in {ok_range[0]}-{ok_range[1]}"
                )
                continue
            if kind == "rubric" and score != int(score):
                problems.append(f"{where}: score: {score!r}; the rubric scale has whole points")
                continue
        if verdict is not None:
            allowed = _VERDICTS + (scoring.REFERENCE_VERDICTS if kind == "reference" else ())
            if verdict not in allowed:
                problems.append(f"{where}: verdict: {verdict!r}; use one of {', '.join(allowed)}")
                continue
        note = doc.get("note") or ""
        key = (case, output, labeller)
        if key in seen:
            problems.append(
                f"{where}: {labeller} already labelled this output of {case} on line "
                f"{seen[key]}; keep one"
            )
            continue
        seen[key] = lineno
        labels.append(
            Label(
                case=case,
                output=output,
                labeller=labeller.strip(),
                line=lineno,
                score=None if score is None else float(score),
                verdict=verdict,
                note=str(note),
            )
        )
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DatasetError(f"{path}: {len(problems)} bad label(s):\n  {shown}{more}")
    if not labels:
        raise DatasetError(f"{path}: no labels; write one JSON object per line")
    return labels


def labels_path(dataset: Dataset | str) -> Path:
    """A dataset's own labels file: ``judge-labels.jsonl`` beside its cases."""
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    return ds.path / LABELS_FILE


@dataclasses.dataclass
class Calibration:
    """A judge against people's labels: kappa with its interval and what lies behind it."""

    run_id: str | None
    dataset: str
    dataset_hash: str
    judge: str
    scorer: str
    key: str
    labels_file: str
    labels_sha: str
    scale: tuple[int, int] | None  # the rubric scale when labels are scores on it
    threshold: float
    repeats: int
    floor: float
    n_labels: int
    labellers: list[str]
    kappa: Interval  # the headline: weighted on the scale when scored, else on pass/fail
    kappa_kind: str
    verdict_kappa: Interval  # Cohen's on pass/fail
    agreement: float  # share of labels where judge and person give the same pass/fail
    fail: FailPrecisionRecall
    confusion: pd.DataFrame
    score_confusion: pd.DataFrame | None
    by_tag: pd.DataFrame
    flip_share: float | None
    items: pd.DataFrame
    judge_errors: int
    usage: judges.JudgeUsage
    labeller_kappa: float | None = None  # people among themselves, on outputs two labelled
    # a panel's judges: each one's pass/fail kappa against people, each pair's among
    # themselves ("a | b"), and Fleiss' kappa of all of them, on the labels all judged
    member_kappas: dict[str, float] = dataclasses.field(default_factory=dict)
    member_agreement: dict[str, float] = dataclasses.field(default_factory=dict)
    fleiss: float | None = None

    @property
    def disagreements(self) -> pd.DataFrame:
        """The labelled outputs where the judge's pass/fail is not the person's."""
        items = self.items
        return items[items["judged"] & (items["human_pass"] != items["judge_pass"])]

    def checks(self) -> list[Check]:
        """The kappa floor: a judge that agrees with people less than this is not trusted."""
        return [kappa_check(self.scorer, self.summary_line(), self.kappa.estimate, self.floor)]

    def headline(self) -> dict[str, Any]:
        """Kappa and its interval, labels, agreement, fail precision/recall, flips, cost."""
        return {
            "kappa": self.kappa.estimate,
            "kappa_low": self.kappa.low,
            "kappa_high": self.kappa.high,
            "labels": self.n_labels,
            "agreement": self.agreement,
            "fail_precision": self.fail.precision,
            "fail_recall": self.fail.recall,
            "flip_share": self.flip_share,
            "judge_errors": self.judge_errors,
            "judge_calls": self.usage.calls,
            "judge_cost_usd": self.usage.cost_usd,
        }

    def provenance(self) -> Provenance:
        """The calibration run, the dataset version and the labels file (by hash)."""
        return Provenance(
            (self.run_id,) if self.run_id else (),
            {self.dataset: self.dataset_hash},
            {self.labels_file: self.labels_sha},
        )

    def summary_line(self) -> str:
        """``judge κ = 0.71 [0.58, 0.82] on 60 labels`` as shown beside the judge's scores."""
        return kappa_text(self.kappa.estimate, self.kappa.low, self.kappa.high, self.n_labels)

    def brief(self) -> str:
        """One line: kappa, agreement, fail precision and recall."""
        return (
            f"{self.summary_line()} | agreement {self.agreement:.0%} | fail precision "
            f"{_pct(self.fail.precision)} recall {_pct(self.fail.recall)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as printed by ``--json`` and stored on the calibration run."""
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "dataset_hash": self.dataset_hash,
            "judge": self.judge,
            "scorer": self.scorer,
            "key": self.key,
            "labels_file": self.labels_file,
            "labels_sha": self.labels_sha,
            "scale": list(self.scale) if self.scale else None,
            "threshold": self.threshold,
            "repeats": self.repeats,
            "floor": self.floor,
            "labels": self.n_labels,
            "labellers": self.labellers,
            "kappa": _interval(self.kappa),
            "kappa_kind": self.kappa_kind,
            "verdict_kappa": _interval(self.verdict_kappa),
            "agreement": self.agreement,
            "fail": self.fail.to_dict(),
            "confusion": _table(self.confusion),
            "score_confusion": _table(self.score_confusion),
            "by_tag": json.loads(self.by_tag.to_json(orient="records")),
            "flip_share": self.flip_share,
            "labeller_kappa": self.labeller_kappa,
            "member_kappas": self.member_kappas,
            "member_agreement": self.member_agreement,
            "fleiss": self.fleiss,
            "judge_errors": self.judge_errors,
            "usage": dataclasses.asdict(self.usage),
            "items": json.loads(self.items.to_json(orient="records", force_ascii=False)),
            "checks": [c.to_dict() for c in self.checks()],
        }

    def render_text(self) -> str:
        """The terminal report of ``workbench judge calibrate``."""
        fail = self.fail
        usage = self.usage
        cost = "" if usage.cost_usd is None else f"  cost ${usage.cost_usd:,.4f}"
        lines = [
            f"calibration {self.run_id}  {self.judge} on {self.dataset} {self.scorer}",
            f"  labels {self.n_labels} from {len(self.labellers)} labeller(s) ({self.labels_file})"
            + (f"  judge errors {self.judge_errors}" if self.judge_errors else ""),
            f"  {self.summary_line()}  ({self.kappa_kind})",
            f"  pass/fail: agreement {self.agreement:.0%}  kappa "
            f"{_fmt_interval(self.verdict_kappa)}",
            f"  judge's fail verdicts: precision {_pct(fail.precision)}  recall "
            f"{_pct(fail.recall)}  (tp {fail.tp}, fp {fail.fp}, fn {fail.fn}, tn {fail.tn})",
        ]
        judged = self.items[self.items["judged"]]
        if len(judged) > 1 and judged["judge"].nunique() == 1:
            lines.append(
                f"  the judge gave every output the same grade ({judged['judge'].iloc[0]}): "
                "it does not tell outputs apart, whatever its agreement"
            )
        if self.flip_share is not None:
            lines.append(
                f"  repeats {self.repeats}: verdict changed on {self.flip_share:.0%} of outputs"
            )
        if self.member_kappas:
            each = ", ".join(f"{t} {k:.2f}" for t, k in self.member_kappas.items())
            among = ", ".join(f"{p} {k:.2f}" for p, k in self.member_agreement.items())
            fleiss = "n/a" if self.fleiss is None else f"{self.fleiss:.2f}"
            lines.append(f"  panel: each judge against people (pass/fail kappa): {each}")
            lines.append(f"  panel: judges among themselves: {among}; Fleiss' kappa {fleiss}")
        if self.labeller_kappa is not None:
            lines.append(f"  labellers among themselves: kappa {self.labeller_kappa:.2f}")
        lines.append(
            f"  judge calls {usage.calls:,} ({usage.cached:,} cached)  tokens "
            f"{usage.tokens_in:,} in / {usage.tokens_out:,} out{cost}"
        )
        lines.append("confusion (rows: people, columns: judge):")
        lines.extend("  " + row for row in self.confusion.to_string().splitlines())
        worst = self.disagreements.head(10)
        if len(worst):
            lines.append(f"disagreements ({len(self.disagreements)}; first {len(worst)}):")
            for item in worst.itertuples():
                lines.append(
                    f"  {item.case} line {item.line}: people {item.human} / judge "
                    f"{item.judge}: {clip(str(item.judge_reason), 90)}"
                )
        lines.append("checks:")
        lines.extend(f"  {'ok ' if c.ok else 'BAD'} {c.message}" for c in self.checks())
        return "\n".join(lines)


def pick_scorer(ds: Dataset, name: str | None) -> scoring.ScorerSpec:
    """The card's judge scorer to calibrate: the one named (name or label), or the only one."""
    specs = judges.judge_specs(ds.card.scorers)
    if name:
        specs = [s for s in specs if name in (s.name, s.label)]
    if len(specs) == 1:
        return specs[0]
    labels = ", ".join(s.label for s in judges.judge_specs(ds.card.scorers)) or "none"
    if not specs:
        raise ConfigError(f"{ds.name}: no judge scorer {name or ''} in the card (its: {labels})")
    raise ConfigError(f"{ds.name}: the card has several judge scorers ({labels}); pick --scorer")


def calibrate(
    dataset: Dataset | str,
    labels_path: str | Path,
    *,
    store: Store,
    judge: str | None = None,
    scorer: str | None = None,
    repeats: int = 1,
    floor: float | None = None,
    concurrency: int = 8,
    timeout_s: float = 60.0,
    resamples: int = 2000,
) -> Calibration:
    """Grade every labelled output with the judge, compare with the labels, store the run."""
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    spec = pick_scorer(ds, scorer)
    labels = read_labels(labels_path, ds, spec)
    config = judges.judge_config(
        ds.card.judge, judge, dataset=ds.name, target="", specs=[spec], allow_self_judge=True
    )
    assert config is not None  # a judge scorer always has one, or judge_config raised
    floor = float(ds.card.budgets.get("judge_kappa", DEFAULT_FLOOR) if floor is None else floor)
    key = calibration_key(ds.name, spec, config)
    labels_sha = hashlib.sha256(Path(labels_path).read_bytes()).hexdigest()[:16]
    the_judge = judges.make_judge(config, store=store, concurrency=concurrency, timeout_s=timeout_s)
    parameters = {
        "calibration_key": key,
        "scorer": spec.label,
        "labels_file": str(labels_path),
        "labels_sha": labels_sha,
        "repeats": repeats,
        "kappa_floor": floor,
        **judges.run_parameters(config),
    }
    run_id = store.create_run(
        dataset=ds.name,
        dataset_hash=ds.hash,
        target=config.target,
        parameters=parameters,
        cases=len(labels),
        repeats=repeats,
        kind="calibration",
    )
    try:
        verdicts = run_sync(_judge_all(ds, spec, labels, the_judge, repeats, concurrency))
        result = _compare(
            ds,
            spec,
            labels,
            verdicts,
            config.target,
            key,
            str(labels_path),
            labels_sha,
            repeats,
            floor,
            the_judge.usage,
            resamples,
        )
    except BaseException as exc:
        store.finish_run(run_id, "failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    result.run_id = run_id
    store.finish_run(run_id, "finished", summary=result.to_dict())
    return result


async def _judge_all(
    ds: Dataset,
    spec: scoring.ScorerSpec,
    labels: Sequence[Label],
    judge: judges.Judge | judges.Panel,
    repeats: int,
    concurrency: int,
) -> list[list[judges.Verdict]]:
    gate = asyncio.Semaphore(concurrency)
    schema = ds.card.output_schema

    async def one(label: Label, repeat: int) -> judges.Verdict:
        case = ds.case(label.case)
        inp = scoring.ScoreInput(
            label.output, scoring.parse_output(label.output), case.expected, case, schema
        )
        async with gate:
            return await judges.judge_one(
                judge,
                spec,
                inp,
                input_text=judges.input_text(ds.messages(case)),
                case_id=case.id,
                repeat=repeat,
            )

    await judge.start()
    try:
        flat = await asyncio.gather(*(one(lb, r) for lb in labels for r in range(repeats)))
    finally:
        await judge.aclose()
    return [list(flat[i * repeats : (i + 1) * repeats]) for i in range(len(labels))]


def _compare(
    ds: Dataset,
    spec: scoring.ScorerSpec,
    labels: Sequence[Label],
    verdicts: Sequence[Sequence[judges.Verdict]],
    judge: str,
    key: str,
    labels_file: str,
    labels_sha: str,
    repeats: int,
    floor: float,
    usage: judges.JudgeUsage,
    resamples: int,
) -> Calibration:
    kind = judges.spec_kind(spec)
    low, high = _scale(spec)
    threshold = 0.5 if spec.threshold is None else float(spec.threshold)
    table = {**scoring.REFERENCE_SCORES, **spec.options.get("scores", {})}
    ordinal = all(lb.score is not None for lb in labels) and kind == "rubric"
    if kind == "reference" and all(lb.verdict in scoring.REFERENCE_VERDICTS for lb in labels):
        ordinal = True

    def human_value(lb: Label) -> float:
        if lb.score is not None:
            return lb.score if kind == "reference" else (lb.score - low) / (high - low)
        if lb.verdict in _VERDICTS:
            return 1.0 if lb.verdict == "pass" else 0.0
        return float(table[lb.verdict or "unrelated"])

    rows = []
    for lb, vs in zip(labels, verdicts, strict=True):
        first = vs[0]
        case = ds.case(lb.case)
        human_pass = human_value(lb) >= threshold - 1e-9
        judge_pass = first.value >= threshold - 1e-9
        human = lb.score if lb.score is not None else lb.verdict
        rows.append(
            {
                "case": lb.case,
                "line": lb.line,
                "labeller": lb.labeller,
                "tags": list(case.tags),
                "human": _shown(human),
                "judge": _shown(first.raw) if not first.errored else "error",
                "human_pass": human_pass,
                "judge_pass": judge_pass,
                "judged": not first.errored,
                "judge_value": first.value,
                "human_value": human_value(lb),
                "judge_reason": first.detail,
                "note": lb.note,
                "output": clip(lb.output, 300),
                "repeat_values": [v.value for v in vs if not v.errored],
                "members": {t: v.value for t, v in first.members if not v.errored},
            }
        )
    items = pd.DataFrame(rows)
    ok = items[items["judged"]]
    if ok.empty:
        raise ConfigError(
            f"{judge} gave no usable verdict on any of the {len(labels)} labels; "
            f"first error: {items['judge_reason'].iloc[0]}"
        )
    hp = ok["human_pass"].map(_pf).tolist()
    jp = ok["judge_pass"].map(_pf).tolist()
    verdict_kappa = agreement.kappa_interval(
        hp, jp, categories=list(_VERDICTS), resamples=resamples
    )
    score_confusion = None
    if ordinal:
        if kind == "rubric":
            cats: list[Any] = list(range(low, high + 1))
            a = [round(float(h)) for h in ok["human"]]
            b = [round(float(j)) for j in ok["judge"]]
        else:
            cats = list(reversed(scoring.REFERENCE_VERDICTS))
            a, b = ok["human"].tolist(), ok["judge"].tolist()
        kappa = agreement.kappa_interval(
            a, b, weighted=WEIGHTS, categories=cats, resamples=resamples
        )
        kappa_kind = f"{WEIGHTS}-weighted on the {cats[0]}-{cats[-1]} scale"
        score_confusion = agreement.confusion(a, b, labels=cats)
        by_tag = agreement.agreement_by_tag(
            a, b, ok["tags"].tolist(), weighted=WEIGHTS, categories=cats
        )
    else:
        kappa, kappa_kind = verdict_kappa, "Cohen's on pass/fail"
        by_tag = agreement.agreement_by_tag(hp, jp, ok["tags"].tolist(), categories=list(_VERDICTS))
    by_tag["agreement"] = [  # on pass/fail, as the headline agreement; kappa on the scale
        float((sub["human_pass"] == sub["judge_pass"]).mean())
        for sub in (ok[ok["tags"].map(lambda tags, t=tag: t in tags)] for tag in by_tag["tag"])
    ]
    fail = agreement.fail_precision_recall(ok["human_pass"].tolist(), ok["judge_pass"].tolist())
    flips = None
    if repeats > 1:
        flips = agreement.flip_share(
            {
                f"{r.case}:{r.line}": [v >= threshold - 1e-9 for v in r.repeat_values]
                for r in ok.itertuples()
            }
        )
    return Calibration(
        run_id=None,
        dataset=ds.name,
        dataset_hash=ds.hash,
        judge=judge,
        scorer=spec.label,
        key=key,
        labels_file=labels_file,
        labels_sha=labels_sha,
        scale=(low, high) if ordinal and kind == "rubric" else None,
        threshold=threshold,
        repeats=repeats,
        floor=floor,
        n_labels=len(ok),
        labellers=sorted({lb.labeller for lb in labels}),
        kappa=kappa,
        kappa_kind=kappa_kind,
        verdict_kappa=verdict_kappa,
        agreement=float((ok["human_pass"] == ok["judge_pass"]).mean()),
        fail=fail,
        confusion=agreement.confusion(hp, jp, labels=list(_VERDICTS)),
        score_confusion=score_confusion,
        by_tag=by_tag,
        flip_share=flips,
        items=items,
        judge_errors=int((~items["judged"]).sum()),
        usage=usage,
        labeller_kappa=_labeller_kappa(labels, human_value, threshold),
        **_panel_agreement(ok, threshold),
    )


def _panel_agreement(ok: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """A panel's judges against people and among themselves, on pass/fail."""
    targets = sorted({t for m in ok["members"] for t in m})
    if len(targets) < 2:
        return {}
    full = ok[ok["members"].map(lambda m: all(t in m for t in targets))]
    if full.empty:
        return {}
    verdicts = {t: [_pf(m[t] >= threshold - 1e-9) for m in full["members"]] for t in targets}
    people = full["human_pass"].map(_pf).tolist()
    cats = list(_VERDICTS)
    pairs = agreement.pairwise_kappas(verdicts)
    return {
        "member_kappas": {
            t: agreement.cohen_kappa(people, v, labels=cats) for t, v in verdicts.items()
        },
        "member_agreement": {f"{a} | {b}": k for (a, b), k in pairs.items()},
        "fleiss": agreement.fleiss_kappa(
            [list(row) for row in zip(*verdicts.values(), strict=True)]
        ),
    }


def _labeller_kappa(labels: Sequence[Label], value: Any, threshold: float) -> float | None:
    """Cohen's kappa on pass/fail between the first two labellers of outputs labelled twice."""
    by_item: dict[tuple[str, str], list[bool]] = {}
    for lb in labels:
        by_item.setdefault((lb.case, lb.output), []).append(value(lb) >= threshold - 1e-9)
    pairs = [v[:2] for v in by_item.values() if len(v) >= 2]
    if len(pairs) < 2:
        return None
    return agreement.cohen_kappa(
        [_pf(p[0]) for p in pairs], [_pf(p[1]) for p in pairs], labels=list(_VERDICTS)
    )


def _scale(spec: scoring.ScorerSpec) -> tuple[int, int]:
    low, high = spec.options.get("scale") or (1, 5)
    return int(low), int(high)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _pf(passed: bool) -> str:
    return "pass" if passed else "fail"


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fmt_interval(iv: Interval) -> str:
    bounds = "" if math.isnan(iv.low) else f" [{iv.low:.2f}, {iv.high:.2f}]"
    return f"{iv.estimate:.2f}{bounds}"


def _interval(iv: Interval) -> dict[str, float | int | None]:
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in iv.to_dict().items()
    }


def _table(frame: pd.DataFrame | None) -> dict[str, dict[str, int]] | None:
    if frame is None:
        return None
    return {str(r): {str(c): int(frame.loc[r, c]) for c in frame.columns} for r in frame.index}
