"""Results of cell and notebook executions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .notebooks import CodeCell

__all__ = [
    "CellResult",
    "CellStatus",
    "KernelError",
    "NotebookResult",
    "NotebookStatus",
]


class CellStatus(StrEnum):
    """Outcome of one code cell."""

    passed = "passed"
    failed = "failed"
    expected_error = "expected-error"
    """Raised an error in a cell tagged ``raises-exception``."""

    skipped = "skipped"
    """Tagged ``skip-execution``, so never sent to the kernel."""

    empty = "empty"
    """Holds only whitespace, so never sent to the kernel."""

    timed_out = "timed-out"
    kernel_died = "kernel-died"
    not_run = "not-run"
    """Left out because an earlier cell failed."""

    @property
    def is_failure(self) -> bool:
        """Whether this outcome fails the notebook."""
        return self in {
            CellStatus.failed,
            CellStatus.timed_out,
            CellStatus.kernel_died,
        }


class NotebookStatus(StrEnum):
    """Outcome of one notebook execution."""

    passed = "passed"
    failed = "failed"
    cancelled = "cancelled"
    """The run was stopped while the notebook ran, and no cell failed."""


@dataclass(frozen=True)
class KernelError:
    """An error as the kernel reported it."""

    ename: str
    """Exception class name."""

    evalue: str
    """Exception value."""

    traceback: str
    """Traceback text with ANSI escapes stripped."""


@dataclass(frozen=True)
class CellResult:
    """Outcome of one code cell."""

    cell: CodeCell
    status: CellStatus
    duration: float = 0.0
    """Seconds from sending the request to the reply and idle status."""

    error: KernelError | None = None
    """The kernel's error, for failed, timed-out or expected errors."""

    message: str | None = None
    """One-line description of a failure, for logs and summaries."""


@dataclass
class NotebookResult:
    """Outcome of one notebook execution."""

    name: str
    """Notebook path relative to its root."""

    kernel: str | None = None
    """Name of the kernel that ran it."""

    cells: list[CellResult] = field(default_factory=list)
    duration: float = 0.0
    """Seconds from kernel acquisition to the last cell."""

    error: str | None = None
    """Failure outside any cell, such as an invalid notebook."""

    cancelled: bool = False
    """Whether the run was stopped before the notebook finished."""

    @property
    def status(self) -> NotebookStatus:
        """Failed if a cell or the notebook itself failed, else passed.

        A notebook stopped before its end without a failure is cancelled.
        """
        if self.error is not None or self.first_failure is not None:
            return NotebookStatus.failed
        if self.cancelled:
            return NotebookStatus.cancelled
        return NotebookStatus.passed

    @property
    def first_failure(self) -> CellResult | None:
        """The failing cell, if any."""
        for result in self.cells:
            if result.status.is_failure:
                return result
        return None

    @property
    def cells_run(self) -> int:
        """Number of cells sent to the kernel."""
        skipped = {CellStatus.skipped, CellStatus.empty, CellStatus.not_run}
        return sum(1 for r in self.cells if r.status not in skipped)
