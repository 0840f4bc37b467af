# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of ``nbsentry run``: options, exit status, summary and logs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from nbsentry import cli
from tests.support.cli import (
    invoke_cli,
    read_spool,
    run_cli_subprocess,
    start_cli_subprocess,
)
from tests.support.runs import REPO_ROOT, make_deep_folders, write_notebook

if TYPE_CHECKING:
    from typer.testing import Result

NOTEBOOKS = REPO_ROOT / "notebooks"
PASSING = str(NOTEBOOKS / "passing.ipynb")
FAILING = str(NOTEBOOKS / "failing-cell.ipynb")
# Wide enough that the summary table shows every column unshortened.
WIDE = {"COLUMNS": "200"}
# Writes to this Linux device fail with ENOSPC.
DEV_FULL = Path("/dev/full")


def _row(result: Result, name: str) -> dict[str, str]:
    """Return the summary table row of a notebook, keyed by column."""
    return _summary_row(result.stdout, name)


def _summary_row(stdout: str, name: str) -> dict[str, str]:
    header: list[str] = []
    for line in stdout.splitlines():
        if "┃" in line and "Notebook" in line:
            header = [cell.strip() for cell in line.split("┃")[1:-1]]
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] == name:
            return dict(zip(header, cells, strict=True))
    message = f"no summary row for {name}:\n{stdout}"
    raise AssertionError(message)


def _error_line(result: Result) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_exit_passed(tmp_path: Path) -> None:
    result = invoke_cli([PASSING, "--spool", str(tmp_path)], env=WIDE)

    assert result.exit_code == 0, result.output
    assert len(read_spool(tmp_path)) == 4
    assert "nbsentry summary" in result.stdout
    row = _row(result, "passing.ipynb")
    assert row["Status"] == "passed"
    assert row["Cells"] == "4"
    assert row["First failure"] == ""


def test_exit_failed_summary(tmp_path: Path) -> None:
    result = invoke_cli([FAILING, PASSING, "--spool", str(tmp_path)], env=WIDE)

    assert result.exit_code == 1, result.output
    assert len(read_spool(tmp_path)) == 6
    failing = _row(result, "failing-cell.ipynb")
    passing = _row(result, "passing.ipynb")
    assert failing["Status"] == "failed"
    assert failing["Cells"] == "2"
    assert failing["First failure"] == "#2 (read-filter): KeyError: 'filter'"
    assert passing["Status"] == "passed"
    assert passing["Cells"] == "4"


def test_log_lines(tmp_path: Path) -> None:
    result = invoke_cli([FAILING, PASSING, "--spool", str(tmp_path)], env=WIDE)
    read_spool(tmp_path)
    lines = result.stderr.splitlines()
    finished = [line for line in lines if "Notebook finished" in line]
    failed = [line for line in lines if "Cell failed" in line]

    assert len(finished) == 2
    assert "notebook=failing-cell.ipynb" in finished[0]
    assert "failed_cell=read-filter" in finished[0]
    assert "notebook=passing.ipynb" in finished[1]
    assert len(failed) == 1
    assert "notebook=failing-cell.ipynb" in failed[0]
    assert "cell=read-filter" in failed[0]
    assert "cell_number=#2" in failed[0]


@pytest.mark.parametrize("value", ["abc", "1.5", "-0.1", ""])
def test_traces_sample_rejected(value: str) -> None:
    result = invoke_cli([PASSING, "--traces-sample", value])

    assert result.exit_code == 2
    assert _error_line(result).startswith(
        "Error: --traces-sample or NBSENTRY_TRACES_SAMPLE: invalid traces"
        f" sample {value!r}"
    )


def test_traces_sample_env_read() -> None:
    result = invoke_cli([PASSING], env={"NBSENTRY_TRACES_SAMPLE": "abc"})

    assert result.exit_code == 2
    assert "invalid traces sample 'abc'" in _error_line(result)


def test_unknown_kernel() -> None:
    result = invoke_cli([PASSING, "--kernel", "no-such-kernel"])

    assert result.exit_code == 2
    assert _error_line(result) == (
        "Error: Kernel 'no-such-kernel' not found; installed kernels:"
        " python3. Pick one with --kernel, or install the kernel spec."
    )


def test_missing_paths() -> None:
    result = invoke_cli([])

    assert result.exit_code == 2
    assert _error_line(result) == (
        "Error: Missing notebook paths: give PATH arguments or 'paths' in"
        " --config"
    )


def test_path_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "absent"

    result = invoke_cli([str(missing), "--spool", str(tmp_path / "spool")])

    assert result.exit_code == 2
    assert f"Error: Notebook path not found: {missing}" in result.stderr
    assert not (tmp_path / "spool").exists()


def test_invalid_log_level() -> None:
    result = invoke_cli([PASSING, "--log-level", "loud"])

    assert result.exit_code == 2
    assert _error_line(result) == (
        "Error: Invalid log level 'loud': use debug, info, warning or error"
    )


def test_invalid_order() -> None:
    result = invoke_cli([PASSING, "--order", "random"])

    assert result.exit_code == 2
    assert "'random'" in result.stderr
    assert "--order" in result.stderr


def test_config_unknown_key(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("cell-timout: 5\n", encoding="utf-8")

    result = invoke_cli([PASSING, "--config", str(config)])

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"Error: Invalid configuration in {config}:",
        "  cell-timout: unknown option; see 'nbsentry run --help'",
    ]


def test_config_bad_value(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("max-executions: 0\n", encoding="utf-8")

    result = invoke_cli([PASSING, "--config", str(config)])

    assert result.exit_code == 2
    assert _error_line(result).startswith("  max-executions: ")
    assert _error_line(result).endswith("(got 0)")


def test_config_sets_values(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    config = tmp_path / "run.yaml"
    config.write_text(
        f"paths: [{PASSING}]\n"
        "flock: from-config\n"
        "iterations: 2\n"
        "idle-time: 0.01\n"
        f"spool: {spool}\n",
        encoding="utf-8",
    )

    result = invoke_cli(["--config", str(config), "--flock", "from-option"])

    assert result.exit_code == 0, result.output
    transactions = [
        item.payload.json
        for envelope in read_spool(spool)
        for item in envelope.items
        if item.type == "transaction" and item.payload.json is not None
    ]
    ops = [t["contexts"]["trace"]["op"] for t in transactions]
    assert ops.count("nbsentry.run") == 2
    assert {t["tags"]["flock"] for t in transactions} == {"from-option"}


def test_working_directory(tmp_path: Path) -> None:
    notebook_dir = tmp_path / "notebooks"
    kernel_dir = tmp_path / "kernel-cwd"
    notebook_dir.mkdir()
    kernel_dir.mkdir()
    notebook = write_notebook(
        notebook_dir / "cwd.ipynb",
        ["import os\nraise RuntimeError(os.getcwd())"],
    )
    spool = tmp_path / "spool"

    result = invoke_cli(
        [
            str(notebook),
            "--working-directory",
            str(kernel_dir),
            "--spool",
            str(spool),
        ]
    )

    assert result.exit_code == 1, result.output
    (event,) = [
        item.payload.json
        for envelope in read_spool(spool)
        for item in envelope.items
        if item.type == "event" and item.payload.json is not None
    ]
    assert event["exception"]["values"][0]["value"] == str(kernel_dir)


def test_invalid_dsn_rejected(tmp_path: Path) -> None:
    result = invoke_cli([PASSING, "--dsn", "foo", "--spool", str(tmp_path)])

    assert result.exit_code == 2
    assert _error_line(result).startswith("Error: Invalid DSN: ")
    assert list(tmp_path.iterdir()) == []


def test_spool_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    result = invoke_cli([PASSING, "--spool", str(blocker / "spool")])

    assert result.exit_code == 2
    assert _error_line(result).startswith(
        f"Error: Cannot write to spool folder {blocker / 'spool'}: "
    )


def test_spool_empty_rejected() -> None:
    result = invoke_cli([PASSING, "--spool", ""])

    assert result.exit_code == 2
    assert "Spool folder is empty: name a folder" in result.stderr


def test_send_spool_empty_rejected() -> None:
    result = CliRunner().invoke(
        cli.app,
        ["send-spool", "--dsn", "http://key@127.0.0.1:9/1", "--spool", ""],
    )

    assert result.exit_code == 2
    assert "Spool folder is empty: name a folder" in result.stderr


def test_help_shows_defaults() -> None:
    result = CliRunner().invoke(cli.app, ["run", "--help"], env=WIDE)

    assert result.exit_code == 0
    assert "Seconds between iterations (default: 60)." in result.stdout


def test_send_spool_invalid_log_level(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.app,
        ["send-spool", "--spool", str(tmp_path), "--log-level", "loud"],
    )

    assert result.exit_code == 2
    assert "Invalid log level 'loud'" in result.stderr


@pytest.mark.allow_sentry_sdk_errors
def test_lost_envelopes_fail_run() -> None:
    # Nothing listens on port 1, so every envelope is lost.
    result = invoke_cli([PASSING, "--dsn", "http://key@127.0.0.1:1/1"])

    assert result.exit_code == 1
    assert "Sentry data lost" in result.stderr
    assert "reason=network_error" in result.stderr


def test_ascii_terminal_name_escaped(tmp_path: Path) -> None:
    write_notebook(tmp_path / "café.ipynb", ["x = 1"])
    spool = tmp_path / "spool"

    process = run_cli_subprocess(
        [str(tmp_path), "--spool", str(spool)],
        cwd=tmp_path,
        env={"PYTHONIOENCODING": "ascii"},
    )

    assert process.returncode == 0, process.stderr
    assert "caf\\xe9.ipynb" in process.stdout
    assert "Traceback" not in process.stderr


def test_control_characters_escaped(tmp_path: Path) -> None:
    name = "\x1b[31mred\x1b[0m.ipynb"
    notebook = write_notebook(
        tmp_path / name, ["raise ValueError('\\x1b]0;TITLE\\x1b\\\\\\x1b[2J')"]
    )
    content = json.loads(notebook.read_text(encoding="utf-8"))
    content["cells"][0]["id"] = "e\x1b[31mf"
    notebook.write_text(json.dumps(content), encoding="utf-8")
    spool = tmp_path / "spool"

    result = invoke_cli([str(notebook), "--spool", str(spool)], env=WIDE)

    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.stdout
    assert "\x1b" not in result.stderr
    row = _row(result, "\\x1b[31mred\\x1b[0m.ipynb")
    assert row["First failure"] == (
        "#1 (e\\x1b[31mf): ValueError: \\x1b]0;TITLE\\x1b\\\\x1b[2J"
    )
    assert "cell=e\\x1b[31mf" in result.stderr
    assert "notebook=\\x1b[31mred\\x1b[0m.ipynb" in result.stderr
    (event,) = [
        item.payload.json
        for envelope in read_spool(spool)
        for item in envelope.items
        if item.type == "event" and item.payload.json is not None
    ]
    assert event["exception"]["values"][0]["value"] == (
        "\x1b]0;TITLE\x1b\\\x1b[2J"
    )
    assert event["tags"]["notebook"] == name
    assert event["tags"]["cell"] == "e\x1b[31mf"


def test_format_warnings_logged_once(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "ids.ipynb", ["x = 1", "y = 2", "z = 3"]
    )
    content = json.loads(notebook.read_text(encoding="utf-8"))
    content["cells"][1]["id"] = "cell-1"
    del content["cells"][2]["id"]
    notebook.write_text(json.dumps(content), encoding="utf-8")
    spool = tmp_path / "spool"

    process = run_cli_subprocess(
        [str(notebook), "--spool", str(spool), "--log-format", "json"],
        cwd=tmp_path,
    )

    assert process.returncode == 0, process.stderr
    entries = [json.loads(line) for line in process.stderr.splitlines()]
    warnings = [
        entry
        for entry in entries
        if entry["event"] == "Notebook format warning"
    ]
    assert [entry["warning"] for entry in warnings] == [
        "MissingIDFieldWarning",
        "DuplicateCellId",
    ]
    assert [entry["notebook"] for entry in warnings] == ["ids.ipynb"] * 2
    assert [entry["count"] for entry in warnings] == [1, 1]


@pytest.mark.parametrize(("notebook", "status"), [(PASSING, 0), (FAILING, 1)])
def test_closed_stdout_keeps_status(
    tmp_path: Path, notebook: str, status: int
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = run_cli_subprocess(
            [notebook, "--spool", str(tmp_path / "spool")],
            cwd=tmp_path,
            stdout=write_end,
        )
    finally:
        os.close(write_end)

    assert process.returncode == status, process.stderr
    assert "Traceback" not in process.stderr
    assert "Exception ignored" not in process.stderr


@pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full")
def test_full_stdout_logged(tmp_path: Path) -> None:
    with DEV_FULL.open("w", encoding="utf-8") as full:
        process = run_cli_subprocess(
            [PASSING, "--spool", str(tmp_path / "spool")],
            cwd=tmp_path,
            stdout=full,
        )

    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    assert "Exception ignored" not in process.stderr
    (warning,) = [
        line
        for line in process.stderr.splitlines()
        if "Summary not printed: cannot write to stdout" in line
    ]
    assert "No space left on device" in warning


@pytest.mark.parametrize("closed", [False, True])
def test_unwritable_stderr_run_goes_on(
    tmp_path: Path, *, closed: bool
) -> None:
    with DEV_FULL.open("w", encoding="utf-8") as full:
        process = run_cli_subprocess(
            [PASSING, "--spool", str(tmp_path / "spool")],
            cwd=tmp_path,
            stderr=None if closed else full,
        )

    assert process.returncode == 0, process.stdout
    assert "│ passing.ipynb │ passed │" in process.stdout
    assert process.stdout.rstrip().endswith(
        "log lines were not written: stderr cannot be written to. Check"
        " where stderr goes."
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_summary_seconds(
    tmp_path: Path, signum: signal.Signals
) -> None:
    started = tmp_path / "started"
    notebook = write_notebook(
        tmp_path / "slow.ipynb",
        [
            f"open({str(started)!r}, 'w').close()",
            "import time; time.sleep(60)",
        ],
    )
    args = [str(notebook), "--spool", str(tmp_path / "spool")]

    with start_cli_subprocess(args, cwd=tmp_path, env=WIDE) as process:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the first cell did not run"
            time.sleep(0.05)
        # The second cell sleeps meanwhile, so the notebook runs this long.
        time.sleep(1)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + signum, stderr
    row = _summary_row(stdout, "slow.ipynb")
    assert row["Status"] == "cancelled"
    assert row["Cells"] == "1"
    assert float(row["Seconds"]) >= 1


def test_too_long_path_skipped(tmp_path: Path) -> None:
    root = tmp_path / "notebooks"
    root.mkdir()
    write_notebook(root / "ok.ipynb", ["x = 1"])
    top = make_deep_folders(root)
    try:
        result = invoke_cli([str(root), "--spool", str(tmp_path / "spool")])
    finally:
        shutil.rmtree(top)

    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    skipped = [
        line for line in result.stderr.splitlines() if "Path skipped" in line
    ]
    assert len(skipped) == 1
    assert f"path={top}" in skipped[0]
    assert _row(result, "ok.ipynb")["Status"] == "passed"


def test_only_too_long_path(tmp_path: Path) -> None:
    top = make_deep_folders(tmp_path)
    try:
        result = invoke_cli([str(tmp_path), "--spool", str(tmp_path / "s")])
    finally:
        shutil.rmtree(top)

    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert message.startswith(
        f"Error: No notebooks found under {tmp_path}. Cannot read {top}/"
    )
    assert message.endswith(
        " (File name too long). Shorten the path or fix its permissions"
    )


def test_exclude_everything(tmp_path: Path) -> None:
    result = invoke_cli(
        [PASSING, "--exclude", "*", "--spool", str(tmp_path / "spool")]
    )

    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == (
        f"Error: No notebooks to run under {PASSING}, because the exclude"
        " patterns '*' match the notebook found. Change --exclude or"
        " 'exclude' in the config file"
    )
    assert not (tmp_path / "spool").exists()
