"""Finding notebooks on disk and reading their code cells."""

from __future__ import annotations

import fnmatch
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import structlog
from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning

from .exceptions import ConfigError, InvalidNotebookError
from .notebook_json import find_structure_problem, json_type
from .report import MAX_NAME_LENGTH

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "CodeCell",
    "Notebook",
    "NotebookFile",
    "find_notebooks",
    "load_notebook",
    "no_notebooks_error",
]

_logger = structlog.get_logger("nbsentry")

_CHECKPOINTS = ".ipynb_checkpoints"

_IDS_SINCE = (4, 5)
"""First nbformat version whose files store cell ids."""


@dataclass(frozen=True)
class NotebookFile:
    """A notebook found on disk."""

    path: Path
    """Absolute path of the file."""

    name: str
    """Name unique among the notebooks found, with ``/``.

    It is the path relative to the root given by the user, unless that
    collides with another notebook's name (see `find_notebooks`).
    """


@dataclass(frozen=True)
class CodeCell:
    """A code cell of a notebook, as the runner executes it."""

    index: int
    """Position among all cells of the notebook, from 0."""

    number: int
    """Position among code cells, from 1, as JupyterLab counts them."""

    cell_id: str
    """Id unique in the notebook: the nbformat cell id, or ``number``.

    A cell gets its number if the file has no usable id for it, and then
    ``3-2`` and so on in place of ``3`` if another cell has the id ``3``.

    Ids are taken only from files of nbformat 4.5 or later. Older files
    get random ids each time nbformat converts them, which would change
    the cell's tag and fingerprint on every run.
    """

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
    """File the notebook was read from."""

    kernel_name: str | None
    """Kernel name from the notebook's kernelspec metadata, if any."""

    cells: tuple[CodeCell, ...]
    """Its code cells, in order."""

    @property
    def name(self) -> str:
        """Unique name of the notebook; see `NotebookFile.name`."""
        return self.file.name


def find_notebooks(
    paths: list[Path],
    exclude: list[str] | None = None,
    *,
    on_error: Callable[[OSError], None] | None = None,
) -> list[NotebookFile]:
    """Find notebooks under files and folders, sorted by name.

    Folders are searched recursively, skipping ``.ipynb_checkpoints`` and
    without following symbolic links to folders. A notebook's name is its
    path relative to the folder given, or its file name when the file
    itself is given.

    Names appear in logs, Sentry tags and fingerprints, so they must be
    unique. Notebooks whose names collide get the name of the folder given
    (or of the file's folder) as a prefix. While names still collide, they
    get further parent folders of that folder, up to the absolute path.
    Unique names are kept as they are.

    Parameters
    ----------
    paths
        Notebook files and folders.
    exclude
        Glob patterns. A notebook is left out if a pattern matches its
        path relative to the folder given, its file name, the name of a
        folder between them, its path as given (the folder given joined
        with the relative path) or its absolute path.
    on_error
        Called with each `OSError` raised while searching below a folder
        given, such as a folder that cannot be listed or a path longer
        than the system allows. The search goes on without that folder or
        file. By default the error is logged as a warning.

    Returns
    -------
    list of NotebookFile
        The notebooks, without duplicates.

    Raises
    ------
    ConfigError
        Raised if a path does not exist or cannot be read, or a file given
        is not a notebook.
    """
    patterns = exclude or []
    report_error = on_error or _log_skipped
    found: dict[Path, _Candidate] = {}
    for given in paths:
        if _is_file(given):
            if given.suffix != ".ipynb":
                msg = f"Not a notebook (expected a .ipynb file): {given}"
                raise ConfigError(msg)
            candidates = [(given, given.name, given.parent)]
        else:
            candidates = [
                (path, path.relative_to(given).as_posix(), given)
                for path in _search_folder(given, patterns, report_error)
            ]
        for path, name, root in candidates:
            if _is_excluded(path, name, patterns):
                continue
            resolved = path.resolve()
            candidate = _Candidate(resolved, name, root.resolve().parts[1:])
            found.setdefault(resolved, candidate)
    files = _unique_names(list(found.values()))
    return sorted(files, key=lambda f: (f.name, str(f.path)))


def no_notebooks_error(
    paths: list[Path],
    exclude: list[str] | None = None,
    unreadable: Sequence[OSError] = (),
) -> ConfigError:
    """Build the error for a search that found no notebook to run.

    Parameters
    ----------
    paths
        Notebook files and folders searched.
    exclude
        Glob patterns of the search. When they left out every notebook
        found, the error names them.
    unreadable
        Errors the search met, as `find_notebooks` passes them to
        ``on_error``. The error names the first one.

    Returns
    -------
    ConfigError
        The error, to raise.
    """
    searched = ", ".join(str(p) for p in paths)
    excluded = 0
    if exclude:
        excluded = len(find_notebooks(paths, on_error=lambda _: None))
    if excluded:
        patterns = ", ".join(repr(p) for p in exclude or [])
        matched = (
            "the notebook" if excluded == 1 else f"all {excluded} notebooks"
        )
        message = (
            f"No notebooks to run under {searched}, because the exclude"
            f" patterns {patterns} match {matched} found. Change --exclude"
            " or 'exclude' in the config file"
        )
    else:
        message = f"No notebooks found under {searched}"
    if unreadable:
        first = unreadable[0]
        message += f". Cannot read {first.filename} ({first.strerror})"
        if len(unreadable) > 1:
            message += f" and {len(unreadable) - 1} more paths"
        message += ". Shorten the path or fix its permissions"
    return ConfigError(message)


def _is_file(path: Path) -> bool:
    """Check that a path given exists, and whether it is a file."""
    try:
        if not path.exists():
            msg = f"Notebook path not found: {path}"
            raise ConfigError(msg)
        return path.is_file()
    except OSError as exc:
        msg = f"Cannot read notebook path {path}: {exc.strerror}"
        raise ConfigError(msg) from None


def _search_folder(
    root: Path, patterns: list[str], on_error: Callable[[OSError], None]
) -> list[Path]:
    """List the notebook files below a folder, sorted.

    ``os.walk`` passes each folder it cannot list to ``on_error`` and goes
    on with the others, where ``Path.rglob`` of Python 3.11 raises.
    """
    notebooks: list[Path] = []
    for folder, subfolders, files in os.walk(root, onerror=on_error):
        # A folder whose name matches a pattern excludes every notebook
        # below it, so it is not searched at all.
        subfolders[:] = [
            name
            for name in subfolders
            if name != _CHECKPOINTS and not _matches_any(name, patterns)
        ]
        for name in files:
            if not name.endswith(".ipynb"):
                continue
            path = Path(folder, name)
            try:
                is_file = path.is_file()
            except OSError as exc:
                on_error(exc)
                continue
            if is_file:
                notebooks.append(path)
    return sorted(notebooks)


def _log_skipped(exc: OSError) -> None:
    _logger.warning(
        "Path skipped because it cannot be read. Shorten it, fix its"
        " permissions or leave it out with --exclude",
        path=exc.filename,
        error=exc.strerror,
    )


@dataclass
class _Candidate:
    """A notebook found, before its name is made unique."""

    path: Path
    """Absolute path of the file, symbolic links resolved."""

    relative_name: str
    """Path relative to the root given, with ``/``."""

    root_folders: tuple[str, ...]
    """Folders of the root's absolute path, without the leading ``/``."""

    prefix_depth: int = 0
    """Number of the root's folders, from the last, that prefix the name."""

    @property
    def name(self) -> str:
        if self.prefix_depth > len(self.root_folders):
            return self.path.as_posix()
        start = len(self.root_folders) - self.prefix_depth
        return "/".join([*self.root_folders[start:], self.relative_name])


def _unique_names(candidates: list[_Candidate]) -> list[NotebookFile]:
    """Lengthen colliding names until every name is unique.

    The loop ends because each pass lengthens at least one name, and a
    name at full length is the absolute path, which is unique.
    """
    while True:
        by_name: dict[str, list[_Candidate]] = {}
        for candidate in candidates:
            by_name.setdefault(candidate.name, []).append(candidate)
        colliding = [
            c for group in by_name.values() if len(group) > 1 for c in group
        ]
        if not colliding:
            break
        for candidate in colliding:
            candidate.prefix_depth += 1
    return [NotebookFile(c.path, c.name) for c in candidates]


def _is_excluded(path: Path, name: str, patterns: list[str]) -> bool:
    """Check the notebook's names and paths against the patterns."""
    whole_names = {
        name,
        path.as_posix(),
        path.absolute().as_posix(),
        path.resolve().as_posix(),
    }
    parts = name.split("/")
    if any(_matches_any(part, patterns) for part in parts):
        return True
    # A folder's path relative to the folder given, such as sub/deep,
    # written with or without a closing slash.
    for end in range(1, len(parts)):
        folder = "/".join(parts[:end])
        if _matches_any(folder, patterns) or _matches_any(
            f"{folder}/", patterns
        ):
            return True
    return any(_matches_any(whole, patterns) for whole in whole_names)


def _matches_any(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


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
        # Some editors on Windows start UTF-8 files with a byte order mark.
        text = file.path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        msg = f"Cannot read notebook: {exc.strerror}"
        raise InvalidNotebookError(msg, notebook=file.name) from exc
    except UnicodeDecodeError as exc:
        msg = "Notebook is not valid UTF-8; save it with UTF-8 encoding"
        raise InvalidNotebookError(msg, notebook=file.name) from exc
    try:
        return _parse_notebook(file, text)
    except RecursionError as exc:
        msg = (
            "Notebook is nested too deeply to read; remove the deeply nested"
            " values from the .ipynb file"
        )
        raise InvalidNotebookError(msg, notebook=file.name) from exc


def _parse_notebook(file: NotebookFile, text: str) -> Notebook:
    """Parse a notebook's text and list its code cells."""
    try:
        # NOTE: the text is parsed twice, once untouched to check it and to
        # see the file's own version and ids, and once by nbformat, which
        # converts it.
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = "Notebook is not valid JSON; open and save it in JupyterLab"
        raise InvalidNotebookError(msg, notebook=file.name) from exc
    problem = find_structure_problem(raw)
    if problem is not None:
        msg = f"Notebook is invalid: {problem}. Fix it in the .ipynb file"
        raise InvalidNotebookError(msg, notebook=file.name)
    file_ids = _stable_cell_ids(raw)
    try:
        node = _parse_and_log_warnings(text, file.name)
    except Exception as exc:
        # nbformat raises several unrelated types for malformed content.
        msg = f"Notebook cannot be parsed: {type(exc).__name__}: {exc}"
        raise InvalidNotebookError(msg, notebook=file.name) from exc
    code_cells = [
        (index, cell)
        for index, cell in enumerate(node.get("cells", []))
        if cell.get("cell_type") == "code"
    ]
    cell_ids = _assign_cell_ids(code_cells, file_ids)
    cells: list[CodeCell] = []
    for (index, cell), cell_id in zip(code_cells, cell_ids, strict=True):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        number = len(cells) + 1
        try:
            str(source).encode("utf-8")
        except UnicodeEncodeError as exc:
            # JSON escapes can encode a lone surrogate, which no kernel
            # request can carry.
            msg = (
                f"Notebook is invalid: the source of code cell #{number}"
                f" has a lone surrogate at character {exc.start}, which"
                " is not valid Unicode. Fix that cell in the .ipynb file"
            )
            raise InvalidNotebookError(msg, notebook=file.name) from exc
        tags = cell.get("metadata", {}).get("tags", [])
        if isinstance(tags, str):
            # nbformat requires a list, but nbclient tests tags with ``in``,
            # so it also skips a cell whose tags are "skip-execution".
            tags = [tags]
        if not isinstance(tags, list):
            msg = (
                f"Notebook is invalid: the tags of code cell #{number} must"
                f" be a list of strings, not {json_type(tags)}. Fix"
                " metadata.tags of that cell in the .ipynb file"
            )
            raise InvalidNotebookError(msg, notebook=file.name)
        odd = [tag for tag in tags if not isinstance(tag, str)]
        if odd:
            msg = (
                f"Notebook is invalid: the tags of code cell #{number} must"
                f" be strings, not {json_type(odd[0])}. Fix metadata.tags"
                " of that cell in the .ipynb file"
            )
            raise InvalidNotebookError(msg, notebook=file.name)
        cells.append(
            CodeCell(
                index=index,
                number=number,
                cell_id=cell_id,
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


def _parse_and_log_warnings(text: str, name: str) -> Any:
    """Parse a notebook with nbformat and log the warnings it emits.

    nbformat warns once per cell about duplicate or missing cell ids.
    Without this, each warning would go to stderr as raw text, even when
    logs are JSON. Each kind of warning is logged once, with its count.
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Record each one, so that the count is right. NOTE: the
            # warning filters are global, so a warning that another thread
            # emits meanwhile is logged as this notebook's too.
            warnings.simplefilter("always", DuplicateCellId)
            warnings.simplefilter("always", MissingIDFieldWarning)
            return nbformat.reads(  # type: ignore[no-untyped-call]
                text, as_version=4
            )
    finally:
        _log_warnings(caught, name)


def _log_warnings(caught: list[warnings.WarningMessage], name: str) -> None:
    by_category: dict[type[Warning], list[warnings.WarningMessage]] = {}
    for warning in caught:
        by_category.setdefault(warning.category, []).append(warning)
    for category, group in by_category.items():
        _logger.warning(
            "Notebook format warning",
            notebook=name,
            warning=category.__name__,
            message=str(group[0].message),
            count=len(group),
        )


def _assign_cell_ids(
    code_cells: list[tuple[int, Any]], file_ids: list[object]
) -> list[str]:
    """Pick an id for each code cell, unique within the notebook.

    A cell keeps the id the file stores for it if the id is usable and no
    earlier code cell keeps the same id. nbformat replaces a duplicate id
    with a random one, so an id counts as stored only if the file has it
    at the cell's position. Every other cell gets its number, such as
    ``3``, or ``3-2``, ``3-3`` and so on if another cell keeps ``3``.
    """
    stored_ids: list[str | None] = []
    used_ids: set[str] = set()
    for index, cell in code_cells:
        cell_id = cell.get("id")
        stored = index < len(file_ids) and cell_id == file_ids[index]
        if stored and _usable_id(cell_id) and cell_id not in used_ids:
            stored_ids.append(cell_id)
            used_ids.add(cell_id)
        else:
            stored_ids.append(None)
    assigned: list[str] = []
    for number, stored_id in enumerate(stored_ids, start=1):
        cell_id = stored_id
        if cell_id is None:
            cell_id = str(number)
            suffix = 2
            while cell_id in used_ids:
                cell_id = f"{number}-{suffix}"
                suffix += 1
            used_ids.add(cell_id)
        assigned.append(cell_id)
    return assigned


def _usable_id(cell_id: object) -> bool:
    """Check that a cell id can travel to the kernel and back in a report.

    An id that cannot be encoded as UTF-8, such as one with a lone
    surrogate, or that is longer than a report may carry, is replaced by
    the cell number.
    """
    if not isinstance(cell_id, str) or not cell_id:
        return False
    if len(cell_id) > MAX_NAME_LENGTH:
        return False
    try:
        cell_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _stable_cell_ids(raw: object) -> list[object]:
    """List the cell ids a notebook file stores, by cell position.

    Only nbformat 4.5 and later store ids. For older files the list is
    empty, because nbformat gives their cells new random ids on each read.
    """
    if not isinstance(raw, dict):
        return []
    major = raw.get("nbformat")
    minor = raw.get("nbformat_minor")
    if not isinstance(major, int) or not isinstance(minor, int):
        return []
    if major != _IDS_SINCE[0] or minor < _IDS_SINCE[1]:
        return []
    cells = raw.get("cells")
    if not isinstance(cells, list):
        return []
    return [
        cell.get("id") if isinstance(cell, dict) else None for cell in cells
    ]
