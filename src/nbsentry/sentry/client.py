"""The sentry-sdk client of a CLI run: options, scrubbing, shutdown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sentry_sdk
from sentry_sdk.integrations.atexit import AtexitIntegration
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.excepthook import ExcepthookIntegration
from sentry_sdk.integrations.modules import ModulesIntegration

from .spool import SpoolTransport

if TYPE_CHECKING:
    from nbsentry.config import RunConfig

__all__ = ["close_sentry", "init_sentry"]


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
    if not dsn:
        options["transport"] = SpoolTransport(config.spool)
    sentry_sdk.init(**options)


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


def close_sentry(timeout: float = 10.0) -> SpoolTransport | None:
    """Send pending envelopes and stop the client started by `init_sentry`.

    Parameters
    ----------
    timeout
        Seconds to wait for pending envelopes.

    Returns
    -------
    SpoolTransport or None
        The spool transport, if envelopes went to a spool directory.
    """
    client = sentry_sdk.get_client()
    transport = client.transport
    client.close(timeout=timeout)
    return transport if isinstance(transport, SpoolTransport) else None
