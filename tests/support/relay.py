# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Check Sentry payloads the way Sentry's ingestion does.

Relay's store normalizer (PyPI ``sentry-relay``) raises on hard faults and
lists soft ones under ``errors`` in its result. Version 0.10.1 also fills
in a missing span end with the transaction's end, so this module checks
span timestamps itself, on the payload as sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sentry_relay.exceptions import RelayError
from sentry_relay.processing import StoreNormalizer

__all__ = ["assert_valid_payload"]

# A normalizer stores only its configuration, so one serves every call.
_NORMALIZER = StoreNormalizer()


def assert_valid_payload(payload: dict[str, Any]) -> None:
    """Check that Sentry would accept an error event or a transaction.

    Parameters
    ----------
    payload
        The event or transaction as JSON-decoded from an envelope item.

    Raises
    ------
    AssertionError
        Raised if Relay's normalizer raises or reports an entry under
        ``errors``, or if the transaction or one of its spans has a missing
        or invalid timestamp, ends before it starts, or a span lies outside
        its transaction.
    """
    problems = _check_timestamps(payload)
    problems.extend(_check_with_relay(payload))
    if problems:
        kind = payload.get("type") or "event"
        name = payload.get("transaction") or payload.get("message") or ""
        event_id = payload.get("event_id")
        lines = [f"invalid {kind} {name!r} (event_id {event_id}):"]
        lines.extend(f"  - {problem}" for problem in problems)
        message = "\n".join(lines)
        raise AssertionError(message)


def _check_with_relay(payload: dict[str, Any]) -> list[str]:
    """Run the payload through Relay and describe what it rejects."""
    try:
        normalized: dict[str, Any] = _NORMALIZER.normalize_event(payload)
    except RelayError as error:
        # The text after the first line is a Rust stack trace.
        first_line = str(error).splitlines()[0] if str(error) else ""
        return [f"Relay raised {type(error).__name__}: {first_line}"]
    errors = normalized.get("errors") or []
    return [f"Relay reported {entry}" for entry in errors]


def _check_timestamps(payload: dict[str, Any]) -> list[str]:
    """Describe missing, invalid or misordered transaction timestamps."""
    if payload.get("type") != "transaction":
        return []
    problems: list[str] = []
    start, end = _read_interval(payload, "transaction", problems)
    for span in payload.get("spans") or []:
        label = (
            f"span {span.get('op')!r} {span.get('description')!r}"
            f" (span_id {span.get('span_id')})"
        )
        span_start, span_end = _read_interval(span, label, problems)
        if start is not None and span_start is not None and span_start < start:
            problems.append(f"{label} starts before its transaction")
        if end is not None and span_end is not None and span_end > end:
            problems.append(f"{label} ends after its transaction")
    return problems


def _read_interval(
    item: dict[str, Any], label: str, problems: list[str]
) -> tuple[float | None, float | None]:
    """Read start and end of a transaction or span, noting each problem."""
    start = _read_timestamp(item, "start_timestamp", label, problems)
    end = _read_timestamp(item, "timestamp", label, problems)
    if start is not None and end is not None and end < start:
        problems.append(f"{label} ends before it starts")
    return start, end


def _read_timestamp(
    item: dict[str, Any], key: str, label: str, problems: list[str]
) -> float | None:
    """Return a timestamp as Unix seconds, or None after noting a problem."""
    boundary = "end" if key == "timestamp" else "start"
    if key not in item or item[key] is None:
        problems.append(f"{label} has no {boundary} timestamp ({key})")
        return None
    seconds = _parse_timestamp(item[key])
    if seconds is None:
        problems.append(f"{label} has an invalid {key}: {item[key]!r}")
    return seconds


def _parse_timestamp(value: object) -> float | None:
    """Parse Unix seconds or an RFC 3339 string, as Sentry accepts both."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
