"""Notebook transactions, cell spans and error events."""

from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import sentry_sdk
import structlog
from sentry_sdk.tracing_utils import Baggage

from .client import scrub_text

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from sentry_sdk._types import Event
    from sentry_sdk.tracing import Span

    from nbsentry.kernel_reports import KernelSpan
    from nbsentry.notebooks import CodeCell

    from .telemetry import Telemetry

__all__ = [
    "MAX_ATTACHMENT_CHARACTERS",
    "MAX_CODE_LENGTH",
    "MAX_TAG_LENGTH",
    "SPAN_LIMIT",
    "CellTrace",
    "NotebookTrace",
    "PhaseTrace",
    "entered",
    "tag_value",
]

SPAN_LIMIT = 1000
"""Spans Sentry keeps in one transaction; it drops any past this."""

MAX_CODE_LENGTH = 2048
"""Characters of cell code kept in a cell span's data."""

MAX_TAG_LENGTH = 200
"""Characters Sentry accepts in a tag value."""

MAX_ATTACHMENT_CHARACTERS = 256 * 1024
"""Characters of traceback text attached to an event; the end is kept."""

_logger = structlog.get_logger("nbsentry")


@contextmanager
def entered(span: Span) -> Iterator[None]:
    """Enter a span; a cancelled run ends it as cancelled, not as an error."""
    cancelled: asyncio.CancelledError | None = None
    with span:
        try:
            yield
        except asyncio.CancelledError as exc:
            span.set_status("cancelled")
            cancelled = exc
    if cancelled is not None:
        raise cancelled


def tag_value(value: str) -> str:
    """Make a value fit a Sentry tag: one line of at most 200 characters.

    A longer value keeps its end, where a notebook path has its file name.
    """
    value = value.replace("\n", " ")
    if len(value) > MAX_TAG_LENGTH:
        value = "…" + value[-(MAX_TAG_LENGTH - 1) :]
    return value


@dataclass
class PhaseTrace:
    """A business phase: startup, one iteration, or shutdown."""

    transaction: Span
    """The phase transaction; a no-op span if sentry-sdk is not tracing."""

    errored: bool = False
    """Whether an error event was captured inside the phase."""


@dataclass
class CellTrace:
    """A code cell being executed."""

    cell: CodeCell
    span: Span | None
    """The cell span, or `None` past the span limit."""

    notebook: NotebookTrace
    status: str | None = None
    """Span status set for the cell, kept even when it has no span."""

    _ends: dict[int, float] = field(default_factory=dict, repr=False)

    def propagation_metadata(self) -> dict[str, str]:
        """Return trace headers that make kernel spans children of the cell.

        Returns
        -------
        dict
            ``sentry-trace``, ``baggage`` and W3C ``traceparent``.
        """
        span: Span = self.span or self.notebook.transaction
        flags = "01" if span.sampled else "00"
        headers = {
            "sentry-trace": span.to_traceparent(),
            "traceparent": f"00-{span.trace_id}-{span.span_id}-{flags}",
        }
        baggage = self.notebook.transaction.to_baggage()
        if baggage is not None:
            # Notebook code can read the request, so the DSN's public key
            # stays out; the kernel only continues the trace.
            items = {
                key: value
                for key, value in baggage.sentry_items.items()
                if key != "public_key"
            }
            headers["baggage"] = Baggage(items, mutable=False).serialize()
        return headers

    def set_status(self, status: str) -> None:
        """Set the span status, such as ``ok`` or ``deadline_exceeded``."""
        self.status = status
        if self.span is not None:
            self.span.set_status(status)

    def set_data(self, key: str, value: Any) -> None:
        """Set a value in the cell span's data."""
        if self.span is not None:
            self.span.set_data(key, value)

    @property
    def trace_id(self) -> str:
        """Trace id sent to the kernel with the cell's request."""
        return (self.span or self.notebook.transaction).trace_id

    def add_kernel_spans(self, spans: list[KernelSpan]) -> None:
        """Record spans reported by the kernel as children of the cell.

        The ``nbsentry.kernel.execute`` span, if present, comes first and
        becomes the parent of the kernel's top-level spans. Spans past the
        transaction's span limit are counted as omitted.

        Parameters
        ----------
        spans
            Kernel spans with times already on the runner's clock.
        """
        if self.span is None:
            self.notebook.omitted_spans += len(spans)
            return
        kept = spans[: self.notebook.reserve_spans(len(spans), for_cell=False)]
        top: Span = self.span
        if kept and kept[0].op == "nbsentry.kernel.execute":
            top = self._start_kernel_span(self.span, kept.pop(0))
        created = self._place_kernel_spans(top, kept)
        for span in [top, *created]:
            if span is not self.span:
                span.finish(end_timestamp=self._ends.pop(id(span)))

    def _place_kernel_spans(
        self, top: Span, spans: list[KernelSpan]
    ) -> list[Span]:
        created: dict[str, Span] = {}
        pending = spans
        # Parents finish after their children, so a report may list a
        # child first: place spans whose parent exists, until none is left.
        while pending:
            waiting = []
            for item in pending:
                if item.parent_span_id is None:
                    parent: Span | None = top
                else:
                    parent = created.get(item.parent_span_id)
                if parent is None:
                    waiting.append(item)
                else:
                    created[item.span_id] = self._start_kernel_span(
                        parent, item
                    )
            if len(waiting) == len(pending):
                # Parents that were never reported: attach to the top.
                for item in waiting:
                    created[item.span_id] = self._start_kernel_span(top, item)
                break
            pending = waiting
        return list(created.values())

    def _start_kernel_span(self, parent: Span, item: KernelSpan) -> Span:
        span = parent.start_child(
            op=item.op,
            name=item.description,
            start_timestamp=item.start,
            origin="auto.nbsentry.kernel",
        )
        span.set_status(item.status)
        for key, value in item.data.items():
            span.set_data(key, value)
        self._ends[id(span)] = item.end
        return span


@dataclass
class NotebookTrace:
    """A notebook execution: a transaction of its own."""

    name: str
    transaction: Span
    """The notebook transaction; a no-op span if sentry-sdk is not tracing."""

    phase: PhaseTrace
    telemetry: Telemetry
    spans: int = 0
    omitted_spans: int = 0
    cells_ahead: int = 0
    """Cells still to run, whose spans come before kernel spans."""

    late_span_used: bool = False
    errored: bool = False
    _clock: tuple[float, int] = field(init=False, repr=False)
    """Wall time of the transaction's start, and the monotonic time then."""

    def __post_init__(self) -> None:
        started = getattr(self.transaction, "start_timestamp", None)
        wall = started.timestamp() if started is not None else time.time()
        self._clock = (wall, time.monotonic_ns())

    def now(self) -> float:
        """Return the time on the transaction's clock, in epoch seconds.

        sentry-sdk starts a span at the wall clock's time and ends it after
        the monotonic clock's duration. On a test machine whose wall clock
        gained 5 ms a second on its monotonic clock, a cell span started
        later then ended after its transaction. Every span of the notebook
        starts at this time instead, which advances with the monotonic
        clock from the transaction's start.
        """
        wall, monotonic = self._clock
        return wall + (time.monotonic_ns() - monotonic) / 1e9

    def expect_cells(self, count: int) -> None:
        """Keep places in the span budget for the cells still to run.

        Cell spans come before the kernel's spans, so a long notebook
        loses kernel spans first and keeps a span for every cell while it
        can.
        """
        self.cells_ahead = count

    def reserve_spans(self, count: int, *, for_cell: bool) -> int:
        """Take up to ``count`` spans from the transaction's budget.

        Parameters
        ----------
        count
            Spans wanted.
        for_cell
            Whether the span is a cell span, which may use the places
            kept by `expect_cells`.

        Returns
        -------
        int
            How many spans may be created; the rest count as omitted.
        """
        # The transaction takes one place in Sentry's limit, and one is
        # kept for a late span of a failing cell.
        free = SPAN_LIMIT - 2 - self.spans
        if not for_cell:
            free -= self.cells_ahead
        granted = min(count, max(free, 0))
        self.spans += granted
        self.omitted_spans += count - granted
        return granted

    @contextmanager
    def span(self, op: str, description: str) -> Iterator[Span | None]:
        """Record a child span of the notebook, such as a kernel start."""
        if not self.reserve_spans(1, for_cell=False):
            yield None
            return
        with self.transaction.start_child(
            op=op, name=description, start_timestamp=self.now()
        ) as span:
            yield span
            span.set_status("ok")

    @contextmanager
    def cell(self, cell: CodeCell) -> Iterator[CellTrace]:
        """Open a cell span and set the cell tags while the cell runs."""
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("cell", tag_value(cell.cell_id))
            scope.set_tag("cell_number", cell.label)
            self.cells_ahead = max(self.cells_ahead - 1, 0)
            if not self.reserve_spans(1, for_cell=True):
                started = self.now()
                trace = CellTrace(cell, None, self)
                yield trace
                self._late_span(trace, started)
                return
            span = self._cell_span(cell)
            with entered(span):
                yield CellTrace(cell, span, self)

    def _cell_span(self, cell: CodeCell, start: float | None = None) -> Span:
        description = cell.label
        if cell.cell_id != str(cell.number):
            description = f"{cell.label} {cell.cell_id}"
        span = self.transaction.start_child(
            op="nbsentry.cell",
            name=description,
            start_timestamp=self.now() if start is None else start,
        )
        span.set_data("cell.id", cell.cell_id)
        span.set_data("cell.number", cell.number)
        span.set_data("cell.code", cell.source[:MAX_CODE_LENGTH])
        return span

    def _late_span(self, trace: CellTrace, started: float) -> None:
        """Give a failing cell past the span limit the one kept place."""
        if trace.status in {None, "ok"} or self.late_span_used:
            return
        self.late_span_used = True
        self.spans += 1
        self.omitted_spans -= 1
        span = self._cell_span(trace.cell, started)
        span.set_status(trace.status)
        # Without an end, sentry-sdk would end it just after it was created.
        span.finish(end_timestamp=self.now())

    def capture_failure(
        self,
        *,
        exception_type: str,
        value: str,
        cell: CodeCell | None = None,
        traceback: str | None = None,
        context: Mapping[str, Any] | None = None,
        exception_values: list[dict[str, Any]] | None = None,
        breadcrumbs: list[dict[str, Any]] | None = None,
    ) -> str | None:
        """Send one error event for a failure in this notebook.

        Parameters
        ----------
        exception_type
            Exception class name, such as the kernel's ``ename``.
        value
            Exception value or failure description.
        cell
            The failing cell, if the failure belongs to one.
        traceback
            Full traceback text, sent as an attachment.
        context
            More values for the event's ``notebook`` context.
        exception_values
            Sentry exception values with stack frames, from the kernel
            extension; by default one value without frames is built from
            ``exception_type`` and ``value``.
        breadcrumbs
            Breadcrumbs recorded in the kernel during the cell.

        Returns
        -------
        str or None
            The event id, or `None` if sentry-sdk dropped the event.
        """
        self.errored = True
        self.phase.errored = True
        details: dict[str, Any] = {"path": self.name}
        if cell is not None:
            details["cell_id"] = cell.cell_id
            details["cell_number"] = cell.number
        details.update(context or {})
        values = exception_values or [
            {
                "type": exception_type,
                "value": value,
                "mechanism": {"type": "nbsentry", "handled": False},
            }
        ]
        event: dict[str, Any] = {
            "level": "error",
            "logger": "nbsentry",
            "exception": {"values": values},
            "contexts": {"notebook": details},
        }
        if breadcrumbs:
            event["breadcrumbs"] = {"values": breadcrumbs}
        fingerprint = [
            "{{ default }}",
            self.telemetry.flock,
            self.telemetry.business,
            self.name,
        ]
        if cell is not None:
            fingerprint.append(cell.cell_id)
        with sentry_sdk.new_scope() as scope:
            scope.fingerprint = fingerprint
            if traceback:
                text = scrub_text(traceback)
                if len(text) > MAX_ATTACHMENT_CHARACTERS:
                    cut = len(text) - MAX_ATTACHMENT_CHARACTERS
                    kept = text[cut:]
                    text = f"[{cut} characters cut]\n{kept}"
                scope.add_attachment(
                    bytes=text.encode("utf-8", "replace"),
                    filename="traceback.txt",
                    content_type="text/plain",
                )
            event_id = sentry_sdk.capture_event(cast("Event", event))
        if event_id is None:
            _logger.warning(
                "Sentry dropped the error event",
                notebook=self.name,
                cell=cell.cell_id if cell else None,
            )
        return event_id
