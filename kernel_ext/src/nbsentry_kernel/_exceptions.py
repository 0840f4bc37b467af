"""Conversion of a cell's exception to Sentry's exception interface.

The result follows Sentry's exception interface as sentry-sdk 2.x builds
it: the chain (``__cause__``, else ``__context__`` unless suppressed) and
the members of exception groups, each with ``mechanism.exception_id`` and
``parent_id``, the outermost exception last.
"""

from __future__ import annotations

import builtins
import importlib.util
import linecache
import os
import sys
import sysconfig
import traceback
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._limits import (
    MAX_CONTEXT_LINES,
    MAX_EXCEPTIONS,
    MAX_FRAMES,
    MAX_NAME_LENGTH,
    MAX_TEXT_LENGTH,
)
from ._text import clip, safe_str

if TYPE_CHECKING:
    from types import FrameType

    from ._sources import CellRef, CellSources

__all__ = ["ExceptionReport", "describe_exception", "describe_syntax_error"]

# BaseExceptionGroup is new in Python 3.11.
_BASE_EXCEPTION_GROUP: type[BaseException] | None = getattr(
    builtins, "BaseExceptionGroup", None
)


def _as_dir(path: str) -> str:
    """Return a directory path ending in a separator, for prefix checks."""
    return path.rstrip(os.sep) + os.sep


def _package_dirs(*names: str) -> tuple[str, ...]:
    dirs: list[str] = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs.extend(
                _as_dir(location)
                for location in spec.submodule_search_locations
            )
    return tuple(dirs)


# Frames in these packages are the kernel's machinery, never the user's.
_MACHINERY_DIRS = _package_dirs("IPython", "ipykernel", "nbsentry_kernel")

# Files under these directories are libraries, never in-app code.
_LIBRARY_DIRS = tuple(
    sorted(
        {
            _as_dir(path)
            for path in (
                sys.prefix,
                sys.base_prefix,
                sys.exec_prefix,
                *(
                    sysconfig.get_paths().get(key, "")
                    for key in ("stdlib", "platstdlib", "purelib", "platlib")
                ),
            )
            if path
        }
    )
)


@dataclass(slots=True)
class ExceptionReport:
    """The exception of a report, with the counts of what was left out."""

    values: list[dict[str, Any]]
    """Exceptions in Sentry's order, the outermost last."""

    dropped_frames: int = 0
    """Number of frames left out because of `MAX_FRAMES`."""

    dropped_exceptions: int = 0
    """Number of exceptions left out because of `MAX_EXCEPTIONS`."""


class _Describer:
    def __init__(
        self, sources: CellSources, notebook: str, app_root: str
    ) -> None:
        self._sources = sources
        self._notebook = notebook
        self._app_root = _as_dir(app_root)
        self.report = ExceptionReport(values=[])
        self._seen: set[int] = set()
        self._next_id = 0

    def walk(
        self,
        exc: BaseException,
        parent_id: int | None,
        source: str | None,
    ) -> None:
        if id(exc) in self._seen:
            return
        if len(self.report.values) >= MAX_EXCEPTIONS:
            self.report.dropped_exceptions += 1
            return
        self._seen.add(id(exc))
        exception_id = self._next_id
        self._next_id += 1
        self.report.values.append(
            self.describe(exc, exception_id, parent_id, source)
        )
        if exc.__suppress_context__:
            if exc.__cause__ is not None:
                self.walk(exc.__cause__, exception_id, "__cause__")
        elif exc.__context__ is not None:
            self.walk(exc.__context__, exception_id, "__context__")
        if _BASE_EXCEPTION_GROUP is not None and isinstance(
            exc, _BASE_EXCEPTION_GROUP
        ):
            members = getattr(exc, "exceptions", ())
            for index, member in enumerate(members):
                self.walk(member, exception_id, f"exceptions[{index}]")

    def describe(
        self,
        exc: BaseException,
        exception_id: int,
        parent_id: int | None,
        source: str | None,
        frames: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        exc_type = type(exc)
        if frames is None:
            frames = self.frames(exc)
        is_group = _BASE_EXCEPTION_GROUP is not None and isinstance(
            exc, _BASE_EXCEPTION_GROUP
        )
        return {
            "type": clip(exc_type.__name__, MAX_NAME_LENGTH),
            "module": clip(str(exc_type.__module__), MAX_NAME_LENGTH),
            "value": safe_str(exc, MAX_TEXT_LENGTH),
            "mechanism": {
                "type": "nbsentry",
                "handled": False,
                "exception_id": exception_id,
                "parent_id": parent_id,
                "source": source,
                "is_exception_group": is_group,
            },
            "frames": frames,
        }

    def frames(self, exc: BaseException) -> list[dict[str, Any]]:
        kept: deque[tuple[FrameType, int]] = deque(maxlen=MAX_FRAMES)
        total = 0
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            if frame.f_code.co_filename.startswith(_MACHINERY_DIRS):
                continue
            total += 1
            kept.append((frame, lineno or 0))
        self.report.dropped_frames += total - len(kept)
        return [
            self.frame(
                frame.f_code.co_name,
                frame.f_code.co_filename,
                lineno,
                frame.f_globals,
            )
            for frame, lineno in kept
        ]

    def frame(
        self,
        function: str,
        filename: str,
        lineno: int,
        module_globals: dict[str, Any] | None,
        *,
        fallback_line: str | None = None,
        fallback_cell: CellRef | None = None,
    ) -> dict[str, Any]:
        cell = self._sources.lookup(filename) or fallback_cell
        lines = linecache.getlines(filename, module_globals)
        described: dict[str, Any] = {
            "function": clip(function, MAX_NAME_LENGTH),
            "lineno": lineno,
        }
        if cell is not None:
            described.update(self._cell_location(cell))
        else:
            module = (module_globals or {}).get("__name__")
            described.update(
                {
                    "module": (
                        clip(module, MAX_NAME_LENGTH)
                        if isinstance(module, str)
                        else None
                    ),
                    "filename": clip(filename, MAX_TEXT_LENGTH),
                    "cell_id": None,
                    "in_app": self._in_app(filename),
                }
            )
        described.update(_context(lines, lineno, fallback_line))
        return described

    def _cell_location(self, cell: CellRef) -> dict[str, Any]:
        notebook = cell.notebook or self._notebook
        return {
            "module": None,
            "filename": clip(
                f"{notebook}#cell={cell.cell_id}", MAX_TEXT_LENGTH
            ),
            "cell_id": cell.cell_id,
            "in_app": True,
        }

    def _in_app(self, filename: str) -> bool:
        return (
            filename.startswith(self._app_root)
            and not filename.startswith(_LIBRARY_DIRS)
            and "site-packages" not in filename
        )


def _context(
    lines: list[str], lineno: int, fallback_line: str | None
) -> dict[str, Any]:
    index = lineno - 1
    if 0 <= index < len(lines):
        context_line: str | None = lines[index]
        before = lines[max(0, index - MAX_CONTEXT_LINES) : index]
        after = lines[index + 1 : index + 1 + MAX_CONTEXT_LINES]
    else:
        context_line, before, after = fallback_line, [], []
    return {
        "context_line": (
            None
            if context_line is None
            else clip(context_line.rstrip("\r\n"), MAX_TEXT_LENGTH)
        ),
        "pre_context": [
            clip(line.rstrip("\r\n"), MAX_TEXT_LENGTH) for line in before
        ],
        "post_context": [
            clip(line.rstrip("\r\n"), MAX_TEXT_LENGTH) for line in after
        ],
    }


def describe_exception(
    exc: BaseException, sources: CellSources, notebook: str, app_root: str
) -> ExceptionReport:
    """Describe an exception raised while a cell ran.

    Parameters
    ----------
    exc
        The exception, which is not changed.
    sources
        The map from compiled file names to cells.
    notebook
        Notebook path of the failing cell, used for cells whose request
        named no notebook.
    app_root
        Directory whose files, outside installed libraries, are in-app.

    Returns
    -------
    ExceptionReport
        The exception chain, the outermost exception last.
    """
    describer = _Describer(sources, notebook, app_root)
    describer.walk(exc, None, None)
    describer.report.values.reverse()
    return describer.report


def describe_syntax_error(
    exc: SyntaxError,
    sources: CellSources,
    cell: CellRef,
    app_root: str,
) -> ExceptionReport:
    """Describe a syntax error raised while IPython compiled a cell.

    Its traceback holds only IPython's frames, so the single frame comes
    from the error's own file name, line and text. A file name that maps
    to no cell is taken to be ``cell``, the cell being compiled.
    """
    notebook = cell.notebook or ""
    describer = _Describer(sources, notebook, app_root)
    lineno = exc.lineno if isinstance(exc.lineno, int) else 0
    filename = exc.filename if isinstance(exc.filename, str) else "<unknown>"
    frame = describer.frame(
        "<module>",
        filename,
        lineno,
        None,
        fallback_line=exc.text,
        fallback_cell=cell,
    )
    value = describer.describe(exc, 0, None, None, [frame])
    if isinstance(exc.msg, str):
        # str(exc) names IPython's temporary file, which changes with the
        # cell's code and would split one error over many issues.
        where = f" (line {lineno})" if lineno else ""
        value["value"] = clip(exc.msg + where, MAX_TEXT_LENGTH)
    return ExceptionReport(values=[value])
