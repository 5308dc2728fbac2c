"""Fuzzing every loader and parser: bad input is a WorkbenchError naming the file, never a crash.

Inputs come two ways: mutations of a valid document (fields dropped, retyped or
duplicated; NaN, infinities, -0, huge integers, deep nesting; other encodings, NUL
bytes, BOMs, CRLF, truncation) and arbitrary bytes. The property: a loader returns its
object, or raises a WorkbenchError subclass whose message names the file; any other
exception fails the test. Traces and the cache's price tables are fuzzed in their own
test files.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TINY_CARD, tiny_cases
from workbench import cache, golden, latency, profiling, weekly
from workbench.errors import WorkbenchError
from workbench.profiling import flamegraph
from workbench.profiling._output import read_output
from workbench.providers import Snapshots

T = TypeVar("T")

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Placeholders swapped for raw text after serialising: values no serialiser writes.
_DEEP = "__fuzz_deep__"
_HUGE_INT = "__fuzz_huge_int__"

_WEIRD: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    -0.0,
    1.5,
    math.nan,
    math.inf,
    -math.inf,
    10**400,
    -(10**30),
    "",
    " ",
    "x",
    "\x00",
    "é\u2028",
    "{{ missing }}",
    "{% if %}",
    [],
    [1, "a"],
    {},
    {"a": 1},
    {"id": "c000"},
    {"name": "json_schema"},
    [[[]]],
    _DEEP,
    _HUGE_INT,
]
_KEYS: list[Any] = ["id", "name", "extra", "", "text", "key", "pins", "notebooks", 1, None]


def _deep(n: int) -> str:
    return "[" * n + "]" * n


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """The document with up to four random mutations anywhere in its tree."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, 4))):
        doc = _mutate(draw, doc)
    return doc


def _mutate(draw: st.DrawFn, node: Any) -> Any:
    if isinstance(node, dict | list) and node and draw(st.booleans()):
        if isinstance(node, dict):
            key = draw(st.sampled_from(sorted(node, key=repr)))
            node[key] = _mutate(draw, node[key])
        else:
            i = draw(st.integers(0, len(node) - 1))
            node[i] = _mutate(draw, node[i])
        return node
    op = draw(st.sampled_from(["replace", "drop", "duplicate", "add"]))
    if op == "drop" and node:
        if isinstance(node, dict):
            del node[draw(st.sampled_from(sorted(node, key=repr)))]
            return node
        if isinstance(node, list):
            node.pop(draw(st.integers(0, len(node) - 1)))
            return node
    if op == "duplicate" and isinstance(node, list) and node:
        node.append(copy.deepcopy(node[draw(st.integers(0, len(node) - 1))]))
        return node
    if op == "add" and isinstance(node, dict):
        node[draw(st.sampled_from(_KEYS))] = copy.deepcopy(draw(st.sampled_from(_WEIRD)))
        return node
    return copy.deepcopy(draw(st.sampled_from(_WEIRD)))


def _fill(text: str, draw: st.DrawFn) -> str:
    if _DEEP in text:
        deep = _deep(draw(st.sampled_from([50, 1000, 5000])))
        text = text.replace(f'"{_DEEP}"', deep).replace(_DEEP, deep)
    return text.replace(f'"{_HUGE_INT}"', "9" * 5000).replace(_HUGE_INT, "9" * 5000)


@st.composite
def as_json(draw: st.DrawFn, doc: Any) -> str:
    """A document as JSON (NaN and Infinity allowed, as Python writes them)."""
    text = json.dumps(doc, allow_nan=True, ensure_ascii=draw(st.booleans()))
    return _fill(text, draw)


@st.composite
def as_yaml(draw: st.DrawFn, doc: Any) -> str:
    """A document as YAML, block or flow style."""
    text = yaml.safe_dump(
        doc, allow_unicode=draw(st.booleans()), default_flow_style=draw(st.booleans())
    )
    return _fill(text, draw)


@st.composite
def encoded(draw: st.DrawFn, text: str) -> bytes:
    """Text as bytes: UTF-8 mostly, else UTF-16, latin-1, a BOM, CRLF, NULs, bad bytes, a cut."""
    how = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "crlf"]))
    if how == "crlf":
        data = text.replace("\n", "\r\n").encode()
    elif how == "latin-1":
        data = text.encode("latin-1", errors="replace")
    else:
        data = text.encode(how)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data)))
        damage = draw(st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\n", b""]))
        data = data[:at] + damage + (data[at:] if damage else data[at + 1 :])
    return data


def documents(doc: Any, *, fmt: str = "json") -> st.SearchStrategy[bytes]:
    """Mutations of a valid document, serialised and encoded, or arbitrary bytes and text."""
    serialise = as_json if fmt == "json" else as_yaml
    return st.one_of(
        mutated(doc).flatmap(serialise).flatmap(encoded),
        mutated(doc).flatmap(serialise).flatmap(encoded),
        mutated(doc).flatmap(serialise).flatmap(encoded),
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


def jsonl(docs: list[Any]) -> st.SearchStrategy[bytes]:
    """JSON Lines from mutations of a list of valid records (dropped, duplicated, retyped)."""

    @st.composite
    def lines(draw: st.DrawFn) -> str:
        records = draw(mutated(docs))
        if not isinstance(records, list):
            records = [records]
        return "\n".join(draw(as_json(r)) for r in records) + "\n"

    return st.one_of(
        lines().flatmap(encoded),
        lines().flatmap(encoded),
        lines().flatmap(encoded),
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


def outcome(load: Callable[[], T], file: Path) -> T | WorkbenchError:
    """What a loader did: its result, or the WorkbenchError it raised (which must name the file)."""
    try:
        return load()
    except WorkbenchError as exc:
        message = str(exc)
        assert str(file) in message, f"the error does not name {file}: {message[:300]}"
        assert len(message) < 20_000, f"an error message of {len(message):,} chars"
        return exc


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One folder reused by every example of a test (tmp_path would be one per test)."""
    with tempfile.TemporaryDirectory(prefix="workbench-fuzz-") as folder:
        yield Path(folder)


# -- golden sets ---------------------------------------------------------------------------

_CARD = golden.parse_card(yaml.safe_dump(TINY_CARD).encode(), Path("dataset.yaml"))
_FULL_CARD: dict[str, Any] = {
    **TINY_CARD,
    "description": "fuzzed",
    "scorers": [
        *TINY_CARD["scorers"],
        {"name": "exact", "field": "answer", "options": {}},
    ],
    "parameters": {"temperature": 0, "seed": 1, "max_tokens": 64},
}


@FUZZ
@given(data=jsonl(tiny_cases(3)))
def test_parse_cases(data: bytes) -> None:
    path = Path("/fuzz/cases.jsonl")
    got = outcome(lambda: golden.parse_cases(data, path, card=_CARD), path)
    if isinstance(got, WorkbenchError):
        assert f"{path}:" in str(got)
        return
    assert got and len({c.id for c in got}) == len(got)
    assert all(isinstance(c.id, str) and isinstance(c.input, dict) for c in got)


@FUZZ
@given(data=documents(_FULL_CARD, fmt="yaml"))
def test_parse_card_yaml(data: bytes) -> None:
    path = Path("/fuzz/dataset.yaml")
    got = outcome(lambda: golden.parse_card(data, path), path)
    if not isinstance(got, WorkbenchError):
        assert isinstance(got, golden.Card) and got.name
        assert all(math.isfinite(v) for v in got.budgets.values())


@FUZZ
@given(data=documents(_FULL_CARD, fmt="json"))
def test_parse_card_json(data: bytes) -> None:
    path = Path("/fuzz/dataset.json")
    got = outcome(lambda: golden.parse_card(data, path), path)
    if not isinstance(got, WorkbenchError):
        assert isinstance(got, golden.Card) and got.name


@FUZZ
@given(card=documents(_FULL_CARD, fmt="yaml"), cases=jsonl(tiny_cases(2)))
def test_load_dataset(scratch: Path, card: bytes, cases: bytes) -> None:
    folder = scratch / "dataset"
    folder.mkdir(exist_ok=True)
    (folder / "dataset.yaml").write_bytes(card)
    (folder / "cases.jsonl").write_bytes(cases)
    got = outcome(lambda: golden.load_dataset(folder), folder)
    if not isinstance(got, WorkbenchError):
        assert len(got.hash) == 16 and len(got) == len(got.cases) > 0


# -- snapshots -------------------------------------------------------------------------------

_SNAPSHOT = {
    "key": "a" * 64,
    "target": "demo:triage-v1",
    "case_id": "c000",
    "request": {"messages": [{"role": "user", "content": "hi"}], "temperature": 0},
    "response": {"text": "hello", "finish_reason": "stop", "tokens_in": 3, "tokens_out": 1},
}


@FUZZ
@given(data=jsonl([_SNAPSHOT, {**_SNAPSHOT, "key": "b" * 64}]))
def test_snapshots(scratch: Path, data: bytes) -> None:
    snaps_dir = scratch / "snapshots"
    snaps_dir.mkdir(exist_ok=True)
    file = snaps_dir / "demo_triage-v1.jsonl"
    file.write_bytes(data)
    got = outcome(lambda: Snapshots(snaps_dir, "demo:triage-v1"), file)
    if not isinstance(got, WorkbenchError):
        for key, entry in got.entries.items():
            assert isinstance(key, str) and isinstance(entry["response"]["text"], str)


# -- profiler outputs ----------------------------------------------------------------------

_COLLAPSED = "process 1;main (app.py:3);work (app.py:9) 12\nprocess 1;main (app.py:3) 4\n"


@FUZZ
@given(
    data=st.one_of(
        st.text(max_size=300),
        st.lists(st.sampled_from([*_COLLAPSED.splitlines(), "a;b ²", "a 0", "x -3", "y 1e9"]))
        .map("\n".join)
        .flatmap(encoded),
        st.binary(max_size=300),
    )
)
def test_pyspy_output(scratch: Path, data: str | bytes) -> None:
    file = scratch / "raw.txt"
    file.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    got = outcome(lambda: read_output("py-spy", file, ()), file)
    if not isinstance(got, WorkbenchError):
        stacks = got[0]
        assert all(isinstance(s, str) and isinstance(c, int) and c >= 0 for s, c in stacks.items())


def test_parse_collapsed_never_raises_on_text() -> None:
    text = "a;b 12\nsuper ²\nwide ١٢\nhuge " + "9" * 5000 + "\n"
    assert flamegraph.parse_collapsed(text) == {"a;b": 12}


_SCALENE: dict[str, Any] = {
    "elapsed_time_sec": 1.5,
    "stacks": [[["/app/work.py main:3;", "/app/work.py work:9;"], {"count": 7}]],
    "files": {
        "/app/work.py": {
            "functions": [{"line": "work", "lineno": 9, "n_cpu_percent_python": 40.0}],
            "lines": [
                {"lineno": 9, "line": "x = y\n", "n_cpu_percent_python": 40.0, "n_peak_mb": 1.0},
                {"lineno": 10, "line": "pass\n", "n_cpu_percent_c": 2.5},
            ],
        }
    },
}


@FUZZ
@given(data=documents(_SCALENE))
def test_scalene_output(scratch: Path, data: bytes) -> None:
    file = scratch / "scalene.json"
    file.write_bytes(data)
    got = outcome(lambda: read_output("scalene", file, ("/app",)), file)
    if not isinstance(got, WorkbenchError):
        stacks, _, lines, wall_s = got
        assert all(isinstance(c, int) and c >= 0 for c in stacks.values())
        assert all(isinstance(row["line"], int) for row in lines)
        assert wall_s is None or math.isfinite(wall_s)


_PINS = {
    "pins": [
        {"name": "model call", "function": "TriageApp.call_model", "max_total_share": 0.9},
        {"pattern": "embed*", "max_total_s": 2.0},
        {"regex": "^valid", "max_self_share": 0.2},
    ]
}


@FUZZ
@given(data=documents(_PINS, fmt="yaml"))
def test_load_pins(scratch: Path, data: bytes) -> None:
    file = scratch / "pins.yaml"
    file.write_bytes(data)
    got = outcome(lambda: profiling.load_pins(file), file)
    if not isinstance(got, WorkbenchError):
        assert all(math.isfinite(v) for pin in got for v in pin.limits.values())


# -- config files ----------------------------------------------------------------------------

_WEEKLY = yaml.safe_load(
    (Path(weekly.__file__).parent / "demo" / "weekly.yaml").read_text(encoding="utf-8")
)


@FUZZ
@given(data=documents(_WEEKLY, fmt="yaml"))
def test_weekly_config(scratch: Path, data: bytes) -> None:
    file = scratch / "weekly.yaml"
    file.write_bytes(data)
    got = outcome(lambda: weekly.load_config(file), file)
    if not isinstance(got, WorkbenchError):
        assert got.notebooks and len({j.name for j in got.notebooks}) == len(got.notebooks)


_ENDPOINTS = {
    "endpoints": [
        {
            "name": "search",
            "url": "http://127.0.0.1:8000/api/search",
            "kind": "api",
            "bodies": [{"query": "refund", "k": 3}],
            "weight": 0.4,
        },
        {
            "name": "triage",
            "url": "http://127.0.0.1:8000/api/triage",
            "kind": "llm",
            "method": "post",
            "stream": True,
            "body": {"ticket": "help"},
            "budget": {"p95_ms": 1200, "error_rate": 0.01, "ttft_p95_ms": 400},
        },
    ]
}


@FUZZ
@given(data=documents(_ENDPOINTS, fmt="yaml"))
def test_load_endpoints(scratch: Path, data: bytes) -> None:
    file = scratch / "endpoints.yaml"
    file.write_bytes(data)
    got = outcome(lambda: latency.load_endpoints(file), file)
    if not isinstance(got, WorkbenchError):
        for ep in got:
            assert math.isfinite(ep.weight) and ep.weight >= 0
            limits = ep.limits
            assert all(
                v is None or (isinstance(v, float) and math.isfinite(v) and v >= 0)
                for v in (limits.p95_ms, limits.error_rate, limits.p99_ms, limits.ttft_p95_ms)
            )


_PAIRS = [
    {"query": "cancel my plan", "cached": "how do I cancel?", "same": True},
    {"query": "turn on 2FA", "cached": "turn off 2FA", "same": False},
]


@FUZZ
@given(data=jsonl(_PAIRS))
def test_load_pairs(scratch: Path, data: bytes) -> None:
    file = scratch / "pairs.jsonl"
    file.write_bytes(data)
    got = outcome(lambda: cache.load_pairs(file), file)
    if not isinstance(got, WorkbenchError):
        assert got and all(
            isinstance(q, str) and isinstance(c, str) and isinstance(same, bool)
            for q, c, same in got
        )


# -- the huge, the deep and the oddly encoded, once each per loader --------------------------


def _huge_line(n: int = 3_000_000) -> str:
    return "x" * n


_EXTREMES: dict[str, bytes] = {
    "huge line": ("a: " + _huge_line() + "\n").encode(),
    "huge JSON string": json.dumps({"id": _huge_line(), "input": {}, "expected": None}).encode(),
    "huge key": json.dumps({_huge_line(): 1}).encode(),
    "deep list": _deep(100_000).encode(),
    "deep mapping": ('{"a":' * 50_000 + "1" + "}" * 50_000).encode(),
    "deep YAML block": "".join(" " * i + "a:\n" for i in range(2000)).encode(),
    "UTF-16 with BOM": "pins: []\nname: x\n".encode("utf-16"),
    "NaN and infinities": b'{"id": NaN, "input": {"x": Infinity}, "expected": -Infinity}\n',
    "huge integer": ('{"id": "c", "input": {}, "expected": ' + "9" * 100_000 + "}").encode(),
    "NUL bytes": b"\x00" * 1000,
    "many lines": b'{"id": "c", "input": {}, "expected": 1}\n' * 50_000,
}


def _loaders(folder: Path) -> dict[str, tuple[Callable[[bytes], Any], Path]]:
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str) -> Callable[[bytes], Path]:
        def go(data: bytes) -> Path:
            (folder / name).write_bytes(data)
            return folder / name

        return go

    def dataset(data: bytes) -> Any:
        (folder / "dataset.yaml").write_text("name: extreme\n", encoding="utf-8")
        write("cases.jsonl")(data)
        return golden.load_dataset(folder)

    return {
        "cases": (lambda d: golden.parse_cases(d, folder / "c.jsonl", card=_CARD), folder),
        "card yaml": (lambda d: golden.parse_card(d, folder / "d.yaml"), folder),
        "card json": (lambda d: golden.parse_card(d, folder / "d.json"), folder),
        "dataset": (dataset, folder),
        "snapshots": (lambda d: (write("t.jsonl")(d), Snapshots(folder, "t"))[1], folder),
        "py-spy": (lambda d: read_output("py-spy", write("r.txt")(d), ()), folder),
        "scalene": (lambda d: read_output("scalene", write("s.json")(d), ()), folder),
        "pins": (lambda d: profiling.load_pins(write("p.yaml")(d)), folder),
        "weekly": (lambda d: weekly.load_config(write("w.yaml")(d)), folder),
        "endpoints": (lambda d: latency.load_endpoints(write("e.yaml")(d)), folder),
    }


@pytest.mark.parametrize("extreme", sorted(_EXTREMES))
def test_extremes(tmp_path: Path, extreme: str) -> None:
    for name, (load, where) in _loaders(tmp_path / "x").items():
        try:
            outcome(lambda: load(_EXTREMES[extreme]), where)  # noqa: B023 - called at once
        except Exception as exc:  # which loader failed, not only how
            raise AssertionError(f"{name}: {type(exc).__name__}: {str(exc)[:300]}") from exc


# -- what the fuzzing found, pinned ----------------------------------------------------------

_FOUND: list[tuple[str, str, str, str]] = [
    # (loader, file name, content, fragment of the message)
    ("card", "dataset.json", "[" * 5000 + "]" * 5000, ":1: nested too deeply"),
    ("card", "dataset.yaml", "name: x\nbudgets: {p95_latency_ms: " + "9" * 400 + "}\n", "got 999"),
    ("card", "dataset.yaml", "name: x\nscorers: [{name: exact, 1: a, b: c}]\n", ":2: scorers[0].1"),
    ("card", "dataset.yaml", "name: x\nparameters: {seed: 2024-01-01}\n", "parameters.seed"),
    ("card", "dataset.yaml", "name: x\noutput_schema: {type: !!binary aGk=}\n", "no JSON form"),
    ("cases", "cases.jsonl", '{"' + "x" * 10**6 + '": 1}\n', ":1: xxx"),
    ("snapshots", "t.jsonl", '{"key": ["k"], "response": {"text": "x"}}\n', ":1: not a snapshot"),
    ("snapshots", "t.jsonl", '{"key": "k", "response": {"text": 7}}\n', "response.text"),
    ("pins", "pins.yaml", "pins:\n  - function: f\n    max_total_s: !!int x\n", ":3: pins[0]"),
    ("pins", "pins.yaml", "pins:\n  - function: f\n    max_total_s: " + "9" * 400 + "\n", ":3:"),
    ("pins", "pins.yaml", "pins: " + "[" * 2000 + "]" * 2000 + "\n", ":1: nested too deeply"),
    ("weekly", "weekly.yaml", "timeout_s: !!int x\nnotebooks: [a]\n", "not valid YAML: invalid"),
    ("weekly", "weekly.yaml", "1: a\nb: c\nnotebooks: [a]\n", "unknown key"),
    ("weekly", "weekly.yaml", "fail_on_budget: 'false'\nnotebooks: [a]\n", "true or false"),
    ("endpoints", "e.yaml", "endpoints: [{url: 'http://127.0.0.1', weight: abc}]\n", "weight"),
    ("endpoints", "e.yaml", "endpoints: [{url: 'http://127.0.0.1', kind: [api]}]\n", "kind"),
    (
        "endpoints",
        "e.yaml",
        "endpoints: [{url: 'http://127.0.0.1', budget: {p95_ms: .nan}}]\n",
        "p95",
    ),
    ("scalene", "s.json", "[1, 2]", "not an object"),
    ("scalene", "s.json", '{"files": []}', "files"),
]


@pytest.mark.parametrize(("loader", "name", "text", "fragment"), _FOUND)
def test_found_by_fuzzing(tmp_path: Path, loader: str, name: str, text: str, fragment: str) -> None:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    load: dict[str, Callable[[], Any]] = {
        "card": lambda: golden.parse_card(file.read_bytes(), file),
        "cases": lambda: golden.parse_cases(file.read_bytes(), file, card=_CARD),
        "snapshots": lambda: Snapshots(tmp_path, "t"),
        "pins": lambda: profiling.load_pins(file),
        "weekly": lambda: weekly.load_config(file),
        "endpoints": lambda: latency.load_endpoints(file),
        "scalene": lambda: read_output("scalene", file, ()),
    }
    with pytest.raises(WorkbenchError) as info:
        load[loader]()
    assert str(file) in str(info.value) and fragment in str(info.value)
    assert len(str(info.value)) < 2000


def test_scalene_counts_and_figures_that_are_not_numbers_are_skipped(tmp_path: Path) -> None:
    file = tmp_path / "scalene.json"
    doc = copy.deepcopy(_SCALENE)
    doc["stacks"].append([["/app/work.py other:1;"], {"count": 1e400}])
    doc["files"]["/app/work.py"]["lines"].append({"lineno": "ten", "n_cpu_percent_c": 1.0})
    doc["elapsed_time_sec"] = math.inf
    file.write_text(json.dumps(doc), encoding="utf-8")
    stacks, functions, lines, wall_s = read_output("scalene", file, ("/app",))
    assert stacks == {"main (/app/work.py);work (/app/work.py)": 7}
    assert [row["line"] for row in lines] == [9, 10] and wall_s is None
    assert functions["work (work.py)"]["cpu_python_pct"] == 40.0
