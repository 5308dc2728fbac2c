"""Bring your own data: import a CSV, JSONL or Parquet table as a golden set, start one, check one.

:func:`import_table` turns the rows of a table into ``cases.jsonl`` and writes a commented
``dataset.yaml`` whose prompt uses every input column and whose scorers suit the expected
values; :func:`init_dataset` writes a skeleton to fill in; :func:`check_dataset` loads a
dataset and counts what it holds. Bad input raises :class:`DatasetError` naming the file, the
line (or row) and the column, and nothing is written: a dataset is built in a hidden folder
beside its target, loaded back with :func:`workbench.golden.load_dataset`, and only then moved
into place.
"""

from __future__ import annotations

import collections
import csv
import datetime
import decimal
import difflib
import io
import json
import math
import os
import re
import shutil
import textwrap
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from workbench.configfile import json_type, short
from workbench.errors import DatasetError
from workbench.golden import CARD_NAMES, CASES_NAME, Dataset, golden_root, load_dataset

__all__ = [
    "FORMATS",
    "DatasetReport",
    "check_dataset",
    "import_table",
    "init_dataset",
]

FORMATS = (".csv", ".jsonl", ".parquet")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_TAG_SPLIT = re.compile(r"[,;|]")
_RESERVED = {"messages", "case_id", "tags"}  # case keys with a meaning of their own in a prompt
_MAX_ERRORS = 20
_SHOWN_ERRORS = 10
_SHORT_LABEL = 40  # expected strings up to this long (one line) are labels, scored exactly
_jinja = SandboxedEnvironment()


@dataclass(frozen=True)
class DatasetReport:
    """What a dataset holds (cases, tags, scorers, hash), or the problems that stop it loading."""

    action: str  # "imported", "created" or "checked"
    path: Path
    name: str = ""
    hash: str = ""
    cases: int = 0
    tags: dict[str, int] = field(default_factory=dict)
    untagged: int = 0
    scorers: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    source: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the dataset loads."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        out: dict[str, Any] = {
            "action": self.action,
            "ok": self.ok,
            "path": str(self.path),
            "name": self.name,
            "hash": self.hash,
            "cases": self.cases,
            "tags": dict(self.tags),
            "untagged": self.untagged,
            "scorers": list(self.scorers),
            "errors": list(self.errors),
        }
        if self.source is not None:
            out.update(source=self.source, columns=dict(self.columns), renamed=dict(self.renamed))
        return out

    def render_text(self) -> str:
        """A few lines for a terminal: what was done, the counts, or the first problems."""
        if not self.ok:
            lines = [f"dataset {self.path} does not load: {_count(len(self.errors), 'problem')}"]
            lines += [f"  {e}" for e in self.errors[:_SHOWN_ERRORS]]
            if len(self.errors) > _SHOWN_ERRORS:
                lines.append(f"  ... and {len(self.errors) - _SHOWN_ERRORS} more")
            return "\n".join(lines)
        where = f" from {self.source}" if self.source else ""
        lines = [
            f"{self.action} {self.name}{where}: {_count(self.cases, 'case')} "
            f"in {self.path} (hash {self.hash})"
        ]
        if self.columns:
            cols = self.columns
            lines.append(
                f"  input: {', '.join(cols['input'])}  expected: {', '.join(cols['expected'])}"
                f"  id: {cols['id'] or 'numbered by row'}  tags: {cols['tags'] or '-'}"
            )
        if self.renamed:
            pairs = ", ".join(f"{k!r} -> {v}" for k, v in self.renamed.items())
            lines.append(f"  renamed for the prompt template: {pairs}")
        tags = ", ".join(f"{t} {n}" for t, n in self.tags.items())
        if self.untagged:
            tags += f"{', ' if tags else ''}(untagged) {self.untagged}"
        lines.append(f"  tags: {tags or '-'}")
        lines.append(f"  scorers: {', '.join(self.scorers) or '- (every case passes)'}")
        if self.action != "checked":
            card = self.path / CARD_NAMES[0]
            lines.append(f"next: edit the prompt, scorers and budgets in {card}, then")
            lines.append(f"  workbench dataset check {self.path}")
            lines.append(f"  workbench eval {self.path} --model <target>")
        return "\n".join(lines)


def import_table(
    source: str | os.PathLike[str] | Any,
    name: str,
    *,
    inputs: str | Sequence[str],
    expected: str | Sequence[str],
    id_column: str | None = None,
    tags_column: str | None = None,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> DatasetReport:
    """Import a .csv, .jsonl or .parquet file (or a pandas DataFrame) as the golden set ``name``.

    Args:
        source: the table; a DataFrame's rows are numbered from 1 in messages.
        inputs: the columns that fill the prompt (a list, or one string ``"a,b"``).
        expected: the expected-output column; several make an object ``{column: value}``.
        id_column: unique case ids; without it cases are ``name-0001``, ... in row order.
        tags_column: a list of tags, or a string split on ``,`` ``;`` ``|``.
        out: the folder that receives ``name/`` (default: the nearest ``data/golden``).
        force: replace an existing dataset folder of that name.
    """
    target = _target(name, out, force)
    input_cols, expected_cols = _names(inputs, "--input"), _names(expected, "--expected")
    table = _read(source)
    wanted = [("--input", c) for c in input_cols] + [("--expected", c) for c in expected_cols]
    wanted += [(opt, c) for opt, c in (("--id", id_column), ("--tags", tags_column)) if c]
    table.require(wanted)
    keys, renamed = _template_keys(input_cols)
    cases = _cases(table, name, keys, expected_cols, id_column, tags_column)
    source_name = _comment(Path(table.label).name)
    card = _card(
        name,
        f"# Imported from {source_name} by workbench dataset import; the cases are in\n"
        "# cases.jsonl, one JSON object per line. Edit the table and import again with --force.",
        f"Imported from {source_name}: {_count(len(cases), 'case')}; input "
        f"{', '.join(input_cols)}; expected {', '.join(expected_cols)}.",
        list(keys.values()),
        [c["expected"] for c in cases],
    )
    dataset = _place(target, card, cases, force=force)
    columns = {"input": input_cols, "expected": expected_cols, "id": id_column, "tags": tags_column}
    return _report("imported", dataset, source=table.label, columns=columns, renamed=renamed)


def init_dataset(
    name: str, *, out: str | os.PathLike[str] | None = None, force: bool = False
) -> DatasetReport:
    """Write a skeleton golden set: a card explaining every key, and one example case."""
    target = _target(name, out, force)
    case = {
        "id": f"{name}-0001",
        "input": {"question": "What is the capital of France?"},
        "expected": "Paris",
        "tags": ["example"],
    }
    description = "Replace this with what the cases cover and who labelled them."
    card = _card(name, _CASES_FORMAT, description, ["question"], [case["expected"]])
    dataset = _place(target, card, [case], force=force)
    return _report("created", dataset)


def check_dataset(name_or_path: str | os.PathLike[str]) -> DatasetReport:
    """Load a dataset by name or folder; the report counts its cases, or lists its problems."""
    try:
        dataset = load_dataset(name_or_path)
    except DatasetError as exc:
        return DatasetReport(action="checked", path=Path(name_or_path), errors=_problems(exc))
    return _report("checked", dataset)


# -- reading a table ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    where: str  # "file:line" or "file: row n", the prefix of every message about the row
    values: dict[str, Any]


@dataclass(frozen=True)
class _Table:
    label: str
    columns: list[str]
    rows: list[_Row]
    header_line: bool = False  # columns come from line 1 (CSV), so misses cite it

    def require(self, wanted: Sequence[tuple[str, str]]) -> None:
        """Refuse a named column the table lacks, or holds twice, listing what it has."""
        problems: list[str] = []
        for option, column in wanted:
            count = self.columns.count(column)
            if count == 1:
                continue
            if count > 1:
                problems.append(f"{option} column {column!r} appears {count} times; rename one")
                continue
            close = difflib.get_close_matches(column, self.columns, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{option} column {column!r} not found{hint}")
        if problems:
            have = ", ".join(repr(c) for c in self.columns) or "none"
            where = f"{self.label}:1" if self.header_line else self.label
            raise DatasetError(f"{where}: {'; '.join(problems)}; the file has columns: {have}")


def _read(source: Any) -> _Table:
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        return _read_frame(source)
    path = Path(source)
    if path.suffix.lower() not in FORMATS:
        raise DatasetError(
            f"{path}: unknown format {path.suffix or '(no extension)'!r}; "
            f"give a {', '.join(FORMATS)} file"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data.strip():
        raise DatasetError(f"{path}: the file is empty; {_SHAPE[path.suffix.lower()]}")
    if path.suffix.lower() == ".csv":
        return _read_csv(data, str(path))
    if path.suffix.lower() == ".jsonl":
        return _read_jsonl(data, str(path))
    return _read_parquet(path)


_SHAPE = {
    ".csv": "a CSV needs a header row naming the columns, then one row per case",
    ".jsonl": 'give one JSON object per line, e.g. {"question": "...", "answer": "..."}',
    ".parquet": "write a table with one row per case",
}


def _read_csv(data: bytes, label: str) -> _Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"{label}:{line}: not valid UTF-8 (byte {data[exc.start : exc.start + 1]!r}); "
            "save the file as UTF-8 (in Excel: Save As, CSV UTF-8)"
        ) from None
    first = text.split("\n", 1)[0]
    # the header picks the delimiter: a comma if it has one, else ; tab or | (Excel in Europe)
    delimiter = "," if "," in first else max(";\t|", key=first.count)
    delimiter = delimiter if delimiter in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[_Row] = []
    header: list[str] | None = None
    errors: list[str] = []
    line = 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not record:
                continue
            if header is None:
                header = [c.strip() for c in record]
                continue
            if len(record) != len(header):
                errors.append(
                    f"{label}:{start}: the row has {_count(len(record), 'cell')} but the header "
                    f"has {_count(len(header), 'column')}; quote cells that hold a {delimiter!r}"
                )
                if len(errors) >= _MAX_ERRORS:
                    break
                continue
            rows.append(_Row(f"{label}:{start}", dict(zip(header, record, strict=True))))
    except csv.Error as exc:
        raise DatasetError(
            f"{label}:{reader.line_num}: not valid CSV: {exc}; check for an unclosed quote"
        ) from None
    if errors:
        raise DatasetError(_join(errors))
    if header is None:
        raise DatasetError(f"{label}: the file is empty; {_SHAPE['.csv']}")
    if not rows:
        raise DatasetError(f"{label}:1: no rows after the header; add one row per case")
    return _Table(label, header, rows, header_line=True)


def _read_jsonl(data: bytes, label: str) -> _Table:
    rows: list[_Row] = []
    columns: dict[str, None] = {}
    errors: list[str] = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if len(errors) >= _MAX_ERRORS:
            errors.append(f"{label}: stopped after {_MAX_ERRORS} errors")
            break
        try:
            text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            errors.append(
                f"{label}:{lineno}: not valid UTF-8 (byte {raw[exc.start : exc.start + 1]!r}); "
                "save the file as UTF-8"
            )
            continue
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            errors.append(f"{label}:{lineno}: not valid JSON: {str(exc).splitlines()[0]}")
            continue
        if not isinstance(doc, dict):
            errors.append(
                f"{label}:{lineno}: a row must be a JSON object "
                f'({{"column": value, ...}}), got {json_type(doc)}'
            )
            continue
        columns.update(dict.fromkeys(doc))
        rows.append(_Row(f"{label}:{lineno}", doc))
    if errors:
        raise DatasetError(_join(errors))
    if not rows:
        raise DatasetError(f"{label}: the file is empty; {_SHAPE['.jsonl']}")
    return _Table(label, list(columns), rows)


def _read_parquet(path: Path) -> _Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            f"{path}: reading Parquet needs pyarrow; run pip install 'pyarrow>=15'"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and more for a bad file
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DatasetError(f"{path}: not a Parquet file pyarrow can read: {first}") from None
    if table.num_rows == 0:
        raise DatasetError(f"{path}: no rows; {_SHAPE['.parquet']}")
    columns = [str(c) for c in table.column_names]
    rows = [_Row(f"{path}: row {i}", row) for i, row in enumerate(table.to_pylist(), start=1)]
    return _Table(str(path), columns, rows)


def _read_frame(frame: Any) -> _Table:
    columns = [str(c) for c in frame.columns]
    if not len(frame):
        raise DatasetError("DataFrame: no rows; give one row per case")
    records = frame.to_dict("records")
    rows = [
        _Row(f"DataFrame: row {i}", {str(k): v for k, v in record.items()})
        for i, record in enumerate(records, start=1)
    ]
    return _Table("DataFrame", columns, rows)


# -- rows to cases --------------------------------------------------------------------------


def _cases(
    table: _Table,
    name: str,
    keys: dict[str, str],
    expected_cols: list[str],
    id_column: str | None,
    tags_column: str | None,
) -> list[dict[str, Any]]:
    is_csv = table.header_line
    width = max(4, len(str(len(table.rows))))
    seen: dict[str, str] = {}
    errors: list[str] = []
    cases: list[dict[str, Any]] = []
    for number, row in enumerate(table.rows, start=1):
        if len(errors) >= _MAX_ERRORS:
            errors.append(f"{table.label}: stopped after {_MAX_ERRORS} errors")
            break
        try:
            case_id = _case_id(row, id_column) if id_column else f"{name}-{number:0{width}d}"
            if case_id in seen:
                raise _RowError(
                    f"{id_column}: duplicate id {short(case_id)} (also at {seen[case_id]}); "
                    f"ids must be unique: fix the {id_column!r} column, or leave out --id "
                    "to number the rows"
                )
            seen[case_id] = row.where
            inp = {key: _plain(row.values.get(col), col) for col, key in keys.items()}
            values = {c: _expected_value(row.values.get(c), c, is_csv) for c in expected_cols}
            tags = _tags(row.values.get(tags_column), tags_column) if tags_column else []
        except _RowError as exc:
            errors.append(f"{row.where}: {exc}")
            continue
        want = values[expected_cols[0]] if len(expected_cols) == 1 else values
        cases.append({"id": case_id, "input": inp, "expected": want, "tags": tags})
    if errors:
        raise DatasetError(_join(errors))
    return cases


class _RowError(Exception):
    """A problem with one cell; the caller prefixes the row's file and line."""


def _case_id(row: _Row, column: str) -> str:
    value = _plain(row.values.get(column), column)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _RowError(f"{column}: empty id; give every row an id, or leave out --id")
    if not isinstance(value, str):
        raise _RowError(f"{column}: an id must be a string or an integer, got {short(value)}")
    return value


def _expected_value(value: Any, column: str, is_csv: bool) -> Any:
    # CSV has only text, so a cell that reads as a JSON object or array is one; other
    # formats keep their types, and their strings stay strings.
    if is_csv and isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return value
    return _plain(value, column)


def _tags(value: Any, column: str) -> list[str]:
    value = _plain(value, column)
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = _TAG_SPLIT.split(value)
    elif isinstance(value, list):
        items = value
    else:
        raise _RowError(f"{column}: tags must be a list or a string like 'a,b', got {short(value)}")
    tags: dict[str, None] = {}
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise _RowError(f"{column}: a tag must be a string, got {short(item)}")
        tag = str(item).strip()
        if tag:
            tags[tag] = None
    return list(tags)


def _plain(value: Any, column: str) -> Any:
    """A cell as a JSON value: NaN and missing values become None, numpy and dates plain."""
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
        value = value.tolist()
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum or other subclass as a plain int
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise _RowError(f"{column}: {value} has no JSON form; use a finite number or null")
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, column) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, column) for v in value]
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return _plain(float(value), column)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise _RowError(f"{column}: binary data is not UTF-8 text") from None
    raise _RowError(f"{column}: a {type(value).__name__} has no JSON form; convert it to text")


def _template_keys(columns: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Each input column's name in the prompt template; the columns that had to be renamed."""
    keys: dict[str, str] = {}
    taken = {c for c in columns if _usable(c)}
    for column in columns:
        if _usable(column):
            keys[column] = column
            continue
        base = re.sub(r"\W+", "_", column).strip("_") or "column"
        base = f"col_{base}" if base[0].isdigit() else base
        key = base if _usable(base) and base not in taken else f"{base}_"
        n = 2
        while key in taken or not _usable(key):
            key, n = f"{base}_{n}", n + 1
        taken.add(key)
        keys[column] = key
    return keys, {c: k for c, k in keys.items() if c != k}


def _usable(name: str) -> bool:
    """Whether ``{{ name }}`` reads the input value ``name`` (not a keyword, global or case key)."""
    if not name.isidentifier() or name in _RESERVED:
        return False
    try:
        return meta.find_undeclared_variables(_jinja.parse(f"{{{{ {name} }}}}")) == {name}
    except TemplateError:
        return False


# -- the card -------------------------------------------------------------------------------


def _card(name: str, intro: str, description: str, keys: list[str], expected: list[Any]) -> str:
    """A commented card whose prompt uses every input key and whose scorers suit ``expected``."""
    if len(keys) == 1:
        user = f"{{{{ {keys[0]} }}}}"
    else:
        user = "\n".join(f"{key}: {{{{ {key} }}}}" for key in keys)
    scorers, why = _scorers(expected)
    return _CARD.format(
        intro=intro,
        name=_scalar(name),
        description=_scalar(description),
        user=_indent(user, 4),
        schema="\n".join(f"# {line}" for line in _schema_example(expected).split("\n")),
        scoring_notes=_wrap(
            "How each output is scored against the case's expected value: each scorer gives "
            "0 to 1, and a case passes when every scorer with a threshold meets it; weight "
            "sets a scorer's share of the case's score, field scores one field of a JSON "
            f"output, options depend on the scorer. {why} Scorers: {', '.join(_known_scorers())}; or a function by dotted "
            "path, mypkg.scorers:my_scorer."
        ),
        scorers=scorers,
    )


def _scorers(expected: list[Any]) -> tuple[str, str]:
    """The scorer list (YAML) that suits the expected values, and why it was chosen."""
    present = [v for v in expected if v is not None]
    if present and all(isinstance(v, dict) for v in present):
        fields = list(dict.fromkeys(k for v in present for k in v))
        shown = ", ".join(f"{_scalar(k)}: 1" for k in fields)
        return (
            "  - name: json_fields        # the share of fields equal to the expected ones\n"
            "    threshold: 1.0           # lower it (e.g. 0.8) to pass partly right outputs\n"
            "    options:\n"
            f"      fields: {{{shown}}}   # field: weight\n"
            "  # - {name: json_schema, threshold: 1.0}   # once output_schema is set",
            "Expected values are JSON objects, so outputs are compared field by field.",
        )
    if present and all(isinstance(v, str) for v in present):
        if all(len(v) <= _SHORT_LABEL and "\n" not in v for v in present):
            return (
                "  - name: exact              # the output, stripped, equals the expected text\n"
                "    threshold: 1.0\n"
                "  # - {name: normalized_exact, threshold: 1.0}   # ignore case and punctuation",
                "Expected values are short strings (labels), so outputs must match exactly.",
            )
        return (
            "  - name: fuzzy              # rapidfuzz similarity to the expected text, 0 to 1\n"
            "    threshold: 0.8\n"
            "    options: {method: token_sort_ratio}\n"
            "  # - {name: semantic, threshold: 0.5}   # similar meaning (offline embeddings)",
            "Expected values are longer texts, so outputs are scored by similarity.",
        )
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return (
            "  - name: numeric            # the output number is close to the expected one\n"
            "    threshold: 1.0\n"
            "    # options: {abs_tol: 0.01}   # accept rounding",
            "Expected values are numbers, so outputs are compared as numbers.",
        )
    return (
        "  - name: exact              # text equal, or JSON equal when expected is not text\n"
        "    threshold: 1.0",
        "Expected values are mixed (or JSON arrays, booleans, nulls), so outputs must equal them.",
    )


def _schema_example(expected: list[Any]) -> str:
    present = [v for v in expected if v is not None]
    if present and all(isinstance(v, dict) for v in present):
        types: dict[str, str] = {}
        for value in present:
            for key, item in value.items():
                if item is not None:
                    types.setdefault(key, json_type(item))
        keys = list(dict.fromkeys(k for v in present for k in v))
    else:
        types, keys = {"answer": "string"}, ["answer"]
    props = "\n".join(f"    {_scalar(k)}: {{type: {types.get(k, 'string')}}}" for k in keys)
    return (
        "output_schema:\n"
        "  type: object\n"
        f"  required: [{', '.join(_scalar(k) for k in keys)}]\n"
        f"  properties:\n{props}"
    )


def _known_scorers() -> list[str]:
    from workbench import scoring

    return scoring.names()


_CARD = """\
# A dataset card: the prompt, the output contract, the scorers and the budgets of a golden set.
# Lines starting with # are comments. Edit the prompt, scorers and budgets, then run:
#   workbench dataset check <this folder>
#   workbench eval <this folder> --model <target>
#
{intro}

# The name runs are recorded under; keep it equal to the folder name.
name: {name}
# What the set covers, where it comes from and who labelled it; shown in reports.
description: {description}

# The messages sent for each case: Jinja templates filled from the case's input (plus
# {{{{ case_id }}}} and {{{{ tags }}}}). Reword them freely, but a case lacking a variable
# they use is refused.
prompt:
  # A placeholder: replace it with the system prompt your app uses.
  system: |
    You are a helpful assistant. Answer with the answer only, no explanation.
  user: |
{user}

# Named prompt variants to compare (workbench eval --prompt NAME; workbench matrix --prompt A
# --prompt B): each may replace system and user and set parameters over the card's; the first
# is the default. A file prompts/NAME.yaml beside this card adds one more.
# prompts:
#   v1: {{}}
#   short:
#     system: Answer in one word.

# The contract for outputs, as a JSON Schema: the json_schema scorer checks it, and with
# structured_output: true it is sent to the model as the response format. Uncomment, adjust:
{schema}
# structured_output: true

# Sampling parameters sent with every request (a run's own options override them):
# temperature, top_p, seed, max_tokens, stop, presence_penalty, frequency_penalty,
# response_format; null means: do not send it.
# parameters:
#   temperature: 0
#   max_tokens: 512

{scoring_notes}
scorers:
{scorers}

# The judge model for model-graded scorers (judge, judge_reference): a target, or a mapping
# with model, temperature, max_tokens, seed, base_url, api_key_env. `--judge` overrides it.
# judge: openai:gpt-4o-mini

# Tools the model may call (OpenAI function definitions; a case may offer its own), and
# tool_choice: auto, required, none or {{type: function, function: {{name: NAME}}}}. Score the
# calls with tool_called, tool_args_schema, tool_args_match and tool_sequence.
# tools:
#   - type: function
#     function:
#       name: lookup_order
#       parameters: {{type: object, properties: {{order_id: {{type: string}}}}, required: [order_id]}}
# tool_choice: auto

# Budgets a run is held to; `workbench eval --gate` exits 1 when one breaks.
budgets:
  p95_latency_ms: 1500   # 95th percentile latency of one call, in milliseconds
  # p50_latency_ms: 500  # median latency
  error_rate: 0.005      # the share of calls that may fail
  pass_rate: 0.8         # the share of cases that must pass
  # mean_score: 0.7      # the floor for the mean case score
"""

_CASES_FORMAT = """\
# cases.jsonl beside this card holds the cases, one JSON object per line:
#   {"id": "unique-id", "input": {"question": "..."}, "expected": "...", "tags": ["..."]}
# "input" fills the prompt templates (or gives "messages": [{"role", "content"}, ...]);
# "expected" is what a right answer looks like: text, or JSON for JSON outputs (null: none).
# To build them from a spreadsheet instead: workbench dataset import FILE --name NAME --force"""


# -- writing --------------------------------------------------------------------------------


def _target(name: str, out: str | os.PathLike[str] | None, force: bool) -> Path:
    """The dataset folder to write, refused early when the name is bad or the folder is taken."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        hint = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip("-._")[:100] or "my-set"
        raise DatasetError(
            f"dataset name {name!r}: it names a folder, so use letters, digits, '-', '_' "
            f"and '.', starting with a letter or digit; e.g. --name {hint}"
        )
    root = Path(out) if out is not None else (golden_root() or Path("data") / "golden")
    target = root / name
    _check_free(target, force)
    return target


def _check_free(target: Path, force: bool) -> None:
    if not (target.exists() or target.is_symlink()):
        return
    if not force:
        raise DatasetError(
            f"{target}: already exists; pick another --name, or pass --force to replace it"
        )
    others = sorted(p.name for p in target.iterdir()) if target.is_dir() else [target.name]
    others = [n for n in others if n not in (CASES_NAME, *CARD_NAMES)]
    if others:
        raise DatasetError(
            f"{target}: holds {', '.join(others[:5])} besides a dataset, so --force will not "
            "replace it; move those files, or pick another --name"
        )


def _place(target: Path, card: str, cases: list[dict[str, Any]], *, force: bool) -> Dataset:
    """Write the dataset into a hidden folder beside ``target``, load it, then move it there."""
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    # mkdir, not mkdtemp: the folder gets the umask's permissions, as if made by hand
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        (tmp / CARD_NAMES[0]).write_bytes(card.encode("utf-8"))
        lines = (json.dumps(c, ensure_ascii=False, allow_nan=False) + "\n" for c in cases)
        (tmp / CASES_NAME).write_bytes("".join(lines).encode("utf-8"))
        loaded = load_dataset(tmp)
        if len(loaded) != len(cases):  # pragma: no cover - a bug, not bad input
            raise DatasetError(f"{tmp}: wrote {len(cases)} cases but {len(loaded)} load back")
        _check_free(target, force)
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
            target.rename(old)
            try:
                tmp.rename(target)
            except BaseException:
                old.rename(target)
                raise
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:  # innermost first; leave alone any that gained other files
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return load_dataset(target)


# -- helpers --------------------------------------------------------------------------------


def _report(action: str, dataset: Dataset, **extra: Any) -> DatasetReport:
    counts = collections.Counter(t for case in dataset.cases for t in case.tags)
    return DatasetReport(
        action=action,
        path=dataset.path,
        name=dataset.name,
        hash=dataset.hash,
        cases=len(dataset),
        tags=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        untagged=sum(1 for case in dataset.cases if not case.tags),
        scorers=tuple(spec.label for spec in dataset.card.scorers),
        **extra,
    )


def _problems(exc: DatasetError) -> tuple[str, ...]:
    """The separate problems of a DatasetError (golden joins several under 'N problems:')."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and re.fullmatch(r"\d+ problems:", lines[0]):
        lines = lines[1:]
    return tuple(lines)


def _names(value: str | Sequence[str], option: str) -> list[str]:
    parts: Iterable[str] = value.split(",") if isinstance(value, str) else value
    names = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not names:
        raise DatasetError(f"{option}: name at least one column, e.g. {option} question")
    return names


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _scalar(value: Any) -> str:
    """A value as YAML flow text on one line, quoted when YAML needs it."""
    text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=2**31 - 1)
    return text.strip()[1:-1]


def _comment(text: str) -> str:
    """Text that is safe inside a YAML comment: one line."""
    return " ".join(str(text).split())


def _wrap(text: str) -> str:
    """A paragraph as YAML comment lines."""
    return textwrap.fill(_comment(text), width=92, initial_indent="# ", subsequent_indent="# ")


def _indent(text: str, width: int) -> str:
    return "\n".join(" " * width + line for line in text.split("\n"))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _join(errors: list[str]) -> str:
    if len(errors) == 1:
        return errors[0]
    return f"{len(errors)} problems:\n  " + "\n  ".join(errors)
