"""Execute parameterized notebooks with papermill and publish them as offline HTML."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError

KERNEL = "python3"
DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Report:
    """An executed notebook and its HTML; ``error`` says why execution failed, if it did."""

    name: str
    notebook: Path
    html: Path
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every cell ran."""
        return self.error is None


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


def execute(
    notebook: str | Path,
    output: Path,
    parameters: Mapping[str, Any],
    *,
    kernel: str = KERNEL,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    log_output: bool = False,
) -> str | None:
    """Run a notebook with papermill into ``output``; the error text if a cell failed.

    The output notebook is written even when a cell fails, with the error visible.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    source = Path(notebook)
    if not source.is_file():
        source = notebooks_dir() / f"{notebook}.ipynb"
    if not source.is_file():
        raise ConfigError(f"notebook {notebook!r} not found (looked for {source})")
    output.parent.mkdir(parents=True, exist_ok=True)
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
        )
    except PapermillExecutionError as exc:
        return f"cell {exc.cell_index}: {exc.ename}: {exc.evalue}"
    return None


def to_html(notebook: Path, html: Path | None = None, *, show_code: bool = False) -> Path:
    """Convert an executed notebook to standalone HTML, without the injected-parameters cell."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = {"injected-parameters"}
    config.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(
        config=config,
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    html = html or notebook.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def publish(
    notebook: str | Path,
    out: Path,
    parameters: Mapping[str, Any],
    *,
    name: str | None = None,
    show_code: bool = False,
    kernel: str = KERNEL,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> Report:
    """Execute a notebook and publish it as HTML, even when a cell failed."""
    name = name or Path(notebook).stem
    executed = out / f"{name}.ipynb"
    error = execute(notebook, executed, parameters, kernel=kernel, timeout_s=timeout_s)
    html = to_html(executed, out / f"{name}.html", show_code=show_code)
    return Report(name=name, notebook=executed, html=html, error=error)


def demo_reports(
    *, out: Path, db: Path, dataset: str = "support-triage", show_code: bool = False
) -> list[Report]:
    """The demo job: evaluate both demo versions through the golden-eval notebook."""
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for version in ("triage-v1", "triage-v2"):
        reports.append(
            publish(
                "golden_eval",
                out,
                {
                    "dataset": dataset,
                    "model": f"demo:{version}",
                    "db": str(Path(db).resolve()),
                },
                name=f"golden_eval-{version}",
                show_code=show_code,
            )
        )
    return reports
