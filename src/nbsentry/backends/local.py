"""Kernels on this machine, started through jupyter-client."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import platform
import queue
import tempfile
from contextlib import asynccontextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import zmq
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager

from nbsentry.exceptions import KernelStartError
from nbsentry.execution import (
    COLLECTED_TYPES,
    DeferredWork,
    ExecuteOutcome,
    ExecutionCollector,
    OutcomeStatus,
    build_execute_content,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["LocalBackend", "LocalKernel"]

EXTENSION_ARGUMENT = "--IPKernelApp.extensions=nbsentry_kernel"
"""Kernel argument that loads the nbsentry kernel extension."""

INTERRUPT_GRACE = 10.0
"""Seconds a kernel has to reply after an interrupt before it is hung."""

_MESSAGE_PARTS = 5
"""Signature, header, parent header, metadata and content."""

OUTPUT_TAIL_BYTES = 4096
"""Bytes of the kernel process's own output kept for error messages."""

_POLL_INTERVAL = 1.0
"""Seconds of silence between checks that the kernel process lives."""

_HIDDEN_VARIABLES = ("SENTRY_DSN", "NBSENTRY_DSN")
"""Environment variables kept from kernels, so notebooks cannot read them."""

_logger = structlog.get_logger("nbsentry")


class _Wait(Enum):
    """Outcome of waiting for a request's messages."""

    done = "done"
    deadline = "deadline"
    died = "died"


class LocalKernel:
    """A kernel process on this machine.

    Parameters
    ----------
    manager
        The started kernel manager.
    client
        A client of that kernel with channels started.
    name
        Kernel name.
    output
        File that receives the kernel process's stdout and stderr.
    """

    def __init__(
        self,
        manager: AsyncKernelManager,
        client: Any,
        name: str,
        output: Path,
    ) -> None:
        self._manager = manager
        self._client = client
        self._name = name
        self._output = output
        self._shadows: dict[int, zmq.Socket[bytes]] = {}
        self._busy = False

    @property
    def name(self) -> str:
        """Kernel name, such as ``python3``."""
        return self._name

    @property
    def has_extension(self) -> bool:
        """Whether the kernel was started with the extension argument."""
        return True

    async def is_alive(self) -> bool:
        """Check whether the kernel process is still running."""
        return bool(await self._manager.is_alive())

    async def execute(
        self,
        code: str,
        metadata: dict[str, Any],
        *,
        timeout: float | None,
        meanwhile: Callable[[], object] | None = None,
    ) -> ExecuteOutcome:
        """Run code and wait for both the reply and the idle status.

        ``meanwhile`` runs when the request's first kernel report arrives.
        The extension's final report leaves as the cell ends, and then
        ipykernel 7.4 sleeps 0.5 ms (``Kernel._execute_sleep``) before it
        replies. So the work mostly overlaps that sleep instead of taking
        CPU from a busy kernel.

        See `nbsentry.backends.Kernel.execute`.
        """
        work = DeferredWork(meanwhile)
        try:
            return await self._execute(code, metadata, timeout, work)
        finally:
            work.finish()

    async def _execute(
        self,
        code: str,
        metadata: dict[str, Any],
        timeout: float | None,
        work: DeferredWork,
    ) -> ExecuteOutcome:
        if not await self.is_alive():
            # It died after the previous request completed, so this cell
            # is not to blame; the outcome records that it was never sent.
            return ExecuteOutcome(
                status=OutcomeStatus.died,
                sent=False,
                kernel_responsive=False,
                kernel_output=self.output_tail(),
            )
        msg = self._client.session.msg(
            "execute_request", build_execute_content(code), metadata=metadata
        )
        self._client.shell_channel.send(msg)
        self._busy = True
        collector = ExecutionCollector(msg["header"]["msg_id"])
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        waited = await self._wait(collector, deadline, work)
        if waited is _Wait.done:
            self._busy = False
            return collector.outcome()
        if waited is _Wait.died:
            return self._died(collector)
        _logger.info(
            "Interrupting kernel after cell timeout", kernel=self.name
        )
        await self._manager.interrupt_kernel()
        waited = await self._wait(
            collector, loop.time() + INTERRUPT_GRACE, work
        )
        if waited is _Wait.died:
            return self._died(collector)
        self._busy = waited is not _Wait.done
        return collector.interrupted(
            OutcomeStatus.timed_out, responsive=not self._busy
        )

    def _died(self, collector: ExecutionCollector) -> ExecuteOutcome:
        outcome = collector.interrupted(OutcomeStatus.died, responsive=False)
        outcome.kernel_output = self.output_tail()
        return outcome

    def output_tail(self) -> str | None:
        """Return the end of the kernel process's stdout and stderr.

        Returns `None` if the process wrote nothing.
        """
        try:
            with self._output.open("rb") as file:
                file.seek(0, os.SEEK_END)
                size = file.tell()
                file.seek(max(size - OUTPUT_TAIL_BYTES, 0))
                tail = file.read()
        except OSError:
            return None
        text = tail.decode("utf-8", "replace").strip()
        return text or None

    async def _receive(self, channel: Any, timeout: float) -> dict[str, Any]:
        """Receive one message, decoding only what the runner reads.

        jupyter-client's ``get_msg`` also parses every date in the headers
        and decodes every content, such as large display outputs, which
        made up most of the runner's time per cell. The signature is still
        checked over the whole message.

        Raises
        ------
        queue.Empty
            Raised if no message arrives within ``timeout`` seconds.
        ValueError
            Raised if the signature is invalid or a part is not JSON.
        """
        socket = channel.socket
        shadow = self._shadows.get(id(socket))
        if shadow is None:
            # A plain socket on the same ZeroMQ socket reads a waiting
            # message at once, without the futures of zmq.asyncio.
            shadow = self._shadows[id(socket)] = zmq.Socket.shadow(
                socket.underlying
            )
        try:
            frames = shadow.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            if not await socket.poll(int(timeout * 1000)):
                raise queue.Empty from None
            frames = shadow.recv_multipart(zmq.NOBLOCK)
        return decode_message(self._client.session, frames)

    async def _wait(
        self,
        collector: ExecutionCollector,
        deadline: float | None,
        work: DeferredWork,
    ) -> _Wait:
        """Feed messages to the collector until it is done or cannot be."""
        loop = asyncio.get_running_loop()
        # Idle on iopub comes after the reply on shell, so once idle is in,
        # the reply is waiting on the shell socket.
        steps = (
            (self._client.iopub_channel, False),
            (self._client.shell_channel, True),
        )
        for channel, needs_reply in steps:
            while not (collector.done if needs_reply else collector.idle):
                wait = _POLL_INTERVAL
                if deadline is not None:
                    wait = min(wait, max(deadline - loop.time(), 0.0))
                try:
                    msg = await self._receive(channel, wait)
                except queue.Empty:
                    if deadline is not None and loop.time() >= deadline:
                        return _Wait.deadline
                    if not await self.is_alive():
                        return _Wait.died
                    continue
                except (ValueError, TypeError, RecursionError) as exc:
                    # The message was received but cannot be decoded, such
                    # as JSON nested deeper than Python's recursion limit.
                    # An output is lost; a reply or idle would end in the
                    # timeout or the death check.
                    _logger.warning(
                        "Kernel message dropped: cannot decode it",
                        kernel=self.name,
                        error=type(exc).__name__,
                    )
                    continue
                collector.feed(msg)
                if collector.reports:
                    work.run()
                late = deadline is not None and loop.time() >= deadline
                if late and not collector.done:
                    return _Wait.deadline
        return _Wait.done

    async def stop(self) -> None:
        """Stop the kernel; kill it if it is still running a request.

        A kernel that is idle gets a shutdown request and some seconds to
        exit. One still busy (the run was cancelled, or it ignored an
        interrupt) would only reply once its cell ends, so it is killed.
        """
        self._client.stop_channels()
        kill = self._busy or not await self.is_alive()
        await self._manager.shutdown_kernel(now=kill)


class LocalBackend:
    """Start kernels on this machine with jupyter-client.

    Parameters
    ----------
    startup_timeout
        Seconds a kernel has to become ready.
    load_extension
        Whether to load the nbsentry kernel extension into each kernel.
    """

    def __init__(
        self, *, startup_timeout: float = 60.0, load_extension: bool = True
    ) -> None:
        self._startup_timeout = startup_timeout
        self._load_extension = load_extension
        self._spare: tuple[str, Path, LocalKernel] | None = None
        self._sockets: tempfile.TemporaryDirectory[str] | None = None
        self._started = 0

    def _socket_dir(self) -> Path:
        if self._sockets is None:
            self._sockets = tempfile.TemporaryDirectory(prefix="nbsentry-")
        return Path(self._sockets.name)

    @property
    def name(self) -> str:
        """Backend name for the ``backend`` tag."""
        return "local"

    @property
    def node(self) -> str | None:
        """Host name of this machine."""
        return platform.node() or None

    @property
    def image(self) -> str | None:
        """Local kernels run in no image."""
        return None

    def check_kernel(self, kernel_name: str) -> None:
        """Check that a kernel spec exists.

        Raises
        ------
        KernelStartError
            Raised if no kernel spec has that name, listing those that do.
        """
        specs = KernelSpecManager().find_kernel_specs()
        if kernel_name not in specs:
            raise KernelStartError(_unknown_kernel(kernel_name, specs))

    async def startup(self, kernel_name: str, cwd: Path) -> None:
        """Start a kernel that the first notebook will use if it matches.

        Parameters
        ----------
        kernel_name
            Kernel name.
        cwd
            Working directory of the kernel.
        """
        kernel = await self._start(kernel_name, cwd)
        self._spare = (kernel_name, cwd, kernel)

    async def shutdown(self) -> None:
        """Stop the spare kernel, if one is left."""
        if self._spare is not None:
            _, _, kernel = self._spare
            self._spare = None
            await kernel.stop()
        if self._sockets is not None:
            self._sockets.cleanup()
            self._sockets = None

    @asynccontextmanager
    async def kernel(
        self, kernel_name: str, cwd: Path
    ) -> AsyncIterator[LocalKernel]:
        """Provide a fresh kernel, stopped when the context exits.

        Raises
        ------
        KernelStartError
            Raised if the kernel spec does not exist or the kernel does not
            become ready in time.
        """
        kernel: LocalKernel | None = None
        if self._spare is not None:
            name, directory, spare = self._spare
            if name == kernel_name and directory == cwd:
                kernel = spare
                self._spare = None
        if kernel is None:
            kernel = await self._start(kernel_name, cwd)
        try:
            yield kernel
        finally:
            await kernel.stop()

    async def _start(self, kernel_name: str, cwd: Path) -> LocalKernel:
        # IPC sockets are files in a folder only this user can open, where
        # TCP sockets would carry code and outputs unencrypted. The path is
        # absolute because the kernel resolves it from its own directory.
        self._started += 1
        manager = AsyncKernelManager(
            kernel_name=kernel_name,
            transport="ipc",
            ip=str(self._socket_dir() / f"k{self._started}"),
        )

        env = {
            k: v for k, v in os.environ.items() if k not in _HIDDEN_VARIABLES
        }
        # The kernel's own stdout and stderr go to a file, not into the
        # runner's output. They hold tracebacks of its start-up and writes
        # to file descriptors 1 and 2, and their end is attached when the
        # kernel dies.
        output = self._socket_dir() / f"k{self._started}.log"
        try:
            extra = []
            if self._load_extension and _is_ipykernel(manager):
                extra.append(EXTENSION_ARGUMENT)
            with output.open("wb") as file:
                await manager.start_kernel(
                    extra_arguments=extra,
                    cwd=str(cwd),
                    env=env,
                    stdout=file,
                    stderr=file,
                )
        except NoSuchKernel as exc:
            specs = manager.kernel_spec_manager.find_kernel_specs()
            msg = _unknown_kernel(kernel_name, specs)
            raise KernelStartError(msg) from exc
        except OSError as exc:
            msg = f"Cannot start kernel {kernel_name!r}: {exc}"
            raise KernelStartError(msg) from exc

        client = manager.client()
        client.start_channels()
        try:
            # jupyter-client checks its own timeout once a second, so a
            # shorter limit needs a timer of its own.
            await asyncio.wait_for(
                client.wait_for_ready(timeout=self._startup_timeout),
                self._startup_timeout,
            )
        except (RuntimeError, TimeoutError) as exc:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)
            msg = (
                f"Kernel {kernel_name!r} did not become ready within"
                f" {self._startup_timeout:g} s"
            )
            if str(exc):
                msg += f": {exc}"
            msg += "; raise --startup-timeout if it is slow to start"
            kernel = LocalKernel(manager, client, kernel_name, output)
            tail = kernel.output_tail()
            if tail:
                msg += f"\nLast output of the kernel process:\n{tail}"
            raise KernelStartError(msg) from exc

        _logger.debug("Kernel started", kernel=kernel_name, cwd=str(cwd))
        return LocalKernel(manager, client, kernel_name, output)


def decode_message(session: Any, frames: list[bytes]) -> dict[str, Any]:
    """Decode a Jupyter message's header, parent and, if read, content.

    Parameters
    ----------
    session
        The client's ``jupyter_client.session.Session``, for the key.
    frames
        The message's frames as received from the socket.

    Raises
    ------
    ValueError
        Raised if the message is malformed, its signature is invalid or a
        decoded part is not JSON.
    """
    _, parts = session.feed_identities(frames)
    if len(parts) < _MESSAGE_PARTS:
        msg = "malformed message: fewer than five parts"
        raise ValueError(msg)
    if session.auth is not None and not hmac.compare_digest(
        parts[0], session.sign(parts[1:_MESSAGE_PARTS])
    ):
        msg = "invalid message signature"
        raise ValueError(msg)
    header = _load_json(parts[1])
    msg_type = header.get("msg_type")
    content = _load_json(parts[4]) if msg_type in COLLECTED_TYPES else {}
    return {
        "header": header,
        "msg_type": msg_type,
        "parent_header": _load_json(parts[2]),
        "content": content,
    }


def _load_json(part: bytes) -> dict[str, Any]:
    # Like jupyter-client, replace bytes that are not UTF-8: a message
    # dropped for one bad character in an error text could be the reply.
    value = json.loads(part.decode("utf-8", "replace"))
    if not isinstance(value, dict):
        msg = "message part is not a JSON object"
        raise TypeError(msg)
    return value


def _is_ipykernel(manager: AsyncKernelManager) -> bool:
    """Check whether a kernel spec starts ipykernel, which loads extensions."""
    spec = manager.kernel_spec
    return spec is not None and "ipykernel" in " ".join(spec.argv)


def _unknown_kernel(kernel_name: str, specs: dict[str, str]) -> str:
    installed = ", ".join(sorted(specs)) or "none"
    return (
        f"Kernel {kernel_name!r} not found; installed kernels: {installed}."
        " Pick one with --kernel, or install the kernel spec."
    )
