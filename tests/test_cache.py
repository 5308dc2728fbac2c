"""Cache economics from spans: layer reports, sizing, semantic-cache threshold sweeps."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from workbench.cache import layer_report, load_pairs, sizing_report, threshold_sweep
from workbench.demo import cache_pairs
from workbench.errors import ConfigError
from workbench.prices import Price
from workbench.store import Store

# -- economics from spans ------------------------------------------------------------

S = 1_000_000_000  # ns per second
SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, start_ns, duration_ms, route, span_class, cache_layer, "
    "cache_key_hash, cache_hit, obj_bytes, ttl_s, request_model, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, cost_usd"
)


def insert(store: Store, rows: list[dict[str, Any]]) -> None:
    names = [c.strip() for c in SPAN_COLUMNS.split(",")]
    store.conn.executemany(
        f"INSERT INTO spans ({SPAN_COLUMNS}) VALUES ({', '.join('?' * len(names))})",
        [tuple(row.get(n) for n in names) for row in rows],
    )


def request(
    trace: str,
    at_s: float,
    root_ms: float,
    key: str,
    hit: bool,
    llm: dict[str, Any] | None = None,
    route: str = "/triage",
) -> list[dict[str, Any]]:
    """A root span, a response_exact lookup and, on a miss, a triage-v1 model call."""
    start = int(at_s * S)
    root = {"trace_id": trace, "span_id": "r", "start_ns": start, "duration_ms": root_ms}
    lookup = {
        "trace_id": trace,
        "span_id": "c",
        "parent_span_id": "r",
        "start_ns": start + 1,
        "duration_ms": 2.0,
        "route": route,
        "span_class": "cache",
        "cache_layer": "response_exact",
        "cache_key_hash": key,
        "cache_hit": int(hit),
        "obj_bytes": 100 if key == "k1" else 300,
        "ttl_s": 60.0,
    }
    rows = [root | {"route": route, "span_class": "api"}, lookup]
    if llm:
        call = {"trace_id": trace, "span_id": "m", "parent_span_id": "r", "start_ns": start + 2}
        rows.append(
            call | {"span_class": "llm", "request_model": "triage-v1", "route": route} | llm
        )
    return rows


def call(
    ms: float, tokens_in: int, tokens_out: int, read: int = 0, write: int = 0
) -> dict[str, Any]:
    return {
        "duration_ms": ms,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
    }


@pytest.fixture
def traced(store: Store) -> Store:
    insert(
        store,
        [
            *request("t1", 1, 500, "k1", False, call(400, 1000, 200, write=600)),
            *request("t2", 2, 20, "k1", True),
            *request("t3", 3, 700, "k2", False, call(600, 2000, 400, read=800)),
            *request("t4", 4, 30, "k2", True),
            *request("t5", 5, 15, "k1", True),
            *request("t6", 100, 450, "k1", False, call(400, 1000, 200)),  # 95 s > ttl 60 s
        ],
    )
    return store


def test_layer_report_matches_hand_computed_figures(traced: Store) -> None:
    report = layer_report(traced)
    assert list(report.index) == ["response_exact", "provider"]
    exact = report.loc["response_exact"]
    assert (exact["lookups"], exact["hits"], exact["misses"]) == (6, 3, 3)
    assert exact["hit_ratio"] == 0.5
    assert (exact["cold_misses"], exact["expired_misses"], exact["unique_keys"]) == (2, 1, 2)
    assert exact["cold_miss_share"] == pytest.approx(2 / 3)
    # Misses cost 1200, 2400 and 1200 tokens: each hit avoids the mean, 1600.
    assert exact["tokens_saved"] == pytest.approx(4800)
    assert exact["token_hit_ratio"] == pytest.approx(0.5)
    # t1: 400 uncached x 0.15 + 600 written x 0.1875 + 200 out x 0.60 = 292.5 uUSD;
    # t3: 1200 x 0.15 + 800 read x 0.075 + 400 x 0.60 = 480; t6: 270. Hits avoid the mean.
    spent = (292.5 + 480 + 270) / 1e6
    assert exact["usd_saved"] == pytest.approx(spent)
    assert exact["usd_hit_ratio"] == pytest.approx(0.5)
    assert exact["latency_saved_s"] == pytest.approx(3 * (400 + 600 + 400) / 3 / 1000)
    assert exact["hit_p50_ms"] == 20 and exact["miss_p50_ms"] == 500
    assert exact["lookup_p50_ms"] == 2.0 and exact["unpriced_calls"] == 0

    provider = report.loc["provider"]
    assert (provider["lookups"], provider["hits"]) == (3, 1)
    assert provider["tokens_saved"] == 800
    assert provider["token_hit_ratio"] == pytest.approx(800 / 4000)
    gross, premium = 800 * (0.15 - 0.075) / 1e6, 600 * (0.1875 - 0.15) / 1e6
    assert provider["usd_write_premium"] == pytest.approx(premium)
    assert provider["usd_saved"] == pytest.approx(gross - premium)
    assert provider["usd_hit_ratio"] == pytest.approx((gross - premium) / (spent + gross - premium))
    assert provider["hit_p50_ms"] == 600


def test_layer_report_window_routes_and_prices(traced: Store) -> None:
    early = layer_report(traced, until_ns=50 * S).loc["response_exact"]
    assert (early["lookups"], early["hits"], early["expired_misses"]) == (5, 3, 0)
    # Misses t1 and t3 cost 1200 and 2400 tokens; the mean is 1800.
    assert early["tokens_saved"] == pytest.approx(3 * 1800)
    insert(traced, request("t7", 200, 10, "k9", True, route="/search"))  # no /search misses
    late = layer_report(traced, since_ns=50 * S).loc["response_exact"]
    assert (late["lookups"], late["hits"], late["cold_misses"]) == (2, 1, 1)  # t6: first in window
    assert late["tokens_saved"] == pytest.approx(1200)  # the layer's mean miss (t6)
    free = layer_report(traced, prices={"triage-v1": Price(0, 0, 0, 0)})
    assert free.loc["response_exact", "usd_saved"] == 0
    priced = layer_report(traced)
    # A dated name is priced as its base model; a model in no table is unpriced.
    traced.conn.execute(
        "UPDATE spans SET request_model = 'triage-v1-2026-01-01' WHERE request_model IS NOT NULL"
    )
    dated = layer_report(traced)
    assert dated.loc["response_exact", "usd_saved"] == pytest.approx(
        priced.loc["response_exact", "usd_saved"]
    )
    assert dated.loc["provider", "unpriced_calls"] == 0
    traced.conn.execute(
        "UPDATE spans SET request_model = 'in-house-7b' WHERE request_model IS NOT NULL"
    )
    unpriced = layer_report(traced)
    assert unpriced.loc["provider", "unpriced_calls"] == 3
    assert unpriced.loc["response_exact", "unpriced_calls"] == 3
    mine = layer_report(traced, prices={"in-house-7b": Price(1.0, 2.0)})
    assert mine.loc["provider", "unpriced_calls"] == 0
    assert layer_report(traced, since_ns=10**12).empty


def test_layer_report_prices_hits_per_route_and_nets_lookup_cost(store: Store) -> None:
    rows = [
        *request("a1", 1, 900, "x", False, call(800, 900, 100), route="/long"),
        *request("a2", 2, 10, "x", True, route="/long"),
        *request("b1", 3, 90, "y", False, call(80, 90, 10), route="/short"),
        *request("b2", 4, 10, "y", True, route="/short"),
        *request("b3", 5, 10, "y", True, route="/short"),
    ]
    for row in rows:
        if row["span_id"] == "c":
            row["cache_layer"] = "response_semantic"
            row["cost_usd"] = 1e-6  # the query embedding each semantic lookup needs
    # A response cache reported on the model-call span itself: a hit there is no prompt hit.
    rows += request("c1", 6, 5, "z", True)
    rows[-1] |= {"span_class": "llm", "input_tokens": 0, "output_tokens": 0}
    insert(store, rows)
    report = layer_report(store)
    semantic = report.loc["response_semantic"]
    assert semantic["tokens_saved"] == pytest.approx(1000 + 2 * 100)
    long_cost, short_cost = (900 * 0.15 + 100 * 0.6) / 1e6, (90 * 0.15 + 10 * 0.6) / 1e6
    assert semantic["usd_saved"] == pytest.approx(long_cost + 2 * short_cost - 5e-6)
    assert semantic["latency_saved_s"] == pytest.approx((800 + 2 * 80) / 1000)
    assert report.loc["response_exact", "hits"] == 1
    assert report.loc["provider", "lookups"] == 3 and report.loc["provider", "hits"] == 0


def test_sizing_report_from_spans(traced: Store) -> None:
    # Keys k1 k1 k2 k2 k1 k1: distances -, 1, -, 1, 2, 1; hit ratio 3/6 at 1, 4/6 at 2.
    report = sizing_report(traced, "response_exact", target_hit_ratio=0.6)
    assert report.requests == 6 and report.unique_keys == 2
    assert report.observed_hit_ratio == 0.5
    assert report.recommended_objects == 2
    assert report.equivalent_objects == 1
    assert report.bytes is not None and report.bytes.unit == "bytes"
    assert report.recommended_bytes == 400  # k1 (100) + k2 (300)
    assert sizing_report(traced, "response_exact", target_hit_ratio=0.7).recommended_objects is None
    # With a 60 s TTL the last k1 (95 s after the one before) misses: 2/6 at 1, 3/6 at 2.
    with_ttl = sizing_report(traced, "response_exact", ttl_s=60, target_hit_ratio=0.5)
    assert with_ttl.objects.expired_misses == 1 and with_ttl.recommended_objects == 2
    assert with_ttl.summary()["max_hit_ratio"] == pytest.approx(0.5)
    sampled = sizing_report(traced, "response_exact", shards_rate=1.0, target_hit_ratio=0.6)
    assert sampled.recommended_objects == 2 and sampled.objects.sampling_rate == 1.0
    with pytest.raises(ConfigError, match="layers with keys: response_exact"):
        sizing_report(traced, "embedding")


# -- semantic caching ----------------------------------------------------------------


def test_demo_pairs_are_balanced_and_distinct() -> None:
    pairs = cache_pairs()
    assert len(pairs) == 60 and sum(label for _, _, label in pairs) == 30
    assert len({(a, b) for a, b, _ in pairs}) == 60


def test_threshold_sweep_shows_the_trade_off() -> None:
    sweep = threshold_sweep(cache_pairs())
    assert len(sweep) == 25
    for column in ("hit_rate", "false_hit_rate", "precision", "recall"):
        values = sweep[column].dropna()
        assert ((values >= 0) & (values <= 1)).all()
    assert sweep["hit_rate"].is_monotonic_decreasing
    assert sweep["recall"].is_monotonic_decreasing
    low, high = sweep.iloc[0], sweep.iloc[-1]
    assert low["hit_rate"] > 0.5 and low["recall"] > 0.4 and low["false_hits"] > 0
    assert high["hits"] == 0 and math.isnan(high["false_hit_rate"])
    # Raising the threshold costs recall long before it removes the near-miss false hits.
    middle = sweep[(sweep["recall"] > 0) & (sweep["recall"] < low["recall"])]
    assert not middle.empty and (middle["false_hit_rate"] > 0.3).all()
    assert (sweep["false_hit_low"].dropna() <= sweep["false_hit_rate"].dropna()).all()


def test_threshold_sweep_on_hand_labelled_pairs() -> None:
    pairs = [("refund my order", "refund my order", True), ("reset password", "refund", False)]
    sweep = threshold_sweep(pairs, thresholds=[0.99])
    assert sweep.loc[0, "hits"] == 1 and sweep.loc[0, "false_hit_rate"] == 0
    assert sweep.loc[0, "recall"] == 1
    with pytest.raises(ConfigError, match="load_pairs"):
        threshold_sweep([])


def test_load_pairs_reads_labelled_pairs(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"query": "cancel my plan", "cached": "how do I cancel?", "same": true}\n\n'
        '{"query": "turn on 2FA", "cached": "turn off 2FA", "same": false}\n',
        encoding="utf-8",
    )
    assert load_pairs(path) == [
        ("cancel my plan", "how do I cancel?", True),
        ("turn on 2FA", "turn off 2FA", False),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"query": "a", "cached": "b", "same": "yes"}\n',
            r"pairs\.jsonl:1: same: must be true or false",
        ),
        ('{"query": "a", "same": true}\n', r"pairs\.jsonl:1: cached: must be a string, got None"),
        (
            'ok\n{"query": "a", "cached": "b", "same": true}\n[1]\n',
            r"pairs\.jsonl:1: not valid JSON(.|\n)*:3: expected an object",
        ),
        ("\n\n", r"pairs\.jsonl: no pairs"),
        ("[" * 100_000, r"pairs\.jsonl:1: not valid JSON"),
    ],
)
def test_load_pairs_names_every_bad_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_pairs(path)
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_pairs(path)


# -- the report a notebook records ------------------------------------------------------


def test_cache_report_headline_from_spans(traced: Store) -> None:
    from workbench.cache import cache_report

    report = cache_report(traced, target_hit_ratio=0.6, ttl_s=60, shards_rate=1.0)
    assert report.busiest == "response_exact"
    assert list(report.curves) == [
        "response_exact exact",
        "response_exact TTL 60 s",
        "response_exact SHARDS 1",
    ]
    assert report.shards_error == 0.0  # a rate of 1 samples every key
    headline = report.headline()
    assert headline["response_exact hit_ratio"] == 0.5
    assert headline["response_exact size_for_target"] == 2
    assert headline["shards_mae"] == 0.0
    assert report.checks() == []
    assert list(report.sizing_frame().index) == ["response_exact"]
    assert "SHARDS at rate 1 on 6 requests" in report.shards_text()
    assert report.render_text().startswith("layers: response_exact, provider; net ")
    assert json.loads(json.dumps(report.to_dict()))["busiest"] == "response_exact"


def test_cache_report_without_a_keyed_layer(store: Store) -> None:
    from workbench.cache import cache_report

    root, _lookup, model_call = request("t1", 1, 500, "k1", False, call(400, 1000, 200, read=600))
    insert(store, [root, model_call])
    report = cache_report(store)
    assert report.busiest is None and report.curves == {} and report.sizing_frame().empty
    assert "nothing to size" in report.shards_text()
    assert "shards_mae" not in report.headline()


def test_safe_threshold_names_the_lowest_safe_one_or_the_best_observed() -> None:
    import pandas as pd

    from workbench.cache import safe_threshold

    sweep = pd.DataFrame(
        {
            "threshold": [0.5, 0.7, 0.9],
            "hit_rate": [0.9, 0.6, 0.2],
            "false_hit_rate": [0.3, 0.04, 0.0],
            "false_hit_high": [0.4, 0.12, 0.03],
        }
    )
    choice = safe_threshold(sweep)
    assert (choice.threshold, choice.observed) == (0.9, 0.9)
    assert choice.message.endswith("under 5%: 0.900")
    loose = safe_threshold(sweep, max_false_hit=0.01)
    assert loose.threshold is None and loose.observed == 0.9
    assert loose.message.startswith("no threshold keeps false hits under 1% with 95% confidence")
    assert safe_threshold(sweep.iloc[:1]).observed is None
