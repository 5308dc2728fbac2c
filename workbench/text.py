"""Small text helpers shared by the terminal reports, views and error messages."""

from __future__ import annotations

import difflib
import json
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "clip",
    "clip_counted",
    "finite",
    "interval_text",
    "milliseconds",
    "percent",
    "percentile",
    "show",
    "show_repr",
    "word_diff",
]


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percent string (``0.125`` -> ``12.5%``); ``n/a`` when missing or NaN."""
    return "n/a" if value is None or value != value else f"{value * 100:.{digits}f}%"


def milliseconds(value: float | None) -> str:
    """A duration in milliseconds with thousands separators (``1,812 ms``); ``n/a`` when missing or NaN."""
    return "n/a" if value is None or value != value else f"{value:,.0f} ms"


def clip(text: str, width: int, *, marker: str = "…") -> str:
    """``text`` cut to ``width`` characters, the last of them ``marker``, when it is longer."""
    return text if len(text) <= width else text[: max(width - len(marker), 0)] + marker


def clip_counted(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters that end by saying how long it was.

    ``"abc...(12,345 chars)"``: the length is worth reading when a value floods a message.
    """
    return text if len(text) <= width else f"{text[: max(width - 20, 0)]}...({len(text):,} chars)"


def show(value: Any, width: int = 60) -> str:
    """A value as a message quotes it: a string's repr, anything else as JSON, clipped."""
    if isinstance(value, str):
        return clip(repr(value), width)
    return clip(json.dumps(value, ensure_ascii=False, default=str), width)


def show_repr(value: Any, width: int = 60) -> str:
    """A value's repr clipped with ``...``: for messages that quote raw input of any type."""
    return clip(repr(value), width, marker="...")


def finite(value: Any, *, parse_text: bool = False) -> float | None:
    """A finite real number as float; None for anything else.

    None for a bool, NaN, infinity, an integer too large for a float and, unless
    ``parse_text``, a string; with it a numeric string (``" 2.5 "``) counts.
    """
    if parse_text and isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


@overload
def percentile(values: Iterable[float | None] | np.ndarray[Any, Any], q: float) -> float | None: ...
@overload
def percentile(
    values: Iterable[float | None] | np.ndarray[Any, Any], q: float, empty: float
) -> float: ...
def percentile(
    values: Iterable[float | None] | np.ndarray[Any, Any], q: float, empty: float | None = None
) -> float | None:
    """The ``q``-th percentile (0 to 100) of the values, skipping NaN and None.

    ``empty`` (None unless given) when no value is left.
    """
    import numpy as np  # here, so the many modules that quote text do not load numpy

    # arrays and pandas Series convert as they are; any other iterable is read once
    array = np.asarray(values if hasattr(values, "__array__") else list(values), dtype=float)
    array = array[~np.isnan(array)]
    return float(np.percentile(array, q)) if array.size else empty


def word_diff(old: str, new: str) -> str:
    """A readable word-level diff: ``charged [-twice-]{+three times+} in March``."""
    a, b = old.split(), new.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.extend(a[i1:i2])
            continue
        if op in ("replace", "delete"):
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if op in ("replace", "insert"):
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


def interval_text(d: Mapping[str, Any], *, pct: bool = False) -> str:
    """An estimate with its interval, ``+0.055 [+0.025, +0.087]`` (points with ``pct``); the
    estimate alone without bounds, ``n/a`` without an estimate."""
    est, low, high = d.get("estimate"), d.get("low"), d.get("high")
    if est is None or (isinstance(est, float) and math.isnan(est)):
        return "n/a"

    def fmt(v: float) -> str:
        return f"{v * 100:+.1f} pt" if pct else f"{v:+.4g}"

    if low is None or high is None or math.isnan(low):
        return fmt(est)
    return f"{fmt(est)} [{fmt(low)}, {fmt(high)}]"
