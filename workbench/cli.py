"""The ``workbench`` command: a thin shell over the library."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import click

from workbench import _dialect
from workbench.checks import Result, broken
from workbench.errors import WorkbenchError
from workbench.text import percent

F = TypeVar("F", bound=Callable[..., Any])


class _Database(click.ParamType[Any, Any]):
    """A SQLite file (a path) or a PostgreSQL database (a ``postgresql://`` URL, kept a str)."""

    name = "path|url"
    _path = click.Path(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and _dialect.is_postgres(value):
            return value
        return self._path.convert(value, param, ctx)


@overload
def db_option(fn: F) -> F: ...


@overload
def db_option(*, default: str | None = ..., help: str = ...) -> Callable[[F], F]: ...


def db_option(
    fn: F | None = None,
    *,
    default: str | None = "workbench.db",
    help: str = "SQLite file or postgresql:// URL (or set WORKBENCH_DB).",
) -> Any:
    """The shared ``--db`` option: ``@db_option``, or ``@db_option(default=None, help=...)``."""
    if fn is None:
        return functools.partial(db_option, default=default, help=help)
    return click.option(
        "--db",
        type=_Database(),
        envvar="WORKBENCH_DB",
        default=default,
        show_default=default is not None,
        help=help,
    )(fn)


def json_option(what: str) -> Callable[[F], F]:
    """The shared ``--json`` flag (into ``as_json``): print WHAT as JSON."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")


def gate_option(when: str) -> Callable[[F], F]:
    """The shared ``--gate`` flag: exit 1 WHEN (a check of the result failed)."""
    return click.option("--gate", is_flag=True, help=f"Exit 1 when {when}.")


def seed_option(help: str = "Random seed.", default: int | None = 0) -> Callable[[F], F]:
    """The shared ``--seed`` option."""
    return click.option(
        "--seed", type=int, default=default, show_default=default is not None, help=help
    )


def fault_rate_option(
    name: str = "--fault-rate", default: float = 0.0, help: str = "Share of requests that fail."
) -> Callable[[F], F]:
    """The shared fault-rate option of the demo's servers and traffic."""
    return click.option(
        name, type=click.FloatRange(0, 1), default=default, show_default=True, help=help
    )


def _emit(result: Result, as_json: bool, gate: bool) -> None:
    """Print a result (JSON or text); with ``gate``, exit 1 when one of its checks failed."""
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str, ensure_ascii=False))
    else:
        click.echo(result.render_text().rstrip("\n"))
    failed = broken(result)
    if gate and failed:
        click.echo("gate: FAILED: " + "; ".join(c.message for c in failed), err=True)
        sys.exit(1)


def junit_option(fn: F) -> F:
    """``--junit FILE``: JUnit XML, one testcase per case and per check."""
    return click.option(
        "--junit",
        metavar="FILE",
        help="Also write JUnit XML (a testcase per case and per budget or gate rule) for CI.",
    )(fn)


def markdown_option(fn: F) -> F:
    """``--markdown FILE``: a PR-comment-sized summary (appended to $GITHUB_STEP_SUMMARY)."""
    return click.option(
        "--markdown",
        metavar="FILE",
        help="Also write a Markdown summary under 64 KiB for a PR comment; "
        '"$GITHUB_STEP_SUMMARY" is appended to.',
    )(fn)


def _write_reports(
    result: Any, *, store: Any = None, junit: str | None = None, markdown: str | None = None
) -> None:
    """Write the files a CI system reads, before the result is printed and gated."""
    if junit:
        from workbench import junit as ju
        from workbench.compare import Comparison
        from workbench.runner import RunSummary

        if isinstance(result, RunSummary):
            xml = ju.eval_junit(store, result.run_id, summary=result)
        elif isinstance(result, Comparison):
            xml = ju.compare_junit(result)
        else:
            xml = ju.to_xml(result.junit_suites(store))
        ju.write_junit(junit, xml)
    if markdown:
        from workbench import markdown as md
        from workbench.compare import Comparison

        text = (
            md.comparison_markdown(result)
            if isinstance(result, Comparison)
            else md.matrix_markdown(result)
        )
        md.write_markdown(markdown, text)


def dataset_out_options(fn: F) -> F:
    """The shared ``--out`` and ``--force`` options of the dataset commands that write."""
    fn = click.option("--force", is_flag=True, help="Replace an existing dataset folder NAME.")(fn)
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder to write NAME/ into (default: the nearest data/golden).",
    )(fn)


def translate_errors(fn: F) -> F:
    """Turn library errors into a clean message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="workbench")
def main() -> None:
    """workbench: evaluate, compare and profile LLM-powered applications."""


@main.command("eval")
@click.argument("dataset")
@click.option(
    "--model",
    "target",
    required=True,
    help="Target: demo:triage-v1, openai:<model>, python:<mod>:<fn>.",
)
@click.option("--base-url", help="Base URL of an OpenAI-compatible endpoint.")
@db_option
@click.option("--concurrency", type=click.IntRange(1, 1024), default=8, show_default=True)
@seed_option("Seed (repeat r uses seed + r) [default: the card's, else 0].", default=None)
@click.option(
    "--temperature",
    type=click.FloatRange(0, 2),
    help="Sampling temperature [default: the card's, else 0].",
)
@click.option("--repeats", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option(
    "--max-tokens",
    type=click.IntRange(1),
    help="Cap on output tokens [default: the card's, else 1024].",
)
@click.option(
    "--structured-output/--no-structured-output",
    default=None,
    help="Send the card's output_schema as the json_schema response format "
    "[default: the card's structured_output].",
)
@click.option(
    "--prompt",
    metavar="NAME",
    help="The card's prompt variant to send (its prompts: or prompts/NAME.yaml) [default: the first].",
)
@click.option("--limit", type=click.IntRange(1), help="Run only the first N (selected) cases.")
@click.option("--case", "case_ids", multiple=True, metavar="ID", help="Run this case (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Run the cases with this tag (repeatable).")
@click.option(
    "--sample", type=click.IntRange(1), help="Run a random sample of N cases (seeded by --seed)."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0.1),
    default=60.0,
    show_default=True,
    help="Seconds to wait for an answer (with --stream: for each next chunk).",
)
@click.option(
    "--stream/--no-stream",
    default=False,
    show_default=True,
    help="Stream responses (records time to first token).",
)
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Environment variable holding the API key.",
)
@click.option(
    "--record", type=click.Path(file_okay=False), help="Write every response to snapshots in DIR."
)
@click.option(
    "--replay",
    type=click.Path(file_okay=False),
    help="Serve responses from snapshots in DIR, no network.",
)
@click.option("--resume", "resume", metavar="RUN_ID", help="Run only the cases RUN_ID is missing.")
@click.option(
    "--executor",
    type=click.Choice(["local", "dask", "dask-local"]),
    default="local",
    show_default=True,
    help="Where the cases run: this process, a Dask scheduler's workers (--scheduler), "
    "or a LocalCluster of --workers processes; the store is written here either way.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="The Dask scheduler of --executor dask, e.g. tcp://127.0.0.1:8786.",
)
@click.option(
    "--workers",
    type=int,
    help="Worker processes of --executor dask-local's LocalCluster [default: 2].",
)
@click.option(
    "--demo-latency-ms",
    default="0",
    show_default=True,
    help="demo targets: latency (e.g. 50, or 80,400 for median,p95).",
)
@fault_rate_option("--demo-fault-rate", help="demo targets: injected fault rate.")
@gate_option("a budget breaks or the run fails")
@json_option("the summary")
@junit_option
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar [default: a bar on a terminal, else a line every 10 s on stderr].",
)
@click.option(
    "--redact",
    is_flag=True,
    help="Store outputs, errors and score details with emails, phones, cards, IPs and secrets "
    "replaced by placeholders (scores use the original).",
)
@click.option(
    "--judge",
    metavar="TARGET",
    help="Judge model for the card's judge scorers, e.g. demo:judge; several joined by commas vote as a panel [default: the card's judge].",
)
@click.option(
    "--allow-self-judge",
    is_flag=True,
    help="Let the judge be the model under test (refused by default: it favours itself).",
)
@translate_errors
def eval_command(
    dataset: str,
    target: str,
    db: Path,
    resume: str | None,
    api_key_env: str,
    demo_latency_ms: str,
    demo_fault_rate: float,
    gate: bool,
    as_json: bool,
    progress: bool | None,
    junit: str | None,
    **flags: Any,
) -> None:
    """Evaluate TARGET on the golden set DATASET, storing every result."""
    from workbench.runner import EvalOptions, run_eval
    from workbench.store import Store

    server = {"api_key_env": api_key_env, "latency_ms": demo_latency_ms}
    options = EvalOptions.from_flags(
        target, server_options=server | {"fault_rate": demo_fault_rate}, **flags
    )
    shown = ("bar" if sys.stderr.isatty() else "log") if progress is None else progress
    with Store(db) as store:
        summary = run_eval(
            dataset, target, store=store, options=options, resume=resume, progress=shown
        )
        _write_reports(summary, store=store, junit=junit)
    _emit(summary, as_json, gate)


@main.command("rescore")
@click.argument("run_id")
@click.option(
    "--scorers",
    metavar="NAME,...",
    help="Score with only these of the card's scorers (names or labels, e.g. judge[summary]).",
)
@click.option("--judge", metavar="TARGET", help="Judge model over the card's, e.g. demo:judge.")
@click.option(
    "--card",
    metavar="PATH",
    help="Dataset folder or card to score with [default: the run's dataset as it is now].",
)
@click.option(
    "--allow-self-judge", is_flag=True, help="Let the judge be the model that gave the outputs."
)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=8, show_default=True)
@db_option
@gate_option("a budget breaks")
@json_option("the summary")
@translate_errors
def rescore_command(
    run_id: str,
    scorers: str | None,
    judge: str | None,
    card: str | None,
    allow_self_judge: bool,
    concurrency: int,
    db: Path,
    gate: bool,
    as_json: bool,
) -> None:
    """Score RUN_ID's stored outputs again into a new run, with no call to the model."""
    from workbench.rescore import rescore
    from workbench.store import Store

    names = [n.strip() for n in (scorers or "").split(",") if n.strip()]
    with Store(db) as store:
        summary = rescore(
            run_id,
            store=store,
            card=card,
            scorers=names,
            judge=judge,
            allow_self_judge=allow_self_judge,
            concurrency=concurrency,
        )
    _emit(summary, as_json, gate)


@main.group("judge")
def judge_group() -> None:
    """Judges: how far a model-graded scorer agrees with people."""


@judge_group.command("calibrate")
@click.argument("dataset")
@click.option(
    "--labels",
    "labels_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="People's labels, one JSON object per line: {case, output, score or verdict, labeller}.",
)
@click.option("--judge", metavar="TARGET", help="Judge model over the card's, e.g. demo:judge.")
@click.option("--scorer", metavar="NAME", help="Which judge scorer (when the card has several).")
@click.option(
    "--repeats",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Ask the judge K times per output (uncached) to measure how often its verdict flips.",
)
@click.option(
    "--kappa-floor",
    type=click.FloatRange(-1, 1),
    help="Kappa below which the judge is not trusted [default: the card's budgets.judge_kappa, "
    "else 0.6].",
)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=8, show_default=True)
@db_option
@gate_option("the judge's kappa is below the floor")
@json_option("the calibration")
@translate_errors
def judge_calibrate_command(
    dataset: str,
    labels_path: Path,
    judge: str | None,
    scorer: str | None,
    repeats: int,
    kappa_floor: float | None,
    concurrency: int,
    db: Path,
    gate: bool,
    as_json: bool,
) -> None:
    """Grade people's labelled outputs with the judge and report how far they agree."""
    from workbench.calibration import calibrate
    from workbench.store import Store

    with Store(db) as store:
        result = calibrate(
            dataset,
            labels_path,
            store=store,
            judge=judge,
            scorer=scorer,
            repeats=repeats,
            floor=kappa_floor,
            concurrency=concurrency,
        )
    _emit(result, as_json, gate)


@main.command("runs")
@db_option
@click.option("--dataset", help="Only runs of this dataset.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@json_option("the runs")
@translate_errors
def runs_command(db: Path, dataset: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    from workbench.store import Store

    with Store(db) as store:
        rows = store.runs(dataset=dataset, limit=limit)
        where = store.path
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo(f"no runs in {where}")
        return
    click.echo(
        f"{'run':<24} {'status':<11} {'target':<22} {'dataset':<18} {'pass rate':>9}  started"
    )
    for r in rows:
        rate = (r.get("summary") or {}).get("pass_rate")
        click.echo(
            f"{r['id']:<24} {r['status']:<11} {r['target'] or '':<22} {r['dataset'] or '':<18} "
            f"{percent(rate):>9}  {r['started_at'][:19]}"
        )


@main.command("compare")
@click.argument("runs", nargs=-1, metavar="BASE CAND [CAND2 ...]")
@db_option
@click.option(
    "--latest", metavar="DATASET", help="Compare the two most recent finished runs of DATASET."
)
@click.option(
    "--allow",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML of case ids allowed to regress, with reasons.",
)
@click.option("--max-regressions", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
)
@click.option(
    "--shared",
    is_flag=True,
    help="Allow runs over different dataset versions; compare shared case ids.",
)
@click.option(
    "--pairwise",
    "pairwise_judge",
    metavar="JUDGE",
    help="Also have JUDGE pick the better output per case, in both orders, e.g. demo:judge.",
)
@click.option(
    "--allow-self-judge", is_flag=True, help="Let the pairwise judge be a model under comparison."
)
@seed_option("Bootstrap seed.")
@markdown_option
@junit_option
@json_option("counts, cases, statistics and verdict")
@gate_option("the verdict fails")
@translate_errors
def compare_command(
    runs: tuple[str, ...],
    db: Path,
    latest: str | None,
    allow: str | None,
    max_regressions: int,
    alpha: float,
    shared: bool,
    pairwise_judge: str | None,
    allow_self_judge: bool,
    seed: int,
    markdown: str | None,
    junit: str | None,
    as_json: bool,
    gate: bool,
) -> None:
    """Compare candidate run CAND with baseline run BASE, case by case; with more candidates,
    a leaderboard of every run against BASE."""
    from workbench import compare as cmp
    from workbench.store import Store

    result: Any
    with Store(db) as store:
        if latest:
            if runs:
                raise click.UsageError("give run ids or --latest DATASET, not both")
            base, cand = cmp.latest_pair(store, latest)
        elif len(runs) > 2:
            from workbench.matrix import matrix_of

            if pairwise_judge or allow:
                raise click.UsageError(
                    "--pairwise and --allow compare two runs; give BASE and one CAND"
                )
            result = matrix_of(store, runs, shared_only=shared, seed=seed)
            _write_reports(result, store=store, junit=junit, markdown=markdown)
            _emit(result, as_json, gate)
            return
        elif len(runs) == 2:
            base, cand = runs
        else:
            raise click.UsageError(
                "give BASE and CAND run ids (or more CANDs), or --latest DATASET"
            )
        result = cmp.compare(
            store,
            base,
            cand,
            shared_only=shared,
            allow=cmp.load_allowlist(allow) if allow else None,
            max_regressions=max_regressions,
            alpha=alpha,
            seed=seed,
        )
        if pairwise_judge:
            from workbench.pairwise import pairwise

            result.pairwise = pairwise(
                store, base, cand, pairwise_judge, allow_self_judge=allow_self_judge
            )
        _write_reports(result, store=store, junit=junit, markdown=markdown)
    _emit(result, as_json, gate)


@main.command("matrix")
@click.argument("dataset")
@click.option(
    "--model",
    "targets",
    multiple=True,
    required=True,
    help="A target of the grid (repeatable); the first model with the first prompt is the baseline.",
)
@click.option(
    "--prompt",
    "prompts",
    multiple=True,
    metavar="NAME",
    help="A prompt variant of the card (repeatable) [default: the card's first].",
)
@click.option("--base-url", help="Base URL of an OpenAI-compatible endpoint (for openai: targets).")
@db_option
@click.option("--concurrency", type=click.IntRange(1, 1024), default=8, show_default=True)
@click.option("--repeats", type=click.IntRange(1, 1000), default=1, show_default=True)
@seed_option("Seed of the requests and the bootstrap [default: the card's, else 0].", default=None)
@click.option("--temperature", type=click.FloatRange(0, 2), help="Over the card's.")
@click.option("--max-tokens", type=click.IntRange(1), help="Over the card's (else 1024).")
@click.option("--limit", type=click.IntRange(1), help="Run only the first N cases.")
@click.option("--judge", metavar="TARGET", help="Judge model over the card's, e.g. demo:judge.")
@click.option("--replay", type=click.Path(file_okay=False), help="Serve responses from snapshots.")
@click.option("--record", type=click.Path(file_okay=False), help="Write responses to snapshots.")
@click.option(
    "--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Variable with the API key."
)
@click.option("--no-reuse", is_flag=True, help="Run every cell, even those already in the store.")
@markdown_option
@junit_option
@gate_option("a cell regresses against the baseline")
@json_option("the leaderboard")
@translate_errors
def matrix_command(
    dataset: str,
    targets: tuple[str, ...],
    prompts: tuple[str, ...],
    db: Path,
    seed: int | None,
    api_key_env: str,
    no_reuse: bool,
    gate: bool,
    as_json: bool,
    limit: int | None,
    markdown: str | None,
    junit: str | None,
    **flags: Any,
) -> None:
    """Run the grid of models × prompt variants on DATASET and print a leaderboard against the
    first cell, reusing finished runs with the same cases, prompt, target and parameters."""
    from workbench.matrix import run_matrix
    from workbench.runner import EvalOptions
    from workbench.store import Store

    def options_for(target: str) -> EvalOptions:
        server = {"api_key_env": api_key_env}
        return EvalOptions.from_flags(
            target, server_options=server, limit=limit, seed=seed, **flags
        )

    with Store(db) as store:
        result = run_matrix(
            dataset,
            targets,
            store=store,
            prompts=list(prompts) or [None],
            options_for=options_for,
            reuse=not no_reuse,
            progress="log" if not sys.stderr.isatty() else "bar",
            echo=lambda text: click.echo(text, err=True),
            seed=seed or 0,
        )
        _write_reports(result, store=store, junit=junit, markdown=markdown)
    _emit(result, as_json, gate)


@main.command("weekly")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Weekly config YAML (default: weekly.yaml, else the bundled demo).",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default="reports", show_default=True
)
@click.option("--week", help="ISO week folder to write (default: this week, e.g. 2026-W48).")
@db_option(default=None, help="Database (default: <out>/workbench.db or the config's).")
@click.option("--no-fail-on-budget", is_flag=True, help="Exit 0 even when a budget broke.")
@click.option(
    "--rerun",
    is_flag=True,
    help="Run every notebook again, even those already published this week.",
)
@click.option(
    "--redact/--no-redact",
    default=None,
    help="Replace emails, phones, cards, IPs and secrets in the reports by placeholders "
    "(default: the config's 'redact', which is on).",
)
@translate_errors
def weekly_command(
    config_path: str | None,
    out: Path,
    week: str | None,
    db: Path | None,
    no_fail_on_budget: bool,
    redact: bool | None,
    rerun: bool,
) -> None:
    """Run every configured notebook with papermill and publish the reports and an index."""
    import time

    from workbench import demo, weekly

    config = weekly.load_config(config_path, fallback=demo.WEEKLY)
    out.mkdir(parents=True, exist_ok=True)
    total, started = len(config.notebooks), [0, time.monotonic()]

    def start(job: Any) -> None:
        started[0] += 1
        started[1] = time.monotonic()
        click.echo(f"[{started[0]:>2}/{total}] {job.name:<28} ", nl=False, err=True)

    def progress(report: Any) -> None:
        status = "kept" if report.kept else "ok" if report.ok else "FAILED"
        click.echo(f"{status:6} {time.monotonic() - started[1]:6.1f} s", err=True)

    result = weekly.run_weekly(
        config,
        out,
        week=week,
        db=db,
        on_start=start,
        on_report=progress,
        redact=redact,
        rerun=rerun,
    )
    click.echo(result.table())
    ok = all(r.ok for r in result.reports) and (no_fail_on_budget or result.ok)
    if not ok:
        sys.exit(1)


@main.command("schedule")
@click.option(
    "--cron",
    help='When, as a cron expression, e.g. "17 6 * * 1" (Mondays 06:17); not for github-pr.',
)
@click.option(
    "--emit",
    "kind",
    type=click.Choice(["cron", "systemd", "github", "github-pr"]),
    default="cron",
    show_default=True,
)
@click.option(
    "--workdir", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True
)
@click.option("--config", "config_path", help="Weekly config YAML to pass to workbench weekly.")
@click.option("--out", default="reports", show_default=True)
@click.option(
    "--dataset", default="support-triage", show_default=True, help="github-pr: the golden set."
)
@click.option(
    "--baseline",
    metavar="TARGET",
    default="demo:triage-v1",
    show_default=True,
    help="github-pr: the baseline target.",
)
@click.option(
    "--candidate",
    metavar="TARGET",
    default="demo:triage-v2",
    show_default=True,
    help="github-pr: the candidate target.",
)
@click.option(
    "--snapshots",
    default="data/snapshots/support-triage",
    show_default=True,
    help="github-pr: the committed snapshots both runs replay.",
)
@translate_errors
def schedule_command(
    cron: str | None, kind: str, workdir: Path, config_path: str | None, out: str, **pr: str
) -> None:
    """Print a crontab line, a systemd service and timer, a GitHub Actions workflow for the
    weekly run, or (github-pr) a pull-request workflow replaying the golden set and gating."""
    from workbench.schedule import emit

    text = emit(kind, cron, workdir=workdir.resolve(), config=config_path, out=out, **pr)
    click.echo(text, nl=False)


@main.command("profile")
@click.option(
    "--target",
    required=True,
    help='Workload: "python script.py ARGS", "-m module ARGS" or "module:func".',
)
@click.option(
    "--tool", type=click.Choice(["py-spy", "scalene"]), default="py-spy", show_default=True
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(0.5),
    default=10.0,
    show_default=True,
    help="Seconds to profile.",
)
@click.option(
    "--rate",
    "rate_hz",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Samples per second.",
)
@click.option(
    "--label",
    default="default",
    show_default=True,
    help="Groups comparable runs (the baseline is the previous run with this label).",
)
@click.option(
    "--pins",
    "pins_path",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML of pinned hot paths with thresholds.",
)
@click.option(
    "--baseline",
    help="Profile run to diff against (default: the previous run of the same workload and label).",
)
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    default="profiles",
    show_default=True,
)
@db_option
@json_option("the run, pins and diff")
@gate_option("a pinned hot path is breached")
@translate_errors
def profile_command(
    target: str,
    tool: str,
    duration_s: float,
    rate_hz: int,
    label: str,
    pins_path: str | None,
    baseline: str | None,
    artifacts: Path,
    db: Path,
    as_json: bool,
    gate: bool,
) -> None:
    """Profile a workload; hot paths, pinned-path verdicts and the diff against last week."""
    from workbench import profiling
    from workbench.store import Store

    with Store(db) as store:
        report = profiling.profile_report(
            store,
            target,
            pins=pins_path,
            baseline=baseline,
            tool=tool,
            duration_s=duration_s,
            rate_hz=rate_hz,
            label=label,
            artifacts_dir=artifacts,
        )
    _emit(report, as_json, gate)


@main.command("latency")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML of endpoints (loopback only).",
)
@click.option(
    "--demo", is_flag=True, help="Start the demo app and load its search and triage endpoints."
)
@fault_rate_option(help="--demo: faults injected by the model server.")
@click.option(
    "--phases",
    default="steady:20rps:10s,spike:60rps:3s",
    show_default=True,
    help="name:RATErps:SECONDSs,...",
)
@click.option("--max-requests", type=click.IntRange(1, 20_000), default=5000, show_default=True)
@click.option("--max-in-flight", type=click.IntRange(1, 1024), default=64, show_default=True)
@seed_option("Seed of the arrival times and request bodies.")
@db_option
@json_option("the run")
@gate_option("a budget breaks")
@translate_errors
def latency_command(
    config_path: str | None,
    demo: bool,
    fault_rate: float,
    phases: str,
    max_requests: int,
    max_in_flight: int,
    seed: int,
    db: Path,
    as_json: bool,
    gate: bool,
) -> None:
    """Drive steady and spike load at endpoints; p50/p95/p99 and errors against budgets."""
    from workbench import latency
    from workbench.store import Store

    if demo == bool(config_path):
        raise click.UsageError("give exactly one of --demo or --config FILE")
    load: dict[str, Any] = {"phases": latency.phases_from(phases), "max_requests": max_requests}
    load |= {"max_in_flight": max_in_flight, "seed": seed}
    with Store(db) as store:
        if demo:
            from workbench.demo.stack import load_app

            run = load_app(store, fault_rate=fault_rate, **load)
        else:
            run = latency.run_load(store, latency.load_endpoints(str(config_path)), **load)
    _emit(run, as_json, gate)


@main.group("traces")
def traces_group() -> None:
    """Request traces: OpenTelemetry spans into the store."""


@traces_group.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@db_option
@click.option(
    "--strict", is_flag=True, help="Fail on the first malformed record and change nothing."
)
@click.option(
    "--prices",
    "prices_path",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML price table per model.",
)
@translate_errors
def traces_ingest(files: tuple[str, ...], db: Path, strict: bool, prices_path: str | None) -> None:
    """Ingest OTLP JSON (lines, documents, gzip) or plain JSONL span files; idempotent."""
    from workbench import traces
    from workbench.prices import load_prices
    from workbench.store import Store

    prices = load_prices(prices_path) if prices_path else None
    with Store(db) as store:
        report = traces.ingest(store, list(files), strict=strict, prices=prices)
    click.echo(traces.render_text(report))


@traces_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=4318, show_default=True, help="0: any."
)
@db_option
@click.option(
    "--prices",
    "prices_path",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML price table per model.",
)
@click.option(
    "--max-body-mib",
    type=click.FloatRange(min=0.001),
    default=20.0,
    show_default=True,
    help="Largest request body, after gzip (413 above).",
)
@translate_errors
def traces_serve(
    host: str, port: int, db: Path, prices_path: str | None, max_body_mib: float
) -> None:
    """Receive OTLP/HTTP traces (POST /v1/traces, protobuf or JSON) into the store.

    Each request is committed before it is answered; a retried request stores nothing
    twice. Binding beyond 127.0.0.1 needs WORKBENCH_OTLP_TOKEN, sent by exporters as
    'Authorization: Bearer <token>'. Stops on Ctrl-C or SIGTERM and prints what it received.
    """
    import signal
    import threading

    from workbench import traces
    from workbench.prices import load_prices

    prices = load_prices(prices_path) if prices_path else None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    receiver = traces.Receiver(
        db,
        host,
        port,
        prices=prices,
        max_body_bytes=int(max_body_mib * 1024 * 1024),
        log=lambda line: click.echo(line, err=True),
    )
    traces.serve(receiver, lambda line: click.echo(line, err=True), stop)


@main.group("dataset")
def dataset_group() -> None:
    """Golden sets from your own data: import a table, start a skeleton, check one."""


@dataset_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Dataset name: the folder written under --out.")
@click.option(
    "--input", "inputs", required=True, metavar="COL[,COL]", help="Columns that fill the prompt."
)
@click.option(
    "--expected",
    required=True,
    metavar="COL[,COL]",
    help="Expected-output column; several make an object {column: value}.",
)
@click.option("--id", "id_column", metavar="COL", help="Unique case ids (default: NAME-0001...).")
@click.option(
    "--tags", "tags_column", metavar="COL", help="Tags: a list, or text split on , ; or |."
)
@dataset_out_options
@translate_errors
def dataset_import(
    file: Path,
    name: str,
    inputs: str,
    expected: str,
    id_column: str | None,
    tags_column: str | None,
    out: Path | None,
    force: bool,
) -> None:
    """Import a .csv, .jsonl or .parquet FILE as golden set NAME: cases plus a commented card."""
    from workbench.dataset_import import import_table

    report = import_table(
        file,
        name,
        inputs=inputs,
        expected=expected,
        id_column=id_column,
        tags_column=tags_column,
        out=out,
        force=force,
    )
    click.echo(report.render_text())


@dataset_group.command("init")
@click.argument("name")
@dataset_out_options
@translate_errors
def dataset_init(name: str, out: Path | None, force: bool) -> None:
    """Write a skeleton golden set NAME: a card explaining every key and one example case."""
    from workbench.dataset_import import init_dataset

    click.echo(init_dataset(name, out=out, force=force).render_text())


@dataset_group.command("check")
@click.argument("path_or_name")
@json_option("the counts or problems")
@translate_errors
def dataset_check(path_or_name: str, as_json: bool) -> None:
    """Validate a golden set; print its cases, tags, scorers and hash, or its first problems."""
    from workbench.dataset_import import check_dataset

    report = check_dataset(path_or_name)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        if not report.ok:
            sys.exit(1)  # the exit code of a ClickException, as in text mode
    elif not report.ok:
        raise click.ClickException(report.render_text())
    else:
        click.echo(report.render_text())


@main.command("verify")
@db_option
@translate_errors
def verify_command(db: Path) -> None:
    """Check the tamper-evident run log: the first run whose results or chain changed."""
    from workbench import audit
    from workbench.store import Store

    with Store(db) as store:
        entries, problem = audit.verify(store.conn)
        where = store.path
    if problem is None:
        click.echo(f"run log intact: {entries} entries verified in {where}")
        return
    click.echo(f"run log entry {problem.seq} (run {problem.run_id}): {problem.reason}", err=True)
    sys.exit(1)


@main.group("demo")
def demo_group() -> None:
    """The bundled demo: a support-triage model server with two versions."""


@demo_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback only.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--latency-ms", default="0", show_default=True, help="Fixed (50) or median,p95 (80,400)."
)
@fault_rate_option(help="Share of requests that get a fault.")
@click.option(
    "--faults",
    help="Fault kinds (429,500,timeout,malformed,truncated,reset,slow) or 429=0.05,500=0.02.",
)
@seed_option("Seed of the latency and fault draws.")
@click.option(
    "--retry-after",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Seconds in 429 Retry-After.",
)
@click.option(
    "--hang-s",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="How long a 'timeout' fault hangs.",
)
@translate_errors
def demo_serve(
    host: str,
    port: int,
    latency_ms: str,
    fault_rate: float,
    faults: str | None,
    seed: int,
    retry_after: int,
    hang_s: float,
) -> None:
    """Serve the demo triage models (triage-v1, triage-v2) over an OpenAI-compatible API."""
    from workbench.demo import server

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise click.BadParameter("the demo server binds to loopback only", param_hint="--host")
    server.serve(
        host,
        port,
        latency=server.LatencySpec.parse(latency_ms),
        faults=server.FaultSpec.parse(fault_rate, faults),
        seed=seed,
        retry_after_s=retry_after,
        hang_s=hang_s,
    )


@demo_group.command("traffic")
@click.option("--requests", type=click.IntRange(1, 200_000), default=2000, show_default=True)
@seed_option("Seed of the traffic.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="OTLP JSON lines file (.gz compresses).",
)
@click.option(
    "--otlp",
    metavar="URL",
    help="Send live to this OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 "
    "(bearer token from $WORKBENCH_OTLP_TOKEN).",
)
@fault_rate_option(default=0.03, help="Share of model calls that get a fault.")
@click.option("--week", help="Replay as if in this ISO week, e.g. 2026-W49 (default: now).")
@translate_errors
def demo_traffic(
    requests: int,
    seed: int,
    out: Path | None,
    otlp: str | None,
    fault_rate: float,
    week: str | None,
) -> None:
    """Generate traced demo traffic into an OTLP JSON lines file (--out) or OTLP/HTTP (--otlp)."""
    from workbench.demo import traffic

    if (out is None) == (otlp is None):
        raise click.UsageError("give exactly one of --out FILE or --otlp URL")
    report = traffic.generate(
        out, otlp=otlp, requests=requests, seed=seed, fault_rate=fault_rate, week=week
    )
    click.echo(json.dumps(report.to_dict(), indent=2, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
