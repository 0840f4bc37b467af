# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of escaping text for the terminal."""

from __future__ import annotations

import pytest

from nbsentry.terminal import escape_control_characters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain.ipynb", "plain.ipynb"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("\x00\x07\x08\x0b\x0c\x1f", "\\x00\\x07\\x08\\x0b\\x0c\\x1f"),
        ("del\x7f", "del\\x7f"),
        ("c1\x80\x85\x9b\x9f", "c1\\x80\\x85\\x9b\\x9f"),
        ("line\nbreak\ttab\rreturn", "line\\nbreak\\ttab\\rreturn"),
        ("back\\slash", "back\\slash"),
        ("café \u00a0 émoji 🐍", "café \u00a0 émoji 🐍"),
        ("abc\u202edef.ipynb", "abc\\u202edef.ipynb"),
        (
            "\u2028\u2029\u200e\u200f\u061c",
            "\\u2028\\u2029\\u200e\\u200f\\u061c",
        ),
        ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
    ],
)
def test_escape_single_line(text: str, expected: str) -> None:
    assert escape_control_characters(text) == expected


def test_escape_multiline_keeps_lines() -> None:
    text = "first\n\tsecond\r\x1b[2K"

    escaped = escape_control_characters(text, multiline=True)

    assert escaped == "first\n\tsecond\\r\\x1b[2K"
