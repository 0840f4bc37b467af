"""Building reports and sending them as iopub ``comm_open`` messages."""

from __future__ import annotations

import functools
import itertools
import json
import json.encoder
import logging
import math
import os
import threading
import time
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jupyter_client.jsonutil import json_default

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._cell import CellRecord
    from ._exceptions import ExceptionReport

__all__ = [
    "REPORT_VERSION",
    "TARGET_NAME",
    "ReportSender",
    "build_report",
]

REPORT_VERSION = 1
"""Version of the request metadata and report schema."""

TARGET_NAME = "nbsentry.report"
"""Comm target name of every report."""

_logger = logging.getLogger(__name__)

# Separates the routing identities from the message in a Jupyter wire
# message (Jupyter messaging protocol 5.x).
_DELIMITER = b"<IDS|MSG>"

# Numbers of keys of a report and of its "dropped" object, as
# `build_report` writes them, and of a Jupyter message header: msg_id,
# msg_type, username, session, date and version. A report or header with
# other keys is packed with the JSON encoder instead of a template.
_REPORT_KEYS = 14
_DROPPED_KEYS = 4
_HEADER_KEYS = 6

_escape = json.encoder.encode_basestring_ascii

# The content of every final report between the comm id and the request's
# msg_id, as `_write_content` writes it.
_FINAL_DATA_START = (
    f',"target_name":"{TARGET_NAME}",'
    f'"data":{{"version":{REPORT_VERSION},"kind":"final",'
)


def build_report(
    cell: CellRecord,
    *,
    kind: str,
    end: float | None,
    spans: list[dict[str, Any]],
    breadcrumbs: list[dict[str, Any]],
    exception: ExceptionReport | None,
) -> dict[str, Any]:
    """Build a report of the cell; call it with the cell's lock held.

    The ``dropped`` counts are the totals for the cell so far.
    """
    request = cell.request
    if exception is None:
        exception_data = None
        dropped_frames = dropped_exceptions = 0
    else:
        exception_data = {"values": exception.values}
        dropped_frames = exception.dropped_frames
        dropped_exceptions = exception.dropped_exceptions
    return {
        "version": REPORT_VERSION,
        "kind": kind,
        "msg_id": request.msg_id,
        "trace_id": request.trace_id,
        "cell_id": request.cell_id,
        "notebook": request.notebook,
        "execution_count": cell.execution_count,
        "status": "ok" if exception is None else "error",
        "start": cell.start,
        "end": end,
        "spans": spans,
        "breadcrumbs": breadcrumbs,
        "exception": exception_data,
        "dropped": {
            "spans": cell.dropped_spans,
            "breadcrumbs": cell.dropped_breadcrumbs,
            "frames": dropped_frames,
            "exceptions": dropped_exceptions,
        },
    }


class ReportSender:
    """Packs reports into ``comm_open`` messages and sends them on iopub.

    ``Session.send`` took about 55 us a message inside a kernel on a
    2-core AMD EPYC machine, a third of it building and packing the
    header. So the sender builds the wire frames itself. It writes the
    header from a template packed once, and packs the parent header once
    per cell and the report exactly once, with a JSON encoder made up
    front. It writes the common final report, one without spans,
    breadcrumbs or exception, straight from the cell record. It signs the
    frames with a copy of the session's HMAC state. Like ``Session.send``,
    it hands the frames to ipykernel's iopub thread, which sends them in
    order, so a report precedes the cell's ``idle`` status.

    Parameters
    ----------
    kernel
        The ipykernel kernel whose session and iopub socket to use.
    """

    def __init__(self, kernel: Any) -> None:
        session = kernel.session
        # Session attributes are traitlets, slow to read on every message,
        # and a running kernel never changes its key or packer.
        self._session = session
        self._signer = _make_signer(session.auth)
        self._socket = kernel.iopub_socket
        self._io_thread_alive: Callable[[], bool] | None = None
        io_thread = _deferrable_io_thread(self._socket)
        if io_thread is not None:
            # Bound once: see _deferrable_io_thread for these members.
            self._io_thread_alive = io_thread.thread.is_alive
            self._queue_event = io_thread._events.append  # noqa: SLF001
            self._really_send = io_thread._really_send  # noqa: SLF001
        self._metadata = session.pack(session.metadata)
        # os.urandom releases the GIL, and inside a cell hook that lets the
        # iopub thread take it for tens of microseconds. So a report's comm
        # id and its message's id are each a random prefix drawn once per
        # kernel, followed by the report's number in 8 or more hex digits.
        # Each id has 32 hex digits, like a random UUID, until 2**32 reports.
        self._comm_id_prefix = os.urandom(12).hex()
        self._msg_id_prefix = os.urandom(12).hex()
        self._report_numbers = itertools.count()
        # The second of the latest header date and that date up to the
        # second, in one tuple that threads replace as a whole.
        self._date_cache: tuple[int, str] = (-1, "")
        self._json: Callable[[Any], str] | None = None
        self._header_prefix: str | None = None
        if str(session.packer).lower() in {"json", "orjson"}:
            self._json = _make_json_encoder()
            template = session.msg_header("comm_open")
            fixed = {
                key: value
                for key, value in template.items()
                if key not in {"msg_id", "date"}
            }
            # '{"msg_type":...,"version":...' without its closing brace.
            self._header_prefix = self._json(fixed)[:-1]

    def pack_parent(self, parent: dict[str, Any]) -> bytes:
        """Pack the execute request's header, the parent of its reports."""
        header = parent["header"]
        if self._json is not None:
            try:
                text = _write_header(header)
            except (KeyError, TypeError, ValueError):
                text = None
            if text is not None:
                return text.encode("ascii")
        return self._pack(header)

    def send(self, packed_parent: bytes, report: dict[str, Any]) -> None:
        """Send a report as a one-shot ``comm_open`` with a fresh comm id."""
        number = "%08x" % next(self._report_numbers)  # noqa: UP031
        content = self._pack_content(f"{self._comm_id_prefix}{number}", report)
        self._socket.send_multipart(
            self._frames(number, packed_parent, content)
        )

    def send_before_idle(
        self, packed_parent: bytes, report: dict[str, Any]
    ) -> None:
        """Send a report from a cell hook, without waking the iopub thread.

        Waking ipykernel's iopub thread costs a send on an in-process
        socket and a thread switch. Right after the cell has run,
        ipykernel 7.4's ``execute_request`` flushes ``sys.stdout`` and
        ``sys.stderr``, and after the reply it publishes the ``idle``
        status. Each of these wakes the thread, which then sends every
        message queued before them in order. So a report from
        ``post_run_cell`` is only queued.

        A report queued outside a request handler would wait for the
        kernel's next iopub message. The extension reports only the cell
        of the request in flight, from the thread that runs it, and
        ignores cells that the notebook's own threads run.
        """
        number = "%08x" % next(self._report_numbers)  # noqa: UP031
        content = self._pack_content(f"{self._comm_id_prefix}{number}", report)
        self._queue(self._frames(number, packed_parent, content))

    def send_plain_final(self, cell: CellRecord, end: float) -> None:
        """Send a final report without spans, breadcrumbs or exception.

        It sends what `send_before_idle` sends for the report that
        `build_report` builds with ``kind="final"``, empty ``spans`` and
        ``breadcrumbs`` and no exception, but writes the content straight
        from the record, without the report dict. Call it with the cell's
        lock held.
        """
        # Percent formatting: with format specs in f-strings, such as
        # {number:08x}, the hooks took about 1 us longer per cell in the
        # benchmark kernel.
        number = "%08x" % next(self._report_numbers)  # noqa: UP031
        comm_id = f"{self._comm_id_prefix}{number}"
        text = None
        if self._json is not None:
            try:
                text = _write_plain_final(comm_id, cell, end)
            except TypeError:
                _logger.debug("Packing a final report with the encoder")
        if text is None:
            report = build_report(
                cell,
                kind="final",
                end=end,
                spans=[],
                breadcrumbs=[],
                exception=None,
            )
            content = self._pack_content(comm_id, report)
        else:
            content = text.encode("ascii")
        self._queue(self._frames(number, cell.packed_parent, content))

    def _queue(self, frames: list[bytes]) -> None:
        """Queue frames for the iopub thread without waking it.

        Frames go straight to the socket when the thread is not running.
        """
        alive = self._io_thread_alive
        if alive is not None and alive():
            self._queue_event(functools.partial(self._really_send, frames))
        else:
            self._socket.send_multipart(frames)

    def _frames(
        self, number: str, packed_parent: bytes, content: bytes
    ) -> list[bytes]:
        """Write a report's message header, sign it and return the frames.

        ``number`` is the report's number in hex, which its ids end with.
        """
        prefix = self._header_prefix
        if prefix is None:
            header = bytes(self._pack(self._session.msg_header("comm_open")))
        else:
            # The date that jupyter-client's json_default writes for
            # datetime.now(timezone.utc), which also rounds down to whole
            # microseconds and leaves them out when they are zero. Writing
            # the date up to the second once a second took a third of the
            # time of datetime.now and isoformat in a tight loop, and saved
            # about 1.5 us per cell in the benchmark kernel.
            now = time.time_ns()
            second = now // 1_000_000_000
            microsecond = now // 1000 % 1_000_000
            cached_second, date = self._date_cache
            if second != cached_second:
                utc = time.gmtime(second)
                date = (
                    f"{utc.tm_year:04d}-{utc.tm_mon:02d}-{utc.tm_mday:02d}T"
                    f"{utc.tm_hour:02d}:{utc.tm_min:02d}:{utc.tm_sec:02d}"
                )
                self._date_cache = (second, date)
            if microsecond:
                date = "%s.%06d" % (date, microsecond)  # noqa: UP031
            header = (
                f'{prefix},"msg_id":"{self._msg_id_prefix}{number}",'
                f'"date":"{date}Z"}}'
            ).encode("ascii")
        metadata = self._metadata
        signer = self._signer
        if signer is None:
            signature = b""
        else:
            # Session.sign, without reading the traitlet.
            digest = signer.copy()
            digest.update(b"".join((header, packed_parent, metadata, content)))
            signature = digest.hexdigest().encode("ascii")
        return [
            f"comm-{self._comm_id_prefix}{number}".encode("ascii"),
            _DELIMITER,
            signature,
            header,
            packed_parent,
            metadata,
            content,
        ]

    def _pack_content(self, comm_id: str, report: dict[str, Any]) -> bytes:
        """Pack the ``comm_open`` content that carries a report."""
        encode = self._json
        if encode is not None:
            try:
                text = _write_content(comm_id, report, encode)
            except (TypeError, ValueError):
                text = None
            if text is not None:
                return text.encode("ascii")
        return self._pack(
            {"comm_id": comm_id, "target_name": TARGET_NAME, "data": report}
        )

    def _pack(self, value: dict[str, Any]) -> bytes:
        if self._json is not None:
            try:
                return self._json(value).encode("ascii")
            except (TypeError, ValueError):
                # The session's packer cleans what JSON cannot hold.
                _logger.debug("Packing a value with the session's packer")
        return bytes(self._session.pack(value))


def _write_header(header: dict[str, Any]) -> str | None:
    """Write a message header with the usual keys as JSON from a template.

    Returns `None`, or raises `KeyError` or `TypeError`, for a header with
    other keys or value types, so that the caller packs it as a whole.
    """
    # Six keys that can all be looked up are exactly the usual keys.
    date = header["date"]
    if (
        len(header) != _HEADER_KEYS
        or type(date) is not datetime
        or date.tzinfo is None
    ):
        return None
    return (
        f'{{"msg_id":{_escape(header["msg_id"])},'
        f'"msg_type":{_escape(header["msg_type"])},'
        f'"username":{_escape(header["username"])},'
        f'"session":{_escape(header["session"])},'
        f'"date":"{date.isoformat().replace("+00:00", "Z")}",'
        f'"version":{_escape(header["version"])}}}'
    )


def _write_content(
    comm_id: str, report: dict[str, Any], encode: Callable[[Any], str]
) -> str | None:
    """Write a report's ``comm_open`` content as JSON from a template.

    The template writes the keys in the order `build_report` creates them
    and each scalar the way the C JSON encoder does. Walking the report
    with the encoder instead took about 15 us between cells in the
    benchmark kernel, when the hooks took about 60 us in all. Returns
    `None`, or raises `TypeError`, when a value has a type the template
    does not cover, so that the caller packs the report as a whole.
    """
    start = report["start"]
    end = report["end"]
    count = report["execution_count"]
    dropped = report["dropped"]
    if (
        len(report) != _REPORT_KEYS
        or len(dropped) != _DROPPED_KEYS
        or type(start) is not float
        or not math.isfinite(start)
        or not (end is None or (type(end) is float and math.isfinite(end)))
        or type(count) is not int
    ):
        return None
    spans = report["spans"]
    breadcrumbs = report["breadcrumbs"]
    exception = report["exception"]
    return (
        f'{{"comm_id":{_escape(comm_id)},"target_name":"{TARGET_NAME}",'
        f'"data":{{"version":{_integer(report["version"])},'
        f'"kind":{_escape(report["kind"])},'
        f'"msg_id":{_escape(report["msg_id"])},'
        f'"trace_id":{_escape(report["trace_id"])},'
        f'"cell_id":{_escape(report["cell_id"])},'
        f'"notebook":{_escape(report["notebook"])},'
        f'"execution_count":{int.__repr__(count)},'
        f'"status":{_escape(report["status"])},'
        f'"start":{float.__repr__(start)},'
        f'"end":{"null" if end is None else float.__repr__(end)},'
        f'"spans":{encode(spans) if spans else "[]"},'
        f'"breadcrumbs":{encode(breadcrumbs) if breadcrumbs else "[]"},'
        f'"exception":{"null" if exception is None else encode(exception)},'
        f'"dropped":{{"spans":{_integer(dropped["spans"])},'
        f'"breadcrumbs":{_integer(dropped["breadcrumbs"])},'
        f'"frames":{_integer(dropped["frames"])},'
        f'"exceptions":{_integer(dropped["exceptions"])}}}}}}}'
    )


def _write_plain_final(
    comm_id: str, cell: CellRecord, end: float
) -> str | None:
    """Write a final report without spans, breadcrumbs or exception as JSON.

    It writes the ``comm_open`` content that `_write_content` writes for
    the report that `build_report` builds from the record with
    ``kind="final"``, empty ``spans`` and ``breadcrumbs`` and no
    exception. Returns `None`, or raises `TypeError`, when a value has a
    type the template does not cover, so that the caller builds and packs
    the report.
    """
    request = cell.request
    count = cell.execution_count
    start = cell.start
    dropped_spans = cell.dropped_spans
    dropped_breadcrumbs = cell.dropped_breadcrumbs
    # x - x is 0.0 for a finite float and NaN for an infinity or NaN. Exact
    # types keep out bools, which JSON writes as true and false, and float
    # subclasses, whose own repr the template would call.
    if (
        type(count) is not int
        or type(start) is not float
        or start - start != 0.0
        or type(end) is not float
        or end - end != 0.0
        or type(dropped_spans) is not int
        or type(dropped_breadcrumbs) is not int
    ):
        return None
    return (
        f'{{"comm_id":"{comm_id}"{_FINAL_DATA_START}'
        f'"msg_id":{_escape(request.msg_id)},'
        f'"trace_id":{_escape(request.trace_id)},'
        f'"cell_id":{_escape(request.cell_id)},'
        f'"notebook":{_escape(request.notebook)},'
        f'"execution_count":{count},"status":"ok",'
        f'"start":{start!r},"end":{end!r},'
        '"spans":[],"breadcrumbs":[],"exception":null,'
        f'"dropped":{{"spans":{dropped_spans},'
        f'"breadcrumbs":{dropped_breadcrumbs},'
        '"frames":0,"exceptions":0}}}'
    )


def _integer(value: int) -> str:
    """Write an integer as JSON, or raise `TypeError` for any other type."""
    if type(value) is not int:
        msg = f"expected an integer, got {type(value).__name__}"
        raise TypeError(msg)
    return int.__repr__(value)


def _make_signer(auth: Any) -> Any:
    """Return the HMAC object whose copies sign messages, `None` if no key.

    CPython's `hmac.HMAC` keeps its OpenSSL HMAC object in ``_hmac``,
    which has the same ``copy``, ``update`` and ``hexdigest`` methods
    without a Python frame each. Copying it and updating the copy took
    1.2 us in a tight loop on a 2-core AMD EPYC machine, against 1.4 us
    through `hmac.HMAC` and 2.4 us for a one-shot `hmac.digest`, which
    sets the key up again for every message. In the benchmark kernel it
    saved about 1 us per cell. The private object is used only if it
    signs a sample exactly as the session's HMAC does.
    """
    if auth is None:
        return None
    inner = getattr(auth, "_hmac", None)
    if inner is None:
        return auth
    try:
        expected = auth.copy()
        expected.update(b"sample")
        actual = inner.copy()
        actual.update(b"sample")
        if actual.hexdigest() == expected.hexdigest():
            return inner
    except Exception:
        _logger.exception("Cannot sign with the OpenSSL HMAC object")
    return auth


def _deferrable_io_thread(socket: Any) -> Any:
    """Return ipykernel's iopub thread if reports can be queued on it.

    ``send_before_idle`` uses two private members of ipykernel 7.4's
    ``IOPubThread``: the ``_events`` queue, which the thread drains in
    order each time it is woken, and ``_really_send``. Without them it
    falls back to the socket's ``send_multipart``.
    """
    io_thread = getattr(socket, "io_thread", None)
    events = getattr(io_thread, "_events", None)
    if (
        isinstance(events, deque)
        and callable(getattr(io_thread, "_really_send", None))
        and isinstance(getattr(io_thread, "thread", None), threading.Thread)
    ):
        return io_thread
    return None


def _make_json_encoder() -> Callable[[Any], str]:
    """Make a function that writes a value as compact, ASCII-only JSON.

    It writes what the session's JSON packer writes, with the same
    ``default`` for dates and bytes and no NaN, but without the packer's
    per-call encoder setup and circular-reference check. That setup took
    0.5 us of the 4.3 us that packing a report took in a tight loop on a
    2-core AMD EPYC machine. ASCII output keeps lone surrogates from making
    the bytes invalid UTF-8.
    """
    encoder = json.JSONEncoder(
        ensure_ascii=True,
        allow_nan=False,
        check_circular=False,
        separators=(",", ":"),
        default=json_default,
    )
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    escape = getattr(json.encoder, "c_encode_basestring_ascii", None)
    if make_encoder is None or escape is None:
        return encoder.encode
    # CPython's C encoder, which JSONEncoder.encode creates on every call.
    # It takes its options as positional arguments only.
    options = (
        None,  # markers: no circular-reference check
        json_default,
        escape,
        None,  # indent
        ":",  # key separator
        ",",  # item separator
        False,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )
    try:
        c_encode = make_encoder(*options)

        def encode(value: Any) -> str:
            return "".join(c_encode(value, 0))

        sample = {"a": [1, 2.5, "\u00e9", None, True]}
        if encode(sample) != encoder.encode(sample):
            return encoder.encode
    except Exception:
        _logger.exception("Cannot make a JSON encoder, using JSONEncoder")
        return encoder.encode
    return encode
