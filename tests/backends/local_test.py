# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of local kernels that die or run past the cell timeout."""

from __future__ import annotations

import shutil

import pytest

from nbsentry.models import CellStatus, NotebookStatus
from tests.support.runs import (
    REPO_ROOT,
    CompletedRun,
    events_by_type,
    logs_named,
    run_monkey_in_new_loop,
    transactions_by_op,
)

CELL_TIMEOUT = 2.0
DATA = REPO_ROOT / "tests" / "data"
PASSING = REPO_ROOT / "notebooks" / "passing.ipynb"


@pytest.fixture(scope="module")
def broken_kernels(tmp_path_factory: pytest.TempPathFactory) -> CompletedRun:
    # Names sort in the order the checks need: a passing notebook after
    # each broken kernel.
    folder = tmp_path_factory.mktemp("broken")
    shutil.copy(DATA / "kernel-dies.ipynb", folder / "a-kernel-dies.ipynb")
    shutil.copy(PASSING, folder / "b-after-death.ipynb")
    shutil.copy(DATA / "sleep.ipynb", folder / "c-sleep.ipynb")
    shutil.copy(PASSING, folder / "d-after-timeout.ipynb")
    return run_monkey_in_new_loop([folder], cell_timeout=CELL_TIMEOUT)


@pytest.mark.timeout(90)
def test_kernel_death_event(broken_kernels: CompletedRun) -> None:
    (event,) = events_by_type(broken_kernels.transport, "KernelDiedError")
    (exception,) = event["exception"]["values"]

    assert exception["value"] == "Kernel died while running cell #2"
    assert event["tags"]["notebook"] == "a-kernel-dies.ipynb"
    assert event["tags"]["cell"] == "exit-process"
    assert event["tags"]["cell_number"] == "#2"
    assert event["fingerprint"] == [
        "{{ default }}",
        "nbsentry",
        "NotebookRunner",
        "a-kernel-dies.ipynb",
        "exit-process",
    ]


def test_kernel_death_results(broken_kernels: CompletedRun) -> None:
    died, after, *_ = broken_kernels.summary.notebooks

    assert [c.status for c in died.cells] == [
        CellStatus.passed,
        CellStatus.kernel_died,
        CellStatus.not_run,
    ]
    assert died.status is NotebookStatus.failed
    assert after.name == "b-after-death.ipynb"
    assert after.status is NotebookStatus.passed
    assert after.cells_run == 4
    # One kernel per notebook: none is reused after a death or timeout.
    assert len(logs_named(broken_kernels.logs, "Kernel started")) == 4


def test_cell_timeout_event(broken_kernels: CompletedRun) -> None:
    (event,) = events_by_type(broken_kernels.transport, "CellTimeoutError")
    (exception,) = event["exception"]["values"]
    (attachment,) = [
        a
        for a in broken_kernels.transport.attachments
        if a.event is not None and a.event["event_id"] == event["event_id"]
    ]
    text = attachment.data.decode()

    assert exception["value"] == (
        "Cell #1 timed out after 2 s and was interrupted"
    )
    assert event["tags"]["notebook"] == "c-sleep.ipynb"
    assert event["tags"]["cell"] == "sleep-long"
    assert event["tags"]["cell_number"] == "#1"
    assert attachment.filename == "traceback.txt"
    assert "KeyboardInterrupt" in text
    assert "time.sleep(30)" in text
    assert "\x1b" not in text


def test_cell_timeout_results(broken_kernels: CompletedRun) -> None:
    *_, timed_out, after = broken_kernels.summary.notebooks
    (transaction,) = [
        t
        for t in transactions_by_op(
            broken_kernels.transport, "nbsentry.notebook"
        )
        if t["transaction"] == "c-sleep.ipynb"
    ]
    (span,) = [s for s in transaction["spans"] if s["op"] == "nbsentry.cell"]

    assert [c.status for c in timed_out.cells] == [CellStatus.timed_out]
    assert timed_out.status is NotebookStatus.failed
    assert span["status"] == "deadline_exceeded"
    assert after.name == "d-after-timeout.ipynb"
    assert after.status is NotebookStatus.passed
    assert after.cells_run == 4


def test_broken_kernel_logs(broken_kernels: CompletedRun) -> None:
    failed = logs_named(broken_kernels.logs, "Cell failed")

    assert [(e["notebook"], e["cell"], e["status"]) for e in failed] == [
        ("a-kernel-dies.ipynb", "exit-process", "kernel-died"),
        ("c-sleep.ipynb", "sleep-long", "timed-out"),
    ]
    assert len(broken_kernels.transport.events) == 2
