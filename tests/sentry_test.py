# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of what reaches Sentry: sampling, trace headers, span limits, DSN."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from nbsentry.runner import MAX_MESSAGE_LENGTH
from nbsentry.sentry import MAX_TAG_LENGTH, SPAN_LIMIT
from nbsentry.sentry.traces import tag_value
from tests.support.cli import invoke_cli, read_spool, run_cli_subprocess
from tests.support.runs import (
    REPO_ROOT,
    logs_named,
    run_notebooks,
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
    cell_span_ids = {s["span_id"] for s in cell_spans}
    kernel_spans = [s for s in spans if s["parent_span_id"] in cell_span_ids]
    other_spans = len(spans) - len(cell_spans) - len(kernel_spans)
    # Every cell is `x = N`, so each has as many kernel spans as the kept
    # ones show.
    per_cell = len(kernel_spans) // len(cell_spans)
    expected_total = other_spans + 1200 * (1 + per_cell)
    assert run.summary.notebooks[0].cells_run == 1200
    assert len(spans) <= SPAN_LIMIT
    assert len(kernel_spans) == per_cell * len(cell_spans)
    assert [s["data"]["cell.number"] for s in cell_spans] == list(
        range(1, len(cell_spans) + 1)
    )
    assert omitted == expected_total - len(spans)
    assert warning["notebook"] == "many-cells.ipynb"
    assert warning["omitted"] == omitted
    assert warning["log_level"] == "warning"


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
