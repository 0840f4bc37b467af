"""Tests of the closing summary table."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from nbsentry.models import CellResult, CellStatus, NotebookResult
from nbsentry.notebooks import CodeCell, Notebook, NotebookFile
from nbsentry.summary import ProgressDisplay, render_summary


def _render(results: list[NotebookResult]) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(render_summary(results))
    return console.export_text()


def test_names_printed_literally() -> None:
    names = ["[archive]/nb.ipynb", "[red]loud.ipynb", "a[/]b.ipynb"]

    text = _render([NotebookResult(name=name) for name in names])

    for name in names:
        assert name in text


def test_error_printed_literally() -> None:
    result = NotebookResult(name="nb.ipynb", error="bad [bold]markup[/]")

    text = _render([result])

    assert "bad [bold]markup[/]" in text
    assert "nb.ipynb" in text


def test_control_characters_escaped() -> None:
    cell = CodeCell(
        index=0,
        number=1,
        cell_id="e\x1b[31mf",
        source="raise ValueError()",
        tags=frozenset(),
    )
    message = "ValueError: \x1b]0;TITLE\x1b\\\x1b[2J\x9b31m\x7f\x07\nline 2"
    failure = CellResult(cell, CellStatus.failed, message=message)
    results = [
        NotebookResult(name="\x1b[31mred\x1b[0m.ipynb", cells=[failure]),
        NotebookResult(name="bad.ipynb", error="Kernel 'k\x1b[2J' not found"),
    ]

    text = _render(results)

    assert "\x1b" not in text
    assert "\x9b" not in text
    assert "\x7f" not in text
    assert "\x07" not in text
    assert "\\x1b[31mred\\x1b[0m.ipynb" in text
    assert (
        "#1 (e\\x1b[31mf): ValueError: \\x1b]0;TITLE\\x1b\\\\x1b[2J"
        "\\x9b31m\\x7f\\x07"
    ) in text
    assert "Kernel 'k\\x1b[2J' not found" in text


def test_message_keeps_line_breaks() -> None:
    result = NotebookResult(name="nb.ipynb", error="first\nsecond\rthird")

    lines = _render([result]).splitlines()

    assert any("first" in line and "second" not in line for line in lines)
    assert any("second\\rthird" in line for line in lines)


def test_progress_name_escaped() -> None:
    output = io.StringIO()
    console = Console(
        file=output, width=120, force_terminal=True, color_system=None
    )
    name = "\x1b]0;TITLE\x07.ipynb"
    file = NotebookFile(Path("/notebooks") / name, name)
    notebook = Notebook(file=file, kernel_name=None, cells=())

    with ProgressDisplay(console, total=1) as display:
        display.notebook_started(notebook)

    # Rich's own cursor and line control codes start with ESC [.
    assert "\x1b]" not in output.getvalue()
    assert "\x07" not in output.getvalue()
    assert "\\x1b]0;TITLE\\x07.ipynb" in output.getvalue()
