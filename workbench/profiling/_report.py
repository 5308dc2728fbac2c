"""The CLI's text report of a profile run: hot paths, pin verdicts and the diff."""

from __future__ import annotations

from collections.abc import Sequence

from workbench.profiling._helpers import _clip
from workbench.profiling._results import PinResult, ProfileDiff, ProfileRun


def render_text(
    run: ProfileRun,
    pins_results: Sequence[PinResult] = (),
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
            f"  {_clip(f.function, width):<{width}}  {f.total_share:>7.1%} {f.total_s:>8.2f}"
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
                f"  {_clip(d.function, width):<{width}}  {d.delta_total_share * 100:+6.1f} pp "
                f"{d.delta_total_s:+7.2f} s  ({d.status})"
            )
        if not moved:
            out.append("  no function moved")
        out.append(
            f"  new stacks: {len(diff.new_stacks)} ({sum(diff.new_stacks.values()):,} samples); "
            f"vanished stacks: {len(diff.vanished_stacks)} ({sum(diff.vanished_stacks.values()):,} samples)"
        )
    return "\n".join(out) + "\n"
