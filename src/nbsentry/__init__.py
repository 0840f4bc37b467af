"""Run Jupyter notebooks as synthetic users and report them to Sentry."""

from .backends import Kernel, KernelBackend, LocalBackend, LocalKernel
from .business import Monkey, NotebookRunner, RunSummary
from .config import NotebookOrder, RunConfig, TracesSample
from .exceptions import (
    CellTimeoutError,
    ConfigError,
    InvalidNotebookError,
    KernelDiedError,
    KernelStartError,
    NbsentryError,
    ReportRejectedError,
)
from .models import (
    CellResult,
    CellStatus,
    KernelError,
    NotebookResult,
    NotebookStatus,
)
from .notebooks import CodeCell, Notebook, NotebookFile, find_notebooks
from .runner import NotebookExecutor, RunObserver
from .sentry import SpoolTransport, Telemetry, init_sentry

__all__ = [
    "CellResult",
    "CellStatus",
    "CellTimeoutError",
    "CodeCell",
    "ConfigError",
    "InvalidNotebookError",
    "Kernel",
    "KernelBackend",
    "KernelDiedError",
    "KernelError",
    "KernelStartError",
    "LocalBackend",
    "LocalKernel",
    "Monkey",
    "NbsentryError",
    "Notebook",
    "NotebookExecutor",
    "NotebookFile",
    "NotebookOrder",
    "NotebookResult",
    "NotebookRunner",
    "NotebookStatus",
    "ReportRejectedError",
    "RunConfig",
    "RunObserver",
    "RunSummary",
    "SpoolTransport",
    "Telemetry",
    "TracesSample",
    "find_notebooks",
    "init_sentry",
]
