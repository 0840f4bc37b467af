"""Helpers shared by the benchmark scripts in this folder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from sentry_sdk.transport import Transport

if TYPE_CHECKING:
    from nbsentry import CellResult, Notebook, NotebookResult


class DiscardingTransport(Transport):
    """A sentry-sdk transport that counts envelopes and drops them."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes = 0

    def capture_envelope(self, envelope: Any) -> None:
        """Count the envelope and drop it."""
        del envelope
        self.envelopes += 1


class CellClock:
    """A run observer that notes when each cell ends."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def notebook_started(self, notebook: Notebook) -> None:
        """Ignore the start of a notebook."""
        del notebook

    def cell_finished(self, notebook: Notebook, result: CellResult) -> None:
        """Note the time a cell ended."""
        del notebook, result
        self.times.append(time.perf_counter())

    def notebook_finished(self, result: NotebookResult) -> None:
        """Ignore the end of a notebook."""
        del result


def per_cell(times: list[float]) -> float:
    """Return the mean time per cell between the first end and the last."""
    return (times[-1] - times[0]) / (len(times) - 1)


def write_notebook(folder: Path, cells: int) -> Path:
    """Write a notebook of trivial cells (``x = i``) for the python3 kernel."""
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    notebook.cells = [
        nbformat.v4.new_code_cell(f"x = {i}")  # type: ignore[no-untyped-call]
        for i in range(cells)
    ]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / f"trivial-{cells}.ipynb"
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
    return path


def describe_machine() -> str:
    """Describe the CPU model and the cores this process may use."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0))
    return f"{model}, {os.cpu_count()} cores, {usable} usable (nproc)"
