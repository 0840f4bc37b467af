"""Tests of turning kernel reports into spans, exceptions and breadcrumbs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from nbsentry.execution import ExecuteOutcome, OutcomeStatus
from nbsentry.kernel_reports import (
    MAX_REJECTION_LOGS,
    CellReports,
    TimeWindow,
    breadcrumbs,
    exception_values,
    frame_filename,
)
from nbsentry.report import MAX_SPANS, parse_report
from tests.support.kernel_reports import (
    BASE,
    CELL_ID,
    INNER,
    MSG_ID,
    NOTEBOOK,
    OUTER,
    TRACE_ID,
    WINDOW,
    exception_value,
    make_frame,
    make_partial,
    make_report,
    make_span,
    shifted,
)


def collect(*reports: object, window: TimeWindow = WINDOW) -> CellReports:
    outcome = ExecuteOutcome(
        OutcomeStatus.ok, msg_id=MSG_ID, reports=list(reports)
    )
    return CellReports.collect(
        outcome,
        trace_id=TRACE_ID,
        cell_id=CELL_ID,
        notebook=NOTEBOOK,
        window=window,
    )


def intervals(reports: CellReports) -> list[tuple[str, float, float]]:
    return [(span.op, span.start, span.end) for span in reports.spans]


def test_collect_final_report() -> None:
    with capture_logs() as logs:
        reports = collect(make_report())

    assert logs == []
    assert reports.received == 1
    assert reports.rejected == 0
    assert reports.shift == 0.0
    assert reports.final is not None
    assert reports.final.execution_count == 7
    execute, inner, outer = reports.spans
    assert execute.op == "nbsentry.kernel.execute"
    assert execute.parent_span_id is None
    assert execute.status == "ok"
    assert execute.data == {"execution_count": 7}
    assert (execute.start, execute.end) == (BASE + 1, BASE + 9)
    assert inner.span_id == INNER
    assert inner.parent_span_id == OUTER
    assert (inner.start, inner.end) == (BASE + 3, BASE + 4)
    assert outer.span_id == OUTER
    assert outer.parent_span_id is None
    assert outer.description == "query 1"
    assert outer.data == {"rows": 1}


def test_collect_failed_cell_status() -> None:
    failed = make_report(
        status="error",
        exception={"values": [exception_value(0, None, None, [])]},
    )

    reports = collect(failed)

    assert reports.spans[0].status == "internal_error"


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("msg_id", "msg_id 'other' is not the request in flight"),
        ("cell_id", "cell_id 'other' is not the request in flight"),
    ],
)
def test_collect_rejects_other_request(field: str, reason: str) -> None:
    with capture_logs() as logs:
        reports = collect(make_report(**{field: "other"}))

    assert reports.received == 1
    assert reports.rejected == 1
    assert reports.final is None
    assert reports.spans == []
    assert logs == [
        {
            "event": "Kernel report rejected",
            "log_level": "warning",
            "notebook": NOTEBOOK,
            "cell": CELL_ID,
            "reason": reason,
        }
    ]


def test_collect_rejects_each_bad_report() -> None:
    garbage: list[object] = [None, "final", [1, 2], {"version": 1}]

    with capture_logs() as logs:
        reports = collect(*garbage, make_report())

    assert reports.received == 5
    assert reports.rejected == 4
    assert reports.final is not None
    assert len(logs) == 4
    assert {entry["event"] for entry in logs} == {"Kernel report rejected"}


def test_collect_earlier_final_rejected() -> None:
    # Code in the cell sends its final report before the extension does.
    forged = make_report(
        execution_count=1, spans=[make_span("9" * 16, BASE + 1, BASE + 2)]
    )
    genuine = make_report()

    with capture_logs() as logs:
        reports = collect(forged, genuine)

    assert reports.received == 2
    assert reports.rejected == 1
    assert [entry["reason"] for entry in logs] == [
        "final report followed by another for the cell"
    ]
    assert reports.final is not None
    assert reports.final.execution_count == 7
    assert [span.span_id for span in reports.spans] == ["", INNER, OUTER]
    assert reports.spans[0].data == {"execution_count": 7}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("ok", "ok"),
        ("not_found", "not_found"),
        ("unknown_error", "unknown_error"),
        ("error", "unknown"),
        ("x" * 200, "unknown"),
    ],
)
def test_collect_span_status(status: str, expected: str) -> None:
    span = {**make_span(OUTER, BASE + 2, BASE + 5), "status": status}

    reports = collect(make_report(spans=[span]))

    assert reports.spans[1].status == expected


def test_collect_partial_then_final() -> None:
    early = make_span("3" * 16, BASE + 1.5, BASE + 2)
    partial = make_partial([early, make_span(OUTER, BASE + 2, BASE + 5)])
    # A final report repeating a span that a partial one sent keeps one.
    final = make_report(spans=[make_span(OUTER, BASE + 2, BASE + 5)])

    reports = collect(partial, final)

    assert reports.rejected == 0
    assert [span.span_id for span in reports.spans] == [
        "",
        "3" * 16,
        OUTER,
    ]


def test_collect_caps_spans_across_reports() -> None:
    def spans(first: int) -> list[dict[str, Any]]:
        return [
            make_span(f"{number:016x}", BASE + 2, BASE + 3)
            for number in range(first, first + MAX_SPANS)
        ]

    reports = collect(
        make_partial(spans(0)),
        make_partial(spans(MAX_SPANS)),
        make_report(spans=[]),
    )

    assert reports.rejected == 0
    assert reports.capped_spans == MAX_SPANS
    # The kernel's execute span comes first and is not counted.
    assert len(reports.spans) == MAX_SPANS + 1
    assert reports.spans[0].op == "nbsentry.kernel.execute"
    assert reports.spans[-1].span_id == f"{MAX_SPANS - 1:016x}"


def test_collect_partial_only() -> None:
    partial = make_partial([make_span(OUTER, BASE + 2, BASE + 5)])

    reports = collect(partial)

    assert reports.final is None
    assert intervals(reports) == [("db.query", BASE + 2, BASE + 5)]
    assert breadcrumbs(reports) == []


def test_clock_ahead_hour() -> None:
    report = shifted(make_report(), 3600.0)

    reports = collect(report)

    # The kernel's last timestamp is moved to the window's end.
    assert reports.shift == -3599.0
    assert intervals(reports) == [
        ("nbsentry.kernel.execute", BASE + 2, BASE + 10),
        ("db.query", BASE + 4, BASE + 5),
        ("db.query", BASE + 3, BASE + 6),
    ]
    for span in reports.spans:
        assert WINDOW.start <= span.start <= span.end <= WINDOW.end
    (crumb,) = breadcrumbs(reports)
    assert crumb["timestamp"] == BASE + 4.5


def test_clock_behind_hour() -> None:
    report = shifted(make_report(), -3600.0)

    reports = collect(report)

    # The kernel's first timestamp is moved to the window's start.
    assert reports.shift == 3599.0
    assert intervals(reports) == [
        ("nbsentry.kernel.execute", BASE, BASE + 8),
        ("db.query", BASE + 2, BASE + 3),
        ("db.query", BASE + 1, BASE + 4),
    ]


def test_clock_kernel_longer_than_window() -> None:
    long_span = make_span(OUTER, BASE - 100, BASE + 100)
    report = make_report(start=BASE - 100, end=BASE + 100, spans=[long_span])

    reports = collect(report)

    assert reports.shift == 100.0
    assert intervals(reports) == [
        ("nbsentry.kernel.execute", BASE, BASE + 10),
        ("db.query", BASE, BASE + 10),
    ]


def test_time_window_clamp() -> None:
    assert WINDOW.clamp(999.0) == BASE
    assert WINDOW.clamp(BASE + 5.5) == BASE + 5.5
    assert WINDOW.clamp(1e12) == BASE + 10


def parsed_chain(*values: dict[str, Any]) -> Any:
    report = make_report(status="error", exception={"values": list(values)})
    parsed = parse_report(
        report, msg_id=MSG_ID, trace_id=TRACE_ID, cell_id=CELL_ID
    )
    assert parsed.exception is not None
    return parsed.exception.values


def test_exception_values_chain() -> None:
    chain = parsed_chain(
        exception_value(1, 0, "__cause__", []),
        exception_value(0, None, None, [make_frame()]),
    )

    cause, raised = exception_values(chain, NOTEBOOK)

    assert cause == {
        "type": "KeyError",
        "value": "'x'",
        "module": "builtins",
        "mechanism": {
            "type": "nbsentry",
            "handled": False,
            "exception_id": 1,
            "is_exception_group": False,
            "parent_id": 0,
            "source": "__cause__",
        },
    }
    assert raised["mechanism"] == {
        "type": "nbsentry",
        "handled": False,
        "exception_id": 0,
        "is_exception_group": False,
    }
    assert raised["stacktrace"]["frames"] == [
        {
            "function": "helper",
            "lineno": 3,
            "in_app": True,
            "pre_context": ["def helper(d):"],
            "post_context": [],
            "filename": "folder/analysis.ipynb#cell=f00d",
            "abs_path": "folder/analysis.ipynb#cell=f00d",
            "context_line": "    return d['x']",
        }
    ]


def test_exception_values_library_frame() -> None:
    frame = make_frame(
        function="get",
        module="pandas.core.frame",
        filename="/usr/lib/python3/pandas/core/frame.py",
        cell_id=None,
        context_line=None,
    )
    chain = parsed_chain(exception_value(0, None, None, [frame]))

    (value,) = exception_values(chain, NOTEBOOK)

    assert value["stacktrace"]["frames"] == [
        {
            "function": "get",
            "lineno": 3,
            "in_app": False,
            "pre_context": ["def helper(d):"],
            "post_context": [],
            "filename": "/usr/lib/python3/pandas/core/frame.py",
            "abs_path": "/usr/lib/python3/pandas/core/frame.py",
            "module": "pandas.core.frame",
        }
    ]


def test_frame_filename() -> None:
    assert frame_filename("a/b.ipynb", "c1") == "a/b.ipynb#cell=c1"


def test_breadcrumbs_shifted() -> None:
    reports = collect(shifted(make_report(), -3600.0))

    assert breadcrumbs(reports) == [
        {
            "timestamp": BASE + 2.5,
            "category": "warnings",
            "level": "warning",
            "message": "UserWarning: deprecated",
            "type": "default",
        }
    ]


def test_breadcrumbs_clamped() -> None:
    crumb = {
        "timestamp": 1e300,
        "category": "logging",
        "level": "info",
        "message": "far future",
    }

    reports = collect(make_report(breadcrumbs=[crumb]))

    assert [crumb["timestamp"] for crumb in breadcrumbs(reports)] == [
        WINDOW.end
    ]


def test_breadcrumbs_rejected_report() -> None:
    reports = collect(make_report(cell_id="other"))

    assert breadcrumbs(reports) == []


# Any time a report may hold: from 0 to the largest finite float.
timestamps = st.floats(min_value=0, allow_infinity=False)


@st.composite
def windows(draw: st.DrawFn) -> TimeWindow:
    start = draw(st.floats(min_value=0, max_value=4e9))
    return TimeWindow(start, start + draw(st.floats(0, 1e5)))


@given(
    windows(),
    st.tuples(timestamps, timestamps),
    st.lists(st.tuples(timestamps, timestamps), max_size=6),
)
def test_spans_always_in_window(
    window: TimeWindow,
    cell_times: tuple[float, float],
    span_times: list[tuple[float, float]],
) -> None:
    # Validation rejects a report with a span that ends before it starts,
    # so each pair is sorted to keep every report valid.
    spans = [
        make_span(f"{index + 1:016x}", min(pair), max(pair))
        for index, pair in enumerate(span_times)
    ]
    report = make_report(
        start=min(cell_times), end=max(cell_times), spans=spans
    )

    reports = collect(report, window=window)

    assert reports.rejected == 0
    assert len(reports.spans) == len(spans) + 1
    for span in reports.spans:
        assert window.start <= span.start <= window.end
        assert window.start <= span.end <= window.end
        assert span.end >= span.start
    # Shifting and clamping keep the kernel's order of span starts.
    by_kernel_start = sorted(
        zip(spans, reports.spans[1:], strict=True),
        key=lambda pair: pair[0]["start"],
    )
    mapped = [placed.start for _, placed in by_kernel_start]
    assert mapped == sorted(mapped)


def test_collect_counts_flood_of_rejections() -> None:
    garbage: list[object] = [None] * (MAX_REJECTION_LOGS + 20)

    with capture_logs() as logs:
        reports = collect(*garbage)

    each = [e for e in logs if e["event"] == "Kernel report rejected"]
    rest = [e for e in logs if e["event"].startswith("More kernel reports")]
    assert reports.rejected == MAX_REJECTION_LOGS + 20
    assert len(each) == MAX_REJECTION_LOGS
    assert len(rest) == 1
    assert rest[0]["rejected"] == 20
