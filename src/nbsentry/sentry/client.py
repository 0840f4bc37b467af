"""The sentry-sdk client of a CLI run: options, scrubbing, shutdown."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import sentry_sdk
import structlog
from sentry_sdk.integrations.atexit import AtexitIntegration
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.excepthook import ExcepthookIntegration
from sentry_sdk.integrations.modules import ModulesIntegration
from sentry_sdk.transport import HttpTransport

from .spool import SpoolTransport

if TYPE_CHECKING:
    from nbsentry.config import RunConfig

__all__ = [
    "LossLoggingHttpTransport",
    "close_sentry",
    "init_sentry",
    "scrub_text",
]

_CHOSEN_DROPS = frozenset({"sample_rate", "before_send", "event_processor"})
"""Loss reasons that are the runner's own choice, such as sampling."""

_logger = structlog.get_logger("nbsentry")

_SECRETS: list[str] = []
"""Secrets of the running client, longest first, replaced in any text."""


def init_sentry(
    config: RunConfig, *, secrets: list[str] | None = None
) -> None:
    """Start the sentry-sdk client for a CLI run.

    Without a DSN, envelopes go to the spool directory. Integrations that
    would turn the runner's own logs into events, or put the command line
    (which may hold the DSN) into events, are left off.

    Parameters
    ----------
    config
        Run settings: DSN, environment, release, spool, traces sampling.
    secrets
        Values to filter out of every event, such as tokens.
    """
    dsn = config.dsn.get_secret_value() if config.dsn else None
    hidden = [s for s in (secrets or []) if s]
    if dsn:
        hidden.extend(_dsn_keys(dsn))
    _SECRETS[:] = sorted(hidden, key=len, reverse=True)
    rate = 1.0 if config.traces_sample == "errors" else config.traces_sample
    options: dict[str, Any] = {
        "dsn": dsn,
        "environment": config.environment,
        "release": config.release,
        "traces_sample_rate": rate,
        "default_integrations": False,
        "integrations": [
            AtexitIntegration(),
            DedupeIntegration(),
            ExcepthookIntegration(),
            ModulesIntegration(),
        ],
        "before_send": _scrubber(hidden),
        "before_send_transaction": _scrubber(hidden),
    }
    if dsn:
        options["transport"] = LossLoggingHttpTransport
    else:
        options["transport"] = SpoolTransport(config.spool)
    sentry_sdk.init(**options)


class LossLoggingHttpTransport(HttpTransport):
    """sentry-sdk's HTTP transport, logging what it fails to deliver.

    sentry-sdk drops an envelope it cannot send (server unreachable, rate
    limited, queue full) and only records it for its client reports. This
    transport counts those losses and logs the first of each reason.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.lost: dict[str, int] = {}
        self._lost_lock = threading.Lock()

    def record_lost_event(
        self,
        reason: str,
        data_category: Any = None,
        item: Any = None,
        *,
        quantity: int = 1,
    ) -> None:
        """Count and log an item that sentry-sdk gave up on."""
        super().record_lost_event(
            reason, data_category, item, quantity=quantity
        )
        if reason in _CHOSEN_DROPS:
            return
        category = data_category or (item.data_category if item else None)
        with self._lost_lock:
            first = reason not in self.lost
            self.lost[reason] = self.lost.get(reason, 0) + quantity
        if first:
            _logger.warning(
                "Sentry data lost; later losses for this reason are counted",
                reason=reason,
                category=category,
            )


def scrub_text(text: str) -> str:
    """Replace the secrets registered by `init_sentry` in a text.

    For text that leaves the runner outside events, such as log lines,
    the summary table and attachments, which ``before_send`` never gets.
    """
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "[Filtered]")
    return text


def _dsn_keys(dsn: str) -> list[str]:
    """Return the secret parts of a DSN: the whole DSN and its keys."""
    keys = [dsn]
    userinfo = dsn.partition("://")[2].partition("@")[0]
    if "@" in dsn.partition("://")[2]:
        keys.extend(part for part in userinfo.split(":") if part)
    return keys


def _scrubber(secrets: list[str]) -> Any:
    def scrub(event: Any, _hint: Any) -> Any:
        if not secrets:
            return event
        return _replace_secrets(event, secrets)

    return scrub


def _replace_secrets(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, "[Filtered]")
        return value
    if isinstance(value, dict):
        # The dynamic sampling context names the DSN's public key on
        # purpose: Sentry matches it against the project that receives
        # the envelope, which has the key anyway.
        return {
            k: v
            if k == "dynamic_sampling_context"
            else _replace_secrets(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_secrets(v, secrets) for v in value]
    return value


def close_sentry(timeout: float = 10.0) -> int:
    """Send pending envelopes and stop the client started by `init_sentry`.

    Logs where the envelopes went and how many were lost.

    Parameters
    ----------
    timeout
        Seconds to wait for pending envelopes.

    Returns
    -------
    int
        Number of envelopes or items that never reached Sentry or the
        spool.
    """
    client = sentry_sdk.get_client()
    transport = client.transport
    client.close(timeout=timeout)
    if isinstance(transport, SpoolTransport):
        _logger.info(
            "Envelopes written to spool",
            spool=str(transport.directory),
            envelopes=transport.written,
            failed=transport.failed,
        )
        return transport.failed
    if isinstance(transport, LossLoggingHttpTransport) and transport.lost:
        total = sum(transport.lost.values())
        _logger.error("Sentry data lost", items=total, reasons=transport.lost)
        return total
    return 0
