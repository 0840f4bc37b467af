# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Run notebooks through the runner's classes, as ``nbsentry run`` does."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from structlog.testing import capture_logs

from nbsentry.backends.local import LocalBackend
from nbsentry.business import Monkey, RunSummary
from nbsentry.config import RunConfig

from .capture import CapturingTransport, EnvelopeStore, capture_sentry
from .sdk_errors import record_sentry_sdk_errors

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping

    from nbsentry.models import CellResult, NotebookResult
    from nbsentry.notebooks import Notebook
    from nbsentry.runner import RunObserver

__all__ = [
    "REPO_ROOT",
    "CompletedRun",
    "RecordingObserver",
    "build_monkey",
    "events_by_type",
    "logs_named",
    "make_config",
    "make_deep_folders",
    "run_monkey_in_new_loop",
    "run_notebooks",
    "sentry_options",
    "transactions_by_op",
    "write_notebook",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Root of the repository: ``notebooks/`` and ``tests/data/`` are here."""

# sentry-sdk options matching the CLI's client: without default
# integrations, so the stdlib integration adds no subprocess spans.
_SENTRY_OPTIONS: dict[str, object] = {"default_integrations": False}

# Quick defaults: the CLI waits 60 s between iterations.
_TEST_DEFAULTS: dict[str, Any] = {"idle_time": 0.0, "error_idle_time": 0.0}


def sentry_options() -> dict[str, object]:
    """Return the sentry-sdk options for a client like the CLI's."""
    return dict(_SENTRY_OPTIONS)


@dataclass
class RecordingObserver:
    """A run observer that records progress and can run hooks.

    ``on_notebook_started`` is called with each notebook as it starts,
    before its kernel is acquired.
    """

    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    cells: list[tuple[str, str, str]] = field(default_factory=list)
    on_notebook_started: Callable[[Notebook], None] | None = None
    on_notebook_finished: Callable[[NotebookResult], None] | None = None
    on_cell_finished: Callable[[str, str], None] | None = None
    """Called with the notebook name and cell id as each cell ends."""

    def notebook_started(self, notebook: Notebook) -> None:
        self.started.append(notebook.name)
        if self.on_notebook_started is not None:
            self.on_notebook_started(notebook)

    def cell_finished(self, notebook: Notebook, result: CellResult) -> None:
        self.cells.append(
            (notebook.name, result.cell.cell_id, result.status.value)
        )
        if self.on_cell_finished is not None:
            self.on_cell_finished(notebook.name, result.cell.cell_id)

    def notebook_finished(self, result: NotebookResult) -> None:
        self.finished.append(result.name)
        if self.on_notebook_finished is not None:
            self.on_notebook_finished(result)


@dataclass
class CompletedRun:
    """What a monkey run produced: results, envelopes and log entries."""

    summary: RunSummary
    transport: CapturingTransport
    logs: list[MutableMapping[str, Any]]
    observer: RecordingObserver


def build_monkey(
    config: RunConfig, observer: RunObserver | None = None
) -> Monkey:
    """Build a monkey from the same parts as the CLI, on local kernels."""
    backend = LocalBackend(startup_timeout=config.startup_timeout)
    return Monkey.from_config(config, backend, observer=observer)


def make_config(paths: list[Path], **options: Any) -> RunConfig:
    """Build a run configuration with no idle time unless given."""
    values = {**_TEST_DEFAULTS, **options}
    return RunConfig(paths=paths, **values)


async def run_notebooks(
    paths: list[Path],
    *,
    observer: RecordingObserver | None = None,
    **options: Any,
) -> CompletedRun:
    """Run a monkey in the running event loop and capture what it sends.

    The sentry-sdk client samples every transaction and is closed before
    this returns. Every captured event and transaction is checked with
    Relay, and log entries are captured instead of printed.

    Parameters
    ----------
    paths
        Notebook files and folders.
    observer
        Receiver of progress updates; a new one if not given.
    **options
        Further `RunConfig` fields. Idle times default to 0.
    """
    config = make_config(paths, **options)
    recorder = observer or RecordingObserver()
    with (
        capture_sentry(options=sentry_options()) as transport,
        capture_logs() as logs,
    ):
        summary = await build_monkey(config, recorder).run()
    transport.validate_all()
    return CompletedRun(summary, transport, logs, recorder)


def run_monkey_in_new_loop(
    paths: list[Path],
    *,
    observer: RecordingObserver | None = None,
    **options: Any,
) -> CompletedRun:
    """Run `run_notebooks` in an event loop of its own.

    Module-scoped fixtures use this to share one run between tests. It
    fails if sentry-sdk logs an error about itself, as the autouse fixture
    does for each test.
    """
    with record_sentry_sdk_errors() as records:
        run = asyncio.run(run_notebooks(paths, observer=observer, **options))
    if records:
        messages = "\n".join(record.getMessage() for record in records)
        message = f"sentry-sdk logged errors about itself:\n{messages}"
        raise AssertionError(message)
    return run


def transactions_by_op(store: EnvelopeStore, op: str) -> list[dict[str, Any]]:
    """Return the transactions whose trace context has this op."""
    return [
        transaction
        for transaction in store.transactions
        if transaction["contexts"]["trace"]["op"] == op
    ]


def events_by_type(
    store: EnvelopeStore, exception_type: str
) -> list[dict[str, Any]]:
    """Return the error events whose exception has this type."""
    return [
        event
        for event in store.events
        if event["exception"]["values"][0]["type"] == exception_type
    ]


def logs_named(
    logs: list[MutableMapping[str, Any]], message: str
) -> list[MutableMapping[str, Any]]:
    """Return the captured log entries with this message."""
    return [entry for entry in logs if entry["event"] == message]


def make_deep_folders(root: Path, depth: int = 18) -> Path:
    """Make nested folders deeper than the path limit, with a notebook.

    Each folder name has 250 characters, so 18 of them pass Linux's
    PATH_MAX of 4,096 bytes. They are made relative to open folders,
    because their full paths are too long for ``mkdir``. Remove them with
    ``shutil.rmtree``, which walks relative to open folders too.

    Returns
    -------
    Path
        The top folder.
    """
    names = [f"L{level:02}_" + "y" * 246 for level in range(depth)]
    folder = os.open(root, os.O_RDONLY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=folder)
            child = os.open(name, os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = child
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        notebook = os.open("deep.ipynb", flags, dir_fd=folder)
        os.close(notebook)
    finally:
        os.close(folder)
    return root / names[0]


def write_notebook(
    path: Path,
    sources: list[str],
    *,
    tags: dict[int, list[str]] | None = None,
) -> Path:
    """Write a Python notebook with one code cell per source.

    Cell ids are ``cell-1``, ``cell-2`` and so on.

    Parameters
    ----------
    path
        File to write; its folder must exist.
    sources
        Code of each cell.
    tags
        Cell tags by index in ``sources``.
    """
    cells: list[dict[str, Any]] = []
    for index, source in enumerate(sources):
        metadata = {"tags": (tags or {}).get(index, [])}
        cells.append(
            {
                "cell_type": "code",
                "id": f"cell-{index + 1}",
                "metadata": metadata,
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
        )
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3",
                "language": "python",
                "name": "python3",
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path
