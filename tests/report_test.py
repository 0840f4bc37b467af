"""Tests of the validation of kernel extension reports."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbsentry.exceptions import ReportRejectedError
from nbsentry.report import (
    MAX_REPORT_BYTES,
    MAX_SPANS,
    KernelReport,
    parse_report,
)

MSG_ID = "0f3c5a7e-1b2c3d4e5f60718293a4b5c6_123_4"
TRACE_ID = "94e525f92987fac3f3a9322695c7c983"
CELL_ID = "f00d"


def valid_report() -> dict[str, Any]:
    """Return a final error report as the extension sends it."""
    return {
        "version": 1,
        "kind": "final",
        "msg_id": MSG_ID,
        "trace_id": TRACE_ID,
        "cell_id": CELL_ID,
        "notebook": "folder/analysis.ipynb",
        "execution_count": 7,
        "status": "error",
        "start": 1764860000.123,
        "end": 1764860000.456,
        "spans": [
            {
                "span_id": "1" * 16,
                "parent_span_id": None,
                "op": "db.query",
                "description": "select 1",
                "start": 1764860000.2,
                "end": 1764860000.3,
                "status": "ok",
                "data": {"rows": 1, "cached": False, "ratio": 0.5, "x": None},
            }
        ],
        "breadcrumbs": [
            {
                "timestamp": 1764860000.25,
                "category": "warnings",
                "level": "warning",
                "message": "UserWarning: deprecated",
            }
        ],
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "module": "builtins",
                    "value": "'x'",
                    "mechanism": {
                        "type": "nbsentry",
                        "handled": False,
                        "exception_id": 1,
                        "parent_id": 0,
                        "source": "__context__",
                        "is_exception_group": False,
                    },
                    "frames": [
                        {
                            "function": "helper",
                            "module": None,
                            "filename": "folder/analysis.ipynb#cell=f00d",
                            "lineno": 3,
                            "cell_id": "f00d",
                            "in_app": True,
                            "context_line": "    return d['x']",
                            "pre_context": ["def helper(d):", "    # look up"],
                            "post_context": [],
                        }
                    ],
                },
                {
                    "type": "RuntimeError",
                    "module": "builtins",
                    "value": "lookup failed",
                    "mechanism": {
                        "type": "nbsentry",
                        "handled": False,
                        "exception_id": 0,
                        "parent_id": None,
                        "source": None,
                        "is_exception_group": False,
                    },
                    "frames": [],
                },
            ]
        },
        "dropped": {
            "spans": 0,
            "breadcrumbs": 0,
            "frames": 2,
            "exceptions": 0,
        },
    }


def parse(data: object) -> KernelReport:
    return parse_report(
        data, msg_id=MSG_ID, trace_id=TRACE_ID, cell_id=CELL_ID
    )


def rejection(data: object) -> str:
    with pytest.raises(ReportRejectedError) as info:
        parse(data)
    return info.value.reason


def test_valid_report_parses() -> None:
    report = parse(valid_report())
    assert report.status == "error"
    assert report.spans[0].data == {
        "rows": 1,
        "cached": False,
        "ratio": 0.5,
        "x": None,
    }
    assert report.exception is not None
    assert report.exception.values[1].type == "RuntimeError"
    assert report.model_dump(mode="json") == valid_report()


def test_partial_report_parses() -> None:
    data = valid_report()
    data.update(kind="partial", end=None, exception=None, status="ok")
    assert parse(data).kind == "partial"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("msg_id", "other", "msg_id 'other' is not the request in flight"),
        (
            "trace_id",
            "a" * 32,
            f"trace_id '{'a' * 32}' is not the request in flight",
        ),
        ("cell_id", "beef", "cell_id 'beef' is not the request in flight"),
    ],
)
def test_other_request_rejected(field: str, value: str, expected: str) -> None:
    data = valid_report()
    data[field] = value
    assert rejection(data) == expected


def test_unknown_key_rejected() -> None:
    data = valid_report()
    data["extra"] = 1
    assert rejection(data) == "invalid extra: Extra inputs are not permitted"


def test_strict_types() -> None:
    data = valid_report()
    data["execution_count"] = "7"
    assert rejection(data) == (
        "invalid execution_count: Input should be a valid integer"
    )


def test_span_ending_before_start_rejected() -> None:
    data = valid_report()
    data["spans"][0]["end"] = 1.0
    assert rejection(data) == (
        "invalid spans.0: Value error, span ends before it starts"
    )


def test_status_must_match_exception() -> None:
    data = valid_report()
    data["exception"] = None
    assert rejection(data) == (
        "invalid report: Value error, status and exception disagree"
    )


def test_partial_with_end_rejected() -> None:
    data = valid_report()
    data.update(kind="partial", exception=None, status="ok")
    assert rejection(data) == (
        "invalid report: Value error, partial report has an end or an"
        " exception"
    )


def test_too_many_spans_rejected() -> None:
    data = valid_report()
    data["spans"] = data["spans"] * (MAX_SPANS + 1)
    assert rejection(data) == (
        "invalid spans: List should have at most 200 items after"
        " validation, not 201"
    )


def test_long_value_rejected() -> None:
    data = valid_report()
    data["exception"]["values"][0]["value"] = "v" * 1025
    assert rejection(data).startswith("invalid exception.values.0.value:")


def test_oversize_report_rejected() -> None:
    data = valid_report()
    data["padding"] = "x" * MAX_REPORT_BYTES
    size = len(json.dumps(data, separators=(",", ":")))
    assert rejection(data) == (
        f"report is {size} bytes, over {MAX_REPORT_BYTES}"
    )


def test_not_json_rejected() -> None:
    assert rejection({"start": float("nan")}) == "report is not JSON"
    assert rejection({"spans": {1, 2}}) == "report is not JSON"
    assert rejection("\udc80") == "report is not valid UTF-8"


def test_deep_nesting_rejected() -> None:
    nested: list[Any] = []
    for _ in range(100_000):
        nested = [nested]
    assert rejection(nested) == "report is not JSON"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_arbitrary_json_only_rejected(data: object) -> None:
    reason = ""
    try:
        parse(data)
    except ReportRejectedError as e:
        reason = e.reason
    else:
        return
    assert reason != ""


report_fields = sorted(valid_report())


@given(st.sampled_from(report_fields), json_values)
def test_one_bad_field_only_rejected(field: str, value: object) -> None:
    data = valid_report()
    data[field] = value
    try:
        report = parse(data)
    except ReportRejectedError:
        return
    assert report.model_dump(mode="json")[field] == value


hex16 = st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)
timestamps = st.floats(min_value=0, max_value=4e9)
names = st.text(max_size=200)
texts = st.text(max_size=1024)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)


@st.composite
def spans(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(timestamps)
    return {
        "span_id": draw(hex16),
        "parent_span_id": draw(st.none() | hex16),
        "op": draw(names),
        "description": draw(st.none() | texts),
        "start": start,
        "end": start + draw(st.floats(min_value=0, max_value=100)),
        "status": draw(names),
        "data": draw(st.dictionaries(names, scalars, max_size=5)),
    }


frames = st.fixed_dictionaries(
    {
        "function": names,
        "module": st.none() | names,
        "filename": texts,
        "lineno": st.integers(min_value=0, max_value=10**6),
        "cell_id": st.none() | names,
        "in_app": st.booleans(),
        "context_line": st.none() | texts,
        "pre_context": st.lists(texts, max_size=5),
        "post_context": st.lists(texts, max_size=5),
    }
)


@st.composite
def exception_values(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "type": draw(names),
        "module": draw(names),
        "value": draw(texts),
        "mechanism": {
            "type": "nbsentry",
            "handled": False,
            "exception_id": draw(st.integers(min_value=0, max_value=19)),
            "parent_id": draw(
                st.none() | st.integers(min_value=0, max_value=19)
            ),
            "source": draw(
                st.sampled_from([None, "__cause__", "__context__"])
            ),
            "is_exception_group": draw(st.booleans()),
        },
        "frames": draw(st.lists(frames, max_size=3)),
    }


@st.composite
def reports(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(timestamps)
    final = draw(st.booleans())
    failed = final and draw(st.booleans())
    exception = (
        {"values": draw(st.lists(exception_values(), min_size=1, max_size=3))}
        if failed
        else None
    )
    counts = st.integers(min_value=0, max_value=10**6)
    return {
        "version": 1,
        "kind": "final" if final else "partial",
        "msg_id": MSG_ID,
        "trace_id": TRACE_ID,
        "cell_id": CELL_ID,
        "notebook": draw(texts),
        "execution_count": draw(st.integers(min_value=0, max_value=10**6)),
        "status": "error" if failed else "ok",
        "start": start,
        "end": start + draw(st.floats(0, 1e4)) if final else None,
        "spans": draw(st.lists(spans(), max_size=5)),
        "breadcrumbs": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "timestamp": timestamps,
                        "category": names,
                        "level": st.sampled_from(
                            ["debug", "info", "warning", "error", "fatal"]
                        ),
                        "message": texts,
                    }
                ),
                max_size=5,
            )
        ),
        "exception": exception,
        "dropped": {
            "spans": draw(counts),
            "breadcrumbs": draw(counts),
            "frames": draw(counts),
            "exceptions": draw(counts),
        },
    }


@settings(max_examples=200)
@given(reports())
def test_valid_reports_round_trip(data: dict[str, Any]) -> None:
    report = parse(copy.deepcopy(data))
    dumped = report.model_dump(mode="json")
    assert dumped == data
    assert parse(dumped) == report


@given(reports(), st.integers(min_value=1, max_value=1024))
def test_padded_report_rejected(data: dict[str, Any], extra: int) -> None:
    size = len(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    )
    padding = MAX_REPORT_BYTES - size + extra
    data["notebook"] = data["notebook"] + "x" * padding
    reason = rejection(data)
    assert reason.startswith("report is ")
    assert reason.endswith(f" bytes, over {MAX_REPORT_BYTES}")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("execution_count",), 2**53 + 1),
        (("dropped", "spans"), 10**400),
    ],
)
def test_integer_past_safe_range_rejected(
    path: tuple[str | int, ...], value: int
) -> None:
    data = valid_report()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    reason = rejection(data)

    assert reason.startswith(f"invalid {'.'.join(map(str, path))}")
    assert "less than or equal to 9007199254740992" in reason


def test_integer_at_safe_range_accepted() -> None:
    data = valid_report()
    data["execution_count"] = 2**53

    report = parse_report(
        data, msg_id=MSG_ID, trace_id=TRACE_ID, cell_id=CELL_ID
    )

    assert report.execution_count == 2**53
