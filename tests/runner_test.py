# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of notebook execution: transactions, cell spans and failures.

One module-scoped run covers the structure of what is sent: two
iterations over a failing notebook and then a passing one.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import pytest
import sentry_sdk

from nbsentry.models import CellStatus, NotebookStatus
from nbsentry.sentry import MAX_CODE_LENGTH
from tests.support import CapturingTransport
from tests.support.runs import (
    REPO_ROOT,
    CompletedRun,
    RecordingObserver,
    logs_named,
    run_monkey_in_new_loop,
    transactions_by_op,
    write_notebook,
)

if TYPE_CHECKING:
    from nbsentry.notebooks import Notebook

FLOCK = "runner-tests"
FAILING = "failing-cell.ipynb"
PASSING = "passing.ipynb"
PASSING_CELLS = ["compute-total", "print-summary", "define-mean", "check-mean"]
CELL_TAGS = {"cell", "cell_number"}


class _TransportSnapshots:
    """Record which transactions reached the transport as notebooks start."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[str]]] = []

    def __call__(self, notebook: Notebook) -> None:
        transport = sentry_sdk.get_client().transport
        assert isinstance(transport, CapturingTransport)
        names = [t["transaction"] for t in transport.transactions]
        self.seen.append((notebook.name, names))


@pytest.fixture(scope="module")
def snapshots() -> _TransportSnapshots:
    return _TransportSnapshots()


@pytest.fixture(scope="module")
def two_iterations(snapshots: _TransportSnapshots) -> CompletedRun:
    observer = RecordingObserver(on_notebook_started=snapshots)
    notebooks = REPO_ROOT / "notebooks"
    return run_monkey_in_new_loop(
        [notebooks / FAILING, notebooks / PASSING],
        iterations=2,
        flock=FLOCK,
        observer=observer,
    )


def _iterations(run: CompletedRun) -> list[dict[str, Any]]:
    return transactions_by_op(run.transport, "nbsentry.run")


def _notebooks_of(
    run: CompletedRun, iteration: dict[str, Any]
) -> list[dict[str, Any]]:
    trace_id = iteration["contexts"]["trace"]["trace_id"]
    return [
        t
        for t in transactions_by_op(run.transport, "nbsentry.notebook")
        if t["contexts"]["trace"]["trace_id"] == trace_id
    ]


def _cell_spans(transaction: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in transaction["spans"] if s["op"] == "nbsentry.cell"]


def test_phase_transactions(two_iterations: CompletedRun) -> None:
    transport = two_iterations.transport
    startup = transactions_by_op(transport, "nbsentry.startup")
    iterations = _iterations(two_iterations)
    shutdown = transactions_by_op(transport, "nbsentry.shutdown")

    assert len(startup) == 1
    assert len(iterations) == 2
    assert len(shutdown) == 1
    assert startup[0]["transaction"] == "NotebookRunner.startup"
    assert shutdown[0]["transaction"] == "NotebookRunner.shutdown"
    phases = [*startup, *iterations, *shutdown]
    trace_ids = {t["contexts"]["trace"]["trace_id"] for t in phases}
    assert len(trace_ids) == 4
    for phase in phases:
        assert phase["contexts"]["trace"]["parent_span_id"] is None


def test_phase_tags_and_user(two_iterations: CompletedRun) -> None:
    transport = two_iterations.transport
    payloads = transport.events + transport.transactions

    assert len(payloads) == 2 + 8
    for payload in payloads:
        assert payload["tags"]["flock"] == FLOCK
        assert payload["tags"]["business"] == "NotebookRunner"
        assert payload["tags"]["backend"] == "local"
        assert payload["user"] == {"username": f"{FLOCK}01"}


def test_no_tag_leaks(two_iterations: CompletedRun) -> None:
    transport = two_iterations.transport
    for op in ("nbsentry.startup", "nbsentry.run", "nbsentry.shutdown"):
        for transaction in transactions_by_op(transport, op):
            leaked = {"notebook", "kernel", *CELL_TAGS} & set(
                transaction["tags"]
            )
            assert leaked == set(), f"{op} carries {leaked}"
    for transaction in transactions_by_op(transport, "nbsentry.notebook"):
        tags = transaction["tags"]
        assert tags["notebook"] == transaction["transaction"]
        assert CELL_TAGS & set(tags) == set()


def test_notebook_transactions(two_iterations: CompletedRun) -> None:
    for iteration in _iterations(two_iterations):
        context = iteration["contexts"]["trace"]
        notebooks = _notebooks_of(two_iterations, iteration)

        assert [t["transaction"] for t in notebooks] == [FAILING, PASSING]
        for notebook in notebooks:
            trace = notebook["contexts"]["trace"]
            assert trace["op"] == "nbsentry.notebook"
            assert trace["parent_span_id"] == context["span_id"]
            assert trace["span_id"] != context["span_id"]
            assert notebook["tags"]["kernel"] == "python3"
        assert notebooks[0]["contexts"]["trace"]["status"] == "internal_error"
        assert notebooks[1]["contexts"]["trace"]["status"] == "ok"
        assert context["status"] == "internal_error"


def test_notebook_sent_before_iteration_ends(
    two_iterations: CompletedRun, snapshots: _TransportSnapshots
) -> None:
    sent = [t["transaction"] for t in two_iterations.transport.transactions]
    run = "NotebookRunner.run"

    assert sent == [
        "NotebookRunner.startup",
        FAILING,
        PASSING,
        run,
        FAILING,
        PASSING,
        run,
        "NotebookRunner.shutdown",
    ]
    # When a notebook starts, the previous one's transaction was sent.
    assert snapshots.seen == [
        (FAILING, ["NotebookRunner.startup"]),
        (PASSING, ["NotebookRunner.startup", FAILING]),
        (FAILING, ["NotebookRunner.startup", FAILING, PASSING, run]),
        (PASSING, ["NotebookRunner.startup", FAILING, PASSING, run, FAILING]),
    ]


def test_cell_spans(two_iterations: CompletedRun) -> None:
    failing, passing = _notebooks_of(
        two_iterations, _iterations(two_iterations)[0]
    )
    failing_spans = _cell_spans(failing)
    passing_spans = _cell_spans(passing)

    assert [s["description"] for s in failing_spans] == [
        "#1 load-settings",
        "#2 read-filter",
    ]
    assert [s["data"]["cell.id"] for s in passing_spans] == PASSING_CELLS
    assert [s["data"]["cell.number"] for s in passing_spans] == [1, 2, 3, 4]
    assert failing_spans[1]["data"]["cell.code"] == 'settings["filter"]'
    assert failing_spans[1]["status"] == "internal_error"
    assert [s["status"] for s in passing_spans] == ["ok"] * 4
    for transaction, spans in (
        (failing, failing_spans),
        (passing, passing_spans),
    ):
        context = transaction["contexts"]["trace"]
        for span in spans:
            assert span["parent_span_id"] == context["span_id"]
            assert span["trace_id"] == context["trace_id"]


def test_failing_cell_event(two_iterations: CompletedRun) -> None:
    transport = two_iterations.transport
    events = transport.events
    iterations = _iterations(two_iterations)

    assert len(events) == 2
    for event, iteration in zip(events, iterations, strict=True):
        (exception,) = event["exception"]["values"]
        assert exception["type"] == "KeyError"
        assert exception["value"] == "'filter'"
        assert event["tags"]["notebook"] == FAILING
        assert event["tags"]["cell"] == "read-filter"
        assert event["tags"]["cell_number"] == "#2"
        assert event["fingerprint"] == [
            "{{ default }}",
            FLOCK,
            "NotebookRunner",
            FAILING,
            "read-filter",
        ]
        trace_id = event["contexts"]["trace"]["trace_id"]
        assert trace_id == iteration["contexts"]["trace"]["trace_id"]


def test_failing_cell_traceback(two_iterations: CompletedRun) -> None:
    attachments = two_iterations.transport.attachments

    assert len(attachments) == 2
    for attachment in attachments:
        text = attachment.data.decode()
        assert attachment.filename == "traceback.txt"
        assert attachment.content_type == "text/plain"
        assert attachment.event is not None
        assert attachment.event["tags"]["cell"] == "read-filter"
        assert "\x1b" not in text
        assert "KeyError: 'filter'" in text
        assert 'settings["filter"]' in text


def test_failing_cell_stops_notebook(two_iterations: CompletedRun) -> None:
    results = two_iterations.summary.notebooks

    assert [r.name for r in results] == [FAILING, PASSING] * 2
    for failing, passing in (results[:2], results[2:]):
        assert [c.status for c in failing.cells] == [
            CellStatus.passed,
            CellStatus.failed,
            CellStatus.not_run,
        ]
        assert failing.status is NotebookStatus.failed
        assert failing.cells_run == 2
        assert passing.status is NotebookStatus.passed
        assert passing.cells_run == 4
    assert two_iterations.summary.iterations == 2


def test_log_lines(two_iterations: CompletedRun) -> None:
    logs = two_iterations.logs
    finished = logs_named(logs, "Notebook finished")
    failed = logs_named(logs, "Cell failed")

    assert [e["notebook"] for e in finished] == [FAILING, PASSING] * 2
    assert [e["status"] for e in finished] == ["failed", "passed"] * 2
    assert [e["failed_cell"] for e in finished] == ["read-filter", None] * 2
    assert len(failed) == 2
    for entry in failed:
        assert entry["notebook"] == FAILING
        assert entry["cell"] == "read-filter"
        assert entry["cell_number"] == "#2"
        assert entry["error"] == "KeyError: 'filter'"
        assert entry["log_level"] == "warning"


@pytest.fixture(scope="module")
def tagged_cells(tmp_path_factory: pytest.TempPathFactory) -> CompletedRun:
    folder = tmp_path_factory.mktemp("tagged")
    data = REPO_ROOT / "tests" / "data"
    shutil.copy(data / "tags.ipynb", folder / "a-tags.ipynb")
    shutil.copy(data / "no-ids.ipynb", folder / "b-no-ids.ipynb")
    long_value = "x" * (MAX_CODE_LENGTH + 500)
    write_notebook(folder / "c-long-code.ipynb", [f"value = {long_value!r}"])
    shutil.copy(data / "markdown-only.ipynb", folder / "d-markdown.ipynb")
    return run_monkey_in_new_loop([folder])


def test_tagged_cells(tagged_cells: CompletedRun) -> None:
    result = tagged_cells.summary.notebooks[0]
    (transaction,) = [
        t
        for t in tagged_cells.transport.transactions
        if t["transaction"] == "a-tags.ipynb"
    ]

    assert [(c.cell.cell_id, c.status) for c in result.cells] == [
        ("expected-error", CellStatus.expected_error),
        ("skipped", CellStatus.skipped),
        ("after-tags", CellStatus.passed),
    ]
    assert result.status is NotebookStatus.passed
    assert result.cells[0].error is not None
    assert result.cells[0].error.ename == "RuntimeError"
    assert [s["data"]["cell.id"] for s in _cell_spans(transaction)] == [
        "expected-error",
        "after-tags",
    ]
    assert _cell_spans(transaction)[0]["data"]["cell.expected_error"] == (
        "RuntimeError"
    )
    notebooks = {e["tags"]["notebook"] for e in tagged_cells.transport.events}
    assert "a-tags.ipynb" not in notebooks


def test_cells_without_ids(tagged_cells: CompletedRun) -> None:
    result = tagged_cells.summary.notebooks[1]
    (event,) = tagged_cells.transport.events
    (transaction,) = [
        t
        for t in tagged_cells.transport.transactions
        if t["transaction"] == "b-no-ids.ipynb"
    ]

    assert [c.cell.cell_id for c in result.cells] == ["1", "2", "3"]
    assert event["tags"]["notebook"] == "b-no-ids.ipynb"
    assert event["tags"]["cell"] == "2"
    assert event["tags"]["cell_number"] == "#2"
    assert event["exception"]["values"][0]["value"] == "no ids here"
    assert event["fingerprint"][-1] == "2"
    assert [s["description"] for s in _cell_spans(transaction)] == [
        "#1",
        "#2",
    ]
    assert [s["data"]["cell.id"] for s in _cell_spans(transaction)] == [
        "1",
        "2",
    ]


def test_cell_code_truncated(tagged_cells: CompletedRun) -> None:
    (transaction,) = [
        t
        for t in tagged_cells.transport.transactions
        if t["transaction"] == "c-long-code.ipynb"
    ]
    (span,) = _cell_spans(transaction)
    code = span["data"]["cell.code"]

    assert len(code) == MAX_CODE_LENGTH
    assert code == ("value = '" + "x" * MAX_CODE_LENGTH)[:MAX_CODE_LENGTH]
    assert tagged_cells.summary.notebooks[2].status is NotebookStatus.passed


def test_notebook_without_code(tagged_cells: CompletedRun) -> None:
    result = tagged_cells.summary.notebooks[3]
    (transaction,) = [
        t
        for t in tagged_cells.transport.transactions
        if t["transaction"] == "d-markdown.ipynb"
    ]

    assert result.name == "d-markdown.ipynb"
    assert result.status is NotebookStatus.passed
    assert result.cells == []
    assert _cell_spans(transaction) == []
    assert transaction["contexts"]["trace"]["status"] == "ok"
