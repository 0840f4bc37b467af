# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Make the test helpers importable as ``tests.support``.

pytest imports this file first and, in its default ``prepend`` import
mode, puts this directory on ``sys.path``. Tests then import their helpers
as ``tests.support``, which is also the module name mypy gives them.
"""
