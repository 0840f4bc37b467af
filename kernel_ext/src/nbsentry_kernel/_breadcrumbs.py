"""Breadcrumbs from warnings and log records emitted during a cell.

Warnings are seen through a wrapper around `warnings.showwarning` that
calls the previous function, so they are shown exactly as before. Log
records are seen through a wrapper around the log record factory rather
than through a handler on the root logger: a handler there would turn
`logging.basicConfig` into a no-op and stop `logging.lastResort` from
printing warnings, which changes where the notebook's logs go.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

from ._cell import current_cell
from ._limits import MAX_NAME_LENGTH, MAX_TEXT_LENGTH
from ._text import clip, safe_str

__all__ = ["BreadcrumbRecorder"]

_logger = logging.getLogger(__name__)


def _level_name(levelno: int) -> str:
    """Return Sentry's breadcrumb level for a logging level of WARNING+."""
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    return "warning"


class BreadcrumbRecorder:
    """Records warnings and log records of reported cells as breadcrumbs.

    `install` wraps the hooks, `uninstall` restores them. A wrapper that
    another library has wrapped in turn cannot be removed without losing
    that library's wrapper, so it stays in place and only passes calls on.
    """

    def __init__(self) -> None:
        self._active = False
        self._previous_showwarning: Any = None
        self._previous_factory: Any = None

    def install(self) -> None:
        """Wrap `warnings.showwarning` and the log record factory."""
        if self._active:
            return
        self._active = True
        self._previous_showwarning = warnings.showwarning
        warnings.showwarning = self._showwarning
        self._previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(self._make_record)

    def uninstall(self) -> None:
        """Restore the hooks, or leave pass-through wrappers in place."""
        if not self._active:
            return
        self._active = False
        if warnings.showwarning == self._showwarning:
            warnings.showwarning = self._previous_showwarning
        if logging.getLogRecordFactory() == self._make_record:
            logging.setLogRecordFactory(self._previous_factory)

    def _showwarning(  # noqa: PLR0917 - the signature of showwarning
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if self._active:
            cell = current_cell()
            if cell is not None:
                try:
                    value = safe_str(message, MAX_TEXT_LENGTH)
                    text = f"{category.__name__}: {value}"
                    cell.add_breadcrumb(
                        {
                            "timestamp": time.time(),
                            "category": "warnings",
                            "level": "warning",
                            "message": clip(text, MAX_TEXT_LENGTH),
                        }
                    )
                except Exception:
                    _logger.exception("Cannot record a warning")
        self._previous_showwarning(
            message, category, filename, lineno, file, line
        )

    def _make_record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self._previous_factory(*args, **kwargs)
        if (
            self._active
            and record.levelno >= logging.WARNING
            and current_cell() is not None
            and not record.name.startswith("nbsentry_kernel")
        ):
            self._record_log(record)
        return record

    def _record_log(self, record: logging.LogRecord) -> None:
        cell = current_cell()
        if cell is None:
            return
        try:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - bad arguments are the caller's
                message = safe_str(record.msg, MAX_TEXT_LENGTH)
            cell.add_breadcrumb(
                {
                    "timestamp": record.created,
                    "category": clip(record.name, MAX_NAME_LENGTH),
                    "level": _level_name(record.levelno),
                    "message": clip(message, MAX_TEXT_LENGTH),
                }
            )
        except Exception:
            _logger.exception("Cannot record a log record")
