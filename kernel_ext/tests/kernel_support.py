"""A real ipykernel driven by jupyter-client, for the extension's tests."""

from __future__ import annotations

import ast
import asyncio
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_client.manager import AsyncKernelManager

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

__all__ = [
    "ERROR_COLLECTOR",
    "Execution",
    "KernelSession",
    "nbsentry_metadata",
    "start_kernel",
]

# Run silently in each kernel: keeps every record of ERROR or above that
# the extension logs, so that a test can fail on the extension's own
# failures, which happen in another process.
ERROR_COLLECTOR = """
import logging as _logging
_nbsentry_errors = []
class _NbsentryErrorCollector(_logging.Handler):
    def emit(self, record):
        _nbsentry_errors.append(self.format(record))
_logging.getLogger("nbsentry_kernel").addHandler(
    _NbsentryErrorCollector(_logging.ERROR)
)
"""

EXTENSION_ARGUMENT = "--IPKernelApp.extensions=nbsentry_kernel"


def nbsentry_metadata(
    *,
    cell_id: str,
    notebook: str = "folder/test.ipynb",
    integrations: bool = False,
) -> dict[str, Any]:
    """Build the ``nbsentry`` object of a request, with fresh trace ids."""
    trace_id = os.urandom(16).hex()
    span_id = os.urandom(8).hex()
    return {
        "version": 1,
        "sentry-trace": f"{trace_id}-{span_id}-1",
        "baggage": f"sentry-trace_id={trace_id},sentry-sample_rate=1.0",
        "traceparent": f"00-{trace_id}-{span_id}-01",
        "notebook": notebook,
        "cell_id": cell_id,
        "cell_number": 1,
        "integrations": integrations,
    }


@dataclass
class Execution:
    """What the kernel sent for one execute request."""

    msg_id: str
    reply: dict[str, Any]
    reports: list[dict[str, Any]] = field(default_factory=list)
    report_messages: list[dict[str, Any]] = field(default_factory=list)
    iopub: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        """The one final report; fails unless there is exactly one."""
        finals = [r for r in self.reports if r["kind"] == "final"]
        assert len(finals) == 1, self.reports
        return finals[0]

    @property
    def partials(self) -> list[dict[str, Any]]:
        """The partial reports, in the order they arrived."""
        return [r for r in self.reports if r["kind"] == "partial"]

    @property
    def stdout(self) -> str:
        """Everything the cell printed to stdout."""
        return "".join(
            m["content"]["text"]
            for m in self.iopub
            if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )


class KernelSession:
    """A started kernel and its client."""

    def __init__(self, manager: AsyncKernelManager, client: Any) -> None:
        self.manager = manager
        self.client = client
        self.cell_counter = 0

    def send(
        self,
        code: str,
        *,
        nbsentry: dict[str, Any] | None,
        silent: bool = False,
        user_expressions: dict[str, str] | None = None,
    ) -> str:
        """Send an execute request and return its msg_id."""
        metadata: dict[str, Any] = {}
        if nbsentry is not None:
            metadata["cellId"] = nbsentry["cell_id"]
            metadata["nbsentry"] = nbsentry
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": user_expressions or {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        msg = self.client.session.msg(
            "execute_request", content, metadata=metadata
        )
        self.client.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    async def collect(
        self,
        msg_id: str,
        *,
        timeout: float = 30,
        on_iopub: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> Execution:
        """Read iopub until ``idle`` and the reply of one request."""
        iopub: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.client.get_iopub_msg()
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                iopub.append(msg)
                if on_iopub is not None:
                    await on_iopub(msg)
                if (
                    msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"
                ):
                    break
            while True:
                reply = await self.client.get_shell_msg()
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
        execution = Execution(msg_id=msg_id, reply=reply, iopub=iopub)
        for msg in iopub:
            if (
                msg["msg_type"] == "comm_open"
                and msg["content"]["target_name"] == "nbsentry.report"
            ):
                execution.report_messages.append(msg)
                execution.reports.append(msg["content"]["data"])
        return execution

    async def run(
        self,
        code: str,
        *,
        cell_id: str | None = None,
        report: bool = True,
        integrations: bool = False,
        timeout: float = 30,
    ) -> Execution:
        """Execute a cell, by default with the ``nbsentry`` object."""
        self.cell_counter += 1
        nbsentry = (
            nbsentry_metadata(
                cell_id=cell_id or f"cell-{self.cell_counter}",
                integrations=integrations,
            )
            if report
            else None
        )
        msg_id = self.send(code, nbsentry=nbsentry)
        return await self.collect(msg_id, timeout=timeout)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate a literal-valued expression silently, without hooks."""
        msg_id = self.send(
            "", nbsentry=None, silent=True, user_expressions={"v": expression}
        )
        execution = await self.collect(msg_id)
        value = execution.reply["content"]["user_expressions"]["v"]
        assert value["status"] == "ok", value
        return ast.literal_eval(value["data"]["text/plain"])

    async def execute_silently(self, code: str) -> None:
        """Run code with ``silent=True``, which fires no cell hooks."""
        msg_id = self.send(code, nbsentry=None, silent=True)
        execution = await self.collect(msg_id)
        assert execution.reply["content"]["status"] == "ok", execution.reply

    async def extension_errors(self) -> list[str]:
        """Return and forget the errors the extension logged so far."""
        errors = await self.evaluate(
            "[_nbsentry_errors.copy(), _nbsentry_errors.clear()][0]"
        )
        assert isinstance(errors, list)
        return [str(error) for error in errors]


@asynccontextmanager
async def start_kernel(
    cwd: Path, *, extension_argument: bool = True
) -> AsyncIterator[KernelSession]:
    """Start a kernel with the venv's Python, optionally with the extension.

    The ``python3`` kernel spec runs ``python``, which jupyter-client
    replaces with its own ``sys.executable``, so the kernel uses the
    same virtualenv as the tests.
    """
    manager = AsyncKernelManager(kernel_name="python3")
    arguments = [EXTENSION_ARGUMENT] if extension_argument else []
    await manager.start_kernel(extra_arguments=arguments, cwd=str(cwd))
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        session = KernelSession(manager, client)
        await session.execute_silently(ERROR_COLLECTOR)
        yield session
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
