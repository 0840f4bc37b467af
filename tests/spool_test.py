# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of the spool: envelopes written to files when no DSN is set."""

from __future__ import annotations

import asyncio
import fcntl
import re
import shutil
import subprocess
from contextlib import contextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from structlog.testing import capture_logs

from nbsentry.exceptions import ConfigError, SpoolLockedError
from nbsentry.sentry import spool as spool_module
from nbsentry.sentry.spool import (
    SendSummary,
    SpoolTransport,
    envelope_endpoint,
    send_spool,
    spool_files,
)
from tests.support import assert_valid_payload, sentry_client
from tests.support.cli import invoke_cli, read_spool
from tests.support.runs import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support import SentryServer

NOTEBOOKS = REPO_ROOT / "notebooks"
FILE_NAME = re.compile(r"^\d{20}-[0-9a-f]{32}\.envelope$")


def test_cli_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"

    result = invoke_cli(
        [
            str(NOTEBOOKS / "failing-cell.ipynb"),
            str(NOTEBOOKS / "passing.ipynb"),
            "--spool",
            str(spool),
        ]
    )

    files = spool_files(spool)
    envelopes = [Envelope.deserialize(path.read_bytes()) for path in files]
    items = [item for envelope in envelopes for item in envelope.items]
    payloads = [
        item.payload.json
        for item in items
        if item.type in {"event", "transaction"}
        and item.payload.json is not None
    ]
    assert result.exit_code == 1, result.output
    assert f"envelopes={len(files)}" in result.stderr
    assert all(FILE_NAME.match(path.name) for path in files)
    assert sorted(p.name for p in spool.iterdir()) == [p.name for p in files]
    assert [item.type for item in items].count("event") == 1
    assert [item.type for item in items].count("attachment") == 1
    names = [
        p["transaction"] for p in payloads if p.get("type") == "transaction"
    ]
    assert names == [
        "NotebookRunner.startup",
        "failing-cell.ipynb",
        "passing.ipynb",
        "NotebookRunner.run",
        "NotebookRunner.shutdown",
    ]
    for payload in payloads:
        assert_valid_payload(payload)


def test_transport_writes_in_order(tmp_path: Path) -> None:
    spool = tmp_path / "new" / "spool"
    transport = SpoolTransport(spool)

    with sentry_client(transport=transport):
        for index in range(5):
            sentry_sdk.capture_message(f"message {index}")

    messages = [envelope.get_event() for envelope in read_spool(spool)]
    assert transport.written == 5
    assert len(spool_files(spool)) == 5
    assert [m["message"] for m in messages if m] == [
        f"message {index}" for index in range(5)
    ]


def test_spool_files_skips_partial(tmp_path: Path) -> None:
    (tmp_path / "00000000000000000002-b.envelope").write_bytes(b"{}\n")
    (tmp_path / "00000000000000000001-a.envelope").write_bytes(b"{}\n")
    (tmp_path / ".00000000000000000000-c.envelope.part").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")

    assert [p.name for p in spool_files(tmp_path)] == [
        "00000000000000000001-a.envelope",
        "00000000000000000002-b.envelope",
    ]
    assert spool_files(tmp_path / "absent") == []


def test_transport_write_error(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    transport = SpoolTransport(spool)
    spool.rmdir()

    with capture_logs() as logs, sentry_client(transport=transport):
        sentry_sdk.capture_message("lost")

    (entry,) = [e for e in logs if e["log_level"] == "error"]
    assert entry["event"] == (
        "Cannot write Sentry envelope to spool; it is lost"
    )
    assert entry["item_types"] == ["event"]
    assert transport.written == 0
    assert not spool.exists()


def _write_envelopes(directory: Path, count: int) -> list[str]:
    """Spool one message event per envelope and return the file names."""
    with sentry_client(transport=SpoolTransport(directory)):
        for index in range(count):
            sentry_sdk.capture_message(f"message {index}")
    return [path.name for path in spool_files(directory)]


def _received_messages(server: SentryServer) -> list[str]:
    return [event["message"] for event in server.events]


@contextmanager
def _immutable(directory: Path) -> Iterator[None]:
    """Make a folder immutable with chattr, so nothing in it can be
    created, renamed or deleted, even by root."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("needs chattr")
    result = subprocess.run(
        [chattr, "+i", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"chattr +i failed: {result.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


async def test_send_deletes_accepted(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    _write_envelopes(tmp_path, 3)

    summary = await send_spool(tmp_path, sentry_server.dsn)

    assert (summary.sent, summary.rejected, summary.remaining) == (3, 0, 0)
    assert spool_files(tmp_path) == []
    assert _received_messages(sentry_server) == [
        "message 0",
        "message 1",
        "message 2",
    ]


async def test_send_undeletable_envelope_stops(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    names = _write_envelopes(tmp_path, 2)
    # A spool sent before already has its lock file.
    (tmp_path / ".lock").touch()

    with capture_logs() as logs, _immutable(tmp_path):
        summary = await send_spool(tmp_path, sentry_server.dsn)

    errors = [e for e in logs if e["log_level"] == "error"]
    assert (summary.sent, summary.rejected, summary.remaining) == (1, 0, 2)
    assert [p.name for p in spool_files(tmp_path)] == names
    assert _received_messages(sentry_server) == ["message 0"]
    assert len(errors) == 1
    assert "cannot be deleted" in errors[0]["event"]
    assert "send it again" in errors[0]["event"]
    assert errors[0]["path"] == str(tmp_path / names[0])


async def test_send_read_only_without_lock(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    names = _write_envelopes(tmp_path, 1)

    with _immutable(tmp_path), pytest.raises(SpoolLockedError) as raised:
        await send_spool(tmp_path, sentry_server.dsn)

    assert str(raised.value).startswith(
        f"Cannot create lock file {tmp_path / '.lock'}: "
    )
    assert [p.name for p in spool_files(tmp_path)] == names
    assert sentry_server.requests == []


async def test_send_lock_held_elsewhere(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    names = _write_envelopes(tmp_path, 1)

    with (tmp_path / ".lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SpoolLockedError) as raised:
            await send_spool(tmp_path, sentry_server.dsn)

    assert str(raised.value) == (
        f"Another send-spool is running on spool folder {tmp_path};"
        " wait for it to finish"
    )
    assert [p.name for p in spool_files(tmp_path)] == names
    assert sentry_server.requests == []


async def test_send_concurrent_sends_once(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    _write_envelopes(tmp_path, 3)

    results = await asyncio.gather(
        send_spool(tmp_path, sentry_server.dsn),
        send_spool(tmp_path, sentry_server.dsn),
        return_exceptions=True,
    )

    summaries = [r for r in results if isinstance(r, SendSummary)]
    failures = [r for r in results if isinstance(r, SpoolLockedError)]
    assert len(summaries) == 1
    assert len(failures) == 1
    assert summaries[0].sent == 3
    assert spool_files(tmp_path) == []
    assert _received_messages(sentry_server) == [
        "message 0",
        "message 1",
        "message 2",
    ]


async def test_send_skips_vanished_file(
    tmp_path: Path,
    sentry_server: SentryServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _write_envelopes(tmp_path, 3)

    def list_then_delete_first(directory: Path) -> list[Path]:
        files = spool_files(directory)
        files[0].unlink()
        return files

    monkeypatch.setattr(spool_module, "spool_files", list_then_delete_first)
    with capture_logs() as logs:
        summary = await send_spool(tmp_path, sentry_server.dsn)

    (skipped,) = [e for e in logs if e["log_level"] == "debug"]
    assert (summary.sent, summary.rejected, summary.remaining) == (2, 0, 0)
    assert _received_messages(sentry_server) == ["message 1", "message 2"]
    assert skipped["event"] == "Spooled envelope already gone; skipping"
    assert [e for e in logs if e["log_level"] == "error"] == []


@pytest.mark.parametrize(
    "status", [HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN]
)
async def test_send_key_rejected_keeps_all(
    tmp_path: Path, sentry_server: SentryServer, status: HTTPStatus
) -> None:
    names = _write_envelopes(tmp_path, 3)
    sentry_server.queue_statuses(status)

    with capture_logs() as logs:
        summary = await send_spool(tmp_path, sentry_server.dsn)

    (error,) = [e for e in logs if e["log_level"] == "error"]
    assert (summary.sent, summary.rejected, summary.remaining) == (0, 0, 3)
    assert [p.name for p in spool_files(tmp_path)] == names
    assert not (tmp_path / "rejected").exists()
    assert len(sentry_server.refused) == 1
    assert sentry_server.requests == []
    assert "rejected the DSN's key" in error["event"]
    assert error["status"] == status
    assert sentry_server.public_key not in str(logs)


@pytest.mark.parametrize(
    "status", [HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE]
)
async def test_send_bad_envelope_moved_aside(
    tmp_path: Path, sentry_server: SentryServer, status: HTTPStatus
) -> None:
    names = _write_envelopes(tmp_path, 3)
    sentry_server.queue_statuses(status)

    summary = await send_spool(tmp_path, sentry_server.dsn)

    rejected = sorted(p.name for p in (tmp_path / "rejected").iterdir())
    assert (summary.sent, summary.rejected, summary.remaining) == (2, 1, 0)
    assert rejected == names[:1]
    assert spool_files(tmp_path) == []
    assert _received_messages(sentry_server) == ["message 1", "message 2"]


async def test_send_redirect_keeps_all(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    names = _write_envelopes(tmp_path, 2)
    sentry_server.queue_statuses(HTTPStatus.MOVED_PERMANENTLY)

    with capture_logs() as logs:
        summary = await send_spool(tmp_path, sentry_server.dsn)

    (error,) = [e for e in logs if e["log_level"] == "error"]
    assert (summary.sent, summary.rejected, summary.remaining) == (0, 0, 2)
    assert [p.name for p in spool_files(tmp_path)] == names
    assert not (tmp_path / "rejected").exists()
    assert "redirect" in error["event"]


async def test_send_header_not_object(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    (tmp_path / "0001-junk.envelope").write_bytes(b"[]\n{}\n")
    names = _write_envelopes(tmp_path, 1)

    summary = await send_spool(tmp_path, sentry_server.dsn)

    assert (summary.sent, summary.rejected, summary.remaining) == (1, 1, 0)
    assert (tmp_path / "rejected" / "0001-junk.envelope").exists()
    assert spool_files(tmp_path) == []
    assert names


@pytest.mark.parametrize(
    "dsn",
    [
        "http://publickey77@127.0.0.1:99999/1",
        "http://publickey77@127.0.0.1:abc/1",
        "http://publickey77@[::1/1",
        "foo",
    ],
)
def test_endpoint_invalid_dsn(dsn: str) -> None:
    with pytest.raises(ConfigError, match=r"^Invalid DSN: ") as caught:
        envelope_endpoint(dsn)

    assert "publickey77" not in str(caught.value)
