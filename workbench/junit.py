"""JUnit XML reports (``--junit FILE``): eval runs and comparisons as the test results that
GitHub, GitLab and Jenkins show natively.

The report of an eval run has two suites: the run's cases, one ``<testcase>`` per case
(``classname`` the dataset, ``name`` the case id; a case run several times is still one
testcase, failed when any repeat failed, errored when any repeat errored), and ``budgets``,
one testcase per budget check of the run's summary. A comparison's report has one testcase
per shared case, where a blocking regression or a new error is a failure, and a ``gate``
suite with the gate's rules. A regression that does not count (flaky, or on the allowlist)
is ``<skipped>`` with the reason as its text: CI pages show it apart from the passes, and
it breaks nothing.

Every report is built from the same small objects, :class:`Suite`, :class:`TestCase` and
:class:`Outcome`, and written by :func:`to_xml`; a report over many runs builds one suite
per run with :func:`eval_suites`. Output validates against Jenkins' JUnit schema (the
``jenkins-junit.xsd`` that JUnit itself checks against) and the xUnit plugin's: one verdict
per testcase, ``<properties>`` only when there are some, ``<skipped>`` with text and no
attributes. Model outputs are untrusted: characters XML 1.0 forbids are dropped from every
text and attribute, and long texts are clipped.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.checks import Check
from workbench.compare import BLOCKING, CaseDelta, Comparison
from workbench.runner import RunSummary, summarize
from workbench.store import Store
from workbench.text import clip_counted

__all__ = [
    "BODY_CHARS",
    "MESSAGE_CHARS",
    "OUTPUT_CHARS",
    "Outcome",
    "Suite",
    "TestCase",
    "compare_junit",
    "compare_suites",
    "eval_junit",
    "eval_suites",
    "to_xml",
    "write_junit",
]

OUTPUT_CHARS = 4_000  # a model output quoted in a failure
MESSAGE_CHARS = 500  # a message attribute: one line, what a CI page lists
BODY_CHARS = 32_000  # the text of a failure, error or system-out
# XML 1.0 allows tab, newline, carriage return and these ranges, nothing else.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Outcome:
    """Why a testcase did not pass: a ``failure``, an ``error`` or a ``skipped`` note."""

    kind: Literal["failure", "error", "skipped"]
    message: str
    type: str = ""  # the failure's or error's type, e.g. "assertion", "provider"
    text: str = ""  # the details: scores, diffs, outputs


@dataclass
class TestCase:
    """One ``<testcase>``: a case, a budget or a gate rule, and its verdict (None: passed)."""

    __test__ = False  # not a pytest test class, whatever its name

    name: str
    classname: str
    time_s: float = 0.0
    outcome: Outcome | None = None
    stdout: str = ""


@dataclass
class Suite:
    """One ``<testsuite>``: its testcases and the properties that say what it ran."""

    name: str
    cases: list[TestCase] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    timestamp: str | None = None
    stdout: str = ""

    def count(self, kind: str) -> int:
        """How many of its testcases have an outcome of this kind."""
        return sum(1 for c in self.cases if c.outcome is not None and c.outcome.kind == kind)

    @property
    def time_s(self) -> float:
        """The summed time of its testcases (not the wall time of a concurrent run)."""
        return sum(c.time_s for c in self.cases)


def to_xml(suites: Iterable[Suite], *, name: str = "workbench") -> str:
    """A JUnit XML document: ``<testsuites>`` with the totals, then each suite."""
    suites = list(suites)
    root = ET.Element(
        "testsuites",
        {
            "name": _clean(name),
            "tests": str(sum(len(s.cases) for s in suites)),
            "failures": str(sum(s.count("failure") for s in suites)),
            "errors": str(sum(s.count("error") for s in suites)),
            "time": _seconds(sum(s.time_s for s in suites)),
        },
    )
    for suite in suites:
        root.append(_suite_element(suite))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | os.PathLike[str], xml: str) -> Path:
    """Write a report atomically (a temporary file, then a rename), creating its folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(xml)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# -- an eval run --------------------------------------------------------------------


def eval_junit(store: Store, run_id: str, *, summary: RunSummary | None = None) -> str:
    """The JUnit XML of an eval run: a testcase per case, then one per budget check.

    ``summary`` saves recomputing the run's summary when the caller has it (``workbench
    eval`` does); without it the run's dataset must be loadable, as for ``summarize``.
    """
    return to_xml(eval_suites(store, run_id, summary=summary), name=f"workbench eval {run_id}")


def eval_suites(store: Store, run_id: str, *, summary: RunSummary | None = None) -> list[Suite]:
    """The two suites of an eval run: its cases, named ``dataset · target``, and ``budgets``."""
    run = store.get_run(run_id)
    summary = summary or summarize(store, run_id)
    dataset = str(run.get("dataset") or "")
    thresholds = _thresholds(run)
    scores: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in store.query(
        "SELECT * FROM scores WHERE run_id = ? ORDER BY case_id, repeat, scorer", [run_id]
    ):
        scores.setdefault((row["case_id"], row["repeat"]), []).append(row)
    by_case: dict[str, list[dict[str, Any]]] = {}
    for row in store.result_rows(run_id):
        by_case.setdefault(row["case_id"], []).append(row)
    properties = {
        "run_id": run_id,
        "dataset": dataset,
        "dataset_hash": run.get("dataset_hash"),
        "target": run.get("target"),
        "model": run.get("model"),
        "prompt": run.get("prompt_name"),
        "status": run.get("status"),
        "repeats": summary.repeats,
        "git_commit": run.get("git_commit"),
    }
    cases = Suite(
        f"{dataset} · {run.get('target')}",
        [_eval_case(dataset, cid, rows, scores, thresholds) for cid, rows in by_case.items()],
        {k: str(v) for k, v in properties.items() if v is not None},
        timestamp=_timestamp(run.get("started_at")),
    )
    budgets = Suite(
        "budgets",
        [_check_case(c, "budgets", "budget") for c in summary.checks()],
        {"run_id": run_id},
    )
    return [cases, budgets]


def _eval_case(
    dataset: str,
    case_id: str,
    rows: Sequence[Mapping[str, Any]],
    scores: Mapping[tuple[str, int], list[dict[str, Any]]],
    thresholds: Mapping[str, float | None],
) -> TestCase:
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    case = TestCase(case_id, dataset, sum(latencies) / len(latencies) / 1000 if latencies else 0.0)
    errored = [r for r in rows if r["error"]]
    failed = [r for r in rows if not r["error"] and not r["passed"]]
    n = len(rows)
    failure_text = "\n\n".join(_failed_repeat(r, scores, thresholds, n) for r in failed)
    if errored:
        first = errored[0]
        lines = [f"{_repeat(r, n)}{r['error_kind'] or 'error'}: {r['error']}" for r in errored]
        text = "\n".join(lines) + (f"\n\nfailed repeats:\n{failure_text}" if failed else "")
        message = _share("errored in", len(errored), n) + str(first["error"]).strip()
        case.outcome = Outcome("error", message, first["error_kind"] or "error", text)
    elif failed:
        message = _share("failed", len(failed), n) + _reasons(failed[0], scores, thresholds)
        case.outcome = Outcome("failure", message, "assertion", failure_text)
    return case


def _failed_repeat(
    row: Mapping[str, Any],
    scores: Mapping[tuple[str, int], list[dict[str, Any]]],
    thresholds: Mapping[str, float | None],
    repeats: int,
) -> str:
    """A failed result: its score, the scores table (failing scorers marked) and the output."""
    lines = [
        f"{_repeat(row, repeats)}score {_number(row['score'])}",
        "scorer | score | threshold | passed | detail",
    ]
    for s in scores.get((row["case_id"], row["repeat"]), []):
        mark = "yes" if s["passed"] else "NO"
        threshold = _number(thresholds.get(s["scorer"]))
        lines.append(
            f"{s['scorer']} | {_number(s['score'])} | {threshold} | {mark} | {s['detail'] or ''}"
        )
    lines += ["output:", clip_counted(row["output"] or "", OUTPUT_CHARS)]
    return "\n".join(lines)


def _reasons(
    row: Mapping[str, Any],
    scores: Mapping[tuple[str, int], list[dict[str, Any]]],
    thresholds: Mapping[str, float | None],
) -> str:
    """The failing scorers of one result, one clause each: name, score, threshold, reason."""
    parts = []
    for s in scores.get((row["case_id"], row["repeat"]), []):
        if s["passed"]:
            continue
        threshold = thresholds.get(s["scorer"])
        limit = "" if threshold is None else f" < {threshold:.2f}"
        detail = f" ({s['detail']})" if s["detail"] else ""
        parts.append(f"{s['scorer']} {s['score']:.2f}{limit}{detail}")
    return "; ".join(parts) or f"score {_number(row['score'])}"


def _thresholds(run: Mapping[str, Any]) -> dict[str, float | None]:
    """Each scorer's threshold by label, as recorded with the run's prompt."""
    out: dict[str, float | None] = {}
    for spec in (run.get("prompt") or {}).get("scorers") or []:
        label = spec["name"] if spec.get("field") is None else f"{spec['name']}[{spec['field']}]"
        out[label] = spec.get("threshold")
    return out


def _share(what: str, k: int, repeats: int) -> str:
    """``failed 2 of 3 repeats: `` before a message, when a case ran more than once."""
    return f"{what} {k} of {repeats} repeats: " if repeats > 1 else ""


def _repeat(row: Mapping[str, Any], repeats: int) -> str:
    return f"repeat {row['repeat']}: " if repeats > 1 else ""


# -- a comparison -------------------------------------------------------------------


def compare_junit(cmp: Comparison) -> str:
    """The JUnit XML of a comparison: a testcase per shared case, then one per gate rule.

    Blocking regressions and new errors fail; flaky or allowed ones are skipped with the
    reason. A comparison keeps no per-case latency, so testcase times are 0.
    """
    base, cand = cmp.base["id"], cmp.cand["id"]
    return to_xml(compare_suites(cmp), name=f"workbench compare {base} {cand}")


def compare_suites(cmp: Comparison) -> list[Suite]:
    """The two suites of a comparison: its cases, named ``dataset: base → cand``, and ``gate``."""
    base, cand = cmp.base, cmp.cand
    dataset = str(base.get("dataset") or "")
    properties = {
        "base_run": base["id"],
        "cand_run": cand["id"],
        "dataset": dataset,
        "base_target": base.get("target"),
        "cand_target": cand.get("target"),
        "base_prompt": base.get("prompt_name"),
        "cand_prompt": cand.get("prompt_name"),
    }
    notes = [cmp.coverage] if cmp.coverage else []
    if cmp.unused_allow:
        notes.append("allowlist entries for cases not compared: " + ", ".join(cmp.unused_allow))
    cases = Suite(
        f"{dataset}: {base.get('target')} → {cand.get('target')}",
        [_compare_case(dataset, c) for c in cmp.cases],
        {k: str(v) for k, v in properties.items() if v is not None},
        timestamp=_timestamp(cand.get("started_at")),
        stdout="\n".join(notes),
    )
    gate = Suite(
        "gate",
        [_check_case(c, "gate", "gate") for c in cmp.checks()],
        {"base_run": base["id"], "cand_run": cand["id"]},
    )
    return [cases, gate]


def _compare_case(dataset: str, delta: CaseDelta) -> TestCase:
    case = TestCase(delta.case_id, dataset)
    if delta.transition in ("unchanged_pass", "unchanged_fail"):
        return case
    body = _delta_text(delta)
    if delta.blocking:
        case.outcome = Outcome("failure", _delta_message(delta), delta.transition, body)
    elif delta.transition in BLOCKING:
        why = (
            f"allowed: {delta.allowed}"
            if delta.allowed is not None
            else "flaky: its verdict varies across repeats"
        )
        note = f"{delta.transition} not counted ({why})"
        case.outcome = Outcome("skipped", note, text=f"{note}\n\n{body}")
    else:
        case.stdout = body
    return case


def _delta_message(delta: CaseDelta) -> str:
    if delta.transition == "new_error":
        return f"new_error: {delta.cand_error}"
    scores = f"score {_number(delta.base_score)} → {_number(delta.cand_score)}"
    first = f"; {delta.changes[0].describe()}" if delta.changes else ""
    return f"{delta.transition}: passed → failed ({scores}){first}"


def _delta_text(delta: CaseDelta) -> str:
    lines = [
        f"transition: {delta.transition}",
        f"passed: {delta.base_passed:.0%} → {delta.cand_passed:.0%} of repeats"
        f"; score {_number(delta.base_score)} → {_number(delta.cand_score)}",
    ]
    if delta.changes:
        lines += ["changes:", *(f"  {c.describe()}" for c in delta.changes)]
    for side, output, error in (
        ("base", delta.base_output, delta.base_error),
        ("candidate", delta.cand_output, delta.cand_error),
    ):
        if error:
            lines.append(f"{side} error: {error}")
        lines += [f"{side} output:", clip_counted(output or "", OUTPUT_CHARS)]
    return "\n".join(lines)


# -- shared -------------------------------------------------------------------------


def _check_case(check: Check, classname: str, kind: str) -> TestCase:
    """A budget or gate rule as a testcase: failed when broken, its message either way."""
    if check.ok:
        return TestCase(check.name, classname, stdout=check.message)
    details = "\n".join(f"{k}: {v}" for k, v in check.to_dict().items() if v is not None)
    return TestCase(check.name, classname, outcome=Outcome("failure", check.message, kind, details))


def _suite_element(suite: Suite) -> ET.Element:
    attrs = {
        "name": _clean(suite.name),
        "tests": str(len(suite.cases)),
        "failures": str(suite.count("failure")),
        "errors": str(suite.count("error")),
        "skipped": str(suite.count("skipped")),
        "time": _seconds(suite.time_s),
    }
    if suite.timestamp:
        attrs["timestamp"] = _clean(suite.timestamp)
    element = ET.Element("testsuite", attrs)
    if suite.properties:  # Jenkins' schema wants at least one property in <properties>
        props = ET.SubElement(element, "properties")
        for key, value in suite.properties.items():
            ET.SubElement(props, "property", {"name": _clean(key), "value": _clean(value)})
    for case in suite.cases:
        element.append(_case_element(case))
    if suite.stdout:
        ET.SubElement(element, "system-out").text = _clean(suite.stdout, BODY_CHARS)
    return element


def _case_element(case: TestCase) -> ET.Element:
    element = ET.Element(
        "testcase",
        {
            "name": _clean(case.name),
            "classname": _clean(case.classname),
            "time": _seconds(case.time_s),
        },
    )
    out = case.outcome
    if out is not None and out.kind == "skipped":
        # Jenkins' schema types <skipped> as text, with no attributes: the note is its text
        ET.SubElement(element, "skipped").text = _clean(out.text or out.message, BODY_CHARS)
    elif out is not None:
        attrs = {
            "message": _clean(out.message, MESSAGE_CHARS, one_line=True),
            "type": _clean(out.type),
        }
        ET.SubElement(element, out.kind, attrs).text = _clean(out.text, BODY_CHARS)
    if case.stdout:
        ET.SubElement(element, "system-out").text = _clean(case.stdout, BODY_CHARS)
    return element


def _clean(text: str, limit: int = MESSAGE_CHARS, *, one_line: bool = False) -> str:
    """Text XML 1.0 can hold: forbidden characters dropped, clipped to ``limit``."""
    text = _NOT_XML.sub("", str(text))
    if one_line:
        text = " ".join(text.split())
    return clip_counted(text, limit)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _timestamp(value: Any) -> str | None:
    """An ISO 8601 time as JUnit writes it: to the second, no zone (the store keeps UTC)."""
    return str(value)[:19] if value else None
