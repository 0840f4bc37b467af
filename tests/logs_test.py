# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of log line rendering."""

from __future__ import annotations

import io
import json
import sys
from typing import TYPE_CHECKING

import pytest
import structlog

from nbsentry.logs import LogFormat, configure_logging, unwritten_log_lines

if TYPE_CHECKING:
    from collections.abc import Iterator

NAME = "\x1b[31mred\x1b[0m.ipynb"
CELL_ID = "e\x1b[31mf"
ERROR = "ValueError: \x1b]0;TITLE\x1b\\ \x9b2J"


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _log_failure() -> None:
    logger = structlog.get_logger("nbsentry")
    logger.warning("Cell failed", notebook=NAME, cell=CELL_ID, error=ERROR)
    try:
        raise ValueError(ERROR + "\nsecond line")  # noqa: TRY301
    except ValueError:
        logger.exception("Shutdown failed")


def test_console_control_characters_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(log_format=LogFormat.console)

    _log_failure()

    stderr = capsys.readouterr().err
    assert "\x1b" not in stderr
    assert "\x9b" not in stderr
    assert "notebook=\\x1b[31mred\\x1b[0m.ipynb" in stderr
    assert "cell=e\\x1b[31mf" in stderr
    # structlog quotes a value with a space with repr, which escapes it.
    assert "error='ValueError: \\x1b]0;TITLE\\x1b\\\\ \\x9b2J'" in stderr
    assert "ValueError: \\x1b]0;TITLE\\x1b\\ \\x9b2J\nsecond line" in stderr


def test_json_keeps_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.json)

    _log_failure()

    first, second = capsys.readouterr().err.splitlines()
    entry = json.loads(first)
    assert entry["notebook"] == NAME
    assert entry["cell"] == CELL_ID
    assert entry["error"] == ERROR
    assert ERROR + "\nsecond line" in json.loads(second)["exception"]


def test_unwritten_lines_counted_per_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    configure_logging()

    structlog.get_logger("nbsentry").info("Starting up")
    structlog.get_logger("nbsentry").info("Shutting down")
    counted = unwritten_log_lines()
    configure_logging()

    assert counted == 2
    assert unwritten_log_lines() == 0
