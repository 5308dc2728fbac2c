"""Pairwise judging: a judge picks the better of a baseline's and a candidate's output per case.

Judges favour the answer they read first (or second); a verdict that follows the position
and not the text is noise. So every case is judged twice, the baseline shown first (as A)
and then the candidate shown first, and only a verdict that holds in both orders counts: a
case whose winner flips with the order is a *position-inconsistent* tie. The report gives
the candidate's win rate (a tie counting half) with a 95% Wilson interval, an exact sign
test of wins against losses, and the position-consistency rate.

Cases where one side has no output (an error) are won by the other with no judge call;
identical texts tie with no call. The judged text is the card's judge scorer's field (the
free text the rubric reads) under its criteria, unless the caller names another.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from workbench import agreement, judges, scoring
from workbench.checks import Check, Provenance
from workbench.errors import ConfigError, ProviderError, ReplayMissError, RunError
from workbench.golden import Dataset, load_dataset
from workbench.runner import run_sync
from workbench.stats import Interval
from workbench.store import Store
from workbench.text import clip, percent

__all__ = ["DEFAULT_CRITERIA", "Pairwise", "PairwiseCase", "pairwise"]

DEFAULT_CRITERIA: Final = (
    "Which output better does what the input asks: correct, complete and faithful to the "
    "expected answer when one is given, with nothing invented."
)
# How a judged case ends, from the candidate's side.
OUTCOME_NAMES: Final = {"B": "candidate", "A": "baseline", "tie": "tie"}


@dataclasses.dataclass(frozen=True)
class PairwiseCase:
    """One case: each order's winner (``base``/``cand``/``tie``), the outcome and why."""

    case_id: str
    outcome: str  # "B" the candidate wins, "A" the baseline wins, "tie"
    how: str  # judged | inconsistent | identical | error | judge_error
    base_first: str | None  # the winner with the baseline shown as A
    cand_first: str | None  # the winner with the candidate shown as A
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Pairwise:
    """A candidate run against a baseline run as judged pairwise, both orders per case."""

    base_run: str
    cand_run: str
    dataset: str
    dataset_hash: str
    judge: str
    field: str | None
    cases: list[PairwiseCase]
    win_rate: Interval
    sign_p: float
    usage: judges.JudgeUsage

    @property
    def counts(self) -> dict[str, int]:
        """Cases won by the candidate, the baseline, and tied."""
        c = Counter(case.outcome for case in self.cases)
        return {"cand_wins": c["B"], "base_wins": c["A"], "ties": c["tie"]}

    @property
    def position_consistency(self) -> float | None:
        """Share of cases judged in both orders whose winner did not change with the order."""
        judged = [c for c in self.cases if c.how in ("judged", "inconsistent")]
        if not judged:
            return None
        return sum(c.how == "judged" for c in judged) / len(judged)

    def checks(self) -> list[Check]:
        """The candidate is not significantly worse: the win rate's interval reaches 50%."""
        iv = self.win_rate
        ok = iv.high >= 0.5
        message = (
            f"pairwise win rate {percent(iv.estimate)} [{percent(iv.low)}, {percent(iv.high)}]"
            + (": ok" if ok else " < 50%: BROKEN (the judge prefers the baseline)")
        )
        return [Check("pairwise_win_rate", ok, message, iv.estimate, 0.5, "min")]

    def headline(self) -> dict[str, Any]:
        """Win rate and interval, wins, losses, ties, sign-test p, position consistency."""
        return {
            "win_rate": self.win_rate.estimate,
            "win_rate_low": self.win_rate.low,
            "win_rate_high": self.win_rate.high,
            **self.counts,
            "sign_p": self.sign_p,
            "position_consistency": self.position_consistency,
            "judge_calls": self.usage.calls,
            "judge_cost_usd": self.usage.cost_usd,
        }

    def provenance(self) -> Provenance:
        """The two runs and the dataset version."""
        return Provenance((self.base_run, self.cand_run), {self.dataset: self.dataset_hash})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "base_run": self.base_run,
            "cand_run": self.cand_run,
            "judge": self.judge,
            "field": self.field,
            **self.headline(),
            "win_rate_interval": self.win_rate.to_dict(),
            "usage": dataclasses.asdict(self.usage),
            "cases": [c.to_dict() for c in self.cases],
            "checks": [c.to_dict() for c in self.checks()],
        }

    def render_text(self) -> str:
        """A few lines: win rate, counts, position consistency, judge cost."""
        iv, c, u = self.win_rate, self.counts, self.usage
        consistency = self.position_consistency
        hows = Counter(case.how for case in self.cases)
        cost = "" if u.cost_usd is None else f"  cost ${u.cost_usd:,.4f}"
        on = f" on {self.field}" if self.field else ""
        lines = [
            f"pairwise ({self.judge}{on}, both orders): candidate win rate "
            f"{percent(iv.estimate)} [{percent(iv.low)}, {percent(iv.high)}] over {iv.n} cases",
            f"  candidate wins {c['cand_wins']}, baseline wins {c['base_wins']}, ties "
            f"{c['ties']}  sign test p = {self.sign_p:.3g}",
            "  position consistency "
            + ("n/a" if consistency is None else percent(consistency))
            + f" ({hows['inconsistent']} case(s) flipped with the order, counted as ties)"
            + (f"; {hows['identical']} identical" if hows["identical"] else "")
            + (f"; {hows['error']} decided by an error" if hows["error"] else "")
            + (f"; {hows['judge_error']} judge error(s)" if hows["judge_error"] else ""),
            f"  judge calls {u.calls:,} ({u.cached:,} cached)  tokens {u.tokens_in:,} in / "
            f"{u.tokens_out:,} out{cost}",
        ]
        return "\n".join(lines)


def pairwise(
    store: Store,
    base_run: str,
    cand_run: str,
    judge: str,
    *,
    dataset: Dataset | str | None = None,
    field: str | None = None,
    criteria: str | None = None,
    allow_self_judge: bool = False,
    concurrency: int = 8,
    timeout_s: float = 60.0,
    level: float = 0.95,
) -> Pairwise:
    """Judge each case's baseline and candidate outputs in both orders; the win rate."""
    base, cand = store.get_run(base_run), store.get_run(cand_run)
    for run in (base, cand):
        if run["target"] == judge and not allow_self_judge:
            raise ConfigError(
                f"the judge {judge} made run {run['id']}; a model judging its own outputs "
                "flatters them. Name another judge, or pass --allow-self-judge"
            )
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset or base["dataset"])
    spec = next(iter(judges.judge_specs(ds.card.scorers)), None)
    if field is None and spec is not None:
        field = spec.field
    if criteria is None:
        criteria = str(spec.options.get("criteria")) if spec is not None else DEFAULT_CRITERIA
    card_judge = ds.card.judge
    base_config = (
        dataclasses.asdict(card_judge) if isinstance(card_judge, scoring.JudgeConfig) else {}
    )
    config = scoring.JudgeConfig(**{**base_config, "target": judge})
    cases = {c.id: c for c in ds.cases}
    base_rows, cand_rows = _first_rows(store, base_run), _first_rows(store, cand_run)
    shared = sorted(set(base_rows) & set(cand_rows) & set(cases))
    if not shared:
        raise RunError(f"runs {base_run} and {cand_run} have no case of {ds.name} in common")
    the_judge = judges.Judge(config, store=store, concurrency=concurrency, timeout_s=timeout_s)
    options = {"criteria": criteria}

    async def one(case_id: str, gate: asyncio.Semaphore) -> PairwiseCase:
        case = cases[case_id]
        a, b = base_rows[case_id], cand_rows[case_id]
        if a is None or b is None:
            if a is None and b is None:
                return PairwiseCase(case_id, "tie", "error", None, None, "both sides errored")
            outcome = "A" if b is None else "B"
            side = "candidate" if b is None else "baseline"
            return PairwiseCase(case_id, outcome, "error", None, None, f"the {side} errored")
        ta, tb = _text(a, field), _text(b, field)
        if ta == tb:
            return PairwiseCase(case_id, "tie", "identical", "tie", "tie", "identical outputs")
        expected = None if case.expected is None else _expected(case.expected, field)
        prompt = judges.input_text(ds.messages(case))

        async def ask(first: str, second: str) -> tuple[str, str]:
            messages = judges.messages_for(
                "pairwise",
                options,
                input_text=prompt,
                expected_text=expected,
                outputs=[first, second],
            )
            async with gate:
                text, _ = await the_judge.ask("pairwise", messages, case_id=case_id)
            answer = judges.parse_answer("pairwise", text)
            return answer["winner"], answer["reason"]

        try:
            (w1, why1), (w2, why2) = await asyncio.gather(ask(ta, tb), ask(tb, ta))
        except (ProviderError, ReplayMissError, judges.JudgeAnswerError) as exc:
            return PairwiseCase(case_id, "tie", "judge_error", None, None, clip(str(exc), 200))
        first = {"A": "A", "B": "B", "tie": "tie"}[w1]  # baseline shown as A
        second = {"A": "B", "B": "A", "tie": "tie"}[w2]  # candidate shown as A: swap back
        if first == second:
            return PairwiseCase(case_id, first, "judged", first, second, clip(why1, 300))
        reason = f"order 1: {clip(why1, 140)} | order 2: {clip(why2, 140)}"
        return PairwiseCase(case_id, "tie", "inconsistent", first, second, reason)

    async def all_cases() -> list[PairwiseCase]:
        gate = asyncio.Semaphore(concurrency)
        await the_judge.start()
        try:
            return list(await asyncio.gather(*(one(c, gate) for c in shared)))
        finally:
            await the_judge.aclose()

    results = run_sync(all_cases())
    outcomes = [r.outcome for r in results]
    return Pairwise(
        base_run=base_run,
        cand_run=cand_run,
        dataset=ds.name,
        dataset_hash=ds.hash,
        judge=judge,
        field=field,
        cases=results,
        win_rate=agreement.win_rate(outcomes, level=level),
        sign_p=agreement.sign_test(outcomes.count("B"), outcomes.count("A")),
        usage=the_judge.usage,
    )


def _first_rows(store: Store, run_id: str) -> dict[str, str | None]:
    """Each case's output in its first repeat (None when it errored)."""
    out: dict[str, str | None] = {}
    cur = store.conn.execute(
        "SELECT case_id, output, error FROM results WHERE run_id = ? ORDER BY case_id, repeat",
        (run_id,),
    )
    for case_id, output, error in cur:
        if case_id not in out:
            out[case_id] = None if error or output is None else output
    return out


def _text(output: str, field: str | None) -> str:
    """The judged text: the field of a JSON output, else the whole output."""
    if field is None:
        return output
    parsed = scoring.parse_output(output)
    narrowed = scoring.narrow(scoring.ScoreInput(output, parsed, None), field)
    return output if isinstance(narrowed, str) else narrowed.output


def _expected(expected: Any, field: str | None) -> str | None:
    value = expected
    if field is not None and isinstance(expected, Mapping):
        value = scoring.get_field(expected, field)
        if value is scoring.MISSING:
            return None
    return value if isinstance(value, str) else _dumps(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
