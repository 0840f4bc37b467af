"""Isolation scopes and transactions of a monkey's business phases."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import sentry_sdk
import structlog
from sentry_sdk.tracing import Transaction

from .traces import SPAN_LIMIT, NotebookTrace, PhaseTrace, entered, tag_value

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from sentry_sdk.tracing import Span

__all__ = ["Telemetry"]

_logger = structlog.get_logger("nbsentry")


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
            scope.set_tag("flock", tag_value(self.flock))
            scope.set_tag("business", tag_value(self.business))
            for key, value in self.tags.items():
                scope.set_tag(key, tag_value(value))
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
            scope.set_tag("notebook", tag_value(name))
            if kernel is not None:
                scope.set_tag("kernel", tag_value(kernel))
            # Unlike continue_trace, this leaves the isolation scope's
            # propagation context alone.
            continued = Transaction.continue_from_headers(
                headers, op="nbsentry.notebook", name=name, source="custom"
            )
            transaction = sentry_sdk.start_transaction(continued)
            trace = NotebookTrace(name, transaction, phase, self)
            with self._finishing(transaction, trace):
                try:
                    yield trace
                finally:
                    # Also on cancellation, so that a notebook stopped by a
                    # signal still reports the spans it left out.
                    _record_omitted_spans(trace)

    @contextmanager
    def _finishing(
        self, transaction: Span, trace: PhaseTrace | NotebookTrace
    ) -> Iterator[None]:
        with entered(transaction):
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


def _record_omitted_spans(trace: NotebookTrace) -> None:
    """Store the number of spans left out past the limit, and log it."""
    if not trace.omitted_spans:
        return
    trace.transaction.set_data("nbsentry.omitted_spans", trace.omitted_spans)
    _logger.warning(
        "Spans left out of notebook transaction",
        notebook=trace.name,
        omitted=trace.omitted_spans,
        limit=SPAN_LIMIT,
    )
