"""Turn a cell's kernel reports into spans, exceptions and breadcrumbs.

The kernel's clock is not the runner's: a remote kernel may be seconds
off. Kernel timestamps are shifted as a whole so that the kernel's own
execution window fits the runner's request window, then each one is
clamped into that window, so no kernel span starts before its cell span
or ends after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from .exceptions import ReportRejectedError
from .report import MAX_SPANS, KernelReport, parse_report

if TYPE_CHECKING:
    from .execution import ExecuteOutcome
    from .report import ExceptionValue, Frame

__all__ = [
    "MAX_REJECTION_LOGS",
    "CellReports",
    "KernelSpan",
    "TimeWindow",
    "breadcrumbs",
    "exception_values",
    "frame_filename",
]

MAX_REJECTION_LOGS = 5
"""Rejected reports of one cell logged one by one; the rest are counted."""

_logger = structlog.get_logger("nbsentry")

# Span statuses that sentry-relay 0.10.1 normalizes without an error.
# Relay drops any other status from a span and records an error.
_SPAN_STATUSES = frozenset(
    {
        "aborted",
        "already_exists",
        "cancelled",
        "data_loss",
        "deadline_exceeded",
        "failed_precondition",
        "failure",
        "internal_error",
        "invalid_argument",
        "not_found",
        "ok",
        "out_of_range",
        "permission_denied",
        "resource_exhausted",
        "success",
        "unauthenticated",
        "unavailable",
        "unimplemented",
        "unknown",
        "unknown_error",
    }
)


@dataclass(frozen=True)
class TimeWindow:
    """Runner wall-clock times between sending a request and its reply."""

    start: float
    end: float

    def clamp(self, timestamp: float) -> float:
        """Move a timestamp into the window."""
        return min(max(timestamp, self.start), self.end)


@dataclass(frozen=True)
class KernelSpan:
    """A kernel span with times on the runner's clock."""

    span_id: str
    parent_span_id: str | None
    op: str
    description: str | None
    start: float
    end: float
    status: str
    data: dict[str, Any]


@dataclass
class CellReports:
    """Reports accepted for one cell, and what was rejected.

    Parameters
    ----------
    final
        The final report, if one arrived and was valid.
    spans
        Spans of every accepted report, partial ones first.
    rejected
        Number of reports dropped.
    """

    final: KernelReport | None = None
    spans: list[KernelSpan] = field(default_factory=list)
    rejected: int = 0
    received: int = 0
    capped_spans: int = 0
    """Spans left out past `MAX_SPANS` across the cell's reports."""

    shift: float = 0.0
    """Seconds added to kernel times to put them on the runner's clock."""

    window: TimeWindow | None = None
    """Runner times of the request, which every kernel time is clamped to."""

    @classmethod
    def collect(
        cls,
        outcome: ExecuteOutcome,
        *,
        trace_id: str,
        cell_id: str,
        notebook: str,
        window: TimeWindow,
    ) -> CellReports:
        """Validate the reports of a request and place their spans.

        Each rejected report is logged once, with the reason, and counted.
        Of several final reports, the last one is kept and the others are
        rejected. The extension sends its final report from
        ``post_run_cell``, after the cell's code has run, so a report that
        the cell's code sends itself comes earlier.

        Parameters
        ----------
        outcome
            The request's outcome, with raw reports.
        trace_id
            Trace id the runner sent with the request.
        cell_id
            Cell id the runner sent with the request.
        notebook
            Notebook name, for log lines.
        window
            When the runner sent the request and saw it complete.
        """
        result = cls(received=len(outcome.reports), window=window)
        accepted: list[KernelReport] = []
        for data in outcome.reports:
            try:
                report = parse_report(
                    data,
                    msg_id=outcome.msg_id,
                    trace_id=trace_id,
                    cell_id=cell_id,
                )
            except ReportRejectedError as exc:
                result._reject(notebook, cell_id, exc.reason)
                continue
            if report.kind == "final":
                if result.final is not None:
                    accepted.remove(result.final)
                    result._reject(
                        notebook,
                        cell_id,
                        "final report followed by another for the cell",
                    )
                result.final = report
            accepted.append(report)
        if accepted:
            shift = result.shift = _clock_shift(accepted, window)
            result._place_spans(accepted, window)
            if result.final is not None and result.final.end is not None:
                result.spans.insert(
                    0,
                    KernelSpan(
                        span_id="",
                        parent_span_id=None,
                        op="nbsentry.kernel.execute",
                        description="execution in the kernel",
                        start=window.clamp(result.final.start + shift),
                        end=window.clamp(result.final.end + shift),
                        status="ok"
                        if result.final.status == "ok"
                        else "internal_error",
                        data={"execution_count": result.final.execution_count},
                    ),
                )
        result._log_unlogged(notebook, cell_id)
        return result

    def _place_spans(
        self, accepted: list[KernelReport], window: TimeWindow
    ) -> None:
        """Put the spans of accepted reports on the runner's clock.

        A span that several reports repeat is kept once, and spans past
        `MAX_SPANS` are counted in `capped_spans`.
        """
        shift = self.shift
        seen: set[str] = set()
        for report in accepted:
            for span in report.spans:
                if span.span_id in seen:
                    continue
                seen.add(span.span_id)
                if len(self.spans) >= MAX_SPANS:
                    self.capped_spans += 1
                    continue
                self.spans.append(
                    KernelSpan(
                        span_id=span.span_id,
                        parent_span_id=span.parent_span_id,
                        op=span.op,
                        description=span.description,
                        start=window.clamp(span.start + shift),
                        end=window.clamp(span.end + shift),
                        status=_span_status(span.status),
                        data=dict(span.data),
                    )
                )

    def _log_unlogged(self, notebook: str, cell_id: str) -> None:
        # A notebook can forge any number of reports: count the rest.
        if self.rejected > MAX_REJECTION_LOGS:
            _logger.warning(
                "More kernel reports rejected; not logged one by one",
                notebook=notebook,
                cell=cell_id,
                rejected=self.rejected - MAX_REJECTION_LOGS,
            )

    def _reject(self, notebook: str, cell_id: str, reason: str) -> None:
        self.rejected += 1
        if self.rejected <= MAX_REJECTION_LOGS:
            _logger.warning(
                "Kernel report rejected",
                notebook=notebook,
                cell=cell_id,
                reason=reason,
            )


def _clock_shift(reports: list[KernelReport], window: TimeWindow) -> float:
    """Return the seconds to add to kernel times to fit the window."""
    start = min(r.start for r in reports)
    ends = [r.end for r in reports if r.end is not None]
    ends.extend(s.end for r in reports for s in r.spans)
    end = max(ends, default=start)
    if start < window.start:
        return window.start - start
    if end > window.end:
        return max(window.end - end, window.start - start)
    return 0.0


def _span_status(status: str) -> str:
    """Return a status Sentry accepts, ``unknown`` for any other."""
    return status if status in _SPAN_STATUSES else "unknown"


def frame_filename(notebook: str, cell_id: str) -> str:
    """Return the file name that stands for a cell in stack traces."""
    return f"{notebook}#cell={cell_id}"


def exception_values(
    values: tuple[ExceptionValue, ...] | list[ExceptionValue],
    notebook: str,
) -> list[dict[str, Any]]:
    """Build Sentry exception values from a report's exception chain.

    Parameters
    ----------
    values
        The chain, the outermost exception last.
    notebook
        Notebook name, used in the file name of cell frames.

    Returns
    -------
    list of dict
        Values for an event's ``exception.values``.
    """
    built = []
    for value in values:
        entry: dict[str, Any] = {
            "type": value.type,
            "value": value.value,
            "module": value.module,
            "mechanism": {
                "type": "nbsentry",
                "handled": False,
                "exception_id": value.mechanism.exception_id,
                "is_exception_group": value.mechanism.is_exception_group,
            },
        }
        if value.mechanism.parent_id is not None:
            entry["mechanism"]["parent_id"] = value.mechanism.parent_id
        if value.mechanism.source is not None:
            entry["mechanism"]["source"] = value.mechanism.source
        if value.frames:
            entry["stacktrace"] = {
                "frames": [_frame(frame, notebook) for frame in value.frames]
            }
        built.append(entry)
    return built


def _frame(frame: Frame, notebook: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "function": frame.function,
        "lineno": frame.lineno,
        "in_app": frame.in_app,
        "pre_context": list(frame.pre_context),
        "post_context": list(frame.post_context),
    }
    if frame.cell_id is not None:
        # The runner names the file itself rather than trust the kernel.
        name = frame_filename(notebook, frame.cell_id)
        result["filename"] = name
        result["abs_path"] = name
        result["in_app"] = True
    else:
        result["filename"] = frame.filename
        result["abs_path"] = frame.filename
        if frame.module is not None:
            result["module"] = frame.module
    if frame.context_line is not None:
        result["context_line"] = frame.context_line
    return result


def breadcrumbs(reports: CellReports) -> list[dict[str, Any]]:
    """Build Sentry breadcrumbs from the final report's records.

    Timestamps are shifted like span times and clamped into the request
    window, so that a garbled time cannot fall outside the range Relay
    accepts, which would drop it from the event with an error.
    """
    if reports.final is None:
        return []
    built = []
    for crumb in reports.final.breadcrumbs:
        timestamp = crumb.timestamp + reports.shift
        if reports.window is not None:
            timestamp = reports.window.clamp(timestamp)
        built.append(
            {
                "timestamp": timestamp,
                "category": crumb.category,
                "level": crumb.level,
                "message": crumb.message,
                "type": "default",
            }
        )
    return built
