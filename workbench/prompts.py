"""What changed between two runs' prompts: templates as unified and word diffs, parameters,
and the rest of the contract (output schema, tools, scorers, judge).

A run records the prompt it sent (``runs.prompt``, see :func:`workbench.golden.prompt_doc`);
:func:`prompt_diff` compares two such records. Runs from before prompts were recorded carry
none, and their diff says so instead of guessing.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.text import clip_counted, word_diff

__all__ = ["PromptDiff", "prompt_diff", "run_prompt_label"]

TEMPLATES = ("system", "user")
_CONTRACT = ("structured_output", "output_schema", "tools", "tool_choice", "scorers", "judge")
_DIFF_LIMIT = 8_000  # characters of a template's unified diff kept


@dataclass(frozen=True)
class PromptDiff:
    """How the candidate run's prompt differs from the baseline's."""

    base_name: str | None
    cand_name: str | None
    base_hash: str | None
    cand_hash: str | None
    templates: dict[str, str] = field(default_factory=dict)  # template -> unified diff
    words: dict[str, list[str]] = field(
        default_factory=dict
    )  # template -> changed lines, word diff
    parameters: dict[str, list[Any]] = field(default_factory=dict)  # name -> [base, cand]
    contract: list[str] = field(default_factory=list)  # other parts that changed
    recorded: bool = True  # False when a run predates prompt records

    @property
    def changed(self) -> bool:
        """Whether the prompts differ at all."""
        return self.base_hash != self.cand_hash

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "changed": self.changed,
            "base": {"name": self.base_name, "hash": self.base_hash},
            "cand": {"name": self.cand_name, "hash": self.cand_hash},
            "templates": dict(self.templates),
            "words": {k: list(v) for k, v in self.words.items()},
            "parameters": {k: list(v) for k, v in self.parameters.items()},
            "contract": list(self.contract),
            "recorded": self.recorded,
        }

    def render_text(self) -> str:
        """Terminal lines: which prompts, each changed line as a word diff, parameters."""
        if not self.changed:
            return f"prompt: unchanged ({_label(self.base_name, self.base_hash)})"
        lines = [
            f"prompt: {_label(self.base_name, self.base_hash)} → {_label(self.cand_name, self.cand_hash)}"
        ]
        if not self.recorded:
            lines.append("  (a run predates prompt records: the change cannot be shown)")
        for name, changed in self.words.items():
            lines.extend(f"  {name}: {line}" for line in changed[:6])
            if len(changed) > 6:
                lines.append(f"  {name}: … {len(changed) - 6} more changed lines")
        for name, (old, new) in self.parameters.items():
            lines.append(f"  parameters.{name}: {_show(old)} → {_show(new)}")
        if self.contract:
            lines.append("  also changed: " + ", ".join(self.contract))
        return "\n".join(lines)

    def markdown(self, width: int = _DIFF_LIMIT) -> str:
        """A Markdown section: the unified diffs in diff blocks (each at most ``width``
        characters), parameters as a list."""
        if not self.changed:
            return ""
        out = [
            f"**Prompt** `{_label(self.base_name, self.base_hash)}` → "
            f"`{_label(self.cand_name, self.cand_hash)}`",
            "",
        ]
        for name, diff in self.templates.items():
            diff = clip_counted(diff, width)
            fence = "~~~~" if "```" in diff else "```"
            out += [f"{name} template:", "", f"{fence}diff", diff, fence, ""]
        out += [
            f"- `parameters.{k}`: `{_show(a)}` → `{_show(b)}`"
            for k, (a, b) in self.parameters.items()
        ]
        if self.contract:
            out.append("- also changed: " + ", ".join(self.contract))
        return "\n".join(out).rstrip() + "\n"


def prompt_diff(base: Mapping[str, Any], cand: Mapping[str, Any]) -> PromptDiff:
    """The prompt diff of two run rows (as :meth:`workbench.store.Store.get_run` returns)."""
    a, b = base.get("prompt") or {}, cand.get("prompt") or {}
    base_hash, cand_hash = base.get("prompt_hash"), cand.get("prompt_hash")
    diff = PromptDiff(
        base_name=base.get("prompt_name"),
        cand_name=cand.get("prompt_name"),
        base_hash=base_hash,
        cand_hash=cand_hash,
        recorded=bool(a and b),
    )
    if base_hash == cand_hash or not diff.recorded:
        return diff
    for name in TEMPLATES:
        old, new = a.get(name) or "", b.get(name) or ""
        if old == new:
            continue
        unified = "\n".join(
            difflib.unified_diff(
                old.splitlines(), new.splitlines(), f"base/{name}", f"cand/{name}", lineterm="", n=1
            )
        )
        diff.templates[name] = clip_counted(unified, _DIFF_LIMIT)
        diff.words[name] = _changed_lines(old, new)
    pa, pb = a.get("parameters") or {}, b.get("parameters") or {}
    for key in sorted(set(pa) | set(pb)):
        if pa.get(key) != pb.get(key):
            diff.parameters[key] = [pa.get(key), pb.get(key)]
    diff.contract.extend(k for k in _CONTRACT if a.get(k) != b.get(k))
    return diff


def run_prompt_label(run: Mapping[str, Any]) -> str:
    """A run's prompt as people name it: the variant's name, else its short hash."""
    return _label(run.get("prompt_name"), run.get("prompt_hash"))


def _changed_lines(old: str, new: str) -> list[str]:
    """Each changed stretch of lines as a word diff (``[-word-]{+other+}``)."""
    a, b = old.splitlines(), new.splitlines()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            out.append(word_diff("\n".join(a[i1:i2]), "\n".join(b[j1:j2])))
    return out


def _label(name: str | None, digest: str | None) -> str:
    if name:
        return name
    return f"#{digest[:8]}" if digest else "(unknown)"


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return clip_counted(text, 200)
