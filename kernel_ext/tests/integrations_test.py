"""Forwarding of spans that sentry-sdk's integrations record in the kernel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from kernel_support import KernelSession, start_kernel

from nbsentry_kernel._limits import MAX_SPANS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def fresh_kernel(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[KernelSession]:
    """A kernel of its own, since a sentry-sdk client is process-wide."""
    async with start_kernel(tmp_path_factory.mktemp("fresh")) as session:
        yield session
        errors = await session.extension_errors()
        assert errors == [], "\n".join(errors)


async def test_subprocess_span_forwarded(fresh_kernel: KernelSession) -> None:
    execution = await fresh_kernel.run(
        "import subprocess, sys\n"
        "from nbsentry_kernel import span\n"
        "with span('prepare') as prepare:\n"
        "    subprocess.run([sys.executable, '-c', 'pass'], check=True)\n",
        cell_id="subprocess",
        integrations=True,
    )
    report = execution.final
    assert report["status"] == "ok"
    by_op = {s["op"]: s for s in report["spans"]}
    assert sorted(by_op) == [
        "prepare",
        "subprocess",
        "subprocess.communicate",
        "subprocess.wait",
    ]
    prepare = by_op["prepare"]
    popen = by_op["subprocess"]
    assert prepare["parent_span_id"] is None
    assert popen["parent_span_id"] == prepare["span_id"]
    assert popen["description"] is not None
    assert popen["description"].endswith(" -c pass")
    assert prepare["start"] <= popen["start"] <= popen["end"]
    assert popen["end"] <= prepare["end"] + 0.001
    # The extension's client has no DSN and is the active one.
    state = await fresh_kernel.evaluate(
        "(__import__('sentry_sdk').get_client().dsn,"
        " __import__('sentry_sdk').get_client().is_active())"
    )
    assert state == (None, True)


async def test_spans_past_sdk_limit_counted(
    fresh_kernel: KernelSession,
) -> None:
    # sentry-sdk keeps about 1,000 spans per transaction and drops the
    # rest. The report keeps its first MAX_SPANS and counts all others.
    execution = await fresh_kernel.run(
        "import sentry_sdk\n"
        "for i in range(1200):\n"
        "    with sentry_sdk.start_span(op='many'):\n"
        "        pass\n",
        cell_id="many",
        integrations=True,
    )
    report = execution.final
    assert report["status"] == "ok"
    assert len(report["spans"]) == MAX_SPANS
    assert report["dropped"]["spans"] == 1200 - MAX_SPANS


async def test_no_integrations_without_option(
    fresh_kernel: KernelSession,
) -> None:
    execution = await fresh_kernel.run(
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'pass'], check=True)\n",
        cell_id="plain",
    )
    assert execution.final["spans"] == []


async def test_notebook_client_kept(fresh_kernel: KernelSession) -> None:
    setup = await fresh_kernel.run(
        "import sentry_sdk, subprocess, sys\n"
        "from sentry_sdk.transport import Transport\n"
        "class Keep(Transport):\n"
        "    envelopes = []\n"
        "    def capture_envelope(self, envelope):\n"
        "        self.envelopes.append(envelope)\n"
        "sentry_sdk.init(transport=Keep(), traces_sample_rate=1.0,"
        " default_integrations=False)\n"
        "own = sentry_sdk.get_client()\n",
        cell_id="own-init",
        integrations=True,
    )
    assert setup.final["status"] == "ok"
    assert setup.final["spans"] == []
    execution = await fresh_kernel.run(
        "subprocess.run([sys.executable, '-c', 'pass'], check=True)\n"
        "assert sentry_sdk.get_client() is own\n",
        cell_id="own-client",
        integrations=True,
    )
    assert execution.final["status"] == "ok"
    assert execution.final["spans"] == []
    # Neither cell sent the runner's transaction to the notebook's client.
    assert await fresh_kernel.evaluate("len(Keep.envelopes)") == 0
