"""Command-line interface: ``nbsentry run``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console

from .backends.local import LocalBackend
from .business import Monkey
from .config import (
    EMPTY_SPOOL_MESSAGE,
    NotebookOrder,
    RunConfig,
    build_config,
    load_config_file,
    parse_traces_sample,
)
from .exceptions import ConfigError, KernelStartError
from .logs import LogFormat, configure_logging, unwritten_log_lines
from .models import NotebookResult, NotebookStatus
from .notebooks import find_notebooks, no_notebooks_error
from .sentry import (
    check_spool,
    close_sentry,
    envelope_endpoint,
    init_sentry,
    send_spool,
)
from .summary import ProgressDisplay, render_summary

__all__ = ["app", "main"]

EXIT_FAILED = 1
"""Exit status when a notebook failed."""

EXIT_USAGE = 2
"""Exit status for invalid options or configuration."""

_EXIT_SIGNAL_BASE = 128
"""Shells report death by signal N as status 128 + N."""

app = typer.Typer(
    help="Run Jupyter notebooks as synthetic users and report to Sentry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_logger = structlog.get_logger("nbsentry")


@app.callback()
def _root() -> None:
    """Run Jupyter notebooks as synthetic users and report to Sentry."""


def _check_log_level(level: str) -> None:
    if level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        msg = f"Invalid log level {level!r}: use debug, info, warning or error"
        raise _usage_error(msg)


def _usage_error(message: str) -> typer.Exit:
    Console(stderr=True).print(
        f"[red]Error:[/] {message}", highlight=False, soft_wrap=True
    )
    return typer.Exit(EXIT_USAGE)


@app.command()
def run(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Notebook files or folders (searched deeply)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Glob of notebook paths to skip; repeatable."),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            help="Passes over the notebooks; 0 runs until stopped"
            " (default: 1)."
        ),
    ] = None,
    max_executions: Annotated[
        int | None,
        typer.Option(help="Notebooks per iteration (default: all)."),
    ] = None,
    idle_time: Annotated[
        float | None,
        typer.Option(help="Seconds between iterations (default: 60)."),
    ] = None,
    execution_idle_time: Annotated[
        float | None, typer.Option(help="Seconds between cells (default: 0).")
    ] = None,
    notebook_idle_time: Annotated[
        float | None,
        typer.Option(help="Seconds between notebooks (default: 0)."),
    ] = None,
    error_idle_time: Annotated[
        float | None,
        typer.Option(help="Seconds after a failed iteration (default: 60)."),
    ] = None,
    working_directory: Annotated[
        Path | None,
        typer.Option(help="Kernel working directory (default: notebook's)."),
    ] = None,
    order: Annotated[
        NotebookOrder | None,
        typer.Option(help="Notebook order in a pass (default: sorted)."),
    ] = None,
    flock: Annotated[
        str | None, typer.Option(help="Flock name (default: nbsentry).")
    ] = None,
    kernel: Annotated[
        str | None,
        typer.Option(help="Kernel name (default: notebook's, or python3)."),
    ] = None,
    cell_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds before a cell is interrupted."),
    ] = None,
    startup_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a kernel has to start (default: 60)."),
    ] = None,
    traces_sample: Annotated[
        str | None,
        typer.Option(
            envvar="NBSENTRY_TRACES_SAMPLE",
            help="Rate in [0, 1], or 'errors' (default: 1).",
        ),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option(
            envvar="SENTRY_DSN",
            show_envvar=True,
            help="Sentry DSN (default: write envelopes to the spool).",
        ),
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(envvar="SENTRY_ENVIRONMENT", help="Sentry environment."),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(envvar="SENTRY_RELEASE", help="Sentry release."),
    ] = None,
    spool: Annotated[
        str | None,
        typer.Option(
            help="Folder for envelopes when no DSN is set"
            " (default: .nbsentry/spool).",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    kernel_integrations: Annotated[
        bool | None,
        typer.Option(
            "--kernel-integrations/--no-kernel-integrations",
            help="Forward spans of sentry-sdk integrations in the kernel"
            " (default: off).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML file of option values; options override it."),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error.")
    ] = "info",
    log_format: Annotated[
        LogFormat, typer.Option(help="Log line format.")
    ] = LogFormat.console,
) -> None:
    """Run notebooks and report failures, transactions and spans to Sentry.

    Exits with 0 when every notebook passed, 1 when any failed or Sentry
    data was lost, 2 for invalid options, and 128 plus the signal number
    when SIGTERM, SIGHUP or Ctrl-C stopped the run.
    """
    _check_log_level(log_level)
    configure_logging(level=log_level, log_format=log_format)
    overrides: dict[str, Any] = {
        "paths": paths or None,
        "exclude": exclude or None,
        "iterations": iterations,
        "max_executions": max_executions,
        "idle_time": idle_time,
        "execution_idle_time": execution_idle_time,
        "notebook_idle_time": notebook_idle_time,
        "error_idle_time": error_idle_time,
        "working_directory": working_directory,
        "order": order,
        "flock": flock,
        "kernel": kernel,
        "cell_timeout": cell_timeout,
        "startup_timeout": startup_timeout,
        "dsn": dsn or None,
        "environment": environment,
        "release": release,
        "spool": spool,
        "kernel_integrations": kernel_integrations,
    }
    if traces_sample is not None:
        try:
            overrides["traces_sample"] = parse_traces_sample(traces_sample)
        except ValueError as exc:
            msg = f"--traces-sample or NBSENTRY_TRACES_SAMPLE: {exc}"
            raise _usage_error(msg) from None
    try:
        file_values = load_config_file(config) if config else {}
        settings = build_config(
            file_values,
            overrides,
            source=str(config) if config else "command-line options",
        )
    except ConfigError as exc:
        raise _usage_error(str(exc)) from None
    if not settings.paths:
        msg = (
            "Missing notebook paths: give PATH arguments"
            " or 'paths' in --config"
        )
        raise _usage_error(msg)
    status = _run(settings)
    raise typer.Exit(status)


@app.command("send-spool")
def send_spool_command(
    dsn: Annotated[
        str | None,
        typer.Option(
            envvar="SENTRY_DSN",
            show_envvar=True,
            help="Sentry DSN to send to.",
        ),
    ] = None,
    spool_text: Annotated[
        str,
        typer.Option(
            "--spool",
            metavar="PATH",
            help="Spool folder written by 'nbsentry run'.",
        ),
    ] = ".nbsentry/spool",
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Send the envelopes that a run without a DSN wrote to the spool.

    Each envelope is deleted once Sentry accepts it. Exits with 0 when the
    spool is empty afterwards, 1 when envelopes remain or were rejected,
    and 2 for invalid options.
    """
    _check_log_level(log_level)
    configure_logging(level=log_level)
    if not dsn:
        msg = "Missing DSN: pass --dsn or set SENTRY_DSN"
        raise _usage_error(msg)
    if not spool_text.strip():
        raise _usage_error(EMPTY_SPOOL_MESSAGE)
    spool = Path(spool_text)
    if not spool.is_dir():
        msg = f"Spool folder not found: {spool}"
        raise _usage_error(msg)
    try:
        summary = asyncio.run(send_spool(spool, dsn))
    except ConfigError as exc:
        raise _usage_error(str(exc)) from None
    _logger.info(
        "Spool sent",
        spool=str(spool),
        sent=summary.sent,
        rejected=summary.rejected,
        remaining=summary.remaining,
    )
    failed = summary.rejected or summary.remaining
    raise typer.Exit(EXIT_FAILED if failed else 0)


def _run(settings: RunConfig) -> int:
    backend = LocalBackend(startup_timeout=settings.startup_timeout)
    # Check everything a user can get wrong before Sentry starts, so that
    # a usage error sends nothing.
    try:
        # The runner searches again and logs the paths it cannot read, so
        # here they only explain an empty search.
        unreadable: list[OSError] = []
        found = find_notebooks(
            settings.paths, settings.exclude, on_error=unreadable.append
        )
        if not found:
            raise no_notebooks_error(
                settings.paths, settings.exclude, unreadable
            )
        if settings.kernel is not None:
            backend.check_kernel(settings.kernel)
        if settings.dsn is not None:
            envelope_endpoint(settings.dsn.get_secret_value())
        else:
            check_spool(settings.spool)
    except (ConfigError, KernelStartError) as exc:
        raise _usage_error(str(exc)) from None

    init_sentry(settings)
    # Off a terminal rich assumes 80 columns; a log file can take more.
    console = _StdoutConsole()
    if not console.is_terminal:
        console = _StdoutConsole(width=max(console.width, 120))
    display = None
    if console.is_terminal:
        display = ProgressDisplay(
            console, _expected_executions(settings, len(found))
        )

    monkey = Monkey.from_config(settings, backend, observer=display)
    business = monkey.business
    try:
        stopped_by = _run_monkey(monkey, display)
    except ConfigError as exc:
        raise _usage_error(str(exc)) from None
    finally:
        lost = close_sentry()

    if business.completed:
        _print_summary(console, business.completed)
    _report_unwritten_logs(console)
    if stopped_by is not None:
        _logger.info("Run stopped by signal", signal=stopped_by.name)
        return _EXIT_SIGNAL_BASE + stopped_by.value
    failed = monkey.failed_iterations or any(
        r.status is NotebookStatus.failed for r in business.completed
    )
    return EXIT_FAILED if failed or lost else 0


class _StdoutConsole(Console):
    """A console on stdout that stops writing once the reader goes away."""

    def on_broken_pipe(self) -> None:
        """Drop further output, but leave the exit status to the run.

        The default in rich 15.0 raises ``SystemExit(1)``, so
        ``nbsentry run | head`` would exit with 1 after a run in which every
        notebook passed.
        """
        self.quiet = True
        _discard_stdout()


def _print_summary(console: Console, results: list[NotebookResult]) -> None:
    """Print the summary table, or log the error if stdout fails."""
    try:
        console.print(render_summary(results))
    except OSError as exc:
        # The disk is full or the device failed. The exit status still
        # reflects the run.
        console.quiet = True
        _discard_stdout()
        _logger.warning(
            "Summary not printed: cannot write to stdout", error=str(exc)
        )


def _report_unwritten_logs(console: Console) -> None:
    """Say on stdout how many log lines stderr did not take, if any."""
    unwritten = unwritten_log_lines()
    if not unwritten:
        return
    try:
        console.print(
            f"{unwritten} log lines were not written: stderr cannot be"
            " written to. Check where stderr goes.",
            markup=False,
        )
    except OSError:
        _discard_stdout()


def _discard_stdout() -> None:
    """Point stdout's file descriptor at the null device.

    Python flushes stdout at exit, and output left in its buffer would
    fail again there and print a traceback. The note on SIGPIPE in the
    documentation of Python's ``signal`` module recommends this.
    """
    try:
        fileno = sys.stdout.fileno()
    except (OSError, ValueError):
        # stdout has no file descriptor, as in typer's test runner.
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)


def _expected_executions(settings: RunConfig, found: int) -> int | None:
    if not settings.iterations:
        return None
    per_iteration = settings.max_executions or found
    return per_iteration * settings.iterations


def _run_monkey(
    monkey: Monkey, display: ProgressDisplay | None
) -> signal.Signals | None:
    """Run the monkey; return the signal that stopped it, if one did."""
    received: list[signal.Signals] = []

    def stop(task: asyncio.Task[object], signum: signal.Signals) -> None:
        received.append(signum)
        task.cancel()

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            # SIGHUP arrives when the terminal that started the run closes.
            for signum in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(signum, stop, task, signum)
        try:
            await monkey.run()
        except asyncio.CancelledError:
            if not received:
                raise

    with display or contextlib.nullcontext():
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            # asyncio.run cancels the run on Ctrl-C, then raises this.
            return signal.SIGINT
    return received[0] if received else None


def main() -> None:
    """Run the ``nbsentry`` command."""
    _tolerate_narrow_encodings()
    app(prog_name="nbsentry")


def _tolerate_narrow_encodings() -> None:
    """Escape characters that the terminal's encoding cannot show.

    A notebook name or error text outside an ASCII or Latin-1 terminal's
    encoding would otherwise end the run with a UnicodeEncodeError while
    it prints the summary or a log line.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


if __name__ == "__main__":
    main()
