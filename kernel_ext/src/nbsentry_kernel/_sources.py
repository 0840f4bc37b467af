"""Mapping from the file names of compiled cells to the cells they came from.

IPython compiles each cell under a file name that its compiler derives
from the cell's source, and puts the source in `linecache` under that
name. ipykernel 7.4 hashes the raw source, and plain IPython also uses the
execution count. A traceback frame therefore names its cell only through
that file name. Computing a name costs a hash of the whole source in pure
Python, so cells are queued as they start and their names are computed
only when an exception needs them.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from ._limits import MAX_REMEMBERED_CELLS

__all__ = ["CellRef", "CellSources"]

_logger = logging.getLogger(__name__)


@dataclass(slots=True)
class CellRef:
    """The cell that some compiled code came from."""

    cell_id: str
    """Cell id from the request."""

    notebook: str | None
    """Notebook path from the request, if the runner sent one."""


class CellSources:
    """The cells that the most recent compiled file names came from.

    Parameters
    ----------
    shell
        The IPython shell whose ``compile`` attribute names the files.
    """

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._pending: deque[tuple[str, str, int, str, str | None]] = deque(
            maxlen=MAX_REMEMBERED_CELLS
        )
        self._names: dict[str, CellRef] = {}

    def remember(
        self,
        raw: str,
        transformed: str,
        number: int,
        cell_id: str,
        notebook: str | None,
    ) -> None:
        """Queue a cell that is about to be compiled."""
        self._pending.append((raw, transformed, number, cell_id, notebook))

    def lookup(self, filename: str) -> CellRef | None:
        """Return the cell that the compiled file name came from, if known."""
        if self._pending:
            self._resolve()
        return self._names.get(filename)

    def _resolve(self) -> None:
        get_code_name = getattr(self._shell.compile, "get_code_name", None)
        pending, names = self._pending, self._names
        while pending:
            raw, transformed, number, cell_id, notebook = pending.popleft()
            if get_code_name is None:
                continue
            try:
                name = get_code_name(raw, transformed, number)
            except Exception:
                _logger.exception("Cannot compute a cell's file name")
                continue
            # Cells with identical source share a file name: the last wins.
            names.pop(name, None)
            names[name] = CellRef(cell_id, notebook)
            if len(names) > MAX_REMEMBERED_CELLS:
                del names[next(iter(names))]
