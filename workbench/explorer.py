"""An ipywidgets explorer for JupyterLab: pick two runs, filter cases, page through them."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from workbench.compare import TRANSITIONS, CaseDelta, Comparison, compare
from workbench.store import Store

__all__ = [
    "PAGE_SIZE",
    "explorer",
    "filter_cases",
    "render_cases",
]

PAGE_SIZE = 5


def filter_cases(
    cmp: Comparison,
    *,
    transition: str = "all",
    tag: str = "all",
    field: str = "all",
) -> list[CaseDelta]:
    """The cases matching a transition, a tag and a changed field ("all" matches any)."""
    out = []
    for case in cmp.cases:
        if transition == "changed-any":
            if case.transition in ("unchanged_pass", "unchanged_fail"):
                continue
        elif transition != "all" and case.transition != transition:
            continue
        if tag != "all" and tag not in case.tags:
            continue
        if field != "all" and not any(
            c.path.split(".")[0].split("[")[0] == field for c in case.changes
        ):
            continue
        out.append(case)
    return out


def render_cases(cases: Sequence[CaseDelta]) -> str:
    """Cases side by side as an HTML table; every model output is escaped."""
    rows = []
    for case in cases:
        changes = "<br>".join(html.escape(c.describe()) for c in case.changes) or "&nbsp;"
        marks = " ".join(
            m for m, on in (("flaky", case.flaky), ("allowed", case.allowed is not None)) if on
        )
        rows.append(
            "<tr>"
            f"<td><b>{html.escape(case.case_id)}</b><br>{html.escape(case.transition)}"
            f"<br><i>{html.escape(marks)}</i></td>"
            f"<td><pre>{_pre(case.expected)}</pre></td>"
            f"<td><pre>{_pre(case.base_output or f'error: {case.base_error}')}</pre></td>"
            f"<td><pre>{_pre(case.cand_output or f'error: {case.cand_error}')}</pre></td>"
            f"<td>{changes}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>case</th><th>expected</th><th>baseline</th><th>candidate</th>"
        "<th>what changed</th></tr>"
    )
    style = "<style>.wb-cases pre{white-space:pre-wrap;max-width:28em;margin:0}</style>"
    return f"{style}<table class='wb-cases'>{head}{''.join(rows)}</table>"


def _pre(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
    if len(text) > 1500:
        text = text[:1500] + "…"
    return html.escape(text)


def explorer(
    store: Store,
    *,
    base: str | None = None,
    cand: str | None = None,
    dataset: str | None = None,
    page_size: int = PAGE_SIZE,
) -> Any:
    """A widget to pick two runs, filter by transition, tag or field, and page through cases."""
    import ipywidgets as w

    runs = [r for r in store.runs(dataset=dataset, kind="eval") if r["status"] == "finished"]
    options = [(f"{r['id']}  {r['target']}", r["id"]) for r in runs]
    ids = [r["id"] for r in runs]
    base_dd = w.Dropdown(
        options=options,
        value=base if base in ids else (ids[1] if len(ids) > 1 else None),
        description="baseline",
    )
    cand_dd = w.Dropdown(
        options=options,
        value=cand if cand in ids else (ids[0] if ids else None),
        description="candidate",
    )
    transition_dd = w.Dropdown(
        options=["changed-any", "all", *TRANSITIONS], value="changed-any", description="transition"
    )
    tag_dd = w.Dropdown(options=["all"], value="all", description="tag")
    field_dd = w.Dropdown(options=["all"], value="all", description="field")
    prev_btn, next_btn = w.Button(description="◀ previous"), w.Button(description="next ▶")
    status, table = w.HTML(), w.HTML()
    state: dict[str, Any] = {"page": 0, "cmp": None, "cache": {}}

    def load(*_: Any) -> None:
        key = (base_dd.value, cand_dd.value)
        if None in key:
            status.value = "<i>need two finished runs</i>"
            return
        if key not in state["cache"]:
            try:
                state["cache"][key] = compare(store, *key, shared_only=True)
            except Exception as exc:  # shown in the widget, not raised into the UI loop
                status.value = f"<b>cannot compare:</b> {html.escape(str(exc))}"
                state["cmp"] = None
                table.value = ""
                return
        cmp = state["cmp"] = state["cache"][key]
        tag_dd.options = ["all", *sorted({t for c in cmp.cases for t in c.tags})]
        field_dd.options = ["all", *[f for f, _ in cmp.field_counts()]]
        state["page"] = 0
        show()

    def show(*_: Any) -> None:
        cmp = state["cmp"]
        if cmp is None:
            return
        cases = filter_cases(
            cmp, transition=transition_dd.value, tag=tag_dd.value, field=field_dd.value
        )
        pages = max(1, -(-len(cases) // page_size))
        state["page"] = min(state["page"], pages - 1)
        start = state["page"] * page_size
        status.value = (
            f"{len(cases)} case(s) match; page {state['page'] + 1} of {pages}. "
            f"Verdict: {'PASS' if cmp.ok else 'FAIL'}"
        )
        table.value = render_cases(cases[start : start + page_size])

    def turn(step: int) -> None:
        state["page"] = max(0, state["page"] + step)
        show()

    base_dd.observe(load, names="value")
    cand_dd.observe(load, names="value")

    def refilter(*_: Any) -> None:
        state["page"] = 0
        show()

    for dd in (transition_dd, tag_dd, field_dd):
        dd.observe(refilter, names="value")
    prev_btn.on_click(lambda _: turn(-1))
    next_btn.on_click(lambda _: turn(1))
    load()
    return w.VBox(
        [
            w.HBox([base_dd, cand_dd]),
            w.HBox([transition_dd, tag_dd, field_dd]),
            w.HBox([prev_btn, next_btn, status]),
            table,
        ]
    )
