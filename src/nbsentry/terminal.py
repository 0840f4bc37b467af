"""Text from notebooks made safe to print on a terminal."""

from __future__ import annotations

import re

__all__ = ["escape_control_characters"]

# C0 controls, DEL and C1 controls. A terminal acts on these instead of
# showing them. ESC starts sequences that set the window title, clear the
# screen or change colors, and some terminals take C1 CSI (U+009B) for ESC [.
# Also the Unicode line and paragraph separators, and the bidirectional
# formatting characters, which reorder the text shown around them.
_INVISIBLE = "\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{_INVISIBLE}]")
_CONTROL_EXCEPT_LINES = re.compile(
    f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_INVISIBLE}]"
)

_FOUR_DIGITS = 0x100
"""First code point that an escape writes with four hex digits."""

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control_characters(text: str, *, multiline: bool = False) -> str:
    r"""Replace control characters with escapes, as Python's `repr` does.

    ESC becomes ``\x1b``, and newline, carriage return and tab become
    ``\n``, ``\r`` and ``\t``. Other characters, backslashes included,
    are kept.

    Parameters
    ----------
    text
        Text that a notebook controls, such as a name or an error message.
    multiline
        Keep newlines and tabs, for text that may span lines, such as an
        error message or a traceback.
    """
    pattern = _CONTROL_EXCEPT_LINES if multiline else _CONTROL
    return pattern.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    escaped = _NAMED_ESCAPES.get(character)
    if escaped is not None:
        return escaped
    # As repr: two hex digits up to U+00FF, four for the others.
    code = ord(character)
    return f"\\x{code:02x}" if code < _FOUR_DIGITS else f"\\u{code:04x}"
