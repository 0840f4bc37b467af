"""Text from notebooks made safe to print on a terminal."""

from __future__ import annotations

import re

__all__ = ["escape_control_characters"]

# C0 controls, DEL and C1 controls. A terminal acts on these instead of
# showing them. ESC starts sequences that set the window title, clear the
# screen or change colors, and some terminals take C1 CSI (U+009B) for ESC [.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

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
    return _NAMED_ESCAPES.get(character, f"\\x{ord(character):02x}")
