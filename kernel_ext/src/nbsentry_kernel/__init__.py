"""IPython extension that reports cells back to the nbsentry runner.

Load it with ``%load_ext nbsentry_kernel``, with
``--IPKernelApp.extensions=nbsentry_kernel`` or from an
``ipython_kernel_config.py``. For each execute request whose metadata contains
an ``nbsentry`` object, it sends the runner a report of the cell over the
kernel's iopub channel: its cell id, start and end, the spans recorded
with `span`, warnings and log records, and the exception with frames
mapped to the cells that defined them. Requests without that object get
no report.
"""

from typing import Any

from ._extension import load, unload
from ._spans import Span, span

__all__ = [
    "Span",
    "load_ipython_extension",
    "span",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register the extension's hooks in an IPython shell.

    Loading it again into the same shell does nothing. Outside ipykernel
    the extension logs a warning and stays inactive.
    """
    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove every hook that the extension registered in the shell."""
    unload(ipython)
