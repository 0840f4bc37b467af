"""Interfaces every kernel backend implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from nbsentry.execution import ExecuteOutcome

__all__ = ["Kernel", "KernelBackend"]


class Kernel(Protocol):
    """A running kernel that executes one request at a time."""

    @property
    def name(self) -> str:
        """Kernel name, such as ``python3``."""

    @property
    def has_extension(self) -> bool:
        """Whether the kernel loaded the nbsentry kernel extension.

        Backends that cannot tell return true; the runner then notices a
        missing extension when no report arrives.
        """

    async def execute(
        self,
        code: str,
        metadata: dict[str, Any],
        *,
        timeout: float | None,
        meanwhile: Callable[[], object] | None = None,
    ) -> ExecuteOutcome:
        """Run code and wait for both the reply and the idle status.

        Parameters
        ----------
        code
            The cell source.
        metadata
            Metadata of the ``execute_request``.
        timeout
            Seconds before the kernel is interrupted, or `None`.
        meanwhile
            Work of the runner's own to do once while the kernel runs the
            request, such as attaching earlier cells' reports. The
            backend calls it when it expects the kernel to be busy without
            it, and at the latest before returning. An exception from it
            propagates once the request has ended.

        Returns
        -------
        ExecuteOutcome
            The reply, error, reports and how the request ended. A timeout
            or a kernel death is an outcome, not an exception.
        """


class KernelBackend(Protocol):
    """A place that starts kernels: this machine, a server, a hub."""

    @property
    def name(self) -> str:
        """Backend name for the ``backend`` tag, such as ``local``."""

    @property
    def node(self) -> str | None:
        """Host that runs the kernels, for the ``node`` tag."""

    @property
    def image(self) -> str | None:
        """Lab image that runs the kernels, for the ``image`` tag."""

    async def startup(self, kernel_name: str, cwd: Path) -> None:
        """Prepare the backend and start a first kernel.

        Parameters
        ----------
        kernel_name
            Kernel the first notebook will most likely use.
        cwd
            Working directory of the first notebook.
        """

    async def shutdown(self) -> None:
        """Stop every kernel the backend still runs."""

    def kernel(
        self, kernel_name: str, cwd: Path
    ) -> AbstractAsyncContextManager[Kernel]:
        """Provide a fresh kernel, stopped when the context exits.

        Parameters
        ----------
        kernel_name
            Name of the kernel spec.
        cwd
            Working directory of the kernel.
        """
