"""A stored batch of input rows, with its outcomes, duplicates and verdicts, as report rows.

Rows without a final outcome are rendered here, not stored: ``not_attempted`` (or
``would_revoke`` in a dry run), with a note of why the run left them. Identifiers of the
masked types are replaced by a keyed hash (``--mask-pii``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from bulkrevoke.model import Status, StopReason

REPORT_COLUMNS = (
    "row",
    "badgeMetaId",
    "customerId",
    "identifierType",
    "earnedBadgeId",
    "status",
    "isActive",
    "errorCode",
    "errorSource",
    "errorMessage",
    "httpStatus",
    "attempts",
    "requestId",
    "duplicateOf",
    "completedAt",
    "verified",
    "verifiedAt",
)
MASKED_TYPES = frozenset({"email", "mobile", "cardNumber"})


def report_schema() -> Any:
    import pyarrow as pa

    types = {
        "row": pa.int64(),
        "isActive": pa.bool_(),
        "httpStatus": pa.int64(),
        "attempts": pa.int64(),
        "duplicateOf": pa.int64(),
    }
    return pa.schema([(name, types.get(name, pa.string())) for name in REPORT_COLUMNS])


class Masker:
    """Replaces email/mobile/cardNumber identifiers with a keyed hash (HMAC-SHA256)."""

    def __init__(self, key: bytes | None) -> None:
        self._key = key

    def __call__(self, identifier_type: str, customer_id: str) -> str:
        if self._key is None or identifier_type not in MASKED_TYPES or not customer_id:
            return customer_id
        digest = hmac.new(self._key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return "hmac:" + digest[:24]


class Renderer:
    """A stored batch of rows, with its outcomes and duplicates, as report rows."""

    def __init__(self, *, dry_run: bool, stop_note: str, mask: Masker | None) -> None:
        from bulkrevoke._arrays import scalar, strings

        self._dry_run, self._mask = dry_run, mask
        self._pending = Status.WOULD_REVOKE.value if dry_run else Status.NOT_ATTEMPTED.value
        self._doubt_message = f"{stop_note} after a request whose answer was lost; --resume will settle it"
        self._unsent_message = f"{stop_note} before this row was sent"
        self._text = {value: scalar(value) for value in (self._pending, Status.INVALID.value, "local")}
        self._masked_types = strings(sorted(MASKED_TYPES))

    def __call__(
        self,
        stored: Any,
        outcomes: Sequence[tuple[Any, ...]],
        duplicates: Sequence[tuple[int, int]],
        verdicts: Sequence[tuple[int, str, str]] = (),
    ) -> Any:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from bulkrevoke._arrays import int64_from_numpy, repeated

        count = stored.num_rows
        text = self._text
        no_text = pa.nulls(count, pa.string())
        no_int = pa.nulls(count, pa.int64())
        valid = pc.is_null(stored.column("error_code"))
        pending_source = no_text if self._dry_run else repeated("run", count)
        pending_message = no_text if self._dry_run else repeated(self._unsent_message, count)
        columns: dict[str, Any] = {
            "row": stored.column("row"),
            "badgeMetaId": stored.column("badge_meta_id"),
            "customerId": self._masked(stored),
            "identifierType": stored.column("identifier_type"),
            "earnedBadgeId": stored.column("earned_badge_id"),
            "status": pc.if_else(valid, text[self._pending], text[Status.INVALID.value]),
            "isActive": pa.nulls(count, pa.bool_()),
            "errorCode": stored.column("error_code"),
            "errorSource": pc.if_else(valid, pending_source, text["local"]),
            "errorMessage": pc.if_else(valid, pending_message, stored.column("error_message")),
            "httpStatus": no_int,
            "attempts": int64_from_numpy(np.zeros(count, np.int64)),
            "requestId": no_text,
            "duplicateOf": no_int,
            "completedAt": no_text,
            "verified": no_text,
            "verifiedAt": no_text,
        }
        first = stored.column("row")[0].as_py() if count else 0
        if duplicates:
            self._patch(
                columns,
                count,
                [row - first for row, _ in duplicates],
                {
                    "status": [Status.DUPLICATE.value] * len(duplicates),
                    "errorSource": [None] * len(duplicates),
                    "errorMessage": [None] * len(duplicates),
                    "duplicateOf": [earlier for _, earlier in duplicates],
                },
            )
        if outcomes:
            self._patch(columns, count, [o[0] - first for o in outcomes], self._outcome_values(outcomes))
        if verdicts:
            self._patch(
                columns,
                count,
                [row - first for row, _, _ in verdicts],
                {
                    "verified": [verdict for _, verdict, _ in verdicts],
                    "verifiedAt": [at for _, _, at in verdicts],
                },
            )
        return pa.record_batch(list(columns.values()), schema=report_schema())

    def _outcome_values(self, outcomes: Sequence[tuple[Any, ...]]) -> dict[str, list[Any]]:
        values: dict[str, list[Any]] = {name: [] for name in _OUTCOME_FIELDS}
        for (
            _,
            status,
            in_doubt,
            is_active,
            code,
            source,
            message,
            http,
            attempts,
            request,
            completed,
        ) in outcomes:
            if status is None:  # an intent without an outcome: sent, or about to be
                status, is_active, http, attempts, request, completed = (
                    self._pending,
                    None,
                    None,
                    0,
                    None,
                    None,
                )
                if self._dry_run:
                    code = source = message = None
                else:
                    code = "in_doubt" if in_doubt else None
                    source = "run"
                    message = self._doubt_message if in_doubt else self._unsent_message
            for name, value in zip(
                _OUTCOME_FIELDS,
                (
                    status,
                    None if is_active is None else bool(is_active),
                    code,
                    source,
                    message,
                    http,
                    attempts,
                    request,
                    completed,
                ),
                strict=True,
            ):
                values[name].append(value)
        return values

    def _patch(
        self, columns: dict[str, Any], count: int, positions: list[int], values: dict[str, list[Any]]
    ) -> None:
        import pyarrow.compute as pc

        from bulkrevoke._arrays import bools, int64s, mask_at, strings

        mask = mask_at(positions, count)
        for name, new in values.items():
            build = bools if name == "isActive" else int64s if name in _INT_COLUMNS else strings
            columns[name] = pc.replace_with_mask(columns[name], mask, build(new))

    def _masked(self, stored: Any) -> Any:
        """customerId, with email/mobile/cardNumber values replaced by their keyed hash."""
        import pyarrow.compute as pc

        from bulkrevoke._arrays import scalar, strings

        customers = stored.column("customer_id")
        if self._mask is None:
            return customers
        types = stored.column("identifier_type")
        masked = pc.and_(pc.is_in(types, value_set=self._masked_types), pc.not_equal(customers, scalar("")))
        if not pc.any(masked).as_py():
            return customers
        mask = self._mask
        hashed = [
            mask(t, c)
            for t, c in zip(
                pc.filter(types, masked).to_pylist(), pc.filter(customers, masked).to_pylist(), strict=True
            )
        ]
        return pc.replace_with_mask(customers, masked, strings(hashed))


_OUTCOME_FIELDS = (
    "status",
    "isActive",
    "errorCode",
    "errorSource",
    "errorMessage",
    "httpStatus",
    "attempts",
    "requestId",
    "completedAt",
)
_INT_COLUMNS = frozenset({"httpStatus", "attempts", "duplicateOf"})


def stop_note(stop_reason: str | None) -> str:
    """What the report says of rows that a stopped run left unsent."""
    return _STOP_NOTES.get(stop_reason or "", "run ended")


#: Keyed by the stop reason as the ledger stores it (a plain string).
_STOP_NOTES: dict[str, str] = {
    StopReason.AUTH.value: "run stopped: authentication failed",
    StopReason.TLS.value: "run stopped: the host's TLS certificate was not trusted",
    StopReason.STORAGE.value: "run stopped: the run directory could not be written",
    StopReason.PROXY_AUTH.value: "run stopped: the proxy refused its credentials",
    StopReason.NOT_API.value: "run stopped: the host does not answer like the Badges API",
    StopReason.ERROR_RATE.value: "run stopped: too many rows failed",
    StopReason.SIGNAL.value: "run interrupted",
    StopReason.INTERNAL.value: "run stopped by an internal error",
}
