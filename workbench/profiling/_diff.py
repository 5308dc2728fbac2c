"""Week over week: per-function deltas and new or vanished stacks between two profiles."""

from __future__ import annotations

from workbench.errors import RunError
from workbench.profiling._results import FunctionDelta, FunctionStat, ProfileDiff
from workbench.profiling._store import load_profile, previous_profile, profile_row
from workbench.store import Store


def diff_profiles(store: Store, base_run: str | None, cand_run: str) -> ProfileDiff:
    """Per-function deltas (share and seconds) and new/vanished stacks from base to candidate.

    With no ``base_run`` the baseline is :func:`previous_profile` of the candidate.
    """
    if base_run is None:
        base_run = previous_profile(store, cand_run)
        if base_run is None:
            row = profile_row(store, cand_run)
            raise RunError(
                f"no earlier finished {row['tool']} profile of {row['workload']!r} labelled "
                f"{row['label']!r} to compare {cand_run} with; pass a baseline run id"
            )
    base, cand = load_profile(store, base_run), load_profile(store, cand_run)
    before = {f.function: f for f in base.functions}
    after = {f.function: f for f in cand.functions}
    zero = FunctionStat("", 0, 0, 0.0, 0.0, 0.0, 0.0)
    deltas = []
    for name in before.keys() | after.keys():
        b, c = before.get(name, zero), after.get(name, zero)
        deltas.append(
            FunctionDelta(
                function=name,
                base_total_share=b.total_share,
                cand_total_share=c.total_share,
                base_total_s=b.total_s,
                cand_total_s=c.total_s,
                base_self_share=b.self_share,
                cand_self_share=c.self_share,
                base_self_s=b.self_s,
                cand_self_s=c.self_s,
            )
        )
    deltas.sort(key=lambda d: (-abs(d.delta_total_share), -abs(d.delta_total_s), d.function))
    return ProfileDiff(
        base_run=base_run,
        cand_run=cand_run,
        base_samples=base.samples,
        cand_samples=cand.samples,
        base_s=base.seconds,
        cand_s=cand.seconds,
        functions=deltas,
        new_stacks={s: n for s, n in cand.stacks.items() if s not in base.stacks},
        vanished_stacks={s: n for s, n in base.stacks.items() if s not in cand.stacks},
        base_stacks=base.stacks,
        cand_stacks=cand.stacks,
    )
