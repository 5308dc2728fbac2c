"""The one price table: defaults, YAML rules, family cache rates, name fallbacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import prices
from workbench.errors import ConfigError
from workbench.prices import Price, PriceBook, default_prices, load_prices, span_cost


def test_default_table_has_the_demo_models_and_list_prices() -> None:
    table = default_prices()
    assert table["triage-v1"] == Price(0.15, 0.60, 0.075, 0.1875)
    assert table["triage-v2"].cache_write == pytest.approx(1.25 * 0.20)
    assert table["claude-sonnet-4"] == Price(3.0, 15.0, 0.30, 3.75)
    assert table["gpt-4o"].rates("gpt-4o") == (2.5, 10.0, 1.25, 3.125)


def test_set_price_changes_the_built_in_table_and_call_costs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prices, "_LIST_PRICES", dict(prices._LIST_PRICES))
    monkeypatch.setattr(prices, "_BOOK", [])
    assert prices.cost_usd("triage-v1", 1_000_000, 0) == pytest.approx(0.15)
    assert prices.cost_usd("triage-v1-2026-01-01", 0, 1_000_000) == pytest.approx(0.60)
    assert prices.cost_usd("unpriced", 10, 10) is None
    assert prices.cost_usd("triage-v1", None, 10) is None
    prices.set_price("mine", 1.0, 2.0)
    assert default_prices()["mine"] == Price(1.0, 2.0)
    assert prices.cost_usd("mine", 1_000_000, 1_000_000) == pytest.approx(3.0)
    with pytest.raises(ConfigError, match=r"mine\.output: -1"):
        prices.set_price("mine", 1.0, -1)


def test_unset_cache_rates_follow_the_model_family() -> None:
    assert Price(10.0, 20.0).rates("claude-x") == (10.0, 20.0, 1.0, 12.5)
    assert Price(10.0, 20.0).rates("my-model") == (10.0, 20.0, 5.0, 12.5)
    # 1000 input of which 100 read and 100 written, 10 output
    assert Price(10.0, 20.0).cost(1000, 10, 100, 100, model="claude-x") == pytest.approx(
        (800 * 10 + 10 * 20 + 100 * 1.0 + 100 * 12.5) / 1e6
    )
    assert span_cost("claude-x", 300, 0, 100, 100, prices={"claude-x": Price(10.0, 20.0)}) == (
        pytest.approx((100 * 10 + 100 * 1.0 + 100 * 12.5) / 1e6)
    )
    assert span_cost("unknown-model", 10, 10) is None


def test_lookup_falls_back_from_dated_and_prefixed_names() -> None:
    book = PriceBook({"my-model": Price(1.0, 2.0)})
    assert book.price("openai/gpt-4o-mini-2024-07-18") == default_prices()["gpt-4o-mini"]
    assert book.price("my-model-v3") == Price(1.0, 2.0)
    assert book.price("other") is None and book.rates("other") is None
    assert book.cost("my-model", None, None) is None  # no tokens: no cost
    assert book.cost("my-model", 1000, 100) == pytest.approx((1000 * 1.0 + 100 * 2.0) / 1e6)


def test_load_prices_reads_yaml_with_optional_cache_rates(tmp_path: Path) -> None:
    good = tmp_path / "prices.yaml"
    good.write_text(
        "m1: {input: 1, output: 2, cache_read: 0.1}\n"
        "m2: {input: 3, output: 4}\n"
        "m3: {input: 1, output: 2, cache_read: 0.1, cache_write: 1.25}\n"
    )
    assert load_prices(good) == {
        "m1": Price(1.0, 2.0, 0.1, None),
        "m2": Price(3.0, 4.0),
        "m3": Price(1.0, 2.0, 0.1, 1.25),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("m1: {input: -1, output: 2}\n", r"bad\.yaml: m1\.input: -1 is not a price >= 0"),
        ("m1: {input: 1}\n", r"bad\.yaml: m1: missing output; 'input' and 'output' are required"),
        ("m1: {input: 1, output: .nan}\n", r"m1\.output: nan is not a price"),
        ("m1: {input: true, output: 2}\n", r"m1\.input: True is not a price"),
        ("m1: {input: 1, output: 2, cache: 1}\n", r"m1: unknown key\(s\) cache; use input"),
        ("m1: 3\n", r"bad\.yaml: m1: expected a mapping"),
        ("- m1\n", r"bad\.yaml: a price file maps model names"),
        ("", r"bad\.yaml: a price file maps model names"),
        ("m1: {input: [1\n", r"bad\.yaml:\d+: the price file is not valid YAML"),
    ],
)
def test_load_prices_names_the_file_and_the_bad_entry(
    tmp_path: Path, text: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_prices(bad)


def test_load_prices_names_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read the price file"):
        load_prices(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("m\xe9: {input: 1, output: 2}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.yaml: cannot read the price file: not UTF-8"):
        load_prices(latin)
