# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of the notebook runner business and the monkey that repeats it."""

from __future__ import annotations

import asyncio
import random
import shutil
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from nbsentry.config import NotebookOrder
from nbsentry.exceptions import ConfigError
from nbsentry.models import NotebookStatus
from tests.support import capture_sentry
from tests.support.runs import (
    REPO_ROOT,
    RecordingObserver,
    build_monkey,
    logs_named,
    make_config,
    run_notebooks,
    sentry_options,
    transactions_by_op,
    write_notebook,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from nbsentry.models import NotebookResult

NOTEBOOKS = REPO_ROOT / "notebooks"
ONE_CELL = REPO_ROOT / "tests" / "data" / "tree" / "a.ipynb"


def _copies(folder: Path, names: list[str]) -> list[Path]:
    paths = [folder / name for name in names]
    for path in paths:
        shutil.copy(ONE_CELL, path)
    return paths


def _iteration_names(
    results: list[NotebookResult], sizes: list[int]
) -> list[list[str]]:
    names = [r.name for r in results]
    grouped = []
    for size in sizes:
        grouped.append(names[:size])
        names = names[size:]
    return grouped


async def test_max_executions(tmp_path: Path) -> None:
    _copies(tmp_path, ["n1.ipynb", "n2.ipynb", "n3.ipynb"])

    run = await run_notebooks([tmp_path], iterations=3, max_executions=2)

    assert run.summary.iterations == 3
    assert _iteration_names(run.summary.notebooks, [2, 2, 2]) == [
        ["n1.ipynb", "n2.ipynb"],
        ["n3.ipynb", "n1.ipynb"],
        ["n2.ipynb", "n3.ipynb"],
    ]
    notebooks = transactions_by_op(run.transport, "nbsentry.notebook")
    per_iteration = [
        sum(
            n["contexts"]["trace"]["trace_id"]
            == iteration["contexts"]["trace"]["trace_id"]
            for n in notebooks
        )
        for iteration in transactions_by_op(run.transport, "nbsentry.run")
    ]
    assert per_iteration == [2, 2, 2]


async def test_notebooks_found_each_pass(tmp_path: Path) -> None:
    _copies(tmp_path, ["n1.ipynb"])

    def add_notebook(result: NotebookResult) -> None:
        del result
        if not (tmp_path / "n2.ipynb").exists():
            _copies(tmp_path, ["n2.ipynb"])

    observer = RecordingObserver(on_notebook_finished=add_notebook)
    run = await run_notebooks([tmp_path], iterations=2, observer=observer)

    assert [r.name for r in run.summary.notebooks] == [
        "n1.ipynb",
        "n1.ipynb",
        "n2.ipynb",
    ]


async def test_idle_times_awaited(monkeypatch: pytest.MonkeyPatch) -> None:
    # Distinct values tell the idle times apart from other sleeps.
    idle: dict[str, Any] = {
        "idle_time": 0.0011,
        "error_idle_time": 0.0013,
        "notebook_idle_time": 0.0017,
        "execution_idle_time": 0.0019,
    }
    sleeps: list[float] = []
    real_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def recording_sleep(delay: float, result: Any = None) -> Any:
        sleeps.append(delay)
        await real_sleep(delay)
        return result

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    paths = [NOTEBOOKS / "failing-cell.ipynb", NOTEBOOKS / "passing.ipynb"]

    run = await run_notebooks(paths, iterations=3, max_executions=1, **idle)
    run_again = await run_notebooks(paths, iterations=1, **idle)

    # Iterations: failing (2 cells run), passing (4), failing (2); then
    # one iteration of both notebooks.
    assert [r.name for r in run.summary.notebooks] == [
        "failing-cell.ipynb",
        "passing.ipynb",
        "failing-cell.ipynb",
    ]
    assert run_again.summary.iterations == 1
    assert sleeps.count(idle["error_idle_time"]) == 1
    assert sleeps.count(idle["idle_time"]) == 1
    assert sleeps.count(idle["notebook_idle_time"]) == 1
    assert sleeps.count(idle["execution_idle_time"]) == (1 + 3 + 1) + (1 + 3)


async def test_iterations_zero_until_cancelled(tmp_path: Path) -> None:
    _copies(tmp_path, ["n1.ipynb"])
    finished: list[str] = []
    config = make_config([tmp_path], iterations=0)

    with capture_sentry(options=sentry_options()) as transport:
        task: asyncio.Task[Any] | None = None

        def stop_after_two(result: NotebookResult) -> None:
            finished.append(result.name)
            if len(finished) == 2 and task is not None:
                task.cancel()

        observer = RecordingObserver(on_notebook_finished=stop_after_two)
        task = asyncio.create_task(build_monkey(config, observer).run())
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=60)

    ops = [t["contexts"]["trace"]["op"] for t in transport.transactions]
    assert finished == ["n1.ipynb", "n1.ipynb"]
    assert ops == [
        "nbsentry.startup",
        "nbsentry.notebook",
        "nbsentry.run",
        "nbsentry.notebook",
        "nbsentry.run",
        "nbsentry.shutdown",
    ]
    transport.validate_all()


def test_shuffled_order(tmp_path: Path) -> None:
    names = [f"n{index:02}.ipynb" for index in range(20)]
    for name in names:
        write_notebook(tmp_path / name, ["x = 1"])
    config = make_config([tmp_path], order=NotebookOrder.shuffled)
    runner = build_monkey(config).business
    runner._random = random.Random(4)  # noqa: S311 - a fixed test order

    first = [f.name for f in runner._new_pass()]
    second = [f.name for f in runner._new_pass()]

    assert sorted(first) == names
    assert sorted(second) == names
    assert first != names
    assert second != first


def test_sorted_order(tmp_path: Path) -> None:
    names = [f"n{index:02}.ipynb" for index in range(20)]
    for name in reversed(names):
        write_notebook(tmp_path / name, ["x = 1"])
    runner = build_monkey(make_config([tmp_path])).business

    assert [f.name for f in runner._new_pass()] == names


async def test_no_notebooks(tmp_path: Path) -> None:
    config = make_config([tmp_path])

    with (
        capture_sentry(options=sentry_options()) as transport,
        pytest.raises(ConfigError) as raised,
    ):
        await build_monkey(config).run()

    assert str(raised.value) == f"No notebooks found under {tmp_path}"
    ops = [t["contexts"]["trace"]["op"] for t in transport.transactions]
    assert ops == ["nbsentry.startup", "nbsentry.shutdown"]
    transport.validate_all()


async def test_invalid_notebook_reported(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "tests" / "data" / "invalid.ipynb", tmp_path)
    write_notebook(tmp_path / "valid.ipynb", ["x = 1"])

    run = await run_notebooks([tmp_path])

    invalid, valid = run.summary.notebooks
    (event,) = run.transport.events
    assert invalid.status is NotebookStatus.failed
    assert invalid.error == (
        "Notebook is not valid JSON; open and save it in JupyterLab"
    )
    assert valid.status is NotebookStatus.passed
    assert event["exception"]["values"][0]["type"] == "InvalidNotebookError"
    assert event["tags"]["notebook"] == "invalid.ipynb"
    assert "cell" not in event["tags"]
    assert event["fingerprint"] == [
        "{{ default }}",
        "nbsentry",
        "NotebookRunner",
        "invalid.ipynb",
    ]


async def test_first_kernel_failure_not_fatal(tmp_path: Path) -> None:
    # The first notebook names a kernel that does not exist, so startup
    # cannot start its kernel; the other notebook must still run.
    first = write_notebook(tmp_path / "a-missing-kernel.ipynb", ["x = 1"])
    content = first.read_text().replace('"python3"', '"no-such-kernel"')
    first.write_text(content)
    write_notebook(tmp_path / "b-fine.ipynb", ["x = 1"])

    run = await run_notebooks([tmp_path])

    broken, fine = run.summary.notebooks
    assert broken.status is NotebookStatus.failed
    assert broken.error is not None
    assert broken.error.startswith("Kernel 'no-such-kernel' not found")
    assert fine.status is NotebookStatus.passed
    (warning,) = logs_named(run.logs, "First kernel did not start")
    assert warning["log_level"] == "warning"
    (startup,) = transactions_by_op(run.transport, "nbsentry.startup")
    assert startup["contexts"]["trace"]["status"] == "internal_error"


async def test_cancelled_notebook_kept(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / "slow.ipynb", ["x = 1", "import time; time.sleep(30)"]
    )
    config = make_config([tmp_path])

    with capture_sentry(options=sentry_options()) as transport:
        task: asyncio.Task[Any] | None = None

        def stop_after_first_cell(notebook: str, cell: str) -> None:
            del notebook
            if cell == "cell-1" and task is not None:
                task.cancel()

        observer = RecordingObserver(on_cell_finished=stop_after_first_cell)
        monkey = build_monkey(config, observer)
        task = asyncio.create_task(monkey.run())
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=60)

    (result,) = monkey.business.completed
    assert result.status is NotebookStatus.cancelled
    assert [c.cell.cell_id for c in result.cells] == ["cell-1"]
    (notebook,) = transactions_by_op(transport, "nbsentry.notebook")
    assert notebook["contexts"]["trace"]["status"] == "cancelled"
    # The first cell's report waits to be attached while the second cell
    # runs; cancelling the second must not lose it.
    spans = {span["op"]: span for span in notebook["spans"]}
    first = next(
        span
        for span in notebook["spans"]
        if span["op"] == "nbsentry.cell"
        and span["data"]["cell.id"] == "cell-1"
    )
    execute = spans["nbsentry.kernel.execute"]
    assert execute["parent_span_id"] == first["span_id"]
    transport.validate_all()


async def test_vanished_notebooks_fail_iteration(tmp_path: Path) -> None:
    (notebook,) = _copies(tmp_path, ["n1.ipynb"])

    def remove_notebook(result: NotebookResult) -> None:
        del result
        notebook.unlink()

    config = make_config([tmp_path], iterations=2)
    observer = RecordingObserver(on_notebook_finished=remove_notebook)
    with (
        capture_sentry(options=sentry_options()) as transport,
        capture_logs() as logs,
    ):
        monkey = build_monkey(config, observer)
        summary = await monkey.run()

    assert summary.iterations == 2
    assert monkey.failed_iterations == 1
    (error,) = logs_named(logs, "Iteration failed")
    assert error["error"] == f"No notebooks found under {tmp_path}"
    runs = transactions_by_op(transport, "nbsentry.run")
    assert [r["contexts"]["trace"]["status"] for r in runs] == [
        "ok",
        "internal_error",
    ]
    transport.validate_all()
