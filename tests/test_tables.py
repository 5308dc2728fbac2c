"""Tables as reports show them, and a report's shared assets (plotly.js and the style sheet)."""

from __future__ import annotations

import html
from pathlib import Path

import nbformat
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench import digest, publish, tables, views


def test_a_default_index_is_meaningless_and_a_named_one_is_not() -> None:
    frame = pd.DataFrame({"case": ["a", "b"], "score": [1.0, 0.5]})
    assert tables.meaningless_index(frame)
    assert tables.meaningless_index(frame.iloc[[0, 1]].reset_index(drop=True))
    assert not tables.meaningless_index(frame.set_index("case"))
    assert not tables.meaningless_index(frame.iloc[[1]])  # rows 1.. say where they came from
    assert not tables.meaningless_index(frame.rename_axis("n"))
    grouped = frame.groupby("case").sum()
    assert not tables.meaningless_index(grouped)


def test_frame_html_leaves_out_a_default_index_only() -> None:
    frame = pd.DataFrame({"case": ["a", "b"], "score": [1.0, 0.5]})
    plain = tables.frame_html(frame)
    assert "<th>case</th>" in plain and "<th></th>" not in plain and "<th>0</th>" not in plain
    keyed = tables.frame_html(frame.set_index("case"))
    assert "<th>a</th>" in keyed  # the index is the row label


def test_long_text_is_clipped_to_three_lines_but_stays_in_the_page() -> None:
    text = "the model said" + " a <b>very</b> long thing" * 30
    body = tables.frame_html(pd.DataFrame({"output": [text, "short"]}))
    assert body.count("wb-clip' tabindex='0'") == 1 and "-webkit-line-clamp:3" in body
    assert html.escape(text, quote=False) in body  # searchable and copyable, and escaped
    assert "<b>very</b>" not in body
    huge = tables.frame_html(pd.DataFrame({"output": ["x" * (tables.MAX_CHARS * 3)]}))
    assert len(huge) < tables.MAX_CHARS * 2
    assert "wb-clip" not in tables.frame_html(pd.DataFrame({"output": ["short"]}))


def test_setup_notebook_makes_frame_html_the_dataframe_display() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        views.setup_notebook()
        formatter = shell.display_formatter.formatters["text/html"]
        shown = formatter(pd.DataFrame({"a": [1, 2]}))
        assert shown is not None and "<th>0</th>" not in shown and "<th>a</th>" in shown
    finally:
        InteractiveShell.clear_instance()


# --- a report's assets ---------------------------------------------------------------------


def _executed_notebook(path: Path, *, chart: bool) -> Path:
    """An executed notebook with a heading, a table and (optionally) a plotly chart."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("## Pass rate by tag"))
    table = nbformat.v4.new_code_cell("df")
    table.outputs = [
        nbformat.v4.new_output(
            "display_data", {"text/html": tables.frame_html(pd.DataFrame({"a": [1]}))}
        )
    ]
    nb.cells.append(table)
    if chart:
        cell = nbformat.v4.new_code_cell("fig")
        bundle = views.Figure(go.Figure(go.Bar(x=["a"], y=[1])))._repr_mimebundle_()
        cell.outputs = [nbformat.v4.new_output("display_data", bundle)]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_reports_of_a_folder_share_one_plotly_js_and_one_style_sheet(tmp_path: Path) -> None:
    for name in ("a", "b"):
        publish.to_html(
            _executed_notebook(tmp_path / f"{name}.ipynb", chart=True),
            header=digest.summary_box(name, {"ok": True, "headline": {}}),
        )
    publish.to_html(_executed_notebook(tmp_path / "c.ipynb", chart=False))
    js = (tmp_path / publish.PLOTLY_JS).read_text()
    assert "Plotly" in js and len(js) > 1_000_000
    for name in ("a", "b"):
        page = (tmp_path / f"{name}.html").read_text()
        assert f'src="{publish.PLOTLY_JS}"' in page and len(page) < 400_000
        assert page.index(publish.PLOTLY_JS) < page.index("Plotly.newPlot")
        assert f'href="{publish.REPORT_CSS}"' in page
        assert "href='#Pass-rate-by-tag'>Pass rate by tag</a>" in page  # the section links
    assert publish.PLOTLY_JS not in (tmp_path / "c.html").read_text()  # no chart, no script
    assert (tmp_path / publish.REPORT_CSS).stat().st_size > 1000


def test_a_self_contained_report_carries_its_assets(tmp_path: Path) -> None:
    page = publish.to_html(
        _executed_notebook(tmp_path / "a.ipynb", chart=True), self_contained=True
    ).read_text()
    assert len(page) > 1_000_000 and f'src="{publish.PLOTLY_JS}"' not in page
    assert publish.REPORT_CSS not in page and "<style" in page
    assert not (tmp_path / publish.PLOTLY_JS).exists()


@pytest.mark.parametrize("chart", [True, False])
def test_a_report_is_written_whole_with_no_marks_left(tmp_path: Path, chart: bool) -> None:
    page = publish.to_html(_executed_notebook(tmp_path / "a.ipynb", chart=chart)).read_text()
    assert "<!--wb-" not in page and digest.SECTIONS_MARK not in page
