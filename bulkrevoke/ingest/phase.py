"""The ingest phase: one streaming pass validates every input record into the ledger,
hashes the input and finds the duplicates, before anything is sent."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bulkrevoke.config import RunConfig
from bulkrevoke.ingest.dedupe import DuplicateFinder
from bulkrevoke.ingest.reader import open_source
from bulkrevoke.ingest.validate import validate_columns
from bulkrevoke.ledger import Ledger
from bulkrevoke.progress import Progress

log = logging.getLogger("bulkrevoke")

#: Rows per ledger BLOB: enough that an insert costs nothing per row, few enough that
#: the rows held for it stay a few megabytes.
STORE_ROWS = 32_768
SPILL_DIR = "duplicates.spill"


def ingest(config: RunConfig, ledger: Ledger, run_dir: Path, progress: Progress) -> None:
    ledger.reset_rows()
    source = open_source(config.source, columns=config.columns, delimiter=config.delimiter, spool_dir=run_dir)
    progress.start("ingest", None)
    finder = DuplicateFinder(run_dir / SPILL_DIR)
    row = 0
    held: list[Any] = []
    held_rows = 0
    try:
        for columns in source.columns():
            batch = validate_columns(columns, row + 1, config.identifier)
            row += batch.num_rows
            held.append(batch)
            held_rows += batch.num_rows
            if held_rows >= STORE_ROWS:
                _store(held, ledger, finder)
                held, held_rows = [], 0
            progress.advance(batch.num_rows)
        _store(held, ledger, finder)
        duplicates = 0
        for pairs in finder.duplicates(ledger.row_batches):
            ledger.add_duplicates(pairs)
            duplicates += len(pairs)
    finally:
        finder.close()
    ledger.set_meta(ingest_complete=True, rows=row, input_sha256=source.sha256)
    log.info(
        "ingested %d rows from %s (%d duplicates), sha256 %s", row, source.name, duplicates, source.sha256
    )


def _store(batches: list[Any], ledger: Ledger, finder: DuplicateFinder) -> None:
    ledger.ingest(batches)
    finder.add(batches)
