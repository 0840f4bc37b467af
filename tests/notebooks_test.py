# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of notebook discovery and loading."""

from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning
from structlog.testing import capture_logs

from nbsentry.exceptions import ConfigError, InvalidNotebookError
from nbsentry.notebooks import (
    NotebookFile,
    find_notebooks,
    load_notebook,
    no_notebooks_error,
)
from tests.support.runs import (
    REPO_ROOT,
    logs_named,
    make_deep_folders,
    write_notebook,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

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
        ("sub/", ["a.ipynb"]),
        ("s*", ["a.ipynb"]),
        ("*.ipynb", []),
        ("a*", ["sub/b.ipynb"]),
        ("nothing", ["a.ipynb", "sub/b.ipynb"]),
    ],
)
def test_find_exclude(pattern: str, expected: list[str]) -> None:
    assert _names(find_notebooks([TREE], [pattern])) == expected


@pytest.mark.parametrize("pattern", ["sub/deep", "sub/deep/", "s*/d*"])
def test_find_exclude_folder_path(tmp_path: Path, pattern: str) -> None:
    for name in ("top.ipynb", "sub/e.ipynb", "sub/deep/d.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_notebook(tmp_path / name, [])

    files = find_notebooks([tmp_path], [pattern])

    assert _names(files) == ["sub/e.ipynb", "top.ipynb"]


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


def _write_v4(path: Path, minor: int, ids: list[str | None]) -> Path:
    """Write an nbformat 4 notebook with one code cell per id."""
    cells: list[dict[str, Any]] = []
    for index, cell_id in enumerate(ids):
        cell: dict[str, Any] = {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": f"x = {index}",
        }
        if cell_id is not None:
            cell["id"] = cell_id
        cells.append(cell)
    notebook = {
        "cells": cells,
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": minor,
    }
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def _write_v3(path: Path) -> Path:
    """Write an nbformat 3 notebook with two code cells and markdown."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# Title"},
        {
            "cell_type": "code",
            "collapsed": False,
            "input": "x = 1",
            "language": "python",
            "metadata": {},
            "outputs": [],
        },
        {
            "cell_type": "code",
            "collapsed": False,
            "input": "y = x + 1",
            "language": "python",
            "metadata": {},
            "outputs": [],
        },
    ]
    notebook = {
        "metadata": {"name": ""},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [{"cells": cells, "metadata": {}}],
    }
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def _cell_ids(path: Path) -> list[str]:
    notebook = load_notebook(NotebookFile(path, path.name))
    return [cell.cell_id for cell in notebook.cells]


def test_load_v3_ids_stable(tmp_path: Path) -> None:
    path = _write_v3(tmp_path / "old.ipynb")

    first = _cell_ids(path)
    second = _cell_ids(path)

    assert first == ["1", "2"]
    assert second == first


@pytest.mark.parametrize("minor", [0, 4])
def test_load_before_4_5_ignores_ids(tmp_path: Path, minor: int) -> None:
    path = _write_v4(tmp_path / "nb.ipynb", minor, ["a", "b"])

    assert _cell_ids(path) == ["1", "2"]


def test_load_4_5_uses_ids(tmp_path: Path) -> None:
    path = _write_v4(tmp_path / "nb.ipynb", 5, ["first", "second"])

    assert _cell_ids(path) == ["first", "second"]


def test_load_duplicate_ids_stable(tmp_path: Path) -> None:
    path = _write_v4(tmp_path / "nb.ipynb", 5, ["same", "same", "other"])

    # nbformat warns and gives the second cell a random id.
    first = _cell_ids(path)
    second = _cell_ids(path)

    assert first == ["same", "2", "other"]
    assert second == first


def test_load_missing_id_stable(tmp_path: Path) -> None:
    path = _write_v4(tmp_path / "nb.ipynb", 5, ["first", None])

    # nbformat warns and adds a random id to the cell without one.
    first = _cell_ids(path)
    second = _cell_ids(path)

    assert first == ["first", "2"]
    assert second == first


def test_load_logs_format_warnings(tmp_path: Path) -> None:
    ids = ["same", "same", None, "same", None, None]
    path = _write_v4(tmp_path / "nb.ipynb", 5, ids)

    # The test settings turn warnings into errors, so one that escaped
    # the logging would fail the test.
    with capture_logs() as logs:
        load_notebook(NotebookFile(path, "dir/nb.ipynb"))

    duplicate, missing = sorted(
        logs_named(logs, "Notebook format warning"),
        key=lambda entry: str(entry["warning"]),
    )
    assert len(logs) == 2
    assert duplicate["warning"] == DuplicateCellId.__name__
    assert duplicate["count"] == 2
    assert duplicate["message"].startswith("Non-unique cell id 'same'")
    assert duplicate["notebook"] == "dir/nb.ipynb"
    assert duplicate["log_level"] == "warning"
    assert missing["warning"] == MissingIDFieldWarning.__name__
    assert missing["count"] == 3
    assert missing["message"].startswith("Cell is missing an id field")
    assert missing["notebook"] == "dir/nb.ipynb"


def test_load_byte_order_mark(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "bom.ipynb", ["x = 1"])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    notebook = load_notebook(NotebookFile(path, path.name))

    assert [cell.source for cell in notebook.cells] == ["x = 1"]


def test_load_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ipynb"
    path.write_bytes(b'{"cells": [], "note": "caf\xe9"}')

    with pytest.raises(InvalidNotebookError) as raised:
        load_notebook(NotebookFile(path, path.name))
    assert raised.value.message == (
        "Notebook is not valid UTF-8; save it with UTF-8 encoding"
    )


def test_load_lone_surrogate_in_source(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", ["x = 1", "x = 2"])
    # A JSON escape is the only way a file can hold a lone surrogate.
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("x = 2", "x = '\\ud800'"), encoding="utf-8")

    with pytest.raises(InvalidNotebookError) as raised:
        load_notebook(NotebookFile(path, path.name))
    assert raised.value.message == (
        "Notebook is invalid: the source of code cell #2 has a lone"
        " surrogate at character 5, which is not valid Unicode. Fix that"
        " cell in the .ipynb file"
    )


def test_load_nested_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "deep.ipynb"
    depth = 100_000
    path.write_text(
        '{"cells": [], "metadata": {"x": ' + "[" * depth + "]" * depth + "}}",
        encoding="utf-8",
    )

    with pytest.raises(InvalidNotebookError) as raised:
        load_notebook(NotebookFile(path, path.name))
    assert raised.value.message == (
        "Notebook is nested too deeply to read; remove the deeply nested"
        " values from the .ipynb file"
    )


def test_find_same_name_two_roots(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    write_notebook(tmp_path / "A" / "nb.ipynb", [])
    write_notebook(tmp_path / "A" / "other.ipynb", [])
    write_notebook(tmp_path / "B" / "nb.ipynb", [])

    files = find_notebooks([tmp_path / "A", tmp_path / "B"])

    assert _names(files) == ["A/nb.ipynb", "B/nb.ipynb", "other.ipynb"]
    assert files[0].path == (tmp_path / "A" / "nb.ipynb").resolve()
    assert files[1].path == (tmp_path / "B" / "nb.ipynb").resolve()


def test_find_same_file_name(tmp_path: Path) -> None:
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        write_notebook(tmp_path / folder / "nb.ipynb", [])

    files = find_notebooks(
        [tmp_path / "A" / "nb.ipynb", tmp_path / "B" / "nb.ipynb"]
    )

    assert _names(files) == ["A/nb.ipynb", "B/nb.ipynb"]


def test_find_same_root_folder_name(tmp_path: Path) -> None:
    for parent in ("x", "y"):
        (tmp_path / parent / "A").mkdir(parents=True)
        write_notebook(tmp_path / parent / "A" / "nb.ipynb", [])

    files = find_notebooks([tmp_path / "x" / "A", tmp_path / "y" / "A"])

    assert _names(files) == ["x/A/nb.ipynb", "y/A/nb.ipynb"]


def test_find_unique_names_unchanged(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    write_notebook(tmp_path / "A" / "one.ipynb", [])
    write_notebook(tmp_path / "B" / "two.ipynb", [])

    files = find_notebooks([tmp_path / "A", tmp_path / "B"])

    assert _names(files) == ["one.ipynb", "two.ipynb"]


@pytest.mark.parametrize("root", ["notebooks", "notebooks/", "./notebooks"])
def test_find_exclude_path_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notebooks").mkdir()
    write_notebook(tmp_path / "notebooks" / "helper.ipynb", [])
    write_notebook(tmp_path / "notebooks" / "main.ipynb", [])

    files = find_notebooks([Path(root)], ["notebooks/helper*"])

    assert _names(files) == ["main.ipynb"]


def test_find_exclude_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    write_notebook(tmp_path / "notebooks" / "helper.ipynb", [])
    write_notebook(tmp_path / "notebooks" / "main.ipynb", [])
    pattern = f"{tmp_path.resolve().as_posix()}/notebooks/helper*"

    files = find_notebooks([tmp_path / "notebooks"], [pattern])

    assert _names(files) == ["main.ipynb"]


def test_load_unusable_ids_numbered(tmp_path: Path) -> None:
    # A lone surrogate cannot be sent to the kernel as UTF-8, and a report
    # cannot carry an id longer than 200 characters back.
    ids: list[str | None] = ["lone\ud800", "x" * 201, "x" * 200]
    path = _write_v4(tmp_path / "nb.ipynb", 5, ids)

    assert _cell_ids(path) == ["1", "2", "x" * 200]


@pytest.fixture
def deep_folders(tmp_path: Path) -> Iterator[Path]:
    top = make_deep_folders(tmp_path)
    yield top
    shutil.rmtree(top)


def test_find_skips_too_long_path(tmp_path: Path, deep_folders: Path) -> None:
    write_notebook(tmp_path / "ok.ipynb", ["x = 1"])
    errors: list[OSError] = []

    files = find_notebooks([tmp_path], on_error=errors.append)

    assert _names(files) == ["ok.ipynb"]
    (error,) = errors
    assert error.errno == errno.ENAMETOOLONG
    assert str(error.filename).startswith(str(deep_folders))


def test_find_logs_skipped_path(tmp_path: Path, deep_folders: Path) -> None:
    write_notebook(tmp_path / "ok.ipynb", ["x = 1"])

    with capture_logs() as logs:
        files = find_notebooks([tmp_path])

    assert _names(files) == ["ok.ipynb"]
    (warning,) = logs
    assert warning["log_level"] == "warning"
    assert warning["event"].startswith("Path skipped because it cannot be")
    assert "--exclude" in warning["event"]
    assert warning["path"].startswith(str(deep_folders))
    assert warning["error"] == os.strerror(errno.ENAMETOOLONG)


def test_find_excluded_folder_not_searched(
    tmp_path: Path, deep_folders: Path
) -> None:
    errors: list[OSError] = []

    files = find_notebooks(
        [tmp_path], [deep_folders.name], on_error=errors.append
    )

    assert files == []
    assert errors == []


def test_find_path_too_long(tmp_path: Path) -> None:
    long_path = tmp_path / ("x" * 300)

    with pytest.raises(ConfigError) as raised:
        find_notebooks([long_path])
    assert str(raised.value) == (
        f"Cannot read notebook path {long_path}: File name too long"
    )


def test_no_notebooks_error_names_skipped(tmp_path: Path) -> None:
    errors = [
        OSError(errno.EACCES, "Permission denied", str(tmp_path / "a")),
        OSError(errno.EACCES, "Permission denied", str(tmp_path / "b")),
    ]

    error = no_notebooks_error([tmp_path], unreadable=errors)

    assert str(error) == (
        f"No notebooks found under {tmp_path}. Cannot read {tmp_path / 'a'}"
        " (Permission denied) and 1 more paths. Shorten the path or fix its"
        " permissions"
    )


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["3", "x", "x"], ["3", "x", "3-2"]),
        (["3", "3-2", "x", "x"], ["3", "3-2", "x", "4"]),
        (["3", "3-2", "lone\ud800"], ["3", "3-2", "3-3"]),
    ],
)
def test_load_fallback_ids_unique(
    tmp_path: Path, ids: list[str | None], expected: list[str]
) -> None:
    path = _write_v4(tmp_path / "nb.ipynb", 5, ids)

    # nbformat warns about the duplicate x and gives it a random id.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateCellId)
        cell_ids = _cell_ids(path)

    assert cell_ids == expected


def test_load_missing_id_before_number(tmp_path: Path) -> None:
    path = _write_v4(tmp_path / "nb.ipynb", 5, [None, "1"])

    cell_ids = _cell_ids(path)

    assert cell_ids == ["1-2", "1"]


def _write_tags(path: Path, tags: object) -> Path:
    """Write an nbformat 4.5 notebook with two cells, tagging the second."""
    path = _write_v4(path, 5, ["first", "second"])
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["cells"][1]["metadata"]["tags"] = tags
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def test_load_tags_string_one_tag(tmp_path: Path) -> None:
    path = _write_tags(tmp_path / "nb.ipynb", "skip-execution")

    notebook = load_notebook(NotebookFile(path, path.name))

    assert notebook.cells[1].tags == frozenset({"skip-execution"})
    assert notebook.cells[1].skip
    assert not notebook.cells[0].skip


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        (None, "be a list of strings, not null"),
        (5, "be a list of strings, not a number"),
        ({"a": 1}, "be a list of strings, not an object"),
        (["ok", None], "be strings, not null"),
        ([5, "ok"], "be strings, not a number"),
    ],
)
def test_load_tags_invalid_type(
    tmp_path: Path, tags: object, problem: str
) -> None:
    path = _write_tags(tmp_path / "nb.ipynb", tags)

    with pytest.raises(InvalidNotebookError) as raised:
        load_notebook(NotebookFile(path, path.name))
    assert raised.value.message == (
        f"Notebook is invalid: the tags of code cell #2 must {problem}."
        " Fix metadata.tags of that cell in the .ipynb file"
    )


def _code_cell(**fields: object) -> dict[str, object]:
    cell: dict[str, object] = {
        "cell_type": "code",
        "id": "a",
        "metadata": {},
        "source": "x = 1",
        "outputs": [],
        "execution_count": None,
    }
    cell.update(fields)
    return cell


def _v4(**fields: object) -> dict[str, object]:
    notebook: dict[str, object] = {
        "cells": [_code_cell()],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    notebook.update(fields)
    return notebook


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ([], "the file must contain a JSON object, not an array"),
        (
            _v4(
                cells=[
                    _code_cell(metadata={"tags": None}),
                    _code_cell(id="b", metadata=[]),
                ]
            ),
            "cells[1].metadata must be an object, not an array",
        ),
        (_v4(metadata=[]), "metadata must be an object, not an array"),
        (
            _v4(metadata={"kernelspec": "python3"}),
            "metadata.kernelspec must be an object, not a string",
        ),
        (
            _v4(metadata={"kernelspec": {"name": ["python3"]}}),
            "metadata.kernelspec.name must be a string, not an array",
        ),
        (
            _v4(cells=[_code_cell(id=[1])]),
            "cells[0].id must be a string, not an array",
        ),
        (
            _v4(
                cells=[
                    {"cell_type": "markdown", "source": "", "attachments": []}
                ]
            ),
            "cells[0].attachments must be an object, not an array",
        ),
        (_v4(cells="nope"), "cells must be an array, not a string"),
        (_v4(cells=[1]), "cells[0] must be an object, not a number"),
        (_v4(cells=[{"source": "x"}]), "cells[0].cell_type is missing"),
        (
            _v4(cells=[_code_cell(source=["x", 1])]),
            "cells[0].source[1] must be a string, not a number",
        ),
        (
            _v4(cells=[_code_cell(outputs=[1])]),
            "cells[0].outputs[0] must be an object, not a number",
        ),
        (_v4(nbformat="4"), "nbformat must be an integer, not a string"),
        (
            _v4(nbformat=5),
            "nbformat version 5 is not supported, only versions 1, 2, 3, 4",
        ),
        (
            _v4(nbformat_minor="5"),
            "nbformat_minor must be an integer, not a string",
        ),
        (
            {
                "nbformat": 3,
                "nbformat_minor": 0,
                "worksheets": [{"cells": [1]}],
            },
            "worksheets[0].cells[0] must be an object, not a number",
        ),
    ],
)
def test_load_invalid_structure(
    tmp_path: Path, content: object, problem: str
) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(content), encoding="utf-8")

    with pytest.raises(InvalidNotebookError) as raised:
        load_notebook(NotebookFile(path, path.name))
    assert raised.value.message == (
        f"Notebook is invalid: {problem}. Fix it in the .ipynb file"
    )


def test_no_notebooks_error_names_exclusion() -> None:
    error = no_notebooks_error([TREE], ["*.ipynb", "other"])

    assert str(error) == (
        f"No notebooks to run under {TREE}, because the exclude patterns"
        " '*.ipynb', 'other' match all 2 notebooks found. Change --exclude"
        " or 'exclude' in the config file"
    )


def test_no_notebooks_error_one_excluded() -> None:
    error = no_notebooks_error([TREE / "a.ipynb"], ["a*"])

    assert str(error) == (
        f"No notebooks to run under {TREE / 'a.ipynb'}, because the exclude"
        " patterns 'a*' match the notebook found. Change --exclude or"
        " 'exclude' in the config file"
    )


def test_no_notebooks_error_nothing_excluded(tmp_path: Path) -> None:
    error = no_notebooks_error([tmp_path], ["*"])

    assert str(error) == f"No notebooks found under {tmp_path}"
