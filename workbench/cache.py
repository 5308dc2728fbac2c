"""Cache effectiveness from spans: per-layer economics, sizing, semantic-cache thresholds.

Economics read the ``spans`` table (``docs/schema.md``): hit ratios by requests, tokens and
money per layer, latency on hits and misses, savings net of write premiums, cold and expired
misses. Sizing runs the LRU miss-ratio curves of :mod:`workbench.mrc` over one layer's keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.typing import ArrayLike

from workbench.checks import Check, Provenance
from workbench.configfile import read_text, short
from workbench.errors import ConfigError
from workbench.mrc import (
    COLD,
    EXPIRED,
    FloatArray,
    MissRatioCurve,
    mrc,
    mrc_error,
    mrc_figure,
    shards_mrc,
    simulate_lru,
    stack_distances,
)
from workbench.prices import FIELDS as PRICE_FIELDS
from workbench.prices import Price, PriceBook
from workbench.text import percentile
from workbench.traces import window_clause

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.store import Store

__all__ = [
    "COLD",
    "EXPIRED",
    "LAYERS",
    "CacheReport",
    "MissRatioCurve",
    "SizingReport",
    "ThresholdChoice",
    "cache_report",
    "layer_figure",
    "layer_report",
    "load_pairs",
    "mrc",
    "mrc_error",
    "mrc_figure",
    "safe_threshold",
    "shards_mrc",
    "simulate_lru",
    "sizing_report",
    "stack_distances",
    "threshold_figure",
    "threshold_sweep",
]

LAYERS = ("prompt_template", "embedding", "response_exact", "response_semantic", "provider")
# The span class of the work a hit on each application layer skips.
_BACKING = {
    "prompt_template": "template",
    "embedding": "embedding",
    "response_exact": "llm",
    "response_semantic": "llm",
}


# -- economics from spans ------------------------------------------------------------

_SPAN_COLUMNS = (
    "trace_id, parent_span_id, start_ns, duration_ms, route, span_class, cache_layer, "
    "cache_key_hash, cache_hit, obj_bytes, ttl_s, request_model, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, cost_usd"
)
REPORT_COLUMNS = (
    "lookups",
    "hits",
    "misses",
    "hit_ratio",
    "cold_misses",
    "cold_miss_share",
    "expired_misses",
    "unique_keys",
    "tokens_saved",
    "token_hit_ratio",
    "usd_saved",
    "usd_write_premium",
    "usd_hit_ratio",
    "hit_p50_ms",
    "hit_p95_ms",
    "miss_p50_ms",
    "miss_p95_ms",
    "lookup_p50_ms",
    "latency_saved_s",
    "unpriced_calls",
)


_NUMERIC_COLUMNS = (
    "duration_ms",
    "cache_hit",
    "obj_bytes",
    "ttl_s",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
)


def _spans(store: Store, since_ns: int | None, until_ns: int | None) -> pd.DataFrame:
    """Lookups and model calls in the window, plus the roots and calls of their traces."""
    store.require_sqlite("cache reports")
    where, args = window_clause(since_ns, until_ns)
    picked = f"(cache_layer IS NOT NULL OR span_class = 'llm'){where}"
    sql = (
        f"SELECT {_SPAN_COLUMNS}, ({picked}) AS picked FROM spans "
        f"WHERE trace_id IN (SELECT trace_id FROM spans WHERE {picked}) "
        "AND (parent_span_id IS NULL OR span_class IN ('llm', 'embedding', 'template') "
        f"OR {picked}) ORDER BY start_ns, trace_id"
    )
    frame = pd.read_sql_query(sql, store.conn, params=[*args, *args, *args])
    # A column that is NULL throughout comes back as objects; the arithmetic wants floats.
    for column in _NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


def _price_columns(calls: pd.DataFrame, prices: PriceBook) -> pd.DataFrame:
    """Each call's rates (NaN for an unpriced model), aligned with ``calls``."""
    models = calls["request_model"]
    rates = {m: prices.rates(m) for m in models.dropna().unique()}
    priced = {m: r for m, r in rates.items() if r is not None}
    table = pd.DataFrame(list(priced.values()), index=list(priced), columns=list(PRICE_FIELDS))
    return table.reindex(models.to_numpy()).set_axis(calls.index)


def _tokens(calls: pd.DataFrame, column: str) -> pd.Series:
    return calls[column].fillna(0).astype(float)


def _call_costs(calls: pd.DataFrame, prices: PriceBook) -> tuple[pd.Series, pd.Series]:
    """USD per call (from the price table, else cost_usd) and whether it could be priced."""
    price = _price_columns(calls, prices)
    read, write = _tokens(calls, "cache_read_tokens"), _tokens(calls, "cache_write_tokens")
    uncached = (_tokens(calls, "input_tokens") - read - write).clip(lower=0)
    priced = (
        uncached * price["input"]
        + read * price["cache_read"]
        + write * price["cache_write"]
        + _tokens(calls, "output_tokens") * price["output"]
    ) / 1e6
    cost = priced.fillna(calls["cost_usd"].astype(float))
    return cost.fillna(0.0), cost.notna()


def _key_stats(rows: pd.DataFrame) -> tuple[Any, Any, Any]:
    """Cold misses (first access of a key in the window), TTL-expired misses, unique keys."""
    keyed = rows[rows["cache_key_hash"].notna()]
    if keyed.empty:
        return pd.NA, pd.NA, pd.NA
    first = ~keyed["cache_key_hash"].duplicated()
    gap_s = keyed.groupby("cache_key_hash")["start_ns"].diff() / 1e9
    miss = ~keyed["hit"]
    expired = miss & ~first & keyed["ttl_s"].notna() & (gap_s > keyed["ttl_s"])
    return int((miss & first).sum()), int(expired.sum()), int(keyed["cache_key_hash"].nunique())


def _latency(rows: pd.DataFrame, column: str) -> dict[str, float]:
    hits, misses = rows[rows["hit"]], rows[~rows["hit"]]
    return {
        "hit_p50_ms": percentile(hits[column], 50, math.nan),
        "hit_p95_ms": percentile(hits[column], 95, math.nan),
        "miss_p50_ms": percentile(misses[column], 50, math.nan),
        "miss_p95_ms": percentile(misses[column], 95, math.nan),
        "lookup_p50_ms": percentile(rows["duration_ms"], 50, math.nan),
    }


def _app_layer(rows: pd.DataFrame, calls: pd.DataFrame, prices: PriceBook) -> dict[str, Any]:
    """Savings of an application cache layer: each hit avoids a miss's mean backing work."""
    backing_class = _BACKING.get(rows["cache_layer"].iloc[0], "llm")
    backing = calls[calls["span_class"] == backing_class]
    cost, priced = _call_costs(backing, prices)
    work = (
        pd.DataFrame(
            {
                "trace_id": backing["trace_id"],
                "tokens": backing[["input_tokens", "output_tokens"]].fillna(0).sum(axis=1),
                "usd": cost,
                "ms": backing["duration_ms"].fillna(0.0),
                "unpriced": ~priced,
            }
        )
        .groupby("trace_id")[["tokens", "usd", "ms", "unpriced"]]
        .sum()
    )
    misses = rows[~rows["hit"]]
    miss_traces = misses.groupby("trace_id").agg(route=("route", "first"), n=("hit", "size"))
    miss_traces = miss_traces.join(work, how="left").fillna(
        {"tokens": 0.0, "usd": 0.0, "ms": 0.0, "unpriced": 0}
    )
    per_route = miss_traces.groupby("route")[["n", "tokens", "usd", "ms"]].sum()
    overall = per_route.sum()
    hits = rows[rows["hit"]]
    tokens_saved = usd_gross = ms_saved = 0.0
    # With no misses at all there is nothing to value a hit by: savings stay 0.
    for route, n_hits in hits.groupby("route").size().items() if overall["n"] else ():
        basis = per_route.loc[route] if route in per_route.index else overall
        tokens_saved += n_hits * basis["tokens"] / basis["n"]
        usd_gross += n_hits * basis["usd"] / basis["n"]
        ms_saved += n_hits * basis["ms"] / basis["n"]
    # A lookup's own cost (a semantic lookup's query embedding); a lookup recorded on the
    # backing call itself is already that call's cost.
    own = rows[rows["span_class"] != backing_class]
    lookup_cost, lookup_priced = _call_costs(own, prices)
    has_tokens = own[["input_tokens", "cost_usd"]].notna().any(axis=1)
    usd_saved = usd_gross - float(lookup_cost.sum())
    spent_tokens, spent_usd = float(overall["tokens"]), float(overall["usd"])
    return {
        "tokens_saved": tokens_saved,
        "token_hit_ratio": _ratio(tokens_saved, tokens_saved + spent_tokens),
        "usd_saved": usd_saved,
        "usd_write_premium": 0.0,
        "usd_hit_ratio": _ratio(usd_saved, usd_saved + spent_usd),
        "latency_saved_s": ms_saved / 1000.0,
        "unpriced_calls": int(miss_traces["unpriced"].sum() + (has_tokens & ~lookup_priced).sum()),
        **_latency(rows, "request_ms"),
    }


def _provider_layer(rows: pd.DataFrame, prices: PriceBook) -> dict[str, Any]:
    """Savings of the provider prompt cache: reads at the discount, net of write premiums."""
    price = _price_columns(rows, prices)
    read, write = _tokens(rows, "cache_read_tokens"), _tokens(rows, "cache_write_tokens")
    gross = float((read * (price["input"] - price["cache_read"])).sum()) / 1e6
    premium = float((write * (price["cache_write"] - price["input"])).sum()) / 1e6
    unpriced = int(price["input"].isna().sum())
    cost, _ = _call_costs(rows, prices)
    saved = gross - premium
    return {
        "tokens_saved": float(read.sum()),
        "token_hit_ratio": _ratio(float(read.sum()), float(rows["input_tokens"].fillna(0).sum())),
        "usd_saved": saved,
        "usd_write_premium": premium,
        "usd_hit_ratio": _ratio(saved, float(cost.sum()) + saved),
        "latency_saved_s": math.nan,
        "unpriced_calls": unpriced,
        **_latency(rows, "duration_ms"),
    }


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def layer_report(
    store: Store,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    prices: Mapping[str, Price] | None = None,
) -> pd.DataFrame:
    """Per cache layer: hit ratios by requests, tokens and USD, latency, cold share, keys.

    A lookup is a span with ``cache_layer`` and ``cache_hit`` starting in [since, until).
    A hit on a response cache avoids the model calls (``span_class = 'llm'``) a miss of that
    route costs on average: each miss is charged its trace's calls, split evenly among the
    trace's misses of the layer; a route without misses uses the layer's mean. An embedding
    hit avoids ``embedding`` spans and a prompt-template hit ``template`` spans the same way.
    Behind a stacked layer (exact in front of semantic), a miss's cost already counts the
    later layers' hits, so the value is marginal. USD saved is net of the lookups' own cost
    (e.g. the query embedding of a semantic lookup) and, for the provider prompt cache
    (every model call is a lookup; a hit has ``cache_read_tokens`` > 0), of cache-write
    premiums. Calls are priced from ``prices`` laid over the built-in table
    (``workbench.prices``, which also says how unset cache rates and dated names are
    priced), else by their ``cost_usd``; ``unpriced_calls`` counts those with neither. Hit/miss percentiles are of
    the request's root span (the lookup span's own when the trace has no root), and of the
    call itself for the provider; ``latency_saved_s`` = hits x the mean backing time of a
    miss (gross: ``lookup_p50_ms`` shows what each lookup costs). Cold misses are misses of
    a key's first access in the window; expired misses came after more than ``ttl_s``.
    """
    table = PriceBook(prices)
    spans = _spans(store, since_ns, until_ns)
    picked = spans[spans["picked"].fillna(0).astype(bool)]
    roots = spans[spans["parent_span_id"].isna()].drop_duplicates("trace_id")
    root_ms = roots.set_index("trace_id")["duration_ms"]
    root_route = roots.set_index("trace_id")["route"]
    calls = spans[spans["span_class"].isin(["llm", "embedding", "template"])]
    rows_out: dict[str, dict[str, Any]] = {}
    found = [x for x in picked["cache_layer"].dropna().unique() if x != "provider"]
    for layer in [*[x for x in LAYERS if x in found], *sorted(set(found) - set(LAYERS))]:
        rows = picked[(picked["cache_layer"] == layer) & picked["cache_hit"].notna()].copy()
        if rows.empty:
            continue
        rows["hit"] = rows["cache_hit"].astype(int) != 0
        rows["route"] = rows["route"].fillna(rows["trace_id"].map(root_route)).fillna("")
        rows["request_ms"] = rows["trace_id"].map(root_ms).fillna(rows["duration_ms"])
        rows_out[layer] = {**_counts(rows), **_app_layer(rows, calls, table)}
    flagged = (picked["cache_layer"] == "provider") & picked["cache_hit"].notna()
    model_call = (picked["span_class"] == "llm") & picked["input_tokens"].notna()
    provider = picked[flagged | model_call].copy()
    if not provider.empty:
        read = provider["cache_read_tokens"].fillna(0) > 0
        provider["hit"] = read | (flagged[provider.index] & (provider["cache_hit"].fillna(0) != 0))
        rows_out["provider"] = {**_counts(provider), **_provider_layer(provider, table)}
    frame = pd.DataFrame.from_dict(rows_out, orient="index", columns=list(REPORT_COLUMNS))
    frame.index.name = "layer"
    for column in ("lookups", "hits", "misses", "unpriced_calls"):
        frame[column] = frame[column].astype("int64")
    for column in ("cold_misses", "expired_misses", "unique_keys"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _counts(rows: pd.DataFrame) -> dict[str, Any]:
    hits = int(rows["hit"].sum())
    cold, expired, unique = _key_stats(rows)
    misses = len(rows) - hits
    return {
        "lookups": len(rows),
        "hits": hits,
        "misses": misses,
        "hit_ratio": hits / len(rows),
        "cold_misses": cold,
        "cold_miss_share": cold / misses if misses and cold is not pd.NA else math.nan,
        "expired_misses": expired,
        "unique_keys": unique,
    }


# -- sizing from spans ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SizingReport:
    """How big one cache layer should be: its MRCs against the hit ratio it gets today."""

    layer: str
    target_hit_ratio: float
    requests: int
    unique_keys: int
    observed_hit_ratio: float
    objects: MissRatioCurve
    bytes: MissRatioCurve | None
    recommended_objects: int | None  # smallest LRU size reaching the target, None if none
    recommended_bytes: int | None
    equivalent_objects: int | None  # the LRU size whose hit ratio equals today's
    ttl_s: float | None = None
    shards_rate: float | None = None

    def summary(self) -> dict[str, Any]:
        """The headline figures as plain values, for recording from a notebook."""
        return {
            "layer": self.layer,
            "requests": self.requests,
            "unique_keys": self.unique_keys,
            "observed_hit_ratio": self.observed_hit_ratio,
            "target_hit_ratio": self.target_hit_ratio,
            "max_hit_ratio": 1.0 - self.objects.min_miss_ratio,
            "recommended_objects": self.recommended_objects,
            "recommended_bytes": self.recommended_bytes,
            "equivalent_objects": self.equivalent_objects,
        }


def sizing_report(
    store: Store,
    layer: str,
    *,
    target_hit_ratio: float = 0.8,
    ttl_s: float | None = None,
    shards_rate: float | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    points: int = 64,
) -> SizingReport:
    """MRCs (objects and bytes) of one layer's key sequence, and the size for a target.

    Keys are the lookups' ``cache_key_hash`` in ``start_ns`` order; a missing ``obj_bytes``
    takes the key's known size, else the layer median (no sizes at all: no byte curve).
    ``ttl_s`` makes reuses later than that miss; ``shards_rate`` samples (large traces).
    """
    store.require_sqlite("cache reports")
    if not 0.0 < target_hit_ratio <= 1.0:
        raise ConfigError(f"target_hit_ratio must be in (0, 1], got {target_hit_ratio}")
    where, args = window_clause(since_ns, until_ns)
    frame = pd.read_sql_query(
        "SELECT start_ns, cache_key_hash, cache_hit, obj_bytes FROM spans WHERE cache_layer = ? "
        f"AND cache_key_hash IS NOT NULL{where} ORDER BY start_ns, trace_id, span_id",
        store.conn,
        params=[layer, *args],
    )
    if frame.empty:
        known = [
            r[0]
            for r in store.conn.execute(
                "SELECT DISTINCT cache_layer FROM spans WHERE cache_key_hash IS NOT NULL "
                "AND cache_layer IS NOT NULL ORDER BY 1"
            )
        ]
        have = ", ".join(known) if known else "none"
        raise ConfigError(
            f"no lookups with a cache_key_hash for layer {layer!r} in the window; "
            f"layers with keys: {have}"
        )
    keys = frame["cache_key_hash"].to_numpy()
    times = (frame["start_ns"] - frame["start_ns"].iloc[0]).to_numpy(dtype=np.float64) / 1e9
    frame["obj_bytes"] = frame.groupby("cache_key_hash")["obj_bytes"].ffill()
    sizes = frame.groupby("cache_key_hash")["obj_bytes"].bfill()
    sizes = sizes.fillna(frame["obj_bytes"].median())

    def curve(unit_sizes: npt.NDArray[Any] | None) -> MissRatioCurve:
        options: dict[str, Any] = {"sizes": unit_sizes, "times": times, "ttl_s": ttl_s}
        if shards_rate is None:
            return mrc(keys, points=points, **options)
        return shards_mrc(keys, rate=shards_rate, points=points, **options)

    objects = curve(None)
    byte_curve = None if sizes.isna().all() else curve(sizes.to_numpy(dtype=np.int64))
    observed = float(frame["cache_hit"].dropna().astype(float).mean())
    return SizingReport(
        layer=layer,
        target_hit_ratio=target_hit_ratio,
        requests=len(frame),
        unique_keys=int(frame["cache_key_hash"].nunique()),
        observed_hit_ratio=observed,
        objects=objects,
        bytes=byte_curve,
        recommended_objects=objects.size_for(target_hit_ratio),
        recommended_bytes=None if byte_curve is None else byte_curve.size_for(target_hit_ratio),
        equivalent_objects=objects.size_for(observed) if observed > 0 else 0,
        ttl_s=ttl_s,
        shards_rate=shards_rate,
    )


# -- semantic caching ----------------------------------------------------------------

DEFAULT_THRESHOLDS: FloatArray = np.linspace(0.5, 0.99, 25)


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def threshold_sweep(
    pairs: Sequence[tuple[str, str, bool]], thresholds: ArrayLike = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Hit rate against false-hit rate of a semantic cache, per similarity threshold.

    Each pair (query, cached query, same intent) hits when the wordllama cosine similarity
    is at least the threshold. ``hit_rate`` is the share of pairs that hit; ``false_hit_rate``
    the share of hits that are not the same intent (NaN with no hits), with a 95% Wilson
    interval; ``precision`` = 1 - false_hit_rate and ``recall`` the share of same-intent
    pairs that hit.
    """
    from workbench import embeddings

    if not pairs:
        raise ConfigError(
            "threshold_sweep needs labelled pairs; load_pairs(path) reads them "
            "(the bundled demo's cache_pairs() returns 60)"
        )
    texts = sorted({text for a, b, _ in pairs for text in (a, b)})
    position = {text: i for i, text in enumerate(texts)}
    vectors = embeddings.embed_many(texts)
    left = vectors[[position[a] for a, _, _ in pairs]]
    right = vectors[[position[b] for _, b, _ in pairs]]
    similarity = np.einsum("ij,ij->i", left, right)
    same = np.array([bool(label) for _, _, label in pairs])
    rows = []
    for threshold in np.asarray(thresholds, dtype=np.float64):
        hit = similarity >= threshold
        hits, false_hits = int(hit.sum()), int((hit & ~same).sum())
        low, high = _wilson(false_hits, hits)
        rows.append(
            {
                "threshold": float(threshold),
                "hits": hits,
                "hit_rate": hits / len(pairs),
                "false_hits": false_hits,
                "false_hit_rate": false_hits / hits if hits else math.nan,
                "false_hit_low": low,
                "false_hit_high": high,
                "precision": (hits - false_hits) / hits if hits else math.nan,
                "recall": (hits - false_hits) / same.sum() if same.any() else math.nan,
            }
        )
    return pd.DataFrame(rows)


def load_pairs(path: str | Path) -> list[tuple[str, str, bool]]:
    """Labelled pairs from JSON Lines: ``{"query": ..., "cached": ..., "same": true|false}``.

    ``same`` says whether the cached answer is right for the query (same intent). Every bad
    line is named with its number and field; a file with none is refused.
    """
    file = Path(path)
    lines = read_text(file, "pairs").splitlines()
    pairs, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError) as exc:
            problems.append(f"{file}:{number}: not valid JSON: {str(exc)[:120]}")
            continue
        if not isinstance(doc, dict):
            problems.append(f"{file}:{number}: expected an object with query, cached, same")
            continue
        for key, kind in (("query", str), ("cached", str), ("same", bool)):
            if not isinstance(doc.get(key), kind):
                want = "true or false" if kind is bool else "a string"
                problems.append(
                    f"{file}:{number}: {key}: must be {want}, got {short(doc.get(key))}"
                )
                break
        else:
            pairs.append((doc["query"], doc["cached"], doc["same"]))
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ConfigError("\n".join(problems[:10]) + more)
    if not pairs:
        raise ConfigError(f"{file}: no pairs; write one JSON object per line: query, cached, same")
    return pairs


# -- the report a notebook records --------------------------------------------------------


@dataclass(frozen=True)
class ThresholdChoice:
    """The lowest semantic-cache threshold whose false hits stay under a ceiling, if any."""

    threshold: float | None  # the lowest whose 95% upper bound is within the ceiling
    observed: float | None  # else the lowest whose observed false-hit rate is within it
    message: str


def safe_threshold(sweep: pd.DataFrame, *, max_false_hit: float = 0.05) -> ThresholdChoice:
    """The lowest threshold of a :func:`threshold_sweep` whose false-hit interval stays under
    ``max_false_hit`` (by its 95% upper bound); else the lowest under it as observed."""
    ceiling = f"{max_false_hit:.0%}"
    safe = sweep[sweep["false_hit_high"] <= max_false_hit]
    if len(safe):
        low = float(safe["threshold"].min())
        text = f"lowest threshold whose false-hit interval stays under {ceiling}: {low:.3f}"
        return ThresholdChoice(low, low, text)
    best = sweep[sweep["false_hit_rate"] <= max_false_hit].head(1)
    text = f"no threshold keeps false hits under {ceiling} with 95% confidence"
    if not len(best):
        return ThresholdChoice(None, None, text)
    row = best.iloc[0]
    text += (
        f"; the lowest with at most {ceiling} observed is {row['threshold']:.3f} "
        f"(hit rate {row['hit_rate']:.2f}, false hits {row['false_hit_rate']:.1%}, "
        f"interval up to {row['false_hit_high']:.1%})"
    )
    return ThresholdChoice(None, float(row["threshold"]), text)


def layer_figure(layers: pd.DataFrame) -> go.Figure:
    """Hit ratio per layer by requests, tokens and money: a grouped bar chart."""
    import plotly.graph_objects as go

    bars = [("by requests", "hit_ratio"), ("by tokens", "token_hit_ratio")]
    bars.append(("by money", "usd_hit_ratio"))
    fig = go.Figure([go.Bar(name=n, x=layers.index, y=layers[c]) for n, c in bars])
    fig.update_layout(
        barmode="group",
        title="Hit ratio per layer",
        yaxis_title="hit ratio",
        yaxis_range=[0, 1],
        template="plotly_white",
        height=340,
    )
    return fig


def threshold_figure(sweep: pd.DataFrame) -> go.Figure:
    """A semantic cache's hit rate against its false-hit rate (with 95% intervals), by threshold."""
    import plotly.graph_objects as go

    error = {
        "type": "data",
        "symmetric": False,
        "array": sweep["false_hit_high"] - sweep["false_hit_rate"],
        "arrayminus": sweep["false_hit_rate"] - sweep["false_hit_low"],
    }
    fig = go.Figure(
        [
            go.Scatter(x=sweep["threshold"], y=sweep["hit_rate"], name="hit rate"),
            go.Scatter(
                x=sweep["threshold"],
                y=sweep["false_hit_rate"],
                name="false-hit rate",
                error_y=error,
            ),
        ]
    )
    fig.update_layout(
        title="Semantic cache: hit rate against false hits",
        xaxis_title="cosine similarity threshold",
        template="plotly_white",
        height=340,
    )
    return fig


_SIZING_COLUMNS = (
    "layer",
    "requests",
    "unique_keys",
    "observed_hit_ratio",
    "target_hit_ratio",
    "max_hit_ratio",
    "recommended_objects",
    "recommended_bytes",
    "equivalent_objects",
)


@dataclass
class CacheReport:
    """A window's cache economics per layer, each keyed layer's sizing, and how well SHARDS
    sampling tracks the exact curve on the busiest layer."""

    layers: pd.DataFrame  # layer_report
    sizing: dict[str, SizingReport]  # per keyed layer (all but "provider")
    busiest: str | None  # the keyed layer with the most requests; None without one
    curves: dict[str, MissRatioCurve]  # the busiest layer: exact, TTL-aware, SHARDS-sampled
    shards_error: float | None  # mean absolute error of the SHARDS curve against the exact
    shards_rate: float | None = None  # the SHARDS sampling rate asked for
    bounds: dict[str, Any] | None = None  # the window (see slo.window_bounds)

    def sizing_frame(self) -> pd.DataFrame:
        """Each keyed layer's sizing figures (:meth:`SizingReport.summary`), one row per layer."""
        rows = [r.summary() for r in self.sizing.values()]
        return pd.DataFrame(rows, columns=list(_SIZING_COLUMNS)).set_index("layer")

    def shards_text(self) -> str:
        """How closely the SHARDS-sampled curve follows the exact one on the busiest layer."""
        if self.busiest is None or self.shards_error is None:
            return "no keyed cache layer in the window: nothing to size"
        exact, sampled = self.curves[f"{self.busiest} exact"], list(self.curves.values())[-1]
        return (
            f"SHARDS at rate {self.shards_rate:g} on {exact.requests:,} requests "
            f"({sampled.sampled_requests:,} sampled): mean absolute error "
            f"{self.shards_error:.4f} against exact"
        )

    def checks(self) -> list[Check]:
        """None: cache figures inform sizing; they carry no budget."""
        return []

    def headline(self) -> dict[str, Any]:
        """Hit ratio per layer, net USD saved, size for the target per keyed layer, SHARDS error."""
        out: dict[str, Any] = {
            f"{layer} hit_ratio": round(float(row.hit_ratio), 4)
            for layer, row in self.layers.iterrows()
        }
        out["usd_saved"] = (
            round(float(self.layers["usd_saved"].sum()), 6) if len(self.layers) else 0.0
        )
        out |= {
            f"{layer} size_for_target": r.recommended_objects for layer, r in self.sizing.items()
        }
        if self.shards_error is not None:
            out["shards_mae"] = round(self.shards_error, 4)
        return out

    def provenance(self) -> Provenance:
        """Trace windows are not runs: nothing to name."""
        return Provenance()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: the headline, the layers and the sizing summaries."""
        layers = json.loads(self.layers.to_json(orient="index")) if len(self.layers) else {}
        return {
            "headline": self.headline(),
            "layers": layers,
            "sizing": [r.summary() for r in self.sizing.values()],
            "busiest": self.busiest,
        }

    def render_text(self) -> str:
        """The layers, and whether the window saved money or cost it."""
        usd = self.headline()["usd_saved"]
        layers = ", ".join(map(str, self.layers.index)) or "none"
        return f"layers: {layers}; net {'saving' if usd >= 0 else 'cost'} in the window"


def cache_report(
    store: Store,
    *,
    days: float = 7.0,
    as_of_ns: int | None = None,
    prices: Mapping[str, Price] | None = None,
    target_hit_ratio: float = 0.8,
    ttl_s: float | None = 300.0,
    shards_rate: float = 0.1,
) -> CacheReport:
    """Over the ``days`` ending at the newest span (or ``as_of_ns``): layer economics, sizing
    for ``target_hit_ratio`` per keyed layer, and on the busiest layer its exact, TTL-aware
    (``ttl_s``; None skips it) and SHARDS-sampled curves."""
    from workbench.slo import window_bounds

    bounds = window_bounds(store, days=days, as_of_ns=as_of_ns)
    window: dict[str, Any] = {"since_ns": bounds["since_ns"], "until_ns": bounds["until_ns"]}
    layers = layer_report(store, prices=prices, **window)
    keyed = [layer for layer in layers.index if layer != "provider"]
    sizing = {
        layer: sizing_report(store, layer, target_hit_ratio=target_hit_ratio, **window)
        for layer in keyed
    }
    if not sizing:
        return CacheReport(layers, sizing, None, {}, None, None, bounds)
    busiest = max(sizing, key=lambda layer: sizing[layer].requests)
    exact = sizing[busiest].objects
    curves = {f"{busiest} exact": exact}
    if ttl_s:
        curves[f"{busiest} TTL {ttl_s:g} s"] = sizing_report(
            store, busiest, ttl_s=ttl_s, target_hit_ratio=target_hit_ratio, **window
        ).objects
    sampled = sizing_report(
        store, busiest, shards_rate=shards_rate, target_hit_ratio=target_hit_ratio, **window
    ).objects
    curves[f"{busiest} SHARDS {shards_rate:g}"] = sampled
    error = mrc_error(exact, sampled)
    return CacheReport(layers, sizing, busiest, curves, error, shards_rate, bounds)
