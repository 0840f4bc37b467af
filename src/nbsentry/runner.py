"""Execution of one notebook on a fresh kernel, cell by cell."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import structlog

from .exceptions import (
    CellTimeoutError,
    InvalidNotebookError,
    KernelDiedError,
    KernelStartError,
)
from .execution import ExecuteOutcome, OutcomeStatus
from .kernel_reports import (
    CellReports,
    TimeWindow,
    breadcrumbs,
    exception_values,
)
from .models import CellResult, CellStatus, KernelError, NotebookResult
from .notebooks import CodeCell, Notebook, NotebookFile, load_notebook
from .sentry import scrub_text

if TYPE_CHECKING:
    from pathlib import Path

    from .backends.base import Kernel, KernelBackend
    from .sentry import CellTrace, NotebookTrace, PhaseTrace, Telemetry

__all__ = [
    "DEFAULT_KERNEL",
    "MAX_MESSAGE_LENGTH",
    "REPORT_VERSION",
    "NotebookExecutor",
    "RunObserver",
]

DEFAULT_KERNEL = "python3"
"""Kernel used when neither the options nor the notebook name one."""

MAX_MESSAGE_LENGTH = 500
"""Characters of a failure's message kept for log lines and the summary."""

REPORT_VERSION = 1
"""Version of the ``nbsentry`` request metadata and kernel reports."""

BACKLOG_REPORTS = 64
"""Reports of passing cells held before they are attached as a batch."""

BACKLOG_SECONDS = 1.0
"""Age at which the oldest held report gets its batch attached."""

_REPLIED = frozenset({CellStatus.passed, CellStatus.failed})
"""Cell outcomes after which a kernel with the extension has reported."""

_logger = structlog.get_logger("nbsentry")


class RunObserver(Protocol):
    """Receiver of progress updates, such as a progress bar."""

    def notebook_started(self, notebook: Notebook) -> None:
        """Note that a notebook starts, with its code cells known."""

    def cell_finished(self, notebook: Notebook, result: CellResult) -> None:
        """Note that a cell finished, was skipped or was left out."""

    def notebook_finished(self, result: NotebookResult) -> None:
        """Note that a notebook finished."""


class NotebookExecutor:
    """Run notebooks on fresh kernels and report them to Sentry.

    Parameters
    ----------
    backend
        Where kernels run.
    telemetry
        The monkey's Sentry state.
    kernel_name
        Kernel for every notebook; default each notebook's kernelspec.
    cell_timeout
        Seconds before a cell is interrupted, or `None` for no limit.
    execution_idle_time
        Seconds to wait between cells.
    working_directory
        Kernel working directory; default each notebook's folder.
    kernel_integrations
        Whether to ask the kernel extension to forward spans recorded by
        sentry-sdk's integrations inside the kernel.
    observer
        Receiver of progress updates.
    """

    def __init__(
        self,
        backend: KernelBackend,
        telemetry: Telemetry,
        *,
        kernel_name: str | None = None,
        cell_timeout: float | None = None,
        execution_idle_time: float = 0.0,
        working_directory: Path | None = None,
        kernel_integrations: bool = False,
        observer: RunObserver | None = None,
    ) -> None:
        self.backend = backend
        self.telemetry = telemetry
        self.kernel_name = kernel_name
        self.cell_timeout = cell_timeout
        self.execution_idle_time = execution_idle_time
        self.working_directory = working_directory
        self.kernel_integrations = kernel_integrations
        self.observer = observer
        self.current: NotebookResult | None = None
        """Result of the notebook running now, filled in as cells end."""

        self._preloaded: (
            tuple[NotebookFile, Notebook | InvalidNotebookError] | None
        ) = None

    def kernel_for(self, notebook: Notebook) -> str:
        """Return the kernel name a notebook runs on."""
        return self.kernel_name or notebook.kernel_name or DEFAULT_KERNEL

    def cwd_for(self, file: NotebookFile) -> Path:
        """Return the working directory of a notebook's kernel."""
        return self.working_directory or file.path.parent

    def preload(self, file: NotebookFile) -> Notebook:
        """Read a notebook ahead of its run, and keep the result for the run.

        The run then skips reading the file again, so nbformat's warnings
        are logged once.

        Raises
        ------
        InvalidNotebookError
            Raised if the notebook is invalid. Its run reports the same
            error.
        """
        try:
            notebook = load_notebook(file)
        except InvalidNotebookError as exc:
            self._preloaded = (file, exc)
            raise
        self._preloaded = (file, notebook)
        return notebook

    def _load(self, file: NotebookFile) -> Notebook:
        """Take the preloaded result for the file, or read the file now."""
        preloaded, self._preloaded = self._preloaded, None
        if preloaded is None or preloaded[0] != file:
            return load_notebook(file)
        loaded = preloaded[1]
        if isinstance(loaded, InvalidNotebookError):
            raise loaded
        return loaded

    async def run(
        self, phase: PhaseTrace, file: NotebookFile
    ) -> NotebookResult:
        """Run one notebook in a transaction of its own.

        Parameters
        ----------
        phase
            The iteration the notebook belongs to.
        file
            The notebook to run.

        Returns
        -------
        NotebookResult
            What happened to each code cell.
        """
        started = time.monotonic()
        result = self.current = NotebookResult(name=file.name)
        try:
            notebook = self._load(file)
        except InvalidNotebookError as exc:
            with self.telemetry.notebook(phase, file.name, None) as trace:
                trace.capture_failure(
                    exception_type=type(exc).__name__, value=exc.message
                )
            result.error = exc.message
            _logger.warning(
                "Notebook invalid", notebook=file.name, error=exc.message
            )
            self._finish(result, started)
            return result
        kernel_name = self.kernel_for(notebook)
        result.kernel = kernel_name
        if self.observer:
            self.observer.notebook_started(notebook)
        try:
            # The kernel stops after the transaction is sent.
            async with AsyncExitStack() as stack:
                with self.telemetry.notebook(
                    phase, file.name, kernel_name
                ) as trace:
                    kernel = await self._acquire(
                        stack, trace, notebook, result
                    )
                    if kernel is not None:
                        await self._run_cells(notebook, kernel, trace, result)
        except asyncio.CancelledError:
            # A signal stopped the run. The summary still shows the time
            # the notebook ran, though it never finished.
            result.duration = time.monotonic() - started
            raise
        self._finish(result, started)
        return result

    def _finish(self, result: NotebookResult, started: float) -> None:
        self.current = None
        result.duration = time.monotonic() - started
        failure = result.first_failure
        _logger.info(
            "Notebook finished",
            notebook=result.name,
            status=result.status.value,
            cells_run=result.cells_run,
            duration=round(result.duration, 3),
            failed_cell=failure.cell.cell_id if failure else None,
        )
        if self.observer:
            self.observer.notebook_finished(result)

    async def _acquire(
        self,
        stack: AsyncExitStack,
        trace: NotebookTrace,
        notebook: Notebook,
        result: NotebookResult,
    ) -> Kernel | None:
        kernel_name = self.kernel_for(notebook)
        cwd = self.cwd_for(notebook.file)
        with trace.span("nbsentry.kernel.acquire", kernel_name):
            try:
                return await stack.enter_async_context(
                    self.backend.kernel(kernel_name, cwd)
                )
            except KernelStartError as exc:
                trace.capture_failure(
                    exception_type=type(exc).__name__,
                    value=exc.message,
                    context={"kernel": kernel_name},
                )
                result.error = exc.message
                _logger.warning(
                    "Kernel start failed",
                    notebook=notebook.name,
                    kernel=kernel_name,
                    error=exc.message,
                )
                return None

    async def _run_cells(
        self,
        notebook: Notebook,
        kernel: Kernel,
        trace: NotebookTrace,
        result: NotebookResult,
    ) -> None:
        trace.expect_cells(
            sum(1 for c in notebook.cells if not c.skip and c.source.strip())
        )
        stopped = False
        executed = 0
        reported = False
        backlog = _ReportBacklog()
        try:
            for cell in notebook.cells:
                if stopped:
                    cell_result = CellResult(cell, CellStatus.not_run)
                elif cell.skip:
                    cell_result = CellResult(cell, CellStatus.skipped)
                elif not cell.source.strip():
                    # Like nbclient: the kernel would run nothing and
                    # report nothing, and the cell keeps no execution count.
                    cell_result = CellResult(cell, CellStatus.empty)
                else:
                    if executed and self.execution_idle_time:
                        await asyncio.sleep(self.execution_idle_time)
                    executed += 1
                    cell_result, received = await self._run_cell(
                        notebook, kernel, trace, cell, backlog
                    )
                    stopped = cell_result.status.is_failure
                    if received:
                        reported = True
                    elif not reported and cell_result.status in _REPLIED:
                        # Warn once per kernel: later cells would log the
                        # same.
                        reported = True
                        _logger.warning(
                            "Kernel extension sent no report; falling back"
                            " to text tracebacks",
                            notebook=notebook.name,
                            kernel=kernel.name,
                            cell=cell.cell_id,
                        )
                result.cells.append(cell_result)
                if self.observer:
                    self.observer.cell_finished(notebook, cell_result)
        finally:
            backlog.attach()

    async def _run_cell(
        self,
        notebook: Notebook,
        kernel: Kernel,
        trace: NotebookTrace,
        cell: CodeCell,
        backlog: _ReportBacklog,
    ) -> tuple[CellResult, int]:
        """Run a cell and return its result and how many reports it sent.

        The reports of a passing cell join the backlog, to be attached
        later in a batch. Those of any other cell are attached at once,
        since its error event needs them.
        """
        with trace.cell(cell) as cell_trace:
            metadata = self._metadata(notebook, cell, cell_trace)
            clock = cell_trace.notebook.now
            sent = clock()
            started = time.perf_counter()
            # A due batch is attached while this cell runs.
            outcome = await kernel.execute(
                cell.source,
                metadata,
                timeout=self.cell_timeout,
                meanwhile=backlog.attach_due,
            )
            duration = time.perf_counter() - started
            pending = _PendingReports(
                cell_trace, outcome, TimeWindow(sent, clock())
            )
            cell_trace.set_data("cell.status", outcome.status.value)
            if outcome.execution_count is not None:
                cell_trace.set_data(
                    "cell.execution_count", outcome.execution_count
                )
            received = len(outcome.reports)
            if outcome.status is OutcomeStatus.ok:
                cell_trace.set_status("ok")
                backlog.add(pending, received)
                return CellResult(cell, CellStatus.passed, duration), received
            # Earlier cells' warnings come before this cell's.
            backlog.attach()
            reports = pending.attach()
            if _raised_nothing(outcome, reports):
                _logger.info(
                    "Kernel replied error for a cell that raised nothing;"
                    " the cell passed",
                    notebook=notebook.name,
                    cell=cell.cell_id,
                )
                cell_trace.set_data("cell.status", OutcomeStatus.ok.value)
                cell_trace.set_status("ok")
                return CellResult(cell, CellStatus.passed, duration), received
            judged = self._judge(cell_trace, outcome, duration, reports)
            return judged, received

    def _timeout(
        self,
        cell: CodeCell,
        outcome: ExecuteOutcome,
        interrupted: list[dict[str, Any]] | None,
    ) -> _Failure:
        """Describe a cell interrupted at the cell timeout."""
        message = (
            f"Cell {cell.label} timed out after {self.cell_timeout:g} s"
            " and was interrupted"
        )
        if not outcome.kernel_responsive:
            message += "; the kernel did not respond to the interrupt"
        values = _timeout_values(message, interrupted)
        return _Failure(
            CellStatus.timed_out,
            CellTimeoutError.__name__,
            message,
            values,
            outcome.error,
        )

    def _metadata(
        self, notebook: Notebook, cell: CodeCell, cell_trace: CellTrace
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"version": REPORT_VERSION}
        request.update(cell_trace.propagation_metadata())
        request["notebook"] = notebook.name
        request["cell_id"] = cell.cell_id
        request["cell_number"] = cell.number
        request["integrations"] = self.kernel_integrations
        return {"cellId": cell.cell_id, "nbsentry": request}

    def _judge(
        self,
        cell_trace: CellTrace,
        outcome: ExecuteOutcome,
        duration: float,
        reports: CellReports,
    ) -> CellResult:
        cell = cell_trace.cell
        trace = cell_trace.notebook
        error = outcome.error
        final = reports.final
        chain = final.exception.values if final and final.exception else ()
        values = exception_values(chain, cell_trace.notebook.name) or None
        if outcome.status is OutcomeStatus.timed_out:
            failure = self._timeout(cell, outcome, values)
            cell_trace.set_status("deadline_exceeded")
        elif outcome.status is OutcomeStatus.died:
            failure = _death(cell, outcome)
            cell_trace.set_status("internal_error")
        else:
            if error is None:
                error = KernelError(
                    "ExecutionAborted", "The kernel aborted the request", ""
                )
            if cell.raises_exception:
                cell_trace.set_status("ok")
                cell_trace.set_data("cell.expected_error", error.ename)
                return CellResult(
                    cell, CellStatus.expected_error, duration, error
                )
            failure = _Failure(
                CellStatus.failed, error.ename, error.evalue, values, error
            )
            cell_trace.set_status("internal_error")
        status, exception_type, message, values, error = failure

        context: dict[str, Any] = {}
        if outcome.execution_count is not None:
            context["execution_count"] = outcome.execution_count
        trace.capture_failure(
            exception_type=exception_type,
            value=message,
            cell=cell,
            traceback=error.traceback if error else None,
            context=context,
            exception_values=values,
            breadcrumbs=breadcrumbs(reports),
        )

        # Log lines and the summary never see before_send's filter, and a
        # notebook can raise with megabytes of text.
        summary = scrub_text(f"{exception_type}: {message}")
        if len(summary) > MAX_MESSAGE_LENGTH:
            summary = summary[: MAX_MESSAGE_LENGTH - 1] + "…"
        _logger.warning(
            "Cell failed",
            notebook=trace.name,
            cell=cell.cell_id,
            cell_number=cell.label,
            status=status.value,
            error=summary,
        )
        return CellResult(cell, status, duration, error, summary)


class _PendingReports:
    """The kernel reports of a cell, until they are attached to its span.

    Parameters
    ----------
    cell_trace
        The cell's trace, whose span gets the kernel spans.
    outcome
        The request's outcome, with the raw reports.
    window
        When the runner sent the request and saw it complete.
    """

    def __init__(
        self,
        cell_trace: CellTrace,
        outcome: ExecuteOutcome,
        window: TimeWindow,
    ) -> None:
        self._cell_trace = cell_trace
        self._outcome = outcome
        self._window = window

    def attach(self) -> CellReports:
        """Validate the reports and record their spans."""
        cell_trace = self._cell_trace
        cell = cell_trace.cell
        notebook = cell_trace.notebook.name
        reports = CellReports.collect(
            self._outcome,
            trace_id=cell_trace.trace_id,
            cell_id=cell.cell_id,
            notebook=notebook,
            window=self._window,
        )
        cell_trace.add_kernel_spans(reports.spans)
        dropped = reports.capped_spans
        if reports.final is not None:
            dropped += reports.final.dropped.spans
        if dropped:
            cell_trace.set_data("nbsentry.kernel.dropped_spans", dropped)
            _logger.warning(
                "Kernel extension left out spans past its limit",
                notebook=notebook,
                cell=cell.cell_id,
                dropped=dropped,
            )
        if reports.rejected:
            cell_trace.set_data("nbsentry.rejected_reports", reports.rejected)
        return reports


class _ReportBacklog:
    """Reports of passing cells, attached to their cells' spans in batches.

    Attaching a cell's reports validates them and creates their spans.
    Done for one cell at a time between cells, pydantic's validation alone
    took about 40 us per report on a 2-core machine, against 3.4 us in a
    tight loop. The work also took CPU time the kernel needed for the
    next cell. In a batch it costs less per report, and the last batch is
    attached when the notebook ends and the kernel has nothing left to run.

    A batch is attached early, when a report of the running cell arrives,
    once it contains `BACKLOG_REPORTS` reports or its oldest cell passed
    `BACKLOG_SECONDS` ago. That bounds the memory the backlog uses. A
    warning about a rejected report comes by the time the next cell ends,
    and before the log line of a failing cell.
    """

    def __init__(self) -> None:
        self._cells: list[_PendingReports] = []
        self._reports = 0
        self._oldest = 0.0

    def add(self, pending: _PendingReports, reports: int) -> None:
        """Hold the reports of a passing cell."""
        if not self._cells:
            self._oldest = time.monotonic()
        self._cells.append(pending)
        self._reports += reports

    def attach_due(self) -> None:
        """Attach the held reports if the batch is full or old enough."""
        if self._reports >= BACKLOG_REPORTS or (
            self._cells and time.monotonic() - self._oldest >= BACKLOG_SECONDS
        ):
            self.attach()

    def attach(self) -> None:
        """Attach every held report to its cell's spans."""
        cells, self._cells, self._reports = self._cells, [], 0
        for pending in cells:
            pending.attach()


class _Failure(NamedTuple):
    """Contents of the error event and log line of a failed cell."""

    status: CellStatus
    exception_type: str
    message: str
    values: list[dict[str, Any]] | None
    error: KernelError | None


def _raised_nothing(outcome: ExecuteOutcome, reports: CellReports) -> bool:
    """Return whether an error reply is for a cell that raised nothing.

    ipykernel 7.4 replies error, with ``ename`` ``NoneType``, when the
    result of a cell failed to display. It resets that state only in its
    ``run_cell``, not in ``run_cell_async``, so a later cell with a
    top-level ``await`` gets the same reply although it raised nothing.
    The kernel extension's final report then has status ok. For the cell
    whose result failed to display, it contains the exception.
    """
    error = outcome.error
    final = reports.final
    return (
        outcome.status is OutcomeStatus.error
        and error is not None
        and error.ename == "NoneType"
        and error.evalue == "None"
        and final is not None
        and final.status == "ok"
    )


def _death(cell: CodeCell, outcome: ExecuteOutcome) -> _Failure:
    """Describe a kernel that died during or before the cell."""
    message = f"Kernel died while running cell {cell.label}"
    if not outcome.sent:
        message = (
            f"Kernel died before cell {cell.label} was sent, after the"
            " previous cell completed"
        )
    error = outcome.error
    if outcome.kernel_output:
        error = KernelError(
            KernelDiedError.__name__,
            message,
            "Last output of the kernel process:\n" + outcome.kernel_output,
        )
    return _Failure(
        CellStatus.kernel_died, KernelDiedError.__name__, message, None, error
    )


def _timeout_values(
    message: str, interrupted: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Build the exception of a timeout, with the interrupted line's stack.

    The kernel reports a KeyboardInterrupt whose frames end at the line
    that was running; those frames become the timeout's stack trace.
    """
    value: dict[str, Any] = {
        "type": CellTimeoutError.__name__,
        "value": message,
        "mechanism": {"type": "nbsentry", "handled": False},
    }
    if interrupted and "stacktrace" in interrupted[-1]:
        value["stacktrace"] = interrupted[-1]["stacktrace"]
    return [value]
