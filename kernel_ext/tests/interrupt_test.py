"""Partial reports of long cells, and interrupts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kernel_support import KernelSession

from kernel_support import nbsentry_metadata

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def set_partial_interval(kernel: KernelSession, seconds: float) -> None:
    await kernel.execute_silently(
        "from nbsentry_kernel._extension import current_extension\n"
        f"current_extension().partial.interval = {seconds}\n"
    )


async def test_partial_reports_of_long_cell(kernel: KernelSession) -> None:
    await set_partial_interval(kernel, 0.2)
    try:
        execution = await kernel.run(
            "import time\n"
            "from nbsentry_kernel import span\n"
            "for i in range(3):\n"
            "    with span('step', index=i):\n"
            "        time.sleep(0.05)\n"
            "    time.sleep(0.5)\n"
            "with span('last'):\n"
            "    pass\n",
            cell_id="long",
        )
    finally:
        await set_partial_interval(kernel, 5.0)
    partials = execution.partials
    assert len(partials) >= 2
    partial_spans = [s for p in partials for s in p["spans"]]
    final = execution.final
    assert [s["data"].get("index") for s in partial_spans] == [0, 1, 2]
    assert [s["op"] for s in final["spans"]] == ["last"]
    for partial in partials:
        assert partial["end"] is None
        assert partial["exception"] is None
        assert partial["spans"] != []
        assert partial["breadcrumbs"] == []
        assert partial["start"] == final["start"]
    # The final report comes last, after every partial one.
    assert execution.reports[-1] is final


async def test_interrupt_names_running_line(kernel: KernelSession) -> None:
    nbsentry = nbsentry_metadata(cell_id="spin")
    await set_partial_interval(kernel, 0.2)
    msg_id = kernel.send(
        "import time\n"
        "from nbsentry_kernel import span\n"
        "with span('before'):\n"
        "    pass\n"
        "while True: pass\n",
        nbsentry=nbsentry,
    )
    interrupted = False

    async def interrupt_after_partial(msg: dict[str, Any]) -> None:
        nonlocal interrupted
        if not interrupted and msg["msg_type"] == "comm_open":
            interrupted = True
            await kernel.manager.interrupt_kernel()

    try:
        execution = await kernel.collect(
            msg_id, on_iopub=interrupt_after_partial
        )
    finally:
        await set_partial_interval(kernel, 5.0)
    assert interrupted
    assert [s["op"] for p in execution.partials for s in p["spans"]] == [
        "before"
    ]
    final = execution.final
    assert final["status"] == "error"
    assert final["spans"] == []
    (value,) = final["exception"]["values"]
    assert value["type"] == "KeyboardInterrupt"
    innermost = value["frames"][-1]
    assert innermost["cell_id"] == "spin"
    assert innermost["lineno"] == 5
    assert innermost["context_line"] == "while True: pass"
