# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Run small notebooks cell by cell and look up what they sent to Sentry.

Unlike `tests.support.runs`, which runs a whole monkey, this drives
`NotebookExecutor` directly, so a test can pick the backend's options,
such as starting kernels without the kernel extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import nbformat
import sentry_sdk
from structlog.testing import capture_logs

from nbsentry.backends.local import LocalBackend
from nbsentry.notebooks import NotebookFile
from nbsentry.runner import NotebookExecutor
from nbsentry.sentry import Telemetry

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping, Sequence
    from pathlib import Path

    from nbsentry.models import NotebookResult

    from .capture import EnvelopeStore

__all__ = [
    "BUSINESS",
    "FLOCK",
    "ReportRun",
    "cell_frame",
    "event_of",
    "frame_summary",
    "frames_of",
    "notebook_spans",
    "run_cells",
    "span_interval",
    "write_cells",
]

FLOCK = "reports"
"""Flock name of every run, in tags and fingerprints."""

BUSINESS = "NotebookRunner"
"""Business name of every run, in tags and fingerprints."""


@dataclass
class ReportRun:
    """Results and log entries of one `run_cells` call."""

    results: dict[str, NotebookResult]
    """Result of each notebook, by notebook name."""

    logs: list[MutableMapping[str, Any]]
    """Log entries captured with structlog, in order."""

    def logs_named(self, message: str) -> list[MutableMapping[str, Any]]:
        """Return the log entries with this message."""
        return [entry for entry in self.logs if entry["event"] == message]


def write_cells(
    path: Path,
    cells: Sequence[tuple[str, str]],
    name: str | None = None,
    tags: Mapping[str, list[str]] | None = None,
) -> NotebookFile:
    """Write a Python notebook with one code cell per (cell id, source).

    The notebook's name is ``name``, by default the file name. ``tags``
    gives the tags of some cells, by cell id.
    """
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
            source, id=cell_id
        )
        for cell_id, source in cells
    ]
    for cell in notebook.cells:
        if tags and cell.id in tags:
            cell.metadata["tags"] = tags[cell.id]
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
    return NotebookFile(path=path, name=name or path.name)


async def run_cells(
    directory: Path,
    notebooks: Mapping[str, Sequence[tuple[str, str]]],
    *,
    load_extension: bool = True,
    cell_timeout: float | None = None,
    execution_idle_time: float = 0.0,
    tags: Mapping[str, list[str]] | None = None,
) -> ReportRun:
    """Write notebooks and run them, in order, in one ``run`` phase.

    The caller provides the sentry-sdk client, such as the
    ``sentry_capture`` fixture. Envelopes are flushed before this returns.

    Parameters
    ----------
    directory
        Folder for the notebook files, and the kernels' working directory.
    notebooks
        Cells of each notebook, by its name: its path relative to
        ``directory``, such as ``chain.ipynb`` or ``folder/chain.ipynb``.
        Missing folders are created.
    load_extension
        Whether kernels load the nbsentry kernel extension.
    cell_timeout
        Seconds before a cell is interrupted, or `None` for no limit.
    execution_idle_time
        Seconds to wait between cells.
    tags
        Tags of some cells, by cell id, in every notebook.
    """
    files = []
    for name, cells in notebooks.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        files.append(write_cells(path, cells, name, tags))
    backend = LocalBackend(load_extension=load_extension)
    telemetry = Telemetry(
        flock=FLOCK,
        business=BUSINESS,
        user=f"{FLOCK}01",
        tags={"backend": backend.name},
    )
    executor = NotebookExecutor(
        backend,
        telemetry,
        cell_timeout=cell_timeout,
        execution_idle_time=execution_idle_time,
    )
    results: dict[str, NotebookResult] = {}
    with capture_logs() as logs:
        try:
            with telemetry.phase("run") as phase:
                for file in files:
                    results[file.name] = await executor.run(phase, file)
        finally:
            await backend.shutdown()
    sentry_sdk.flush()
    return ReportRun(results, logs)


def event_of(store: EnvelopeStore, notebook: str) -> dict[str, Any]:
    """Return the one error event of a notebook."""
    events = [
        event
        for event in store.events
        if event["tags"].get("notebook") == notebook
    ]
    if len(events) != 1:
        message = f"{len(events)} error events for {notebook}"
        raise AssertionError(message)
    return events[0]


def frames_of(value: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the stack frames of an exception value."""
    frames: list[dict[str, Any]] = value["stacktrace"]["frames"]
    return frames


def cell_frame(
    notebook: str, cell_id: str, lineno: int, context_line: str
) -> dict[str, Any]:
    """Build the parts of a cell's frame that tests compare exactly."""
    name = f"{notebook}#cell={cell_id}"
    return {
        "filename": name,
        "abs_path": name,
        "lineno": lineno,
        "context_line": context_line,
        "in_app": True,
    }


def frame_summary(frame: dict[str, Any]) -> dict[str, Any]:
    """Return the parts of a frame that `cell_frame` builds."""
    keys = ("filename", "abs_path", "lineno", "context_line", "in_app")
    return {key: frame.get(key) for key in keys}


def notebook_spans(
    store: EnvelopeStore, notebook: str
) -> list[dict[str, Any]]:
    """Return the spans of the one transaction of a notebook."""
    transactions = [
        transaction
        for transaction in store.transactions
        if transaction["contexts"]["trace"]["op"] == "nbsentry.notebook"
        and transaction["transaction"] == notebook
    ]
    if len(transactions) != 1:
        message = f"{len(transactions)} transactions for {notebook}"
        raise AssertionError(message)
    spans: list[dict[str, Any]] = transactions[0]["spans"]
    return spans


def span_interval(span: Mapping[str, Any]) -> tuple[float, float]:
    """Return a span's start and end as Unix seconds."""
    return _seconds(span["start_timestamp"]), _seconds(span["timestamp"])


def _seconds(value: float | str) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value).timestamp()
    return float(value)
