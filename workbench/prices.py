"""Model prices in USD per million tokens: one table for trace costs and cache economics.

A price has an input and an output rate and, optionally, cache-read and cache-write rates.
An unset cache rate follows the model's family: reads cost 0.1x the input price for Claude
models (Anthropic's rate) and 0.5x for the others (OpenAI-style), writes 1.25x (Anthropic's
5-minute write; providers without a write premium report no cache writes). The model, not
the record's provider, decides, so one call costs the same however it was sent.

The built-in table (``default_prices()``) holds the demo models and list prices with cache
rates; ``set_price`` adds or changes a model in it for this process. A YAML file read by ``load_prices`` and prices passed as ``prices=`` are laid
over it. Lookups fall back from a dated or prefixed name to its base: ``openai/gpt-4o`` and
``gpt-4o-mini-2024-07-18`` are priced as ``gpt-4o`` and ``gpt-4o-mini``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workbench.configfile import read_yaml
from workbench.errors import ConfigError

__all__ = [
    "FIELDS",
    "Price",
    "PriceBook",
    "cost_usd",
    "default_prices",
    "load_prices",
    "set_price",
    "span_cost",
]

FIELDS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class Price:
    """USD per million tokens: input, output, and cache reads and writes (None: by family)."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def rates(self, model: str = "") -> tuple[float, float, float, float]:
        """(input, output, cache read, cache write), unset cache rates from the model's family."""
        read = self.cache_read
        if read is None:
            read = self.input * (0.1 if "claude" in model.lower() else 0.5)
        write = self.cache_write if self.cache_write is not None else self.input * 1.25
        return self.input, self.output, read, write

    def cost(
        self,
        input_tokens: float,
        output_tokens: float,
        read: float = 0.0,
        write: float = 0.0,
        *,
        model: str = "",
    ) -> float:
        """USD of one call; ``input_tokens`` includes the cache reads and writes."""
        inp, out, r, w = self.rates(model)
        uncached = max(input_tokens - read - write, 0.0)
        return (uncached * inp + output_tokens * out + read * r + write * w) / 1e6


# List prices (USD per million tokens) with their cache rates; the demo models' cache rates
# are 0.5x (reads) and 1.25x (writes) their input price.
_LIST_PRICES: dict[str, Price] = {
    "triage-v1": Price(0.15, 0.60, cache_read=0.075, cache_write=0.1875),
    "triage-v2": Price(0.20, 0.80, cache_read=0.10, cache_write=0.25),
    "judge": Price(0.10, 0.40, cache_read=0.05, cache_write=0.125),
    "gpt-4o-mini": Price(0.15, 0.60, cache_read=0.075),
    "gpt-4o": Price(2.50, 10.00, cache_read=1.25),
    "gpt-4.1": Price(2.00, 8.00, cache_read=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, cache_read=0.10),
    "claude-3-5-haiku": Price(0.80, 4.00, cache_read=0.08, cache_write=1.00),
    "claude-3-5-sonnet": Price(3.00, 15.00, cache_read=0.30, cache_write=3.75),
    "claude-3-7-sonnet": Price(3.00, 15.00, cache_read=0.30, cache_write=3.75),
    "claude-sonnet-4": Price(3.00, 15.00, cache_read=0.30, cache_write=3.75),
    "claude-opus-4": Price(15.00, 75.00, cache_read=1.50, cache_write=18.75),
}


def default_prices() -> dict[str, Price]:
    """The built-in table: list prices with cache rates, and any ``set_price`` changes."""
    return dict(_LIST_PRICES)


def set_price(
    model: str,
    input_per_mtok: float,
    output_per_mtok: float,
    *,
    cache_read: float | None = None,
    cache_write: float | None = None,
) -> None:
    """Price a model (USD per million tokens) in the built-in table, for this process."""
    for name, value in (("input", input_per_mtok), ("output", output_per_mtok),
                        ("cache_read", cache_read), ("cache_write", cache_write)):  # fmt: skip
        if value is not None and (isinstance(value, bool) or not value >= 0):
            raise ConfigError(f"{model}.{name}: {value!r} is not a price >= 0 (USD per million)")
    _LIST_PRICES[model] = Price(input_per_mtok, output_per_mtok, cache_read, cache_write)
    _BOOK.clear()


_BOOK: list[PriceBook] = []  # the built-in table's book, made on first use


def cost_usd(
    model: str, tokens_in: int | None, tokens_out: int | None, cached_tokens: int | None = None
) -> float | None:
    """USD of one eval call, cache reads (part of ``tokens_in``) at the cache-read rate.

    None when the model or a count is unknown.
    """
    if tokens_in is None or tokens_out is None:
        return None
    if not _BOOK:
        _BOOK.append(PriceBook())
    return _BOOK[0].cost(model, tokens_in, tokens_out, cached_tokens or 0, 0)


def load_prices(path: str | os.PathLike[str]) -> dict[str, Price]:
    """Read a YAML price file ``{model: {input, output, cache_read?, cache_write?}}`` (USD/Mtok)."""
    path = Path(path)
    doc = read_yaml(path, "price file")
    if not isinstance(doc, dict) or not doc:
        raise ConfigError(
            f"{path}: a price file maps model names to {{input, output, cache_read, "
            "cache_write}} in USD per million tokens, e.g. 'my-model: {input: 1.0, output: 4.0}'"
        )
    table: dict[str, Price] = {}
    for model, entry in doc.items():
        where = f"{path}: {model}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with {', '.join(FIELDS)}")
        unknown = sorted(map(str, set(entry) - set(FIELDS)))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; use {', '.join(FIELDS)}"
            )
        missing = [key for key in ("input", "output") if entry.get(key) is None]
        if missing:
            raise ConfigError(
                f"{where}: missing {', '.join(missing)}; 'input' and 'output' are required "
                "(USD per million tokens), the cache rates optional"
            )
        values: dict[str, float | None] = {}
        for key in FIELDS:
            value = entry.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0
            ):
                raise ConfigError(f"{where}.{key}: {value!r} is not a price >= 0 (USD per million)")
            values[key] = None if value is None else float(value)
        table[str(model)] = Price(
            values["input"] or 0.0,
            values["output"] or 0.0,
            values["cache_read"],
            values["cache_write"],
        )
    return table


class PriceBook:
    """Model name -> rates over the built-in table, with fallback lookups memoised."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.table = {**default_prices(), **(prices or {})}
        self._memo: dict[str, tuple[float, float, float, float] | None] = {}

    def price(self, model: str) -> Price | None:
        """The model's price: its exact name, else without a gateway prefix or date suffix."""
        name = model.rsplit("/", 1)[-1]  # "openai/gpt-4o", "models/..." gateway prefixes
        price = self.table.get(model) or self.table.get(name)
        while price is None and "-" in name:
            name = name.rsplit("-", 1)[0]  # "gpt-4o-mini-2024-07-18" -> "gpt-4o-mini"
            price = self.table.get(name)
        return price

    def rates(self, model: str) -> tuple[float, float, float, float] | None:
        """(input, output, cache read, cache write) of a model, None when it is unpriced."""
        try:
            return self._memo[model]
        except KeyError:
            pass
        price = self.price(model)
        found = price.rates(model) if price is not None else None
        self._memo[model] = found
        return found

    def cost(
        self,
        model: str | None,
        inp: int | None,
        out: int | None,
        read: int | None = None,
        write: int | None = None,
    ) -> float | None:
        """USD of one call with normalised tokens (input includes the cache), None if unpriced."""
        if model is None or (inp is None and out is None):
            return None
        rates = self.rates(model)
        if rates is None:
            return None
        r, w = read or 0, write or 0
        uncached = max((inp or 0) - r - w, 0)
        return (uncached * rates[0] + (out or 0) * rates[1] + r * rates[2] + w * rates[3]) / 1e6


def span_cost(
    model: str,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    *,
    prices: Mapping[str, Price] | None = None,
) -> float | None:
    """USD for one call with normalised tokens (input includes the cache), None when unpriced."""
    book = PriceBook(prices)
    return book.cost(model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
