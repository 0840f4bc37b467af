# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of notebook discovery and loading."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from nbsentry.exceptions import ConfigError, InvalidNotebookError
from nbsentry.notebooks import NotebookFile, find_notebooks, load_notebook
from tests.support.runs import REPO_ROOT, write_notebook

if TYPE_CHECKING:
    from pathlib import Path

DATA = REPO_ROOT / "tests" / "data"
TREE = DATA / "tree"


def _names(files: list[NotebookFile]) -> list[str]:
    return [f.name for f in files]


def test_find_recursive_skips_checkpoints() -> None:
    files = find_notebooks([TREE])

    assert _names(files) == ["a.ipynb", "sub/b.ipynb"]
    assert files[0].path == (TREE / "a.ipynb").resolve()
    assert files[1].path == (TREE / "sub" / "b.ipynb").resolve()


def test_find_names_relative_to_root() -> None:
    assert _names(find_notebooks([TREE / "sub"])) == ["b.ipynb"]
    assert _names(find_notebooks([TREE / "sub" / "b.ipynb"])) == ["b.ipynb"]
    assert "tree/sub/b.ipynb" in _names(find_notebooks([DATA]))


def test_find_relative_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    files = find_notebooks([TREE.relative_to(DATA)])

    assert _names(files) == ["a.ipynb", "sub/b.ipynb"]
    assert files[0].path.is_absolute()


def test_find_sorted_without_duplicates() -> None:
    files = find_notebooks([TREE / "sub", TREE, TREE / "a.ipynb"])

    assert _names(files) == ["a.ipynb", "b.ipynb"]
    assert len({f.path for f in files}) == 2


def test_find_checkpoints_given_directly() -> None:
    # Only folders below the given root are skipped by name.
    files = find_notebooks([TREE / ".ipynb_checkpoints"])

    assert _names(files) == ["passing-checkpoint.ipynb"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("b.ipynb", ["a.ipynb"]),
        ("sub/b.ipynb", ["a.ipynb"]),
        ("sub", ["a.ipynb"]),
        ("s*", ["a.ipynb"]),
        ("*.ipynb", []),
        ("a*", ["sub/b.ipynb"]),
        ("nothing", ["a.ipynb", "sub/b.ipynb"]),
    ],
)
def test_find_exclude(pattern: str, expected: list[str]) -> None:
    assert _names(find_notebooks([TREE], [pattern])) == expected


def test_find_exclude_several() -> None:
    files = find_notebooks([DATA], ["tree", "many-*", "invalid.ipynb"])

    assert _names(files) == [
        "kernel-dies.ipynb",
        "markdown-only.ipynb",
        "no-ids.ipynb",
        "sleep.ipynb",
        "tags.ipynb",
    ]


def test_find_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent"

    with pytest.raises(ConfigError) as raised:
        find_notebooks([missing])
    assert str(raised.value) == f"Notebook path not found: {missing}"


def test_find_not_a_notebook(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello", encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        find_notebooks([text])
    assert str(raised.value) == (
        f"Not a notebook (expected a .ipynb file): {text}"
    )


def test_find_skips_folders_named_ipynb(tmp_path: Path) -> None:
    (tmp_path / "odd.ipynb").mkdir()
    write_notebook(tmp_path / "real.ipynb", ["x = 1"])

    assert _names(find_notebooks([tmp_path])) == ["real.ipynb"]


@pytest.mark.skipif(os.name != "posix", reason="needs symlinks")
def test_find_symlinked_duplicate(tmp_path: Path) -> None:
    write_notebook(tmp_path / "real.ipynb", ["x = 1"])
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "real.ipynb")

    files = find_notebooks([tmp_path])
    assert _names(files) == ["link.ipynb"]


def test_load_code_cells() -> None:
    (file,) = find_notebooks([DATA / "tags.ipynb"])
    notebook = load_notebook(file)

    assert notebook.name == "tags.ipynb"
    assert notebook.kernel_name == "python3"
    assert [c.cell_id for c in notebook.cells] == [
        "expected-error",
        "skipped",
        "after-tags",
    ]
    assert [c.label for c in notebook.cells] == ["#1", "#2", "#3"]
    assert notebook.cells[0].raises_exception
    assert not notebook.cells[0].skip
    assert notebook.cells[1].skip
    assert not notebook.cells[2].raises_exception


def test_load_counts_code_cells_only() -> None:
    (file,) = find_notebooks([REPO_ROOT / "notebooks" / "failing-cell.ipynb"])
    notebook = load_notebook(file)

    assert [(c.index, c.number) for c in notebook.cells] == [
        (1, 1),
        (2, 2),
        (3, 3),
    ]
    assert notebook.cells[1].source == 'settings["filter"]'


def test_load_without_ids() -> None:
    (file,) = find_notebooks([DATA / "no-ids.ipynb"])
    notebook = load_notebook(file)

    assert [c.cell_id for c in notebook.cells] == ["1", "2", "3"]


def test_load_markdown_only() -> None:
    (file,) = find_notebooks([DATA / "markdown-only.ipynb"])

    assert load_notebook(file).cells == ()


def test_load_invalid() -> None:
    (file,) = find_notebooks([DATA / "invalid.ipynb"])

    with pytest.raises(InvalidNotebookError) as raised:
        load_notebook(file)
    assert raised.value.notebook == "invalid.ipynb"
    assert raised.value.message == (
        "Notebook is not valid JSON; open and save it in JupyterLab"
    )


def test_load_unreadable(tmp_path: Path) -> None:
    file = NotebookFile(tmp_path / "gone.ipynb", "gone.ipynb")

    with pytest.raises(InvalidNotebookError) as raised:
        load_notebook(file)
    assert raised.value.message == (
        "Cannot read notebook: No such file or directory"
    )
