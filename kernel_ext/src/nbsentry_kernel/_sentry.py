"""Forwarding of spans that sentry-sdk's integrations record in the kernel.

This is the only module that imports sentry-sdk, and it does so only when
a request sets ``integrations``. The client it starts has no DSN. Its
transport hands each finished transaction's spans back to the extension
and sends nothing anywhere.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._limits import MAX_NAME_LENGTH, MAX_SPAN_DATA_KEYS, MAX_TEXT_LENGTH
from ._text import clip, clip_optional, json_scalar

if TYPE_CHECKING:
    from types import ModuleType, TracebackType

    import sentry_sdk
    from sentry_sdk.envelope import Envelope

    from ._cell import Request

__all__ = ["SentryBridge", "SentryCell", "SentrySpan"]

_logger = logging.getLogger(__name__)

# Operation name of the kernel-side transaction. It never reaches Sentry:
# only its child spans are forwarded, as children of the runner's cell span.
_TRANSACTION_OP = "nbsentry.kernel.cell"


def _import_sdk() -> ModuleType | None:
    if importlib.util.find_spec("sentry_sdk") is None:
        return None
    import sentry_sdk  # noqa: PLC0415 - sentry-sdk is optional and heavy

    return sentry_sdk


def _timestamp(value: object) -> float | None:
    """Convert a serialized sentry-sdk timestamp to seconds since the epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    # sentry-sdk 2.x writes "2026-01-02T03:04:05.678901Z"; Python 3.10's
    # fromisoformat does not accept the "Z" suffix.
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def convert_span(
    raw: dict[str, Any], transaction_span_id: str
) -> dict[str, Any] | None:
    """Convert a span of a sentry-sdk transaction event to a report span.

    Returns `None` for a span without an id or valid times. A span whose
    parent is the kernel-side transaction becomes a child of the cell span.
    """
    span_id = raw.get("span_id")
    start = _timestamp(raw.get("start_timestamp"))
    end = _timestamp(raw.get("timestamp"))
    if not isinstance(span_id, str) or start is None or end is None:
        return None
    parent = raw.get("parent_span_id")
    if parent == transaction_span_id or not isinstance(parent, str):
        parent = None
    raw_data = raw.get("data")
    data: dict[str, Any] = {}
    if isinstance(raw_data, dict):
        for key, value in raw_data.items():
            if len(data) >= MAX_SPAN_DATA_KEYS:
                break
            data[clip(str(key), MAX_NAME_LENGTH)] = json_scalar(
                value, MAX_TEXT_LENGTH
            )
    status = raw.get("status")
    return {
        "span_id": clip(span_id, MAX_NAME_LENGTH),
        "parent_span_id": parent,
        "op": clip_optional(raw.get("op"), MAX_NAME_LENGTH) or "default",
        "description": clip_optional(raw.get("description"), MAX_TEXT_LENGTH),
        "start": start,
        "end": max(start, end),
        "status": clip_optional(status, MAX_NAME_LENGTH) or "ok",
        "data": data,
    }


class _SpanTransport:
    """A sentry-sdk transport that keeps transaction spans in memory.

    It also counts the spans that sentry-sdk drops past its own limit per
    transaction (``max_spans``, 1,000 by default), which sentry-sdk
    reports to the transport as lost.
    """

    def __init__(self, sdk: ModuleType) -> None:
        base = sdk.transport.Transport

        owner = self

        class Transport(base):  # type: ignore[misc,valid-type]
            def capture_envelope(self, envelope: Envelope) -> None:
                owner.capture(envelope)

            def record_lost_event(
                self,
                reason: str,
                data_category: str | None = None,
                item: object = None,
                *,
                quantity: int = 1,
            ) -> None:
                del item
                if reason == "buffer_overflow" and data_category == "span":
                    owner.count_dropped(quantity)

            def flush(self, *args: object, **kwargs: object) -> None:
                pass

            def kill(self) -> None:
                pass

        self.transport = Transport()
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._dropped = 0

    def capture(self, envelope: Envelope) -> None:
        try:
            event = envelope.get_transaction_event()
            if event is not None:
                with self._lock:
                    self._events.append(dict(event))
        except Exception:
            _logger.exception("Cannot read a sentry-sdk envelope")

    def count_dropped(self, quantity: int) -> None:
        with self._lock:
            self._dropped += quantity

    def take(self) -> tuple[list[dict[str, Any]], int]:
        """Return and forget the events and the count of dropped spans."""
        with self._lock:
            events, self._events = self._events, []
            dropped, self._dropped = self._dropped, 0
        return events, dropped


class SentrySpan:
    """A sentry-sdk span opened for a user span, so integrations nest in it."""

    __slots__ = ("_span", "span_id")

    def __init__(self, span: sentry_sdk.tracing.Span) -> None:
        self._span = span
        self.span_id: str = span.span_id
        span.__enter__()

    def finish(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Finish the span, with status ``internal_error`` after an error."""
        self._span.__exit__(exc_type, exc, tb)


class SentryCell:
    """The kernel-side sentry-sdk transaction of one reported cell."""

    def __init__(
        self,
        bridge: SentryBridge,
        transaction: sentry_sdk.tracing.Transaction,
        scope: sentry_sdk.Scope,
    ) -> None:
        self._bridge = bridge
        self._transaction = transaction
        self._scope = scope
        self._previous_span = scope.span
        scope.span = transaction

    def start_span(self, op: str, description: str | None) -> SentrySpan:
        """Open a sentry-sdk span under the innermost open one."""
        sdk = self._bridge.sdk
        return SentrySpan(sdk.start_span(op=op, name=description))

    def finish(
        self, skip_span_ids: set[str]
    ) -> tuple[list[dict[str, Any]], int]:
        """Finish the transaction and return its spans as report spans.

        Spans whose ids are in ``skip_span_ids`` were reported already as
        user spans and are left out. The count returned with the spans is
        of those that sentry-sdk dropped past its span limit.
        """
        transaction = self._transaction
        if self._scope.span is transaction:
            self._scope.span = self._previous_span
        if not self._bridge.owns_client():
            # The notebook started its own client during the cell: do not
            # send the runner's trace to the notebook's Sentry project.
            transaction.sampled = False
        transaction.finish()
        spans = []
        events, dropped = self._bridge.take_events()
        for event in events:
            for raw in event.get("spans") or ():
                if not isinstance(raw, dict):
                    continue
                converted = convert_span(raw, transaction.span_id)
                if (
                    converted is not None
                    and converted["span_id"] not in skip_span_ids
                ):
                    spans.append(converted)
        return spans, dropped


class SentryBridge:
    """The extension's own sentry-sdk client, started on first use."""

    def __init__(self) -> None:
        self.sdk: Any = None
        self._client: Any = None
        self._span_transport: _SpanTransport | None = None
        self._unavailable = False
        self._notebook_client_logged = False

    def start_cell(self, request: Request) -> SentryCell | None:
        """Start a transaction continuing the runner's trace for one cell.

        Returns `None` when sentry-sdk is not installed or when the
        notebook started a sentry-sdk client of its own, which is left
        untouched.
        """
        if self._unavailable:
            return None
        if self.sdk is None:
            self.sdk = _import_sdk()
            if self.sdk is None:
                self._unavailable = True
                _logger.info("sentry-sdk not installed, integrations off")
                return None
        sdk = self.sdk
        client = sdk.get_client()
        if client.is_active() and client is not self._client:
            if not self._notebook_client_logged:
                _logger.info("Notebook runs its own sentry-sdk client")
                self._notebook_client_logged = True
            return None
        if self._client is None:
            self._start_client()
        headers = {"sentry-trace": request.sentry_trace}
        if request.baggage:
            headers["baggage"] = request.baggage
        transaction = sdk.continue_trace(
            headers, op=_TRANSACTION_OP, name=request.cell_id
        )
        transaction = sdk.start_transaction(transaction)
        return SentryCell(self, transaction, sdk.get_current_scope())

    def owns_client(self) -> bool:
        """Return whether the extension's client is the active one."""
        return self.sdk is not None and self.sdk.get_client() is self._client

    def take_events(self) -> tuple[list[dict[str, Any]], int]:
        """Return and forget the transaction events captured so far.

        The count returned with them is of spans that sentry-sdk dropped.
        """
        if self._span_transport is None:
            return [], 0
        return self._span_transport.take()

    def close(self) -> None:
        """Stop the extension's client if it is still the active one."""
        if self._client is None:
            return
        if self.owns_client():
            self.sdk.get_global_scope().set_client(None)
        self._client.close()
        self._client = None

    def _start_client(self) -> None:
        sdk = self.sdk
        stdlib = importlib.import_module("sentry_sdk.integrations.stdlib")
        self._span_transport = _SpanTransport(sdk)
        self._client = sdk.Client(
            transport=self._span_transport.transport,
            # Integrations that would turn log records and uncaught
            # exceptions into events stay off: the runner reports those.
            default_integrations=False,
            auto_enabling_integrations=False,
            integrations=[stdlib.StdlibIntegration()],
            traces_sample_rate=1.0,
            # Outgoing HTTP requests keep their headers unchanged.
            trace_propagation_targets=[],
            send_client_reports=False,
            enable_backpressure_handling=False,
            spotlight=False,
        )
        sdk.get_global_scope().set_client(self._client)
