"""User spans, partial reports and requests that get no report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kernel_support import KernelSession

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPAN_ID_LENGTH = 16


async def test_nested_spans(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "import time\n"
        "from nbsentry_kernel import span\n"
        "with span('outer', 'the outer work', rows=3) as outer:\n"
        "    with span('inner', flag=True, ratio=0.5, thing=object):\n"
        "        time.sleep(0.01)\n"
        "    outer.set_data('done', 'yes')\n",
        cell_id="nested",
    )
    report = execution.final
    assert report["status"] == "ok"
    inner, outer = report["spans"]
    assert outer["op"] == "outer"
    assert outer["description"] == "the outer work"
    assert outer["parent_span_id"] is None
    assert outer["status"] == "ok"
    assert outer["data"] == {"rows": 3, "done": "yes"}
    assert inner["op"] == "inner"
    assert inner["description"] is None
    assert inner["parent_span_id"] == outer["span_id"]
    assert inner["data"] == {
        "flag": True,
        "ratio": 0.5,
        "thing": "<class 'object'>",
    }
    assert len(inner["span_id"]) == SPAN_ID_LENGTH
    assert inner["span_id"] != outer["span_id"]
    assert report["start"] <= outer["start"] <= inner["start"]
    assert inner["start"] + 0.01 <= inner["end"] <= outer["end"]
    assert outer["end"] <= report["end"]


async def test_span_decorator_and_error(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "from nbsentry_kernel import span\n"
        "@span('step')\n"
        "def step(n):\n"
        "    if n == 2:\n"
        "        raise KeyError(n)\n"
        "for n in range(3):\n"
        "    step(n)\n",
        cell_id="decorated",
    )
    report = execution.final
    assert [s["status"] for s in report["spans"]] == [
        "ok",
        "ok",
        "internal_error",
    ]
    assert {s["parent_span_id"] for s in report["spans"]} == {None}
    (value,) = report["exception"]["values"]
    assert value["type"] == "KeyError"
    assert value["value"] == "2"
    # The decorator's own frame is the extension's, so it is left out.
    assert [(f["function"], f["lineno"]) for f in value["frames"]] == [
        ("<module>", 7),
        ("step", 5),
    ]


async def test_async_decorated_span(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "import asyncio\n"
        "from nbsentry_kernel import span\n"
        "@span('wait')\n"
        "async def wait():\n"
        "    await asyncio.sleep(0.01)\n"
        "await wait()\n",
        cell_id="async",
    )
    (wait,) = execution.final["spans"]
    assert wait["op"] == "wait"
    assert wait["end"] - wait["start"] >= 0.01


async def test_span_outside_reported_cell(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "from nbsentry_kernel import span\n"
        "with span('quiet') as quiet:\n"
        "    print(quiet.span_id)\n",
        report=False,
    )
    assert execution.reports == []
    assert execution.stdout == "None\n"


async def test_request_without_metadata(kernel: KernelSession) -> None:
    execution = await kernel.run("raise ValueError('no report')", report=False)
    assert execution.reply["content"]["status"] == "error"
    assert execution.reports == []


async def test_unknown_version_no_report(kernel: KernelSession) -> None:
    msg_id = kernel.send(
        "1 + 1",
        nbsentry={"version": 2, "cell_id": "future", "sentry-trace": "x"},
    )
    execution = await kernel.collect(msg_id)
    assert execution.reports == []


async def test_report_envelope(kernel: KernelSession) -> None:
    execution = await kernel.run("x = 1", cell_id="envelope")
    (message,) = execution.report_messages
    assert message["msg_type"] == "comm_open"
    assert message["parent_header"]["msg_id"] == execution.msg_id
    assert message["parent_header"]["msg_type"] == "execute_request"
    content: dict[str, Any] = message["content"]
    assert sorted(content) == ["comm_id", "data", "target_name"]
    assert len(content["comm_id"]) == 32
    report = content["data"]
    assert report["msg_id"] == execution.msg_id
    assert report["cell_id"] == "envelope"
    assert report["notebook"] == "folder/test.ipynb"
    assert report["status"] == "ok"
    assert report["exception"] is None
    assert (
        report["execution_count"]
        == execution.reply["content"]["execution_count"]
    )
    assert report["dropped"] == {
        "spans": 0,
        "breadcrumbs": 0,
        "frames": 0,
        "exceptions": 0,
    }
    # The report comes before the cell's idle status on iopub.
    types = [m["msg_type"] for m in execution.iopub]
    assert types.index("comm_open") < types.index("status", 1)


async def test_span_count_capped(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "from nbsentry_kernel import span\n"
        "for i in range(250):\n"
        "    with span('many'):\n"
        "        pass\n",
        cell_id="many",
    )
    report = execution.final
    assert len(report["spans"]) == 200
    assert report["dropped"]["spans"] == 50
