"""The sender's wire frames, compared with what ``Session`` writes."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from nbsentry_kernel._cell import CellRecord, Request
from nbsentry_kernel._exceptions import ExceptionReport
from nbsentry_kernel._report import ReportSender, build_report


class RecordingSocket:
    """An iopub socket that keeps the frames it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    def send_multipart(self, frames: list[bytes]) -> None:
        self.sent.append(frames)


class FakeKernel:
    """The two kernel attributes that `ReportSender` reads."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.iopub_socket = RecordingSocket()


def make_cell() -> CellRecord:
    request = Request(
        msg_id="request-1",
        trace_id="a" * 32,
        sentry_trace="a" * 32 + "-" + "b" * 16 + "-1",
        baggage=None,
        cell_id="c\u00e9ll-1",
        notebook="folder/\u30ce\u30fc\u30c8.ipynb",
        integrations=False,
    )
    return CellRecord(
        request=request,
        packed_parent=b"{}",
        execution_count=7,
        start=1764860000.123,
    )


def reports() -> list[dict[str, Any]]:
    cell = make_cell()
    plain = build_report(
        cell,
        kind="final",
        end=1764860000.456,
        spans=[],
        breadcrumbs=[],
        exception=None,
    )
    cell.dropped_spans = 3
    cell.dropped_breadcrumbs = 2
    full = build_report(
        cell,
        kind="final",
        end=1764860001.0,
        spans=[
            {
                "span_id": "c" * 16,
                "parent_span_id": None,
                "op": "db.query",
                "description": 'select "\u00fc"\n',
                "start": 1764860000.2,
                "end": 1764860000.3,
                "status": "ok",
                "data": {"rows": 1, "ratio": 0.5, "ok": True, "x": None},
            }
        ],
        breadcrumbs=[
            {
                "timestamp": 1764860000.25,
                "category": "warnings",
                "level": "warning",
                "message": "UserWarning: \U0001f600",
            }
        ],
        exception=ExceptionReport(
            values=[{"type": "KeyError", "value": "'x'", "frames": []}],
            dropped_frames=4,
            dropped_exceptions=1,
        ),
    )
    partial = build_report(
        cell,
        kind="partial",
        end=None,
        spans=[],
        breadcrumbs=[],
        exception=None,
    )
    return [plain, full, partial]


@pytest.mark.parametrize("report", reports())
def test_sender_content_matches_session(report: dict[str, Any]) -> None:
    session = Session(key=b"secret", username="tester")
    kernel = FakeKernel(session)
    sender = ReportSender(kernel)
    sender.send(b'{"msg_id": "request-1"}', report)

    (frames,) = kernel.iopub_socket.sent
    _, message = session.feed_identities(frames)
    decoded = session.deserialize(message)
    content = decoded["content"]
    assert content["target_name"] == "nbsentry.report"
    assert content["data"] == report
    # The same value that the session's own packer writes.
    expected = session.unpack(
        session.pack(
            {
                "comm_id": content["comm_id"],
                "target_name": "nbsentry.report",
                "data": report,
            }
        )
    )
    content_frame = message[4]
    assert isinstance(content_frame, bytes)
    assert json.loads(content_frame) == expected
    assert decoded["header"]["msg_type"] == "comm_open"
    assert decoded["parent_header"] == {"msg_id": "request-1"}


def test_send_before_idle_without_thread() -> None:
    session = Session(key=b"secret", username="tester")
    kernel = FakeKernel(session)
    sender = ReportSender(kernel)
    report = reports()[0]

    # A socket that is not ipykernel's background socket gets the frames.
    sender.send_before_idle(b"{}", report)

    (frames,) = kernel.iopub_socket.sent
    _, message = session.feed_identities(frames)
    assert session.deserialize(message)["content"]["data"] == report


@pytest.mark.parametrize("extra", [{}, {"subshell_id": None}])
def test_pack_parent_matches_session(extra: dict[str, Any]) -> None:
    session = Session(key=b"secret", username="t\u00e9ster")
    sender = ReportSender(FakeKernel(session))
    header = session.msg_header("execute_request")
    header["date"] = datetime.now(timezone.utc)
    header.update(extra)

    packed = sender.pack_parent({"header": header})

    assert json.loads(packed) == json.loads(session.pack(header))


def test_sender_packs_unknown_keys() -> None:
    session = Session(key=b"secret", username="tester")
    kernel = FakeKernel(session)
    sender = ReportSender(kernel)
    report = reports()[0]
    report["extra"] = [1, 2]

    sender.send(b"{}", report)

    (frames,) = kernel.iopub_socket.sent
    _, message = session.feed_identities(frames)
    assert session.deserialize(message)["content"]["data"] == report


def test_sender_copies_openssl_hmac() -> None:
    session = Session(key=b"secret")
    kernel = FakeKernel(session)
    sender = ReportSender(kernel)

    sender.send(b"{}", reports()[0])

    inner = getattr(session.auth, "_hmac", None)
    assert inner is not None
    assert sender._signer is inner
    (frames,) = kernel.iopub_socket.sent
    assert frames[2] == session.sign(frames[3:7])


def test_sender_signs_with_python_hmac() -> None:
    # hmac.HMAC hashes in Python with a digest constructor not from OpenSSL.
    session = Session(
        key=b"secret", digest_mod=lambda data=b"": hashlib.sha256(data)
    )
    assert getattr(session.auth, "_hmac", None) is None
    kernel = FakeKernel(session)
    sender = ReportSender(kernel)

    sender.send(b"{}", reports()[0])

    assert sender._signer is session.auth
    (frames,) = kernel.iopub_socket.sent
    assert frames[2] == session.sign(frames[3:7])


def test_sender_without_key_leaves_unsigned() -> None:
    session = Session(key=b"")
    kernel = FakeKernel(session)
    sender = ReportSender(kernel)

    sender.send(b"{}", reports()[0])

    (frames,) = kernel.iopub_socket.sent
    assert frames[2] == b""
    _, message = session.feed_identities(frames)
    assert session.deserialize(message)["content"]["data"] == reports()[0]


def test_header_date_matches_json_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = Session(key=b"secret")
    kernel = FakeKernel(session)
    sender = ReportSender(kernel)
    # Whole seconds, a second's first and last microsecond, and a second
    # before the one cached.
    times = [
        1764860000_000000000,
        1764860000_000001000,
        1764860000_999999999,
        1764860001_000000999,
        1764860001_123456789,
        1764859999_500000000,
    ]
    for now in times:
        monkeypatch.setattr(time, "time_ns", lambda now=now: now)
        sender.send(b"{}", reports()[0])

    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    for now, frames in zip(times, kernel.iopub_socket.sent, strict=True):
        expected = json_default(epoch + timedelta(microseconds=now // 1000))
        assert json.loads(frames[3])["date"] == expected, now
