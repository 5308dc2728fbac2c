"""What changed since last week: a summary's key figures, their moves, and the HTML showing them.

A notebook marks up to five of its headline figures as key (``record_summary(..., key=...)``),
each with the way that is better (``higher`` or ``lower``) and, where the figure has one, its
interval. This module reads them back from a recorded summary, compares them with the same
notebook's summary of an earlier week, and renders the two places a reader sees them: the
summary box that opens every report and the index's rows (badges, sparklines across weeks,
last value and change) with the table of what got worse. A summary recorded before key
figures existed falls back to its first five numeric headline figures.
"""

from __future__ import annotations

import fnmatch
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.checks import Check
from workbench.text import finite

__all__ = [
    "CSS",
    "MAX_KEY",
    "SECTIONS_MARK",
    "Better",
    "KeyFigure",
    "badges",
    "index_table",
    "key_figures",
    "mark_key",
    "number",
    "sparkline",
    "summary_box",
    "verdict",
    "worse_table",
]

MAX_KEY = 5
Better = Literal["higher", "lower"]
# Where a report's summary box lists its sections; publish.to_html fills it in once the
# notebook is converted, from the headings nbconvert gave ids.
SECTIONS_MARK = "<!--wb-sections-->"
_ARROW = {"up": "▲", "down": "▼", "same": "="}
# The styles of the summary box, the badges and the index; one copy for reports and index.
CSS = """
.wb-summary, .wb-header { font-family: system-ui, sans-serif; margin: 1em 2em; padding: .8em 1em;
  border: 1px solid #ccd; border-radius: 6px; background: #f7f8fb; max-width: 1300px; }
.wb-summary { border-left: 5px solid #1565c0; }
.wb-summary h1 { font-size: 1.4em; margin: 0 0 .3em 0; }
.wb-verdict { font-size: 1.1em; margin: .2em 0 .4em 0; }
.wb-reasons { margin: 0 0 .4em 0; padding-left: 1.4em; color: #8e1c1c; font-size: .9em; }
.wb-note { color: #555; font-size: .85em; margin: .5em 0 .2em 0; }
.wb-figures { border-collapse: collapse; font-size: .95em; }
.wb-figures td, .wb-figures th { padding: 2px 14px 2px 0; text-align: left; vertical-align: baseline; }
.wb-value { font-weight: 600; font-variant-numeric: tabular-nums; }
.wb-interval { color: #555; font-weight: normal; font-size: .85em; }
.wb-sections { margin-top: .6em; font-size: .9em; }
.wb-sections a { margin-right: .2em; color: #1565c0; }
.wb-header summary { cursor: pointer; font-weight: 600; font-size: .9em; }
.wb-header table { border-collapse: collapse; font-size: .85em; margin-top: .3em; }
.wb-header td { padding: 1px 10px 1px 0; vertical-align: top; }
.wb-badge { display: inline-block; padding: 1px 7px; margin: 1px 3px 1px 0; border-radius: 10px;
  font-size: .8em; color: #fff; }
.wb-ok { background: #2e7d32; } .wb-bad { background: #c62828; } .wb-na { background: #777; }
.wb-ok-text { color: #2e7d32; } .wb-bad-text { color: #c62828; } .wb-na-text { color: #555; }
.wb-move { white-space: nowrap; font-variant-numeric: tabular-nums; }
.wb-move-better { color: #2e7d32; } .wb-move-worse { color: #c62828; }
.wb-move-same, .wb-move-changed, .wb-move-none { color: #666; }
.wb-figtable { border-collapse: collapse; }
.wb-figtable td { border: none !important; padding: 0 10px 0 0 !important; vertical-align: middle !important; }
.wb-fig-name { color: #444; font-size: .85em; min-width: 12em; }
.wb-notebooks td:first-child { white-space: nowrap; }
.wb-spark { vertical-align: middle; }
.wb-week { color: #777; font-size: .8em; }
"""


@dataclass(frozen=True)
class KeyFigure:
    """One key figure of a summary, and last week's value of it when there was one."""

    name: str
    value: Any
    better: Better | None = None
    interval: tuple[float, float] | None = None
    previous: Any = None
    since: str | None = None  # the week the previous value is from

    @property
    def delta(self) -> float | None:
        """This value minus the previous one, when both are numbers."""
        now, before = finite(self.value), finite(self.previous)
        return None if now is None or before is None else now - before

    @property
    def move(self) -> str | None:
        """``up``, ``down`` or ``same`` against the previous value; None without one."""
        delta = self.delta
        if delta is None:
            if self.previous is None or self.value is None:
                return None
            return "same" if self.previous == self.value else "up"  # a text that changed
        scale = max(abs(finite(self.value) or 0.0), abs(finite(self.previous) or 0.0), 1e-12)
        if abs(delta) <= 1e-9 * scale:
            return "same"
        return "up" if delta > 0 else "down"

    @property
    def judgement(self) -> Literal["better", "worse", "same", "changed"] | None:
        """How the move reads: better, worse, same, or changed (no better way is known)."""
        move = self.move
        if move is None or move == "same":
            return move  # type: ignore[return-value]
        if self.better is None or self.delta is None:
            return "changed"
        return "better" if (move == "up") == (self.better == "higher") else "worse"

    def change_text(self) -> str:
        """``+0.035 (+5.1%)`` for a number, ``was 'x'`` for a text; empty without a previous."""
        delta = self.delta
        if delta is None:
            return "" if self.move in (None, "same") else f"was {number(self.previous)}"
        if self.move == "same":
            return "no change"
        text = ("+" if delta > 0 else "−") + number(abs(delta))
        before = finite(self.previous)
        if before:
            text += f" ({'+' if delta > 0 else '−'}{abs(delta / before) * 100:.1f}%)"
        return text


def mark_key(
    headline: Mapping[str, Any],
    key: Sequence[str] | Mapping[str, Better | None],
    checks: Sequence[Check | Mapping[str, Any]] = (),
    intervals: Mapping[str, Sequence[float]] | None = None,
) -> list[dict[str, Any]]:
    """The ``key`` entries of a summary: which headline figures matter, in the given order.

    Each name may be an ``fnmatch`` pattern (``"* p95_ms"`` for every route's p95); a name
    the headline lacks this time (a figure of a step that did not run) is skipped; at most
    :data:`MAX_KEY` are kept. A mapping gives the better way of each; without one, a budget
    of the same name says it (a ``max`` budget: lower is better). The interval comes from
    ``intervals`` or from the headline's ``<name>_low`` and ``<name>_high``.
    """
    wanted = dict(key) if isinstance(key, Mapping) else dict.fromkeys(key)
    for better in wanted.values():
        if better not in (None, "higher", "lower"):
            raise ValueError(f"key figures are better 'higher' or 'lower', got {better!r}")
    directions = _directions(checks)
    marked: dict[str, dict[str, Any]] = {}
    for pattern, better in wanted.items():
        for name in headline:
            if name in marked or not (name == pattern or fnmatch.fnmatchcase(name, pattern)):
                continue
            entry: dict[str, Any] = {"name": name, "better": better or directions.get(name)}
            interval = _interval(name, headline, intervals or {})
            if interval is not None:
                entry["interval"] = list(interval)
            marked[name] = entry
    return list(marked.values())[:MAX_KEY]


def key_figures(
    summary: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
    *,
    since: str | None = None,
) -> list[KeyFigure]:
    """A summary's key figures, each with its value in ``previous`` (last week's summary)."""
    headline = summary.get("headline") or {}
    if not isinstance(headline, Mapping):
        return []
    entries = summary.get("key")
    if not isinstance(entries, list):  # a summary from before key figures: the first numbers
        entries = mark_key(headline, _fallback(headline), summary.get("budgets") or [])
    before = (previous or {}).get("headline") or {}
    if not isinstance(before, Mapping):
        before = {}
    figures = []
    for entry in entries[:MAX_KEY]:
        if not isinstance(entry, Mapping) or entry.get("name") not in headline:
            continue
        name = str(entry["name"])
        better = entry.get("better") if entry.get("better") in ("higher", "lower") else None
        bounds = entry.get("interval")
        interval = None
        if isinstance(bounds, list) and len(bounds) == 2:
            low, high = finite(bounds[0]), finite(bounds[1])
            interval = (low, high) if low is not None and high is not None else None
        figures.append(KeyFigure(name, headline[name], better, interval, before.get(name), since))
    return figures


def _fallback(headline: Mapping[str, Any]) -> list[str]:
    """The first numeric headline figures that are not another one's interval bound."""
    names = []
    for name, value in headline.items():
        base = name.removesuffix("_low").removesuffix("_high")
        if finite(value) is None or (base != name and base in headline):
            continue
        names.append(name)
    return names[:MAX_KEY]


def _directions(checks: Sequence[Check | Mapping[str, Any]]) -> dict[str, Better]:
    out: dict[str, Better] = {}
    for check in checks:
        item = check.to_dict() if isinstance(check, Check) else check
        if item.get("direction") == "max":
            out[str(item.get("name"))] = "lower"
        elif item.get("direction") == "min":
            out[str(item.get("name"))] = "higher"
    return out


def _interval(
    name: str, headline: Mapping[str, Any], intervals: Mapping[str, Sequence[float]]
) -> tuple[float, float] | None:
    given = intervals.get(name)
    low, high = (
        (given[0], given[1])
        if given
        else (headline.get(f"{name}_low"), headline.get(f"{name}_high"))
    )
    low, high = finite(low), finite(high)
    return None if low is None or high is None else (low, high)


def number(value: Any) -> str:
    """A figure as a reader reads it: ``1,234`` ``0.6901`` ``41.46``; ``n/a`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


# -- the verdict -------------------------------------------------------------------------


def verdict(summary: Mapping[str, Any]) -> tuple[str, str]:
    """A summary's verdict as a CSS class (``wb-ok``, ``wb-bad``, ``wb-na``) and a sentence."""
    if summary.get("ok") is False:
        return "wb-bad", f"FAILED: {summary.get('error') or 'the notebook did not finish'}"
    budgets = [b for b in summary.get("budgets") or [] if isinstance(b, Mapping)]
    broken = [b for b in budgets if not b.get("ok", True)]
    if broken:
        return "wb-bad", f"{len(broken)} of {len(budgets)} budgets broken"
    if budgets:
        return "wb-ok", f"all {len(budgets)} budgets hold"
    return "wb-na", "no budgets recorded"


def _broken_first(budgets: Any) -> list[Mapping[str, Any]]:
    items = [b for b in budgets or [] if isinstance(b, Mapping)]
    return sorted(items, key=lambda b: bool(b.get("ok", True)))  # stable: broken, then held


def badges(budgets: Any) -> str:
    """Budget badges, broken (red) first, then those that hold (green); hover for the figure."""
    out = []
    for b in _broken_first(budgets):
        cls = "wb-ok" if b.get("ok", True) else "wb-bad"
        title = html.escape(str(b.get("message", "")), quote=True)
        out.append(
            f"<span class='wb-badge {cls}' title='{title}'>{html.escape(str(b.get('name')))}</span>"
        )
    return "".join(out) or "<span class='wb-badge wb-na'>no budgets</span>"


# -- a report's summary box ---------------------------------------------------------------


def summary_box(
    name: str,
    summary: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
    *,
    since: str | None = None,
) -> str:
    """The first section of a report: verdict, key figures with their change, the sections.

    ``previous`` is the same notebook's summary of an earlier run (``since`` names its week).
    The section links are :data:`SECTIONS_MARK`, filled in after conversion.
    """
    cls, sentence = verdict(summary)
    broken = [b for b in _broken_first(summary.get("budgets")) if not b.get("ok", True)]
    reasons = "".join(
        f"<li>{html.escape(str(b.get('message') or b.get('name')))}</li>" for b in broken
    )
    figures = key_figures(summary, previous, since=since)
    note = (
        "<p class='wb-note'>First run: no earlier run of this notebook to compare with.</p>"
        if previous is None
        else ""
    )
    rows = "".join(_figure_row(f) for f in figures)
    table = (
        "<table class='wb-figures'><tr><th>key figure</th><th>this run</th>"
        f"<th>{'since ' + html.escape(since) if since else 'change'}</th></tr>{rows}</table>"
        if figures
        else "<p>No headline figures recorded.</p>"
    )
    return (
        f"<section class='wb-summary' id='wb-summary'><h1>{html.escape(name)}</h1>"
        f"<p class='wb-verdict {cls}-text'><b>{html.escape(sentence)}</b></p>"
        + (f"<ul class='wb-reasons'>{reasons}</ul>" if reasons else "")
        + f"<div>{badges(summary.get('budgets'))}</div>"
        + f"{note}{table}"
        + f"<nav class='wb-sections'>{SECTIONS_MARK}</nav></section>"
    )


def _figure_row(figure: KeyFigure) -> str:
    interval = (
        f" <span class='wb-interval'>[{number(figure.interval[0])}, {number(figure.interval[1])}]</span>"
        if figure.interval
        else ""
    )
    return (
        f"<tr><td>{html.escape(figure.name)}</td>"
        f"<td class='wb-value'>{html.escape(number(figure.value))}{interval}</td>"
        f"<td>{_change(figure)}</td></tr>"
    )


def _change(figure: KeyFigure) -> str:
    """An arrow coloured by whether the move is better, and the change; '' without a previous."""
    move = figure.move
    if move is None:
        return "<span class='wb-move wb-move-none'>–</span>"
    judgement = figure.judgement or "same"
    title = html.escape(f"was {number(figure.previous)}", quote=True)
    return (
        f"<span class='wb-move wb-move-{judgement}' title='{title}' data-judgement='{judgement}'>"
        f"{_ARROW[move]} {html.escape(figure.change_text())}</span>"
    )


# -- the index ------------------------------------------------------------------------------


def sparkline(points: Sequence[tuple[str, float]], *, width: int = 110, height: int = 26) -> str:
    """A small SVG line of ``(week, value)`` points; empty for fewer than two (no chart of one)."""
    if len(points) < 2:
        return ""
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = high - low or 1.0
    pad = 3.0
    step = (width - 2 * pad) / (len(points) - 1)
    xy = [
        (
            pad + i * step,
            height - pad - ((v - low) / span if high > low else 0.5) * (height - 2 * pad),
        )
        for i, v in enumerate(values)
    ]
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    label = html.escape(", ".join(f"{w}: {number(v)}" for w, v in points))
    last_x, last_y = xy[-1]
    return (
        f"<svg class='wb-spark' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"role='img' aria-label='{label}' data-points='{len(points)}'><title>{label}</title>"
        f"<polyline fill='none' stroke='#1565c0' stroke-width='1.5' points='{coords}'/>"
        f"<circle cx='{last_x:.1f}' cy='{last_y:.1f}' r='2.5' fill='#1565c0'/></svg>"
    )


def index_table(history: Mapping[str, Sequence[Mapping[str, Any]]], link: Mapping[str, str]) -> str:
    """One row per notebook: status, badges (broken first), key figures as sparklines.

    ``history`` maps each notebook's name to its summaries oldest first (each with its
    ``week``); the last is the one shown, the one before it gives the change. Rows with a
    failure or a broken budget come first.
    """
    rows = []
    for name, runs in history.items():
        last = runs[-1]
        before = runs[-2] if len(runs) > 1 else None
        cls, sentence = verdict(last)
        cells = []
        for figure in key_figures(last, before, since=before.get("week") if before else None):
            points = [
                (str(r.get("week")), v)
                for r in runs
                if (v := finite((r.get("headline") or {}).get(figure.name))) is not None
            ]
            cells.append(
                f"<tr><td class='wb-fig-name'>{html.escape(figure.name)}</td>"
                f"<td>{sparkline(points)}</td>"
                f"<td class='wb-value'>{html.escape(number(figure.value))}</td>"
                f"<td>{_change(figure)}</td></tr>"
            )
        figures = f"<table class='wb-figtable'>{''.join(cells)}</table>" if cells else "–"
        rank = 0 if last.get("ok") is False else 1 if cls == "wb-bad" else 2
        href = html.escape(link.get(name, ""), quote=True)
        status = (
            "<span class='wb-badge wb-bad'>failed</span>"
            if last.get("ok") is False
            else "<span class='wb-badge wb-ok'>ran</span>"
        )
        rows.append(
            (
                rank,
                f"<tr class='wb-row {cls}-row'><td><a href='{href}'>{html.escape(name)}</a>"
                f"<div class='wb-week'>{html.escape(str(last.get('week', '')))}</div></td>"
                f"<td>{status} <span class='{cls}-text'>{html.escape(sentence)}</span>"
                f"<div>{badges(last.get('budgets'))}</div></td>"
                f"<td class='wb-figs'>{figures}</td></tr>",
            )
        )
    rows.sort(key=lambda r: r[0])  # stable: run order within each rank
    return (
        "<table class='wb-index wb-notebooks'><tr><th>notebook</th><th>verdict</th>"
        "<th>key figures across weeks (last value, change since the week before)</th></tr>"
        + "".join(r for _, r in rows)
        + "</table>"
    )


def worse_table(history: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """What got worse since each notebook's previous week: failures, broken budgets, figures."""
    rows = []
    for name, runs in history.items():
        if len(runs) < 2:
            continue
        before, last = runs[-2], runs[-1]
        since = html.escape(str(before.get("week", "")))
        head = f"<td>{html.escape(name)}</td><td>{since} → {html.escape(str(last.get('week', '')))}</td>"
        if last.get("ok") is False and before.get("ok") is not False:
            rows.append(
                f"<tr>{head}<td>notebook</td><td>ran</td><td class='wb-bad-text'>FAILED</td></tr>"
            )
        held = {str(b.get("name")) for b in before.get("budgets") or [] if b.get("ok", True)}
        for b in last.get("budgets") or []:
            if not b.get("ok", True) and str(b.get("name")) in held:
                rows.append(
                    f"<tr>{head}<td>budget {html.escape(str(b.get('name')))}</td><td>held</td>"
                    f"<td class='wb-bad-text'>{html.escape(str(b.get('message', 'BROKEN')))}</td></tr>"
                )
        for figure in key_figures(last, before):
            if figure.judgement == "worse":
                rows.append(
                    f"<tr>{head}<td>{html.escape(figure.name)}</td>"
                    f"<td>{html.escape(number(figure.previous))}</td>"
                    f"<td>{html.escape(number(figure.value))} {_change(figure)}</td></tr>"
                )
    if not rows:
        return "<p class='wb-worse-none'>Nothing got worse since the week before.</p>"
    return (
        "<table class='wb-index wb-worse'><tr><th>notebook</th><th>weeks</th><th>what</th>"
        "<th>before</th><th>now</th></tr>" + "".join(rows) + "</table>"
    )
