"""Parsing of the ``nbsentry`` object in an execute request's metadata."""

from __future__ import annotations

import logging
import re
from typing import Any

from ._cell import Request
from ._limits import MAX_TEXT_LENGTH
from ._report import REPORT_VERSION
from ._text import clip

__all__ = ["parse_request"]

_logger = logging.getLogger(__name__)

# sentry-trace: trace id, span id and an optional sampled flag.
_SENTRY_TRACE = re.compile(r"([0-9a-f]{32})-([0-9a-f]{16})(?:-[01])?")


def parse_request(parent: dict[str, Any]) -> Request | None:
    """Return the checked ``nbsentry`` object of an execute request.

    Returns `None`, so that the extension stays silent, for a request
    without the object, with a version other than 1, or with a missing or
    invalid field. A missing or invalid field is logged at warning level.
    A notebook name longer than `MAX_TEXT_LENGTH` is cut to that length,
    because every report carries it.
    """
    metadata = parent.get("metadata")
    if not isinstance(metadata, dict):
        return None
    options = metadata.get("nbsentry")
    if options is None:
        return None
    if (
        not isinstance(options, dict)
        or options.get("version") != REPORT_VERSION
    ):
        _logger.debug("Ignoring nbsentry metadata of an unknown version")
        return None
    header = parent.get("header")
    msg_id = header.get("msg_id") if isinstance(header, dict) else None
    sentry_trace = options.get("sentry-trace")
    baggage = options.get("baggage")
    cell_id = options.get("cell_id")
    notebook = options.get("notebook")
    if isinstance(sentry_trace, str):
        sentry_trace = sentry_trace.strip()
        match = _SENTRY_TRACE.fullmatch(sentry_trace)
    else:
        match = None
    if (
        match is None
        or not isinstance(msg_id, str)
        or not (baggage is None or isinstance(baggage, str))
        or not isinstance(cell_id, str)
        or not cell_id
        or not isinstance(notebook, str)
    ):
        _log_invalid(msg_id, match, baggage, cell_id, notebook)
        return None
    # Positional arguments: with keywords this call took 2.5 times as long
    # in a tight loop. The match covers the whole stripped value, which
    # starts with the trace id.
    sentry_trace = match.string
    if len(notebook) > MAX_TEXT_LENGTH:
        notebook = clip(notebook, MAX_TEXT_LENGTH)
    return Request(
        msg_id,
        sentry_trace[:32],
        sentry_trace,
        baggage,
        cell_id,
        notebook,
        options.get("integrations") is True,
    )


def _log_invalid(
    msg_id: object,
    match: re.Match[str] | None,
    baggage: object,
    cell_id: object,
    notebook: object,
) -> None:
    invalid = [
        name
        for name, ok in (
            ("msg_id", isinstance(msg_id, str)),
            ("sentry-trace", match is not None),
            ("baggage", baggage is None or isinstance(baggage, str)),
            ("cell_id", isinstance(cell_id, str) and cell_id != ""),
            ("notebook", isinstance(notebook, str)),
        )
        if not ok
    ]
    _logger.warning(
        "Invalid nbsentry request metadata, not reporting: %s",
        ", ".join(invalid),
    )
