# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Record the errors sentry-sdk logs about its own failures."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sentry_sdk.utils import logger as sentry_sdk_logger

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["record_sentry_sdk_errors"]


class _RecordingHandler(logging.Handler):
    """Store every record it handles, from any thread."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.records = records
        self._records_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._records_lock:
            self.records.append(record)


class _PassErrorsFilter(logging.Filter):
    """Pass records at ERROR or above, and others only if ``inner`` does."""

    def __init__(self, inner: logging.Filterer) -> None:
        super().__init__()
        self.inner = inner

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return bool(self.inner.filter(record))


@contextmanager
def record_sentry_sdk_errors() -> Iterator[list[logging.LogRecord]]:
    """Collect ERROR records of the ``sentry_sdk.errors`` logger.

    sentry-sdk catches its own failures and logs them on that logger, but
    a filter it installs at import drops every record unless the client
    was initialized with ``debug=True``. Inside this block, records at
    ERROR or above pass that filter, and the rest are still dropped.

    Yields
    ------
    list of logging.LogRecord
        The records, appended as they are logged.
    """
    records: list[logging.LogRecord] = []
    original_filters = sentry_sdk_logger.filters
    original = logging.Filterer()
    for existing in original_filters:
        original.addFilter(existing)
    handler = _RecordingHandler(records)
    sentry_sdk_logger.filters = [_PassErrorsFilter(original)]
    sentry_sdk_logger.addHandler(handler)
    try:
        yield records
    finally:
        sentry_sdk_logger.removeHandler(handler)
        sentry_sdk_logger.filters = original_filters
