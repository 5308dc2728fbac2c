"""Scheduling the weekly run (a crontab line, a systemd service and timer, a GitHub workflow),
and the pull-request workflow that replays the golden set and gates on the comparison."""

from __future__ import annotations

import shlex
from pathlib import Path

from workbench.errors import ConfigError

__all__ = [
    "EMITTERS",
    "PR_BASELINE",
    "PR_CANDIDATE",
    "PR_DATASET",
    "PR_SNAPSHOTS",
    "command",
    "emit",
    "on_calendar",
    "parse_cron",
    "pr_commands",
]

EMITTERS = ("cron", "systemd", "github", "github-pr")
# The pull-request workflow's defaults: the demo's golden set, its two models, their snapshots.
PR_DATASET = "support-triage"
PR_BASELINE = "demo:triage-v1"
PR_CANDIDATE = "demo:triage-v2"
PR_SNAPSHOTS = "data/snapshots/support-triage"
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def parse_cron(expr: str) -> list[str]:
    """The five fields of a cron expression, each checked against its range."""
    fields = expr.split()
    if len(fields) != 5:
        raise ConfigError(
            f"cron {expr!r}: give five fields (minute hour day month weekday), e.g. '17 6 * * 1'"
        )
    for text, (name, low, high) in zip(fields, _FIELDS, strict=True):
        for part in text.split(","):
            base, _, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ConfigError(f"cron {expr!r}: {name}: bad step {step!r}")
            if base == "*":
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
                raise ConfigError(f"cron {expr!r}: {name}: {part!r} is not a number, range or '*'")
            if not all(low <= int(b) <= high for b in bounds):
                raise ConfigError(f"cron {expr!r}: {name}: {part!r} is outside {low}-{high}")
    return fields


def on_calendar(expr: str) -> str:
    """The systemd OnCalendar form of a cron expression (``17 6 * * 1`` -> ``Mon *-*-* 06:17:00``)."""
    minute, hour, dom, month, dow = parse_cron(expr)

    def conv(field: str, pad: int) -> str:
        if field == "*":
            return "*"
        out = []
        for part in field.split(","):
            base, _, step = part.partition("/")
            start = "0" if base == "*" else base.split("-")[0]
            text = base.replace("-", "..") if "-" in base else start.zfill(pad)
            out.append(f"{text}/{step}" if step else text)
        return ",".join(out)

    days = ""
    if dow != "*":
        names = []
        for part in dow.split(","):
            if "-" in part:
                a, b = part.split("-")
                names.append(f"{_DAYS[int(a)]}..{_DAYS[int(b)]}")
            else:
                names.append(_DAYS[int(part)])
        days = ",".join(names) + " "
    return f"{days}*-{conv(month, 2)}-{conv(dom, 2)} {conv(hour, 2)}:{conv(minute, 2)}:00"


def command(workdir: Path, config: str | None, out: str) -> str:
    """The shell command a scheduler runs."""
    args = [str(workdir / ".venv" / "bin" / "workbench"), "weekly", "--out", out]
    if config:
        args += ["--config", config]
    return " ".join(shlex.quote(a) for a in args)


def emit(
    kind: str,
    cron: str | None,
    *,
    workdir: Path,
    config: str | None = None,
    out: str = "reports",
    dataset: str = PR_DATASET,
    baseline: str = PR_BASELINE,
    candidate: str = PR_CANDIDATE,
    snapshots: str = PR_SNAPSHOTS,
) -> str:
    """A ready-to-install schedule for the weekly run, or the pull-request workflow.

    ``cron``, ``workdir``, ``config`` and ``out`` are the weekly run's; ``github-pr`` runs on
    every pull request, not on a schedule, and ignores them. ``dataset``, ``baseline``,
    ``candidate`` and ``snapshots`` are the pull-request workflow's, ignored by the others.
    """
    if kind not in EMITTERS:
        raise ConfigError(f"no emitter {kind!r}; choose one of {', '.join(EMITTERS)}")
    if kind == "github-pr":
        return _github_pr(dataset, baseline, candidate, snapshots)
    if cron is None:
        raise ConfigError(f"the {kind} emitter needs a cron expression, e.g. '17 6 * * 1'")
    parse_cron(cron)
    cmd = command(workdir, config, out)
    where = shlex.quote(str(workdir))
    if kind == "cron":
        return (
            "# workbench weekly run (install with: crontab -e); times are the machine's local time\n"
            f"{cron} cd {where} && {cmd} >> {shlex.quote(out)}/weekly.log 2>&1\n"
        )
    if kind == "systemd":
        return f"""# ~/.config/systemd/user/workbench-weekly.service
[Unit]
Description=workbench weekly evaluation and profiling run

[Service]
Type=oneshot
WorkingDirectory={workdir}
ExecStart={cmd}

# ~/.config/systemd/user/workbench-weekly.timer
[Unit]
Description=Run workbench weekly

[Timer]
OnCalendar={on_calendar(cron)}
Persistent=true

[Install]
WantedBy=timers.target

# enable with: systemctl --user daemon-reload && systemctl --user enable --now workbench-weekly.timer
"""
    config_arg = f" --config {config}" if config else ""
    return f"""# .github/workflows/workbench-weekly.yml
# Scheduled workflows run on the default branch, in UTC, and may start late under load;
# GitHub disables them in public repositories after 60 days without activity.
name: workbench weekly
on:
  schedule:
    - cron: "{cron}"
  workflow_dispatch:
jobs:
  weekly:
    runs-on: ubuntu-latest
    timeout-minutes: 90
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install
        run: make .venv/.installed-stamp
      - name: Weekly run
        run: .venv/bin/workbench weekly --out {out}{config_arg}
        env:
          OPENAI_API_KEY: ${{{{ secrets.OPENAI_API_KEY }}}}
      - name: Upload reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: workbench-reports
          path: {out}/
"""


def pr_commands(dataset: str, baseline: str, candidate: str, snapshots: str) -> list[str]:
    """The pull-request workflow's shell commands: the baseline and candidate evals, both
    replayed from snapshots into a fresh ``pr.db``, then the gated comparison of the two."""
    for name, value in (
        ("dataset", dataset),
        ("baseline", baseline),
        ("candidate", candidate),
        ("snapshots", snapshots),
    ):
        if not value.strip() or "\n" in value or "\r" in value:
            raise ConfigError(f"github-pr: {name} {value!r} must be one non-empty line")
    ds, snaps = shlex.quote(dataset), shlex.quote(snapshots)

    def replay(target: str) -> str:
        return f"workbench eval {ds} --model {shlex.quote(target)} --replay {snaps} --db pr.db"

    return [
        replay(baseline),
        replay(candidate) + " --junit junit/eval.xml --gate",
        f'workbench compare --latest {ds} --db pr.db --markdown "$GITHUB_STEP_SUMMARY" '
        "--junit junit/compare.xml --gate",
    ]


def _github_pr(dataset: str, baseline: str, candidate: str, snapshots: str) -> str:
    base_eval, cand_eval, compare = pr_commands(dataset, baseline, candidate, snapshots)
    return f"""# .github/workflows/workbench-pr.yml
# On every pull request, with the pull request's code, card and scorers: evaluate the
# baseline {baseline} and the candidate {candidate} on {dataset},
# both replayed from the snapshots committed in
#   {snapshots}
# (no model calls, no API key), then compare the two runs. The job fails when the
# candidate breaks a budget of the card, or the comparison's gate fails (a blocking
# regression, a significant pass-rate fall). The comparison is the job's summary; the
# JUnit reports of the candidate and of the comparison are uploaded as an artifact.
# A changed prompt or case changes its requests, and a replay without them fails: record
# the snapshots again (once per target) and commit them with the change:
#   workbench eval {dataset} --model TARGET --record {snapshots}
name: workbench pr
on:
  pull_request:
permissions:
  contents: read
jobs:
  golden:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
          cache-dependency-path: pyproject.toml
      - name: Install
        run: python -m pip install -e .
      - name: Baseline eval (replayed)
        run: |
          {base_eval}
      - name: Candidate eval (replayed)
        run: |
          {cand_eval}
      - name: Compare with the baseline
        if: ${{{{ !cancelled() }}}}
        run: |
          {compare}
      - name: Upload JUnit reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: workbench-junit
          path: junit/
          if-no-files-found: ignore
"""
