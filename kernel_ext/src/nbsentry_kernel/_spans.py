"""User-recorded spans: the public `span` context manager and decorator."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._cell import CellRecord, current_cell
from ._limits import MAX_NAME_LENGTH, MAX_SPAN_DATA_KEYS, MAX_TEXT_LENGTH
from ._text import clip, json_scalar

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self

    from ._sentry import SentrySpan

__all__ = ["Span", "new_span_id", "span"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_logger = logging.getLogger(__name__)

# The innermost open span of the current context, with the cell it belongs
# to, so that a span left open in an earlier cell is never used as a parent.
_open_span: ContextVar[tuple[CellRecord, str] | None] = ContextVar(
    "nbsentry_kernel_open_span", default=None
)


def new_span_id() -> str:
    """Return a new random span id, 16 lowercase hex digits."""
    return os.urandom(8).hex()


def _clean_data(data: dict[str, object]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in data.items():
        if len(cleaned) >= MAX_SPAN_DATA_KEYS:
            break
        cleaned[clip(str(key), MAX_NAME_LENGTH)] = json_scalar(
            value, MAX_TEXT_LENGTH
        )
    return cleaned


class Span:
    """A span of work inside a cell, reported as a child of the cell span.

    Use it through `span`, as a context manager or a decorator. Outside a
    cell that the runner asked to report on, entering and leaving it does
    nothing but check one global.

    Parameters
    ----------
    op
        Operation name, such as ``db.query``.
    description
        Human-readable description, such as the query text.
    data
        Extra values: strings, numbers, booleans or `None`. Other values
        are reported as their ``repr``.
    """

    __slots__ = (
        "_cell",
        "_data",
        "_description",
        "_op",
        "_parent_span_id",
        "_sentry_span",
        "_start",
        "_token",
        "span_id",
    )

    def __init__(
        self, op: str, description: str | None, data: dict[str, object]
    ) -> None:
        self._op = op
        self._description = description
        self._data = data
        self._cell: CellRecord | None = None
        self._sentry_span: SentrySpan | None = None
        self._parent_span_id: str | None = None
        self._start = 0.0
        self._token: Any = None
        self.span_id: str | None = None
        """Span id while the span is open in a reported cell, else `None`."""

    def set_data(self, key: str, value: object) -> None:
        """Set one value in the span's ``data``."""
        self._data[key] = value

    def __enter__(self) -> Self:
        cell = current_cell()
        if cell is None:
            return self
        try:
            self._open(cell)
        except Exception:
            _logger.exception("Cannot open span", extra={"op": self._op})
            self._cell = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._cell is None:
            return
        try:
            self._close(exc_type, exc, tb)
        except Exception:
            _logger.exception("Cannot close span", extra={"op": self._op})

    def __call__(self, function: Callable[_P, _R]) -> Callable[_P, _R]:
        """Wrap a function so that each call runs in a new span."""
        op, description, data = self._op, self._description, self._data
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(
                *args: _P.args, **kwargs: _P.kwargs
            ) -> Any:
                with Span(op, description, dict(data)):
                    return await function(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with Span(op, description, dict(data)):
                return function(*args, **kwargs)

        return wrapper

    def _open(self, cell: CellRecord) -> None:
        outer = _open_span.get()
        self._parent_span_id = (
            outer[1] if outer is not None and outer[0] is cell else None
        )
        sentry = cell.sentry
        if sentry is not None:
            self._sentry_span = sentry.start_span(self._op, self._description)
            self.span_id = self._sentry_span.span_id
        else:
            self.span_id = new_span_id()
        self._cell = cell
        self._token = _open_span.set((cell, self.span_id))
        self._start = time.time()

    def _close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = time.time()
        cell, self._cell = self._cell, None
        # A span entered in another context, as a generator resumed
        # elsewhere can do, leaves that context's open span alone.
        with contextlib.suppress(ValueError):
            _open_span.reset(self._token)
        if self._sentry_span is not None:
            self._sentry_span.finish(exc_type, exc, tb)
            self._sentry_span = None
        if cell is None or self.span_id is None:
            return
        description = self._description
        cell.add_span(
            {
                "span_id": self.span_id,
                "parent_span_id": self._parent_span_id,
                "op": clip(str(self._op), MAX_NAME_LENGTH),
                "description": (
                    None
                    if description is None
                    else clip(str(description), MAX_TEXT_LENGTH)
                ),
                "start": self._start,
                "end": max(end, self._start),
                "status": "ok" if exc_type is None else "internal_error",
                "data": _clean_data(self._data),
            }
        )
        self.span_id = None


def span(op: str, description: str | None = None, **data: object) -> Span:
    """Record a span inside the running cell.

    Use the result as a context manager (``with span("db.query"):``) or
    as a decorator (``@span("load")``). Spans nest: one opened inside
    another becomes its child. An exception raised inside sets the span's
    status to ``internal_error`` and propagates unchanged. Outside a cell
    that the runner asked to report on, the span records nothing.

    Parameters
    ----------
    op
        Operation name, such as ``db.query`` or ``http.client``.
    description
        Human-readable description, such as the query text.
    **data
        Extra values: strings, numbers, booleans or `None`. Other values
        are reported as their ``repr``.

    Returns
    -------
    Span
        A span that starts when entered and ends when left.
    """
    return Span(op, description, data)
