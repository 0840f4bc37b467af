"""Conversion of arbitrary values to bounded, JSON-safe text."""

import math

__all__ = ["clip", "clip_optional", "json_scalar", "safe_str"]

_MAX_SAFE_INTEGER = 2**53


def clip(value: str, limit: int) -> str:
    """Cut a string to at most ``limit`` characters and make it valid UTF-8.

    Lone surrogates, which ``os.fsdecode`` and friends can produce, are
    replaced, because the kernel's message packer would otherwise write
    bytes that are not valid UTF-8.
    """
    if len(value) > limit:
        value = value[:limit]
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def clip_optional(value: object, limit: int) -> str | None:
    """Return ``value`` clipped when it is a string, otherwise `None`."""
    if isinstance(value, str):
        return clip(value, limit)
    return None


def safe_str(value: object, limit: int) -> str:
    """Return ``str(value)`` clipped, or a placeholder if ``str`` raises."""
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - any user __str__ may fail
        text = f"<{type(value).__name__} object: str() failed>"
    return clip(text, limit)


def json_scalar(value: object, limit: int) -> str | int | float | bool | None:
    """Convert a value to a JSON scalar: a string, number, boolean or null.

    Non-finite floats, which JSON cannot hold, and every other type become
    their ``repr``, clipped.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        # Beyond 2**53 a JSON number loses precision in most parsers.
        return value if abs(value) <= _MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return clip(value, limit)
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any user __repr__ may fail
        text = f"<{type(value).__name__} object: repr() failed>"
    return clip(text, limit)
