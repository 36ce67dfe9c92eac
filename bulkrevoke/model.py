"""What happened to one row: its status and the facts behind it.

A failed row is data, not an exception: the engine turns every reply into an
``Outcome`` and the ledger stores it.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Status(str, enum.Enum):
    """A row's final status, as written in the report (contract §4)."""

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
