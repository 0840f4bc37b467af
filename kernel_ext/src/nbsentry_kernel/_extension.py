"""The IPython extension: hooks around each cell that send the reports."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import _cell
from ._breadcrumbs import BreadcrumbRecorder
from ._cell import CellRecord, Request, set_current_cell
from ._exceptions import (
    ExceptionReport,
    describe_exception,
    describe_syntax_error,
)
from ._limits import MAX_NAME_LENGTH, MAX_SPANS, MAX_TEXT_LENGTH
from ._partial import PartialReporter
from ._report import ReportSender, build_report
from ._request import parse_request
from ._sentry import SentryBridge
from ._sources import CellRef, CellSources
from ._text import clip, safe_str

__all__ = ["Extension", "current_extension", "load", "unload"]

_logger = logging.getLogger(__name__)


class Extension:
    """The extension's hooks and state for one IPython shell.

    Parameters
    ----------
    shell
        The IPython shell of an ipykernel kernel.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.kernel = shell.kernel
        self._get_parent = self.kernel.get_parent
        self._sender = ReportSender(self.kernel)
        self.partial = PartialReporter(self._sender)
        self._sources = CellSources(shell)
        self._breadcrumbs = BreadcrumbRecorder()
        self._sentry = SentryBridge()
        self._app_root = str(Path.cwd())
        self._nested_runs = 0
        # The thread that runs the recorded cell, and the request whose
        # cell finished last: other runs of that request are not recorded.
        self._cell_thread = 0
        self._finished_msg_id: str | None = None
        self._partial_started = False
        # ipykernel's _last_traceback when a report last carried an
        # exception, to tell a failed display from a flag left over.
        self._reported_traceback: object = None

    def register(self) -> None:
        """Register the cell hooks and wrap the warning and log hooks."""
        events = self.shell.events
        events.register("pre_run_cell", self.pre_run_cell)
        events.register("post_run_cell", self.post_run_cell)
        self._breadcrumbs.install()

    def unregister(self) -> None:
        """Remove every hook and stop the thread and client it started."""
        self._unregister_event("pre_run_cell", self.pre_run_cell)
        self._unregister_event("post_run_cell", self.post_run_cell)
        self._breadcrumbs.uninstall()
        self.partial.stop()
        self._partial_started = False
        set_current_cell(None)
        self._sentry.close()

    def _unregister_event(self, name: str, callback: Any) -> None:
        try:
            self.shell.events.unregister(name, callback)
        except ValueError:
            _logger.debug("Hook was not registered", extra={"hook": name})

    def pre_run_cell(self, info: Any) -> None:
        """Start recording a cell if its request contains ``nbsentry``."""
        # The common path runs inline, and it reads and sets _cell._current
        # directly, because inside a kernel each Python call it saved took
        # about 0.3 us.
        try:
            parent = self._get_parent("shell")
            request = parse_request(parent)

            # The compiler names the cell's file with the count before the
            # shell increments it, which happens before this hook when the
            # cell is stored in the history.
            number = self.shell.execution_count - (
                1 if info.store_history else 0
            )
            if request is None:
                self._remember_unreported(info, number)
                return
            self._sources.remember(
                info.raw_cell,
                info.transformed_cell or info.raw_cell,
                number,
                request.cell_id,
                request.notebook,
            )

            running = _cell._current  # noqa: SLF001
            if running is not None and not self._drop_running(
                running, request
            ):
                return
            if request.msg_id == self._finished_msg_id:
                # A hook of the notebook's own runs a cell after the
                # request's cell, which has been reported already.
                return
            self._nested_runs = 0
            self._cell_thread = threading.get_ident()
            # Positional arguments: with keywords this call took 1.6 times as
            # long in a tight loop.
            cell = CellRecord(
                request, self._sender.pack_parent(parent), number, time.time()
            )
            _cell._current = cell  # noqa: SLF001
            if request.integrations:
                self._start_sentry(cell)
            if not self._partial_started:
                self.partial.ensure_started()
                self._partial_started = True
        except Exception:
            _logger.exception("Cannot start recording a cell")

    def post_run_cell(self, result: Any) -> None:
        """Send the final report of a recorded cell."""
        cell = _cell._current  # noqa: SLF001
        if cell is None or threading.get_ident() != self._cell_thread:
            # Another thread of the notebook ran this cell, so the
            # recorded cell is still running.
            return
        if self._nested_runs:
            self._nested_runs -= 1
            return
        _cell._current = None  # noqa: SLF001
        self._finished_msg_id = cell.request.msg_id
        try:
            self._finish_cell(cell, result)
        except Exception:
            _logger.exception("Cannot send the report of a cell")
        finally:
            cell.finished = True

    def _remember_unreported(self, info: Any, number: int) -> None:
        """Remember the source of a cell that sends no report."""
        cell_id = info.cell_id
        if isinstance(cell_id, str) and cell_id:
            self._sources.remember(
                info.raw_cell,
                info.transformed_cell or info.raw_cell,
                number,
                cell_id,
                None,
            )

    def _drop_running(self, running: CellRecord, request: Request) -> bool:
        """Drop the report of a cell still running, unless it runs this one.

        Returns `False` when the new cell runs inside the running one, for
        the same request, so that the new cell must not be recorded.
        """
        if running.request.msg_id == request.msg_id:
            # The cell calls run_cell itself, or a thread of its own does:
            # the outer run reports. Only the cell's own thread ends its
            # nested runs before the cell ends.
            if threading.get_ident() == self._cell_thread:
                self._nested_runs += 1
            return False
        _logger.warning(
            "Previous cell never finished, dropping its report",
            extra={"msg_id": running.request.msg_id},
        )
        running.finished = True
        return True

    def _start_sentry(self, cell: CellRecord) -> None:
        try:
            sentry = self._sentry.start_cell(cell.request)
        except Exception:
            _logger.exception("Cannot start the sentry-sdk transaction")
            return
        cell.sentry = sentry

    def _finish_cell(self, cell: CellRecord, result: Any) -> None:
        end = time.time()
        sentry_spans: list[dict[str, Any]] = []
        sentry_dropped = 0
        if cell.sentry is not None:
            try:
                with cell.lock:
                    user_span_ids = {span["span_id"] for span in cell.spans}
                sentry_spans, sentry_dropped = cell.sentry.finish(
                    user_span_ids
                )
            except Exception:
                _logger.exception("Cannot collect sentry-sdk spans")
        if (
            result is not None
            and getattr(result, "error_before_exec", None) is None
            and result.error_in_exec is None
        ):
            # What _describe returns for a cell that raised nothing.
            exception = None
            if getattr(
                self.shell, "_last_traceback_during_displayhook", False
            ):
                exception = self._describe_display_error(cell)
        else:
            exception = self._describe(cell, result)
        if exception is not None:
            self._reported_traceback = getattr(
                self.shell, "_last_traceback", None
            )
        with cell.lock:
            cell.finished = True
            cell.dropped_spans += sentry_dropped
            for span in sentry_spans:
                if len(cell.spans) >= MAX_SPANS:
                    cell.dropped_spans += 1
                else:
                    cell.spans.append(span)
            end = max(end, cell.start)
            if (
                exception is None
                and cell.sent_spans == len(cell.spans)
                and not cell.breadcrumbs
            ):
                self._sender.send_plain_final(cell, end)
                return
            spans = cell.spans[cell.sent_spans :]
            cell.sent_spans = len(cell.spans)
            report = build_report(
                cell,
                kind="final",
                end=end,
                spans=spans,
                breadcrumbs=list(cell.breadcrumbs),
                exception=exception,
            )
            self._sender.send_before_idle(cell.packed_parent, report)

    def _describe(
        self, cell: CellRecord, result: Any
    ) -> ExceptionReport | None:
        before = getattr(result, "error_before_exec", None)
        if result is None:
            # ipykernel passes None when a top-level await cell was
            # cancelled; the exception is still propagating.
            exc = sys.exc_info()[1]
        else:
            exc = before if before is not None else result.error_in_exec
        if not isinstance(exc, BaseException):
            return None
        return self._describe_exception(
            cell, exc, compiling=before is not None
        )

    def _describe_display_error(
        self, cell: CellRecord
    ) -> ExceptionReport | None:
        """Describe the exception raised while displaying the cell's result.

        IPython 9 catches an exception that a formatter raises in the
        displayhook, such as one from the result's ``__repr__``, and passes
        it to ``showtraceback``, which stores it in ``sys.last_value``. The
        cell's ``error_in_exec`` stays unset. ipykernel 7.4's
        ``_showtraceback`` then sets ``_last_traceback_during_displayhook``
        and ``_last_traceback``, and the execute reply has status error.

        Returns `None` when ``_last_traceback`` belongs to an exception
        already reported. ipykernel 7.4 resets the flag only in its
        ``run_cell``, but runs a cell with top-level ``await`` through
        ``run_cell_async``. So when such a cell follows a failed display
        and passes, ipykernel replies error but the report has status ok.
        """
        last_traceback = getattr(self.shell, "_last_traceback", None)
        if (
            last_traceback is None
            or last_traceback is self._reported_traceback
        ):
            return None
        exc = getattr(sys, "last_value", None)
        if not isinstance(exc, BaseException):
            return None
        return self._describe_exception(cell, exc, compiling=False)

    def _describe_exception(
        self, cell: CellRecord, exc: BaseException, *, compiling: bool
    ) -> ExceptionReport:
        """Describe an exception, or only its type and value if that fails.

        ``compiling`` is true for an exception raised before the cell ran,
        where a `SyntaxError` names the cell's line itself.
        """
        request = cell.request
        try:
            if compiling and isinstance(exc, SyntaxError):
                return describe_syntax_error(
                    exc,
                    self._sources,
                    CellRef(request.cell_id, request.notebook),
                    self._app_root,
                )
            return describe_exception(
                exc, self._sources, request.notebook, self._app_root
            )
        except Exception:
            _logger.exception("Cannot describe the exception of a cell")
        return ExceptionReport(values=[_bare_exception(exc)])


def _bare_exception(exc: BaseException) -> dict[str, Any]:
    """Describe an exception without frames, when describing it failed."""
    return {
        "type": clip(type(exc).__name__, MAX_NAME_LENGTH),
        "module": clip(str(type(exc).__module__), MAX_NAME_LENGTH),
        "value": safe_str(exc, MAX_TEXT_LENGTH),
        "mechanism": {
            "type": "nbsentry",
            "handled": False,
            "exception_id": 0,
            "parent_id": None,
            "source": None,
            "is_exception_group": False,
        },
        "frames": [],
    }


_extension: Extension | None = None


def current_extension() -> Extension | None:
    """Return the loaded extension, if any."""
    return _extension


def load(shell: Any) -> None:
    """Load the extension into a shell; loading it again does nothing."""
    global _extension  # noqa: PLW0603 - one extension per process
    try:
        if _extension is not None:
            if _extension.shell is shell:
                return
            _extension.unregister()
            _extension = None
        if getattr(shell, "kernel", None) is None:
            _logger.warning("Not running in ipykernel, reports disabled")
            return
        extension = Extension(shell)
        extension.register()
        _extension = extension
    except Exception:
        _logger.exception("Cannot load the nbsentry kernel extension")


def unload(shell: Any) -> None:
    """Remove every hook that `load` installed in the shell."""
    global _extension
    try:
        if _extension is None or _extension.shell is not shell:
            return
        extension, _extension = _extension, None
        extension.unregister()
    except Exception:
        _logger.exception("Cannot unload the nbsentry kernel extension")
