"""Structured logging of the runner with structlog."""

from __future__ import annotations

import dataclasses
import logging
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog
from structlog.dev import (
    Column,
    ColumnFormatter,
    ConsoleRenderer,
    KeyValueColumnFormatter,
)

from .terminal import escape_control_characters

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

__all__ = ["LogFormat", "configure_logging", "unwritten_log_lines"]


class LogFormat(StrEnum):
    """Rendering of log lines."""

    console = "console"
    json = "json"


class _StderrLogger:
    """Write each line to whatever ``sys.stderr`` is at that moment.

    A progress display replaces ``sys.stderr`` while it runs, so that log
    lines print above it instead of tearing it. A line that cannot be
    written, because stderr is closed or its disk is full, is counted in
    `unwritten_log_lines` and the run goes on.
    """

    unwritten = 0

    def msg(self, message: str) -> None:
        stream = sys.stderr
        if stream is None:
            # Given None, print writes to stdout instead.
            _StderrLogger.unwritten += 1
            return
        try:
            print(message, file=stream, flush=True)
        except (OSError, ValueError):
            # A closed stream raises ValueError.
            _StderrLogger.unwritten += 1

    log = debug = info = warn = warning = msg
    error = critical = exception = fatal = msg


def unwritten_log_lines() -> int:
    """Return how many log lines could not be written to stderr."""
    return _StderrLogger.unwritten


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


def _console_renderer() -> ConsoleRenderer:
    """Build a console renderer that escapes control characters in values.

    structlog 26.1 quotes a value only when it contains a space, a quote,
    ``=`` or a line break, so an ESC in a notebook name or cell id would
    reach the terminal and act there.
    """
    renderer = ConsoleRenderer(colors=_stderr_is_terminal())
    renderer.columns = [
        Column(column.key, _escaping_formatter(column.formatter))
        for column in renderer.columns
    ]
    return renderer


def _stderr_is_terminal() -> bool:
    # Python sets sys.stderr to None when file descriptor 2 is closed, and
    # a closed stream raises ValueError.
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except ValueError:
        return False


def _escaping_formatter(formatter: ColumnFormatter) -> ColumnFormatter:
    if not isinstance(formatter, KeyValueColumnFormatter):
        return formatter
    value_repr = formatter.value_repr

    def escaped_repr(value: object) -> str:
        return escape_control_characters(value_repr(value))

    return dataclasses.replace(formatter, value_repr=escaped_repr)


def _escape_traceback(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """Escape control characters in a formatted traceback or stack.

    The console renderer prints these as they are, after the key-value
    pairs, and an exception's message can come from a notebook.
    """
    del logger, method_name
    for key in ("exception", "stack"):
        value = event_dict.get(key)
        if isinstance(value, str):
            event_dict[key] = escape_control_characters(value, multiline=True)
    return event_dict


def configure_logging(
    *, level: str = "info", log_format: LogFormat = LogFormat.console
) -> None:
    """Set up structlog for a CLI run.

    Parameters
    ----------
    level
        Minimum level name, such as ``info`` or ``debug``.
    log_format
        Console lines for people, or one JSON object per line.
    """
    _StderrLogger.unwritten = 0
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if log_format is LogFormat.json:
        # JSON escapes control characters itself.
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors += [_escape_traceback, _console_renderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
