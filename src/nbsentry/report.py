"""Validation of the reports that the kernel extension sends.

A report arrives as the data of an iopub ``comm_open`` with target
``nbsentry.report`` (see ``docs/kernel-protocol.md``). Any code in the
notebook can open a comm with that target, so every report is untrusted:
`parse_report` checks its size, its schema and that it belongs to the
request in flight, and raises `ReportRejectedError` otherwise.

The models are strict and reject unknown keys, because the extension and
this module share one schema version. A report that does not match it
exactly is forged, since an extension of another version would have sent
a different ``version``.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .exceptions import ReportRejectedError

__all__ = [
    "MAX_BREADCRUMBS",
    "MAX_CONTEXT_LINES",
    "MAX_EXCEPTIONS",
    "MAX_FRAMES",
    "MAX_NAME_LENGTH",
    "MAX_REPORT_BYTES",
    "MAX_SAFE_INTEGER",
    "MAX_SPANS",
    "MAX_SPAN_DATA_KEYS",
    "MAX_TEXT_LENGTH",
    "REPORT_TARGET",
    "REPORT_VERSION",
    "Breadcrumb",
    "Dropped",
    "ExceptionInfo",
    "ExceptionValue",
    "Frame",
    "KernelReport",
    "Mechanism",
    "ReportSpan",
    "parse_report",
]

REPORT_TARGET = "nbsentry.report"
"""Comm target name of every report."""

REPORT_VERSION = 1
"""Schema version of the request metadata and the report."""

MAX_REPORT_BYTES = 256 * 1024
"""Maximum size of a report, as compact UTF-8 JSON."""

MAX_SPANS = 200
"""Maximum number of spans in one report."""

MAX_SPAN_DATA_KEYS = 50
"""Maximum number of keys in one span's ``data``."""

MAX_BREADCRUMBS = 50
"""Maximum number of breadcrumbs in one report."""

MAX_EXCEPTIONS = 20
"""Maximum number of exceptions in one chain, group members included."""

MAX_FRAMES = 100
"""Maximum number of frames per exception."""

MAX_CONTEXT_LINES = 5
"""Maximum number of source lines before and after a frame's line."""

MAX_NAME_LENGTH = 200
"""Maximum length of short names: ops, functions, types, ids."""

MAX_TEXT_LENGTH = 1024
"""Maximum length of other strings: values, messages, source lines."""

MAX_SAFE_INTEGER = 2**53
"""Largest count, execution count or line number in a report.

Only a forged report carries larger ones. JSON parsers that read numbers
as doubles lose precision past it, and Relay turned a forged execution
count of 10**400 into 0.
"""

_Name = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]
_Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]
_TraceId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
_SpanId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
_Count = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
_Timestamp = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_DataValue = _Text | bool | int | float | None


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ReportSpan(_Model):
    """A span recorded in the kernel, a child of the cell span."""

    span_id: _SpanId
    parent_span_id: _SpanId | None
    """Parent span in the same cell, or `None` for the cell span."""

    op: _Name
    description: _Text | None
    start: _Timestamp
    """Kernel wall clock, seconds since the epoch."""

    end: _Timestamp
    status: _Name
    data: Annotated[
        dict[_Name, _DataValue], Field(max_length=MAX_SPAN_DATA_KEYS)
    ]

    @model_validator(mode="after")
    def _check_times(self) -> Self:
        if self.end < self.start:
            msg = "span ends before it starts"
            raise ValueError(msg)
        return self


class Breadcrumb(_Model):
    """A warning or log record emitted during the cell."""

    timestamp: _Timestamp
    category: _Name
    level: Literal["debug", "info", "warning", "error", "fatal"]
    message: _Text


class Mechanism(_Model):
    """Sentry's exception mechanism, placing an exception in its chain."""

    type: _Name
    handled: bool
    exception_id: _Count
    parent_id: _Count | None
    """Id of the exception this one is the cause, context or member of."""

    source: _Name | None
    """``__cause__``, ``__context__`` or ``exceptions[N]``."""

    is_exception_group: bool


class Frame(_Model):
    """A stack frame, mapped to a cell when its code came from one."""

    function: _Name
    module: _Name | None
    filename: _Text
    lineno: _Count
    """Line number, counted within the cell for a cell's frame."""

    cell_id: _Name | None
    in_app: bool
    context_line: _Text | None
    pre_context: Annotated[list[_Text], Field(max_length=MAX_CONTEXT_LINES)]
    post_context: Annotated[list[_Text], Field(max_length=MAX_CONTEXT_LINES)]


class ExceptionValue(_Model):
    """One exception of a chain."""

    type: _Name
    module: _Name
    value: _Text
    mechanism: Mechanism
    frames: Annotated[list[Frame], Field(max_length=MAX_FRAMES)]
    """Frames from the outermost call to the innermost."""


class ExceptionInfo(_Model):
    """The exception of a failed cell, in Sentry's order."""

    values: Annotated[
        list[ExceptionValue],
        Field(min_length=1, max_length=MAX_EXCEPTIONS),
    ]
    """Exceptions, the outermost (raised) one last."""


class Dropped(_Model):
    """Counts of what the extension left out to stay within its limits."""

    spans: _Count
    breadcrumbs: _Count
    frames: _Count
    exceptions: _Count


class KernelReport(_Model):
    """A report of one cell, sent by the kernel extension."""

    version: Literal[1]
    kind: Literal["partial", "final"]
    msg_id: _Name
    trace_id: _TraceId
    cell_id: _Name
    notebook: _Text
    execution_count: _Count
    status: Literal["ok", "error"]
    start: _Timestamp
    """Kernel wall clock when the cell started, seconds since the epoch."""

    end: _Timestamp | None
    """When the cell ended; `None` in a partial report."""

    spans: Annotated[list[ReportSpan], Field(max_length=MAX_SPANS)]
    breadcrumbs: Annotated[list[Breadcrumb], Field(max_length=MAX_BREADCRUMBS)]
    exception: ExceptionInfo | None
    dropped: Dropped

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        if self.kind == "partial":
            if self.end is not None or self.exception is not None:
                msg = "partial report has an end or an exception"
                raise ValueError(msg)
        elif self.end is None or self.end < self.start:
            msg = "final report has no end or ends before it starts"
            raise ValueError(msg)
        if (self.status == "error") != (self.exception is not None):
            msg = "status and exception disagree"
            raise ValueError(msg)
        return self


def _describe_errors(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "report"
    count = error.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"invalid {location}: {first['msg']}{more}"


def parse_report(
    data: object, *, msg_id: str, trace_id: str, cell_id: str
) -> KernelReport:
    """Validate a report received for the request in flight.

    Parameters
    ----------
    data
        The ``data`` of the ``comm_open``, as decoded from JSON.
    msg_id
        Message id of the execute request in flight.
    trace_id
        Trace id sent in that request's ``sentry-trace``.
    cell_id
        Cell id sent in that request.

    Returns
    -------
    KernelReport
        The validated report.

    Raises
    ------
    ReportRejectedError
        Raised if the report is larger than `MAX_REPORT_BYTES`, does not
        match the schema, or names another request, trace or cell.
    """
    try:
        encoded = json.dumps(
            data, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except UnicodeEncodeError as e:
        msg = "report is not valid UTF-8"
        raise ReportRejectedError(msg) from e
    except (TypeError, ValueError, RecursionError) as e:
        msg = "report is not JSON"
        raise ReportRejectedError(msg) from e
    if len(encoded) > MAX_REPORT_BYTES:
        msg = f"report is {len(encoded)} bytes, over {MAX_REPORT_BYTES}"
        raise ReportRejectedError(msg)
    try:
        report = KernelReport.model_validate(data)
    except ValidationError as e:
        raise ReportRejectedError(_describe_errors(e)) from e
    except RecursionError as e:
        msg = "report is nested too deeply"
        raise ReportRejectedError(msg) from e
    for name, expected, actual in (
        ("msg_id", msg_id, report.msg_id),
        ("trace_id", trace_id, report.trace_id),
        ("cell_id", cell_id, report.cell_id),
    ):
        if actual != expected:
            msg = f"{name} {actual!r} is not the request in flight"
            raise ReportRejectedError(msg)
    return report
