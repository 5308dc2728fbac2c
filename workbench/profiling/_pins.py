"""Pinned hot paths: loading pins from YAML and checking them against a profile."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from workbench.errors import ConfigError
from workbench.profiling._results import Pin, PinCheck
from workbench.profiling._store import load_stacks, profile_row
from workbench.store import Store
from workbench.text import clip, finite

THRESHOLDS = ("max_total_share", "max_total_s", "max_self_share", "max_self_s")
_SELECTORS = ("function", "pattern", "regex")
_PIN_KEYS = frozenset({*_SELECTORS, *THRESHOLDS, "name"})


def load_pins(path: str | os.PathLike[str]) -> list[Pin]:
    """Pinned hot paths from YAML (``pins: [{function|pattern|regex, max_*}]``); errors name file:line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the pins: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{file}:{line}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(
            f"{file}:1: nested too deeply to read; pins are a list of flat mappings"
        ) from None
    if isinstance(node, yaml.MappingNode):
        items = [v for k, v in node.value if k.value == "pins"]
        unknown = [k for k, _ in node.value if k.value != "pins"]
        if unknown:
            raise ConfigError(
                f"{file}:{unknown[0].start_mark.line + 1}: {clip(str(unknown[0].value), 60)}: "
                "unknown key; the file holds 'pins:'"
            )
        node = items[0] if items else None
    if not isinstance(node, yaml.SequenceNode):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(
            f"{file}:{line}: expected 'pins:' with a list of "
            "{function|pattern|regex: ..., max_total_share: 0.3, max_total_s: 2.0}"
        )
    pins: list[Pin] = []
    errors: list[str] = []
    for i, item in enumerate(node.value):
        where = f"{file}:{item.start_mark.line + 1}"
        if not isinstance(item, yaml.MappingNode):
            errors.append(
                f"{where}: pins[{i}]: each pin is a mapping such as {{function: name, max_total_share: 0.3}}"
            )
            continue
        pin, problems = _parse_pin(item, f"pins[{i}]", str(file))
        errors.extend(problems)
        if pin is not None:
            pins.append(pin)
    if errors:
        raise ConfigError("bad pins:\n" + "\n".join(errors))
    return pins


def _parse_pin(item: yaml.MappingNode, label: str, file: str) -> tuple[Pin | None, list[str]]:
    errors: list[str] = []
    where = f"{file}:{item.start_mark.line + 1}"
    selector: tuple[str, str] | None = None
    limits: dict[str, float] = {}
    name = ""
    for key_node, value_node in item.value:
        key = clip(str(key_node.value), 60)
        at = f"{file}:{key_node.start_mark.line + 1}: {label}.{key}"
        try:
            value = yaml.safe_load(yaml.serialize(value_node))
        except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
            # compose() checks only the syntax; tags such as !!int x fail here, on construction
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            errors.append(f"{at}: cannot read the value: {clip(first, 200)}")
            continue
        if key not in _PIN_KEYS:
            errors.append(f"{at}: unknown key; allowed keys are {', '.join(sorted(_PIN_KEYS))}")
        elif key in _SELECTORS:
            if not isinstance(value, str) or not value.strip():
                errors.append(f"{at}: must be a non-empty string")
            elif selector is not None:
                errors.append(
                    f"{at}: give one of {', '.join(_SELECTORS)} per pin, not both {selector[0]} and {key}"
                )
            else:
                if key == "regex":
                    try:
                        re.compile(value)
                    except re.error as exc:
                        errors.append(
                            f"{at}: not a valid regular expression: {clip(str(exc), 200)}"
                        )
                    except (RecursionError, OverflowError):
                        errors.append(f"{at}: the regular expression is too large or too deep")
                selector = (key, value.strip())
        elif key == "name":
            name = str(value)
        else:
            number = finite(value)
            if number is None:
                errors.append(f"{at}: {clip(repr(value), 80)} is not a number")
            elif number < 0 or (key.endswith("share") and number > 1):
                bound = (
                    "between 0 and 1 (a share: 0.3 = 30%)"
                    if key.endswith("share")
                    else "≥ 0 seconds"
                )
                errors.append(f"{at}: {value!r} must be {bound}")
            else:
                limits[key] = number
    if selector is None:
        errors.append(f"{where}: {label}: give a function, pattern or regex to pin")
    if not limits and not any(str(k.value) in THRESHOLDS for k, _ in item.value):
        errors.append(f"{where}: {label}: no threshold; add one of {', '.join(THRESHOLDS)}")
    if errors or selector is None:
        return None, errors
    return Pin(selector[0], selector[1], limits, name=name, where=where), []


def check_pins(store: Store, run_id: str, pins: Sequence[Pin]) -> list[PinCheck]:
    """Each pin limit's check on a stored profile (shares of all samples, seconds = samples ÷ rate)."""
    row = profile_row(store, run_id)
    rate = float(row["rate_hz"] or 0) or 1.0
    stacks = load_stacks(store, run_id)
    return pin_results(stacks, rate, pins)


def pin_results(stacks: Mapping[str, int], rate_hz: float, pins: Sequence[Pin]) -> list[PinCheck]:
    """Pin checks on collapsed stacks; a stack counts once however many frames match."""
    total = sum(c for c in stacks.values() if c > 0)
    results = []
    for pin in pins:
        cache: dict[str, bool] = {}
        total_n = self_n = 0
        matched: set[str] = set()
        for stack, count in stacks.items():
            if count <= 0 or not stack:
                continue
            frames = stack.split(";")
            hits = [f for f in frames if cache.setdefault(f, pin.matches(f))]
            if hits:
                total_n += count
                matched.update(hits)
                if cache[frames[-1]]:
                    self_n += count
        figures = {
            "max_total_share": total_n / total if total else 0.0,
            "max_total_s": total_n / rate_hz,
            "max_self_share": self_n / total if total else 0.0,
            "max_self_s": self_n / rate_hz,
        }
        for key in THRESHOLDS:
            if key in pin.limits:
                metric = key.removeprefix("max_")
                results.append(
                    PinCheck.of(
                        pin.label,
                        metric,
                        pin.limits[key],
                        figures[key],
                        tuple(sorted(matched)),
                    )
                )
    return results
