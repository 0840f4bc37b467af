"""Exceptions raised by the nbsentry runner."""

from __future__ import annotations

__all__ = [
    "CellTimeoutError",
    "ConfigError",
    "InvalidNotebookError",
    "KernelDiedError",
    "KernelStartError",
    "NbsentryError",
    "ReportRejectedError",
    "SpoolLockedError",
]


class NbsentryError(Exception):
    """Base of every exception the runner raises.

    Parameters
    ----------
    message
        What failed, in one sentence.
    notebook
        Path of the notebook relative to its root, if one was running.
    cell
        Cell id, or code-cell number when the notebook has no ids.
    """

    def __init__(
        self,
        message: str,
        *,
        notebook: str | None = None,
        cell: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.notebook = notebook
        self.cell = cell

    def __str__(self) -> str:
        where = []
        if self.notebook is not None:
            where.append(f"notebook {self.notebook}")
        if self.cell is not None:
            where.append(f"cell {self.cell}")
        if not where:
            return self.message
        return f"{self.message} ({', '.join(where)})"

    def to_sentry_tags(self) -> dict[str, str]:
        """Return the notebook and cell as Sentry tags."""
        tags = {}
        if self.notebook is not None:
            tags["notebook"] = self.notebook
        if self.cell is not None:
            tags["cell"] = self.cell
        return tags


class ConfigError(NbsentryError):
    """Raised if a configuration value is invalid."""


class SpoolLockedError(ConfigError):
    """Raised if the spool folder cannot be locked for sending.

    Another ``send-spool`` holds the lock, or the lock file cannot be
    created. It is a `ConfigError`, so the CLI reports it as a usage error.
    """


class InvalidNotebookError(NbsentryError):
    """Raised if a notebook cannot be read or is not valid nbformat."""


class KernelStartError(NbsentryError):
    """Raised if a kernel fails to start or never becomes ready."""


class KernelDiedError(NbsentryError):
    """Raised if the kernel process dies while a cell runs."""


class CellTimeoutError(NbsentryError):
    """Raised if a cell runs past the cell timeout."""


class ReportRejectedError(NbsentryError):
    """Raised if a kernel report fails validation.

    Parameters
    ----------
    reason
        Why the report was rejected.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"Kernel report rejected: {reason}")
        self.reason = reason
