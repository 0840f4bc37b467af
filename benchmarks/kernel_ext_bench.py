"""Measure what the nbsentry kernel extension costs per cell.

One local ipykernel, started with the extension, runs trivial cells
(``x = i``). Two figures:

- In-kernel cost: the median time the extension's ``pre_run_cell`` and
  ``post_run_cell`` hooks take for a reported cell, report building,
  packing, signing and queueing included. The hooks are timed from
  inside the kernel with ``time.perf_counter_ns`` and
  ``time.thread_time_ns``.
- End-to-end throughput with the extension loaded and unloaded, in
  rounds that alternate between the two on the same kernel process, so
  that machine noise and the differences between two kernel processes
  hit both alike. Two clients drive the kernel: the nbsentry runner,
  which requests reports and turns them into spans, and a tight
  jupyter-client loop, which requests reports too but only waits for
  each request's reply and ``idle`` status.

Run with ``.venv/bin/python benchmarks/kernel_ext_bench.py``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import logging
import os
import platform
import statistics
import tempfile
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sentry_sdk
import structlog
from bench_common import (
    DiscardingTransport,
    describe_machine,
    write_notebook,
)
from jupyter_client.manager import AsyncKernelManager

from nbsentry import LocalKernel, NotebookExecutor, Telemetry
from nbsentry.backends.local import EXTENSION_ARGUMENT
from nbsentry.execution import build_execute_content
from nbsentry.notebooks import NotebookFile

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


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

# Puts the extension's own hooks back in place of the timed ones.
_TIMER_TEARDOWN = """
_events.unregister("pre_run_cell", _timed_pre)
_events.unregister("post_run_cell", _timed_post)
_events.register("pre_run_cell", _ext.pre_run_cell)
_events.register("post_run_cell", _ext.post_run_cell)
"""

_LOAD = "get_ipython().extension_manager.load_extension('nbsentry_kernel')"
_UNLOAD = "get_ipython().extension_manager.unload_extension('nbsentry_kernel')"

_STATES = ("with", "without")


class _SharedKernelBackend:
    """A backend that lends the one benchmark kernel to every notebook."""

    name = "local"
    node = None
    image = None

    def __init__(self, kernel: LocalKernel) -> None:
        self._kernel = kernel

    async def startup(self, kernel_name: str, cwd: Path) -> None:
        del kernel_name, cwd

    async def shutdown(self) -> None:
        pass

    @asynccontextmanager
    async def kernel(
        self, kernel_name: str, cwd: Path
    ) -> AsyncIterator[LocalKernel]:
        del kernel_name, cwd
        yield self._kernel


@dataclass
class _Rounds:
    """Mean time per cell of each round, by client and extension state."""

    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, client: str, state: str, seconds: float) -> None:
        self.times.setdefault((client, state), []).append(seconds)

    def median(self, client: str, state: str) -> float:
        return statistics.median(self.times[client, state])

    def ratio(self, client: str) -> float:
        """Cells/s with the extension over cells/s without it."""
        return self.median(client, "without") / self.median(client, "with")

    def paired(self, client: str) -> tuple[float, float, float]:
        """Quartiles of the ratio between rounds run one after the other."""
        pairs = zip(
            self.times[client, "with"],
            self.times[client, "without"],
            strict=True,
        )
        ratios = [without / with_ for with_, without in pairs]
        if len(ratios) < 2:  # noqa: PLR2004 - quantiles needs two values
            return ratios[0], ratios[0], ratios[0]
        first, middle, last = statistics.quantiles(ratios, n=4)
        return first, middle, last


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


async def _loop_round(client: Any, first: int, cells: int) -> float:
    """Run cells in a tight loop and return the mean time per cell."""
    started = time.perf_counter()
    for i in range(first, first + cells):
        await _execute(client, _content(f"x = {i}"), _metadata(i))
    return (time.perf_counter() - started) / cells


async def _runner_round(
    executor: NotebookExecutor, telemetry: Telemetry, file: NotebookFile
) -> float:
    """Run the notebook with the runner and return the mean time per cell.

    The time covers the whole notebook run: the runner attaches kernel
    reports in batches, the last one as the notebook ends, and then
    sends the notebook transaction, which contains the kernel spans.
    """
    with telemetry.phase("run") as phase:
        started = time.perf_counter()
        result = await executor.run(phase, file)
        seconds = time.perf_counter() - started
    if result.first_failure is not None or result.error is not None:
        msg = f"benchmark notebook failed: {result}"
        raise RuntimeError(msg)
    return seconds / len(result.cells)


async def _in_kernel_cost(client: Any, cells: int) -> tuple[Any, ...]:
    """Time the hooks of reported cells inside the kernel."""
    await _run_silently(client, _TIMER_SETUP)
    await _loop_round(client, 0, cells)
    # IPython's repr shortens long lists, so fetch the medians.
    figures = await _evaluate(
        client,
        "(__import__('statistics').median(_hook_ns) / 1000,"
        " __import__('statistics').quantiles(_hook_ns, n=10)[-1] / 1000,"
        " __import__('statistics').median(_hook_cpu_ns) / 1000,"
        " len(_hook_ns))",
    )
    await _run_silently(client, _TIMER_TEARDOWN)
    return tuple(figures)


async def _end_to_end(
    client: Any, kernel: LocalKernel, cells: int, rounds: int
) -> _Rounds:
    """Alternate rounds with the extension loaded and unloaded."""
    sentry_sdk.init(transport=DiscardingTransport(), traces_sample_rate=1.0)
    telemetry = Telemetry(flock="bench", business="bench", user="bench01")
    executor = NotebookExecutor(_SharedKernelBackend(kernel), telemetry)
    results = _Rounds()
    with tempfile.TemporaryDirectory() as folder:
        path = write_notebook(Path(folder), cells)
        file = NotebookFile(path, path.name)
        for index in range(rounds):
            states = _STATES if index % 2 == 0 else _STATES[::-1]
            for state in states:
                await _run_silently(
                    client, _LOAD if state == "with" else _UNLOAD
                )
                seconds = await _runner_round(executor, telemetry, file)
                results.add("runner", state, seconds)
                seconds = await _loop_round(client, index * cells, cells)
                results.add("loop", state, seconds)
    return results


def _print_figures(
    in_kernel: tuple[Any, ...], results: _Rounds, cells: int, rounds: int
) -> None:
    hook_us, hook_p90, cpu_us, timed = in_kernel
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"Machine: {describe_machine()}, {python}")
    print(
        f"ipykernel {version('ipykernel')}, IPython {version('ipython')},"
        f" jupyter-client {version('jupyter-client')},"
        f" sentry-sdk {version('sentry-sdk')}"
    )
    print(
        f"In the kernel: {timed} reported cells. End to end: {rounds}"
        f" rounds of {cells} cells per client and extension state."
    )
    print()
    print(
        f"In-kernel hooks and report, median per cell: {hook_us:.1f} us wall"
        f" (p90 {hook_p90:.1f} us), {cpu_us:.1f} us main-thread CPU"
    )
    print()
    print(
        "| Client | Without, per cell | With, per cell"
        " | Ratio of cells/s, with / without | Paired rounds, quartiles |"
    )
    print("|---|---|---|---|---|")
    for client, label in (
        ("runner", "nbsentry runner"),
        ("loop", "jupyter-client loop"),
    ):
        without = results.median(client, "without")
        with_ = results.median(client, "with")
        first, middle, last = results.paired(client)
        print(
            f"| {label} | {without * 1000:.3f} ms | {with_ * 1000:.3f} ms"
            f" | {results.ratio(client):.3f}"
            f" | {first:.3f}, {middle:.3f}, {last:.3f} |"
        )


async def main(cells: int, rounds: int, timed_cells: int) -> None:
    """Start the kernel, take both figures and print them as Markdown."""
    # The runner warns when the unloaded extension sends no report.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR)
    )
    manager = AsyncKernelManager(kernel_name="python3")
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "kernel.log"
        with output.open("wb") as file:
            await manager.start_kernel(
                extra_arguments=[EXTENSION_ARGUMENT],
                stdout=file,
                stderr=file,
            )
        client = manager.client()
        try:
            client.start_channels()
            await client.wait_for_ready(timeout=60)
            kernel = LocalKernel(manager, client, "python3", output)
            in_kernel = await _in_kernel_cost(client, timed_cells)
            results = await _end_to_end(client, kernel, cells, rounds)
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)
    _print_figures(in_kernel, results, cells, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells",
        type=int,
        default=100,
        help="cells per round end to end (default 100)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=40,
        help="rounds per client and extension state (default 40)",
    )
    parser.add_argument(
        "--timed-cells",
        type=int,
        default=1000,
        help="reported cells timed inside the kernel (default 1000)",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.cells, arguments.rounds, arguments.timed_cells))
