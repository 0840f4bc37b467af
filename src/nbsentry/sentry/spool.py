"""Spool directory: envelopes written when no DSN is set, sent later."""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from sentry_sdk.consts import EndpointType
from sentry_sdk.transport import Transport
from sentry_sdk.utils import BadDsn, Dsn

from nbsentry.exceptions import ConfigError, SpoolLockedError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sentry_sdk.envelope import Envelope

__all__ = [
    "SendSummary",
    "SpoolTransport",
    "check_spool",
    "envelope_endpoint",
    "send_spool",
    "spool_files",
]

_logger = structlog.get_logger("nbsentry")


def check_spool(directory: Path) -> None:
    """Create the spool directory and check that files can be written.

    Raises
    ------
    ConfigError
        Raised if the directory cannot be created or written to, naming it.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        msg = (
            f"Cannot write to spool folder {directory}: {exc.strerror}."
            " Pick another with --spool, or set a DSN to send to Sentry."
        )
        raise ConfigError(msg) from None


class SpoolTransport(Transport):
    """Write each envelope to its own file, to be sent later.

    Files are named ``<nanoseconds>-<uuid>.envelope`` so that a directory
    listing sorts them in the order they were written. Each file is written
    under a temporary name and renamed, so a reader never sees half an
    envelope.

    Parameters
    ----------
    directory
        Spool directory; created if missing.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.written = 0
        self.failed = 0
        """Envelopes that could not be written, each logged as an error."""

        self._lock = threading.Lock()

    def capture_envelope(self, envelope: Envelope) -> None:
        """Write an envelope to a new file in the spool directory."""
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.envelope"
        path = self.directory / name
        partial = self.directory / f".{name}.part"
        try:
            with partial.open("wb") as file:
                envelope.serialize_into(file)
            partial.replace(path)
        except OSError as exc:
            types = [item.type for item in envelope.items]
            _logger.error(  # noqa: TRY400 - the OS error text is enough
                "Cannot write Sentry envelope to spool; it is lost",
                path=str(path),
                error=str(exc),
                item_types=types,
            )
            self.record_lost_event("network_error", item=envelope.items[0])
            with self._lock:
                self.failed += 1
            return
        with self._lock:
            self.written += 1

    def flush(
        self,
        timeout: float,
        callback: Any | None = None,
    ) -> None:
        """Do nothing: every envelope is written when it is captured."""

    def kill(self) -> None:
        """Do nothing: the transport has no thread or connection to stop."""


def spool_files(directory: Path) -> list[Path]:
    """List the envelopes in a spool directory, oldest first.

    Parameters
    ----------
    directory
        Spool directory.
    """
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix == ".envelope" and not path.name.startswith(".")
    )


@dataclass
class SendSummary:
    """Counts of envelopes sent, rejected and left by `send_spool`."""

    sent: int = 0
    """Envelopes the server accepted, including any that could not be
    deleted afterwards and so also count as remaining."""

    rejected: int = 0
    """Envelopes the server rejected; moved to the ``rejected`` folder."""

    remaining: int = 0
    """Envelopes left in the spool for a later try."""


def envelope_endpoint(dsn: str) -> tuple[str, str]:
    """Return the envelope URL and ``X-Sentry-Auth`` header for a DSN.

    Raises
    ------
    ConfigError
        Raised if the DSN cannot be parsed; the message leaves out the DSN,
        since it contains a key.
    """
    try:
        auth = Dsn(dsn).to_auth(f"nbsentry/{_version()}")
    except (BadDsn, ValueError) as exc:
        msg = (
            f"Invalid DSN: {exc}. Copy it from the Sentry project's"
            " Client Keys settings."
        )
        raise ConfigError(msg) from None
    return auth.get_api_url(EndpointType.ENVELOPE), auth.to_header()


def _version() -> str:
    try:
        return importlib.metadata.version("nbsentry")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _restamp(body: bytes) -> bytes:
    """Set the envelope's ``sent_at`` to now.

    Sentry corrects event times by the gap between ``sent_at`` and the
    time it receives an envelope, so an envelope sent long after it was
    written must not carry the time it was written.
    """
    header, newline, rest = body.partition(b"\n")
    headers = json.loads(header)
    if not isinstance(headers, dict):
        msg = "envelope header is not a JSON object"
        raise TypeError(msg)
    headers["sent_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(headers).encode() + newline + rest


async def send_spool(
    directory: Path, dsn: str, *, timeout: float = 30.0
) -> SendSummary:
    """Send the envelopes of a spool directory to Sentry, oldest first.

    Each envelope is deleted once the server accepts it. An envelope the
    server rejects (a 4xx status other than 401, 403 and 429) is moved to
    the ``rejected`` folder beside the others and logged. A rejected key
    (401 or 403), a redirect, a rate limit, a server error, a network
    failure or an envelope that cannot be deleted or moved stops the run,
    keeping the rest for a later try. An envelope that disappears before
    it is read counts as handled by someone else.

    The run holds an exclusive lock on ``.lock`` in the spool directory,
    so that two senders never send the same envelope.

    Parameters
    ----------
    directory
        Spool directory.
    dsn
        Sentry DSN to send to.
    timeout
        Seconds each request may take.

    Returns
    -------
    SendSummary
        Counts of sent, rejected and remaining envelopes.

    Raises
    ------
    ConfigError
        Raised if the DSN is invalid.
    SpoolLockedError
        Raised if another process is sending this spool, or the lock file
        cannot be created.
    """
    url, auth = envelope_endpoint(dsn)
    with _lock_spool(directory):
        files = spool_files(directory)
        summary = SendSummary(remaining=len(files))
        headers = {
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": auth,
        }
        async with httpx.AsyncClient(timeout=timeout) as client:
            for path in files:
                try:
                    body = _restamp(path.read_bytes())
                except FileNotFoundError:
                    _logger.debug(
                        "Spooled envelope already gone; skipping",
                        path=str(path),
                    )
                    summary.remaining -= 1
                    continue
                except (OSError, ValueError, TypeError) as exc:
                    _logger.error(  # noqa: TRY400 - the reason is enough
                        "Cannot read spooled envelope",
                        path=str(path),
                        error=str(exc),
                    )
                    if not _move_rejected(path, summary):
                        return summary
                    continue
                try:
                    response = await client.post(
                        url, content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    _logger.error(  # noqa: TRY400 - the reason is enough
                        "Sending envelope failed; keeping the rest",
                        path=str(path),
                        error=type(exc).__name__,
                    )
                    return summary
                if not _handle_response(path, response, summary):
                    return summary
    return summary


@contextmanager
def _lock_spool(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the spool's ``.lock`` file.

    The kernel releases the lock when the file is closed, including when
    the process dies. The file is never deleted, because a process could
    then lock the deleted file while another locks a new one.
    """
    path = directory / ".lock"
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        msg = (
            f"Cannot create lock file {path}: {exc.strerror}. Check that"
            " the spool folder is writable."
        )
        raise SpoolLockedError(msg) from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            msg = (
                f"Another send-spool is running on spool folder {directory};"
                " wait for it to finish"
            )
            raise SpoolLockedError(msg) from None
        yield
    finally:
        os.close(descriptor)


def _handle_response(
    path: Path, response: httpx.Response, summary: SendSummary
) -> bool:
    """Delete or move aside a sent envelope and update the summary.

    Returns
    -------
    bool
        Whether to go on with the next envelope.
    """
    status = response.status_code
    if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
        _logger.error(
            "Sentry rejected the DSN's key; keeping every envelope. Check"
            " that the key is enabled in the project's Client Keys settings",
            path=str(path),
            status=status,
        )
        return False
    server_error = status >= HTTPStatus.INTERNAL_SERVER_ERROR
    if status == HTTPStatus.TOO_MANY_REQUESTS or server_error:
        _logger.error(
            "Sentry did not take the envelope; keeping the rest",
            path=str(path),
            status=status,
            retry_after=response.headers.get("Retry-After"),
        )
        return False
    if status < HTTPStatus.BAD_REQUEST and not response.is_success:
        # A redirect means the DSN names the wrong scheme or host, which
        # no envelope can fix.
        _logger.error(
            "Sentry responded with a redirect; keeping every envelope."
            " Check the DSN's scheme and host",
            path=str(path),
            status=status,
            location=response.headers.get("Location"),
        )
        return False
    if not response.is_success:
        _logger.error(
            "Sentry rejected the envelope; moved aside",
            path=str(path),
            status=status,
            reason=response.text[:200],
        )
        return _move_rejected(path, summary)
    summary.sent += 1
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        _logger.error(  # noqa: TRY400 - the reason is enough
            "Envelope was sent but cannot be deleted, so a later"
            " send-spool will send it again; stopping",
            path=str(path),
            error=exc.strerror,
        )
        return False
    summary.remaining -= 1
    return True


def _move_rejected(path: Path, summary: SendSummary) -> bool:
    """Move an envelope to the ``rejected`` folder and update the summary.

    Returns
    -------
    bool
        Whether the envelope was moved.
    """
    folder = path.parent / "rejected"
    try:
        folder.mkdir(exist_ok=True)
        path.replace(folder / path.name)
    except OSError as exc:
        _logger.error(  # noqa: TRY400 - the reason is enough
            "Cannot move rejected envelope aside; stopping",
            path=str(path),
            folder=str(folder),
            error=exc.strerror,
        )
        return False
    summary.rejected += 1
    summary.remaining -= 1
    return True
