"""Progress display and the closing summary table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .models import CellResult, NotebookResult, NotebookStatus

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console

    from .notebooks import Notebook

__all__ = ["ProgressDisplay", "render_summary"]


class ProgressDisplay:
    """A progress bar of notebooks and of the current notebook's cells.

    Parameters
    ----------
    console
        Console to draw on.
    """

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._notebooks: TaskID = self._progress.add_task(
            "notebooks", total=None
        )
        self._cells: TaskID | None = None

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def notebook_started(self, notebook: Notebook) -> None:
        """Show a bar for the cells of a notebook that starts."""
        if self._cells is not None:
            self._progress.remove_task(self._cells)
        self._cells = self._progress.add_task(
            notebook.name, total=len(notebook.cells)
        )

    def cell_finished(self, notebook: Notebook, result: CellResult) -> None:
        """Advance the cell bar."""
        del notebook, result
        if self._cells is not None:
            self._progress.advance(self._cells)

    def notebook_finished(self, result: NotebookResult) -> None:
        """Advance the notebook bar."""
        del result
        self._progress.advance(self._notebooks)


def render_summary(results: list[NotebookResult]) -> Table:
    """Build a table with one row per notebook.

    A notebook run several times shows its run and failure counts, and
    the figures of its latest run.

    Parameters
    ----------
    results
        Every notebook result, in the order they ran.
    """
    table = Table(title="nbsentry summary")
    table.add_column("Notebook")
    table.add_column("Status")
    table.add_column("Runs", justify="right")
    table.add_column("Failed", justify="right")
    table.add_column("Cells run", justify="right")
    table.add_column("Duration (s)", justify="right")
    table.add_column("Failing cell")
    table.add_column("Error", overflow="fold")
    latest: dict[str, NotebookResult] = {}
    runs: dict[str, int] = {}
    failures: dict[str, int] = {}
    for result in results:
        latest[result.name] = result
        runs[result.name] = runs.get(result.name, 0) + 1
        if result.status is NotebookStatus.failed:
            failures[result.name] = failures.get(result.name, 0) + 1
    for name in sorted(latest):
        result = latest[name]
        failure = result.first_failure
        failing_cell = ""
        error = result.error or ""
        if failure is not None:
            failing_cell = f"{failure.cell.label} {failure.cell.cell_id}"
            error = failure.message or ""
        passed = result.status is NotebookStatus.passed
        table.add_row(
            name,
            "[green]passed[/]" if passed else "[red]failed[/]",
            str(runs[name]),
            str(failures.get(name, 0)),
            str(result.cells_run),
            f"{result.duration:.2f}",
            failing_cell,
            error,
        )
    return table
