"""Exceptions and their frames, mapped to the cells that defined the code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kernel_support import KernelSession

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_frames_name_defining_cell(kernel: KernelSession) -> None:
    defined = await kernel.run(
        "import os\n\ndef helper(d):\n    # look up\n    return d['x']\n",
        cell_id="cell-a",
    )
    assert defined.final["status"] == "ok"
    failed = await kernel.run("data = {}\nhelper(data)\n", cell_id="cell-b")
    report = failed.final
    assert report["status"] == "error"
    (value,) = report["exception"]["values"]
    assert value["type"] == "KeyError"
    assert value["module"] == "builtins"
    assert value["value"] == "'x'"
    frames = value["frames"]
    assert [f["cell_id"] for f in frames] == ["cell-b", "cell-a"]
    assert [f["lineno"] for f in frames] == [2, 5]
    assert [f["function"] for f in frames] == ["<module>", "helper"]
    assert frames[1]["filename"] == "folder/test.ipynb#cell=cell-a"
    assert frames[1]["context_line"] == "    return d['x']"
    assert frames[1]["pre_context"] == [
        "import os",
        "",
        "def helper(d):",
        "    # look up",
    ]
    assert frames[1]["post_context"] == []
    assert frames[0]["context_line"] == "helper(data)"
    assert frames[0]["pre_context"] == ["data = {}"]
    assert all(f["in_app"] for f in frames)
    assert all(f["module"] is None for f in frames)


async def test_identical_source_last_cell_wins(kernel: KernelSession) -> None:
    source = "def twin():\n    raise ValueError('twin')\n"
    await kernel.run(source, cell_id="twin-1")
    await kernel.run(source, cell_id="twin-2")
    failed = await kernel.run("twin()", cell_id="twin-call")
    (value,) = failed.final["exception"]["values"]
    assert [f["cell_id"] for f in value["frames"]] == ["twin-call", "twin-2"]
    assert value["frames"][1]["lineno"] == 2


async def test_explicit_cause_chain(kernel: KernelSession) -> None:
    failed = await kernel.run(
        "try:\n"
        "    {}['k']\n"
        "except KeyError as e:\n"
        "    raise RuntimeError('lookup failed') from e\n",
        cell_id="cause",
    )
    values = failed.final["exception"]["values"]
    assert [v["type"] for v in values] == ["KeyError", "RuntimeError"]
    inner, outer = values
    assert outer["value"] == "lookup failed"
    assert outer["mechanism"] == {
        "type": "nbsentry",
        "handled": False,
        "exception_id": 0,
        "parent_id": None,
        "source": None,
        "is_exception_group": False,
    }
    assert inner["mechanism"]["exception_id"] == 1
    assert inner["mechanism"]["parent_id"] == 0
    assert inner["mechanism"]["source"] == "__cause__"
    assert [f["lineno"] for f in inner["frames"]] == [2]
    assert [f["lineno"] for f in outer["frames"]] == [4]


async def test_implicit_context_chain(kernel: KernelSession) -> None:
    failed = await kernel.run(
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    int('x')\n",
        cell_id="context",
    )
    values = failed.final["exception"]["values"]
    assert [v["type"] for v in values] == ["ZeroDivisionError", "ValueError"]
    assert values[0]["mechanism"]["source"] == "__context__"
    assert values[0]["mechanism"]["parent_id"] == 0
    assert values[1]["value"] == "invalid literal for int() with base 10: 'x'"


async def test_suppressed_context_left_out(kernel: KernelSession) -> None:
    failed = await kernel.run(
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n"
        "    raise KeyError('k') from None\n",
        cell_id="suppressed",
    )
    values = failed.final["exception"]["values"]
    assert [v["type"] for v in values] == ["KeyError"]


async def test_exception_group_members(kernel: KernelSession) -> None:
    failed = await kernel.run(
        "def fail(n):\n"
        "    raise ValueError(n)\n"
        "errors = []\n"
        "for n in (1, 2):\n"
        "    try:\n"
        "        fail(n)\n"
        "    except ValueError as e:\n"
        "        errors.append(e)\n"
        "raise ExceptionGroup('two failures', errors)\n",
        cell_id="group",
    )
    values = failed.final["exception"]["values"]
    # Sentry's order is pre-order (group, members) reversed.
    assert [v["type"] for v in values] == [
        "ValueError",
        "ValueError",
        "ExceptionGroup",
    ]
    second, first, group = values
    assert group["mechanism"]["is_exception_group"] is True
    assert group["mechanism"]["exception_id"] == 0
    assert group["value"] == "two failures (2 sub-exceptions)"
    assert first["value"] == "1"
    assert first["mechanism"]["source"] == "exceptions[0]"
    assert first["mechanism"]["parent_id"] == 0
    assert first["mechanism"]["exception_id"] == 1
    assert second["value"] == "2"
    assert second["mechanism"]["source"] == "exceptions[1]"
    assert second["mechanism"]["exception_id"] == 2
    assert second["mechanism"]["is_exception_group"] is False
    assert [(f["function"], f["lineno"]) for f in first["frames"]] == [
        ("<module>", 6),
        ("fail", 2),
    ]


async def test_syntax_error_names_cell_line(kernel: KernelSession) -> None:
    failed = await kernel.run("x = 1\ny = (\nz = 3 +\n", cell_id="syntax")
    report = failed.final
    assert report["status"] == "error"
    (value,) = report["exception"]["values"]
    assert value["type"] == "SyntaxError"
    assert value["value"] == "'(' was never closed (line 2)"
    (frame,) = value["frames"]
    assert frame["cell_id"] == "syntax"
    assert frame["filename"] == "folder/test.ipynb#cell=syntax"
    assert frame["lineno"] == 2
    assert frame["context_line"] == "y = ("
    assert frame["pre_context"] == ["x = 1"]
    assert frame["post_context"] == ["z = 3 +"]


async def test_system_exit_reported(kernel: KernelSession) -> None:
    failed = await kernel.run("import sys\nsys.exit(3)\n", cell_id="exit")
    report = failed.final
    assert report["status"] == "error"
    (value,) = report["exception"]["values"]
    assert value["type"] == "SystemExit"
    assert value["value"] == "3"
    assert [f["lineno"] for f in value["frames"]] == [2]
    alive = await kernel.run("1 + 1", cell_id="after-exit")
    assert alive.final["status"] == "ok"


async def test_library_frames_not_in_app(kernel: KernelSession) -> None:
    failed = await kernel.run(
        "import json\njson.loads('{')\n", cell_id="library"
    )
    (value,) = failed.final["exception"]["values"]
    frames = value["frames"]
    assert frames[0]["cell_id"] == "library"
    assert frames[0]["in_app"] is True
    library = frames[1:]
    assert library != []
    assert {f["in_app"] for f in library} == {False}
    assert {f["cell_id"] for f in library} == {None}
    assert library[0]["module"] == "json"
    assert library[0]["filename"].endswith("/json/__init__.py")
    assert library[-1]["function"] == "raw_decode"


async def test_deep_recursion_keeps_innermost(kernel: KernelSession) -> None:
    failed = await kernel.run(
        "import sys\n"
        "sys.setrecursionlimit(400)\n"
        "def down(n):\n"
        "    return down(n + 1)\n"
        "try:\n"
        "    down(0)\n"
        "finally:\n"
        "    sys.setrecursionlimit(3000)\n",
        cell_id="recursion",
    )
    report = failed.final
    (value,) = report["exception"]["values"]
    assert value["type"] == "RecursionError"
    frames = value["frames"]
    assert len(frames) == 100
    assert {(f["function"], f["lineno"]) for f in frames} == {("down", 4)}
    assert report["dropped"]["frames"] > 200


async def test_long_value_cut(kernel: KernelSession) -> None:
    failed = await kernel.run("raise ValueError('v' * 5000)", cell_id="long")
    (value,) = failed.final["exception"]["values"]
    assert value["value"] == "v" * 1024


BAD_REPR = (
    "class BadRepr:\n"
    "    def __repr__(self):\n"
    "        raise ValueError('no repr')\n"
)


async def test_failed_display_reported(kernel: KernelSession) -> None:
    # IPython catches the error while displaying the result, and ipykernel
    # replies error although the cell's code raised nothing.
    failed = await kernel.run(BAD_REPR + "BadRepr()\n", cell_id="display")
    assert failed.reply["content"]["status"] == "error"
    report = failed.final
    assert report["status"] == "error"
    (value,) = report["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["value"] == "no repr"
    assert value["mechanism"]["exception_id"] == 0
    (frame,) = value["frames"]
    assert frame["function"] == "__repr__"
    assert frame["cell_id"] == "display"
    assert frame["lineno"] == 3
    assert frame["context_line"] == "        raise ValueError('no repr')"
    # An explicit display() is not the cell's result: ipykernel replies ok.
    displayed = await kernel.run("display(BadRepr())", cell_id="explicit")
    assert displayed.reply["content"]["status"] == "ok"
    assert displayed.final["status"] == "ok"


async def test_failed_display_reported_once(kernel: KernelSession) -> None:
    await kernel.run(BAD_REPR, cell_id="define-bad")
    failed = await kernel.run("BadRepr()", cell_id="first")
    assert failed.final["status"] == "error"
    # ipykernel 7.4 runs a cell with top-level await without resetting its
    # failed-display flag, so it replies error to this passing cell.
    passed = await kernel.run(
        "import asyncio\nawait asyncio.sleep(0)\n1", cell_id="await"
    )
    assert passed.final["status"] == "ok"
    assert passed.final["exception"] is None
    again = await kernel.run(
        "await asyncio.sleep(0)\nBadRepr()", cell_id="await-display"
    )
    assert again.final["status"] == "error"
    (value,) = again.final["exception"]["values"]
    assert value["type"] == "ValueError"
    assert [f["cell_id"] for f in value["frames"]] == ["define-bad"]
