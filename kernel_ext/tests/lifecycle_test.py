"""Loading and unloading the extension, breadcrumbs, and cells run by cells."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from kernel_support import KernelSession, start_kernel

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Everything the extension hooks into, as a literal the test can compare.
HOOK_STATE = (
    "(len(get_ipython().events.callbacks['pre_run_cell']),"
    " len(get_ipython().events.callbacks['post_run_cell']),"
    " __import__('warnings').showwarning.__qualname__,"
    " __import__('logging').getLogRecordFactory().__qualname__,"
    " len(__import__('logging').getLogger().handlers),"
    " sorted(t.name for t in __import__('threading').enumerate()"
    "        if t.name.startswith('nbsentry')))"
)


@pytest_asyncio.fixture(loop_scope="module")
async def bare_kernel(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[KernelSession]:
    """A kernel started without the extension; fails on extension errors."""
    cwd = tmp_path_factory.mktemp("bare")
    async with start_kernel(cwd, extension_argument=False) as session:
        yield session
        errors = await session.extension_errors()
        assert errors == [], "\n".join(errors)


async def test_load_ext_magic_reports(bare_kernel: KernelSession) -> None:
    before = await bare_kernel.run("1 + 1", cell_id="before")
    assert before.reports == []
    loaded = await bare_kernel.run("%load_ext nbsentry_kernel", report=False)
    assert loaded.reply["content"]["status"] == "ok"
    after = await bare_kernel.run("1 + 1", cell_id="after")
    assert after.final["cell_id"] == "after"


async def test_load_twice_unload_clean(bare_kernel: KernelSession) -> None:
    initial = await bare_kernel.evaluate(HOOK_STATE)
    assert initial[5] == []
    await bare_kernel.run(
        "import nbsentry_kernel\n"
        "nbsentry_kernel.load_ipython_extension(get_ipython())\n"
        "nbsentry_kernel.load_ipython_extension(get_ipython())\n",
        report=False,
    )
    loaded = await bare_kernel.evaluate(HOOK_STATE)
    assert loaded[0] == initial[0] + 1
    assert loaded[1] == initial[1] + 1
    assert loaded[2] == "BreadcrumbRecorder._showwarning"
    assert loaded[3] == "BreadcrumbRecorder._make_record"
    execution = await bare_kernel.run("1 + 1", cell_id="twice")
    assert len(execution.reports) == 1
    loaded = await bare_kernel.evaluate(HOOK_STATE)
    assert loaded[5] == ["nbsentry-partial-reports"]
    await bare_kernel.run(
        "nbsentry_kernel.unload_ipython_extension(get_ipython())",
        report=False,
    )
    assert await bare_kernel.evaluate(HOOK_STATE) == initial
    silent = await bare_kernel.run("1 + 1", cell_id="unloaded")
    assert silent.reports == []


async def test_warning_and_log_breadcrumbs(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "import logging, warnings\n"
        "warnings.warn('deprecated thing', DeprecationWarning)\n"
        "logging.getLogger('app.db').info('not recorded')\n"
        "logging.getLogger('app.db').warning('slow query %d ms', 1500)\n"
        "logging.error('x' * 3000)\n"
        "logging.getLogger('app').critical('down')\n",
        cell_id="crumbs",
    )
    report = execution.final
    crumbs = report["breadcrumbs"]
    assert [(c["category"], c["level"]) for c in crumbs] == [
        ("warnings", "warning"),
        ("app.db", "warning"),
        ("root", "error"),
        ("app", "fatal"),
    ]
    assert crumbs[0]["message"] == "DeprecationWarning: deprecated thing"
    assert crumbs[1]["message"] == "slow query 1500 ms"
    assert crumbs[2]["message"] == "x" * 1024
    assert crumbs[3]["message"] == "down"
    stamps = [c["timestamp"] for c in crumbs]
    assert stamps == sorted(stamps)
    assert report["start"] <= stamps[0]
    assert stamps[-1] <= report["end"]
    # The warning is still shown. With no handler configured, the first
    # record reaches stderr through logging.lastResort, and logging.error
    # then installs a handler through basicConfig.
    stderr = "".join(
        m["content"]["text"]
        for m in execution.iopub
        if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
    )
    assert "DeprecationWarning: deprecated thing" in stderr
    assert "\nslow query 1500 ms\n" in stderr
    assert "CRITICAL:app:down" in stderr


async def test_breadcrumbs_capped(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "import logging\n"
        "log = logging.getLogger('loop')\n"
        "for i in range(60):\n"
        "    log.warning('round %d', i)\n",
        cell_id="many-crumbs",
    )
    report = execution.final
    crumbs = report["breadcrumbs"]
    assert len(crumbs) == 50
    assert crumbs[-1]["message"] == "round 49"
    assert report["dropped"]["breadcrumbs"] == 10


async def test_basic_config_still_works(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "import logging, sys\n"
        "root = logging.getLogger()\n"
        "for handler in list(root.handlers):\n"
        "    root.removeHandler(handler)\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout,"
        " format='%(levelname)s %(message)s')\n"
        "logging.getLogger('cfg').info('configured')\n",
        cell_id="basic-config",
    )
    assert execution.final["status"] == "ok"
    assert execution.stdout == "INFO configured\n"
    assert execution.final["breadcrumbs"] == []


def outcome(report: dict[str, Any]) -> tuple[str, str, str | None]:
    """Return a report's cell id, status and outermost exception type."""
    exception = report["exception"]
    last = exception["values"][-1]["type"] if exception else None
    return report["cell_id"], report["status"], last


async def test_nested_run_cell_one_report(kernel: KernelSession) -> None:
    execution = await kernel.run(
        "get_ipython().run_cell('inner = 1')\nraise ValueError('outer')\n",
        cell_id="nested",
    )

    assert outcome(execution.final) == ("nested", "error", "ValueError")


async def test_hook_run_cell_one_report(kernel: KernelSession) -> None:
    # The guard keeps the hook from running again for its own cell.
    await kernel.run(
        "_rerunning = []\n"
        "def _rerun(result):\n"
        "    if not _rerunning:\n"
        "        _rerunning.append(True)\n"
        "        try:\n"
        "            get_ipython().run_cell('hooked = 1')\n"
        "        finally:\n"
        "            _rerunning.clear()\n"
        "get_ipython().events.register('post_run_cell', _rerun)\n",
        cell_id="register",
    )
    try:
        execution = await kernel.run("1 / 0\n", cell_id="failing")
    finally:
        await kernel.run(
            "get_ipython().events.unregister('post_run_cell', _rerun)\n",
            cell_id="unregister",
        )

    expected = ("failing", "error", "ZeroDivisionError")
    assert outcome(execution.final) == expected


async def test_thread_run_cell_keeps_cell(kernel: KernelSession) -> None:
    # The thread's cell starts during the main cell and ends during the
    # next one.
    execution = await kernel.run(
        "import threading\n"
        "release = threading.Event()\n"
        "entered = threading.Event()\n"
        "def work():\n"
        "    get_ipython().run_cell('entered.set(); release.wait(10)')\n"
        "worker = threading.Thread(target=work)\n"
        "worker.start()\n"
        "entered.wait(10)\n"
        "raise ValueError('main')\n",
        cell_id="main",
    )
    after = await kernel.run(
        "release.set()\nworker.join(10)\n", cell_id="after"
    )

    assert outcome(execution.final) == ("main", "error", "ValueError")
    assert outcome(after.final) == ("after", "ok", None)
