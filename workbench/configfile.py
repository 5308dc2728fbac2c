"""Reading a YAML (or JSON) configuration file with one kind of error for every way it fails.

A missing or unreadable file, bytes that are not UTF-8, YAML that does not parse or a tag
that does not construct (``!!int x``), and nesting too deep to read all become a
:class:`~workbench.errors.ConfigError` that names the file, the line where YAML knows it,
and what the file was for.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import ConfigError
from workbench.text import clip_counted

__all__ = [
    "check_keys",
    "json_type",
    "read_text",
    "read_yaml",
    "short",
]

_MAX_MESSAGE = 200


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``; ``what`` names the file in errors."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: cannot read the {what}: not UTF-8 (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the {what}: {exc.strerror or exc}") from None


def read_yaml(path: str | Path, what: str, *, empty: Any = None) -> Any:
    """The document in ``path`` (``empty`` for a blank file); ``what`` names it in errors."""
    file = Path(path)
    text = read_text(file, what)
    if not text.strip():
        return empty
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # ValueError: !!int x, bad dates
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"{where}: the {what} is not valid YAML: {first[:_MAX_MESSAGE]}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{file}: the {what} is nested too deeply to read") from None


def short(value: Any, width: int = 80) -> str:
    """A value's repr, cut to ``width`` characters so a huge value cannot flood a message."""
    return clip_counted(repr(value), width)


def check_keys(mapping: Mapping[Any, Any], allowed: Collection[str], where: str) -> None:
    """Refuse the first key of ``mapping`` not in ``allowed``, naming every allowed key."""
    unknown = set(mapping) - set(allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {short(sorted(unknown, key=str)[0])}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value: boolean, integer, number, string, array, object, null."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__
