# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Run the nbclient test notebooks and pin what happens to each one.

The corpus is read from ``shared/corpus/nbclient`` beside the repository,
and the tests are skipped if it is absent. One monkey run covers all of it.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import pytest

from nbsentry.models import CellStatus, NotebookStatus
from tests.support.runs import REPO_ROOT, run_monkey_in_new_loop

if TYPE_CHECKING:
    from nbsentry.models import NotebookResult
    from tests.support.runs import CompletedRun

CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "nbclient"

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"nbclient corpus not found at {CORPUS}"
)

HAS_IPYWIDGETS = importlib.util.find_spec("ipywidgets") is not None

PASSING = {
    "Clear Output.ipynb",
    "Empty Cell.ipynb",
    "Factorials.ipynb",
    "HelloWorld.ipynb",
    "Inline Image.ipynb",
    "Other Comms.ipynb",
    "SVG.ipynb",
    "Skip Exceptions with Cell Tags.ipynb",
    "Skip Execution with Cell Tag.ipynb",
    "Sleep1s.ipynb",
    "Unicode.ipynb",
    "UnicodePy3.ipynb",
    "update-display-id.ipynb",
}

NO_WIDGETS = ("1", "ModuleNotFoundError", "No module named 'ipywidgets'")
PARALLEL = ("2", "KeyError", "'NBEXECUTE_TEST_PARALLEL_TMPDIR'")

# Notebook name: failing cell, exception type and value of its event.
FAILING = {
    # The kernel sends SIGTERM to its own process.
    "Autokill.ipynb": (
        "1",
        "KernelDiedError",
        "Kernel died while running cell #1",
    ),
    # It expects an in-memory history file, which nbclient configures.
    "Check History in Memory.ipynb": ("2", "AssertionError", ""),
    "Disable Stdin.ipynb": (
        "1",
        "StdinNotImplementedError",
        (
            "raw_input was called, but this frontend does not support"
            " input requests."
        ),
    ),
    "Error.ipynb": ("d200673b", "ZeroDivisionError", "division by zero"),
    # An endless loop that only the interrupt after the timeout stops.
    "Interrupt.ipynb": (
        "1",
        "CellTimeoutError",
        "Cell #1 timed out after 10 s and was interrupted",
    ),
    "JupyterWidgets.ipynb": NO_WIDGETS,
    "Output.ipynb": NO_WIDGETS,
    # Both read an environment variable that nbclient's parallel test sets.
    "Parallel Execute A.ipynb": PARALLEL,
    "Parallel Execute B.ipynb": PARALLEL,
    "Skip Exceptions.ipynb": ("1", "Exception", "message"),
}

# With ipywidgets installed these two notebooks may pass, so their outcome
# is not pinned then.
WIDGETS = {"JupyterWidgets.ipynb", "Output.ipynb"}


@pytest.fixture(scope="module")
def corpus_run() -> CompletedRun:
    return run_monkey_in_new_loop([CORPUS], cell_timeout=10.0)


def _result(run: CompletedRun, name: str) -> NotebookResult:
    (result,) = [r for r in run.summary.notebooks if r.name == name]
    return result


def test_corpus_complete(corpus_run: CompletedRun) -> None:
    names = {r.name for r in corpus_run.summary.notebooks}

    assert names == PASSING | set(FAILING)
    assert len(corpus_run.summary.notebooks) == len(names)


@pytest.mark.parametrize("name", sorted(PASSING))
def test_corpus_passes(corpus_run: CompletedRun, name: str) -> None:
    result = _result(corpus_run, name)

    assert result.status is NotebookStatus.passed, result
    assert all(
        event["tags"]["notebook"] != name
        for event in corpus_run.transport.events
    )


@pytest.mark.parametrize("name", sorted(FAILING))
def test_corpus_fails(corpus_run: CompletedRun, name: str) -> None:
    if name in WIDGETS and HAS_IPYWIDGETS:
        pytest.skip("ipywidgets is installed, so the outcome is not pinned")
    cell, exception_type, value = FAILING[name]
    result = _result(corpus_run, name)
    events = [
        e for e in corpus_run.transport.events if e["tags"]["notebook"] == name
    ]

    failure = result.first_failure
    assert result.status is NotebookStatus.failed
    assert failure is not None
    assert failure.cell.cell_id == cell
    assert len(events) == 1
    (exception,) = events[0]["exception"]["values"]
    assert exception["type"] == exception_type
    assert exception["value"] == value
    assert events[0]["tags"]["cell"] == cell
    after = result.cells[result.cells.index(failure) + 1 :]
    assert {c.status for c in after} <= {CellStatus.not_run}


def test_corpus_tagged_cells(corpus_run: CompletedRun) -> None:
    skip_exceptions = _result(
        corpus_run, "Skip Exceptions with Cell Tags.ipynb"
    )
    skip_execution = _result(corpus_run, "Skip Execution with Cell Tag.ipynb")

    assert [c.status for c in skip_exceptions.cells] == [
        CellStatus.expected_error,
        CellStatus.passed,
    ]
    assert [c.status for c in skip_execution.cells] == [
        CellStatus.skipped,
        CellStatus.passed,
    ]
