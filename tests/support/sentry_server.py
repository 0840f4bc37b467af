# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""A loopback Sentry ingest endpoint for tests of sentry-sdk's HTTP transport.

It accepts ``POST /api/<project>/envelope/`` with a plain or gzip body, as
sentry-sdk's ``HttpTransport`` sends it, stores the envelope and the auth
values, and responds with status 200, or with a status a test queued with
`SentryServer.queue_statuses`. It binds 127.0.0.1 on a free port
and serves from a daemon thread until the ``with`` block ends.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Self

from sentry_sdk.envelope import Envelope

from .capture import EnvelopeStore

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ReceivedRequest", "SentryServer"]

_logger = logging.getLogger(__name__)

_ENVELOPE_PATH = re.compile(r"^/api/(?P<project>[^/]+)/envelope/$")

# Seconds between checks for shutdown in the serving thread.
_POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class ReceivedRequest:
    """An accepted envelope request."""

    project_id: str
    auth: dict[str, str]
    """Values of the ``X-Sentry-Auth`` header and ``sentry_*`` query keys."""
    content_encoding: str | None
    envelope: Envelope


class SentryServer(EnvelopeStore):
    """A Sentry ingest endpoint on 127.0.0.1, used as a context manager.

    Parameters
    ----------
    public_key
        Public key written into `dsn`. The server records the key each
        request sends but accepts any.
    project_id
        Project id written into `dsn`.
    """

    def __init__(
        self, public_key: str = "publickey", project_id: str = "42"
    ) -> None:
        super().__init__()
        self.public_key = public_key
        self.project_id = project_id
        self._requests: list[ReceivedRequest] = []
        self._rejections: list[str] = []
        self._queued_statuses: list[HTTPStatus] = []
        self._refused: list[tuple[HTTPStatus, ReceivedRequest]] = []
        self._arrived = threading.Condition()
        self._server: _LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        if self._server is None:
            message = "Sentry server is not running, call start() first"
            raise RuntimeError(message)
        return int(self._server.server_address[1])

    @property
    def dsn(self) -> str:
        """DSN that sends to this server."""
        host = f"127.0.0.1:{self.port}"
        return f"http://{self.public_key}@{host}/{self.project_id}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Accepted requests, oldest first."""
        with self._arrived:
            return list(self._requests)

    @property
    def rejections(self) -> list[str]:
        """Reasons for every request rejected with an error status."""
        with self._arrived:
            return list(self._rejections)

    @property
    def refused(self) -> list[tuple[HTTPStatus, ReceivedRequest]]:
        """Valid requests that got a queued status, oldest first."""
        with self._arrived:
            return list(self._refused)

    def queue_statuses(self, *statuses: HTTPStatus) -> None:
        """Respond to the next valid requests with these statuses in order.

        A request that gets a queued status is listed in `refused`, not
        stored as an accepted envelope. Later requests get status 200 again.
        """
        with self._arrived:
            self._queued_statuses.extend(statuses)

    def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread."""
        server = _LoopbackHTTPServer(self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name="loopback-sentry-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def wait_for_envelopes(self, count: int, timeout: float = 5.0) -> None:
        """Wait until at least ``count`` envelopes have arrived.

        Raises
        ------
        TimeoutError
            Raised if fewer arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    message = (
                        f"{len(self._requests)} envelopes arrived at the"
                        f" Sentry server within {timeout} s, expected {count}"
                    )
                    raise TimeoutError(message)
                self._arrived.wait(remaining)

    def _accept(self, request: ReceivedRequest) -> HTTPStatus:
        """Store a valid request, or refuse it with a queued status."""
        with self._arrived:
            if self._queued_statuses:
                status = self._queued_statuses.pop(0)
                self._refused.append((status, request))
                return status
            self.record(request.envelope)
            self._requests.append(request)
            self._arrived.notify_all()
        return HTTPStatus.OK

    def _reject(self, reason: str) -> None:
        with self._arrived:
            self._rejections.append(reason)


class _LoopbackHTTPServer(ThreadingHTTPServer):
    """HTTP server on a free port of 127.0.0.1 that feeds a SentryServer."""

    daemon_threads = True

    def __init__(self, sentry: SentryServer) -> None:
        super().__init__(("127.0.0.1", 0), _EnvelopeHandler)
        self.sentry = sentry


class _EnvelopeHandler(BaseHTTPRequestHandler):
    """Parse, store and acknowledge one envelope request."""

    server: _LoopbackHTTPServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        sentry = self.server.sentry
        url = urllib.parse.urlsplit(self.path)
        match = _ENVELOPE_PATH.match(url.path)
        length = self.headers.get("Content-Length")

        if match is None:
            self._fail(sentry, HTTPStatus.NOT_FOUND, f"path {url.path}")
            return
        if length is None or not length.isdigit():
            self._fail(sentry, HTTPStatus.LENGTH_REQUIRED, "no Content-Length")
            return

        body = self.rfile.read(int(length))
        encoding = self.headers.get("Content-Encoding")
        if encoding not in (None, "identity", "gzip"):
            status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
            self._fail(sentry, status, f"Content-Encoding {encoding}")
            return
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            envelope = Envelope.deserialize(body)
        except (AttributeError, EOFError, OSError, ValueError) as error:
            reason = f"invalid envelope body: {error}"
            self._fail(sentry, HTTPStatus.BAD_REQUEST, reason)
            return

        auth = _parse_auth(self.headers.get("X-Sentry-Auth", ""), url.query)
        status = sentry._accept(
            ReceivedRequest(
                project_id=match["project"],
                auth=auth,
                content_encoding=encoding,
                envelope=envelope,
            )
        )
        self._respond(status, b"{}")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep request lines out of the test output."""

    def _fail(
        self, sentry: SentryServer, status: HTTPStatus, reason: str
    ) -> None:
        _logger.warning(
            "Loopback Sentry server rejected a request with status %d: %s",
            status.value,
            reason,
        )
        sentry._reject(f"{status.value}: {reason}")
        # The body may be unread, so this connection cannot be reused.
        self.close_connection = True
        self._respond(status, b"{}")

    def _respond(self, status: HTTPStatus, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _parse_auth(header: str, query: str) -> dict[str, str]:
    """Read ``sentry_*`` values from an auth header and a query string."""
    auth: dict[str, str] = {}
    _, _, pairs = header.partition(" ")
    for pair in pairs.split(","):
        key, _, value = pair.strip().partition("=")
        if key:
            auth[key] = value
    auth.update(
        (key, value)
        for key, value in urllib.parse.parse_qsl(query)
        if key.startswith("sentry_")
    )
    return auth
