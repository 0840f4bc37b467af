"""Kernel messages of one ``execute_request``, independent of transport.

Backends send the request and feed every message they receive to an
`ExecutionCollector`, which keeps the ones whose parent is the request.
The request is complete once the kernel has sent both its
``execute_reply`` and its ``idle`` status, in either order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import structlog

from .models import KernelError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "COLLECTED_TYPES",
    "REPORT_TARGET",
    "DeferredWork",
    "ExecuteOutcome",
    "ExecutionCollector",
    "OutcomeStatus",
    "build_execute_content",
    "strip_ansi",
]

REPORT_TARGET = "nbsentry.report"
"""Comm target name of reports sent by the kernel extension."""

COLLECTED_TYPES = frozenset({"execute_reply", "status", "error", "comm_open"})
"""Message types whose content `ExecutionCollector` reads."""

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

_logger = structlog.get_logger("nbsentry")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences, such as IPython's colors."""
    return _ANSI.sub("", text)


def build_execute_content(code: str) -> dict[str, Any]:
    """Build the content of an ``execute_request`` as JupyterLab sends it.

    ``allow_stdin`` is off: nothing replies to ``input()``, so the kernel
    raises at once instead of waiting forever.
    """
    return {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


class OutcomeStatus(StrEnum):
    """Final state of an ``execute_request``."""

    ok = "ok"
    error = "error"
    aborted = "aborted"
    """The kernel aborted the request behind an earlier failure."""

    timed_out = "timed-out"
    died = "died"
    """The kernel died before replying."""


@dataclass
class ExecuteOutcome:
    """Everything the runner learned from one ``execute_request``."""

    status: OutcomeStatus
    msg_id: str = ""
    """The ``msg_id`` of the request."""

    execution_count: int | None = None
    error: KernelError | None = None
    reports: list[Any] = field(default_factory=list)
    """Raw ``data`` of each ``nbsentry.report`` comm, not yet validated."""

    kernel_responsive: bool = True
    """False if the kernel ignored an interrupt after a timeout."""

    sent: bool = True
    """False if the kernel had died before the request could be sent."""

    kernel_output: str | None = None
    """End of the kernel process's own output, kept when it died."""


class DeferredWork:
    """Work that runs at most once, when a backend chooses, during a request.

    Parameters
    ----------
    work
        The work, or `None` for nothing.
    """

    def __init__(self, work: Callable[[], object] | None) -> None:
        self._work = work
        self._error: Exception | None = None

    def run(self) -> None:
        """Run the work unless it has run, keeping its exception."""
        work, self._work = self._work, None
        if work is None:
            return
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - raised again by finish
            self._error = exc

    def finish(self) -> None:
        """Run the work if it has not run, then raise what it raised."""
        self.run()
        error, self._error = self._error, None
        if error is not None:
            raise error


class ExecutionCollector:
    """Collect the messages of one ``execute_request``.

    Parameters
    ----------
    msg_id
        The ``msg_id`` of the request.
    """

    def __init__(self, msg_id: str) -> None:
        self.msg_id = msg_id
        self.reply: dict[str, Any] | None = None
        self.idle = False
        self.error: KernelError | None = None
        self.reports: list[Any] = []
        self.ignored = 0

    @property
    def done(self) -> bool:
        """Whether both the reply and the idle status have arrived."""
        return self.reply is not None and self.idle

    def feed(self, msg: dict[str, Any]) -> None:
        """Take one message from any channel.

        Parameters
        ----------
        msg
            A deserialized Jupyter message.
        """
        parent = msg.get("parent_header") or {}
        if parent.get("msg_id") != self.msg_id:
            self.ignored += 1
            return
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        content = msg.get("content") or {}
        if msg_type == "execute_reply":
            self.reply = content
        elif msg_type == "status":
            if content.get("execution_state") == "idle":
                self.idle = True
        elif msg_type == "error":
            self.error = _kernel_error(content)
        elif (
            msg_type == "comm_open"
            and content.get("target_name") == REPORT_TARGET
        ):
            self.reports.append(content.get("data"))

    def outcome(self) -> ExecuteOutcome:
        """Build the outcome of a completed request."""
        reply = self.reply or {}
        status_text = reply.get("status")
        error = self.error
        if status_text == "ok":
            status = OutcomeStatus.ok
        elif status_text == "aborted":
            status = OutcomeStatus.aborted
        else:
            status = OutcomeStatus.error
            if error is None:
                # Some kernels put the error only in the reply.
                error = _kernel_error(reply)
        count = reply.get("execution_count")
        return ExecuteOutcome(
            status=status,
            msg_id=self.msg_id,
            execution_count=count if isinstance(count, int) else None,
            error=error,
            reports=self.reports,
        )

    def interrupted(
        self, status: OutcomeStatus, *, responsive: bool
    ) -> ExecuteOutcome:
        """Build the outcome of a request that timed out or crashed.

        Parameters
        ----------
        status
            `OutcomeStatus.timed_out` or `OutcomeStatus.died`.
        responsive
            Whether the kernel replied after the interrupt.
        """
        count = (self.reply or {}).get("execution_count")
        return ExecuteOutcome(
            status=status,
            msg_id=self.msg_id,
            execution_count=count if isinstance(count, int) else None,
            error=self.error,
            reports=self.reports,
            kernel_responsive=responsive,
        )


def _kernel_error(content: dict[str, Any]) -> KernelError:
    lines = content.get("traceback") or []
    if not isinstance(lines, list):
        lines = [str(lines)]
    return KernelError(
        ename=str(content.get("ename", "Error")),
        evalue=str(content.get("evalue", "")),
        traceback=strip_ansi("\n".join(str(line) for line in lines)),
    )
