"""Tests of the closing summary table."""

from __future__ import annotations

from rich.console import Console

from nbsentry.models import NotebookResult
from nbsentry.summary import render_summary


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
