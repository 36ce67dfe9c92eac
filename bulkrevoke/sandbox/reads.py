"""The read endpoint: one customer's earned badges of one badge meta id, from the ground truth.

``GET /api_gateway/v1/badges/management/{customerId}/badge/{badgeMetaId}?includeStatistics=true``
answers ``data.activeEarnedCount``, ``data.earnDetails.earnCount``, ``data.earnDetails.earns[]``
and ``data.issualDetails`` (the statistics come only with ``includeStatistics=true``, as the
API's own docs describe the flag). Capillary's public docs do not show the shape of an
``earns[]`` item, so the sandbox can answer in three shapes (``ReadShape``), to test that a
client reads each or, lacking ids, claims nothing:

* ``standard``: ``{"earnedBadgeId", "isActive", "earnedOn", "revokedOn"}``;
* ``counts``: the items without ids (``isActive`` and the dates only): only the counts tell;
* ``alternate``: the id under ``id``, the state as ``active`` (a bool) on even items and as
  ``status`` (``"ACTIVE"`` or ``"REVOKED"``) on odd ones.

A customer the sandbox knows no badge of gets HTTP 400 with ``errors[0].code`` 816 (the API's
code; the HTTP status that comes with it is not documented).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from bulkrevoke.sandbox.overlap import Customer
from bulkrevoke.sandbox.replies import ApiError
from bulkrevoke.sandbox.revoke_request import identifier_type_of
from bulkrevoke.sandbox.settings import ReadShape
from bulkrevoke.sandbox.state import BadgeKey, canonical_customer_id
from bulkrevoke.sandbox.truth import TruthRecorder

READ_PATH = "/api_gateway/v1/badges/management/{customerId}/badge/{badgeMetaId}"

CUSTOMER_NOT_FOUND = (816, "Customer not found")

# Earn and revoke dates of badges the sandbox did not change itself: the state file has none,
# so they are placed this long before the sandbox started.
_EARNED_BEFORE_START = 86400.0
_REVOKED_BEFORE_START = 3600.0


class ReadRequest(NamedTuple):
    badge_meta_id: str
    customer: Customer
    customer_id: Any  # as the answer echoes it: int for type id, str otherwise
    statistics: bool


def parse_read(
    customer_path: str, badge_meta_id: str, identifier_header: str | None, statistics: str | None
) -> ReadRequest:
    """The read's customer and badge meta id, or ``ApiError`` for what the API refuses."""
    identifier_type = identifier_type_of(identifier_header)
    if not badge_meta_id.strip():
        raise ApiError(400, 715, "Badge meta id is mandatory")
    customer_id: Any = customer_path
    if identifier_type == "id":
        if not (customer_path.isascii() and customer_path.isdigit()):
            raise ApiError(400, 400, "customerId must be a number for identifier type id")
        customer_id = int(customer_path)
    canonical = canonical_customer_id(identifier_type, customer_path)
    wants_statistics = (statistics or "").strip().lower() == "true"
    return ReadRequest(badge_meta_id, Customer(identifier_type, canonical), customer_id, wants_statistics)


class ReadAnswers:
    """Builds read answers from a sandbox's live truth."""

    __slots__ = ("_earned_on", "_revoked_before", "_shape", "_truth")

    def __init__(self, truth: TruthRecorder, shape: ReadShape, started: float | None = None) -> None:
        self._truth = truth
        self._shape = shape
        start = time.time() if started is None else started
        self._earned_on = _iso(start - _EARNED_BEFORE_START)
        self._revoked_before = _iso(start - _REVOKED_BEFORE_START)

    def answer(self, read: ReadRequest) -> dict[str, Any]:
        """The ``data`` of the answer; ``ApiError`` 816 for an unknown customer."""
        customer = read.customer
        keys = self._truth.earned_badges(read.badge_meta_id, customer.identifier_type, customer.customer_id)
        if keys is None:
            raise ApiError(400, *CUSTOMER_NOT_FOUND)
        data: dict[str, Any] = {"badgeMetaId": read.badge_meta_id, "customerId": read.customer_id}
        if not read.statistics:
            return data
        earns = [self._item(index, key) for index, key in enumerate(keys)]
        active = sum(self._truth.badges[key].active for key in keys)
        data["activeEarnedCount"] = active
        data["earnDetails"] = {"earnCount": len(keys), "earns": earns}
        data["issualDetails"] = {"issueCount": len(keys), "activeIssueCount": active}
        return data

    def _item(self, index: int, key: BadgeKey) -> dict[str, Any]:
        record = self._truth.badges[key]
        if record.active:
            revoked_on = None
        elif record.revoked_at is not None:
            revoked_on = _iso(record.revoked_at)
        else:
            revoked_on = self._revoked_before
        if self._shape == "alternate":
            item: dict[str, Any] = {"id": key.earned_badge_id}
            if index % 2:
                item["status"] = "ACTIVE" if record.active else "REVOKED"
            else:
                item["active"] = record.active
        elif self._shape == "counts":
            item = {"isActive": record.active}
        else:
            item = {"earnedBadgeId": key.earned_badge_id, "isActive": record.active}
        item["earnedOn"] = self._earned_on
        item["revokedOn"] = revoked_on
        return item


def _iso(moment: float) -> str:
    millis = int(moment * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{millis:03d}Z"
