"""Tests of kernel reports in Sentry events, run on real ipykernels."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from nbsentry import runner
from nbsentry.backends.local import LocalKernel
from nbsentry.models import CellStatus
from nbsentry.report import MAX_TEXT_LENGTH
from nbsentry.sentry import CellTrace
from tests.support.reports import (
    BUSINESS,
    FLOCK,
    cell_frame,
    event_of,
    frame_summary,
    frames_of,
    notebook_spans,
    run_cells,
    span_interval,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support import CapturingTransport

# Kernel code that defines ``forged(**changes)``, which opens a report
# comm with a well-formed final report of the running cell, changed as
# given.
FORGE_SOURCE = """\
import time
from comm import create_comm

def forged(**changes):
    parent = get_ipython().kernel.get_parent()
    request = parent["metadata"]["nbsentry"]
    now = time.time()
    report = {
        "version": 1,
        "kind": "final",
        "msg_id": parent["header"]["msg_id"],
        "trace_id": request["sentry-trace"].split("-")[0],
        "cell_id": request["cell_id"],
        "notebook": request["notebook"],
        "execution_count": 1000,
        "status": "ok",
        "start": now,
        "end": now,
        "spans": [],
        "breadcrumbs": [],
        "exception": None,
        "dropped": {"spans": 0, "breadcrumbs": 0, "frames": 0,
                    "exceptions": 0},
    }
    report.update(changes)
    create_comm(target_name="nbsentry.report", data=report)
"""

NO_REPORT_WARNING = (
    "Kernel extension sent no report; falling back to text tracebacks"
)


def mechanism(
    exception_id: int, parent_id: int, source: str
) -> dict[str, Any]:
    return {
        "type": "nbsentry",
        "handled": False,
        "exception_id": exception_id,
        "parent_id": parent_id,
        "source": source,
        "is_exception_group": False,
    }


OUTERMOST = {
    "type": "nbsentry",
    "handled": False,
    "exception_id": 0,
    "is_exception_group": False,
}


async def test_frames_across_cells(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    define = "def helper(values):\n    total = 0\n    return values['k']\n"
    call = "data = {}\nhelper(data)"

    await run_cells(
        tmp_path, {"cross.ipynb": [("define", define), ("call", call)]}
    )

    event = event_of(sentry_capture, "cross.ipynb")
    (value,) = event["exception"]["values"]
    assert value["type"] == "KeyError"
    assert value["value"] == "'k'"
    assert value["mechanism"] == OUTERMOST
    call_frame, helper_frame = frames_of(value)
    assert frame_summary(call_frame) == cell_frame(
        "cross.ipynb", "call", 2, "helper(data)"
    )
    assert call_frame["function"] == "<module>"
    assert call_frame["pre_context"] == ["data = {}"]
    assert frame_summary(helper_frame) == cell_frame(
        "cross.ipynb", "define", 3, "    return values['k']"
    )
    assert helper_frame["function"] == "helper"
    assert helper_frame["pre_context"] == [
        "def helper(values):",
        "    total = 0",
    ]
    assert event["fingerprint"] == [
        "{{ default }}",
        FLOCK,
        BUSINESS,
        "cross.ipynb",
        "call",
    ]
    tags = event["tags"]
    assert tags["flock"] == FLOCK
    assert tags["business"] == BUSINESS
    assert tags["cell"] == "call"
    assert tags["cell_number"] == "#2"
    assert tags["kernel"] == "python3"
    (attachment,) = sentry_capture.attachments
    assert attachment.filename == "traceback.txt"
    assert attachment.event is not None
    assert attachment.event["event_id"] == event["event_id"]
    assert b"KeyError" in attachment.data
    assert b"helper(data)" in attachment.data


async def test_chained_exceptions(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    explicit = (
        "try:\n    {}['k']\nexcept KeyError as error:\n"
        "    raise ValueError('bad') from error"
    )
    implicit = "try:\n    1 / 0\nexcept ZeroDivisionError:\n    raise OSError"

    await run_cells(
        tmp_path,
        {
            "cause.ipynb": [("explicit", explicit)],
            "context.ipynb": [("implicit", implicit)],
        },
    )

    cases = [
        ("cause.ipynb", "explicit", "__cause__", "KeyError", "ValueError"),
        (
            "context.ipynb",
            "implicit",
            "__context__",
            "ZeroDivisionError",
            "OSError",
        ),
    ]
    for notebook, cell_id, source, inner_type, outer_type in cases:
        event = event_of(sentry_capture, notebook)
        inner, outer = event["exception"]["values"]
        assert inner["type"] == inner_type
        assert inner["mechanism"] == mechanism(1, 0, source)
        assert frame_summary(frames_of(inner)[-1])["lineno"] == 2
        assert outer["type"] == outer_type
        assert outer["mechanism"] == OUTERMOST
        (frame,) = frames_of(outer)
        assert frame["filename"] == f"{notebook}#cell={cell_id}"
        assert frame["lineno"] == 4


async def test_exception_group(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    source = "raise ExceptionGroup('two', [ValueError('a'), TypeError('b')])"

    await run_cells(tmp_path, {"group.ipynb": [("group", source)]})

    event = event_of(sentry_capture, "group.ipynb")
    second, first, group = event["exception"]["values"]
    assert (first["type"], first["value"]) == ("ValueError", "a")
    assert first["mechanism"] == mechanism(1, 0, "exceptions[0]")
    assert (second["type"], second["value"]) == ("TypeError", "b")
    assert second["mechanism"] == mechanism(2, 0, "exceptions[1]")
    assert group["type"] == "ExceptionGroup"
    assert group["mechanism"] == {**OUTERMOST, "is_exception_group": True}
    (frame,) = frames_of(group)
    assert frame_summary(frame) == cell_frame(
        "group.ipynb", "group", 1, source
    )


async def test_syntax_error(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    source = "a = 1\nb = 2 +\nc = 3"

    await run_cells(tmp_path, {"syntax.ipynb": [("broken", source)]})

    event = event_of(sentry_capture, "syntax.ipynb")
    (value,) = event["exception"]["values"]
    assert value["type"] == "SyntaxError"
    assert value["value"] == "invalid syntax (line 2)"
    (frame,) = frames_of(value)
    assert frame_summary(frame) == cell_frame(
        "syntax.ipynb", "broken", 2, "b = 2 +"
    )
    assert frame["pre_context"] == ["a = 1"]
    assert frame["post_context"] == ["c = 3"]


async def test_result_display_fails(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    # IPython catches what a formatter raises while it displays the cell's
    # result, so the cell raised nothing, but ipykernel replies error.
    repr_source = (
        "class Bad:\n"
        "    def __repr__(self):\n"
        "        raise ValueError('no repr')\n"
        "Bad()"
    )
    html_define = (
        "class Page:\n"
        "    def _repr_html_(self):\n"
        "        raise KeyError('html')\n"
    )

    run = await run_cells(
        tmp_path,
        {
            "repr.ipynb": [("show", repr_source), ("next", "x = 1")],
            "html.ipynb": [("define", html_define), ("show", "Page()")],
        },
    )

    repr_statuses = [cell.status for cell in run.results["repr.ipynb"].cells]
    assert repr_statuses == [CellStatus.failed, CellStatus.not_run]
    html_statuses = [cell.status for cell in run.results["html.ipynb"].cells]
    assert html_statuses == [CellStatus.passed, CellStatus.failed]
    cases = [
        (
            "repr.ipynb",
            "ValueError",
            "no repr",
            "__repr__",
            "        raise ValueError('no repr')",
        ),
        (
            "html.ipynb",
            "KeyError",
            "'html'",
            "_repr_html_",
            "        raise KeyError('html')",
        ),
    ]
    for notebook, exception_type, message, function, line in cases:
        event = event_of(sentry_capture, notebook)
        (value,) = event["exception"]["values"]
        assert value["type"] == exception_type
        assert value["value"] == message
        assert value["mechanism"] == OUTERMOST
        (frame,) = frames_of(value)
        cell_id = "show" if notebook == "repr.ipynb" else "define"
        assert frame_summary(frame) == cell_frame(notebook, cell_id, 3, line)
        assert frame["function"] == function
        spans = notebook_spans(sentry_capture, notebook)
        (shown,) = [
            span
            for span in spans
            if span["op"] == "nbsentry.cell"
            and span["data"]["cell.id"] == "show"
        ]
        (execute,) = [
            span
            for span in spans
            if span["op"] == "nbsentry.kernel.execute"
            and span["parent_span_id"] == shown["span_id"]
        ]
        assert execute["status"] == "internal_error"
    assert run.logs_named("Kernel report rejected") == []


async def test_long_notebook_name(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    # Six folders of 200 characters, each within the 255-byte limit of a
    # file name, make a name longer than the 1,024 characters of a report
    # string.
    folders = [f"{n}" * 200 for n in range(6)]
    notebook = "/".join([*folders, "long.ipynb"])
    assert len(notebook) > MAX_TEXT_LENGTH
    define = "def fail():\n    raise ValueError('deep')\n"
    cells = [("define", define), ("fine", "x = 1"), ("call", "fail()")]

    run = await run_cells(tmp_path, {notebook: cells})

    statuses = [cell.status for cell in run.results[notebook].cells]
    assert statuses == [
        CellStatus.passed,
        CellStatus.passed,
        CellStatus.failed,
    ]
    assert run.logs_named("Kernel report rejected") == []
    (event,) = sentry_capture.events
    assert event["contexts"]["notebook"]["path"] == notebook
    assert event["tags"]["notebook"].endswith("/long.ipynb")
    (value,) = event["exception"]["values"]
    assert value["type"] == "ValueError"
    call_frame, fail_frame = frames_of(value)
    assert frame_summary(call_frame) == cell_frame(
        notebook, "call", 1, "fail()"
    )
    assert frame_summary(fail_frame) == cell_frame(
        notebook, "define", 2, "    raise ValueError('deep')"
    )
    spans = notebook_spans(sentry_capture, notebook)
    executes = [
        span for span in spans if span["op"] == "nbsentry.kernel.execute"
    ]
    assert len(executes) == len(cells)


async def test_system_exit(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    # IPython catches SystemExit in a cell, so the kernel lives on and
    # replies with an error, and the runner reports a failed cell.
    run = await run_cells(
        tmp_path,
        {
            "exit3.ipynb": [("exit", "raise SystemExit(3)"), ("next", "x")],
            "exit.ipynb": [("exit", "import sys\nsys.exit()")],
        },
    )

    statuses = [cell.status for cell in run.results["exit3.ipynb"].cells]
    assert statuses == [CellStatus.failed, CellStatus.not_run]
    cases = [
        ("exit3.ipynb", "3", 1, "raise SystemExit(3)"),
        ("exit.ipynb", "", 2, "sys.exit()"),
    ]
    for notebook, message, lineno, line in cases:
        event = event_of(sentry_capture, notebook)
        (value,) = event["exception"]["values"]
        assert value["type"] == "SystemExit"
        assert value["value"] == message
        (frame,) = frames_of(value)
        assert frame_summary(frame) == cell_frame(
            notebook, "exit", lineno, line
        )
        # IPython warns that exit() does not stop the kernel.
        crumbs = [
            crumb["message"]
            for crumb in event["breadcrumbs"]["values"]
            if crumb["category"] == "warnings"
        ]
        assert crumbs == [
            "UserWarning: To exit: use 'exit', 'quit', or Ctrl-D."
        ]


async def test_cell_timeout(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    cells = [("setup", "n = 0"), ("loop", "n += 1\nwhile True: pass")]

    run = await run_cells(tmp_path, {"timeout.ipynb": cells}, cell_timeout=2)

    statuses = [cell.status for cell in run.results["timeout.ipynb"].cells]
    assert statuses == [CellStatus.passed, CellStatus.timed_out]
    event = event_of(sentry_capture, "timeout.ipynb")
    (value,) = event["exception"]["values"]
    assert value["type"] == "CellTimeoutError"
    assert value["value"] == (
        "Cell #2 timed out after 2 s and was interrupted"
    )
    assert frame_summary(frames_of(value)[-1]) == cell_frame(
        "timeout.ipynb", "loop", 2, "while True: pass"
    )
    cell_span = next(
        span
        for span in notebook_spans(sentry_capture, "timeout.ipynb")
        if span["op"] == "nbsentry.cell" and span["data"]["cell.id"] == "loop"
    )
    assert cell_span["status"] == "deadline_exceeded"


async def test_user_spans_nested(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    source = (
        "import nbsentry_kernel\n"
        "with nbsentry_kernel.span('app.outer', 'outer'):\n"
        "    with nbsentry_kernel.span('app.inner', 'inner'):\n"
        "        pass\n"
    )

    await run_cells(
        tmp_path, {"spans.ipynb": [("first", "x = 1"), ("user", source)]}
    )

    spans = notebook_spans(sentry_capture, "spans.ipynb")
    by_op: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_op.setdefault(span["op"], []).append(span)
    cells = {span["data"]["cell.id"]: span for span in by_op["nbsentry.cell"]}
    executes = {
        span["parent_span_id"]: span
        for span in by_op["nbsentry.kernel.execute"]
    }
    assert set(executes) == {
        cells["first"]["span_id"],
        cells["user"]["span_id"],
    }
    execute = executes[cells["user"]["span_id"]]
    (outer,) = by_op["app.outer"]
    (inner,) = by_op["app.inner"]
    assert outer["parent_span_id"] == execute["span_id"]
    assert outer["description"] == "outer"
    assert inner["parent_span_id"] == outer["span_id"]
    assert inner["description"] == "inner"
    first_execute = executes[cells["first"]["span_id"]]
    placed = [
        (first_execute, cells["first"]),
        (execute, cells["user"]),
        (outer, cells["user"]),
        (inner, cells["user"]),
    ]
    for span, cell in placed:
        start, end = span_interval(span)
        cell_start, cell_end = span_interval(cell)
        assert cell_start <= start, span["op"]
        assert start <= end, span["op"]
        assert end <= cell_end, span["op"]


@pytest.mark.parametrize(
    ("batch", "seconds", "last", "timeline"),
    [
        # Three reports make a batch, attached while the next cell runs.
        (
            3,
            3600.0,
            "x = 6",
            (
                "run a, run b, run c, run d, attach a, attach b, attach c,"
                " run e, run f, attach d, attach e, attach f"
            ),
        ),
        # A failing cell's reports are attached at once, after the batch
        # held so far.
        (
            3,
            3600.0,
            "1 / 0",
            (
                "run a, run b, run c, run d, attach a, attach b, attach c,"
                " run e, run f, attach d, attach e, attach f"
            ),
        ),
        # Any held report is due at once: attached during the next cell.
        (
            64,
            0.0,
            "x = 6",
            (
                "run a, run b, attach a, run c, attach b, run d, attach c,"
                " run e, attach d, run f, attach e, attach f"
            ),
        ),
        # Neither bound is reached: everything is attached at the end.
        (
            64,
            3600.0,
            "x = 6",
            (
                "run a, run b, run c, run d, run e, run f,"
                " attach a, attach b, attach c, attach d, attach e, attach f"
            ),
        ),
    ],
)
async def test_reports_attached_in_batches(
    tmp_path: Path,
    sentry_capture: CapturingTransport,
    monkeypatch: pytest.MonkeyPatch,
    *,
    batch: int,
    seconds: float,
    last: str,
    timeline: str,
) -> None:
    monkeypatch.setattr(runner, "BACKLOG_REPORTS", batch)
    monkeypatch.setattr(runner, "BACKLOG_SECONDS", seconds)
    steps: list[str] = []
    execute = LocalKernel.execute
    add_kernel_spans = CellTrace.add_kernel_spans

    async def recorded_execute(
        kernel: LocalKernel, code: str, metadata: dict[str, Any], **kw: Any
    ) -> Any:
        steps.append(f"run {metadata['nbsentry']['cell_id']}")
        return await execute(kernel, code, metadata, **kw)

    def recorded_spans(trace: CellTrace, spans: Any) -> None:
        steps.append(f"attach {trace.cell.cell_id}")
        add_kernel_spans(trace, spans)

    monkeypatch.setattr(LocalKernel, "execute", recorded_execute)
    monkeypatch.setattr(CellTrace, "add_kernel_spans", recorded_spans)
    cells = [(name, f"x = {n}") for n, name in enumerate("abcde", 1)]

    await run_cells(tmp_path, {"batch.ipynb": [*cells, ("f", last)]})

    assert ", ".join(steps) == timeline
    spans = notebook_spans(sentry_capture, "batch.ipynb")
    cell_spans = {
        span["span_id"]: span["data"]["cell.id"]
        for span in spans
        if span["op"] == "nbsentry.cell"
    }
    executed = [
        cell_spans[span["parent_span_id"]]
        for span in spans
        if span["op"] == "nbsentry.kernel.execute"
    ]
    assert sorted(executed) == list("abcdef")


async def test_await_after_display_error_passes(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    bad = (
        "class Bad:\n"
        "    def __repr__(self):\n"
        "        raise ValueError('no repr')\n"
        "Bad()\n"
    )
    cells = [
        ("bad", bad),
        ("wait", "import asyncio\nawait asyncio.sleep(0)"),
        ("after", "x = 1"),
    ]

    run = await run_cells(
        tmp_path,
        {"await.ipynb": cells},
        tags={"bad": ["raises-exception"]},
    )

    result = run.results["await.ipynb"]
    statuses = [(cell.cell.cell_id, cell.status) for cell in result.cells]
    assert statuses == [
        ("bad", CellStatus.expected_error),
        ("wait", CellStatus.passed),
        ("after", CellStatus.passed),
    ]
    assert sentry_capture.events == []
    (entry,) = run.logs_named(
        "Kernel replied error for a cell that raised nothing; the cell passed"
    )
    assert entry["cell"] == "wait"
    spans = notebook_spans(sentry_capture, "await.ipynb")
    waits = [
        span
        for span in spans
        if span["op"] == "nbsentry.cell" and span["data"]["cell.id"] == "wait"
    ]
    assert [span["status"] for span in waits] == ["ok"]
    assert [span["data"]["cell.status"] for span in waits] == ["ok"]


async def test_kernel_without_extension(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    run = await run_cells(
        tmp_path,
        {
            "plain1.ipynb": [("a", "x = 1"), ("b", "y = 2"), ("c", "1 / 0")],
            "plain2.ipynb": [("a", "z = 1"), ("b", "{}['k']")],
        },
        load_extension=False,
    )

    warnings = run.logs_named(NO_REPORT_WARNING)
    assert [(entry["notebook"], entry["cell"]) for entry in warnings] == [
        ("plain1.ipynb", "a"),
        ("plain2.ipynb", "a"),
    ]
    assert {entry["log_level"] for entry in warnings} == {"warning"}
    cases = [
        ("plain1.ipynb", "ZeroDivisionError", "division by zero"),
        ("plain2.ipynb", "KeyError", "'k'"),
    ]
    for notebook, exception_type, message in cases:
        (value,) = event_of(sentry_capture, notebook)["exception"]["values"]
        assert value == {
            "type": exception_type,
            "value": message,
            "mechanism": {"type": "nbsentry", "handled": False},
        }
    tracebacks = [attachment.data for attachment in sentry_capture.attachments]
    assert len(tracebacks) == 2
    assert b"ZeroDivisionError" in tracebacks[0]
    for span in notebook_spans(sentry_capture, "plain1.ipynb"):
        assert span["op"] != "nbsentry.kernel.execute"


async def test_forged_reports_rejected(
    tmp_path: Path, sentry_capture: CapturingTransport
) -> None:
    others = (
        "create_comm(target_name='someone.else', data={'version': 1})\n"
        "create_comm(target_name='jupyter.widget', data={'state': {}})"
    )
    # A span far outside the cell, with a status Sentry does not know.
    odd_span = (
        "{'span_id': 'a' * 16, 'parent_span_id': None, 'op': 'odd',"
        " 'description': None, 'start': 1.0, 'end': 2.0,"
        " 'status': 'weird', 'data': {}}"
    )
    forge = [
        ("setup", FORGE_SOURCE),
        ("garbage", "create_comm('nbsentry.report', data={'a': 'b'})"),
        ("wrong", "forged(cell_id='setup')"),
        ("huge", "forged(notebook='x' * 300_000)"),
        ("second", "forged()"),
        ("partial", f"forged(kind='partial', end=None, spans=[{odd_span}])"),
        ("others", others),
        ("after", "x = 1"),
    ]
    clean = [("one", "y = 2"), ("two", "y + 1")]

    run = await run_cells(
        tmp_path, {"forge.ipynb": forge, "clean.ipynb": clean}
    )

    for result in run.results.values():
        statuses = {cell.status for cell in result.cells}
        assert statuses == {CellStatus.passed}, result.name
    assert sentry_capture.events == []
    rejected = run.logs_named("Kernel report rejected")
    assert {entry["log_level"] for entry in rejected} == {"warning"}
    assert {entry["notebook"] for entry in rejected} == {"forge.ipynb"}
    reasons = {entry["cell"]: entry["reason"] for entry in rejected}
    assert list(reasons) == ["garbage", "wrong", "huge", "second"]
    assert reasons["garbage"].startswith("invalid version: Field required")
    assert reasons["wrong"] == "cell_id 'setup' is not the request in flight"
    assert re.fullmatch(r"report is \d+ bytes, over 262144", reasons["huge"])
    assert reasons["second"] == (
        "final report followed by another for the cell"
    )
    rejected_key = "nbsentry.rejected_reports"
    (odd,) = [
        span
        for span in notebook_spans(sentry_capture, "forge.ipynb")
        if span["op"] == "odd"
    ]
    assert odd["status"] == "unknown"
    for notebook in ("forge.ipynb", "clean.ipynb"):
        spans = notebook_spans(sentry_capture, notebook)
        cells = [span for span in spans if span["op"] == "nbsentry.cell"]
        for span in cells:
            data = span["data"]
            expected = 1 if data["cell.id"] in reasons else None
            assert data.get(rejected_key) == expected, data["cell.id"]
            assert data["cell.status"] == "ok"
        # Apart from the count, every cell span has the same keys.
        key_sets = {
            frozenset(span["data"].keys() - {rejected_key}) for span in cells
        }
        assert len(key_sets) == 1
        executes = [
            span for span in spans if span["op"] == "nbsentry.kernel.execute"
        ]
        assert len(executes) == len(cells)
        # Forged final reports carry execution count 1000, so these counts
        # show that the extension's final reports were kept.
        counts = {span["data"]["execution_count"] for span in executes}
        assert counts == set(range(1, len(cells) + 1))
