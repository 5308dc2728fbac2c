"""Small helpers shared by the profiling modules: frame names, numbers and clipped text."""

from __future__ import annotations

from workbench import flamegraph


def _is_function(frame: str, name: str) -> bool:
    """True when ``name`` is the frame itself, its function name or its dotted ``module.func``."""
    return frame == name or flamegraph.split_frame(frame)[0] == name or _dotted(frame) == name


def _dotted(frame: str) -> str:
    """``pkg.module.func`` for ``func (pkg/module.py)``; the bare function when there is no file."""
    func, file = flamegraph.split_frame(frame)
    if not file.endswith(".py") or file.startswith("<"):
        return func
    module = file[: -len(".py")].replace("/", ".").removesuffix(".__init__")
    return f"{module}.{func}"


def _fmt_metric(metric: str, value: float) -> str:
    return f"{value * 100:.1f}%" if metric.endswith("share") else f"{value:.2f} s"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
