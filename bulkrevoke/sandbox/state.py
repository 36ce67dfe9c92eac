"""Which earned badges the sandbox knows, and the state file that seeds them.

A badge is named by the four values a revokeEarn request carries. The customer id is kept
as text so that ``566135941`` sent as a JSON number and ``"566135941"`` read from a CSV
name the same badge.

The state file is a CSV with columns ``badgeMetaId, customerId, identifierType, earnedBadgeId,
active`` (``identifierType`` optional). Headers match as the run's input does:
case-insensitively, ignoring ``_``, ``-`` and spaces.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from bulkrevoke.errors import ConfigError

# The identifier types revokeEarn accepts in X-CAP-CUSTOMER-IDENTIFIER, spelled as the
# API spells them; "id" is what an absent header means.
IDENTIFIER_TYPES = ("id", "mobile", "email", "externalId", "cardNumber")
_CANONICAL_TYPES = {name.lower(): name for name in IDENTIFIER_TYPES}

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})

_REQUIRED = {
    "badgemetaid": "badgeMetaId",
    "customerid": "customerId",
    "earnedbadgeid": "earnedBadgeId",
    "active": "active",
}
_OPTIONAL = {"identifiertype": "identifierType"}


class BadgeKey(NamedTuple):
    """One earned badge of one customer, as the API names it."""

    badge_meta_id: str
    identifier_type: str
    customer_id: str
    earned_badge_id: str


class StateFileError(ConfigError, ValueError):
    """The state file can't be read or holds a bad row.

    A ``ConfigError`` so the CLI exits 2 with the message; a ``ValueError`` for callers
    who treat it as bad data.
    """


def canonical_identifier_type(value: str) -> str | None:
    """The API's spelling of an identifier type (any case accepted), or None if unknown."""
    return _CANONICAL_TYPES.get(value.strip().lower())


def canonical_customer_id(identifier_type: str, customer_id: str) -> str:
    """The customer id as the key holds it.

    For type ``id`` the API takes a JSON number, so ``"00042"`` in a file and ``42`` on
    the wire are the same customer.
    """
    if identifier_type == "id" and customer_id.isascii() and customer_id.isdigit():
        return str(int(customer_id))
    return customer_id


def load_state(path: str | os.PathLike[str]) -> dict[BadgeKey, bool]:
    """Read a state file into ``{BadgeKey: active}``; a later row for the same key wins.

    Raises ``StateFileError`` naming the file (and line) on any problem.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig", newline="") as handle:
            return dict(_parse(handle, name))
    except OSError as exc:
        raise StateFileError(f"cannot read state file {name}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise StateFileError(f"state file {name} is not UTF-8 text") from exc
    except csv.Error as exc:
        raise StateFileError(f"state file {name} is not valid CSV: {exc}") from exc


def _parse(lines: Iterator[str], name: str) -> Iterator[tuple[BadgeKey, bool]]:
    head = _first_line(lines)
    if head is None:
        raise StateFileError(f"state file {name} is empty")
    reader = csv.reader(_chain(head, lines), delimiter=_delimiter(head))
    columns = _columns(next(reader), name)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        where = f"state file {name} line {reader.line_num}"
        values = {field: (row[i].strip() if i < len(row) else "") for field, i in columns.items()}
        yield _row_key(values, where), _active(values["active"], where)


def _first_line(lines: Iterator[str]) -> str | None:
    for line in lines:
        if line.strip():
            return line
    return None


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _delimiter(header: str) -> str:
    # The run's input may be a TSV, and a state file is often made from it.
    return max((",", "\t", ";"), key=header.count)


def _columns(header: list[str], name: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        folded = "".join(ch for ch in cell.lower() if ch not in "_- \t")
        field = _REQUIRED.get(folded) or _OPTIONAL.get(folded)
        if field is not None and field not in found:
            found[field] = index
    missing = [field for field in _REQUIRED.values() if field not in found]
    if missing:
        raise StateFileError(f"state file {name} lacks column(s): {', '.join(missing)}")
    return found


def _row_key(values: Mapping[str, str], where: str) -> BadgeKey:
    for field in ("badgeMetaId", "customerId", "earnedBadgeId"):
        if not values[field]:
            raise StateFileError(f"{where}: empty {field}")
    raw_type = values.get("identifierType") or "id"
    identifier_type = canonical_identifier_type(raw_type)
    if identifier_type is None:
        raise StateFileError(f"{where}: unknown identifierType {raw_type!r}")
    return BadgeKey(
        values["badgeMetaId"],
        identifier_type,
        canonical_customer_id(identifier_type, values["customerId"]),
        values["earnedBadgeId"],
    )


def _active(value: str, where: str) -> bool:
    folded = value.lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise StateFileError(f"{where}: active must be true/false/1/0/yes/no, not {value!r}")
