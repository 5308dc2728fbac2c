"""Published reports are safe to open: redacted outputs, no leaked keys, no script injection.

The XSS corpus goes through the real path: a python: target echoes payloads taken from case
inputs, golden_eval and model_delta run under papermill, the reports are published, and each
HTML is opened in headless Chromium, where every payload would set ``window.__xss``, open a
dialog or make a request if it ever ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tests.conftest import TINY_CARD, write_dataset
from workbench import publish
from workbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-proj-" + "Wb7Xq2Lm9Rt4Zp8Kd3Vn6Hs1Jc5Fy0GaUe2Ti8Ob"

# Every payload carries a marker "xssNN", so the test can check it reached the page as text.
PAYLOADS = [
    "<script>window.__xss='xss00'</script>",
    "<img src=x onerror=\"window.__xss='xss01'\">",
    "<svg onload=\"window.__xss='xss02'\">",
    "<svg><script>window.__xss='xss03'</script></svg>",
    "<a href=\"javascript:window.__xss='xss04'\">open</a>",
    "\"><script>window.__xss='xss05'</script>",
    "'><img src=x onerror=alert('xss06')>",
    "</textarea><script>window.__xss='xss07'</script>",
    "<iframe srcdoc=\"<script>parent.__xss='xss08'</script>\"></iframe>",
    "</td></tr></table><script>window.__xss='xss09'</script>",
    "</script><script>window.__xss='xss10'</script>",
    "<body onload=window.__xss='xss11'>",
    "<details open ontoggle=\"window.__xss='xss12'\">",
    "<input autofocus onfocus=\"window.__xss='xss13'\">",
    "<video><source onerror=\"window.__xss='xss14'\"></video>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss='xss15'>",
    "[click me](javascript:window.__xss='xss16')",
    "**bold** <img src=x onerror=alert('xss17')> _md_",
    "{{constructor.constructor(\"window.__xss='xss18'\")()}}",
    "${window.__xss='xss19'}",
    r"\u003cscript\u003ewindow.__xss='xss20'\u003c/script\u003e",
    "＜script＞window.__xss='xss21'＜/script＞",
    "<object data=\"javascript:window.__xss='xss22'\"></object>",
    "<embed src=\"data:text/html,<script>parent.__xss='xss23'</script>\">",
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=\'xss24\'">',
    "<img src=x onerror=\"window.__xss='xss25'\"> mail jane.doe@example.com",
    '<img src="http://evil.example/xss26.png">',
    '<link rel=stylesheet href="//evil.example/xss27.css">',
    "<style>@import 'http://evil.example/xss28.css';</style>",
    "<scr<script>ipt>window.__xss='xss29'</scr</script>ipt>",
    "<!--<img src=\"--><img src=x onerror=window.__xss='xss30'//\">",
    "<base href=\"javascript:window.__xss='xss31'//\">",
]
MARKERS = [f"xss{i:02d}" for i in range(len(PAYLOADS))]


# -- redaction of a notebook, every output kind --------------------------------------------------


def _leaky_notebook() -> nbformat.NotebookNode:
    secret = f"key {KEY}, mail jane.doe@example.com, host 10.1.2.3"
    cell = new_code_cell(source=f"print('{secret}')")
    cell.outputs = [
        new_output("stream", name="stdout", text=secret + "\n"),
        new_output(
            "display_data",
            data={
                "text/plain": secret,
                "text/markdown": f"**{secret}**",
                "text/html": f"<table><tr><td title='{secret}'>{secret} &amp; bob&#64;example.org"
                f'</td></tr></table><script>var k = "{KEY}"; var ip = "1.2.3.4";</script>',
                "application/json": {"note": secret, "n": 3},
                "image/svg+xml": f"<svg><text>{secret}</text></svg>",
            },
        ),
        new_output("error", ename="ValueError", evalue=secret, traceback=[f"\x1b[0;31m{secret}"]),
    ]
    nb = new_notebook(cells=[cell])
    nb.metadata["papermill"] = {"parameters": {"note": secret}}
    return nb


def test_every_output_kind_is_redacted_and_markup_survives() -> None:
    nb = publish.redact_notebook(_leaky_notebook())
    text = json.dumps(nb)
    assert KEY not in text and "jane.doe@example.com" not in text and "10.1.2.3" not in text
    assert "bob@example.org" not in text and "bob&#64;example.org" not in text
    for kind in ("SECRET", "EMAIL", "IP"):
        assert f"[{kind}]" in text
    html = nb.cells[0].outputs[1]["data"]["text/html"]
    assert html.startswith('<table><tr><td title="key [SECRET], mail [EMAIL], host [IP]">')
    # Script bodies: key shapes go, code stays (no general pattern corrupts JavaScript).
    assert 'var k = "[SECRET]"; var ip = "1.2.3.4";' in html
    assert nb.cells[0].outputs[1]["data"]["application/json"] == {
        "note": "key [SECRET], mail [EMAIL], host [IP]",
        "n": 3,
    }
    assert nb.metadata["papermill"]["parameters"]["note"] == "key [SECRET], mail [EMAIL], host [IP]"
    nbformat.validate(nb)


def test_publish_refuses_a_parameter_holding_a_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-1234567890")
    with pytest.raises(ConfigError, match=r"'note' holds the value of \$MY_SERVICE_TOKEN"):
        publish.publish("golden_eval", tmp_path, {"note": "x tok-1234567890 y"})
    assert list(tmp_path.iterdir()) == []


def test_artifact_links_never_carry_a_script_url() -> None:
    header = publish.provenance_header(
        "r",
        {
            "artifacts": {
                "flame": "flame.svg",
                "bad": "javascript:alert(1)",
                "tab": "java\tscript:alert(1)",
                "data": " data:text/html,<script>alert(1)</script>",
            }
        },
    )
    assert "<a href='flame.svg'>flame</a>" in header
    assert "href='java" not in header and "href=' data" not in header
    assert "<script>" not in header


# -- the XSS corpus through papermill, publish and a real browser --------------------------------


@pytest.fixture(scope="module")
def xss_reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, publish.Report]]:
    """golden_eval for a baseline and an echoing candidate, then model_delta over the two."""
    tmp = tmp_path_factory.mktemp("xss")
    # 15 cases (the reports list up to 15 failures): an output payload and an expected one
    # each, every first payload again as a tag, and the last two as extra tags.
    n = 15
    cases = [
        {
            "id": f"x{i:02d}",
            "input": {
                "payload": PAYLOADS[i],
                "field": PAYLOADS[n + i],
                "expected": PAYLOADS[n + i],
            },
            "expected": {"answer": PAYLOADS[n + i]},
            "tags": [PAYLOADS[i], *PAYLOADS[2 * n + i : 2 * n + i + 1]],
        }
        for i in range(n)
    ]
    assert {
        p for c in cases for p in (c["input"]["payload"], c["input"]["field"], *c["tags"])
    } == set(PAYLOADS)
    card = {**TINY_CARD, "name": "xss", "prompt": {"user": "{{ payload }}"}}
    dataset = write_dataset(tmp / "xss", cases, card)
    out, db = tmp / "reports", str(tmp / "workbench.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(ROOT))  # the kernels import tests.xss_app
        mp.setenv("OPENAI_API_KEY", KEY)
        reports = {}
        for name, fn in (("base", "expected"), ("cand", "echo")):
            reports[name] = publish.publish(
                "golden_eval",
                out,
                {"dataset": str(dataset), "model": f"python:tests.xss_app:{fn}", "db": db},
                name=f"golden_eval-{name}",
            )
            assert reports[name].ok, reports[name].error
        reports["delta"] = publish.publish(
            "model_delta",
            out,
            {
                "base_run": reports["base"].summary["runs"][0],
                "cand_run": reports["cand"].summary["runs"][0],
                "db": db,
            },
            name="model_delta",
        )
        assert reports["delta"].ok, reports["delta"].error
        yield reports


def test_the_corpus_is_large_and_varied() -> None:
    assert len(PAYLOADS) >= 20 and len(set(PAYLOADS)) == len(PAYLOADS)
    assert all(m in p for m, p in zip(MARKERS, PAYLOADS, strict=True))


def test_payloads_are_escaped_in_the_published_html(xss_reports: dict[str, publish.Report]) -> None:
    for report in xss_reports.values():
        text = report.html.read_text(encoding="utf-8")
        for payload in PAYLOADS:
            # Markup never appears raw; a payload without any is plain (inert) text.
            assert "<" not in payload or payload not in text, (report.name, payload)
    cand = xss_reports["cand"].html.read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__xss=" in cand  # shown as text, not dropped
    assert "jane.doe@example.com" not in cand and "[EMAIL]" in cand  # redaction kept escaping


browser = pytest.importorskip("tests._browser")
needs_chromium = pytest.mark.skipif(
    browser.chromium() is None, reason="chromium is not installed (make installs it)"
)


def _inert_pages(reports: dict[str, publish.Report]) -> str:
    """Open each report in Chromium: nothing ran, nothing loaded from outside, charts drew.

    Returns the visible text of every page, to check the payloads arrived as text.
    """
    seen = ""
    for name, report in reports.items():
        visit = browser.visit(
            report.html,
            {
                "xss": "typeof window.__xss",
                "text": "document.body.innerText",
                "charts": "document.querySelectorAll('.plotly .main-svg').length",
                "iframes": "document.querySelectorAll('iframe, object, embed, base').length",
            },
        )
        assert visit.dialogs == [], name
        assert visit.values["xss"] == "undefined", name
        assert visit.external == [], name
        assert visit.values["iframes"] == 0, name
        assert visit.values["charts"] >= 1, name  # plotly still draws after redaction
        seen += visit.values["text"]
    return seen


@needs_chromium
def test_no_payload_runs_in_a_real_browser(xss_reports: dict[str, publish.Report]) -> None:
    seen = _inert_pages(xss_reports)
    missing = [m for m in MARKERS if m not in seen]
    assert missing == [], "payloads that never reached a page as text"


# -- the store, optionally redacted --------------------------------------------------------------


def test_eval_redact_stores_redacted_outputs_but_scores_the_originals(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main
    from workbench.store import Store

    cases = [
        {
            "id": "c0",
            "input": {"question": "jane.doe@example.com"},
            "expected": {"answer": "jane.doe@example.com"},
        },
        {"id": "c1", "input": {"question": KEY}, "expected": {"answer": "other"}},
    ]
    dataset = write_dataset(tmp_path / "pii", cases)
    db = tmp_path / "w.db"
    args = ["eval", str(dataset), "--model", "python:tests.echo_app:answer", "--db", str(db)]
    result = CliRunner().invoke(main, [*args, "--redact", "--json"])
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        rows = {r["case_id"]: r for r in store.db.query("SELECT * FROM results")}
        details = " ".join(r["detail"] or "" for r in store.db.query("SELECT detail FROM scores"))
        (run,) = store.db.query("SELECT parameters FROM runs")
    assert json.loads(rows["c0"]["output"]) == {"answer": "[EMAIL]"} and rows["c0"]["passed"] == 1
    assert json.loads(rows["c1"]["output"]) == {"answer": "[SECRET]"} and rows["c1"]["passed"] == 0
    assert KEY not in details and "[SECRET]" in details
    assert json.loads(run["parameters"])["redact"] is True
    plain = CliRunner().invoke(main, args)  # without the flag the store keeps the original
    assert plain.exit_code == 0
    with Store(db) as store:
        outputs = [r["output"] for r in store.db.query("SELECT output FROM results")]
    assert any("jane.doe@example.com" in o for o in outputs)


def test_the_header_says_whether_redaction_was_on() -> None:
    assert "<td><b>redaction</b></td><td>on:" in publish.provenance_header("r", {"redacted": True})
    off = publish.provenance_header("r", {"redacted": False})
    assert "<td><b>redaction</b></td><td>OFF:" in off


# -- trace attributes in the trace reports --------------------------------------------------------


def _hostile_trace(path: Path) -> Path:
    """Requests whose route, model, tenant, cache layer and key carry the payloads."""
    t0, rows = 1_700_000_000_000_000_000, []
    for i in range(120):
        payload = PAYLOADS[i % len(PAYLOADS)]
        trace, root, start = f"{i + 1:032x}", f"{i + 1:016x}", t0 + i * 50_000_000
        route = PAYLOADS[i % 4]
        rows.append(
            {"trace_id": trace, "span_id": root, "name": payload, "start_ns": start,
             "end_ns": start + 20_000_000, "status": "error" if i % 9 == 0 else "ok",
             "attributes": {"http.route": route, "tenant.id": payload, "workbench.span_class": "api"}}
        )  # fmt: skip
        rows.append(
            {"trace_id": trace, "span_id": f"{i + 1:015x}a", "parent_span_id": root, "name": payload,
             "start_ns": start + 1, "end_ns": start + 2_000_000,
             "attributes": {"workbench.cache.layer": PAYLOADS[4 + i % 3],
                            "workbench.cache.key_hash": PAYLOADS[i % 7], "workbench.cache.hit": i % 3 > 0}}
        )  # fmt: skip
        if i % 3 == 0:
            rows.append(
                {"trace_id": trace, "span_id": f"{i + 1:015x}b", "parent_span_id": root,
                 "name": payload, "start_ns": start + 3, "end_ns": start + 15_000_000,
                 "attributes": {"workbench.span_class": "llm", "gen_ai.request.model": PAYLOADS[7 + i % 2],
                                "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}}
            )  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trace_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, publish.Report]:
    tmp = tmp_path_factory.mktemp("xss-traces")
    trace = _hostile_trace(tmp / "hostile.jsonl")
    db, reports = str(tmp / "workbench.db"), {}
    for name in ("latency_budgets", "cache_effectiveness"):
        params = {"traces": [str(trace)], "demo_requests": 0, "db": db}
        reports[name] = publish.publish(name, tmp / "reports", params)
        assert reports[name].ok, reports[name].error
    return reports


def test_trace_attributes_are_escaped_in_the_trace_reports(
    trace_reports: dict[str, publish.Report],
) -> None:
    for report in trace_reports.values():
        text = report.html.read_text(encoding="utf-8")
        for payload in PAYLOADS[:9]:
            assert "<" not in payload or payload not in text, (report.name, payload)


@needs_chromium
def test_no_trace_attribute_runs_in_a_real_browser(
    trace_reports: dict[str, publish.Report],
) -> None:
    seen = _inert_pages(trace_reports)
    assert [m for m in MARKERS[:9] if m not in seen] == []
