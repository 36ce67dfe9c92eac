"""The words every phase shares: the input's fields and identifier types, a pending row,
a row's status and outcome, why a run stopped, and what exit code that makes.

A failed row is data, not an exception: the engine turns every reply into an
``Outcome`` and the ledger stores it. Nothing here does I/O or imports another module of
the package, so every phase may import it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

#: The input's fields, in the report's order, and the identifier types of a customer.
FIELDS = ("badgeMetaId", "customerId", "earnedBadgeId", "identifierType")
IDENTIFIER_TYPES = ("id", "mobile", "email", "externalId", "cardNumber")
_IDENTIFIER_LOOKUP = {t.lower(): t for t in IDENTIFIER_TYPES}


def squash(name: str) -> str:
    """How names are compared (README, *Input*): case-insensitively, ignoring ``_``, ``-``
    and white space, so ``badge_meta_id`` matches ``badgeMetaId``."""
    return re.sub(r"[\s_-]", "", name).lower()


def canonical_identifier(value: str) -> str | None:
    """``"Email"``, ``"external_id"`` → the identifier type's spelling, or None if unknown."""
    return _IDENTIFIER_LOOKUP.get(squash(value))


def is_dataframe(value: Any) -> bool:
    """A pandas DataFrame, told without importing pandas (0.5 s)."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


@dataclass(frozen=True, slots=True)
class PendingRow:
    """A valid row without a final outcome, as handed to the send phase."""

    row: int
    badge_meta_id: str
    customer_id: str
    identifier_type: str
    earned_badge_id: str
    in_doubt: bool


class Status(str, enum.Enum):
    """A row's final status, as written in the report (README, *The report*)."""

    REVOKED = "revoked"
    ALREADY_INACTIVE = "already_inactive"
    REVOKED_UNCONFIRMED = "revoked_unconfirmed"
    INVALID = "invalid"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    NOT_ATTEMPTED = "not_attempted"
    WOULD_REVOKE = "would_revoke"

    def __str__(self) -> str:
        return self.value


#: Statuses after which the badge is known to be inactive.
INACTIVE_STATUSES = frozenset({Status.REVOKED, Status.ALREADY_INACTIVE, Status.REVOKED_UNCONFIRMED})
#: Statuses that leave a run with exit code 0.
CLEAN_STATUSES = INACTIVE_STATUSES | {Status.DUPLICATE}
#: Statuses whose rows go to failed.csv, to be run again.
RETRYABLE_STATUSES = frozenset({Status.FAILED, Status.NOT_ATTEMPTED})


class ErrorSource(str, enum.Enum):
    """Who said no: our own validation, the API's body, the HTTP layer, or the network."""

    LOCAL = "local"
    API = "api"
    HTTP = "http"
    NETWORK = "network"
    RUN = "run"

    def __str__(self) -> str:
        return self.value


class Outcome(NamedTuple):
    """The final word on one sent row. (A NamedTuple: immutable, and cheap to build once
    per row.)"""

    status: Status
    attempts: int
    is_active: bool | None = None
    error_code: str | None = None
    error_source: ErrorSource | None = None
    error_message: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    completed_at: str | None = None


class StopReason(str, enum.Enum):
    """Why a send phase ended before its last row (stored in the ledger, shown in the
    summary)."""

    AUTH = "auth"
    TLS = "tls"
    PROXY_AUTH = "proxy_auth"
    NOT_API = "not_api"
    ERROR_RATE = "error_rate"
    STORAGE = "storage"
    SIGNAL = "signal"
    INTERNAL = "internal"

    def __str__(self) -> str:
        return self.value


#: Stop reasons (as the ledger stores them) that end a run with exit code 3 (a safety
#: stop; the rest is resumable).
SAFETY_STOPS = frozenset(
    reason.value
    for reason in (
        StopReason.AUTH,
        StopReason.TLS,
        StopReason.PROXY_AUTH,
        StopReason.NOT_API,
        StopReason.ERROR_RATE,
        StopReason.STORAGE,
    )
)


def exit_code(
    statuses: Mapping[str, int], *, dry_run: bool, stop_reason: str | None, revoked_found_active: bool = False
) -> int:
    """The exit code (README, *Exit codes*), from the report's counts, why the run stopped,
    and whether the read-back found a revoked row still active (an alarm: exit 1)."""
    unfinished = statuses.get(Status.NOT_ATTEMPTED.value, 0)
    if unfinished and stop_reason == StopReason.SIGNAL:
        return 130
    if unfinished and stop_reason in SAFETY_STOPS:
        return 3
    if revoked_found_active:
        return 1
    clean = {s.value for s in CLEAN_STATUSES}
    if dry_run:
        clean |= {Status.WOULD_REVOKE.value}
    return 0 if all(s in clean for s, n in statuses.items() if n) else 1
