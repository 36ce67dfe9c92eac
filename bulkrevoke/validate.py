"""Row-level validation (contract §3): a record either becomes a job to send or an
``invalid`` outcome with a code and a message an operator can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import canonical_identifier

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
_DIGITS = re.compile(r"[0-9]+")
_MOBILE = re.compile(r"\+?[0-9]{6,15}")
_SPREADSHEET = re.compile(r"[+-]?[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+|[+-]?[0-9]+\.[0-9]*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A validated record: its trimmed fields, and an error code when it is invalid."""

    badge_meta_id: str
    customer_id: str
    identifier_type: str
    earned_badge_id: str
    error_code: str | None = None
    error_message: str | None = None

    @property
    def dedupe_key(self) -> str:
        return "\x1f".join(
            (self.badge_meta_id, self.identifier_type, self.customer_id, self.earned_badge_id))


def validate(
    badge_meta_id: str | None,
    customer_id: str | None,
    earned_badge_id: str | None,
    identifier_type: str | None,
    default_identifier: str,
) -> Verdict:
    """Check one record. The first problem found is the one reported."""
    meta = (badge_meta_id or "").strip()
    customer = (customer_id or "").strip()
    earned = (earned_badge_id or "").strip()
    raw_type = (identifier_type or "").strip()
    id_type = canonical_identifier(raw_type) if raw_type else default_identifier
    problem = _problem(meta, customer, earned, raw_type, id_type)
    return Verdict(meta, customer, id_type or raw_type, earned, *problem)


# Messages never quote customerId: it may be an email or a mobile number, and the
# report's own customerId column (masked with --mask-pii) already shows it.
def _problem(
    meta: str, customer: str, earned: str, raw_type: str, id_type: str | None
) -> tuple[str | None, str | None]:
    if not meta:
        return "715", "badgeMetaId is missing (the API would answer 715: Badge meta id is mandatory)"
    if not earned:
        return "813", "earnedBadgeId is missing (the API would answer 813: EarnId is mandatory)"
    if not customer:
        return "missing_customer_id", "customerId is missing"
    for name, value in (("badgeMetaId", meta), ("earnedBadgeId", earned)):
        if not _HEX24.fullmatch(value):
            return "malformed_id", f"{name} {_show(value)} is not 24 hexadecimal digits"
    if id_type is None:
        return ("bad_identifier_type",
                f"identifierType {_show(raw_type)} is not one of id, mobile, email, "
                "externalId, cardNumber")
    if id_type in ("id", "mobile") and _SPREADSHEET.fullmatch(customer):
        return ("spreadsheet_number",
                "customerId looks like a spreadsheet number (decimal point or exponent); "
                "digits may already be lost: export the column as text")
    if _CONTROL.search(customer):
        return "bad_customer_id", "customerId contains a control character (line break or tab)"
    if id_type == "id" and not _DIGITS.fullmatch(customer):
        return "bad_customer_id", "customerId is not a numeric id (identifier type id)"
    if id_type == "mobile" and not _MOBILE.fullmatch(customer):
        return ("bad_customer_id",
                "customerId is not a mobile number (6 to 15 digits, optional leading +)")
    if id_type == "email" and not _EMAIL.fullmatch(customer):
        return "bad_customer_id", "customerId is not an email address (identifier type email)"
    return None, None


def _show(value: str, limit: int = 40) -> str:
    """Quote a value for a message, cut short so one bad cell can't flood a log."""
    text = value if len(value) <= limit else value[:limit] + "…"
    return repr(text)
