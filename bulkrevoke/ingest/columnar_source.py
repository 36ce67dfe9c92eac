"""Columnar input: Parquet files (any number of row groups) and pandas DataFrames.

Integers become their exact decimal text; a float column keeps a form that
validation flags as ``spreadsheet_number``; other types are a file-level error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bulkrevoke.errors import InputError
from bulkrevoke.ingest.source import (
    BATCH_ROWS,
    Columns,
    Source,
    cell_text,
    error_reason,
    match_columns,
)
from bulkrevoke.storage import file_sha256

# --- Parquet, DataFrame -------------------------------------------------------------------


def open_parquet(path: Path, columns: dict[str, str]) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({error_reason(exc)})") from None
    schema = parquet.schema_arrow
    headers = list(schema.names)
    positions = match_columns(name, headers, columns)
    for position in positions:
        if position is not None:
            _check_arrow_type(name, headers[position], schema.field(position).type)
    source = Source(name=name, kind="parquet", headers=headers, sha256=file_sha256(path))
    wanted = [headers[p] if p is not None else None for p in positions]

    def records() -> Iterator[Columns]:
        try:
            selected = [h for h in headers if h in wanted]
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=selected):
                yield _arrow_columns(batch, wanted)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{name}: cannot read ({error_reason(exc)})") from None

    source._columns = records()
    return source


def _check_arrow_type(name: str, header: str, arrow_type: Any) -> None:
    """Text, integers and decimals become exact text; floats are read so that validation
    can flag each value (``spreadsheet_number``); anything else can't hold an id."""
    import pyarrow as pa

    types = pa.types
    value_type = arrow_type.value_type if types.is_dictionary(arrow_type) else arrow_type
    is_string_view = getattr(types, "is_string_view", lambda _: False)  # pyarrow >= 16
    if (
        types.is_string(value_type)
        or types.is_large_string(value_type)
        or is_string_view(value_type)
        or types.is_integer(value_type)
        or types.is_decimal(value_type)
        or types.is_floating(value_type)
        or types.is_null(value_type)
    ):
        return
    raise InputError(
        f"{name}: column {header!r} has type {arrow_type}; ids must be text (or integers): "
        "write the column as strings"
    )


def _arrow_columns(batch: Any, wanted: list[str | None]) -> Columns:
    a, b, c, d = (None if column is None else _arrow_texts(batch.column(column)) for column in wanted)
    return a, b, c, d


def _arrow_texts(array: Any) -> Any:
    """Exact text of each value: integers in decimal, floats in a form validation flags."""
    import pyarrow as pa

    from bulkrevoke._arrays import strings

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_floating(array.type):
        return strings([cell_text(v) for v in array.to_pylist()])
    if not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    return array


def open_dataframe(frame: Any, columns: dict[str, str]) -> Source:
    import pandas as pd
    import pyarrow as pa

    name = "<DataFrame>"
    headers = [str(c) for c in frame.columns]
    positions = match_columns(name, headers, columns)
    wanted = [headers[p] if p is not None else None for p in positions]
    # By position, not label: a frame may repeat a column label.
    selected = frame.iloc[:, [p for p in positions if p is not None]].copy()
    selected.columns = [w for w in wanted if w is not None]
    for column in selected.columns:
        if selected[column].dtype == object:
            selected[column] = selected[column].map(cell_text)
    try:
        table = pa.Table.from_pandas(selected, preserve_index=False)
    except pa.ArrowException as exc:
        raise InputError(f"{name}: cannot convert the frame ({error_reason(exc)})") from None
    for column in table.schema:
        _check_arrow_type(name, column.name, column.type)
    digest = hashlib.sha256(pd.util.hash_pandas_object(selected, index=False).to_numpy().tobytes())
    source = Source(name=name, kind="dataframe", headers=headers, sha256=digest.hexdigest())
    source._columns = (_arrow_columns(b, wanted) for b in table.to_batches(BATCH_ROWS))
    return source
