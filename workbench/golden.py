"""Golden sets: a dataset card plus cases in JSONL, loaded strictly and hashed.

A dataset lives in ``data/golden/<name>/`` as ``cases.jsonl`` and a card,
``dataset.yaml`` (or ``dataset.json``), naming the prompt template, the output
JSON Schema, the scorers and the budgets. Loading never writes anything; a bad
file raises :class:`DatasetError` whose lines read ``file:line: field: problem``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from workbench import scoring
from workbench.configfile import short
from workbench.errors import DatasetError, ScorerError
from workbench.providers import SAMPLING_PARAMETERS
from workbench.text import clip_counted, finite

__all__ = [
    "CARD_NAMES",
    "CASES_NAME",
    "DEFAULT_BUDGETS",
    "PARAMETER_KEYS",
    "Card",
    "Case",
    "Dataset",
    "PromptVariant",
    "Selection",
    "cases_hash",
    "dataset_hash",
    "golden_root",
    "json_schema_format",
    "load_dataset",
    "load_prompt_files",
    "parameter_problem",
    "parse_card",
    "parse_cases",
    "prompt_doc",
    "prompt_hash",
    "render_messages",
    "resolve_dataset",
    "tool_choice_problem",
    "tools_problem",
]

CARD_NAMES = ("dataset.yaml", "dataset.yml", "dataset.json")
CASES_NAME = "cases.jsonl"
PROMPTS_DIR = "prompts"  # prompts/NAME.yaml beside the card: one named prompt variant each
DEFAULT_BUDGETS: dict[str, float] = {"p95_latency_ms": 1500.0, "error_rate": 0.005}
_CASE_KEYS = {"id", "input", "expected", "tags", "metadata", "tools", "tool_choice"}
_CARD_KEYS = {
    "name",
    "description",
    "prompt",
    "prompts",
    "output_schema",
    "scorers",
    "budgets",
    "parameters",
    "structured_output",
    "judge",
    "tools",
    "tool_choice",
}
_BUDGET_KEYS = {
    "p95_latency_ms",
    "p50_latency_ms",
    "error_rate",
    "pass_rate",
    "mean_score",
    "judge_kappa",  # the kappa floor of the card's judge scorers (checked per judge scorer)
}
# Sampling parameters a card may set; each reaches the request unless a run overrides it.
PARAMETER_KEYS = SAMPLING_PARAMETERS
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_VARIANT_KEYS = ("system", "user", "parameters")
_MAX_ERRORS = 20
_QUOTE = 500  # a problem message quotes at most this many characters

_jinja = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@dataclass(frozen=True)
class Case:
    """One golden case: a stable id, its input, the expected output and tags."""

    id: str
    input: dict[str, Any]
    expected: Any
    tags: tuple[str, ...] = ()
    line: int = 0
    tools: list[dict[str, Any]] | None = None  # over the card's
    tool_choice: str | dict[str, Any] | None = None


@dataclass(frozen=True)
class PromptVariant:
    """A named prompt: system and user templates (None keeps the card's) and parameters over
    the card's."""

    name: str
    system: str | None = None
    user: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # where it was defined: "card" or the prompts/NAME.yaml path


@dataclass(frozen=True)
class Card:
    """A dataset card: prompt template, output contract, scorers and budgets."""

    name: str
    description: str = ""
    system: str | None = None
    user: str | None = None
    output_schema: dict[str, Any] | None = None
    scorers: tuple[scoring.ScorerSpec, ...] = ()
    budgets: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    parameters: Mapping[str, Any] = field(default_factory=dict)
    structured_output: bool = False
    judge: scoring.AnyJudge | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI function definitions offered
    tool_choice: str | dict[str, Any] | None = None  # none | auto | required | a function
    prompts: tuple[PromptVariant, ...] = ()  # named variants; the first is the default
    prompt_name: str | None = None  # the variant applied to system, user and parameters

    def variant(self, name: str | None) -> Card:
        """This card with the named prompt variant applied (the first when name is None).

        A card without variants takes no name but None; an unknown name is a DatasetError
        listing the known ones."""
        if not self.prompts:
            if name is None:
                return self
            raise DatasetError(
                f"{self.name}: no prompt variant {name!r}; the card has one prompt. Add "
                f"'prompts: {{{name}: {{system: ..., user: ...}}}}' to the card, or a file "
                f"{PROMPTS_DIR}/{name}.yaml beside it"
            )
        chosen = self.prompts[0] if name is None else None
        for variant in self.prompts:
            if variant.name == name:
                chosen = variant
        if chosen is None:
            known = ", ".join(v.name for v in self.prompts)
            raise DatasetError(f"{self.name}: no prompt variant {name!r}; known: {known}")
        base = self if self.prompt_name is None else self._base
        return dataclasses.replace(
            base,
            system=chosen.system if chosen.system is not None else base.system,
            user=chosen.user if chosen.user is not None else base.user,
            parameters={**base.parameters, **chosen.parameters},
            prompt_name=chosen.name,
            _base=base,
        )

    _base: Any = field(default=None, repr=False, compare=False)  # the card before a variant


def json_schema_format(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI ``json_schema`` response format for an output schema (llama.cpp, vLLM, OpenAI)."""
    body = {k: v for k, v in schema.items() if k != "$schema"}  # a meta-schema URL is no constraint
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:64] or "output"
    return {"type": "json_schema", "json_schema": {"name": safe, "schema": body, "strict": True}}


@dataclass(frozen=True)
class Dataset:
    """A loaded golden set: its card, its cases and its content hash."""

    name: str
    path: Path
    card: Card
    cases: tuple[Case, ...]
    hash: str

    def __len__(self) -> int:
        return len(self.cases)

    @functools.cached_property
    def cases_hash(self) -> str:
        """Hash of the cases alone (ids, inputs, expected, tags, tools): runs over the same
        cases pair case by case, whatever their prompts."""
        return cases_hash(self.cases)

    @functools.cached_property
    def prompt_hash(self) -> str:
        """Hash of what is sent and how it is scored: templates, parameters, tools, scorers."""
        return prompt_hash(self.card)

    @property
    def prompt_name(self) -> str | None:
        """The prompt variant applied, or None for a card with one prompt."""
        return self.card.prompt_name

    def with_prompt(self, name: str | None) -> Dataset:
        """This dataset with the named prompt variant (the first when None); itself when that
        variant is already applied."""
        if name is None and (self.prompt_name is not None or not self.card.prompts):
            return self
        if name is not None and name == self.prompt_name:
            return self
        card = self.card.variant(name)
        return dataclasses.replace(self, card=card, hash=dataset_hash(card, self.cases))

    def case(self, case_id: str) -> Case:
        """The case with this id."""
        for case in self.cases:
            if case.id == case_id:
                return case
        raise DatasetError(f"{self.name}: no case with id {case_id!r}")

    def messages(self, case: Case) -> list[dict[str, Any]]:
        """The chat messages sent to the model for a case."""
        return render_messages(self.card, case)

    def tools(self, case: Case) -> tuple[list[dict[str, Any]] | None, Any]:
        """The tools offered for a case and the tool choice: the case's, else the card's."""
        tools = case.tools if case.tools is not None else self.card.tools
        choice = case.tool_choice if case.tool_choice is not None else self.card.tool_choice
        return tools, (choice if tools else None)


@dataclass(frozen=True)
class Selection:
    """Which cases a run takes: named ids or tags, then a seeded sample, then the first N."""

    cases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sample: int | None = None
    limit: int | None = None
    seed: int = 0

    def __bool__(self) -> bool:
        return bool(self.cases or self.tags or self.sample is not None or self.limit is not None)

    def to_dict(self) -> dict[str, Any]:
        """The selection as recorded on a run (empty parts left out)."""
        out: dict[str, Any] = {}
        if self.cases:
            out["cases"] = list(self.cases)
        if self.tags:
            out["tags"] = list(self.tags)
        if self.sample is not None:
            out["sample"], out["sample_seed"] = self.sample, self.seed
        if self.limit is not None:
            out["limit"] = self.limit
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> Selection:
        """The selection recorded on a run."""
        doc = doc or {}
        return cls(
            cases=tuple(doc.get("cases") or ()),
            tags=tuple(doc.get("tags") or ()),
            sample=doc.get("sample"),
            limit=doc.get("limit"),
            seed=int(doc.get("sample_seed") or 0),
        )

    def apply(self, dataset: Dataset) -> tuple[Case, ...]:
        """The selected cases in dataset order; DatasetError naming an id or tag that matches none."""
        cases = dataset.cases
        if self.cases or self.tags:
            ids = {c.id for c in cases}
            unknown = [i for i in self.cases if i not in ids]
            if unknown:
                raise DatasetError(
                    f"{dataset.name}: no case with id {', '.join(map(repr, unknown[:5]))}; "
                    f"ids look like {', '.join(repr(c.id) for c in cases[:3])}"
                )
            known_tags = sorted({t for c in cases for t in c.tags})
            missing = [t for t in self.tags if t not in known_tags]
            if missing:
                raise DatasetError(
                    f"{dataset.name}: no case is tagged {', '.join(map(repr, missing))}; "
                    f"tags: {', '.join(known_tags) or '(none)'}"
                )
            wanted, tags = set(self.cases), set(self.tags)
            cases = tuple(c for c in cases if c.id in wanted or tags.intersection(c.tags))
        if self.sample is not None and self.sample < len(cases):
            picked = set(random.Random(self.seed).sample(range(len(cases)), self.sample))
            cases = tuple(c for i, c in enumerate(cases) if i in picked)
        if self.limit is not None:
            cases = cases[: self.limit]
        return cases


def golden_root(start: Path | None = None) -> Path | None:
    """The nearest ``data/golden`` folder: ``$WORKBENCH_GOLDEN_DIR``, else cwd or a parent's."""
    env = os.environ.get("WORKBENCH_GOLDEN_DIR")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "data" / "golden"
        if candidate.is_dir():
            return candidate
    return None


def resolve_dataset(name_or_path: str | os.PathLike[str]) -> Path:
    """The folder of a dataset given its name (under data/golden) or its path."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if path.is_file() and path.name in (CASES_NAME, *CARD_NAMES):
        return path.parent
    root = golden_root()
    if root is not None and (root / str(name_or_path)).is_dir():
        return root / str(name_or_path)
    known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root else []
    where = f" in {root}" if root else " (no data/golden folder found from the current directory)"
    hint = f"; known datasets: {', '.join(known)}" if known else ""
    raise DatasetError(
        f"dataset {str(name_or_path)!r} not found{where}{hint}; "
        "pass a dataset name or a folder holding cases.jsonl and dataset.yaml"
    )


def load_dataset(name_or_path: str | os.PathLike[str], *, prompt: str | None = None) -> Dataset:
    """Load and validate a golden set; raise DatasetError listing every problem found.

    With prompt variants (the card's ``prompts`` and ``prompts/NAME.yaml`` files), ``prompt``
    names the one to apply; the first when None."""
    folder = resolve_dataset(name_or_path)
    card_path = next((folder / n for n in CARD_NAMES if (folder / n).is_file()), None)
    if card_path is None:
        raise DatasetError(f"{folder}: no dataset card; add dataset.yaml (or dataset.json)")
    cases_path = folder / CASES_NAME
    if not cases_path.is_file():
        raise DatasetError(f"{folder}: no {CASES_NAME}; add one JSON object per line")
    card_bytes = card_path.read_bytes()
    card = parse_card(card_bytes, card_path, default_name=folder.name)
    files = load_prompt_files(folder)
    if files:
        taken = {v.name: v for v in card.prompts}
        clash = [v for v in files if v.name in taken]
        if clash:
            raise DatasetError(
                f"{clash[0].source}:1: prompt {clash[0].name!r} is also defined in the card's "
                "prompts; keep one of the two"
            )
        card = dataclasses.replace(card, prompts=card.prompts + files)
    cases_bytes = cases_path.read_bytes()
    cases = parse_cases(cases_bytes, cases_path, card=card)
    card = card.variant(prompt)
    return Dataset(
        name=card.name,
        path=folder,
        card=card,
        cases=cases,
        hash=dataset_hash(card, cases),
    )


def dataset_hash(card: Card, cases: tuple[Case, ...]) -> str:
    """Content hash of a dataset: its card and cases in canonical JSON (formatting-proof)."""
    digest = hashlib.sha256()
    card_doc: dict[str, Any] = {
        "name": card.name,
        "system": card.system,
        "user": card.user,
        "output_schema": card.output_schema,
        "scorers": [
            [s.name, s.weight, s.threshold, s.field, dict(s.options)] for s in card.scorers
        ],
        "budgets": dict(card.budgets),
        "parameters": dict(card.parameters),
    }
    if card.structured_output:  # only when on, so the hashes of existing datasets stay
        card_doc["structured_output"] = True
    if card.judge is not None:  # likewise: only a card that names a judge hashes it
        card_doc["judge"] = card.judge.to_dict()
    if card.tools is not None:  # and tools, when offered
        card_doc["tools"] = [card.tools, card.tool_choice]
    digest.update(_canonical(card_doc))
    _update_cases(digest, cases)
    return digest.hexdigest()[:16]


def cases_hash(cases: tuple[Case, ...]) -> str:
    """Content hash of the cases alone: ids, inputs, expected outputs, tags, own tools."""
    digest = hashlib.sha256(b"cases\n")
    _update_cases(digest, cases)
    return digest.hexdigest()[:16]


def _update_cases(digest: Any, cases: tuple[Case, ...]) -> None:
    for case in cases:
        item: list[Any] = [case.id, case.input, case.expected, list(case.tags)]
        if case.tools is not None or case.tool_choice is not None:
            item.append([case.tools, case.tool_choice])
        digest.update(_canonical(item))


def prompt_doc(card: Card) -> dict[str, Any]:
    """What a run sends and how it scores it, as recorded on the run (and diffed by compare):
    the prompt's name, templates, parameters, output contract, tools, scorers and judge."""
    return {
        "name": card.prompt_name,
        "system": card.system,
        "user": card.user,
        "parameters": dict(card.parameters),
        "structured_output": card.structured_output,
        "output_schema": card.output_schema,
        "tools": card.tools,
        "tool_choice": card.tool_choice,
        "scorers": [
            {
                "name": s.name,
                "weight": s.weight,
                "threshold": s.threshold,
                "field": s.field,
                "options": dict(s.options),
            }
            for s in card.scorers
        ],
        "judge": None if card.judge is None else card.judge.to_dict(),
    }


def prompt_hash(card: Card) -> str:
    """Content hash of a card's prompt as :func:`prompt_doc` records it, bar the variant name
    (two variants with the same text are the same prompt)."""
    doc = {k: v for k, v in prompt_doc(card).items() if k != "name"}
    return hashlib.sha256(b"prompt\n" + _canonical(doc)).hexdigest()[:16]


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


# -- the card ---------------------------------------------------------------


def parse_card(data: bytes, path: Path, *, default_name: str = "") -> Card:
    """Parse and validate a dataset card (YAML or JSON)."""
    text = _decode(data, path)
    lines: dict[tuple[str | int, ...], int] = {}
    try:
        if path.suffix == ".json":
            doc = json.loads(text, parse_constant=_reject_constant)
        else:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            if node is not None:
                _index_lines(node, (), lines)
            doc = yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError, ValueError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        line = line + 1 if line is not None else getattr(exc, "lineno", 1)
        raise DatasetError(
            f"{path}:{line}: not valid {_kind(path)}: {clip_counted(_first_line(exc), _QUOTE)}"
        ) from None
    except RecursionError:
        raise DatasetError(
            f"{path}:1: nested too deeply to read; a card is a few levels of mappings and lists"
        ) from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}:1: the card must be a mapping with keys {sorted(_CARD_KEYS)}")

    errors: list[str] = []

    def err(key: tuple[str | int, ...], message: str) -> None:
        field_name = ".".join(clip_counted(k, 60) if isinstance(k, str) else f"[{k}]" for k in key)
        errors.append(
            f"{path}:{_nearest_line(lines, key)}: {field_name.replace('.[', '[')}: {clip_counted(message, _QUOTE)}"
        )

    for key in doc:
        if key not in _CARD_KEYS:
            err((str(key),), f"unknown key; allowed keys are {', '.join(sorted(_CARD_KEYS))}")
    name = doc.get("name", default_name)
    if not isinstance(name, str) or not name:
        err(("name",), "must be a non-empty string")
    description = doc.get("description", "") or ""
    prompt = doc.get("prompt", {}) or {}
    system = user = None
    if not isinstance(prompt, dict):
        err(("prompt",), "must be a mapping with 'system' and/or 'user' templates")
    else:
        for key in prompt:
            if key not in ("system", "user"):
                err(("prompt", str(key)), "unknown key; use 'system' and 'user'")
        system, user = prompt.get("system"), prompt.get("user")
        for key, value in (("system", system), ("user", user)):
            _check_template(value, ("prompt", key), err)
    variants = _parse_variants(doc.get("prompts"), err, lines)
    schema = doc.get("output_schema")
    if schema is not None:
        schema_error = _not_json(schema) or (
            _check_schema(schema) if isinstance(schema, dict) else "not a mapping"
        )
        if schema_error:
            err(("output_schema",), f"not a valid JSON Schema: {schema_error}")
    specs = _parse_scorers(doc.get("scorers"), err)
    budgets = dict(DEFAULT_BUDGETS)
    raw_budgets = doc.get("budgets", {}) or {}
    if not isinstance(raw_budgets, dict):
        err(("budgets",), "must be a mapping, e.g. {p95_latency_ms: 1500, pass_rate: 0.8}")
    else:
        for key, value in raw_budgets.items():
            if key not in _BUDGET_KEYS:
                err(
                    ("budgets", str(key)),
                    f"unknown budget; known: {', '.join(sorted(_BUDGET_KEYS))}",
                )
            elif finite(value) is None or value < 0:
                err(("budgets", key), f"must be a non-negative number, got {short(value)}")
            elif key in ("error_rate", "pass_rate", "mean_score", "judge_kappa") and value > 1:
                err(("budgets", key), f"is a fraction between 0 and 1, got {short(value)}")
            else:
                budgets[key] = float(value)
    parameters = doc.get("parameters", {}) or {}
    if not isinstance(parameters, dict):
        err(("parameters",), "must be a mapping, e.g. {temperature: 0, max_tokens: 512}")
        parameters = {}
    for key, value in parameters.items():
        if key not in PARAMETER_KEYS:
            err(("parameters", str(key)), f"unknown; known: {', '.join(sorted(PARAMETER_KEYS))}")
        elif problem := (_not_json(value) or parameter_problem(key, value)):
            err(("parameters", key), problem)
    structured = doc.get("structured_output", False)
    if not isinstance(structured, bool):
        err(("structured_output",), f"must be true or false, got {short(structured)}")
        structured = False
    elif structured and schema is None:
        err(
            ("structured_output",),
            "needs an output_schema to send as the json_schema response format; add one",
        )
    elif structured and "response_format" in parameters:
        err(
            ("structured_output",),
            "and parameters.response_format both set the response format; keep one",
        )
    judge = None
    if doc.get("judge") is not None:
        judge, problem = scoring.parse_judge(doc["judge"])
        if problem:
            key, _, rest = problem.partition(": ")
            if rest and key.isidentifier():
                err(("judge", key), rest)
            else:
                err(("judge",), problem)
    tools = doc.get("tools")
    if tools is not None:
        problem = tools_problem(tools)
        if problem and problem.startswith("["):
            where, _, rest = problem.partition(": ")
            err(("tools", where), rest)
        elif problem:
            err(("tools",), problem)
    tool_choice = doc.get("tool_choice")
    if tool_choice is not None:
        problem = tool_choice_problem(tool_choice, tools)
        if problem:
            err(("tool_choice",), problem)
    if errors:
        raise DatasetError(_join(errors))
    return Card(
        name=name,
        description=str(description).strip(),
        system=system,
        user=user,
        output_schema=schema,
        scorers=tuple(specs),
        budgets=budgets,
        parameters=dict(parameters),
        structured_output=structured,
        judge=judge,
        tools=tools,
        tool_choice=tool_choice,
        prompts=variants,
    )


def _check_template(value: Any, key: tuple[str | int, ...], err: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        err(key, "must be a string template")
        return
    try:
        _jinja.parse(value)
    except TemplateError as exc:
        err(key, f"template does not parse: {exc}")
    except RecursionError:
        err(key, "template is nested too deeply to parse")


def _parse_variants(
    raw: Any, err: Any, lines: Mapping[tuple[str | int, ...], int], source: str = "card"
) -> tuple[PromptVariant, ...]:
    """The card's ``prompts: {NAME: {system, user, parameters}}``, each checked like the card's."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        err(("prompts",), "must be a mapping of names to {system, user, parameters}")
        return ()
    out = []
    for name, body in raw.items():
        variant = _parse_variant(str(name), body, ("prompts", str(name)), err, source)
        if variant is not None:
            out.append(variant)
    return tuple(out)


def _parse_variant(
    name: str, body: Any, where: tuple[str | int, ...], err: Any, source: str
) -> PromptVariant | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        err(where, "a prompt name is letters, digits, '_', '.' or '-' (at most 64), e.g. v2")
        return None
    if not isinstance(body, dict):
        err(where, "must be a mapping with 'system', 'user' and/or 'parameters'")
        return None
    bad = False
    for key in body:
        if key not in _VARIANT_KEYS:
            err((*where, str(key)), f"unknown key; use {', '.join(_VARIANT_KEYS)}")
            bad = True
    for key in ("system", "user"):
        _check_template(body.get(key), (*where, key), err)
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        err((*where, "parameters"), "must be a mapping, e.g. {temperature: 0.2}")
        return None
    for key, value in parameters.items():
        if key not in PARAMETER_KEYS:
            err(
                (*where, "parameters", str(key)),
                f"unknown; known: {', '.join(sorted(PARAMETER_KEYS))}",
            )
            bad = True
        elif problem := (_not_json(value) or parameter_problem(key, value)):
            err((*where, "parameters", key), problem)
            bad = True
    if bad or not all(isinstance(body.get(k), str | None) for k in ("system", "user")):
        return None
    return PromptVariant(
        name, body.get("system"), body.get("user"), dict(parameters), source=source
    )


def load_prompt_files(folder: Path) -> tuple[PromptVariant, ...]:
    """The variants in ``prompts/NAME.yaml`` (or .yml, .json) beside a card, by file name."""
    where = folder / PROMPTS_DIR
    if not where.is_dir():
        return ()
    errors: list[str] = []
    out = []
    for path in sorted(where.iterdir()):
        if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
            continue
        text = _decode(path.read_bytes(), path)
        try:
            body = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            errors.append(
                f"{path}:1: not valid {_kind(path)}: {clip_counted(_first_line(exc), _QUOTE)}"
            )
            continue

        def err(key: tuple[str | int, ...], message: str, path: Path = path) -> None:
            field_name = ".".join(str(k) for k in key[2:]) or "(file)"
            errors.append(f"{path}:1: {field_name}: {clip_counted(message, _QUOTE)}")

        variant = _parse_variant(path.stem, body, ("prompts", path.stem), err, str(path))
        if variant is not None:
            out.append(variant)
    if errors:
        raise DatasetError(_join(errors))
    return tuple(out)


def tools_problem(tools: Any) -> str | None:
    """Why a ``tools`` list is not OpenAI function definitions, or None."""
    import jsonschema  # lazily: its import compiles grammars, seconds on a cold start

    if not isinstance(tools, list) or not tools:
        return "must be a non-empty list of {type: function, function: {name, parameters}}"
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            return f"[{i}]: must be {{type: function, function: {{name, description, parameters}}}}"
        name = fn.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            return f"[{i}].function.name: must be 1-64 letters, digits, _ or -, got {short(name)}"
        if name in seen:
            return f"[{i}].function.name: {name!r} is offered twice"
        seen.add(name)
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            return f"[{i}].function.parameters: must be a JSON Schema object"
        try:
            jsonschema.Draft202012Validator.check_schema(params)
        except jsonschema.SchemaError as exc:
            return f"[{i}].function.parameters: not a valid JSON Schema: {exc.message}"
    return None


def tool_choice_problem(choice: Any, tools: Any) -> str | None:
    """Why a ``tool_choice`` cannot be sent with these tools, or None."""
    names = [
        t["function"]["name"]
        for t in tools or ()
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    if choice in ("none", "auto", "required"):
        return None if tools else "needs tools to choose from"
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if name in names:
            return None
        return f"names {short(name)}, which is not one of the tools ({', '.join(names) or 'none'})"
    return "must be none, auto, required or {type: function, function: {name: NAME}}"


def parameter_problem(key: str, value: Any) -> str | None:
    """Why a sampling parameter's value cannot be sent, or None (null means: do not send it)."""
    if value is None:
        return None
    number = finite(value) if not isinstance(value, bool) else None
    if key == "temperature" and (number is None or not 0 <= number <= 2):
        return f"must be a number from 0 to 2, got {short(value)}"
    if key == "top_p" and (number is None or not 0 < number <= 1):
        return f"must be a number above 0 and at most 1, got {short(value)}"
    if key in ("presence_penalty", "frequency_penalty") and (
        number is None or not -2 <= number <= 2
    ):
        return f"must be a number from -2 to 2, got {short(value)}"
    if key in ("seed", "max_tokens") and (not isinstance(value, int) or isinstance(value, bool)):
        return f"must be an integer, got {short(value)}"
    if key == "max_tokens" and value < 1:
        return f"must be at least 1, got {value}"
    if key == "stop" and not (
        isinstance(value, str)
        or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
    ):
        return f"must be a string or a list of strings, got {short(value)}"
    if key == "response_format":
        if not isinstance(value, dict) or value.get("type") not in _RESPONSE_FORMATS:
            return (
                f"must be a mapping whose type is one of {', '.join(_RESPONSE_FORMATS)}, "
                f"got {short(value)}; or set structured_output: true to send the output_schema"
            )
        if value["type"] == "json_schema" and not isinstance(
            (value.get("json_schema") or {}).get("schema"), dict
        ):
            return "type json_schema needs json_schema: {name, schema, strict}"
    return None


def _parse_scorers(raw: Any, err: Any) -> list[scoring.ScorerSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        err(("scorers",), "must be a list of {name, weight, threshold, field, options}")
        return []
    specs: list[scoring.ScorerSpec] = []
    labels: set[str] = set()
    for i, item in enumerate(raw):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            err(("scorers", i), "must be a mapping with at least 'name'")
            continue
        unknown = set(item) - {"name", "weight", "threshold", "field", "options"}
        if unknown:
            err(
                ("scorers", i, str(sorted(unknown, key=str)[0])),
                "unknown key; use name, weight, threshold, field, options",
            )
            continue
        name = item.get("name")
        weight = item.get("weight", 1.0)
        threshold = item.get("threshold")
        options = item.get("options", {}) or {}
        fld = item.get("field")
        if not isinstance(name, str) or not name:
            err(("scorers", i, "name"), "must be a scorer name")
            continue
        if finite(weight) is None or weight < 0:
            err(("scorers", i, "weight"), f"must be a number >= 0, got {short(weight)}")
            continue
        if threshold is not None and (finite(threshold) is None or not 0 <= threshold <= 1):
            err(
                ("scorers", i, "threshold"),
                f"must be a number between 0 and 1, got {short(threshold)}",
            )
            continue
        if fld is not None and not isinstance(fld, str):
            err(("scorers", i, "field"), f"must be a field name, got {short(fld)}")
            continue
        if not isinstance(options, dict):
            err(("scorers", i, "options"), "must be a mapping")
            continue
        if problem := _not_json(options):
            err(("scorers", i, "options"), problem)
            continue
        spec = scoring.ScorerSpec(
            name=name,
            weight=float(weight),
            threshold=None if threshold is None else float(threshold),
            field=fld,
            options=options,
        )
        try:
            scoring.validate_spec(spec)
        except ScorerError as exc:
            err(("scorers", i, "name"), str(exc))
            continue
        if spec.label in labels:
            err(("scorers", i), f"scorer {spec.label!r} is listed twice; give one a 'field'")
            continue
        labels.add(spec.label)
        specs.append(spec)
    return specs


def _index_lines(
    node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]
) -> None:
    """Record the 1-based line of every key and item in a composed YAML tree."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*path, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _index_lines(value_node, key, out)
            out[key] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), out)


def _nearest_line(lines: dict[tuple[str | int, ...], int], key: tuple[str | int, ...]) -> int:
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return 1


# -- the cases --------------------------------------------------------------


def parse_cases(data: bytes, path: Path, *, card: Card | None = None) -> tuple[Case, ...]:
    """Parse and validate cases JSONL; every problem is reported with its line."""
    errors: list[str] = []
    cases: list[Case] = []
    first_seen: dict[str, int] = {}
    needed = _template_variables(card) if card else set()
    for lineno, raw in _lines(data):
        if len(errors) >= _MAX_ERRORS:
            errors.append(f"{path}: stopped after {_MAX_ERRORS} errors")
            break
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(
                f"{path}:{lineno}: not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r});"
                " save the file as UTF-8"
            )
            continue
        if not text.strip():
            continue
        try:
            doc = json.loads(text, parse_constant=_reject_constant)
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            errors.append(f"{path}:{lineno}: not valid JSON: {_first_line(exc)}")
            continue
        problem = _check_case(doc, needed) or _case_tools_problem(doc, card)
        if problem:
            errors.append(f"{path}:{lineno}: {clip_counted(problem, _QUOTE)}")
            continue
        case_id = doc["id"]
        if case_id in first_seen:
            errors.append(
                f"{path}:{lineno}: id: duplicate {short(case_id)} (first on line {first_seen[case_id]}); "
                "ids must be unique"
            )
            continue
        first_seen[case_id] = lineno
        cases.append(
            Case(
                id=case_id,
                input=doc["input"],
                expected=doc.get("expected"),
                tags=tuple(doc.get("tags", ())),
                line=lineno,
                tools=doc.get("tools"),
                tool_choice=doc.get("tool_choice"),
            )
        )
    if not errors and not cases:
        errors.append(f"{path}:1: no cases; add one JSON object per line")
    if errors:
        raise DatasetError(_join(errors))
    return tuple(cases)


def _case_tools_problem(doc: dict[str, Any], card: Card | None) -> str | None:
    """Why a case's own tools or tool choice cannot be sent, or None."""
    tools = doc.get("tools")
    if tools is not None and (problem := tools_problem(tools)):
        return f"tools{problem if problem.startswith('[') else ': ' + problem}"
    choice = doc.get("tool_choice")
    offered = tools if tools is not None else (card.tools if card else None)
    if choice is not None and (problem := tool_choice_problem(choice, offered)):
        return f"tool_choice: {problem}"
    return None


def _check_case(doc: Any, needed: set[str]) -> str | None:
    if not isinstance(doc, dict):
        return f"a case must be a JSON object, got {type(doc).__name__}"
    unknown = set(doc) - _CASE_KEYS
    if unknown:
        return f"{clip_counted(sorted(unknown)[0], 60)}: unknown key; a case has {', '.join(sorted(_CASE_KEYS))}"
    case_id = doc.get("id")
    if case_id is None:
        return 'id: missing; every case needs a unique string "id"'
    if not isinstance(case_id, str) or not case_id.strip():
        return f"id: must be a non-empty string, got {short(case_id)}"
    if "input" not in doc:
        return 'input: missing; give template variables or {"messages": [...]}'
    inp = doc["input"]
    if not isinstance(inp, dict):
        return f"input: must be an object, got {type(inp).__name__}"
    if "expected" not in doc:
        return "expected: missing; give the expected output (use null if there is none)"
    tags = doc.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return f"tags: must be a list of strings, got {short(tags)}"
    if "messages" in inp:
        msgs = inp["messages"]
        if not isinstance(msgs, list) or not msgs:
            return "input.messages: must be a non-empty list of {role, content}"
        for i, msg in enumerate(msgs):
            if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
                return f"input.messages[{i}]: must be an object with a string 'role'"
            if msg["role"] not in ("system", "user", "assistant", "tool", "developer"):
                return f"input.messages[{i}].role: unknown role {short(msg['role'])}"
            calls = msg.get("tool_calls")
            if calls is not None and msg["role"] == "assistant":
                if not isinstance(calls, list) or not all(
                    isinstance(c, dict)
                    and isinstance(c.get("id"), str)
                    and isinstance((c.get("function") or {}).get("name"), str)
                    and isinstance((c.get("function") or {}).get("arguments"), str)
                    for c in calls
                ):
                    return (
                        f"input.messages[{i}].tool_calls: must be a list of {{id, type: function, "
                        "function: {name, arguments (a JSON string)}}"
                    )
                if msg.get("content") is None:
                    continue
            if msg["role"] == "tool" and not isinstance(msg.get("tool_call_id"), str):
                return f"input.messages[{i}].tool_call_id: a tool result names the call it answers"
            if not isinstance(msg.get("content"), str | list):
                return f"input.messages[{i}].content: must be a string or a list of parts"
    else:
        missing = sorted(needed - set(inp))
        if missing:
            return f"input.{missing[0]}: missing; the prompt template uses {{{{ {missing[0]} }}}}"
    return None


def _template_variables(card: Card) -> set[str]:
    """The case inputs the card's templates use, over every prompt variant."""
    names: set[str] = set()
    templates = [card.system, card.user]
    templates += [t for v in card.prompts for t in (v.system, v.user)]
    for template in templates:
        if template:
            names |= meta.find_undeclared_variables(_jinja.parse(template))
    return names - {"case_id", "tags"}


def render_messages(card: Card, case: Case) -> list[dict[str, Any]]:
    """The chat messages for a case: its own messages, or the card's templates rendered."""
    variables = {**case.input, "case_id": case.id, "tags": list(case.tags)}
    messages: list[dict[str, Any]] = []
    if "messages" in case.input:
        own = [dict(m) for m in case.input["messages"]]
        if card.system and own[0].get("role") != "system":
            messages.append({"role": "system", "content": _render(card.system, variables, case)})
        return messages + own
    if card.system:
        messages.append({"role": "system", "content": _render(card.system, variables, case)})
    if card.user:
        messages.append({"role": "user", "content": _render(card.user, variables, case)})
    if not messages:
        raise DatasetError(
            f"case {case.id!r}: the card has no prompt template and the case has no messages"
        )
    return messages


@functools.lru_cache(maxsize=256)
def _compiled(template: str) -> Template:
    """A template compiled once; rendering is then microseconds, not a re-parse per case."""
    return _jinja.from_string(template)


def _render(template: str, variables: dict[str, Any], case: Case) -> str:
    try:
        return _compiled(template).render(**variables).strip("\n")
    except TemplateError as exc:
        raise DatasetError(f"case {case.id!r} (line {case.line}): template: {exc}") from None


# -- helpers ------------------------------------------------------------------


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        yield lineno, raw.rstrip(b"\r")


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: not valid UTF-8; save the file as UTF-8") from None


def _check_schema(schema: dict[str, Any]) -> str | None:
    # jsonschema imports slowly (a second or more); only cards with a schema pay for it.
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return f"{clip_counted(where, 100)}: {clip_counted(exc.message, _QUOTE)}"
    except RecursionError:
        return "nested too deeply to check"
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; use null or a finite number")


def _not_json(value: Any, where: str = "") -> str | None:
    """Why a YAML value has no JSON form (a date, bytes, a set, a non-string key, NaN), or None."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where or 'value'}: {value!r} is not valid JSON"
    if isinstance(value, list):
        for i, item in enumerate(value):
            if problem := _not_json(item, f"{where}[{i}]"):
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where or 'key'}: key {short(key)} must be a string; quote it"
            if problem := _not_json(item, f"{where}.{key}" if where else key):
                return problem
        return None
    return (
        f"{clip_counted(where, 60) or 'value'}: a YAML {type(value).__name__} has no JSON form; "
        "quote it as a string"
    )


def _kind(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "YAML"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _join(errors: list[str]) -> str:
    head = errors[0] if len(errors) == 1 else f"{len(errors)} problems:\n  " + "\n  ".join(errors)
    return head
