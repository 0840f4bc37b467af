"""Size limits that keep every report small and bounded.

The runner's validator enforces the same limits, so a report that exceeds
one of them would be rejected whole.
"""

__all__ = [
    "MAX_BREADCRUMBS",
    "MAX_CONTEXT_LINES",
    "MAX_EXCEPTIONS",
    "MAX_FRAMES",
    "MAX_NAME_LENGTH",
    "MAX_REMEMBERED_CELLS",
    "MAX_SPANS",
    "MAX_SPAN_DATA_KEYS",
    "MAX_TEXT_LENGTH",
]

MAX_BREADCRUMBS = 50
"""Maximum number of breadcrumbs in one cell's report."""

MAX_CONTEXT_LINES = 5
"""Maximum number of source lines before and after a frame's line."""

MAX_EXCEPTIONS = 20
"""Maximum number of exceptions in one chain, groups included."""

MAX_FRAMES = 100
"""Maximum number of frames per exception; the innermost ones are kept."""

MAX_NAME_LENGTH = 200
"""Maximum length of short names: span ops, functions, modules, types."""

MAX_REMEMBERED_CELLS = 2048
"""Maximum number of cells whose compiled file name maps to a cell id."""

MAX_SPANS = 200
"""Maximum number of spans per cell, partial reports included."""

MAX_SPAN_DATA_KEYS = 50
"""Maximum number of keys in one span's ``data``."""

MAX_TEXT_LENGTH = 1024
"""Maximum length of other strings: values, messages, source lines."""
