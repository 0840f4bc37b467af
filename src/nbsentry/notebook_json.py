"""Checks of a notebook's JSON that nbformat's reader relies on."""

from __future__ import annotations

from typing import Any

import nbformat

__all__ = ["find_structure_problem", "json_type"]

_TYPES: dict[str, type] = {
    "an object": dict,
    "an array": list,
    "a string": str,
    "an integer": int,
}
"""Python types of the JSON types checked, by their name in messages."""


def json_type(value: object) -> str:
    """Name the JSON type of a value that ``json.loads`` returned."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def find_structure_problem(raw: object) -> str | None:
    """Find a wrong type that nbformat's reader fails on without saying so.

    The nbformat package (checked with 5.11) converts a notebook before it
    validates it, and the conversion assumes that objects and arrays are
    where the schema puts them. Otherwise it raises errors such as
    ``TypeError: pop expected at most 1 argument``. Only those places are
    checked. nbformat logs any other schema error, and the notebook still
    runs.

    Parameters
    ----------
    raw
        The notebook file's JSON, as ``json.loads`` returns it.

    Returns
    -------
    str or None
        The first problem found, naming the JSON path of the value, such
        as ``cells[1].metadata must be an object, not an array``.
    """
    if not isinstance(raw, dict):
        return f"the file must contain a JSON object, not {json_type(raw)}"
    problem = _find_version_problem(raw)
    if problem is not None:
        return problem
    # nbformat reads a file without a version number as version 1.
    major = raw.get("nbformat", 1)
    if major == 4:  # noqa: PLR2004 - the nbformat version
        return _find_v4_problem(raw)
    if major == 3:  # noqa: PLR2004 - the nbformat version
        return _find_v3_problem(raw)
    # NOTE: files of nbformat 1 and 2 are checked only for their version.
    return None


def _find_version_problem(raw: dict[str, Any]) -> str | None:
    major = raw.get("nbformat", 1)
    if _wrong_type(major, "an integer"):
        return f"nbformat must be an integer, not {json_type(major)}"
    if major not in nbformat.versions:
        supported = ", ".join(str(v) for v in sorted(nbformat.versions))
        return (
            f"nbformat version {major} is not supported, only versions"
            f" {supported}"
        )
    minor = raw.get("nbformat_minor", 0)
    if _wrong_type(minor, "an integer"):
        return f"nbformat_minor must be an integer, not {json_type(minor)}"
    return None


def _find_v4_problem(raw: dict[str, Any]) -> str | None:
    problem = _check_field(raw, "metadata", "an object", required=True)
    problem = problem or _find_kernelspec_problem(raw)
    problem = problem or _check_field(raw, "cells", "an array", required=True)
    if problem:
        return problem
    for index, cell in enumerate(raw["cells"]):
        problem = _find_cell_problem(cell, f"cells[{index}]", "source")
        if problem:
            return problem
    return None


def _find_v3_problem(raw: dict[str, Any]) -> str | None:
    problem = _check_field(raw, "metadata", "an object", required=False)
    problem = problem or _find_kernelspec_problem(raw)
    problem = problem or _check_field(
        raw, "worksheets", "an array", required=True
    )
    if problem:
        return problem
    for sheet_index, worksheet in enumerate(raw["worksheets"]):
        where = f"worksheets[{sheet_index}]"
        if _wrong_type(worksheet, "an object"):
            return f"{where} must be an object, not {json_type(worksheet)}"
        problem = _check_field(
            worksheet, "cells", "an array", required=False, where=where
        )
        if problem:
            return problem
        for index, cell in enumerate(worksheet.get("cells", [])):
            # Version 3 keeps the code of a code cell in "input".
            code_key = "input" if _is_code(cell) else "source"
            problem = _find_cell_problem(
                cell, f"{where}.cells[{index}]", code_key
            )
            if problem:
                return problem
    return None


def _find_kernelspec_problem(raw: dict[str, Any]) -> str | None:
    """Check the kernel spec, whose name picks the kernel to start."""
    metadata = raw.get("metadata", {})
    problem = _check_field(
        metadata, "kernelspec", "an object", required=False, where="metadata"
    )
    if problem or "kernelspec" not in metadata:
        return problem
    return _check_field(
        metadata["kernelspec"],
        "name",
        "a string",
        required=False,
        where="metadata.kernelspec",
    )


def _find_cell_problem(cell: object, where: str, code_key: str) -> str | None:
    if not isinstance(cell, dict):
        return f"{where} must be an object, not {json_type(cell)}"
    problem = _check_field(
        cell, "cell_type", "a string", required=True, where=where
    )
    problem = problem or _check_field(
        cell, "metadata", "an object", required=False, where=where
    )
    problem = problem or _check_field(
        cell, "id", "a string", required=False, where=where
    )
    problem = problem or _check_field(
        cell, "attachments", "an object", required=False, where=where
    )
    problem = problem or _check_lines(cell, code_key, where)
    if problem or not _is_code(cell):
        return problem
    problem = _check_field(
        cell, "outputs", "an array", required=False, where=where
    )
    if problem:
        return problem
    for index, output in enumerate(cell.get("outputs", [])):
        if _wrong_type(output, "an object"):
            return (
                f"{where}.outputs[{index}] must be an object, not"
                f" {json_type(output)}"
            )
    return None


def _check_field(
    parent: dict[str, Any],
    key: str,
    expected: str,
    *,
    required: bool,
    where: str = "",
) -> str | None:
    path = f"{where}.{key}" if where else key
    if key not in parent:
        return f"{path} is missing" if required else None
    value = parent[key]
    if _wrong_type(value, expected):
        return f"{path} must be {expected}, not {json_type(value)}"
    return None


def _check_lines(cell: dict[str, Any], key: str, where: str) -> str | None:
    """Check text that nbformat stores as a string or an array of lines."""
    if key not in cell:
        return None
    value = cell[key]
    if isinstance(value, str):
        return None
    if not isinstance(value, list):
        return (
            f"{where}.{key} must be a string or an array of strings, not"
            f" {json_type(value)}"
        )
    for index, line in enumerate(value):
        if not isinstance(line, str):
            return (
                f"{where}.{key}[{index}] must be a string, not"
                f" {json_type(line)}"
            )
    return None


def _wrong_type(value: object, expected: str) -> bool:
    # JSON booleans load as bool, which is a subclass of int.
    return isinstance(value, bool) or not isinstance(value, _TYPES[expected])


def _is_code(cell: object) -> bool:
    return isinstance(cell, dict) and cell.get("cell_type") == "code"
