"""Analysis helpers over the ``spans`` table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workbench.store import Store

if TYPE_CHECKING:
    import pandas as pd


def window_clause(since_ns: int | None, until_ns: int | None) -> tuple[str, list[int]]:
    """SQL conditions (each led by AND) and arguments for a [since, until) window on start_ns."""
    sql, args = "", []
    for clause, value in ((" AND start_ns >= ?", since_ns), (" AND start_ns < ?", until_ns)):
        if value is not None:
            sql += clause
            args.append(value)
    return sql, args


def spans_frame(
    store: Store,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    span_class: str | None = None,
    route: str | None = None,
) -> pd.DataFrame:
    """Spans by start time, optionally filtered, with ``finish_reasons`` decoded and flags as bool."""
    import pandas as pd

    store.require_sqlite("traces")

    where: list[str] = []
    args: list[Any] = []
    for clause, value in (
        ("start_ns >= ?", since_ns),
        ("start_ns < ?", until_ns),
        ("span_class = ?", span_class),
        ("route = ?", route),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = "SELECT * FROM spans" + (" WHERE " + " AND ".join(where) if where else "")
    frame = pd.read_sql_query(
        sql + " ORDER BY start_ns, trace_id, span_id", store.conn, params=args
    )
    frame["finish_reasons"] = frame["finish_reasons"].map(
        lambda v: json.loads(v) if isinstance(v, str) else None
    )
    for name in ("stream", "cache_hit"):
        frame[name] = frame[name].astype("boolean")
    return frame
