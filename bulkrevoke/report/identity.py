"""Who ran a run, as which API principal, under which ticket, with what: written to the
ledger when a run starts, so that summary.json, summary.html and ``bulkrevoke history``
can say it (an audit record names who, what, when and under which change).

Nothing here is a secret: the principal is the Basic username or the OAuth client key,
and the settings are the run's effective non-secret settings, listed by name.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import socket
from typing import Any

from bulkrevoke.config import RunConfig


def run_identity(config: RunConfig, host: str | None) -> dict[str, Any]:
    """The ledger meta that records who, as whom, why and with what a run started."""
    settings = effective_settings(config, host)
    return {
        "operator": operator(),
        "principal": principal(config),
        "ticket": config.ticket,
        "machine": socket.gethostname(),
        "python_version": platform.python_version(),
        "settings": settings,
        "settings_digest": settings_digest(settings),
    }


def operator() -> str:
    """The OS user running bulkrevoke (the login name, else the numeric user id)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid {os.getuid()}"


def principal(config: RunConfig) -> str | None:
    """The API identity the run sends as: the Basic username or the OAuth client key."""
    if config.dry_run:
        return None
    if config.sandbox:
        return "sandbox"
    credentials = config.credentials
    if credentials.uses_oauth:
        return credentials.client_key
    return credentials.username if credentials.uses_basic else None


def effective_settings(config: RunConfig, host: str | None) -> dict[str, Any]:
    """The settings that decide what a run sends and how, by name. A list, not every field
    of RunConfig: a setting added later is left out rather than risk a secret in it."""
    retry = config.retry
    return {
        "host": host,
        "dryRun": config.dry_run,
        "rate": str(config.rate),
        "concurrency": config.concurrency,
        "maxAttempts": retry.max_attempts,
        "timeout": retry.timeout,
        "backoff": retry.base_delay,
        "backoffCap": retry.max_delay,
        "retryAfterCap": retry.retry_after_cap,
        "rowDeadline": retry.row_deadline,
        "maxErrorRate": config.max_error_rate,
        "identifier": config.identifier,
        "columns": dict(sorted(config.columns.items())),
        "delimiter": config.delimiter,
        "caBundle": None if config.ca_bundle is None else str(config.ca_bundle),
        "maskPii": config.mask_pii,
    }


def settings_digest(settings: dict[str, Any]) -> str:
    """SHA-256 of the settings as canonical JSON: two runs with equal digests ran alike."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
