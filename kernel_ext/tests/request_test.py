"""Parsing of the ``nbsentry`` object in an execute request's metadata."""

from __future__ import annotations

from typing import Any

import pytest

from nbsentry_kernel._request import parse_request

TRACE_ID = "0123456789abcdef" * 2
SPAN_ID = "fedcba9876543210"


def make_parent(**options: Any) -> dict[str, Any]:
    nbsentry = {
        "version": 1,
        "sentry-trace": f"{TRACE_ID}-{SPAN_ID}-1",
        "cell_id": "cell-1",
        "notebook": "folder/test.ipynb",
    }
    nbsentry.update(options)
    return {
        "header": {"msg_id": "request-1"},
        "metadata": {"nbsentry": nbsentry},
    }


@pytest.mark.parametrize(
    "sentry_trace",
    [
        f"{TRACE_ID}-{SPAN_ID}",
        f"{TRACE_ID}-{SPAN_ID}-0",
        f"{TRACE_ID}-{SPAN_ID}-1",
    ],
)
def test_parse_request_reads_sentry_trace(sentry_trace: str) -> None:
    parent = make_parent(**{"sentry-trace": f" {sentry_trace}\n"})

    request = parse_request(parent)

    assert request is not None
    assert request.trace_id == TRACE_ID
    assert request.sentry_trace == sentry_trace


def test_parse_request_reads_fields() -> None:
    parent = make_parent(baggage="sentry-sample_rate=1.0", integrations=True)

    request = parse_request(parent)

    assert request is not None
    assert request.msg_id == "request-1"
    assert request.baggage == "sentry-sample_rate=1.0"
    assert request.cell_id == "cell-1"
    assert request.notebook == "folder/test.ipynb"
    assert request.integrations is True


@pytest.mark.parametrize(
    ("notebook", "expected"),
    [
        ("a" * 1024, "a" * 1024),
        ("a" * 1020 + "/long.ipynb", "a" * 1020 + "/lon"),
    ],
)
def test_parse_request_cuts_notebook(notebook: str, expected: str) -> None:
    request = parse_request(make_parent(notebook=notebook))

    assert request is not None
    assert request.notebook == expected


@pytest.mark.parametrize(
    "sentry_trace",
    [
        f"{TRACE_ID.upper()}-{SPAN_ID}",
        f"{TRACE_ID}-{SPAN_ID}-2",
        f"{TRACE_ID}-{SPAN_ID}-",
        f"{TRACE_ID}{SPAN_ID}",
        f"{TRACE_ID[:-1]}-{SPAN_ID}",
        17,
    ],
)
def test_parse_request_rejects_sentry_trace(
    sentry_trace: object, caplog: pytest.LogCaptureFixture
) -> None:
    parent = make_parent(**{"sentry-trace": sentry_trace})

    assert parse_request(parent) is None
    assert "sentry-trace" in caplog.text
