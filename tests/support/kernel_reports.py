# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Kernel reports built by hand, as the kernel extension sends them."""

from __future__ import annotations

from typing import Any

from nbsentry.kernel_reports import TimeWindow

__all__ = [
    "BASE",
    "CELL_ID",
    "INNER",
    "MSG_ID",
    "NOTEBOOK",
    "OUTER",
    "TRACE_ID",
    "WINDOW",
    "exception_value",
    "make_frame",
    "make_partial",
    "make_report",
    "make_span",
    "shifted",
]

MSG_ID = "0f3c5a7e-1b2c3d4e5f60718293a4b5c6_123_4"
"""Message id of the execute request that every report belongs to."""

TRACE_ID = "94e525f92987fac3f3a9322695c7c983"
CELL_ID = "f00d"
NOTEBOOK = "folder/analysis.ipynb"
BASE = 1_764_860_000.0
"""Runner wall-clock time when the request was sent."""

WINDOW = TimeWindow(BASE, BASE + 10)
"""Request window of 10 seconds, which contains every `make_report` time."""

OUTER = "1" * 16
"""Span id of the outer span of `make_report`."""

INNER = "2" * 16
"""Span id of the inner span of `make_report`, a child of `OUTER`."""


def make_span(
    span_id: str, start: float, end: float, parent: str | None = None
) -> dict[str, Any]:
    """Build a report span with op ``db.query``."""
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "op": "db.query",
        "description": f"query {span_id[0]}",
        "start": start,
        "end": end,
        "status": "ok",
        "data": {"rows": 1},
    }


def make_report(**changes: Any) -> dict[str, Any]:
    """Build a final report of a passing cell, changed as given.

    Its times lie inside `WINDOW`, as from a kernel whose clock is right.
    """
    report: dict[str, Any] = {
        "version": 1,
        "kind": "final",
        "msg_id": MSG_ID,
        "trace_id": TRACE_ID,
        "cell_id": CELL_ID,
        "notebook": NOTEBOOK,
        "execution_count": 7,
        "status": "ok",
        "start": BASE + 1,
        "end": BASE + 9,
        "spans": [
            make_span(INNER, BASE + 3, BASE + 4, parent=OUTER),
            make_span(OUTER, BASE + 2, BASE + 5),
        ],
        "breadcrumbs": [
            {
                "timestamp": BASE + 3.5,
                "category": "warnings",
                "level": "warning",
                "message": "UserWarning: deprecated",
            }
        ],
        "exception": None,
        "dropped": {
            "spans": 0,
            "breadcrumbs": 0,
            "frames": 0,
            "exceptions": 0,
        },
    }
    report.update(changes)
    return report


def make_partial(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Build a partial report that carries these spans."""
    return make_report(kind="partial", end=None, spans=spans, breadcrumbs=[])


def shifted(report: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Move every time of a report by ``seconds``, as a wrong clock would."""
    report = dict(report)
    report["start"] += seconds
    if report["end"] is not None:
        report["end"] += seconds
    report["spans"] = [
        {
            **span,
            "start": span["start"] + seconds,
            "end": span["end"] + seconds,
        }
        for span in report["spans"]
    ]
    report["breadcrumbs"] = [
        {**crumb, "timestamp": crumb["timestamp"] + seconds}
        for crumb in report["breadcrumbs"]
    ]
    return report


def exception_value(
    exception_id: int,
    parent_id: int | None,
    source: str | None,
    frames: list[dict[str, Any]],
) -> dict[str, Any]:
    """Build a ``KeyError`` of an exception chain."""
    return {
        "type": "KeyError",
        "module": "builtins",
        "value": "'x'",
        "mechanism": {
            "type": "nbsentry",
            "handled": False,
            "exception_id": exception_id,
            "parent_id": parent_id,
            "source": source,
            "is_exception_group": False,
        },
        "frames": frames,
    }


def make_frame(**changes: Any) -> dict[str, Any]:
    """Build a frame of cell ``f00d``, changed as given."""
    frame = {
        "function": "helper",
        "module": None,
        "filename": "elsewhere.ipynb#cell=f00d",
        "lineno": 3,
        "cell_id": "f00d",
        "in_app": False,
        "context_line": "    return d['x']",
        "pre_context": ["def helper(d):"],
        "post_context": [],
    }
    frame.update(changes)
    return frame
