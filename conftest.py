"""Repository-wide pytest set-up: notebooks under nbval write to a throwaway database."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def pytest_configure(config: object) -> None:
    """Point notebook kernels (started by nbval) at a temporary workbench database."""
    if "WORKBENCH_DB" not in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="workbench-nbval-"))
        os.environ["WORKBENCH_DB"] = str(folder / "workbench.db")
