"""A profile run with its pin checks and its diff against a baseline: one result, one text report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.checks import Check, Provenance
from workbench.profiling._diff import diff_profiles
from workbench.profiling._pins import check_pins, load_pins
from workbench.profiling._results import Pin, PinCheck, ProfileDiff, ProfileRun
from workbench.profiling._run import profile
from workbench.profiling._store import latest_profile, previous_profile
from workbench.store import Store
from workbench.text import clip


@dataclass
class ProfileReport:
    """A profile run, its pinned hot paths' checks and its diff against the baseline run."""

    run: ProfileRun
    pins: list[PinCheck]
    diff: ProfileDiff | None
    baseline: str | None  # the baseline run id; None when this run is the first of its kind

    def checks(self) -> list[Check]:
        """One check per pin limit."""
        return list(self.pins)

    def headline(self) -> dict[str, Any]:
        """Samples and sampled seconds."""
        return {"samples": self.run.samples, "sampled_s": round(self.run.seconds, 2)}

    def provenance(self) -> Provenance:
        """The profile run and its artifacts (flamegraph, speedscope, raw stacks)."""
        return Provenance((self.run.run_id,), artifacts=dict(self.run.artifacts))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as printed by ``workbench profile --json``."""
        return {
            "run_id": self.run.run_id,
            "baseline": self.baseline,
            "pins": [p.to_dict() for p in self.pins],
            "diff": self.diff.to_dict() if self.diff else None,
        }

    def render_text(self, *, top: int = 10) -> str:
        """The run, its hot paths, pin checks and the diff against the baseline."""
        return render_text(self.run, self.pins, self.diff, top=top)


def profile_report(
    store: Store,
    target: str,
    *,
    pins: str | os.PathLike[str] | Sequence[Pin] | None = None,
    baseline: str | None = None,
    baseline_label: str | None = None,
    **options: Any,
) -> ProfileReport:
    """Profile ``target`` (``options`` go to :func:`profile`), check its pins, diff it.

    ``pins`` is a pins YAML path or a list of pins. The baseline is ``baseline`` (a run id),
    else the newest run labelled ``baseline_label`` before this one, else the previous run
    of the same workload and label.
    """
    pin_list = load_pins(pins) if isinstance(pins, str | os.PathLike) else list(pins or [])
    run = profile(store, target, **options)
    checks = check_pins(store, run.run_id, pin_list) if pin_list else []
    if baseline is None:
        baseline = (
            latest_profile(store, baseline_label, before=run.run_id)
            if baseline_label
            else previous_profile(store, run.run_id)
        )
    diff = diff_profiles(store, baseline, run.run_id) if baseline else None
    return ProfileReport(run, checks, diff, baseline)


def render_text(
    run: ProfileRun,
    pins_results: Sequence[PinCheck] = (),
    diff: ProfileDiff | None = None,
    *,
    top: int = 10,
) -> str:
    """The CLI's report: the run, its hot paths, pin verdicts and the diff against a baseline."""
    wall = f", wall {run.wall_s:.2f} s" if run.wall_s is not None else ""
    out = [
        f"profile {run.run_id}: {run.tool} on {run.workload!r} (label {run.label})",
        f"  {run.samples:,} samples at {run.rate_hz:g} Hz = {run.seconds:.2f} s sampled "
        f"(duration ≤ {run.duration_s:g} s{wall}); python {run.python_version or '?'}",
    ]
    out += [f"  {name}: {path}" for name, path in sorted(run.artifacts.items())]
    out.append("")
    out.append(f"hot paths (top {min(top, len(run.functions))} by total samples):")
    width = min(70, max((len(f.function) for f in run.functions[:top]), default=8))
    out.append(f"  {'function':<{width}}  {'total':>7} {'total s':>8}  {'self':>7} {'self s':>7}")
    for f in run.functions[:top]:
        out.append(
            f"  {clip(f.function, width):<{width}}  {f.total_share:>7.1%} {f.total_s:>8.2f}"
            f"  {f.self_share:>7.1%} {f.self_s:>7.2f}"
        )
    if pins_results:
        broken = sum(not r.ok for r in pins_results)
        out += ["", f"pins: {len(pins_results) - broken} ok, {broken} broken"]
        out += [f"  {r.message}" for r in pins_results]
    if diff is not None:
        out += [
            "",
            f"vs {diff.base_run}: {diff.base_samples:,} → {diff.cand_samples:,} samples "
            f"({diff.base_s:.2f} s → {diff.cand_s:.2f} s)",
        ]
        moved = [d for d in diff.functions if d.delta_total_share or d.delta_total_s][:top]
        for d in moved:
            out.append(
                f"  {clip(d.function, width):<{width}}  {d.delta_total_share * 100:+6.1f} pp "
                f"{d.delta_total_s:+7.2f} s  ({d.status})"
            )
        if not moved:
            out.append("  no function moved")
        out.append(
            f"  new stacks: {len(diff.new_stacks)} ({sum(diff.new_stacks.values()):,} samples); "
            f"vanished stacks: {len(diff.vanished_stacks)} ({sum(diff.vanished_stacks.values()):,} samples)"
        )
    return "\n".join(out) + "\n"
