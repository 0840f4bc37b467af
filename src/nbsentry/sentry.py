"""Every sentry-sdk call the runner makes.

The runner owns all Sentry state: an isolation scope and a transaction per
business phase (startup, each iteration, shutdown), a transaction per
notebook execution in the same trace as its iteration, a span per code
cell, and error events with fingerprints split by notebook and cell.
Keeping sentry-sdk behind this one module confines any change of its API
to one file.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import sentry_sdk
import structlog
from sentry_sdk.integrations.atexit import AtexitIntegration
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.excepthook import ExcepthookIntegration
from sentry_sdk.integrations.modules import ModulesIntegration
from sentry_sdk.tracing import Span, Transaction

from .spool import SpoolTransport

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from sentry_sdk._types import Event

    from .config import RunConfig
    from .kernel_reports import KernelSpan
    from .notebooks import CodeCell

__all__ = [
    "MAX_CODE_LENGTH",
    "MAX_TAG_LENGTH",
    "SPAN_LIMIT",
    "CellTrace",
    "NotebookTrace",
    "PhaseTrace",
    "Telemetry",
    "close_sentry",
    "init_sentry",
]

SPAN_LIMIT = 1000
"""Spans Sentry keeps in one transaction; it drops any past this."""

MAX_CODE_LENGTH = 2048
"""Characters of cell code kept in a cell span's data."""

MAX_TAG_LENGTH = 200
"""Characters Sentry accepts in a tag value."""

_logger = structlog.get_logger("nbsentry")


def init_sentry(
    config: RunConfig, *, secrets: list[str] | None = None
) -> None:
    """Start the sentry-sdk client for a CLI run.

    Without a DSN, envelopes go to the spool directory. Integrations that
    would turn the runner's own logs into events, or put the command line
    (which may hold the DSN) into events, are left off.

    Parameters
    ----------
    config
        Run settings: DSN, environment, release, spool, traces sampling.
    secrets
        Values to filter out of every event, such as tokens.
    """
    dsn = config.dsn.get_secret_value() if config.dsn else None
    hidden = [s for s in (secrets or []) if s]
    if dsn:
        hidden.extend(_dsn_keys(dsn))
    rate = 1.0 if config.traces_sample == "errors" else config.traces_sample
    options: dict[str, Any] = {
        "dsn": dsn,
        "environment": config.environment,
        "release": config.release,
        "traces_sample_rate": rate,
        "default_integrations": False,
        "integrations": [
            AtexitIntegration(),
            DedupeIntegration(),
            ExcepthookIntegration(),
            ModulesIntegration(),
        ],
        "send_default_pii": False,
        "before_send": _scrubber(hidden),
        "before_send_transaction": _scrubber(hidden),
    }
    if not dsn:
        options["transport"] = SpoolTransport(config.spool)
    sentry_sdk.init(**options)


def _dsn_keys(dsn: str) -> list[str]:
    """Return the secret parts of a DSN: the whole DSN and its keys."""
    keys = [dsn]
    userinfo = dsn.partition("://")[2].partition("@")[0]
    if "@" in dsn.partition("://")[2]:
        keys.extend(part for part in userinfo.split(":") if part)
    return keys


def _scrubber(secrets: list[str]) -> Any:
    def scrub(event: Any, _hint: Any) -> Any:
        if not secrets:
            return event
        return _replace_secrets(event, secrets)

    return scrub


def _replace_secrets(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, "[Filtered]")
        return value
    if isinstance(value, dict):
        return {k: _replace_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secrets(v, secrets) for v in value]
    return value


@contextmanager
def _entered(span: Span) -> Iterator[None]:
    """Enter a span; a cancelled run ends it as cancelled, not as an error."""
    cancelled: asyncio.CancelledError | None = None
    with span:
        try:
            yield
        except asyncio.CancelledError as exc:
            span.set_status("cancelled")
            cancelled = exc
    if cancelled is not None:
        raise cancelled


def _tag(value: str) -> str:
    return value.replace("\n", " ")[:MAX_TAG_LENGTH]


def close_sentry(timeout: float = 10.0) -> SpoolTransport | None:
    """Send pending envelopes and stop the client started by `init_sentry`.

    Parameters
    ----------
    timeout
        Seconds to wait for pending envelopes.

    Returns
    -------
    SpoolTransport or None
        The spool transport, if envelopes went to a spool directory.
    """
    client = sentry_sdk.get_client()
    transport = client.transport
    client.close(timeout=timeout)
    return transport if isinstance(transport, SpoolTransport) else None


@dataclass
class PhaseTrace:
    """A business phase: startup, one iteration, or shutdown."""

    transaction: Span
    """The phase transaction; a no-op span if sentry-sdk is not tracing."""

    errored: bool = False
    """Whether an error event was captured inside the phase."""


@dataclass
class CellTrace:
    """A code cell being executed."""

    cell: CodeCell
    span: Span | None
    """The cell span, or `None` past the span limit."""

    notebook: NotebookTrace
    _ends: dict[int, float] = field(default_factory=dict, repr=False)

    def propagation_metadata(self) -> dict[str, str]:
        """Return trace headers that make kernel spans children of the cell.

        Returns
        -------
        dict
            ``sentry-trace``, ``baggage`` and W3C ``traceparent``.
        """
        span: Span = self.span or self.notebook.transaction
        flags = "01" if span.sampled else "00"
        headers = {
            "sentry-trace": span.to_traceparent(),
            "traceparent": f"00-{span.trace_id}-{span.span_id}-{flags}",
        }
        baggage = self.notebook.transaction.to_baggage()
        if baggage is not None:
            headers["baggage"] = baggage.serialize()
        return headers

    def set_status(self, status: str) -> None:
        """Set the span status, such as ``ok`` or ``deadline_exceeded``."""
        if self.span is not None:
            self.span.set_status(status)

    def set_data(self, key: str, value: Any) -> None:
        """Set a value in the cell span's data."""
        if self.span is not None:
            self.span.set_data(key, value)

    @property
    def trace_id(self) -> str:
        """Trace id sent to the kernel with the cell's request."""
        return (self.span or self.notebook.transaction).trace_id

    def add_kernel_spans(self, spans: list[KernelSpan]) -> None:
        """Record spans reported by the kernel as children of the cell.

        The ``nbsentry.kernel.execute`` span, if present, comes first and
        becomes the parent of the kernel's top-level spans. Spans past the
        transaction's span limit are counted as omitted.

        Parameters
        ----------
        spans
            Kernel spans with times already on the runner's clock.
        """
        if self.span is None:
            self.notebook.omitted_spans += len(spans)
            return
        kept = spans[: self.notebook.reserve_spans(len(spans))]
        top: Span = self.span
        if kept and kept[0].op == "nbsentry.kernel.execute":
            top = self._start_kernel_span(self.span, kept.pop(0))
        created = self._place_kernel_spans(top, kept)
        for span in [top, *created]:
            if span is not self.span:
                span.finish(end_timestamp=self._ends.pop(id(span)))

    def _place_kernel_spans(
        self, top: Span, spans: list[KernelSpan]
    ) -> list[Span]:
        created: dict[str, Span] = {}
        pending = spans
        # Parents finish after their children, so a report may list a
        # child first: place spans whose parent exists, until none is left.
        while pending:
            waiting = []
            for item in pending:
                if item.parent_span_id is None:
                    parent: Span | None = top
                else:
                    parent = created.get(item.parent_span_id)
                if parent is None:
                    waiting.append(item)
                else:
                    created[item.span_id] = self._start_kernel_span(
                        parent, item
                    )
            if len(waiting) == len(pending):
                # Parents that were never reported: attach to the top.
                for item in waiting:
                    created[item.span_id] = self._start_kernel_span(top, item)
                break
            pending = waiting
        return list(created.values())

    def _start_kernel_span(self, parent: Span, item: KernelSpan) -> Span:
        span = parent.start_child(
            op=item.op,
            name=item.description,
            start_timestamp=item.start,
            origin="auto.nbsentry.kernel",
        )
        span.set_status(item.status)
        for key, value in item.data.items():
            span.set_data(key, value)
        self._ends[id(span)] = item.end
        return span


@dataclass
class NotebookTrace:
    """A notebook execution: a transaction of its own."""

    name: str
    transaction: Span
    """The notebook transaction; a no-op span if sentry-sdk is not tracing."""

    phase: PhaseTrace
    telemetry: Telemetry
    spans: int = 0
    omitted_spans: int = 0
    errored: bool = False
    event_ids: list[str] = field(default_factory=list)

    def reserve_spans(self, count: int) -> int:
        """Take up to ``count`` spans from the transaction's budget.

        Returns
        -------
        int
            How many spans may be created; the rest count as omitted.
        """
        # The transaction takes one place in Sentry's limit.
        free = max(SPAN_LIMIT - 1 - self.spans, 0)
        granted = min(count, free)
        self.spans += granted
        self.omitted_spans += count - granted
        return granted

    @contextmanager
    def span(self, op: str, description: str) -> Iterator[Span | None]:
        """Record a child span of the notebook, such as a kernel start."""
        if not self.reserve_spans(1):
            yield None
            return
        with self.transaction.start_child(op=op, name=description) as span:
            yield span
            span.set_status("ok")

    @contextmanager
    def cell(self, cell: CodeCell) -> Iterator[CellTrace]:
        """Open a cell span and set the cell tags while the cell runs."""
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("cell", _tag(cell.cell_id))
            scope.set_tag("cell_number", cell.label)
            if not self.reserve_spans(1):
                yield CellTrace(cell, None, self)
                return
            description = cell.label
            if cell.cell_id != str(cell.number):
                description = f"{cell.label} {cell.cell_id}"
            span = self.transaction.start_child(
                op="nbsentry.cell", name=description
            )
            span.set_data("cell.id", cell.cell_id)
            span.set_data("cell.number", cell.number)
            span.set_data("cell.code", cell.source[:MAX_CODE_LENGTH])
            with _entered(span):
                yield CellTrace(cell, span, self)

    def capture_failure(
        self,
        *,
        exception_type: str,
        value: str,
        cell: CodeCell | None = None,
        traceback: str | None = None,
        context: Mapping[str, Any] | None = None,
        exception_values: list[dict[str, Any]] | None = None,
        breadcrumbs: list[dict[str, Any]] | None = None,
    ) -> str | None:
        """Send one error event for a failure in this notebook.

        Parameters
        ----------
        exception_type
            Exception class name, such as the kernel's ``ename``.
        value
            Exception value or failure description.
        cell
            The failing cell, if the failure belongs to one.
        traceback
            Full traceback text, sent as an attachment.
        context
            More values for the event's ``notebook`` context.
        exception_values
            Sentry exception values with stack frames, from the kernel
            extension; by default one value without frames is built from
            ``exception_type`` and ``value``.
        breadcrumbs
            Breadcrumbs recorded in the kernel during the cell.

        Returns
        -------
        str or None
            The event id, or `None` if sentry-sdk dropped the event.
        """
        self.errored = True
        self.phase.errored = True
        details: dict[str, Any] = {"path": self.name}
        if cell is not None:
            details["cell_id"] = cell.cell_id
            details["cell_number"] = cell.number
        details.update(context or {})
        values = exception_values or [
            {
                "type": exception_type,
                "value": value,
                "mechanism": {"type": "nbsentry", "handled": False},
            }
        ]
        event: dict[str, Any] = {
            "level": "error",
            "logger": "nbsentry",
            "exception": {"values": values},
            "contexts": {"notebook": details},
        }
        if breadcrumbs:
            event["breadcrumbs"] = {"values": breadcrumbs}
        fingerprint = [
            "{{ default }}",
            self.telemetry.flock,
            self.telemetry.business,
            self.name,
        ]
        if cell is not None:
            fingerprint.append(cell.cell_id)
        with sentry_sdk.new_scope() as scope:
            scope.fingerprint = fingerprint
            if traceback:
                scope.add_attachment(
                    bytes=traceback.encode("utf-8", "replace"),
                    filename="traceback.txt",
                    content_type="text/plain",
                )
            event_id = sentry_sdk.capture_event(cast("Event", event))
        if event_id is None:
            _logger.warning(
                "Sentry dropped the error event",
                notebook=self.name,
                cell=cell.cell_id if cell else None,
            )
        else:
            self.event_ids.append(event_id)
        return event_id


class Telemetry:
    """Sentry scopes, transactions and events of one monkey.

    Parameters
    ----------
    flock
        Flock name, for the ``flock`` tag and fingerprints.
    business
        Business name, for the ``business`` tag and fingerprints.
    user
        Monkey user name, set with ``set_user``.
    errors_only
        Send only transactions inside which an error event was captured.
    tags
        More tags for every event, such as ``backend`` and ``node``.
    """

    def __init__(
        self,
        *,
        flock: str,
        business: str,
        user: str,
        errors_only: bool = False,
        tags: Mapping[str, str | None] | None = None,
    ) -> None:
        self.flock = flock
        self.business = business
        self.user = user
        self.errors_only = errors_only
        self.tags = {k: v for k, v in (tags or {}).items() if v is not None}

    @contextmanager
    def phase(self, phase: str) -> Iterator[PhaseTrace]:
        """Run a business phase in a fresh isolation scope and transaction.

        Parameters
        ----------
        phase
            ``startup``, ``run`` or ``shutdown``.
        """
        with sentry_sdk.isolation_scope() as scope:
            scope.set_tag("flock", _tag(self.flock))
            scope.set_tag("business", _tag(self.business))
            for key, value in self.tags.items():
                scope.set_tag(key, _tag(value))
            scope.set_user({"username": self.user})
            transaction = sentry_sdk.start_transaction(
                op=f"nbsentry.{phase}", name=f"{self.business}.{phase}"
            )
            trace = PhaseTrace(transaction)
            with self._finishing(transaction, trace):
                yield trace

    @contextmanager
    def notebook(
        self, phase: PhaseTrace, name: str, kernel: str | None
    ) -> Iterator[NotebookTrace]:
        """Run a notebook in a transaction of its own, in the phase's trace.

        The transaction is sent as soon as the context exits.

        Parameters
        ----------
        phase
            The iteration the notebook runs in.
        name
            Notebook path relative to its root.
        kernel
            Kernel name, for the ``kernel`` tag.
        """
        parent = phase.transaction
        headers = {"sentry-trace": parent.to_traceparent()}
        baggage = parent.to_baggage()
        if baggage is not None:
            headers["baggage"] = baggage.serialize()
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("notebook", _tag(name))
            if kernel is not None:
                scope.set_tag("kernel", _tag(kernel))
            # Unlike continue_trace, this leaves the isolation scope's
            # propagation context alone.
            continued = Transaction.continue_from_headers(
                headers, op="nbsentry.notebook", name=name, source="custom"
            )
            transaction = sentry_sdk.start_transaction(continued)
            trace = NotebookTrace(name, transaction, phase, self)
            with self._finishing(transaction, trace):
                yield trace
                if trace.omitted_spans:
                    transaction.set_data(
                        "nbsentry.omitted_spans", trace.omitted_spans
                    )
                    _logger.warning(
                        "Spans left out of notebook transaction",
                        notebook=name,
                        omitted=trace.omitted_spans,
                        limit=SPAN_LIMIT,
                    )

    @contextmanager
    def _finishing(
        self, transaction: Span, trace: PhaseTrace | NotebookTrace
    ) -> Iterator[None]:
        with _entered(transaction):
            try:
                yield
            finally:
                if trace.errored:
                    transaction.set_status("internal_error")
                elif transaction.status is None:
                    transaction.set_status("ok")
                if self.errors_only and not trace.errored:
                    # A transaction marked unsampled is dropped on finish.
                    transaction.sampled = False

    def capture_phase_error(
        self, phase: PhaseTrace, exc: BaseException
    ) -> str | None:
        """Send an exception raised by a business phase itself.

        Parameters
        ----------
        phase
            The phase it was raised in, marked as errored.
        exc
            The exception.

        Returns
        -------
        str or None
            The event id, or `None` if sentry-sdk dropped the event.
        """
        phase.errored = True
        with sentry_sdk.new_scope() as scope:
            scope.fingerprint = ["{{ default }}", self.flock, self.business]
            return sentry_sdk.capture_exception(exc)


def now() -> float:
    """Return the wall-clock time in seconds, as Sentry timestamps use."""
    return time.time()
