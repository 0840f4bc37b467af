# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Helpers shared by the test suite: Sentry capture, checks and servers."""

from .capture import (
    CapturedAttachment,
    CapturingTransport,
    EnvelopeStore,
    capture_sentry,
    sentry_client,
)
from .relay import assert_valid_payload
from .sdk_errors import record_sentry_sdk_errors
from .sentry_server import ReceivedRequest, SentryServer

__all__ = [
    "CapturedAttachment",
    "CapturingTransport",
    "EnvelopeStore",
    "ReceivedRequest",
    "SentryServer",
    "assert_valid_payload",
    "capture_sentry",
    "record_sentry_sdk_errors",
    "sentry_client",
]
