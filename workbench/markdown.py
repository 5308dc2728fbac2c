"""PR-comment-sized Markdown for comparisons and matrices (``--markdown FILE``).

The summary a reviewer reads in a pull request or in ``$GITHUB_STEP_SUMMARY``: the verdict,
counts per transition, the deltas with their intervals, the top regressions with field diffs,
and the prompt diff. It always fits :data:`MAX_BYTES` (GitHub refuses step summaries above
1 MiB and truncates comments at 65,536 characters): when the full text would not, fewer
regressions are listed and outputs are clipped, and the text says how many were left out.
Model outputs and case ids are untrusted text; they are shown only inside code spans and
blocks, so they cannot inject Markdown or HTML into the page.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from workbench.compare import BLOCKING, Comparison
from workbench.prompts import run_prompt_label
from workbench.text import clip_counted, percent

if TYPE_CHECKING:
    from workbench.matrix import Matrix

__all__ = ["MAX_BYTES", "comparison_markdown", "matrix_markdown", "write_markdown"]

MAX_BYTES = 64 * 1024 - 1024  # under 64 KiB with room for a caller's heading
_FIGURES = (
    ("score", "mean score", False),
    ("latency_p50_ms", "p50 latency (ms)", False),
    ("latency_p95_ms", "p95 latency (ms)", False),
    ("tokens_in", "tokens in / result", False),
    ("tokens_out", "tokens out / result", False),
    ("cost_usd", "cost / result (USD)", False),
)


def comparison_markdown(cmp: Comparison, *, limit: int = 10, max_bytes: int = MAX_BYTES) -> str:
    """The Markdown summary of a two-run comparison, at most ``max_bytes`` of UTF-8."""
    for shown, clip in _budgets(limit):
        text = _comparison(cmp, shown, clip)
        if _size(text) <= max_bytes:
            return text
    return _cut(text, max_bytes)


def matrix_markdown(m: Matrix, *, limit: int = 3, max_bytes: int = MAX_BYTES) -> str:
    """The Markdown summary of a matrix: the leaderboard, the front, each cell's regressions."""
    for shown, clip in _budgets(limit):
        text = _matrix(m, shown, clip)
        if _size(text) <= max_bytes:
            return text
    return _cut(text, max_bytes)


def write_markdown(path: str | os.PathLike[str], text: str) -> Path:
    """Write the summary to ``path``; appended when it is ``$GITHUB_STEP_SUMMARY`` (where every
    step of a job adds its part), else the file is replaced atomically."""
    target = Path(path)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary and Path(step_summary) == target:
        with target.open("a", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target


# -- the comparison ---------------------------------------------------------------


def _comparison(cmp: Comparison, shown: int, clip: int) -> str:
    base, cand = cmp.base, cmp.cand
    verdict = "✅ PASS" if cmp.ok else "❌ FAIL"
    out = [
        f"## {verdict} · {_text(base['dataset'])}: {_code(_side(cmp, base))} → {_code(_side(cmp, cand))}",
        "",
        f"Baseline run {_code(base['id'])}, candidate run {_code(cand['id'])}; "
        f"{len(cmp.cases)} cases, {cmp.pairs} paired results"
        + (f" ({_text(cmp.coverage)})" if cmp.coverage else "")
        + ".",
        "",
    ]
    out += [f"- {_text(reason)}" for reason in cmp.reasons]
    if cmp.reasons:
        out.append("")
    counts = cmp.counts
    heads = [k for k, v in counts.items() if v]
    out += [
        "| " + " | ".join(h.replace("_", " ") for h in heads) + " |",
        "|" + "---:|" * len(heads),
        "| " + " | ".join(str(counts[h]) for h in heads) + " |",
        "",
    ]
    out += _delta_table(cmp)
    out += _regressions(cmp, shown, clip, heading="###")
    if cmp.prompt is not None and cmp.prompt.changed:
        out += ["### Prompt diff", "", cmp.prompt.markdown(clip * 4), ""]
    if cmp.pairwise is not None:
        head = cmp.pairwise.headline()
        out += [
            f"Pairwise judge: candidate win rate {percent(head.get('win_rate'))}, "
            f"position consistency {percent(head.get('position_consistency'))}.",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def _side(cmp: Comparison, run: Mapping[str, Any]) -> str:
    """A run as the heading names it: its target, and its prompt when the prompts differ."""
    if cmp.prompt is not None and cmp.prompt.changed:
        return f"{run['target']} · {run_prompt_label(run)}"
    return str(run["target"])


def _delta_table(cmp: Comparison) -> list[str]:
    s = cmp.stats
    rate, mc = s["pass_rate"], s["mcnemar"]
    out = [
        "| figure | Δ (candidate − baseline) | 95% interval |",
        "|---|---:|---:|",
        f"| pass rate {percent(rate['base'])} → {percent(rate['cand'])} "
        f"| {_est(rate['delta'], pct=True)} | {_ci(rate['delta'], pct=True)} |",
    ]
    for key, label, pct in _FIGURES:
        out.append(f"| {label} | {_est(s[key], pct=pct)} | {_ci(s[key], pct=pct)} |")
    for name, d in sorted(s.get("scorers", {}).items()):
        out.append(f"| scorer {_text(name)} | {_est(d)} | {_ci(d)} |")
    out += ["", f"McNemar exact p = {mc['p_value']:.3g} ({mc['b']} → fail, {mc['c']} → pass).", ""]
    return out


def _regressions(cmp: Comparison, shown: int, clip: int, *, heading: str) -> list[str]:
    items = cmp.of(*BLOCKING)
    if not items:
        return []
    out = [f"{heading} Regressions ({len(items)})", ""]
    for case in items[:shown]:
        marks = [m for m, on in (("flaky", case.flaky), ("allowed", case.allowed)) if on]
        note = f" ({', '.join(marks)})" if marks else ""
        out.append(f"- {_code(case.case_id)} {case.transition.replace('_', ' ')}{note}")
        out += [f"  - {_code(c.describe(), clip)}" for c in case.changes[:5]]
        if case.cand_error:
            out.append(f"  - error: {_code(case.cand_error, clip)}")
        if clip >= 200 and (case.base_output or case.cand_output):
            out += [
                "  <details><summary>outputs</summary>",
                "",
                _block(f"base: {case.base_output}\ncand: {case.cand_output}", clip, indent="  "),
                "",
                "  </details>",
            ]
    if len(items) > shown:
        out.append(f"- … and {len(items) - shown} more (full list: `workbench compare --json`)")
    return [*out, ""]


# -- the matrix -------------------------------------------------------------------


def _matrix(m: Matrix, shown: int, clip: int) -> str:
    failed = [c for c in m.checks() if not c.ok]
    out = [
        f"## Matrix · {_text(m.dataset)}: {len(m.cells)} cells against {_code(m.baseline.label)}",
        "",
        "| cell | pass rate | Δ pass rate [95%] | mean score | Δ score [95%] | p95 ms "
        "| cost / pass USD | regressions | fixes | Pareto |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in m.leaderboard():
        d = r.get("deltas") or {}
        out.append(
            "| "
            + " | ".join(
                [
                    _code(r["cell"]),
                    percent(r["pass_rate"]),
                    _with_ci(d.get("pass_rate"), pct=True) if d else "baseline",
                    _num(r["mean_score"], 3),
                    _with_ci(d.get("mean_score")) if d else "",
                    _num(r["p95_latency_ms"], 0),
                    _num(r["cost_per_pass_usd"], 6),
                    str(r.get("regressions", "")),
                    str(r.get("fixes", "")),
                    "★" if r["pareto"] else "",
                ]
            )
            + " |"
        )
    out += [
        "",
        "★ on the Pareto front: no other cell has a higher pass rate at a lower cost and latency.",
        "",
    ]
    if failed:
        out += [f"- {_text(c.message)}" for c in failed] + [""]
    for label, cmp in m.comparisons.items():
        regs = _regressions(cmp, shown, clip, heading="####")
        if regs:
            out += [f"### {_code(label)}", "", *regs]
    seen: set[str | None] = set()
    for label, diff in m.prompt_diffs().items():
        if diff.changed and diff.cand_hash not in seen:
            seen.add(diff.cand_hash)
            out += [f"### Prompt of {_code(label)}", "", diff.markdown(clip * 4), ""]
    return "\n".join(out).rstrip() + "\n"


# -- helpers ------------------------------------------------------------------------


def _budgets(limit: int) -> list[tuple[int, int]]:
    """(regressions shown, characters per clipped text), from generous to terse."""
    return [(limit, 600), (limit, 200), (max(limit // 2, 1), 120), (1, 80), (0, 60)]


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, max_bytes: int) -> str:
    note = "\n\n… (cut to fit; the full report: `--json`)\n"
    data = text.encode("utf-8")[: max_bytes - _size(note)]
    return data.decode("utf-8", errors="ignore").rsplit("\n", 1)[0] + note


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _code(value: Any, width: int = 120) -> str:
    """Untrusted text as one inline code span (no newlines, no way out of the span)."""
    text = _CONTROL.sub("", " ".join(str(value).split()))
    text = clip_counted(text, width).replace("|", "\\|")
    ticks = "`" * (max((len(t) for t in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _block(value: str, width: int, *, indent: str = "") -> str:
    text = _CONTROL.sub("", clip_counted(value, width * 2))
    fence = "`" * max(3, max((len(t) for t in re.findall(r"`{3,}", text)), default=0) + 1)
    body = "\n".join(indent + line for line in text.splitlines())
    return f"{indent}{fence}text\n{body}\n{indent}{fence}"


def _text(value: Any) -> str:
    """Our own short text (names, reasons) with Markdown's active characters escaped."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", _CONTROL.sub("", str(value)))


def _est(d: Mapping[str, Any] | None, *, pct: bool = False) -> str:
    est = (d or {}).get("estimate")
    return _signed(est, pct) if _finite(est) else "n/a"


def _ci(d: Mapping[str, Any] | None, *, pct: bool = False) -> str:
    d = d or {}
    low, high = d.get("low"), d.get("high")
    if not (_finite(low) and _finite(high)):
        return ""
    return f"[{_signed(low, pct)}, {_signed(high, pct)}]"


def _with_ci(d: Mapping[str, Any] | None, *, pct: bool = False) -> str:
    ci = _ci(d, pct=pct)
    return _est(d, pct=pct) + (f" {ci}" if ci else "")


def _signed(value: float, pct: bool) -> str:
    return f"{value * 100:+.1f} pt" if pct else f"{value:+.4g}"


def _num(value: Any, digits: int) -> str:
    return f"{value:,.{digits}f}" if _finite(value) else "n/a"


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and math.isfinite(value)
