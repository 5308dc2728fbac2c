"""Frame names: whether a frame is a named function, and its dotted ``module.func`` form."""

from __future__ import annotations

from workbench.profiling import flamegraph


def is_function(frame: str, name: str) -> bool:
    """True when ``name`` is the frame itself, its function name or its dotted ``module.func``."""
    return frame == name or flamegraph.split_frame(frame)[0] == name or dotted(frame) == name


def dotted(frame: str) -> str:
    """``pkg.module.func`` for ``func (pkg/module.py)``; the bare function when there is no file."""
    func, file = flamegraph.split_frame(frame)
    if not file.endswith(".py") or file.startswith("<"):
        return func
    module = file[: -len(".py")].replace("/", ".").removesuffix(".__init__")
    return f"{module}.{func}"
