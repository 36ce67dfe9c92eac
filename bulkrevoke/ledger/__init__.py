"""The crash-safe journal of a run, in one SQLite file (``store``), and its format
(``schema``)."""

from bulkrevoke.ledger.schema import (
    OUTCOME_COLUMNS,
    ROW_COLUMNS,
    SCHEMA_VERSION,
    read_meta,
    row_batch,
    row_schema,
)
from bulkrevoke.ledger.store import RESERVE, Ledger

__all__ = [
    "OUTCOME_COLUMNS",
    "RESERVE",
    "ROW_COLUMNS",
    "SCHEMA_VERSION",
    "Ledger",
    "read_meta",
    "row_batch",
    "row_schema",
]
