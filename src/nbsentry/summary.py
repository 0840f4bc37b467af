"""Progress display and the closing summary table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from rich.markup import escape
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
from .terminal import escape_control_characters

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console

    from .notebooks import Notebook

__all__ = ["ProgressDisplay", "render_summary"]

_STATUS_MARKUP = {
    NotebookStatus.passed: "[green]passed[/]",
    NotebookStatus.failed: "[red]failed[/]",
    NotebookStatus.cancelled: "[yellow]cancelled[/]",
}


class ProgressDisplay:
    """A progress bar of notebooks and of the current notebook's cells.

    Parameters
    ----------
    console
        Console to draw on.
    total
        Notebook executions expected, or `None` for a run without end.
    """

    def __init__(self, console: Console, total: int | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._notebooks: TaskID = self._progress.add_task(
            "notebooks", total=total
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
            _escape_name(notebook.name), total=len(notebook.cells)
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
    latest: dict[str, NotebookResult] = {}
    runs: dict[str, int] = {}
    failures: dict[str, int] = {}
    for result in results:
        latest[result.name] = result
        runs[result.name] = runs.get(result.name, 0) + 1
        if result.status is NotebookStatus.failed:
            failures[result.name] = failures.get(result.name, 0) + 1
    repeated = any(count > 1 for count in runs.values())
    table = Table(title="nbsentry summary", title_justify="left")
    table.add_column("Notebook", overflow="fold", ratio=2)
    table.add_column("Status", no_wrap=True)
    if repeated:
        table.add_column("Runs", justify="right", no_wrap=True)
        table.add_column("Failed", justify="right", no_wrap=True)
    table.add_column("Cells", justify="right", no_wrap=True)
    table.add_column("Seconds", justify="right", no_wrap=True)
    table.add_column("First failure", overflow="fold", ratio=3)
    for name in sorted(latest):
        result = latest[name]
        row = [_escape_name(name), _STATUS_MARKUP[result.status]]
        if repeated:
            row += [str(runs[name]), str(failures.get(name, 0))]
        row += [
            str(result.cells_run),
            f"{result.duration:.2f}",
            _describe_failure(result),
        ]
        table.add_row(*row)
    return table


def _escape_name(name: str) -> str:
    """Escape rich markup and control characters in a name."""
    return escape(escape_control_characters(name))


def _escape_message(message: str) -> str:
    """Escape rich markup and control characters except newline and tab."""
    return escape(escape_control_characters(message, multiline=True))


def _describe_failure(result: NotebookResult) -> str:
    failure = result.first_failure
    if failure is None:
        return _escape_message(result.error or "")
    cell = failure.cell
    where = cell.label
    if cell.cell_id != str(cell.number):
        where += f" ({escape_control_characters(cell.cell_id)})"
    return _escape_message(
        f"{where}: {failure.message or failure.status.value}"
    )
