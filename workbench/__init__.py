"""workbench: evaluate, compare and profile LLM-powered applications from Jupyter."""

from workbench.errors import WorkbenchError
from workbench.golden import Case, Dataset, Selection, load_dataset
from workbench.providers import Request, Response
from workbench.runner import EvalOptions, RunSummary, run_eval, summarize
from workbench.store import Store

__all__ = [
    "Case",
    "Dataset",
    "EvalOptions",
    "Request",
    "Response",
    "RunSummary",
    "Selection",
    "Store",
    "WorkbenchError",
    "load_dataset",
    "run_eval",
    "summarize",
]
