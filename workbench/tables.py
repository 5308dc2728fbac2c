"""pandas tables as notebooks and reports show them: no meaningless index, long text clipped.

``views.setup_notebook()`` makes :func:`frame_html` the HTML form of every DataFrame a
notebook displays. A default index (0, 1, 2 …, unnamed) says nothing and is left out; a
named or labelled index stays. A text cell longer than :data:`CLIP_CHARS` shows its first
three lines; hovering over it or focusing it (click, or Tab) shows the whole text, which
stays in the page (search and copy find it). Cells wrap at a fixed width, so the widest
table of a report fits a 1,400 px page.
"""

from __future__ import annotations

import html
import re

import pandas as pd

from workbench.text import clip_counted

__all__ = ["CLIP_CHARS", "MAX_CHARS", "frame_html", "meaningless_index"]

CLIP_CHARS = 80  # a cell longer than this is clipped to three lines
MAX_CHARS = 4000  # a cell longer than this is cut, saying how long it was
# Inline, so the table looks the same in JupyterLab, a report and any other viewer.
_STYLE = (
    "<style>.wb-clip{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:3;"
    "overflow:hidden;width:22em;overflow-wrap:anywhere;white-space:normal;text-align:left;"
    "cursor:zoom-in}.wb-clip:hover,.wb-clip:focus{-webkit-line-clamp:unset;overflow:visible;"
    "outline:1px dotted #999}</style>"
)
_CELL = re.compile(r"<td>([^<]*)</td>")


def meaningless_index(frame: pd.DataFrame) -> bool:
    """True for an unnamed default index (0, 1, 2 …), which carries no meaning in a table."""
    index = frame.index
    if index.nlevels != 1 or index.name is not None:
        return False
    if isinstance(index, pd.RangeIndex):
        return bool(index.start == 0 and index.step == 1)
    return bool(
        pd.api.types.is_integer_dtype(index.dtype) and list(index) == list(range(len(index)))
    )


def frame_html(frame: pd.DataFrame) -> str:
    """A DataFrame as notebook HTML, with the display options' row and column limits."""
    with pd.option_context("display.max_colwidth", None):
        body = frame.to_html(
            index=not meaningless_index(frame),
            notebook=True,
            max_rows=pd.get_option("display.max_rows"),
            max_cols=pd.get_option("display.max_columns"),
            show_dimensions=pd.get_option("display.show_dimensions"),
        )
    clipped, cells = _CELL.subn(_clip, body)
    return _STYLE + clipped if "wb-clip" in clipped and cells else body


def _clip(match: re.Match[str]) -> str:
    """A long text cell wrapped so it shows three lines and the rest on hover or focus."""
    text = html.unescape(match.group(1))
    if len(text) <= CLIP_CHARS:
        return match.group(0)
    shown = html.escape(clip_counted(text, MAX_CHARS), quote=False)  # as pandas escapes
    return f"<td><div class='wb-clip' tabindex='0'>{shown}</div></td>"
