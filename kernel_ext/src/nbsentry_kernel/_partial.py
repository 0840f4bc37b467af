"""Partial reports of long cells, sent from a daemon thread.

While a reported cell runs, the thread wakes at a fixed interval and, if
spans finished since the last report, sends them in a ``partial`` report.
A cell that is interrupted, times out or takes the kernel down with it
has then already reported how far it got.
"""

from __future__ import annotations

import logging
import threading

from ._cell import current_cell
from ._report import ReportSender, build_report

__all__ = ["DEFAULT_INTERVAL", "PartialReporter"]

_logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
"""Seconds between two checks for newly finished spans."""


class PartialReporter:
    """The daemon thread that sends partial reports.

    Parameters
    ----------
    sender
        The sender of the extension's reports.
    """

    def __init__(self, sender: ReportSender) -> None:
        self._sender = sender
        self._interval = DEFAULT_INTERVAL
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def interval(self) -> float:
        """Seconds between two checks for newly finished spans."""
        return self._interval

    @interval.setter
    def interval(self, seconds: float) -> None:
        self._interval = seconds
        self._wake.set()

    def ensure_started(self) -> None:
        """Start the thread unless it runs already."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="nbsentry-partial-reports", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait briefly for it to end."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.send_partial()
            except Exception:
                _logger.exception("Cannot send a partial report")

    def send_partial(self) -> None:
        """Send the spans finished since the last report, if there are any."""
        cell = current_cell()
        if cell is None:
            return
        with cell.lock:
            # Holding the lock while the report is queued keeps a partial
            # report from overtaking the final one on iopub.
            if cell.finished or cell.sent_spans == len(cell.spans):
                return
            spans = cell.spans[cell.sent_spans :]
            cell.sent_spans = len(cell.spans)
            report = build_report(
                cell,
                kind="partial",
                end=None,
                spans=spans,
                breadcrumbs=[],
                exception=None,
            )
            self._sender.send(cell.packed_parent, report)
