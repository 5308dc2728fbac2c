"""Execute parameterized notebooks with papermill and publish them as offline HTML reports.

A report is the executed notebook converted by nbconvert with a template that loads
nothing from a network (no require.js, MathJax or widget manager from a CDN): code
hidden unless asked for, the injected-parameters cell removed, widget outputs replaced
by a static note. It opens with a summary box (the verdict, broken budgets first, the key
figures with their change since last week, links to the sections; see
:mod:`workbench.digest`), then a provenance header (date, git commit, parameters, run ids,
dataset hashes). plotly.js and the notebook style sheet are one file each beside the
reports of a folder (or inlined, ``self_contained``). Each notebook may record a summary
JSON next to its HTML (:func:`record_summary`); ``weekly.build_index`` reads those
summaries back into the reports' ``index.html``.

Redaction is on by default: before anything is written to the output folder, every cell
output, cell source, the notebook's metadata (papermill parameters, widget state), the
summary and the provenance header pass through ``workbench.redact``, so emails, phones,
card numbers, IPs and secrets become typed placeholders in the HTML, the executed
notebook kept next to it and the summary JSON alike.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import digest
from workbench import redact as redaction
from workbench.checks import Check, Provenance, Result
from workbench.errors import ConfigError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "KERNEL",
    "LOG",
    "PLOTLY_JS",
    "REPORT_CSS",
    "SUMMARY_SUFFIX",
    "TEMPLATES",
    "Report",
    "badges",
    "check_parameters",
    "execute",
    "notebooks_dir",
    "provenance_header",
    "publish",
    "read_summary",
    "record_summary",
    "redact_notebook",
    "redact_notebook_file",
    "resolve_notebook",
    "to_html",
]

KERNEL = "python3"
DEFAULT_TIMEOUT_S = 1800
TEMPLATES = Path(__file__).parent / "templates"
SUMMARY_SUFFIX = ".summary.json"
PLOTLY_JS = "plotly.min.js"  # beside the reports of a folder, shared by them
REPORT_CSS = "report.css"
LOG = "run.log"  # the kernels' own output (warnings, the tools they run), beside the reports
_PLOTLY_MARK = "<!--wb-plotly-->"
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_WIDGET_NOTE = (
    "<p><i>Interactive explorer: open this notebook in JupyterLab to use it. "
    "The tables in this report hold the same information.</i></p>"
)
# Environment variables whose values are credentials: they must never reach a parameter.
_SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL", re.I)
# A link is a relative path or an http(s)/file URL, never javascript: or data: (browsers drop
# control characters and whitespace inside a scheme, so those are removed before the check).
_SAFE_HREF = re.compile(r"(?![a-z][a-z0-9+.\-]*:)|https?:|file:", re.I)
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class Report:
    """An executed notebook and its HTML; ``error`` says why execution failed, if it did."""

    name: str
    notebook: Path
    html: Path
    error: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    kept: bool = False  # published earlier this week with the same parameters, not run again

    @property
    def ok(self) -> bool:
        """True when every cell ran."""
        return self.error is None

    @property
    def budgets_ok(self) -> bool:
        """True when every budget the notebook recorded holds."""
        return all(b.get("ok", True) for b in self.summary.get("budgets", []))


def notebooks_dir(start: Path | None = None) -> Path:
    """The project's ``notebooks/`` folder: ``$WORKBENCH_NOTEBOOKS`` or the nearest one up."""
    env = os.environ.get("WORKBENCH_NOTEBOOKS")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir():
            return folder / "notebooks"
    raise ConfigError(
        "no notebooks/ folder found from the current directory; run from the project "
        "or set WORKBENCH_NOTEBOOKS"
    )


def resolve_notebook(notebook: str | Path) -> Path:
    """A notebook path from a path or a bare name in ``notebooks/``."""
    source = Path(notebook)
    if source.is_file():
        return source
    candidate = notebooks_dir() / (
        source.name if source.suffix == ".ipynb" else f"{notebook}.ipynb"
    )
    if not candidate.is_file():
        known = sorted(p.stem for p in candidate.parent.glob("*.ipynb"))
        raise ConfigError(
            f"notebook {str(notebook)!r} not found; known notebooks: {', '.join(known)}"
        )
    return candidate


def execute(
    notebook: str | Path,
    output: Path,
    parameters: Mapping[str, Any],
    *,
    kernel: str = KERNEL,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    log_output: bool = False,
    kernel_log: Path | None = None,
) -> str | None:
    """Run a notebook with papermill into ``output``; the error text if a cell failed.

    The output notebook is written even when a cell fails, with the error visible.
    ``kernel_log`` takes what the kernel process writes to its stdout and stderr (ipykernel's
    start-up warnings, the output of the tools a notebook starts), which otherwise goes to
    this process's terminal.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    source = resolve_notebook(notebook)
    output.parent.mkdir(parents=True, exist_ok=True)
    engine: dict[str, Any] = {}
    if kernel_log is not None:
        engine["kernel_manager_class"] = _logged_kernel_manager(kernel_log)
    try:
        pm.execute_notebook(
            str(source),
            str(output),
            parameters=dict(parameters),
            kernel_name=kernel,
            cwd=str(source.parent),
            execution_timeout=timeout_s,
            log_output=log_output,
            progress_bar=False,
            **engine,
        )
    except PapermillExecutionError as exc:
        return f"cell {exc.cell_index}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # a dead kernel, a timeout: the notebook is still published
        if not output.exists():
            raise
        return f"{type(exc).__name__}: {exc}"
    return None


def _logged_kernel_manager(log: Path) -> type:
    """A kernel manager whose kernel processes write their stdout and stderr to ``log``."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):  # type: ignore[misc]
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with log.open("ab") as handle:  # the kernel keeps its own copy of the descriptor
                await super()._async_launch_kernel(
                    kernel_cmd, **{**kw, "stdout": handle, "stderr": handle}
                )

    return LoggedKernelManager


def to_html(
    notebook: Path,
    html_path: Path | None = None,
    *,
    show_code: bool = False,
    header: str = "",
    title: str | None = None,
    self_contained: bool = False,
) -> Path:
    """Convert an executed notebook to offline HTML, without the injected-parameters cell.

    plotly.js and the notebook style sheet are files beside the report (:data:`PLOTLY_JS`,
    :data:`REPORT_CSS`, written once per folder and shared by its reports), or inlined with
    ``self_contained`` for a report that travels alone. A :data:`digest.SECTIONS_MARK` in
    the header becomes links to the notebook's sections.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = {"injected-parameters"}
    config.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(
        config=config,
        template_name="report",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    nb = nbformat.read(str(notebook), as_version=4)
    _static_widgets(nb)
    resources = {
        "workbench_header": header,
        "workbench_css": digest.CSS,
        "metadata": {"name": title or notebook.stem},
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    html_path = html_path or notebook.with_suffix(".html")
    body = _sections(body)
    body = _assets(body, html_path.parent, plotly=_uses_plotly(nb), inline=self_contained)
    html_path.write_text(body, encoding="utf-8")
    return html_path


_HEADING = re.compile(r'<h2 id="([^"]+)">(.*?)<a class="anchor-link"', re.S)
_TAG = re.compile(r"<[^>]*>")
_CSS_BLOCK = re.compile(r"<!--wb-css-->(.*?)<!--/wb-css-->", re.S)
_STYLE_TAG = re.compile(r"</?style[^>]*>")


def _sections(body: str) -> str:
    """Fill the summary box's section list with links to the h2 headings nbconvert gave ids."""
    links = []
    for anchor, inner in _HEADING.findall(body):
        text = html.escape(html.unescape(_TAG.sub("", inner)).strip())
        links.append(f"<a href='#{html.escape(html.unescape(anchor), quote=True)}'>{text}</a>")
    listing = "Sections: " + " · ".join(links) if links else ""
    return body.replace(digest.SECTIONS_MARK, listing, 1)


def _uses_plotly(nb: Any) -> bool:
    """True when an output draws a plotly chart (its HTML calls plotly.js)."""
    return any(
        "Plotly.newPlot" in str(output.get("data", {}).get("text/html", ""))
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


def _assets(body: str, folder: Path, *, plotly: bool, inline: bool) -> str:
    """Point the report at the shared plotly.js and style sheet in ``folder``, or inline them."""
    block = _CSS_BLOCK.search(body)
    if block is not None:
        if inline:
            body = body[: block.start()] + block.group(1) + body[block.end() :]
        else:
            _write_once(folder / REPORT_CSS, _STYLE_TAG.sub("", block.group(1)))
            link = f'<link rel="stylesheet" href="{REPORT_CSS}">'
            body = body[: block.start()] + link + body[block.end() :]
    script = ""
    if plotly:
        from plotly.offline import get_plotlyjs

        script = "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
        if inline:
            script += f'<script charset="utf-8">{get_plotlyjs()}</script>'
        else:
            _write_once(folder / PLOTLY_JS, get_plotlyjs())
            script += f'<script charset="utf-8" src="{PLOTLY_JS}"></script>'
    return body.replace(_PLOTLY_MARK, script, 1)


def _write_once(path: Path, text: str) -> None:
    """Write a shared asset unless the folder already holds the same one."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    path.write_text(text, encoding="utf-8")


def _static_widgets(nb: Any) -> None:
    """Replace widget views by a static note and drop the saved widget state."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and _WIDGET_MIME in data:
                output["data"] = {"text/html": _WIDGET_NOTE, "text/plain": "(interactive widget)"}


def publish(
    notebook: str | Path,
    out: Path,
    parameters: Mapping[str, Any],
    *,
    name: str | None = None,
    show_code: bool = False,
    kernel: str = KERNEL,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    redact: bool = True,
    previous: Mapping[str, Any] | None = None,
    since: str | None = None,
    self_contained: bool = False,
    log: Path | None = None,
) -> Report:
    """Execute a notebook and publish it as HTML with a provenance header, even if a cell failed.

    The notebook runs in a scratch folder; only its redacted form (unless ``redact`` is False)
    is written to ``out``, so a crash mid-run leaves nothing unredacted behind. The report
    opens with a summary box (verdict, key figures and their change since ``previous``, the
    same notebook's summary from ``since``, and links to the sections). With ``log`` the
    kernel's own output is appended there (redacted too) instead of reaching the terminal.
    """
    check_parameters(parameters)
    name = name or Path(notebook).stem
    out.mkdir(parents=True, exist_ok=True)
    executed = out / f"{name}.ipynb"
    summary_path = out / f"{name}{SUMMARY_SUFFIX}"
    summary_path.unlink(missing_ok=True)
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="workbench-publish-") as scratch:
        raw = Path(scratch) / f"{name}.ipynb"
        raw_summary = Path(scratch) / f"{name}{SUMMARY_SUFFIX}"
        raw_log = Path(scratch) / "kernel.log" if log is not None else None
        params = {**parameters, "summary_path": str(raw_summary)}
        error = execute(
            notebook, raw, params, kernel=kernel, timeout_s=timeout_s, kernel_log=raw_log
        )
        if redact:
            redact_notebook_file(raw, executed)
        else:
            shutil.copyfile(raw, executed)
        summary = read_summary(raw_summary)
        if log is not None and raw_log is not None:
            _append_log(log, name, started, error, raw_log, redact=redact)
    summary = {
        **summary,
        "artifacts": _gather_artifacts(
            summary.get("artifacts"), resolve_notebook(notebook).parent, out, name
        ),
        "notebook": Path(str(notebook)).stem,
        "name": name,
        "ok": error is None,
        "error": error,
        "started_at": started.isoformat(timespec="seconds"),
        "parameters": {k: v for k, v in parameters.items()},
    }
    if redact:
        summary = redaction.redact_json(summary)
        error = summary["error"]
    summary["redacted"] = redact
    summary_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    header = digest.summary_box(name, summary, previous, since=since) + provenance_header(
        name, summary
    )
    html_path = to_html(
        executed,
        out / f"{name}.html",
        show_code=show_code,
        header=header,
        title=name,
        self_contained=self_contained,
    )
    return Report(name=name, notebook=executed, html=html_path, error=error, summary=summary)


def _append_log(
    log: Path, name: str, started: dt.datetime, error: str | None, kernel: Path, *, redact: bool
) -> None:
    """Append one notebook's kernel output to the run's log, under a line saying which."""
    try:
        text = kernel.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    if redact:
        text = redaction.redact(text)
    outcome = "ok" if error is None else "FAILED"
    line = f"== {name} started {started.isoformat(timespec='seconds')}: {outcome}\n"
    with log.open("a", encoding="utf-8") as handle:
        handle.write(line + text + ("" if not text or text.endswith("\n") else "\n"))


def _gather_artifacts(artifacts: Any, cwd: Path, out: Path, name: str) -> dict[str, str]:
    """Copy a notebook's artifact files next to its report; links relative to the report.

    A relative path is the notebook's (it ran in ``cwd``). The files go to ``<name>.files/``
    beside the HTML, so the report folder holds everything it links; a path that does not
    exist stays as text, unlinked.
    """
    if not isinstance(artifacts, Mapping):
        return {}
    folder = out / f"{name}.files"
    shutil.rmtree(folder, ignore_errors=True)  # this run's artifacts only
    gathered: dict[str, str] = {}
    for key, value in artifacts.items():
        path = cwd / str(value)
        if not path.is_file():
            gathered[str(key)] = str(value)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if target.exists():  # two artifacts with one file name
            target = folder / f"{key}-{path.name}"
        shutil.copyfile(path, target)
        gathered[str(key)] = target.relative_to(out).as_posix()
    return gathered


def check_parameters(parameters: Mapping[str, Any]) -> None:
    """Refuse parameters that carry the value of a secret environment variable.

    Parameters are written into the executed notebook; keys belong in the environment,
    where the notebook (or the provider) reads them.
    """
    secrets = {
        key: value
        for key, value in os.environ.items()
        if _SECRET_ENV.search(key) and len(value) >= 8
    }
    for pname, pvalue in parameters.items():
        text = json.dumps(pvalue, default=str)
        for env_name, secret in secrets.items():
            if secret in text or secret in str(pvalue):
                raise ConfigError(
                    f"parameter {pname!r} holds the value of ${env_name}; secrets never go in "
                    "parameters: read them from the environment in the notebook"
                )


def redact_notebook(nb: Any) -> Any:
    """Redact a notebook node in place: outputs, sources, and cell and notebook metadata."""
    from nbformat import from_dict

    nb.metadata = from_dict(redaction.redact_json(dict(nb.metadata)))
    for cell in nb.cells:
        cell.source = redaction.redact(cell.source)
        cell.metadata = from_dict(redaction.redact_json(dict(cell.metadata)))
        for output in cell.get("outputs", []):
            _redact_output(output)
    return nb


def redact_notebook_file(source: Path, target: Path) -> Path:
    """Read an executed notebook, redact it (see ``redact_notebook``) and write it to ``target``."""
    import nbformat

    nb = nbformat.read(str(source), as_version=4)
    redact_notebook(nb)
    nbformat.write(nb, str(target))
    return target


def _redact_output(output: Any) -> None:
    """One cell output: stream text, every mimetype of display data, error name, value, traceback."""
    kind = output.get("output_type")
    if kind == "stream":
        output["text"] = redaction.redact(output.get("text", ""))
    elif kind == "error":
        output["ename"] = redaction.redact(output.get("ename", ""))
        output["evalue"] = redaction.redact(output.get("evalue", ""))
        output["traceback"] = [redaction.redact(line) for line in output.get("traceback", [])]
    if "data" in output:
        output["data"] = {mime: _redact_data(mime, v) for mime, v in output["data"].items()}
    if "metadata" in output:
        output["metadata"] = redaction.redact_json(output["metadata"])


def _redact_data(mime: str, value: Any) -> Any:
    """One representation of an output, redacted as what it is (markup, code, JSON or text)."""
    if not isinstance(value, str):  # JSON mimetypes are stored as objects
        return redaction.redact_json(value)
    if mime in ("text/html", "image/svg+xml"):
        return redaction.redact_html(value)
    if mime in ("application/javascript", "text/javascript"):
        return redaction.redact_shapes(value)
    if mime.startswith("image/") or mime == "application/pdf":
        return value  # base64 payloads
    if mime.endswith("json"):
        try:
            return json.dumps(redaction.redact_json(json.loads(value)))
        except ValueError:
            pass
    return redaction.redact(value)


def record_summary(
    path: str | os.PathLike[str] | None,
    *results: Result | None,
    headline: Mapping[str, Any] | None = None,
    checks: Sequence[Check | Mapping[str, Any]] = (),
    runs: Sequence[str] = (),
    datasets: Mapping[str, str] | None = None,
    artifacts: Mapping[str, str] | None = None,
    key: Sequence[str] | Mapping[str, digest.Better | None] = (),
) -> dict[str, Any]:
    """Record what a notebook found for the weekly index (a no-op without a path).

    Each result gives its checks, headline numbers and provenance (see
    :mod:`workbench.checks`; a None is skipped, for a step that did not run); the keyword
    arguments add figures, checks (``Check`` objects or dicts with ``name``, ``ok``,
    ``message``), runs, datasets and artifacts of a notebook's own. ``key`` marks up to five
    headline figures as the ones that matter, shown first in the report's summary box and as
    sparklines in the index: names or patterns, or a mapping of each to the way that is better
    (``{"pass_rate": "higher", "* p95_ms": "lower"}``; see :func:`workbench.digest.mark_key`);
    a result's ``intervals()``, where it has one, gives their intervals. Without ``key`` the
    first five numeric figures are shown. Returns the recorded document.
    """
    given = [r for r in results if r is not None]
    source = sum((r.provenance() for r in given), Provenance())
    source = source + Provenance(tuple(runs), datasets, artifacts)
    recorded = [c for r in given for c in r.checks()] + list(checks)
    figures = {k: v for r in given for k, v in r.headline().items()} | dict(headline or {})
    intervals = {k: v for r in given for k, v in _intervals(r).items()}
    doc = {
        "runs": list(source.runs),
        "datasets": dict(source.datasets or {}),
        "budgets": [c.to_dict() if isinstance(c, Check) else dict(c) for c in recorded],
        "headline": figures,
        "artifacts": dict(source.artifacts or {}),
        "git_commit": _git_commit(),
    }
    if key:
        doc["key"] = digest.mark_key(figures, key, recorded, intervals)
    if path:
        Path(path).write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return doc


def _intervals(result: Result) -> Mapping[str, Sequence[float]]:
    """A result's intervals of its headline figures, for those results that have them."""
    method = getattr(result, "intervals", None)
    return method() if callable(method) else {}


def read_summary(path: Path) -> dict[str, Any]:
    """A recorded summary, or an empty one when there is none that reads as an object."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _git_commit() -> str | None:
    from workbench.store import git_commit

    return git_commit()


def badges(budgets: Sequence[Mapping[str, Any]]) -> str:
    """HTML badges, red for a budget that broke (listed first) and green for one that holds."""
    return digest.badges(budgets)


def provenance_header(name: str, summary: Mapping[str, Any]) -> str:
    """The block under a report's summary box: what ran, on what, with which parameters."""
    state = "ran" if summary.get("ok", True) else f"FAILED: {summary.get('error')}"
    params = ", ".join(f"{k}={v!r}" for k, v in (summary.get("parameters") or {}).items())
    rows = [
        ("date", summary.get("started_at", "")),
        ("status", state),
        ("git commit", summary.get("git_commit") or "n/a"),
        ("runs", ", ".join(summary.get("runs", [])) or "n/a"),
        (
            "datasets",
            ", ".join(f"{k}@{v}" for k, v in (summary.get("datasets") or {}).items()) or "n/a",
        ),
        ("parameters", params or "defaults"),
        (
            "redaction",
            "on: emails, phones, card numbers, IPs and secrets shown as typed placeholders"
            if summary.get("redacted", True)
            else "OFF: outputs are published as they were produced",
        ),
    ]
    artifacts = summary.get("artifacts") or {}
    if artifacts:
        links = " ".join(
            f"<a href='{html.escape(str(p), quote=True)}'>{html.escape(str(k))}</a>"
            if _SAFE_HREF.match(_URL_IGNORED.sub("", str(p)))
            else html.escape(f"{k}: {p}")
            for k, p in artifacts.items()
        )
        rows.append(("artifacts", links))
    cells = "".join(
        f"<tr><td><b>{html.escape(k)}</b></td><td>{v if k == 'artifacts' else html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return (
        f"<details class='wb-header' open><summary>Provenance of {html.escape(name)}</summary>"
        f"<table>{cells}</table></details>"
    )
