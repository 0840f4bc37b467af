"""State of the reported cell that is running now.

The hooks create a `CellRecord` in ``pre_run_cell`` and finish it in
``post_run_cell``. Spans and breadcrumbs may arrive from any thread, and
the partial-report thread reads the record while the cell runs, so every
change happens under the record's lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._limits import MAX_BREADCRUMBS, MAX_SPANS

if TYPE_CHECKING:
    from ._sentry import SentryCell

__all__ = ["CellRecord", "Request", "current_cell", "set_current_cell"]


@dataclass(slots=True)
class Request:
    """The ``nbsentry`` object of an execute request, checked."""

    msg_id: str
    """Message id of the execute request."""

    trace_id: str
    """Trace id, 32 lowercase hex digits."""

    sentry_trace: str
    """The ``sentry-trace`` header value to continue."""

    baggage: str | None
    """The ``baggage`` header value to continue, if any."""

    cell_id: str
    """Cell id that every report for this request carries."""

    notebook: str
    """Notebook path relative to the runner's notebook root.

    A path longer than `MAX_TEXT_LENGTH` keeps only its first characters.
    """

    integrations: bool
    """Whether to forward spans recorded by sentry-sdk integrations."""


@dataclass(slots=True)
class CellRecord:
    """Spans and breadcrumbs collected while one reported cell runs."""

    request: Request
    """The request this cell runs for."""

    packed_parent: bytes
    """The execute request's header packed as JSON: every report's parent."""

    execution_count: int
    """Execution count of the cell."""

    start: float
    """Wall-clock start in seconds since the epoch."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    """Lock guarding every field below."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    """Finished spans in the order they finished."""

    sent_spans: int = 0
    """Number of leading ``spans`` already sent in partial reports."""

    dropped_spans: int = 0
    """Number of spans left out because of `MAX_SPANS`."""

    breadcrumbs: list[dict[str, Any]] = field(default_factory=list)
    """Breadcrumbs in the order they were recorded."""

    dropped_breadcrumbs: int = 0
    """Number of breadcrumbs left out because of `MAX_BREADCRUMBS`."""

    sentry: SentryCell | None = None
    """The kernel-side sentry-sdk transaction, when integrations are on."""

    finished: bool = False
    """Whether the final report has been built; later additions are lost."""

    def add_span(self, span: dict[str, Any]) -> None:
        """Add a finished span unless the cell already has `MAX_SPANS`."""
        with self.lock:
            if self.finished:
                return
            if len(self.spans) >= MAX_SPANS:
                self.dropped_spans += 1
            else:
                self.spans.append(span)

    def add_breadcrumb(self, breadcrumb: dict[str, Any]) -> None:
        """Add a breadcrumb unless the cell already has `MAX_BREADCRUMBS`."""
        with self.lock:
            if self.finished:
                return
            if len(self.breadcrumbs) >= MAX_BREADCRUMBS:
                self.dropped_breadcrumbs += 1
            else:
                self.breadcrumbs.append(breadcrumb)


# The extension's cell hooks read and set this directly, without the two
# functions below, to save a call per hook.
_current: CellRecord | None = None


def current_cell() -> CellRecord | None:
    """Return the record of the reported cell running now, if any."""
    return _current


def set_current_cell(cell: CellRecord | None) -> None:
    """Set or clear the record of the reported cell running now."""
    global _current  # noqa: PLW0603 - one kernel runs one cell at a time
    _current = cell
