"""A sentry-sdk transport that writes envelopes to a spool directory."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sentry_sdk.transport import Transport

if TYPE_CHECKING:
    from pathlib import Path

    from sentry_sdk.envelope import Envelope

__all__ = ["SpoolTransport", "spool_files"]

_logger = structlog.get_logger("nbsentry")


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
        """Do nothing: the transport holds no thread or connection."""


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
