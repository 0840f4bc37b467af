# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of what reaches Sentry: sampling, trace headers, span limits, DSN."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from sentry_sdk.tracing import Transaction
from structlog.testing import capture_logs

from nbsentry.runner import MAX_MESSAGE_LENGTH
from nbsentry.sentry import MAX_TAG_LENGTH, SPAN_LIMIT, traces
from nbsentry.sentry.traces import NotebookTrace, tag_value
from tests.support import capture_sentry
from tests.support.cli import invoke_cli, read_spool, run_cli_subprocess
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
    from pathlib import Path

    from sentry_sdk.envelope import Envelope

    from tests.support import SentryServer

NOTEBOOKS = REPO_ROOT / "notebooks"
FAILING = str(NOTEBOOKS / "failing-cell.ipynb")
PASSING = str(NOTEBOOKS / "passing.ipynb")
MANY_CELLS = REPO_ROOT / "tests" / "data" / "many-cells.ipynb"
# Wide enough that the summary table prints messages on one line.
WIDE = {"COLUMNS": "200"}


def _payloads(envelopes: list[Envelope], item_type: str) -> list[Any]:
    return [
        item.payload.json
        for envelope in envelopes
        for item in envelope.items
        if item.type == item_type
    ]


def test_traces_sample_zero_from_env(tmp_path: Path) -> None:
    spool = tmp_path / "spool"

    result = invoke_cli(
        [FAILING, PASSING, "--spool", str(spool)],
        env={"NBSENTRY_TRACES_SAMPLE": "0"},
    )

    envelopes = read_spool(spool)
    (event,) = _payloads(envelopes, "event")
    assert result.exit_code == 1, result.output
    assert _payloads(envelopes, "transaction") == []
    assert event["exception"]["values"][0]["type"] == "KeyError"
    assert event["tags"]["cell"] == "read-filter"


def test_traces_sample_errors(tmp_path: Path) -> None:
    spool = tmp_path / "spool"

    result = invoke_cli(
        [FAILING, PASSING, "--spool", str(spool), "--traces-sample", "errors"]
    )

    envelopes = read_spool(spool)
    transactions = _payloads(envelopes, "transaction")
    names = [t["transaction"] for t in transactions]
    assert result.exit_code == 1, result.output
    assert names == ["failing-cell.ipynb", "NotebookRunner.run"]
    notebook, iteration = transactions
    assert (
        notebook["contexts"]["trace"]["parent_span_id"]
        == (iteration["contexts"]["trace"]["span_id"])
    )
    assert len(_payloads(envelopes, "event")) == 1


async def test_request_metadata(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / "metadata.ipynb",
        [
            "x = 1",
            (
                "import json\n"
                "parent = get_ipython().kernel.get_parent('shell')\n"
                "raise RuntimeError(json.dumps(parent['metadata']))"
            ),
        ],
    )

    run = await run_notebooks([tmp_path])

    (event,) = run.transport.events
    (transaction,) = transactions_by_op(run.transport, "nbsentry.notebook")
    metadata = json.loads(event["exception"]["values"][0]["value"])
    request = metadata["nbsentry"]
    trace_id = transaction["contexts"]["trace"]["trace_id"]
    (span,) = [
        s
        for s in transaction["spans"]
        if s["op"] == "nbsentry.cell" and s["data"]["cell.id"] == "cell-2"
    ]
    assert metadata["cellId"] == "cell-2"
    assert request["version"] == 1
    assert request["notebook"] == "metadata.ipynb"
    assert request["cell_id"] == "cell-2"
    assert request["cell_number"] == 2
    assert request["sentry-trace"] == f"{trace_id}-{span['span_id']}-1"
    assert request["traceparent"] == f"00-{trace_id}-{span['span_id']}-01"
    assert f"sentry-trace_id={trace_id}" in request["baggage"].split(",")


async def test_span_limit() -> None:
    run = await run_notebooks([MANY_CELLS])

    (transaction,) = transactions_by_op(run.transport, "nbsentry.notebook")
    spans = transaction["spans"]
    omitted = transaction["contexts"]["trace"]["data"][
        "nbsentry.omitted_spans"
    ]
    (warning,) = logs_named(run.logs, "Spans left out of notebook transaction")
    cell_spans = [s for s in spans if s["op"] == "nbsentry.cell"]
    kernel_spans = [s for s in spans if s["op"] == "nbsentry.kernel.execute"]
    # One place goes to the transaction, one to the kernel start and one
    # is kept for a failing cell: the rest are cell spans, which come
    # before kernel spans.
    kept_cells = SPAN_LIMIT - 3
    assert run.summary.notebooks[0].cells_run == 1200
    assert len(spans) == SPAN_LIMIT - 2
    assert len(cell_spans) == kept_cells
    assert kernel_spans == []
    assert [s["data"]["cell.number"] for s in cell_spans] == list(
        range(1, kept_cells + 1)
    )
    assert omitted == (1200 - kept_cells) + 1200
    assert warning["notebook"] == "many-cells.ipynb"
    assert warning["omitted"] == omitted
    assert warning["log_level"] == "warning"


async def test_span_limit_cells_first(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "six-hundred.ipynb", [f"x = {i}" for i in range(600)]
    )

    run = await run_notebooks([notebook])

    (transaction,) = transactions_by_op(run.transport, "nbsentry.notebook")
    ops = [s["op"] for s in transaction["spans"]]
    assert ops.count("nbsentry.cell") == 600
    assert ops.count("nbsentry.kernel.execute") == SPAN_LIMIT - 3 - 600
    assert len(ops) == SPAN_LIMIT - 2


async def test_failing_cell_past_limit(tmp_path: Path) -> None:
    sources = [f"x = {i}" for i in range(1100)] + ["1 / 0"]
    notebook = write_notebook(tmp_path / "late.ipynb", sources)

    run = await run_notebooks([notebook])

    (transaction,) = transactions_by_op(run.transport, "nbsentry.notebook")
    cell_spans = [
        s for s in transaction["spans"] if s["op"] == "nbsentry.cell"
    ]
    last = cell_spans[-1]
    assert len(transaction["spans"]) == SPAN_LIMIT - 1
    assert last["data"]["cell.number"] == 1101
    assert last["status"] == "internal_error"
    assert cell_spans[-2]["data"]["cell.number"] == SPAN_LIMIT - 3


async def test_span_limit_cancelled_run(tmp_path: Path) -> None:
    sources = [f"x = {i}" for i in range(600)] + [
        "import time; time.sleep(60)"
    ]
    write_notebook(tmp_path / "stopped.ipynb", sources)
    config = make_config([tmp_path])
    task: asyncio.Task[Any] | None = None

    def stop_before_sleep(notebook: str, cell: str) -> None:
        del notebook
        if cell == "cell-600" and task is not None:
            task.cancel()

    observer = RecordingObserver(on_cell_finished=stop_before_sleep)
    with (
        capture_sentry(options=sentry_options()) as transport,
        capture_logs() as logs,
    ):
        task = asyncio.create_task(build_monkey(config, observer).run())
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=120)

    (transaction,) = transactions_by_op(transport, "nbsentry.notebook")
    data = transaction["contexts"]["trace"]["data"]
    (warning,) = logs_named(logs, "Spans left out of notebook transaction")
    # Two places go to the transaction and a late failing cell, one to the
    # kernel start and 601 to cells. Kernel spans get the rest.
    kept_kernel_spans = SPAN_LIMIT - 2 - 1 - 601
    assert data["nbsentry.omitted_spans"] == 600 - kept_kernel_spans
    assert warning["omitted"] == 600 - kept_kernel_spans
    assert warning["notebook"] == "stopped.ipynb"
    assert warning["limit"] == SPAN_LIMIT
    transport.validate_all()


def test_dsn_sends_to_server(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    spool = tmp_path / "spool"

    result = invoke_cli(
        [FAILING, "--dsn", sentry_server.dsn, "--spool", str(spool)]
    )

    assert result.exit_code == 1, result.output
    (event,) = sentry_server.events
    names = [t["transaction"] for t in sentry_server.transactions]
    assert event["exception"]["values"][0]["type"] == "KeyError"
    assert names == [
        "NotebookRunner.startup",
        "failing-cell.ipynb",
        "NotebookRunner.run",
        "NotebookRunner.shutdown",
    ]
    assert {r.auth["sentry_key"] for r in sentry_server.requests} == {
        sentry_server.public_key
    }
    assert not spool.exists()


@pytest.mark.timeout(120)
def test_dsn_hidden_from_kernel(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    notebook = write_notebook(
        tmp_path / "environ.ipynb",
        ["import os\nraise RuntimeError(repr(os.environ.get('SENTRY_DSN')))"],
    )

    process = run_cli_subprocess(
        [str(notebook), "--log-level", "debug"],
        cwd=tmp_path,
        env={"SENTRY_DSN": sentry_server.dsn},
    )

    assert process.returncode == 1, process.stderr
    sentry_server.wait_for_envelopes(4)
    (event,) = sentry_server.events
    assert event["exception"]["values"][0]["value"] == "None"
    key = sentry_server.public_key
    payloads = sentry_server.events + sentry_server.transactions
    assert key not in json.dumps(payloads)
    assert key not in process.stdout
    assert key not in process.stderr
    assert not (tmp_path / ".nbsentry").exists()


def test_public_key_not_sent_to_kernel(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    notebook = write_notebook(
        tmp_path / "baggage.ipynb",
        [
            (
                "parent = get_ipython().kernel.get_parent('shell')\n"
                "raise RuntimeError(parent['metadata']['nbsentry']['baggage'])"
            )
        ],
    )

    result = invoke_cli([str(notebook), "--dsn", sentry_server.dsn])

    assert result.exit_code == 1, result.output
    (event,) = sentry_server.events
    baggage = event["exception"]["values"][0]["value"]
    assert "sentry-trace_id=" in baggage
    assert "sentry-public_key" not in baggage


def test_secrets_filtered_outside_events(
    tmp_path: Path, sentry_server: SentryServer
) -> None:
    key = sentry_server.public_key
    notebook = write_notebook(
        tmp_path / "leak.ipynb",
        [f"raise ValueError('the key is {key}')"],
    )

    result = invoke_cli([str(notebook), "--dsn", sentry_server.dsn], env=WIDE)

    assert result.exit_code == 1, result.output
    (attachment,) = sentry_server.attachments
    assert "ValueError" in attachment.data.decode()
    assert key not in attachment.data.decode()
    assert "the key is [Filtered]" in result.stdout
    assert key not in result.stdout
    assert key not in result.stderr


def test_long_message_shortened(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "long.ipynb", ["raise ValueError('v' * 100_000)"]
    )

    result = invoke_cli([str(notebook), "--spool", str(tmp_path / "spool")])

    assert result.exit_code == 1, result.output
    (line,) = [
        line for line in result.stderr.splitlines() if "Cell failed" in line
    ]
    assert len(line) < MAX_MESSAGE_LENGTH + 200
    assert "…" in line


def test_tag_keeps_end_of_long_value() -> None:
    value = "folder/" * 40 + "analysis.ipynb"

    tag = tag_value(value)

    assert len(tag) == MAX_TAG_LENGTH
    assert tag.startswith("…")
    assert tag.endswith("/analysis.ipynb")


def test_notebook_clock_follows_monotonic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The wall clock may be slewed while a notebook runs; the notebook's
    # clock advances with the monotonic clock from the transaction's start.
    ticks = iter([1_000_000_000, 3_500_000_000])
    fake_time = SimpleNamespace(
        monotonic_ns=lambda: next(ticks), time=time.time
    )
    monkeypatch.setattr(traces, "time", fake_time)
    started = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    transaction = Transaction(name="nb.ipynb", start_timestamp=started)

    trace = NotebookTrace(
        "nb.ipynb", transaction, cast("Any", None), cast("Any", None)
    )

    assert trace.now() == started.timestamp() + 2.5
