"""Building reports and sending them as iopub ``comm_open`` messages."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cell import CellRecord
    from ._exceptions import ExceptionReport

__all__ = ["REPORT_VERSION", "TARGET_NAME", "build_report", "send_report"]

REPORT_VERSION = 1
"""Version of the request metadata and report schema."""

TARGET_NAME = "nbsentry.report"
"""Comm target name of every report."""


def build_report(
    cell: CellRecord,
    *,
    kind: str,
    end: float | None,
    spans: list[dict[str, Any]],
    breadcrumbs: list[dict[str, Any]],
    exception: ExceptionReport | None,
) -> dict[str, Any]:
    """Build a report of the cell; call it with the cell's lock held.

    The ``dropped`` counts are the totals for the cell so far.
    """
    request = cell.request
    if exception is None:
        exception_data = None
        dropped_frames = dropped_exceptions = 0
    else:
        exception_data = {"values": exception.values}
        dropped_frames = exception.dropped_frames
        dropped_exceptions = exception.dropped_exceptions
    return {
        "version": REPORT_VERSION,
        "kind": kind,
        "msg_id": request.msg_id,
        "trace_id": request.trace_id,
        "cell_id": request.cell_id,
        "notebook": request.notebook,
        "execution_count": cell.execution_count,
        "status": "ok" if exception is None else "error",
        "start": cell.start,
        "end": end,
        "spans": spans,
        "breadcrumbs": breadcrumbs,
        "exception": exception_data,
        "dropped": {
            "spans": cell.dropped_spans,
            "breadcrumbs": cell.dropped_breadcrumbs,
            "frames": dropped_frames,
            "exceptions": dropped_exceptions,
        },
    }


def send_report(
    kernel: Any, parent: dict[str, Any], report: dict[str, Any]
) -> None:
    """Send a report as a one-shot ``comm_open`` on the kernel's iopub.

    ``Session.send`` packs the content to JSON once. It is handed to
    ipykernel's iopub thread, so the message keeps its order relative to
    the cell's output, reply status and ``idle``.
    """
    comm_id = os.urandom(16).hex()
    kernel.session.send(
        kernel.iopub_socket,
        "comm_open",
        {"comm_id": comm_id, "target_name": TARGET_NAME, "data": report},
        parent=parent,
        ident=b"comm-" + comm_id.encode("ascii"),
    )
