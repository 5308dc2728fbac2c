"""A fixed-duration, deterministic workload that drives TriageApp in-process, for profiling.

It replays golden support-triage tickets (triage requests) and their expected summaries
(search queries) through :class:`~workbench.demo.app.TriageApp` in one single-threaded loop
for a fixed wall-clock time, so profiles of the same duration are comparable week to week.
The request sequence depends only on the seed and the mix: tickets repeat with a Zipf-like
skew (a few hot tickets, a long tail), so the caches have something to do.

The model runs in a separate demo server process (started here unless a ``model_url`` is
given), so the profile of this process shows the app's own work, not the model's.

The response cache is **off by default here** (``response_cache=0``, unlike the app's 1024):
with it on, repeated tickets skip the model call and most triage requests stop doing real
work (it then runs about ten times faster). Turn it on with ``--response-cache N`` to measure
what it saves. ``--embedding-cache 0`` makes every request embed its text with wordllama again
(its first 2,000 characters plus up to 8 sentences): embedding then takes about a third of
the loop's CPU time, on a par with the model call, instead of about 5%.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from workbench.demo.app import AppConfig, AppError, TriageApp, triage_dataset
from workbench.errors import ConfigError
from workbench.golden import Case

__all__ = [
    "DEFAULT_MIX",
    "KINDS",
    "WORKLOAD_CONFIG",
    "add_arguments",
    "command",
    "parse_mix",
    "run",
    "schedule",
]

KINDS = ("triage", "search")
DEFAULT_MIX: Mapping[str, float] = {"triage": 0.7, "search": 0.3}
# The workload's default app settings: every triage request calls the model (see above).
WORKLOAD_CONFIG = AppConfig(response_cache=0)
_ZIPF_S = 1.1


def parse_mix(text: str | Mapping[str, float]) -> dict[str, float]:
    """Request-kind weights from "triage=0.7,search=0.3" (or a mapping), normalised to sum 1."""
    if isinstance(text, Mapping):
        pairs = [(str(k), v) for k, v in text.items()]
    else:
        pairs = []
        for entry in (e.strip() for e in text.split(",")):
            kind, sep, value = entry.partition("=")
            if not entry or not sep:
                raise ConfigError(f"mix {text!r}: expected kind=weight pairs like {_mix_str()}")
            try:
                pairs.append((kind.strip(), float(value)))
            except ValueError:
                raise ConfigError(f"mix {text!r}: {value.strip()!r} is not a number") from None
    weights: dict[str, float] = {}
    for kind, weight in pairs:
        if kind not in KINDS:
            raise ConfigError(f"mix: unknown request kind {kind!r}; known: {', '.join(KINDS)}")
        if not (isinstance(weight, int | float) and 0.0 <= weight < float("inf")):
            raise ConfigError(f"mix: weight of {kind!r} must be a finite number >= 0")
        weights[kind] = weights.get(kind, 0.0) + float(weight)
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError(f"mix {text!r}: the weights add up to 0; give some kind a weight > 0")
    return {kind: weights.get(kind, 0.0) / total for kind in KINDS}


def schedule(
    cases: Sequence[Case], seed: int = 0, mix: Mapping[str, float] = DEFAULT_MIX
) -> Iterator[tuple[str, str, str]]:
    """The endless request sequence (kind, text, channel), fixed by the seed and the mix."""
    weights = parse_mix(mix)
    if not cases:
        raise ConfigError("the workload needs at least one golden case")
    rng = random.Random(seed)
    tickets = [(c.input["ticket"], c.input.get("channel", "email")) for c in cases]
    queries = [_query(c) for c in cases]
    rng.shuffle(tickets)
    rng.shuffle(queries)
    # Zipf-like popularity: the r-th item of the shuffled list is drawn with weight 1/r^s.
    cum = list(itertools.accumulate(1.0 / (r + 1) ** _ZIPF_S for r in range(len(cases))))
    p_triage = weights["triage"]
    while True:
        if rng.random() < p_triage:
            ticket, channel = rng.choices(tickets, cum_weights=cum)[0]
            yield "triage", ticket, channel
        else:
            yield "search", rng.choices(queries, cum_weights=cum)[0], ""


def run(
    duration_s: float,
    config: AppConfig | None = None,
    seed: int = 0,
    mix: Mapping[str, float] | str = DEFAULT_MIX,
) -> dict[str, Any]:
    """Drive a fresh TriageApp for duration_s seconds; return counts, rate and cache stats.

    Without ``config`` the workload's defaults apply (WORKLOAD_CONFIG: response cache off).
    Without ``config.model_url`` a demo model server child process runs for the duration.
    """
    from workbench.demo.server import DemoProcess

    if not duration_s > 0:
        raise ConfigError(f"duration must be > 0 seconds, got {duration_s!r}")
    weights = parse_mix(mix)
    config = config or WORKLOAD_CONFIG
    dataset = triage_dataset()
    requests = schedule(dataset.cases, seed, weights)
    with ExitStack() as stack:
        if not config.model_url:
            child = stack.enter_context(DemoProcess(seed=seed))
            config = dataclasses.replace(config, model_url=child.url)
        app = stack.enter_context(TriageApp(config))
        done = errors = 0
        start = time.perf_counter()
        deadline = start + duration_s
        while time.perf_counter() < deadline:
            kind, text, channel = next(requests)
            try:
                if kind == "triage":
                    app.triage(text, channel)
                else:
                    app.search(text)
            except AppError:
                errors += 1
            done += 1
        elapsed = time.perf_counter() - start
        stats = app.stats()
    return {
        "requests": done,
        "per_second": round(done / elapsed, 1),
        "errors": errors,
        "duration_s": round(elapsed, 3),
        "cache": stats["caches"],
        "endpoints": stats["requests"],
        "error_codes": stats["error_codes"],
        "seed": seed,
        "mix": weights,
        "config": {
            "model": config.model,
            "template_cache": config.template_cache,
            "embedding_cache": config.embedding_cache,
            "response_cache": config.response_cache,
            "kb_top_k": config.kb_top_k,
        },
    }


def _query(case: Case) -> str:
    """A search query for a case: its expected summary, else its ticket."""
    expected = case.expected
    if isinstance(expected, dict) and isinstance(expected.get("summary"), str):
        return str(expected["summary"])
    return str(case.input["ticket"])


def _mix_str(mix: Mapping[str, float] = DEFAULT_MIX) -> str:
    return ",".join(f"{k}={v:g}" for k, v in mix.items())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m workbench.demo workload``."""
    parser.add_argument("--duration", type=float, required=True, help="wall-clock seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mix", default=_mix_str(), help=f"request kinds, default {_mix_str()}")
    parser.add_argument(
        "--model-url", default=None, help="model server base URL; omitted: start a child server"
    )
    parser.add_argument("--model", default=WORKLOAD_CONFIG.model)
    parser.add_argument("--template-cache", type=int, default=WORKLOAD_CONFIG.template_cache)
    parser.add_argument("--embedding-cache", type=int, default=WORKLOAD_CONFIG.embedding_cache)
    parser.add_argument(
        "--response-cache",
        type=int,
        default=WORKLOAD_CONFIG.response_cache,
        help="default 0: every triage request calls the model",
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``python -m workbench.demo workload``: run(), print the one JSON result line."""
    # jsonschema imports rfc3987_syntax, if installed, only to check the "iri" string
    # format, which the demo's schema does not use; building its grammar costs about a
    # second of every start-up and would dominate short profiles. This process skips it.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    try:
        config = dataclasses.replace(
            WORKLOAD_CONFIG,
            model_url=args.model_url,
            model=args.model,
            template_cache=args.template_cache,
            embedding_cache=args.embedding_cache,
            response_cache=args.response_cache,
        )
        result = run(args.duration, config, seed=args.seed, mix=args.mix)
    except ConfigError as exc:
        parser.error(str(exc))
    except RuntimeError as exc:  # the demo server child did not start
        print(f"workload: {exc}", file=sys.stderr)
        return 1
    line = json.dumps(result, sort_keys=False)
    print(line, flush=True)
    if args.json_out is not None:
        args.json_out.write_text(line + "\n", encoding="utf-8")
    return 0
