# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Capture sentry-sdk envelopes in memory and set up a client for a test."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from .relay import assert_valid_payload

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = [
    "CapturedAttachment",
    "CapturingTransport",
    "EnvelopeStore",
    "capture_sentry",
    "sentry_client",
]

# Seconds that teardown waits for queued envelopes to be sent.
_FLUSH_TIMEOUT = 5.0


@dataclass(frozen=True)
class CapturedAttachment:
    """An attachment item with the event it was sent with."""

    filename: str | None
    content_type: str | None
    attachment_type: str | None
    data: bytes
    event: dict[str, Any] | None
    """The error event or transaction in the same envelope, if any."""


class EnvelopeStore:
    """Thread-safe record of envelopes, with their items parsed.

    Each envelope is stored as it would arrive at a server: serialized and
    deserialized again, so payloads contain only JSON values.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._envelopes: list[Envelope] = []

    def record(self, envelope: Envelope) -> None:
        """Store an envelope that has already been deserialized."""
        with self._lock:
            self._envelopes.append(envelope)

    def clear(self) -> None:
        """Forget every stored envelope."""
        with self._lock:
            self._envelopes.clear()

    @property
    def envelopes(self) -> list[Envelope]:
        """Stored envelopes, oldest first."""
        with self._lock:
            return list(self._envelopes)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Error events, oldest first."""
        return self._payloads("event")

    @property
    def transactions(self) -> list[dict[str, Any]]:
        """Transactions, oldest first."""
        return self._payloads("transaction")

    @property
    def attachments(self) -> list[CapturedAttachment]:
        """Attachments with the event or transaction each came with."""
        attachments: list[CapturedAttachment] = []
        for envelope in self.envelopes:
            event = _envelope_payload(envelope)
            attachments.extend(
                CapturedAttachment(
                    filename=item.headers.get("filename"),
                    content_type=item.headers.get("content_type"),
                    attachment_type=item.headers.get("attachment_type"),
                    data=item.get_bytes(),
                    event=event,
                )
                for item in envelope.items
                if item.type == "attachment"
            )
        return attachments

    def validate_all(self) -> None:
        """Check every stored event and transaction with Relay.

        Raises
        ------
        AssertionError
            Raised if any payload is invalid, listing every invalid one.
        """
        failures: list[str] = []
        for payload in self.events + self.transactions:
            try:
                assert_valid_payload(payload)
            except AssertionError as error:
                failures.append(str(error))
        if failures:
            message = "\n".join(failures)
            raise AssertionError(message)

    def _payloads(self, item_type: str) -> list[dict[str, Any]]:
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == item_type and item.payload.json is not None
        ]


def _envelope_payload(envelope: Envelope) -> dict[str, Any] | None:
    """Return the envelope's error event or transaction, if it has one."""
    for item in envelope.items:
        if item.type in {"event", "transaction"}:
            payload: dict[str, Any] | None = item.payload.json
            return payload
    return None


class CapturingTransport(Transport, EnvelopeStore):
    """A sentry-sdk transport that keeps every envelope in memory.

    sentry-sdk calls ``capture_envelope`` from the thread that captured the
    event, so several threads may record at once.
    """

    def __init__(self) -> None:
        Transport.__init__(self)
        EnvelopeStore.__init__(self)

    def capture_envelope(self, envelope: Envelope) -> None:
        """Store the envelope as a server would receive it."""
        self.record(Envelope.deserialize(envelope.serialize()))


@contextmanager
def sentry_client(
    *,
    transport: Transport | None = None,
    dsn: str | None = None,
    traces_sample_rate: float | None = 1.0,
    options: Mapping[str, object] | None = None,
) -> Iterator[None]:
    """Initialize sentry-sdk for one test, then flush and close it.

    The client is set on the global scope and the test runs in a fresh
    isolation scope, so neither the client nor tags leak into later tests.
    Proxy settings from the environment are ignored unless ``options``
    sets them, which keeps a loopback DSN on loopback.

    Parameters
    ----------
    transport
        Transport instance, which works without a DSN.
    dsn
        DSN for sentry-sdk's own HTTP transport.
    traces_sample_rate
        Fraction of transactions to sample, or None to disable tracing.
    options
        Further keyword arguments for `sentry_sdk.init`.
    """
    init_options: dict[str, Any] = {"http_proxy": "", "https_proxy": ""}
    init_options.update(options or {})
    sentry_sdk.init(
        dsn=dsn,
        transport=transport,
        traces_sample_rate=traces_sample_rate,
        **init_options,
    )
    try:
        with sentry_sdk.isolation_scope():
            yield
    finally:
        client = sentry_sdk.get_client()
        client.flush(timeout=_FLUSH_TIMEOUT)
        client.close(timeout=_FLUSH_TIMEOUT)
        sentry_sdk.get_global_scope().set_client(None)


@contextmanager
def capture_sentry(
    *,
    traces_sample_rate: float | None = 1.0,
    options: Mapping[str, object] | None = None,
) -> Iterator[CapturingTransport]:
    """Initialize sentry-sdk with a `CapturingTransport` for one test.

    Parameters
    ----------
    traces_sample_rate
        Fraction of transactions to sample, or None to disable tracing.
    options
        Further keyword arguments for `sentry_sdk.init`.

    Yields
    ------
    CapturingTransport
        The transport. It stores every envelope sent until the client is
        closed on exit.
    """
    transport = CapturingTransport()
    with sentry_client(
        transport=transport,
        traces_sample_rate=traces_sample_rate,
        options=options,
    ):
        yield transport
