"""The notebook-running business and the monkey that repeats it."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from .config import NotebookOrder, RunConfig
from .exceptions import ConfigError, InvalidNotebookError, KernelStartError
from .models import NotebookResult, NotebookStatus
from .notebooks import NotebookFile, find_notebooks, no_notebooks_error
from .runner import DEFAULT_KERNEL, NotebookExecutor
from .sentry import Telemetry

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .backends.base import KernelBackend
    from .runner import RunObserver
    from .sentry import PhaseTrace

__all__ = ["Monkey", "NotebookRunner", "RunSummary"]

_logger = structlog.get_logger("nbsentry")


@dataclass
class RunSummary:
    """Results of every iteration a monkey ran."""

    notebooks: list[NotebookResult] = field(default_factory=list)
    iterations: int = 0

    @property
    def failed(self) -> bool:
        """Whether any notebook failed."""
        return any(r.status is NotebookStatus.failed for r in self.notebooks)


class NotebookRunner:
    """Business that runs notebooks, a bounded number per iteration.

    Notebooks are found again at the start of each pass over them, so
    added and removed notebooks are noticed between passes.

    Parameters
    ----------
    config
        Run settings.
    executor
        Runs single notebooks.
    """

    name = "NotebookRunner"

    def __init__(self, config: RunConfig, executor: NotebookExecutor) -> None:
        self.config = config
        self.executor = executor
        self._queue: Iterator[NotebookFile] = iter(())
        self._pass_size = 0
        self.completed: list[NotebookResult] = []
        """Every notebook result so far, across iterations."""

        self._random = random.Random()  # noqa: S311 - shuffling, not secrets

    def _new_pass(self) -> list[NotebookFile]:
        files = find_notebooks(self.config.paths, self.config.exclude)
        if not files:
            raise no_notebooks_error(self.config.paths, self.config.exclude)
        if self.config.order is NotebookOrder.shuffled:
            self._random.shuffle(files)
        self._pass_size = len(files)
        return files

    def _next_files(self) -> list[NotebookFile]:
        """Take the next notebooks, starting new passes as needed.

        Without ``max_executions`` an iteration is one whole pass. With it,
        an iteration takes that many notebooks, going on into the next
        pass when this one ends, as mobu's notebook runner does.
        """
        limit = self.config.max_executions
        files: list[NotebookFile] = []
        while limit is None or len(files) < limit:
            file = next(self._queue, None)
            if file is None:
                if limit is None and files:
                    break
                self._queue = iter(self._new_pass())
                continue
            files.append(file)
        return files

    async def startup(self) -> None:
        """Find the notebooks and start a kernel for the first one.

        Raises
        ------
        ConfigError
            Raised if no notebook is found.
        KernelStartError
            Raised if the first kernel cannot start.
        """
        files = self._new_pass()
        self._queue = iter(files)
        first = files[0]
        try:
            kernel_name = self.executor.kernel_for(
                self.executor.preload(first)
            )
        except InvalidNotebookError:
            kernel_name = self.executor.kernel_name or DEFAULT_KERNEL
        _logger.info(
            "Starting up",
            business=self.name,
            notebooks=len(files),
            kernel=kernel_name,
        )
        await self.executor.backend.startup(
            kernel_name, self.executor.cwd_for(first)
        )

    async def run(self, phase: PhaseTrace) -> list[NotebookResult]:
        """Run one iteration: the next notebooks, up to ``max_executions``.

        Parameters
        ----------
        phase
            The iteration's Sentry state.

        Returns
        -------
        list of NotebookResult
            One result per notebook run.
        """
        results = []
        for index, file in enumerate(self._next_files()):
            if index and self.config.notebook_idle_time:
                await asyncio.sleep(self.config.notebook_idle_time)
            try:
                result = await self.executor.run(phase, file)
            except asyncio.CancelledError:
                # Show the interrupted notebook in the summary too.
                if self.executor.current is not None:
                    self.executor.current.cancelled = True
                    self.completed.append(self.executor.current)
                raise
            results.append(result)
            self.completed.append(result)
        return results

    async def shutdown(self) -> None:
        """Stop the backend's remaining kernels."""
        await self.executor.backend.shutdown()


class Monkey:
    """A synthetic user that runs a business's startup, iterations, shutdown.

    Each phase runs in a fresh Sentry isolation scope with a transaction
    of its own.

    Parameters
    ----------
    config
        Run settings: iterations and idle times.
    business
        The business to run.
    telemetry
        The monkey's Sentry state.
    """

    def __init__(
        self,
        config: RunConfig,
        business: NotebookRunner,
        telemetry: Telemetry,
    ) -> None:
        self.config = config
        self.business = business
        self.telemetry = telemetry
        self.failed_iterations = 0
        """Iterations that failed before running any notebook."""

    @classmethod
    def from_config(
        cls,
        config: RunConfig,
        backend: KernelBackend,
        *,
        observer: RunObserver | None = None,
    ) -> Monkey:
        """Build a monkey that runs notebooks as the ``run`` command does.

        Parameters
        ----------
        config
            Run settings.
        backend
            Where kernels run; its name, node and image become tags.
        observer
            Receiver of progress updates.
        """
        telemetry = Telemetry(
            flock=config.flock,
            business=NotebookRunner.name,
            user=f"{config.flock}01",
            errors_only=config.traces_sample == "errors",
            tags={
                "backend": backend.name,
                "node": backend.node,
                "image": backend.image,
            },
        )
        executor = NotebookExecutor(
            backend,
            telemetry,
            kernel_name=config.kernel,
            cell_timeout=config.cell_timeout,
            execution_idle_time=config.execution_idle_time,
            working_directory=config.working_directory,
            kernel_integrations=config.kernel_integrations,
            observer=observer,
        )
        return cls(config, NotebookRunner(config, executor), telemetry)

    async def run(self) -> RunSummary:
        """Run the business until its iterations are done or cancelled.

        Returns
        -------
        RunSummary
            Every notebook result.

        A first kernel that fails to start is reported in the startup
        transaction and logged, and the iterations run anyway: each
        notebook tries its own kernel and fails on its own.

        Raises
        ------
        ConfigError
            Raised if no notebook is found.
        """
        summary = RunSummary()
        try:
            with self.telemetry.phase("startup") as phase:
                try:
                    await self.business.startup()
                except KernelStartError as exc:
                    self.telemetry.capture_phase_error(phase, exc)
                    _logger.warning(
                        "First kernel did not start", error=exc.message
                    )
            await self._iterate(summary)
        finally:
            await self._shutdown()
        return summary

    async def _iterate(self, summary: RunSummary) -> None:
        limit = self.config.iterations
        while not limit or summary.iterations < limit:
            broken = False
            with self.telemetry.phase("run") as phase:
                try:
                    results = await self.business.run(phase)
                except ConfigError as exc:
                    # Notebooks can vanish between passes of a long run;
                    # the next iteration looks for them again.
                    self.telemetry.capture_phase_error(phase, exc)
                    _logger.error("Iteration failed", error=exc.message)  # noqa: TRY400
                    results = []
                    broken = True
                    self.failed_iterations += 1
            summary.iterations += 1
            summary.notebooks.extend(results)
            if limit and summary.iterations >= limit:
                return
            failed = broken or any(
                r.status is NotebookStatus.failed for r in results
            )
            idle = (
                self.config.error_idle_time
                if failed
                else self.config.idle_time
            )
            _logger.info(
                "Iteration finished",
                iteration=summary.iterations,
                failed=failed,
                idle=idle,
            )
            await asyncio.sleep(idle)

    async def _shutdown(self) -> None:
        with self.telemetry.phase("shutdown") as phase:
            try:
                await self.business.shutdown()
            except Exception as exc:
                self.telemetry.capture_phase_error(phase, exc)
                _logger.exception("Shutdown failed", error=str(exc))
