"""The weekly run: every configured notebook through papermill into reports/<ISO week>/.

A YAML config names the notebooks and their parameters. Each notebook is executed with
an explicit kernel and its own timeout, then published as HTML even when a cell
failed (its error visible, the report marked failed); the others still run. A
parameter may refer to an earlier notebook's recorded summary, e.g.
``base_run: ${golden_eval-triage-v1.runs.0}``, so one notebook can compare the runs
another made. Finally ``index.html`` lists every week and notebook with budget badges
and the trend of the headline figures.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import _dialect, digest, publish
from workbench.configfile import check_keys, read_yaml, short
from workbench.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "Job",
    "WeeklyConfig",
    "WeeklyResult",
    "build_index",
    "collect",
    "iso_week",
    "load_config",
    "parse_config",
    "run_weekly",
]

DEFAULT_CONFIG = "weekly.yaml"
_REF = re.compile(r"^\$\{([^.}]+)\.([^}]+)\}$")
_WEEK = re.compile(r"\d{4}-W\d{2}")
_JOB_KEYS = {"name", "notebook", "parameters", "timeout_s"}
_CONFIG_KEYS = {
    "kernel",
    "timeout_s",
    "fail_on_budget",
    "show_code",
    "db",
    "notebooks",
    "redact",
    "self_contained",
}


@dataclass(frozen=True)
class Job:
    """One notebook of the weekly run."""

    name: str
    notebook: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: int | None = None


@dataclass(frozen=True)
class WeeklyConfig:
    """What the weekly run executes and how."""

    notebooks: tuple[Job, ...]
    kernel: str = publish.KERNEL
    timeout_s: int = publish.DEFAULT_TIMEOUT_S
    fail_on_budget: bool = True
    show_code: bool = False
    db: str | None = None
    redact: bool = True  # personal data and secrets replaced by placeholders in every report
    self_contained: bool = False  # plotly.js and the styles inlined in each report (for email)


@dataclass
class WeeklyResult:
    """The reports of one weekly run and where its index is."""

    week: str
    folder: Path
    index: Path
    reports: list[publish.Report]
    fail_on_budget: bool = True
    log: Path | None = None  # the kernels' output and warnings, when anything ran

    @property
    def ok(self) -> bool:
        """False when a notebook failed, or (if configured) a budget broke."""
        if not all(r.ok for r in self.reports):
            return False
        return not self.fail_on_budget or all(r.budgets_ok for r in self.reports)

    def table(self) -> str:
        """A plain-text summary: each notebook, its status and its budget verdicts."""
        lines = [f"{'notebook':<28} {'status':<7} budgets"]
        for r in self.reports:
            broken = [b["name"] for b in r.summary.get("budgets", []) if not b.get("ok", True)]
            held = len(r.summary.get("budgets", [])) - len(broken)
            verdict = f"{held} ok" + (f", BROKEN: {', '.join(broken)}" if broken else "")
            status = "kept" if r.kept else "ok" if r.ok else "FAILED"
            lines.append(f"{r.name:<28} {status:<7} {verdict}")
            if r.error:
                lines.append(f"{'':<28} error: {r.error[:150]}")
        lines.append(f"index: {self.index}")
        if self.log is not None:
            lines.append(f"log:   {self.log}")
        return "\n".join(lines)


def iso_week(day: dt.date | None = None) -> str:
    """The ISO week of a day, e.g. ``2026-W48``."""
    year, week, _ = (day or dt.datetime.now(dt.UTC).date()).isocalendar()
    return f"{year}-W{week:02d}"


def load_config(
    path: str | Path | None = None, *, fallback: str | Path | None = None
) -> WeeklyConfig:
    """The weekly config from YAML: ``path``, else ``./weekly.yaml``, else ``fallback``.

    ``workbench weekly`` passes the bundled demo's config as the fallback.
    """
    file = Path(path) if path else Path(DEFAULT_CONFIG)
    if not file.is_file():
        if path:
            raise ConfigError(f"{file}: no such weekly config")
        if fallback is None:
            raise ConfigError(
                f"no {DEFAULT_CONFIG} here; give a config path, or copy the bundled demo's "
                f"{DEFAULT_CONFIG} here and edit it"
            )
        file = Path(fallback)
    doc = read_yaml(file, "weekly config")
    return parse_config(doc, str(file))


def parse_config(doc: Any, where: str = "config") -> WeeklyConfig:
    """Validate a weekly config document."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping with 'notebooks:'")
    check_keys(doc, _CONFIG_KEYS, where)
    items = doc.get("notebooks")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: 'notebooks' must list at least one {{notebook, parameters}}")
    jobs: list[Job] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        at = f"{where}: notebooks[{i}]"
        if isinstance(item, str):
            item = {"notebook": item}
        if not isinstance(item, dict) or "notebook" not in item:
            raise ConfigError(f"{at}: needs 'notebook'")
        bad = set(item) - _JOB_KEYS
        if bad:
            raise ConfigError(
                f"{at}: unknown key {short(sorted(bad, key=str)[0])}; "
                f"allowed: {', '.join(sorted(_JOB_KEYS))}"
            )
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{at}.parameters: must be a mapping")
        for key in params:
            if any(
                s in str(key).lower() for s in ("api_key", "apikey", "secret", "token", "password")
            ):
                raise ConfigError(
                    f"{at}.parameters.{str(key)[:60]}: secrets never go in parameters; "
                    "read them from an environment variable in the notebook"
                )
        name = str(item.get("name") or item["notebook"])
        if name in names:
            raise ConfigError(f"{at}: the name {short(name)} is used twice; give one a 'name'")
        names.add(name)
        timeout = item.get("timeout_s")
        if timeout is not None and not _is_positive_int(timeout):
            raise ConfigError(f"{at}.timeout_s: must be a positive number of seconds")
        jobs.append(
            Job(name=name, notebook=str(item["notebook"]), parameters=params, timeout_s=timeout)
        )
    timeout_s = doc.get("timeout_s", publish.DEFAULT_TIMEOUT_S)
    if not _is_positive_int(timeout_s):
        raise ConfigError(f"{where}: timeout_s must be a positive number of seconds")
    if not isinstance(doc.get("db"), str | None):
        raise ConfigError(
            f"{where}: db: must be the path of a SQLite database or a postgresql:// URL"
        )
    return WeeklyConfig(
        notebooks=tuple(jobs),
        kernel=str(doc.get("kernel", publish.KERNEL)),
        timeout_s=timeout_s,
        fail_on_budget=_flag(doc, "fail_on_budget", True, where),
        show_code=_flag(doc, "show_code", False, where),
        db=doc.get("db"),
        redact=_flag(doc, "redact", True, where),
        self_contained=_flag(doc, "self_contained", False, where),
    )


def _flag(doc: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    """A yes/no config value; anything but a boolean is refused rather than guessed."""
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false, got {short(value)}")
    return value


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def run_weekly(
    config: WeeklyConfig,
    out: Path,
    *,
    week: str | None = None,
    db: str | Path | None = None,
    on_report: Callable[[publish.Report], None] | None = None,
    on_start: Callable[[Job], None] | None = None,
    redact: bool | None = None,
    rerun: bool = False,
) -> WeeklyResult:
    """Execute and publish every notebook of the config into ``out/<week>/``, then the index.

    ``redact`` overrides the config's ``redact`` (on by default). A notebook already published
    this week with the same parameters, without error, and from an unchanged source is kept,
    not run again, so a second run in one week adds no runs to the database and no reports;
    ``rerun`` runs everything again. Each report's summary box compares it with the same
    notebook's report of the latest earlier week. What the kernels print themselves
    (ipykernel's warnings, the output of the tools a notebook starts) and the warnings raised
    here go to ``out/<week>/run.log``, not the terminal; ``on_start`` and ``on_report`` are
    called around each notebook, for progress.
    """
    week = week or iso_week()
    folder = out / week
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / publish.LOG
    database = str(db or config.db or out / "workbench.db")
    if _dialect.is_postgres(database) and _dialect.redact(database) != database:
        raise ConfigError(
            f"{_dialect.redact(database)}: the database URL is a notebook parameter and lands in the "
            "reports; leave the password out of it and set PGPASSWORD (or ~/.pgpass) instead"
        )
    summaries: dict[str, Mapping[str, Any]] = {}
    reports: list[publish.Report] = []
    earlier = _earlier_weeks(out, week)
    with warnings.catch_warnings(record=True) as caught:
        for job in config.notebooks:
            params = {
                "db": database if _dialect.is_postgres(database) else str(Path(database).resolve())
            }
            params.update({k: _resolve(v, summaries, week) for k, v in job.parameters.items()})
            kept = None if rerun else _finished(folder, job, params)
            if on_start is not None:
                on_start(job)
            if kept is not None:
                report = kept
            else:
                since, previous = _previous(earlier, job.name)
                report = publish.publish(
                    job.notebook,
                    folder,
                    params,
                    name=job.name,
                    show_code=config.show_code,
                    kernel=config.kernel,
                    timeout_s=job.timeout_s or config.timeout_s,
                    redact=config.redact if redact is None else redact,
                    previous=previous,
                    since=since,
                    self_contained=config.self_contained,
                    log=log,
                )
            summaries[job.name] = report.summary
            reports.append(report)
            if on_report is not None:
                on_report(report)
    if caught:
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"== warnings of workbench weekly {week}\n")
            handle.writelines(
                f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in caught
            )
    index = build_index(out, current=week)
    return WeeklyResult(
        week, folder, index, reports, config.fail_on_budget, log if log.is_file() else None
    )


def _earlier_weeks(out: Path, week: str) -> list[Path]:
    """The week folders before ``week``, latest first."""
    return sorted(
        (p for p in out.iterdir() if p.is_dir() and _WEEK.fullmatch(p.name) and p.name < week),
        reverse=True,
    )


def _previous(earlier: Sequence[Path], name: str) -> tuple[str | None, dict[str, Any] | None]:
    """The latest earlier week's summary of a notebook that ran, and that week."""
    for folder in earlier:
        summary = publish.read_summary(folder / f"{name}{publish.SUMMARY_SUFFIX}")
        if summary.get("ok"):
            return folder.name, summary
    return None, None


def _finished(folder: Path, job: Job, params: Mapping[str, Any]) -> publish.Report | None:
    """This week's report of ``job`` if it can stand: it ran cleanly, with these parameters."""
    html, executed = folder / f"{job.name}.html", folder / f"{job.name}.ipynb"
    summary_path = folder / f"{job.name}{publish.SUMMARY_SUFFIX}"
    summary = publish.read_summary(summary_path)
    try:
        source = publish.resolve_notebook(job.notebook)
        fresh = summary_path.stat().st_mtime >= source.stat().st_mtime
    except (OSError, ConfigError):
        return None  # no summary, or no source to compare it with: run the notebook
    if not (summary.get("ok") and fresh):
        return None
    if summary.get("parameters") != json.loads(json.dumps(dict(params), default=str)):
        return None
    if not (html.is_file() and executed.is_file()):
        return None
    return publish.Report(job.name, executed, html, None, summary, kept=True)


def _resolve(value: Any, summaries: Mapping[str, Mapping[str, Any]], week: str = "") -> Any:
    """``${week}``: this run's ISO week; ``${job.path.to.value}``: from an earlier job's summary.

    A missing summary value resolves to None.
    """
    if value == "${week}":
        return week
    if not isinstance(value, str):
        return value
    match = _REF.match(value)
    if not match:
        return value
    node: Any = summaries.get(match.group(1))
    for part in match.group(2).split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


# -- the index ----------------------------------------------------------------------


def collect(out: Path) -> list[dict[str, Any]]:
    """Every recorded summary under ``out/<week>/``, oldest week first, each week in run order."""
    rows = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and _WEEK.fullmatch(p.name)):
        week = []
        for path in sorted(folder.glob(f"*{publish.SUMMARY_SUFFIX}")):
            summary = publish.read_summary(path)
            name = path.name.removesuffix(publish.SUMMARY_SUFFIX)
            week.append({"week": folder.name, "name": name, **summary})
        rows += sorted(week, key=lambda r: str(r.get("started_at", "")))  # stable: ties by name
    return rows


def build_index(out: Path, *, current: str | None = None) -> Path:
    """Write ``out/index.html`` (as of the latest week) and ``out/<week>/index.html`` (as of it).

    Each page has one row per notebook (its last report's verdict and badges, its key
    figures as sparklines across the weeks so far with the last value and change), the
    rows with a failure or a broken budget first; then what got worse since the week
    before; then every week's reports.
    """
    rows = collect(out)
    weeks = sorted({r["week"] for r in rows}, reverse=True)
    pages = [("", out / "index.html", weeks[0] if weeks else None)]
    pages += [("../", out / w / "index.html", w) for w in weeks]
    for prefix, target, as_of in pages:
        upto = [r for r in rows if as_of is None or r["week"] <= as_of]
        target.write_text(_index_page(upto, prefix, as_of, current), encoding="utf-8")
    return out / current / "index.html" if current else out / "index.html"


def _history(
    rows: Sequence[Mapping[str, Any]], as_of: str | None
) -> dict[str, list[Mapping[str, Any]]]:
    """Each notebook's summaries oldest first; this week's notebooks in run order, then others."""
    history: dict[str, list[Mapping[str, Any]]] = {
        r["name"]: [] for r in rows if r["week"] == as_of
    }
    for r in rows:
        history.setdefault(r["name"], []).append(r)
    return history


def _index_page(
    rows: Sequence[Mapping[str, Any]], prefix: str, as_of: str | None, current: str | None
) -> str:
    history = _history(rows, as_of)
    links = {name: f"{prefix}{runs[-1]['week']}/{name}.html" for name, runs in history.items()}
    weeks = sorted({r["week"] for r in rows}, reverse=True)
    archive = []
    for week in weeks:
        trs = []
        for r in (r for r in rows if r["week"] == week):
            link = f"{prefix}{week}/{r['name']}.html"
            status = (
                "<span class='wb-badge wb-ok'>ran</span>"
                if r.get("ok", True)
                else "<span class='wb-badge wb-bad'>failed</span>"
            )
            headline = ", ".join(
                f"{html.escape(str(k))}: {_fmt(v)}" for k, v in (r.get("headline") or {}).items()
            )
            trs.append(
                f"<tr><td><a href='{html.escape(link, quote=True)}'>{html.escape(r['name'])}</a></td>"
                f"<td>{status}</td><td>{publish.badges(r.get('budgets', []))}</td>"
                f"<td class='wb-headline'>{headline}</td></tr>"
            )
        mark = " (this run)" if week == current else ""
        archive.append(
            f"<h3 id='week-{html.escape(week)}'>{html.escape(week)}{mark}</h3>"
            "<table class='wb-index wb-archive'>"
            "<tr><th>report</th><th>status</th><th>budgets</th><th>headline</th></tr>"
            + "".join(trs)
            + "</table>"
        )
    nav = " · ".join(
        f"<a href='{html.escape(prefix + w, quote=True)}/index.html'>{html.escape(w)}</a>"
        for w in weeks
    )
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    title = f"workbench reports, {as_of}" if as_of else "workbench reports"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }}
table.wb-index {{ border-collapse: collapse; margin-bottom: 1.5em; }}
.wb-index td, .wb-index th {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }}
.wb-notebooks tr.wb-bad-row td:first-child {{ border-left: 4px solid #c62828; }}
.wb-headline {{ font-size: .85em; color: #444; max-width: 60em; }}
{digest.CSS}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Generated {generated}. Weeks: {nav or "none yet"}. Each report opens offline; hover a badge for
its figure and limit, a sparkline for its values by week.</p>
<h2>Notebooks</h2>
{digest.index_table(history, links) if history else "<p>No reports yet.</p>"}
<h2>What got worse</h2>
{digest.worse_table(history)}
<h2>Every week</h2>
{"".join(archive)}
</body></html>
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(json.dumps(value) if not isinstance(value, str) else value)
