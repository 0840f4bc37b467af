# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Run ``nbsentry run`` in this process or in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO, TYPE_CHECKING, Any
from unittest import mock

import sentry_sdk
import structlog
from sentry_sdk.envelope import Envelope
from typer.testing import CliRunner

from nbsentry import cli
from nbsentry.logs import configure_logging
from nbsentry.sentry import spool_files
from tests.support.capture import EnvelopeStore

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from typer.testing import Result

__all__ = [
    "CLEAN_ENV_VARIABLES",
    "invoke_cli",
    "read_spool",
    "run_cli_subprocess",
    "start_cli_subprocess",
]

CLEAN_ENV_VARIABLES = (
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_RELEASE",
    "NBSENTRY_TRACES_SAMPLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)
"""Variables removed before a run, so the test sets every value itself."""


def _configure_uncached(**options: Any) -> None:
    # The CLI caches loggers on first use. In a test process that would pin
    # the runner's module loggers to this run's output for every later test,
    # so caching is turned off.
    configure_logging(**options)
    structlog.configure(cache_logger_on_first_use=False)


def invoke_cli(
    args: list[str], env: Mapping[str, str] | None = None
) -> Result:
    """Run ``nbsentry run ARGS`` in this process with typer's test runner.

    Logs go to the result's stderr. The sentry-sdk client the command
    starts is removed afterwards, and structlog is reset.

    Parameters
    ----------
    args
        Arguments after ``run``.
    env
        Environment variables for the run, on top of the process's ones
        minus `CLEAN_ENV_VARIABLES`.
    """
    environment: dict[str, str | None] = dict.fromkeys(CLEAN_ENV_VARIABLES)
    environment.update(env or {})
    runner = CliRunner()
    try:
        with mock.patch.object(cli, "configure_logging", _configure_uncached):
            return runner.invoke(cli.app, ["run", *args], env=environment)
    finally:
        structlog.reset_defaults()
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def run_cli_subprocess(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 90.0,
    stdout: int | IO[Any] = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[str]:
    """Run ``nbsentry run ARGS`` in a new Python process.

    Parameters
    ----------
    args
        Arguments after ``run``.
    cwd
        Working directory of the process.
    env
        Environment variables on top of the process's ones minus
        `CLEAN_ENV_VARIABLES`.
    timeout
        Seconds before the process is killed and the test fails.
    stdout
        Where the process writes its standard output; captured by default.
    stderr
        Where the process writes its standard error; captured by default.
        `None` starts the process with its standard error closed.
    """
    return subprocess.run(
        _command(args),
        cwd=cwd,
        env=_environment(env),
        stdout=stdout,
        stderr=subprocess.DEVNULL if stderr is None else stderr,
        # For None, the child closes descriptor 2 before the command starts.
        preexec_fn=_close_stderr if stderr is None else None,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli_subprocess(
    args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``nbsentry run ARGS`` in a new Python process.

    Its standard output and error are pipes, and the environment is set
    as for `run_cli_subprocess`.
    """
    return subprocess.Popen(
        _command(args),
        cwd=cwd,
        env=_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _close_stderr() -> None:
    os.close(2)


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "nbsentry.cli", "run", *args]


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in CLEAN_ENV_VARIABLES
    }
    environment.update(env or {})
    return environment


def read_spool(directory: Path) -> list[Envelope]:
    """Parse every envelope in a spool directory, oldest first.

    Raises
    ------
    AssertionError
        Raised if Relay rejects an event or transaction in the spool.
    """
    envelopes = [
        Envelope.deserialize(path.read_bytes())
        for path in spool_files(directory)
    ]
    store = EnvelopeStore()
    for envelope in envelopes:
        store.record(envelope)
    store.validate_all()
    return envelopes
