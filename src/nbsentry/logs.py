"""Structured logging of the runner with structlog."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum

import structlog

__all__ = ["LogFormat", "configure_logging"]


class LogFormat(StrEnum):
    """Rendering of log lines."""

    console = "console"
    json = "json"


class _StderrLogger:
    """Write each line to whatever ``sys.stderr`` is at that moment.

    A progress display replaces ``sys.stderr`` while it runs, so that log
    lines print above it instead of tearing it.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)  # noqa: T201

    log = debug = info = warn = warning = msg
    error = critical = exception = fatal = msg


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


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
    renderer: structlog.typing.Processor
    if log_format is LogFormat.json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
