"""Reading a request the way the API does, refusing what it refuses: revokeEarn's body, and
the customer identifier header that every customer-scoped call carries."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from bulkrevoke.sandbox.replies import EARN_ID_MANDATORY, META_ID_MANDATORY, ApiError
from bulkrevoke.sandbox.state import BadgeKey, canonical_identifier_type

IDENTIFIER_HEADER = "X-CAP-CUSTOMER-IDENTIFIER"


class RevokeRequest(NamedTuple):
    key: BadgeKey
    customer_id: Any  # as sent: int for type id, str otherwise; echoed in the answer


def parse_revoke(body: bytes, identifier_header: str | None) -> RevokeRequest:
    """The request's badge key, or ``ApiError`` with the API's code for what is wrong."""
    try:
        data = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise ApiError(400, 400, "Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, 400, "Request body must be a JSON object")
    identifier_type = identifier_type_of(identifier_header)
    meta_id = _mandatory_text(data.get("badgeMetaId"), "badgeMetaId", META_ID_MANDATORY)
    earned_id = _mandatory_text(data.get("earnedBadgeId"), "earnedBadgeId", EARN_ID_MANDATORY)
    customer_id = data.get("customerId")
    if customer_id is None or customer_id == "":
        raise ApiError(400, 400, "customerId is mandatory")
    if identifier_type == "id":
        # bool is an int in Python but not a number in JSON.
        if not isinstance(customer_id, int) or isinstance(customer_id, bool):
            raise ApiError(400, 400, "customerId must be a number for identifier type id")
        customer_text = str(customer_id)
    else:
        if not isinstance(customer_id, str):
            raise ApiError(400, 400, f"customerId must be a string for identifier type {identifier_type}")
        customer_text = customer_id
    return RevokeRequest(BadgeKey(meta_id, identifier_type, customer_text, earned_id), customer_id)


def identifier_type_of(header: str | None) -> str:
    """The identifier type an ``X-CAP-CUSTOMER-IDENTIFIER`` header names (absent: ``id``)."""
    if header is None or not header.strip():
        return "id"
    identifier_type = canonical_identifier_type(header)
    if identifier_type is None:
        raise ApiError(400, 400, f"Unknown customer identifier type {header[:40]!r}")
    return identifier_type


def _mandatory_text(value: Any, name: str, missing: tuple[int, str]) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError(400, *missing)
    if not isinstance(value, str):
        raise ApiError(400, 400, f"{name} must be a string")
    return value
