# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
# ruff: noqa: INP001 - Sphinx loads this file by path, not as a module
"""Sphinx configuration for the nbsentry documentation.

Pages are MyST Markdown, so the build needs ``sphinx`` and ``myst-parser``.
"""

project = "nbsentry"
author = "nbsentry contributors"
copyright = "2026, nbsentry contributors"  # noqa: A001 - name set by Sphinx

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Give every heading down to level 3 an anchor, so pages can link sections.
myst_heading_anchors = 3
