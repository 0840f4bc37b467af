"""Tests of local kernels that die between cells or send odd messages."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session

from nbsentry.backends.local import (
    LocalBackend,
    _is_ipykernel,
    decode_message,
)
from nbsentry.exceptions import KernelStartError
from nbsentry.execution import OutcomeStatus
from nbsentry.models import CellStatus
from tests.support.reports import event_of, run_cells

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support import CapturingTransport

ARM_TIMER = (
    "import os, threading\nthreading.Timer(0.2, os._exit, (1,)).start()"
)
"""A cell that completes, then kills its kernel a moment later."""

LAST_WORDS = (
    "import os\nos.write(2, b'goodbye from the kernel\\n')\nos._exit(3)"
)
"""A cell that writes to the kernel's stderr, then kills the kernel."""


async def test_death_before_send(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    run = await run_cells(
        tmp_path,
        {
            "idle.ipynb": [
                ("arm", ARM_TIMER),
                ("next", "x = 1"),
            ]
        },
        execution_idle_time=2.0,
    )

    statuses = [c.status for c in run.results["idle.ipynb"].cells]
    assert statuses == [CellStatus.passed, CellStatus.kernel_died]
    event = event_of(sentry_capture, "idle.ipynb")
    assert event["tags"]["cell"] == "next"
    assert event["exception"]["values"][0]["value"] == (
        "Kernel died before cell #2 was sent, after the previous cell"
        " completed"
    )


async def test_death_attaches_kernel_output(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    await run_cells(
        tmp_path,
        {
            "last-words.ipynb": [
                ("exit", LAST_WORDS),
            ]
        },
    )

    (attachment,) = sentry_capture.attachments
    text = attachment.data.decode()
    assert text.startswith("Last output of the kernel process:\n")
    assert "goodbye from the kernel" in text


async def test_undecodable_message_dropped(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    # A report nested deeper than the runner's recursion limit cannot be
    # decoded; it is dropped and the cell and the run go on.
    deep = (
        "import comm, sys\n"
        "sys.setrecursionlimit(100000)\n"
        "d = []\n"
        "for _ in range(20000):\n"
        "    d = [d]\n"
        "comm.create_comm(target_name='nbsentry.report', data={'d': d})"
    )
    run = await run_cells(
        tmp_path,
        {
            "deep.ipynb": [("deep", deep), ("after", "x = 1")],
            "next.ipynb": [("one", "y = 2")],
        },
    )

    deep_cells = run.results["deep.ipynb"].cells
    assert [c.status for c in deep_cells] == [CellStatus.passed] * 2
    assert run.results["next.ipynb"].first_failure is None
    dropped = run.logs_named("Kernel message dropped: cannot decode it")
    assert len(dropped) == 1
    assert dropped[0]["error"] == "RecursionError"
    assert sentry_capture.events == []


async def test_deep_output_not_decoded(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    # Outputs are never decoded by the runner, so however deep they are
    # nested they cost nothing and lose nothing.
    deep = (
        "from IPython.display import display\n"
        "import sys\n"
        "sys.setrecursionlimit(100000)\n"
        "d = []\n"
        "for _ in range(20000):\n"
        "    d = [d]\n"
        "display({'application/json': d}, raw=True)"
    )
    run = await run_cells(tmp_path, {"output.ipynb": [("deep", deep)]})

    assert run.results["output.ipynb"].first_failure is None
    assert run.logs_named("Kernel message dropped: cannot decode it") == []
    assert sentry_capture.events == []


async def test_short_startup_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kernel spec whose process starts but never replies to requests.
    spec_dir = tmp_path / "kernels" / "mute"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    spec = {"argv": argv, "display_name": "Mute", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    backend = LocalBackend(startup_timeout=0.2)

    with pytest.raises(KernelStartError) as info:
        async with backend.kernel("mute", tmp_path):
            pass
    await backend.shutdown()

    # jupyter-client's own timeout, checked once a second, would add its
    # RuntimeError's text, "Kernel didn't respond in 0 seconds", after a
    # colon. The exact message shows the backend's timer ended the wait.
    assert info.value.message == (
        "Kernel 'mute' did not become ready within 0.2 s; raise"
        " --startup-timeout if it is slow to start"
    )


async def test_meanwhile_error_after_request(tmp_path: Path) -> None:
    def fail() -> None:
        msg = "placing spans failed"
        raise ValueError(msg)

    backend = LocalBackend()
    try:
        async with backend.kernel("python3", tmp_path) as kernel:
            with pytest.raises(ValueError, match="placing spans failed"):
                await kernel.execute("x = 1", {}, timeout=30, meanwhile=fail)
            # The failed request's messages were all read, so the next
            # request gets its own outcome.
            outcome = await kernel.execute("x + 1", {}, timeout=30)
    finally:
        await backend.shutdown()

    assert outcome.status is OutcomeStatus.ok
    assert outcome.execution_count == 2


def test_extension_argument_only_for_ipykernel(tmp_path: Path) -> None:
    spec_dir = tmp_path / "other"
    spec_dir.mkdir()
    spec = {"argv": ["sleep", "1000"], "display_name": "Other"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path)])

    other = AsyncKernelManager(kernel_name="other", kernel_spec_manager=specs)
    python = AsyncKernelManager(kernel_name="python3")

    assert _is_ipykernel(other) is False
    assert _is_ipykernel(python) is True


def test_decode_checks_signature() -> None:
    session = Session(key=b"secret")
    message = session.msg("status", {"execution_state": "idle"})
    frames = session.serialize(message)

    decoded = decode_message(session, frames)
    frames[3] = b'{"msg_id": "forged"}'

    assert decoded["msg_type"] == "status"
    assert decoded["content"] == {"execution_state": "idle"}
    with pytest.raises(ValueError, match="invalid message signature"):
        decode_message(session, frames)


def test_decode_skips_unread_content() -> None:
    session = Session(key=b"secret")
    message = session.msg("stream", {"name": "stdout", "text": "hi"})

    decoded = decode_message(session, session.serialize(message))

    assert decoded["msg_type"] == "stream"
    assert decoded["content"] == {}


@pytest.mark.timeout(60)
async def test_invalid_utf8_error_text(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    # A file name that is not UTF-8 puts a lone surrogate into the error,
    # which the kernel sends as bytes that are not valid UTF-8.
    cell = (
        "import os\n"
        "name = os.fsdecode(b'data-\\xff.csv')\n"
        "raise ValueError(f'cannot parse {name}')"
    )
    run = await run_cells(tmp_path, {"bad-name.ipynb": [("parse", cell)]})

    failure = run.results["bad-name.ipynb"].first_failure
    assert failure is not None
    assert failure.status is CellStatus.failed
    assert failure.error is not None
    assert failure.error.ename == "ValueError"
    event = event_of(sentry_capture, "bad-name.ipynb")
    assert event["exception"]["values"][-1]["type"] == "ValueError"


def test_decode_replaces_invalid_utf8() -> None:
    session = Session(key=b"secret")
    message = session.msg(
        "error", {"ename": "E", "evalue": "x", "traceback": []}
    )
    # Frames: delimiter, signature, header, parent, metadata, content.
    frames = session.serialize(message)
    frames[5] = frames[5].replace(b'"x"', b'"\xff"')
    frames[1] = session.sign(frames[2:6])

    decoded = decode_message(session, frames)

    assert decoded["content"]["evalue"] == "\ufffd"
