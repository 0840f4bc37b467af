# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of the spool: envelopes written to files when no DSN is set."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sentry_sdk
from sentry_sdk.envelope import Envelope
from structlog.testing import capture_logs

from nbsentry.sentry import SpoolTransport, spool_files
from tests.support import assert_valid_payload, sentry_client
from tests.support.cli import invoke_cli, read_spool
from tests.support.runs import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path

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
