# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of the Sentry test helpers against the real sentry-sdk."""

from __future__ import annotations

import copy
import gzip
import http.client
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope, Item, PayloadRef
from sentry_sdk.utils import logger as sentry_sdk_logger

from tests.support import (
    CapturingTransport,
    assert_valid_payload,
    capture_sentry,
    record_sentry_sdk_errors,
    sentry_client,
)

if TYPE_CHECKING:
    from tests.support import SentryServer


def _send_sample_transaction() -> None:
    with sentry_sdk.start_transaction(name="iteration", op="nbsentry.run"):
        with sentry_sdk.start_span(op="nbsentry.cell", name="load-data"):
            pass
        settings: dict[str, str] = {}
        try:
            settings["missing"]
        except KeyError:
            sentry_sdk.capture_exception()


def _captured_transaction() -> dict[str, Any]:
    with capture_sentry() as transport:
        _send_sample_transaction()
    (transaction,) = transport.transactions
    return transaction


def test_capture_event_and_transaction(
    sentry_capture: CapturingTransport,
) -> None:
    sentry_sdk.set_tag("flock", "smoke")
    _send_sample_transaction()
    sentry_sdk.flush()

    (event,) = sentry_capture.events
    (transaction,) = sentry_capture.transactions
    assert event["exception"]["values"][0]["type"] == "KeyError"
    assert event["tags"]["flock"] == "smoke"
    assert transaction["transaction"] == "iteration"
    assert [span["op"] for span in transaction["spans"]] == ["nbsentry.cell"]
    trace_id = transaction["contexts"]["trace"]["trace_id"]
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    sentry_capture.validate_all()


def test_capture_tags_do_not_leak() -> None:
    with capture_sentry():
        sentry_sdk.set_tag("leaky", "yes")
    with capture_sentry() as transport:
        sentry_sdk.capture_message("second")
    (event,) = transport.events
    assert "leaky" not in event.get("tags", {})
    assert not sentry_sdk.get_client().is_active()


def test_capture_attachment(sentry_capture: CapturingTransport) -> None:
    with sentry_sdk.new_scope() as scope:
        scope.add_attachment(
            bytes=b"cell source", filename="cell.py", content_type="text/plain"
        )
        sentry_sdk.capture_message("with attachment")

    (attachment,) = sentry_capture.attachments
    assert attachment.filename == "cell.py"
    assert attachment.content_type == "text/plain"
    assert attachment.data == b"cell source"
    assert attachment.event is not None
    assert attachment.event["message"] == "with attachment"


def test_valid_payload_span_ending_early() -> None:
    start = datetime.now(UTC)
    with (
        capture_sentry() as transport,
        sentry_sdk.start_transaction(name="clocks", op="nbsentry.run"),
    ):
        span = sentry_sdk.start_span(
            op="nbsentry.cell", name="skewed", start_timestamp=start
        )
        span.finish(end_timestamp=start - timedelta(seconds=1))
    (transaction,) = transport.transactions

    with pytest.raises(AssertionError) as raised:
        assert_valid_payload(transaction)
    assert "'skewed'" in str(raised.value)
    assert "ends before it starts" in str(raised.value)
    assert "ProcessingErrorInvalidTransaction" in str(raised.value)


def test_valid_payload_span_without_end() -> None:
    transaction = _captured_transaction()
    del transaction["spans"][0]["timestamp"]

    with pytest.raises(AssertionError, match="has no end timestamp"):
        assert_valid_payload(transaction)


def test_valid_payload_span_outside() -> None:
    transaction = _captured_transaction()
    early = copy.deepcopy(transaction)
    early["spans"][0]["start_timestamp"] = 0.0
    late = copy.deepcopy(transaction)
    late["spans"][0]["timestamp"] = 4102444800.0

    assert_valid_payload(transaction)
    with pytest.raises(AssertionError, match="starts before its transaction"):
        assert_valid_payload(early)
    with pytest.raises(AssertionError, match="ends after its transaction"):
        assert_valid_payload(late)


def test_valid_payload_transaction_without_end() -> None:
    transaction = _captured_transaction()
    del transaction["timestamp"]

    with pytest.raises(AssertionError, match="transaction has no end"):
        assert_valid_payload(transaction)


def test_valid_payload_relay_soft_error() -> None:
    with capture_sentry() as transport:
        sentry_sdk.capture_message("fine")
    (event,) = transport.events
    event["level"] = "loud"

    with pytest.raises(AssertionError, match="invalid level"):
        assert_valid_payload(event)


def test_validate_all_lists_invalid() -> None:
    transaction = _captured_transaction()
    del transaction["spans"][0]["timestamp"]
    item = Item(payload=PayloadRef(json=transaction), type="transaction")
    envelope = Envelope(items=[item])
    transport = CapturingTransport()
    transport.capture_envelope(envelope)
    transport.capture_envelope(envelope)

    with pytest.raises(AssertionError) as raised:
        transport.validate_all()
    assert str(raised.value).count("has no end timestamp") == 2


def test_server_receives_http_transport(sentry_server: SentryServer) -> None:
    with sentry_client(dsn=sentry_server.dsn):
        _send_sample_transaction()
        sentry_sdk.flush()

    requests = sentry_server.requests
    assert requests
    assert {request.project_id for request in requests} == {"42"}
    for request in requests:
        assert request.auth["sentry_key"] == "publickey"
        assert request.content_encoding == "gzip"
    (event,) = sentry_server.events
    assert event["exception"]["values"][0]["type"] == "KeyError"
    (transaction,) = sentry_server.transactions
    assert transaction["transaction"] == "iteration"


def test_server_plain_body_and_bad_path(sentry_server: SentryServer) -> None:
    envelope = Envelope()
    envelope.add_item(Item(payload=PayloadRef(json={"k": 1}), type="note"))
    body = envelope.serialize()
    connection = http.client.HTTPConnection("127.0.0.1", sentry_server.port)
    try:
        connection.request("POST", "/api/7/envelope/?sentry_key=k", body)
        plain = connection.getresponse()
        plain.read()
        connection.request("POST", "/api/7/store/", gzip.compress(body))
        wrong = connection.getresponse()
        wrong.read()
    finally:
        connection.close()

    assert plain.status == 200
    assert wrong.status == 404
    (request,) = sentry_server.requests
    assert request.project_id == "7"
    assert request.auth == {"sentry_key": "k"}
    assert request.content_encoding is None
    assert sentry_server.rejections == ["404: path /api/7/store/"]
    sentry_server._rejections.clear()


def test_server_wait_times_out(sentry_server: SentryServer) -> None:
    with pytest.raises(TimeoutError, match="expected 1"):
        sentry_server.wait_for_envelopes(1, timeout=0.1)


@pytest.mark.allow_sentry_sdk_errors
def test_sdk_errors_recorded_without_debug() -> None:
    with capture_sentry(), record_sentry_sdk_errors() as records:
        sentry_sdk_logger.debug("dropped unless debug is on")
        sentry_sdk_logger.error("broken on purpose")

    assert [record.getMessage() for record in records] == ["broken on purpose"]


@pytest.mark.allow_sentry_sdk_errors
def test_sdk_errors_filter_restored() -> None:
    filters = list(sentry_sdk_logger.filters)
    handlers = list(sentry_sdk_logger.handlers)
    with record_sentry_sdk_errors():
        pass
    assert sentry_sdk_logger.filters == filters
    assert sentry_sdk_logger.handlers == handlers
