"""Streaming readers: CSV (.csv, .tsv, .txt, gzip, stdin), Parquet, Excel and DataFrames.

Every reader yields batches of ``(badgeMetaId, customerId, earnedBadgeId,
identifierType)`` text tuples, in file order, without holding the file in memory,
and computes the input's SHA-256 as it goes. The rules all readers share (README.md, *Input*):

- headers match case-insensitively, ignoring ``_``, ``-`` and spaces; ``--column`` maps
  a field to a header of the operator's choosing;
- every value is text: an id is never turned into a float (a float column or cell keeps a
  form that validation flags as ``spreadsheet_number``);
- a record whose every field is blank (spaces, tabs, line breaks) is a blank line, not a
  record, so ``row`` counts data records only;
- a file-level problem raises ``InputError`` with one line that names the file and never
  quotes a data value (a customerId may be an email or a mobile number).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bulkrevoke.errors import InputError
from bulkrevoke.model import FIELDS, squash

Row = tuple[str | None, str | None, str | None, str | None]
REQUIRED = FIELDS[:3]
CSV_DELIMITERS = ",;\t|"
# pyarrow parses CSV a block at a time, so a block is also the largest record accepted.
# Ids are short: 256 KiB is plenty, keeps pyarrow's buffers (it reads several blocks
# ahead) and the process's RSS small, and makes a runaway field (an unclosed quote, a
# pasted blob) fail fast.
BLOCK_SIZE = 256 << 10
MAX_HEADER_BYTES = 1 << 20
MAX_COLUMNS = 10_000
BATCH_ROWS = 65_536
BLANK = " \t\r\n"
HEX24 = re.compile(r"[0-9a-fA-F]{24}")  # badgeMetaId, earnedBadgeId


#: One batch of records as pyarrow string arrays: badgeMetaId, customerId, earnedBadgeId
#: and identifierType (None when the input has no identifierType column).
Columns = tuple[Any, Any, Any, Any]


@dataclass
class Source:
    """An opened input: its display name, kind, and (once read) its SHA-256."""

    name: str
    kind: str
    headers: list[str] = field(default_factory=list)
    sha256: str = ""
    _columns: Iterator[Columns] | None = None

    def columns(self) -> Iterator[Columns]:
        """The records, a batch of columns at a time (read once)."""
        assert self._columns is not None, "a source is read once"
        columns, self._columns = self._columns, None
        return columns

    def batches(self) -> Iterator[list[Row]]:
        """The records as tuples, a batch at a time (read once)."""
        for columns in self.columns():
            count = len(columns[0])
            lists = [[None] * count if c is None else c.to_pylist() for c in columns]
            yield list(zip(*lists, strict=True))


# --- header matching ----------------------------------------------------------------------


def normalize_header(header: str) -> str:
    return squash(header.lstrip("\ufeff"))


def match_columns(name: str, headers: Sequence[str], mapping: Mapping[str, str]) -> list[int | None]:
    """Position of each input field among *headers* (identifierType may be absent)."""
    by_norm: dict[str, list[int]] = {}
    for index, header in enumerate(headers):
        by_norm.setdefault(normalize_header(header), []).append(index)
    positions: list[int | None] = []
    for field_name in FIELDS:
        wanted = mapping.get(field_name, field_name)
        exact = [i for i, h in enumerate(headers) if h.strip() == wanted]
        found = exact or by_norm.get(normalize_header(wanted), [])
        if len(found) > 1:
            raise InputError(
                f"{name}: column {field_name} matches {len(found)} headers "
                f"({', '.join(quote_short(headers[i]) for i in found)}); map one with "
                f"--column {field_name}=HEADER"
            )
        if not found and field_name in REQUIRED:
            raise InputError(_missing_column_message(name, field_name, mapping, headers))
        positions.append(found[0] if found else None)
    return positions


def _missing_column_message(
    name: str, field_name: str, mapping: Mapping[str, str], headers: Sequence[str]
) -> str:
    # A first line of data instead of headers would put customer ids (PII) into the
    # list of headers below: say what happened without quoting it.
    if any(HEX24.fullmatch(h.strip()) for h in headers):
        return (
            f"{name}: the first line holds ids, not headers; add a header line "
            f"({','.join(REQUIRED)}[,identifierType])"
        )
    wanted = mapping.get(field_name, field_name)
    what = (
        f"column {wanted!r} (given by --column {field_name}={wanted})"
        if field_name in mapping
        else f"required column {field_name!r}"
    )
    shown = ", ".join(quote_short(h) for h in headers[:12]) + (", …" if len(headers) > 12 else "")
    message = f"{name}: missing {what}; headers found: {shown}"
    delimiter = _better_delimiter(normalize_header(wanted), headers)
    if delimiter:
        return f"{message}; is the delimiter right? (--delimiter {delimiter})"
    # Only headers that no input field claims are worth suggesting.
    claimed = {normalize_header(mapping.get(f, f)) for f in FIELDS}
    spare = [h for h in headers if normalize_header(h) not in claimed]
    close = difflib.get_close_matches(
        normalize_header(wanted), [normalize_header(h) for h in spare], n=1, cutoff=0.6
    )
    if close:
        original = next(h for h in spare if normalize_header(h) == close[0])
        return f"{message}; did you mean {original!r}? (--column {field_name}={original})"
    return message


def _better_delimiter(wanted: str, headers: Sequence[str]) -> str | None:
    """A delimiter that would have split the wanted header out of a header cell."""
    for candidate in CSV_DELIMITERS:
        parts = (part for h in headers if candidate in h for part in h.split(candidate))
        if any(normalize_header(part) == wanted for part in parts):
            return "tab" if candidate == "\t" else candidate
    return None


def columns_from_rows(rows: Sequence[Row]) -> Columns:
    """A batch of tuples as Columns (for readers that produce rows)."""
    from bulkrevoke._arrays import strings

    fields = list(zip(*rows, strict=True))
    absent = all(v is None for v in fields[3])
    return (
        strings(fields[0]),
        strings(fields[1]),
        strings(fields[2]),
        None if absent else strings(fields[3]),
    )


def error_reason(exc: BaseException) -> str:
    """The first line of an OS or library error, short enough for a one-line message."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def cell_text(value: Any) -> str | None:
    """A spreadsheet or object cell as text; floats keep a form that validation flags."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def quote_short(value: str, limit: int = 40) -> str:
    """Quote a value for a message, cut short so one bad cell can't flood a log."""
    text = value if len(value) <= limit else value[:limit] + "…"
    return repr(text)
