"""The sender's wire frames, compared with what ``Session`` writes."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from nbsentry_kernel._cell import CellRecord, Request
from nbsentry_kernel._exceptions import ExceptionReport
from nbsentry_kernel._report import (
    ReportSender,
    _write_plain_final,
    build_report,
)


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


@pytest.mark.parametrize(
    ("extra", "removed"),
    [
        ({}, None),
        ({"subshell_id": None}, None),
        ({"subshell_id": 1}, "version"),
    ],
)
def test_pack_parent_matches_session(
    extra: dict[str, Any], removed: str | None
) -> None:
    session = Session(key=b"secret", username="t\u00e9ster")
    sender = ReportSender(FakeKernel(session))
    header = session.msg_header("execute_request")
    header["date"] = datetime.now(timezone.utc)
    header.update(extra)
    if removed is not None:
        del header[removed]

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


class ReprFloat(float):
    """A float whose own repr the JSON encoder does not use."""

    def __repr__(self) -> str:
        return "ReprFloat"


# Records for send_plain_final. Each row sets the request's fields and the
# record's fields to change and the end time. Then it states whether the
# template writes the report rather than the general path, and whether the
# session's packer warns about values that JSON cannot hold.
PLAIN_FINAL_CASES = {
    "usual": ({}, {}, 1764860000.456, True, False),
    "dropped counts": (
        {},
        {"dropped_spans": 3, "dropped_breadcrumbs": 2},
        1764860001.0,
        True,
        False,
    ),
    "escaped text": (
        {
            "msg_id": 'a"b\\c',
            "cell_id": "\n\u2028\x00",
            "notebook": "\ud800.ipynb",
        },
        {},
        1764860000.5,
        True,
        False,
    ),
    "bool count": ({}, {"execution_count": True}, 1764860000.5, False, False),
    "int start": ({}, {"start": 1764860000}, 1764860000.5, False, False),
    "float subclass": (
        {},
        {"start": ReprFloat(1764860000.25)},
        1764860000.5,
        False,
        False,
    ),
    "non-str msg_id": ({"msg_id": 17}, {}, 1764860000.5, False, False),
    "NaN start": ({}, {"start": math.nan}, 1764860000.5, False, True),
    "infinite end": ({}, {}, math.inf, False, True),
}


def paired_senders(session: Session) -> tuple[ReportSender, ReportSender]:
    """Two senders that give their reports and messages the same ids."""
    fast = ReportSender(FakeKernel(session))
    general = ReportSender(FakeKernel(session))
    general._comm_id_prefix = fast._comm_id_prefix
    general._msg_id_prefix = fast._msg_id_prefix
    return fast, general


def plain_final_frames(
    session: Session, cell: CellRecord, end: float
) -> tuple[list[bytes], list[bytes]]:
    """Send a cell's final report through the fast and the general path."""
    fast, general = paired_senders(session)
    fast.send_plain_final(cell, end)
    report = build_report(
        cell, kind="final", end=end, spans=[], breadcrumbs=[], exception=None
    )
    general.send_before_idle(cell.packed_parent, report)
    (fast_frames,) = fast._socket.sent
    (general_frames,) = general._socket.sent
    return fast_frames, general_frames


@pytest.mark.parametrize(
    ("request_changes", "record_changes", "end", "templated", "warns"),
    PLAIN_FINAL_CASES.values(),
    ids=PLAIN_FINAL_CASES.keys(),
)
def test_plain_final_matches_general_path(
    request_changes: dict[str, Any],
    record_changes: dict[str, Any],
    end: float,
    templated: bool,  # noqa: FBT001 - a column of the table
    warns: bool,  # noqa: FBT001 - a column of the table
) -> None:
    session = Session(key=b"secret", username="tester")
    cell = make_cell()
    cell.request = dataclasses.replace(cell.request, **request_changes)
    for name, value in record_changes.items():
        setattr(cell, name, value)
    try:
        text = _write_plain_final("0" * 32, cell, end)
    except TypeError:
        text = None
    assert (text is not None) == templated
    expectation = (
        pytest.warns(UserWarning, match="serialization failed")
        if warns
        else contextlib.nullcontext()
    )

    with expectation:
        fast, general = plain_final_frames(session, cell, end)

    assert fast[0] == general[0]  # comm topic
    assert fast[4:] == general[4:]  # parent, metadata and content
    fast_header = json.loads(fast[3])
    general_header = json.loads(general[3])
    del fast_header["date"], general_header["date"]
    assert fast_header == general_header
    # deserialize checks the signature.
    _, message = session.feed_identities(fast)
    assert session.deserialize(message)["header"]["msg_type"] == "comm_open"


def test_plain_final_with_pickle_packer() -> None:
    session = Session(key=b"secret", packer="pickle", unpacker="pickle")
    cell = make_cell()
    cell.packed_parent = session.pack({"msg_id": "request-1"})

    fast, general = plain_final_frames(session, cell, 1764860000.5)

    assert fast[4:] == general[4:]
    _, message = session.feed_identities(fast)
    content = session.deserialize(message)["content"]
    assert content["data"]["status"] == "ok"
    assert content["data"]["end"] == 1764860000.5


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
