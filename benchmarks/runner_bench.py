"""Compare per-cell cost of nbsentry with nbclient, papermill and a loop.

Every runner executes the same notebook of trivial cells (``x = i``) on a
fresh local ipykernel. The figure per runner is the median, over rounds,
of the mean time per cell between the first and the last cell, so kernel
start-up is left out. papermill cannot be timed per cell from outside, so
its figure is its whole run divided by the cell count. Rounds interleave
the runners so that machine noise hits all of them alike.

Run with ``.venv/bin/python benchmarks/runner_bench.py`` after
``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import queue
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import sentry_sdk
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

if TYPE_CHECKING:
    from nbsentry.sentry import PhaseTrace

from bench_common import (
    CellClock,
    DiscardingTransport,
    describe_machine,
    per_cell,
    write_notebook,
)

from nbsentry import (
    LocalBackend,
    NotebookExecutor,
    Telemetry,
)
from nbsentry.notebooks import NotebookFile

Runner = Callable[[Path, int], Coroutine[Any, Any, float]]


async def _tight_loop(path: Path, cells: int) -> float:
    del path
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    times = []
    try:
        for i in range(cells):
            msg_id = client.execute(f"x = {i}")
            idle = False
            while not idle:
                msg = await client.get_iopub_msg(timeout=10)
                idle = (
                    msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"
                )
            reply = await client.get_shell_msg(timeout=10)
            if reply["parent_header"]["msg_id"] != msg_id:
                raise queue.Empty
            times.append(time.perf_counter())
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
    return per_cell(times)


async def _nbclient(path: Path, cells: int) -> float:
    del cells
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(notebook, kernel_name="python3")
    times = []
    async with client.async_setup_kernel():
        for index, cell in enumerate(notebook.cells):
            await client.async_execute_cell(cell, index)
            times.append(time.perf_counter())
    return per_cell(times)


def _papermill(path: Path, cells: int) -> float:
    import papermill  # noqa: PLC0415 - optional, imported when used

    output = path.with_name("papermill-output.ipynb")
    started = time.perf_counter()
    papermill.execute_notebook(
        str(path), str(output), kernel_name="python3", progress_bar=False
    )
    return (time.perf_counter() - started) / cells


def _nbsentry(*, extension: bool) -> Runner:
    async def run(path: Path, cells: int) -> float:
        del cells
        clock = CellClock()
        backend = LocalBackend(load_extension=extension)
        telemetry = Telemetry(
            flock="bench", business="NotebookRunner", user="bench01"
        )
        executor = NotebookExecutor(backend, telemetry, observer=clock)
        file = NotebookFile(path, path.name)
        with telemetry.phase("run") as phase:
            await _run_one(executor, phase, file)
        return per_cell(clock.times)

    return run


async def _run_one(
    executor: NotebookExecutor, phase: PhaseTrace, file: NotebookFile
) -> None:
    result = await executor.run(phase, file)
    if result.first_failure is not None or result.error is not None:
        msg = f"benchmark notebook failed: {result}"
        raise RuntimeError(msg)


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--papermill-cells", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    transport = DiscardingTransport()
    sentry_sdk.init(transport=transport, traces_sample_rate=1.0)
    runners: dict[str, Runner] = {
        "jupyter-client loop": _tight_loop,
        "nbclient": _nbclient,
        "nbsentry": _nbsentry(extension=True),
        "nbsentry, no extension": _nbsentry(extension=False),
    }
    results: dict[str, list[float]] = {name: [] for name in runners}
    results["papermill"] = []
    with tempfile.TemporaryDirectory() as folder:
        path = write_notebook(Path(folder), args.cells)
        small = write_notebook(Path(folder), args.papermill_cells)
        for _ in range(args.rounds):
            for name, runner in runners.items():
                results[name].append(asyncio.run(runner(path, args.cells)))
            results["papermill"].append(
                _papermill(small, args.papermill_cells)
            )
    base = statistics.median(results["jupyter-client loop"])
    python = platform.python_version()
    print(f"Machine: {describe_machine()}, Python {python}")
    print(
        f"Cells: {args.cells} ({args.papermill_cells} for papermill),"
        f" rounds: {args.rounds}, envelopes: {transport.envelopes}"
    )
    print()
    print("| runner | median ms/cell | cells/s | loop time / runner time |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"| {name} | {median * 1000:.2f} | {1 / median:.0f}"
            f" | {base / median:.2f} |"
        )


if __name__ == "__main__":
    main()
