"""Excel input: the first sheet of an .xlsx, read in openpyxl's streaming mode.

Needs the ``excel`` extra; without it a one-line hint says how to install it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bulkrevoke.errors import InputError
from bulkrevoke.ingest.source import (
    BATCH_ROWS,
    BLANK,
    Row,
    Source,
    cell_text,
    columns_from_rows,
    match_columns,
)
from bulkrevoke.storage import file_sha256

# --- Excel --------------------------------------------------------------------------------


def open_excel(path: Path, columns: dict[str, str]) -> Source:
    name = str(path)
    try:
        import openpyxl  # noqa: F401 - only to say what to install when it is missing
    except ImportError:
        raise InputError(
            f"{name}: reading .xlsx needs the excel extra: pip install 'bulkrevoke[excel]'"
        ) from None
    with _sheet_rows(path, name) as rows:
        headers = next((_cells(v) for v in rows if not _blank_cells(v)), [])
    if not headers:
        raise InputError(f"{name}: the first sheet is empty (no header row)")
    positions = match_columns(name, headers, columns)
    source = Source(name=name, kind="xlsx", headers=headers, sha256=file_sha256(path))
    source._columns = (columns_from_rows(rows) for rows in _excel_batches(path, name, positions))
    return source


@contextlib.contextmanager
def _sheet_rows(path: Path, name: str) -> Iterator[Iterator[tuple[Any, ...]]]:
    """The first sheet's rows, read-only, with openpyxl's errors turned into InputError and
    its warnings silenced (they would break the CLI's one-line stderr)."""
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise InputError(f"{name}: not a readable .xlsx file ({type(exc).__name__})") from None
    try:
        yield _quiet_rows(book.worksheets[0].iter_rows(values_only=True), name)
    finally:
        book.close()


def _quiet_rows(rows: Iterator[tuple[Any, ...]], name: str) -> Iterator[tuple[Any, ...]]:
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = next(rows, None)
        except Exception as exc:
            raise InputError(f"{name}: cannot read ({type(exc).__name__})") from None
        if values is None:
            return
        yield values


def _excel_batches(path: Path, name: str, positions: list[int | None]) -> Iterator[list[Row]]:
    with _sheet_rows(path, name) as rows:
        records = (v for v in rows if not _blank_cells(v))
        next(records, None)  # the header row, read when the source was opened
        batch: list[Row] = []
        for values in records:
            cells = [cell_text(values[p]) if p is not None and p < len(values) else None for p in positions]
            batch.append((cells[0], cells[1], cells[2], cells[3]))
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch


def _cells(values: tuple[Any, ...]) -> list[str]:
    return ["" if v is None else str(v) for v in values]


def _blank_cells(values: tuple[Any, ...]) -> bool:
    return all(v is None or not str(v).strip(BLANK) for v in values)
