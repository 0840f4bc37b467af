"""Every sentry-sdk call the runner makes.

The runner owns all Sentry state. Each business phase (startup, each
iteration, shutdown) gets an isolation scope and a transaction. Each
notebook execution gets a transaction in the same trace as its iteration,
each code cell a span, and each failure an error event with a
fingerprint split by notebook and cell.
Keeping sentry-sdk behind this one package confines any change of its API
to these files.
"""

from .client import close_sentry, init_sentry, scrub_text
from .spool import (
    SendSummary,
    SpoolTransport,
    check_spool,
    envelope_endpoint,
    send_spool,
    spool_files,
)
from .telemetry import Telemetry
from .traces import (
    MAX_ATTACHMENT_CHARACTERS,
    MAX_CODE_LENGTH,
    MAX_TAG_LENGTH,
    SPAN_LIMIT,
    CellTrace,
    NotebookTrace,
    PhaseTrace,
)

__all__ = [
    "MAX_ATTACHMENT_CHARACTERS",
    "MAX_CODE_LENGTH",
    "MAX_TAG_LENGTH",
    "SPAN_LIMIT",
    "CellTrace",
    "NotebookTrace",
    "PhaseTrace",
    "SendSummary",
    "SpoolTransport",
    "Telemetry",
    "check_spool",
    "close_sentry",
    "envelope_endpoint",
    "init_sentry",
    "scrub_text",
    "send_spool",
    "spool_files",
]
