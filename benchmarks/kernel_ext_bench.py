"""Measure what the nbsentry kernel extension costs per cell.

Two figures, from one run on two local ipykernels started side by side,
one with the extension and one without:

- In-kernel cost: the median time the extension's ``pre_run_cell`` and
  ``post_run_cell`` hooks take for a trivial reported cell (``x = i``),
  report building and sending included. The hooks are timed from inside
  the kernel with ``time.perf_counter_ns``.
- End-to-end throughput: the median time from sending an
  ``execute_request`` to having both its reply and its ``idle`` status, in
  a tight jupyter-client loop, for each kernel. Rounds alternate between
  the kernels so that machine noise hits both alike.

Run with ``.venv/bin/python benchmarks/kernel_ext_bench.py``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import os
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from nbsentry.execution import build_execute_content

# Wraps the extension's registered hooks with timers. Run silently, so
# that it fires no hooks itself.
_TIMER_SETUP = """
import time as _time
from nbsentry_kernel._extension import current_extension as _current
_ext = _current()
_events = get_ipython().events
_hook_ns = []
_hook_cpu_ns = []
_pre = [0, 0]
def _timed_pre(info, _hook=_ext.pre_run_cell):
    wall, cpu = _time.perf_counter_ns(), _time.thread_time_ns()
    _hook(info)
    _pre[0] = _time.perf_counter_ns() - wall
    _pre[1] = _time.thread_time_ns() - cpu
def _timed_post(result, _hook=_ext.post_run_cell):
    wall, cpu = _time.perf_counter_ns(), _time.thread_time_ns()
    _hook(result)
    _hook_ns.append(_pre[0] + _time.perf_counter_ns() - wall)
    _hook_cpu_ns.append(_pre[1] + _time.thread_time_ns() - cpu)
_events.unregister("pre_run_cell", _ext.pre_run_cell)
_events.unregister("post_run_cell", _ext.post_run_cell)
_events.register("pre_run_cell", _timed_pre)
_events.register("post_run_cell", _timed_post)
"""


def _metadata(cell: int) -> dict[str, Any]:
    trace_id = os.urandom(16).hex()
    span_id = os.urandom(8).hex()
    cell_id = f"cell-{cell}"
    return {
        "cellId": cell_id,
        "nbsentry": {
            "version": 1,
            "sentry-trace": f"{trace_id}-{span_id}-1",
            "baggage": f"sentry-trace_id={trace_id}",
            "traceparent": f"00-{trace_id}-{span_id}-01",
            "notebook": "bench.ipynb",
            "cell_id": cell_id,
            "cell_number": cell + 1,
            "integrations": False,
        },
    }


def _content(code: str, **changes: object) -> dict[str, Any]:
    content = build_execute_content(code)
    content.update(changes)
    return content


async def _execute(
    client: Any, content: dict[str, Any], metadata: dict[str, Any]
) -> dict[str, Any]:
    """Send one execute request and wait for its reply and idle status."""
    msg = client.session.msg("execute_request", content, metadata=metadata)
    msg_id = msg["header"]["msg_id"]
    client.shell_channel.send(msg)
    idle = False
    reply: dict[str, Any] | None = None
    while not idle:
        message = await client.get_iopub_msg(timeout=30)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        idle = (
            message["msg_type"] == "status"
            and message["content"]["execution_state"] == "idle"
        )
    while reply is None:
        message = await client.get_shell_msg(timeout=30)
        if message["parent_header"].get("msg_id") == msg_id:
            reply = message
    return reply


async def _run_silently(client: Any, code: str) -> None:
    content = _content(code, silent=True, store_history=False)
    reply = await _execute(client, content, {})
    if reply["content"]["status"] != "ok":
        msg = f"Setup code failed: {reply['content']}"
        raise RuntimeError(msg)


async def _evaluate(client: Any, expression: str) -> Any:
    content = _content(
        "",
        silent=True,
        store_history=False,
        user_expressions={"v": expression},
    )
    reply = await _execute(client, content, {})
    value = reply["content"]["user_expressions"]["v"]
    return ast.literal_eval(value["data"]["text/plain"])


async def _round(
    client: Any, first: int, cells: int, *, report: bool
) -> list[float]:
    times = []
    for i in range(first, first + cells):
        metadata = _metadata(i) if report else {}
        start = time.perf_counter()
        await _execute(client, _content(f"x = {i}"), metadata)
        times.append(time.perf_counter() - start)
    return times


def _machine() -> str:
    """Describe the CPU model and the cores this process may use."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0))
    return f"{model}, {os.cpu_count()} cores, {usable} usable (nproc)"


async def main(cells: int, rounds: int) -> None:
    """Run both kernels side by side and print the figures as Markdown."""
    managers = {
        "with": AsyncKernelManager(kernel_name="python3"),
        "without": AsyncKernelManager(kernel_name="python3"),
    }
    await managers["with"].start_kernel(
        extra_arguments=["--IPKernelApp.extensions=nbsentry_kernel"]
    )
    await managers["without"].start_kernel()

    clients = {name: manager.client() for name, manager in managers.items()}
    try:
        for client in clients.values():
            client.start_channels()
            await client.wait_for_ready(timeout=60)
        await _run_silently(clients["with"], _TIMER_SETUP)
        times: dict[str, list[float]] = {"with": [], "without": []}
        per_round = cells // rounds
        for index in range(rounds):
            order = (
                ("with", "without") if index % 2 == 0 else ("without", "with")
            )
            for name in order:
                times[name] += await _round(
                    clients[name],
                    index * per_round,
                    per_round,
                    report=name == "with",
                )
        # IPython's repr shortens long lists, so fetch the medians.
        hook_us, hook_p90, cpu_us, timed = await _evaluate(
            clients["with"],
            "(__import__('statistics').median(_hook_ns) / 1000,"
            " __import__('statistics').quantiles(_hook_ns, n=10)[-1] / 1000,"
            " __import__('statistics').median(_hook_cpu_ns) / 1000,"
            " len(_hook_ns))",
        )
    finally:
        for client in clients.values():
            client.stop_channels()
        for manager in managers.values():
            await manager.shutdown_kernel(now=True)

    median = {
        name: statistics.median(values) for name, values in times.items()
    }
    rate = {name: 1 / value for name, value in median.items()}

    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"Machine: {_machine()}, {python}")
    print(
        f"ipykernel {version('ipykernel')}, IPython {version('ipython')},"
        f" jupyter-client {version('jupyter-client')}"
    )
    print(
        f"Cells: {timed} timed in the kernel, {cells} per kernel end to end,"
        f" {rounds} alternating rounds"
    )
    print()
    print("| Figure | Without extension | With extension |")
    print("|---|---|---|")
    print(
        "| In-kernel hooks and report, median wall time per cell | - |"
        f" {hook_us:.1f} us (p90 {hook_p90:.1f} us) |"
    )
    print(
        "| In-kernel hooks and report, median main-thread CPU per cell | - |"
        f" {cpu_us:.1f} us |"
    )
    print(
        f"| End to end, median per cell | {median['without'] * 1000:.2f} ms"
        f" | {median['with'] * 1000:.2f} ms |"
    )
    print(
        f"| End to end, cells/s | {rate['without']:.0f} | {rate['with']:.0f} |"
    )
    print()
    ratio = rate["with"] / rate["without"]
    print(f"Throughput ratio, with / without: {ratio:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells",
        type=int,
        default=1000,
        help="cells per kernel (default 1000)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="alternating rounds (default 10)",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.cells, arguments.rounds))
