"""The bundled demo target: a support-triage model server (two versions and a judge), its app.

The library reaches the demo through one hook, :func:`register`: the provider registry
imports this package and calls it the first time a ``demo:`` target is looked up
(``workbench.providers._PLUGINS``). Nothing else in the library imports the demo; the
CLI's demo commands (``workbench demo ...``, ``workbench latency --demo`` and the default
config of ``workbench weekly``) and the notebooks use what this package exposes:

- ``PINS`` and ``WEEKLY``: the demo's profile pins and weekly config files;
- :func:`cache_pairs` and :func:`weekly_config`: the same data, loaded;
- ``workbench.demo.stack``: the demo app and its model server on loopback, for load tests;
- ``python -m workbench.demo <command>``: the servers, the workload and the traffic
  generator as processes (``workbench/demo/__main__.py``).

Importing this package is cheap: the servers and the app load only when used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.weekly import WeeklyConfig

__all__ = ["CACHE_PAIRS", "PINS", "WEEKLY", "cache_pairs", "register", "weekly_config"]

_HERE = Path(__file__).parent
PINS = _HERE / "pins.yaml"
WEEKLY = _HERE / "weekly.yaml"
CACHE_PAIRS = _HERE / "cache_pairs.json"


def register() -> None:
    """Register the ``demo:<version>`` provider (the hook the provider registry calls)."""
    from workbench import providers
    from workbench.demo.provider import OPTIONS, SERVER_OPTIONS, DemoProvider

    providers.register(
        "demo", DemoProvider, options=OPTIONS, server_options=SERVER_OPTIONS, replace=True
    )


def cache_pairs() -> list[tuple[str, str, bool]]:
    """60 labelled support-question pairs: 30 paraphrases (True), 30 near-misses (False).

    The near-misses differ by a negation, an antonym or an entity (order number, country,
    month), the cases where embedding similarity alone returns someone else's answer.
    """
    doc = json.loads(CACHE_PAIRS.read_text(encoding="utf-8"))
    return [(p["query"], p["cached"], p["same"]) for p in doc]


def weekly_config() -> WeeklyConfig:
    """The bundled demo's weekly run (``workbench/demo/weekly.yaml``)."""
    from workbench import weekly

    return weekly.load_config(WEEKLY)
