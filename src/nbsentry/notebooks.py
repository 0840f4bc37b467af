"""Finding notebooks on disk and reading their code cells."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nbformat

from .exceptions import ConfigError, InvalidNotebookError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "CodeCell",
    "Notebook",
    "NotebookFile",
    "find_notebooks",
    "load_notebook",
]

_CHECKPOINTS = ".ipynb_checkpoints"


@dataclass(frozen=True)
class NotebookFile:
    """A notebook found on disk."""

    path: Path
    """Absolute path of the file."""

    name: str
    """Path relative to the root given by the user, with ``/``."""


@dataclass(frozen=True)
class CodeCell:
    """A code cell of a notebook, as the runner executes it."""

    index: int
    """Position among all cells of the notebook, from 0."""

    number: int
    """Position among code cells, from 1, as JupyterLab counts them."""

    cell_id: str
    """The nbformat cell id, or ``number`` as text if the cell has none."""

    source: str
    """Code of the cell."""

    tags: frozenset[str]
    """Tags from the cell metadata."""

    @property
    def label(self) -> str:
        """Cell number as JupyterLab shows it, such as ``#3``."""
        return f"#{self.number}"

    @property
    def skip(self) -> bool:
        """Whether the cell is tagged ``skip-execution``."""
        return "skip-execution" in self.tags

    @property
    def raises_exception(self) -> bool:
        """Whether the cell is tagged ``raises-exception``."""
        return "raises-exception" in self.tags


@dataclass(frozen=True)
class Notebook:
    """A notebook read from disk."""

    file: NotebookFile
    """Where the notebook was read from."""

    kernel_name: str | None
    """Kernel name from the notebook's kernelspec metadata, if any."""

    cells: tuple[CodeCell, ...]
    """Its code cells, in order."""

    @property
    def name(self) -> str:
        """Path relative to the root given by the user."""
        return self.file.name


def find_notebooks(
    paths: list[Path], exclude: list[str] | None = None
) -> list[NotebookFile]:
    """Find notebooks under files and folders, sorted by name.

    Folders are searched recursively, skipping ``.ipynb_checkpoints``. A
    notebook's name is its path relative to the folder given, or its file
    name when the file itself is given.

    Parameters
    ----------
    paths
        Notebook files and folders.
    exclude
        Glob patterns. A notebook is left out if a pattern matches its
        name, its file name or the name of a folder above it.

    Returns
    -------
    list of NotebookFile
        The notebooks, without duplicates.

    Raises
    ------
    ConfigError
        Raised if a path does not exist or a file given is not a notebook.
    """
    patterns = exclude or []
    found: dict[Path, NotebookFile] = {}
    for given in paths:
        if not given.exists():
            msg = f"Notebook path not found: {given}"
            raise ConfigError(msg)
        if given.is_file():
            if given.suffix != ".ipynb":
                msg = f"Not a notebook (expected a .ipynb file): {given}"
                raise ConfigError(msg)
            candidates = [(given, given.name)]
        else:
            candidates = [
                (path, path.relative_to(given).as_posix())
                for path in sorted(given.rglob("*.ipynb"))
                if _CHECKPOINTS not in path.relative_to(given).parts
                and path.is_file()
            ]
        for path, name in candidates:
            if _is_excluded(name, patterns):
                continue
            resolved = path.resolve()
            found.setdefault(resolved, NotebookFile(resolved, name))
    return sorted(found.values(), key=lambda f: (f.name, str(f.path)))


def _is_excluded(name: str, patterns: list[str]) -> bool:
    parts = name.split("/")
    for pattern in patterns:
        if fnmatch.fnmatchcase(name, pattern):
            return True
        if any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def load_notebook(file: NotebookFile) -> Notebook:
    """Read a notebook and list its code cells.

    Parameters
    ----------
    file
        The notebook to read.

    Returns
    -------
    Notebook
        The notebook with its code cells.

    Raises
    ------
    InvalidNotebookError
        Raised if the file cannot be read or is not a valid notebook.
    """
    try:
        node = nbformat.read(  # type: ignore[no-untyped-call]
            file.path, as_version=4
        )
    except OSError as exc:
        msg = f"Cannot read notebook: {exc.strerror}"
        raise InvalidNotebookError(msg, notebook=file.name) from exc
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as exc:
        msg = "Notebook is not valid JSON; open and save it in JupyterLab"
        raise InvalidNotebookError(msg, notebook=file.name) from exc
    except Exception as exc:
        # nbformat raises several unrelated types for malformed content.
        msg = f"Notebook cannot be parsed: {type(exc).__name__}: {exc}"
        raise InvalidNotebookError(msg, notebook=file.name) from exc
    cells: list[CodeCell] = []
    for index, cell in enumerate(node.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        number = len(cells) + 1
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        tags = cell.get("metadata", {}).get("tags", [])
        cell_id = cell.get("id")
        cells.append(
            CodeCell(
                index=index,
                number=number,
                cell_id=str(cell_id) if cell_id else str(number),
                source=str(source),
                tags=frozenset(str(t) for t in tags),
            )
        )
    spec = node.get("metadata", {}).get("kernelspec", {})
    kernel_name = spec.get("name") if isinstance(spec, dict) else None
    return Notebook(
        file=file,
        kernel_name=str(kernel_name) if kernel_name else None,
        cells=tuple(cells),
    )
