# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Fixtures for Sentry capture, a loopback Sentry server and SDK errors."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from tests.support import (
    CapturingTransport,
    SentryServer,
    capture_sentry,
    record_sentry_sdk_errors,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

_ALLOW_ERRORS_MARKER = "allow_sentry_sdk_errors"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_ALLOW_ERRORS_MARKER}: do not fail the test when sentry-sdk logs"
        " an error about its own failure",
    )


@pytest.fixture
def sentry_capture() -> Iterator[CapturingTransport]:
    """Yield the transport of a sentry-sdk client that samples every trace.

    At teardown the client is flushed and closed, then every captured event
    and transaction is checked with Relay.
    """
    with capture_sentry(traces_sample_rate=1.0) as transport:
        yield transport
    transport.validate_all()


@pytest.fixture
def sentry_server() -> Iterator[SentryServer]:
    """Yield a running loopback Sentry server, stopped at teardown.

    At teardown every received event and transaction is checked with
    Relay, and any request the server rejected fails the test.
    """
    with SentryServer() as server:
        yield server
    assert server.rejections == []
    server.validate_all()


@pytest.fixture(autouse=True)
def fail_on_sentry_sdk_errors(
    request: pytest.FixtureRequest,
) -> Iterator[None]:
    """Fail a test at teardown if sentry-sdk logged an error about itself.

    Mark a test with ``allow_sentry_sdk_errors`` to let such errors pass.
    """
    if request.node.get_closest_marker(_ALLOW_ERRORS_MARKER) is not None:
        yield
        return
    with record_sentry_sdk_errors() as records:
        yield
    if records:
        formatter = logging.Formatter("%(levelname)s %(message)s")
        details = "\n".join(formatter.format(record) for record in records)
        pytest.fail(f"sentry-sdk logged errors about itself:\n{details}")
